package main

import (
	"context"
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/kvassert/kvassert"
	"github.com/kvassert/kvassert/internal/entraid"
	"github.com/kvassert/kvassert/tenants"
)

// auditAppFlags add the app registration's hygiene to "cert audit": the
// app instance property lock, and the customer tenants that refuse the
// app.
type auditAppFlags struct {
	app                         bool
	appObjectID, clientID, home string
	customers                   []string
	customersFile               string
}

func (f *auditAppFlags) register(cmd *cobra.Command) {
	fs := cmd.Flags()
	fs.BoolVar(&f.app, "app", false, "also audit the app registration (--app-object-id, --client-id, --tenant): its app instance property lock, and the customer tenants")
	fs.StringVar(&f.appObjectID, "app-object-id", "", "the app registration's Object ID (with --app)")
	fs.StringVar(&f.clientID, "client-id", "", "application (client) ID of the app (with --app-object-id)")
	fs.StringVarP(&f.home, "tenant", "t", "", "the app's home tenant (with --app-object-id)")
	fs.StringArrayVar(&f.customers, "customer-tenant", nil, "a customer tenant the SaaS knows, reported when it refuses the app; repeatable, or several separated by spaces or commas")
	fs.StringVar(&f.customersFile, "customer-tenants-file", "", "file with the customer tenants the SaaS knows, one per line")
	bindEnv(cmd, fs, "app-object-id", "KVASSERT_APP_OBJECT_ID")
	bindEnv(cmd, fs, "client-id", "KVASSERT_CLIENT_ID")
	bindEnv(cmd, fs, "tenant", "KVASSERT_TENANT_ID")
	bindEnv(cmd, fs, "customer-tenant", envCustomerTenants)
	_ = cmd.MarkFlagFilename("customer-tenants-file", "txt")
}

// check validates the flags; enabled is false when no app audit is asked
// (--app, or customer tenants on the command line; the variables alone do
// not ask for it).
func (f *auditAppFlags) check(a *App) (enabled bool, err error) {
	customersGiven := (len(f.customers) > 0 && !a.fromEnv("customer-tenant")) || f.customersFile != ""
	if !f.app && !customersGiven {
		// A value given on the command line that nothing reads is a
		// mistake the user should hear about (a bad one too), before any
		// request.
		for _, g := range []struct{ name, v string }{{"app-object-id", f.appObjectID}, {"client-id", f.clientID}, {"tenant", f.home}} {
			if g.v != "" && !a.fromEnv(g.name) {
				return false, usageError(a.flagName(g.name)+" applies only with --app, --customer-tenant or --customer-tenants-file",
					"add --app to audit the app registration too, or drop "+a.flagName(g.name))
			}
		}
		return false, nil
	}
	if f.appObjectID == "" {
		return false, usageError("--app-object-id is required with --app, --customer-tenant or --customer-tenants-file", "give the Object ID shown on the app registration's overview page, or set KVASSERT_APP_OBJECT_ID")
	}
	if !entraid.ValidClientID(f.appObjectID) {
		return false, usageError(fmt.Sprintf("%s %q is not a GUID", a.flagName("app-object-id"), truncate(f.appObjectID, 60)), "use the Object ID shown on the app registration's overview page")
	}
	if err := (&appFlags{clientID: f.clientID, tenant: f.home}).checkClientID(a); err != nil {
		return false, err
	}
	if err := (&appFlags{clientID: f.clientID, tenant: f.home}).checkTenant(a); err != nil {
		return false, err
	}
	if err := objectIDIsClientID(a, f.appObjectID, f.clientID); err != nil {
		return false, err
	}
	var list []string
	for _, v := range f.customers {
		list = append(list, splitTenants(v)...)
	}
	for _, t := range list {
		if !validTenantName(t) {
			return false, usageError(fmt.Sprintf("%s: %q is not a tenant ID or domain", a.flagName("customer-tenant"), truncate(t, 60)), "use a GUID or a domain such as contoso.onmicrosoft.com")
		}
	}
	f.customers = list
	return true, nil
}

// auditApp runs tenants.AuditApp with a credential over the audited
// certificate and returns its findings as audit lines.
func (f *auditAppFlags) auditApp(ctx context.Context, a *App, vault, cert string) ([]auditFinding, error) {
	known := append([]string(nil), f.customers...)
	if f.customersFile != "" {
		file, err := os.Open(f.customersFile)
		if err != nil {
			return nil, usageError(fmt.Sprintf("--customer-tenants-file: cannot open %s", truncate(f.customersFile, 100)), "give a file with one tenant ID or domain per line")
		}
		defer file.Close()
		read, err := readTenantLines(file, f.customersFile)
		if err != nil {
			return nil, err
		}
		for _, t := range read {
			if !validTenantName(t) {
				return nil, usageError(fmt.Sprintf("tenant %q in --customer-tenants-file is not a tenant ID or domain", truncate(t, 60)), "one tenant ID or domain per line")
			}
		}
		known = append(known, read...)
	}
	vaultCred, err := a.KeyVaultCredential()
	if err != nil {
		return nil, err
	}
	src, err := kvassert.NewKeyVaultCertificateSource(vault, cert, vaultCred, &kvassert.KeyVaultCertificateOptions{
		ClientOptions: a.ClientOptions(), AllowLoopback: a.allowLoopbackVault(), Logger: a.Logger})
	if err != nil {
		return nil, failure("certificate "+cert, err)
	}
	cred, err := kvassert.NewCredential(f.home, f.clientID, src, &kvassert.CredentialOptions{
		ClientOptions: a.ClientOptions(), Logger: a.Logger, AdditionallyAllowedTenants: []string{"*"}})
	if err != nil {
		return nil, failure("", err)
	}
	audit, err := tenants.AuditApp(ctx, cred, f.appObjectID, known, nil, &tenants.AuditOptions{ClientOptions: a.ClientOptions()})
	if err != nil {
		return nil, failure("app audit", err)
	}
	return appFindings(audit, len(known)), nil
}

// appFindings are the audit lines of an AppAudit.
func appFindings(audit tenants.AppAudit, known int) []auditFinding {
	var out []auditFinding
	switch {
	case audit.Locked:
		out = append(out, auditFinding{"app-lock", auditPass, "the app instance property lock keeps customer tenants from adding credentials to the app's service principal"})
	case !audit.LockChecked:
		out = append(out, auditFinding{"app-lock", auditWarn, "could not read servicePrincipalLockConfiguration: " + audit.LockError})
	default:
		out = append(out, auditFinding{"app-lock", auditFail, "the app's credentials are not locked: a customer tenant's administrator can add a credential to its service principal there; " +
			"fix: az rest --method PATCH --url https://graph.microsoft.com/v1.0/applications/{objectId} --body '{\"servicePrincipalLockConfiguration\":{\"isEnabled\":true,\"allProperties\":true}}'"})
	}
	if known == 0 {
		return out
	}
	if audit.Refusing == 0 {
		return append(out, auditFinding{"tenants", auditPass, fmt.Sprintf("all %d known customer tenants give the app tokens", known)})
	}
	for _, r := range audit.Tenants {
		if r.State == tenants.StateOK {
			continue
		}
		detail := r.Tenant + ": " + r.State
		switch {
		case r.ConsentURL != "":
			detail += "; send the administrator " + r.ConsentURL
		case r.Hint != "":
			detail += "; " + r.Hint
		}
		out = append(out, auditFinding{"tenants", auditFail, detail})
	}
	return out
}
