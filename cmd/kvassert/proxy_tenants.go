package main

import (
	"errors"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/kvassert/kvassert"
	"github.com/kvassert/kvassert/internal/graphapi"
	"github.com/kvassert/kvassert/tenants"
)

// The proxy's Tenants view (proxy.Options.Tenants and TenantRoles): the
// customer tenants of the configured app whose health the page shows, as
// "kvassert tenants check" reports it.

// tenantsFlags are the flags of the proxy's Tenants view.
type tenantsFlags struct {
	customers []string
	roles     []string
	redirect  string
}

func (f *tenantsFlags) register(cmd *cobra.Command) {
	fs := cmd.Flags()
	fs.StringArrayVar(&f.customers, "customer-tenant", nil, "customer tenant (ID or domain) whose health the page's Tenants view shows, as kvassert tenants check reports it (needs --client-id, --tenant, --vault, --cert); repeatable, or several separated by spaces or commas")
	fs.StringArrayVar(&f.roles, "require-role", nil, "app role every customer tenant must have granted, [RESOURCE=]ROLE (default resource https://graph.microsoft.com); repeatable")
	fs.StringVar(&f.redirect, "redirect-uri", "", "a redirect URI registered on the app (web platform), for the Tenants view's admin-consent links")
	bindEnv(cmd, fs, "customer-tenant", "KVASSERT_CUSTOMER_TENANTS")
	bindEnv(cmd, fs, "redirect-uri", "KVASSERT_REDIRECT_URI")
}

// options returns the proxy's Tenants, TenantRoles and TenantRedirectURI
// (KVASSERT_REDIRECT_URI applies only with customer tenants). Customer tenants
// taken from KVASSERT_CUSTOMER_TENANTS (as kvassert emulate exports them)
// are left out when the app is not configured; given with the flag, they
// need it (a usage error otherwise).
func (f *tenantsFlags) options(a *App, appConfigured bool) (tenants []string, roles map[string][]string, redirect string, err error) {
	for _, v := range f.customers {
		tenants = append(tenants, splitTenants(v)...)
	}
	if len(tenants) > 0 && !appConfigured {
		if a.fromEnv("customer-tenant") {
			return nil, nil, "", nil
		}
		return nil, nil, "", usageError("--customer-tenant needs the app to check: --client-id, --tenant (its home tenant), --vault and --cert",
			"add them (kvassert emulate exports KVASSERT_CLIENT_ID, KVASSERT_TENANT_ID, KVASSERT_VAULT and KVASSERT_CERT)")
	}
	if len(f.roles) > 0 && len(tenants) == 0 {
		return nil, nil, "", usageError("--require-role is given without --customer-tenant", "name the customer tenants to check with --customer-tenant")
	}
	if f.redirect != "" && len(tenants) == 0 && !a.fromEnv("redirect-uri") {
		return nil, nil, "", usageError("--redirect-uri is given without --customer-tenant", "name the customer tenants to check with --customer-tenant")
	}
	if roles, err = requiredRoles(a, f.roles); err != nil {
		return nil, nil, "", err
	}
	if len(tenants) > 0 {
		redirect = f.redirect
	}
	if err := checkTenantsFlagValues(a, tenants, redirect); err != nil {
		return nil, nil, "", err
	}
	return tenants, roles, redirect, nil
}

// checkTenantsFlagValues refuses, before any request, a customer tenant
// that is not a tenant ID or domain and a redirect URI that Entra would
// refuse, naming the flag (the proxy's Options checks would name their
// fields instead).
func checkTenantsFlagValues(a *App, list []string, redirect string) error {
	for _, t := range list {
		if !validTenantName(t) {
			return usageError(fmt.Sprintf("%s %q is not a tenant ID or domain", a.flagName("customer-tenant"), truncate(t, 60)),
				"use GUIDs or domains such as contoso.onmicrosoft.com")
		}
	}
	return checkRedirectFlag(a, redirect)
}

// zeroGUID stands for the client ID where only another input is checked.
const zeroGUID = "00000000-0000-0000-0000-000000000000"

// redirectReason words the library's reason for refusing a redirect URI
// for the command line (the flag, not the parameter, is named).
func redirectReason(r string) string { return strings.ReplaceAll(r, "redirectURI", "the redirect URI") }

// checkRedirectFlag refuses a --redirect-uri that Entra would refuse (not
// https, nor http on loopback), naming the flag; "" passes.
func checkRedirectFlag(a *App, redirect string) error {
	if redirect == "" {
		return nil
	}
	if _, err := tenants.ConsentURL(zeroGUID, redirect, "", &tenants.ConsentURLOptions{Cloud: a.Cloud()}); err != nil {
		var ie *kvassert.InputError
		if errors.As(err, &ie) {
			return usageError(a.flagName("redirect-uri")+": "+redirectReason(ie.Reason), "give a redirect URI registered on the app: https, or http on localhost")
		}
		return err
	}
	return nil
}

// requiredRoles parses --require-role values, [RESOURCE=]ROLE (the
// resource defaults to Microsoft Graph of the --cloud), into roles per
// resource; nil when none is given.
func requiredRoles(a *App, values []string) (map[string][]string, error) {
	if len(values) == 0 {
		return nil, nil
	}
	graph, err := graphapi.Host(a.Cloud())
	if err != nil {
		return nil, err
	}
	roles := map[string][]string{}
	for _, r := range values {
		res, role, ok := strings.Cut(r, "=")
		if !ok {
			res, role = "https://"+graph, r
		}
		res = strings.TrimSuffix(strings.TrimSuffix(strings.TrimSpace(res), "/.default"), "/")
		role = strings.TrimSpace(role)
		if role == "" || !validResource(res) || strings.ContainsAny(role, " \t") {
			return nil, usageError(fmt.Sprintf("%s %q is not [RESOURCE=]ROLE", a.flagName("require-role"), truncate(r, 80)),
				"e.g. --require-role User.Read.All or --require-role https://graph.microsoft.com=User.Read.All")
		}
		roles[res] = append(roles[res], role)
	}
	return roles, nil
}
