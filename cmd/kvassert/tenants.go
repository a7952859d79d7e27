package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/kvassert/kvassert"
	"github.com/kvassert/kvassert/internal/entraid"
	"github.com/kvassert/kvassert/tenants"
)

func init() { extraCommands = append(extraCommands, newTenantsCmd) }

// exitTenantUnreachable is the exit code of "tenants check" when a tenant
// could not be reached and none fell short (the CLI's exit code 3 for an
// unreachable service).
const exitTenantUnreachable = 3

// envCustomerTenants lists the customer tenants (space or comma separated)
// when no other list is given.
const envCustomerTenants = "KVASSERT_CUSTOMER_TENANTS"

// maxTenantList bounds the tenants read from a file or stdin.
const maxTenantList = 100_000

func newTenantsCmd(a *App) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "tenants",
		Short: "Customer tenants: check their health, make admin-consent links",
		Long: `Customer tenants of the multi-tenant app:

  check        per tenant: a token or why not (the app not consented, disabled,
               blocked ...), the app roles granted per resource against the ones
               required, and the admin-consent link to send when consent fixes it
  consent-url  the v2 admin-consent link for a tenant (or "organizations")`,
		Args: cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) > 0 {
				return usageError(fmt.Sprintf("unknown command %q for %q", truncate(args[0], 40), cmd.CommandPath()),
					"the tenants commands are check and consent-url; run 'kvassert tenants --help'")
			}
			return cmd.Help()
		},
	}
	cmd.AddCommand(structured(newTenantsCheckCmd(a)), structured(newTenantsConsentURLCmd(a)))
	return cmd
}

type tenantsCheckCmd struct {
	app         appFlags
	cred        credFlags
	customers   []string
	file        string
	roles       []string
	concurrency int
	redirectURI string
}

func newTenantsCheckCmd(a *App) *cobra.Command {
	c := &tenantsCheckCmd{}
	cmd := &cobra.Command{
		Use:   "check",
		Short: "Check that the app gets tokens, with the roles it needs, in customer tenants",
		Long: `Check customer tenants: get an app-only token in each (concurrently, at most
--concurrency at a time) and report its state:

  ok                        a token for every resource, with every required role
  missing_roles             a token, but a required role was not granted: send the
                            consent link (re-consent grants the app's current permissions)
  app_not_found             AADSTS700016: never consented, or the customer removed the app
  app_disabled              AADSTS7000112: the customer disabled the app
  tenant_not_found / tenant_invalid, conditional_access (53003),
  app_missing_service_principal (7000229), resource_not_found (500011),
  refused (another refusal), not_allowed, unreachable (no answer)

Customer tenants come from --customer-tenant (repeatable, or a space/comma
separated list) and --customer-tenants-file (one per line, # comments), else
from stdin (one per line), else from KVASSERT_CUSTOMER_TENANTS (as 'kvassert
emulate' exports it). Required roles: --require-role [RESOURCE=]ROLE
(repeatable; the resource defaults to Microsoft Graph). The app is --client-id
in its home --tenant.

The exit code is 1 when a tenant falls short, 3 when none does but one could
not be reached, 0 when all are ok.`,
		Example: `  kvassert tenants check --customer-tenant contoso.onmicrosoft.com,fabrikam.onmicrosoft.com --require-role Sites.Read.All
  kvassert tenants check --customer-tenants-file customers.txt --require-role https://graph.microsoft.com=User.Read.All -o json
  cut -f1 customers.tsv | kvassert tenants check`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return c.run(cmd.Context(), a) },
	}
	c.app.register(cmd, "the app's home tenant: ID or domain")
	fs := cmd.Flags()
	fs.StringArrayVar(&c.customers, "customer-tenant", nil, "customer tenant to check, ID or domain; repeatable, or several separated by spaces or commas")
	fs.StringVar(&c.file, "customer-tenants-file", "", "file with the customer tenants to check, one per line (- for stdin)")
	fs.StringArrayVar(&c.roles, "require-role", nil, "app role every customer tenant must have granted, [RESOURCE=]ROLE (default resource Microsoft Graph); repeatable")
	fs.IntVar(&c.concurrency, "concurrency", 8, "tenants checked at once (1-256)")
	fs.StringVar(&c.redirectURI, "redirect-uri", "", "a redirect URI registered on the app, for the consent links of the report")
	bindEnv(cmd, fs, "customer-tenant", envCustomerTenants)
	bindEnv(cmd, fs, "redirect-uri", "KVASSERT_REDIRECT_URI")
	_ = cmd.MarkFlagFilename("customer-tenants-file", "txt")
	c.cred.register(cmd)
	return cmd
}

func (c *tenantsCheckCmd) run(ctx context.Context, a *App) error {
	if err := c.app.checkClientID(a); err != nil {
		return err
	}
	if err := c.app.checkTenant(a); err != nil {
		return err
	}
	if c.concurrency < 1 || c.concurrency > 256 {
		return usageError(fmt.Sprintf("--concurrency %d is not between 1 and 256", c.concurrency), "")
	}
	want, err := c.want(a)
	if err != nil {
		return err
	}
	list, err := c.tenantList(a)
	if err != nil {
		return err
	}
	src, err := c.cred.source(ctx, a)
	if err != nil {
		return err
	}
	cred, err := kvassert.NewCredential(c.app.tenant, c.app.clientID, src, &kvassert.CredentialOptions{
		ClientOptions: a.ClientOptions(), Logger: a.Logger, AdditionallyAllowedTenants: []string{"*"},
	})
	if err != nil {
		return failure("", err)
	}
	reports, err := tenants.CheckAll(ctx, cred, list, want, &tenants.CheckOptions{Concurrency: c.concurrency})
	if err != nil {
		return failure("", err)
	}
	if err := a.printTenantReports(reports); err != nil {
		return err
	}
	return tenantsVerdict(reports)
}

// want builds the required roles from --require-role and checks
// --redirect-uri.
func (c *tenantsCheckCmd) want(a *App) (*tenants.Want, error) {
	if err := checkRedirectFlag(a, c.redirectURI); err != nil {
		return nil, err
	}
	roles, err := requiredRoles(a, c.roles)
	if err != nil {
		return nil, err
	}
	return &tenants.Want{Roles: roles, RedirectURI: c.redirectURI}, nil
}

// tenantList reads the customer tenants: --customer-tenant and
// --customer-tenants-file, else stdin (not a terminal), else
// KVASSERT_CUSTOMER_TENANTS.
func (c *tenantsCheckCmd) tenantList(a *App) ([]string, error) {
	var list, fromEnv []string
	for _, v := range c.customers {
		list = append(list, splitTenants(v)...)
	}
	if a.fromEnv("customer-tenant") {
		list, fromEnv = nil, list
	}
	var r io.Reader
	name := c.file
	switch {
	case c.file == "-" || (c.file == "" && len(list) == 0 && !isTerminal(a.Stdin)):
		r, name = a.Stdin, "stdin"
	case c.file != "":
		f, err := os.Open(c.file)
		if err != nil {
			return nil, usageError(fmt.Sprintf("%s: %v", a.flagName("customer-tenants-file"), errors.Unwrap(err)), "give a file with one tenant ID or domain per line")
		}
		defer f.Close()
		r = f
	}
	if r != nil {
		read, err := readTenantLines(r, name)
		if err != nil {
			return nil, err
		}
		list = append(list, read...)
	}
	if len(list) == 0 && c.file == "" {
		list = fromEnv
	}
	if len(list) == 0 {
		return nil, usageError("no tenants to check", "give --customer-tenant, --customer-tenants-file, tenants on stdin (one per line), or set "+envCustomerTenants)
	}
	for _, t := range list {
		if !validTenantName(t) {
			return nil, usageError(fmt.Sprintf("tenant %q is not a tenant ID or domain", truncate(t, 60)), "use GUIDs or domains such as contoso.onmicrosoft.com")
		}
	}
	return list, nil
}

// splitTenants splits a list given with spaces or commas.
func splitTenants(v string) []string {
	return strings.FieldsFunc(v, func(r rune) bool { return r == ' ' || r == ',' || r == '\t' || r == '\n' })
}

// readTenantLines reads one tenant per line; blank lines and # comments
// are skipped.
func readTenantLines(r io.Reader, name string) ([]string, error) {
	var out []string
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), 4096)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if i := strings.IndexByte(line, '#'); i >= 0 {
			line = strings.TrimSpace(line[:i])
		}
		if line == "" {
			continue
		}
		if len(out) == maxTenantList {
			return nil, usageError(fmt.Sprintf("%s lists more than %d tenants", name, maxTenantList), "split the list")
		}
		out = append(out, line)
	}
	if err := sc.Err(); err != nil {
		return nil, usageError(fmt.Sprintf("reading %s: %v", name, err), "give one tenant ID or domain per line")
	}
	return out, nil
}

// printTenantReports prints the reports: the whole reports in JSON and to
// --query, a row per tenant otherwise.
func (a *App) printTenantReports(reports []tenants.Report) error {
	if f := a.format(formatTable); a.query != nil || (f != formatTable && f != formatTSV) {
		return a.emit(reports, formatTable) // --query and JSON/YAML: the whole reports
	}
	st := a.style()
	rows := make([]record, len(reports))
	for i, r := range reports {
		var granted, missing []string
		for _, res := range r.Resources {
			for _, g := range res.Granted {
				granted = append(granted, shortResource(res.Resource)+g)
			}
			for _, m := range res.Missing {
				missing = append(missing, shortResource(res.Resource)+m)
			}
		}
		state := r.State
		if a.format("table") == "table" {
			switch state {
			case tenants.StateOK:
				state = st.green(state)
			case tenants.StateUnreachable:
				state = st.yellow(state)
			default:
				state = st.red(state)
			}
		}
		next := r.ConsentURL
		if next == "" {
			next = r.Hint
		}
		rows[i] = record{{"tenant", r.Tenant}, {"state", state}, {"granted", strings.Join(granted, " ")},
			{"missing", strings.Join(missing, " ")}, {"cached", r.FromCache}, {"next", next}}
	}
	return a.printTable(rows, "table")
}

// shortResource prefixes a role with its resource unless it is Graph's.
func shortResource(res string) string {
	if strings.HasPrefix(res, "https://graph.") || strings.HasPrefix(res, "https://microsoftgraph.") {
		return ""
	}
	return res + ":"
}

// tenantsVerdict is the exit: 1 when a tenant falls short, 3 when one was
// unreachable, nil when all are ok.
func tenantsVerdict(reports []tenants.Report) error {
	var short, unreachable int
	for _, r := range reports {
		switch r.State {
		case tenants.StateOK:
		case tenants.StateUnreachable:
			unreachable++
		default:
			short++
		}
	}
	switch {
	case short > 0:
		verb := "fall"
		if short == 1 {
			verb = "falls"
		}
		return &exitError{code: exitFailure, msg: fmt.Sprintf("%s of %d %s short", plural(short, "tenant"), len(reports), verb),
			hint: "send the administrators the reports' consent links (Next, consentUrl); for a disabled app or a Conditional Access block, the customer must act"}
	case unreachable > 0:
		return &exitError{code: exitTenantUnreachable, msg: fmt.Sprintf("could not reach %s of %d", plural(unreachable, "tenant"), len(reports)),
			hint: "check the network and the vault; run again"}
	}
	return nil
}

type tenantsConsentURLCmd struct {
	clientID, redirectURI, tenant, state, scope string
}

func newTenantsConsentURLCmd(a *App) *cobra.Command {
	c := &tenantsConsentURLCmd{}
	cmd := &cobra.Command{
		Use:   "consent-url",
		Short: "Print the admin-consent link for a customer tenant",
		Long: `Print the Microsoft identity platform's v2 admin-consent link for the app, for
--tenant (default "organizations": the administrator's own tenant), in the
--cloud in use. --redirect-uri must be registered on the app (web platform):
https, or http on localhost / 127.0.0.1 for development. An administrator who
opens it and accepts grants the app its application permissions (scope
RESOURCE/.default) in the tenant.

--tenant here is the customer's tenant (in 'tenants check' it is the app's
home tenant); KVASSERT_TENANT_ID is not read.

A tenants.NewHandler serving --redirect-uri refuses the redirect of a link it
did not make (no state, or --state of your own): the consent is granted in
Entra, but the administrator gets an error page and your callback never runs.
Send the links of the handler's ConsentURL there, or make these links for a
redirect URI that does not need a state.`,
		Example: `  kvassert tenants consent-url --client-id $APP --redirect-uri https://app.example.com/consent --tenant contoso.onmicrosoft.com`,
		Args:    noArgs,
		RunE:    func(cmd *cobra.Command, _ []string) error { return c.run(a) },
	}
	fs := cmd.Flags()
	fs.StringVar(&c.clientID, "client-id", "", "application (client) ID of the multi-tenant app")
	fs.StringVar(&c.redirectURI, "redirect-uri", "", "a redirect URI registered on the app (web platform)")
	fs.StringVarP(&c.tenant, "tenant", "t", "", "customer tenant: ID or domain (default organizations)")
	fs.StringVar(&c.state, "state", "", "opaque state Entra returns on the redirect")
	fs.StringVar(&c.scope, "scope", "", "scopes to consent to, space-separated RESOURCE/.default (default Microsoft Graph's)")
	bindEnv(cmd, fs, "client-id", "KVASSERT_CLIENT_ID", "AZURE_CLIENT_ID")
	bindEnv(cmd, fs, "redirect-uri", "KVASSERT_REDIRECT_URI")
	return cmd
}

func (c *tenantsConsentURLCmd) run(a *App) error {
	if err := (&appFlags{clientID: c.clientID}).checkClientID(a); err != nil {
		return err
	}
	if c.redirectURI == "" {
		return usageError("--redirect-uri is required", "give a redirect URI registered on the app, or set KVASSERT_REDIRECT_URI")
	}
	if c.tenant != "" && !entraid.TenantAlias(c.tenant) && !validTenantName(c.tenant) {
		return usageError(fmt.Sprintf("%s %q is not a tenant ID or domain", a.flagName("tenant"), truncate(c.tenant, 60)),
			"use a GUID, a domain such as contoso.onmicrosoft.com, or organizations")
	}
	u, err := tenants.ConsentURL(c.clientID, c.redirectURI, c.state, &tenants.ConsentURLOptions{Tenant: c.tenant, Cloud: a.Cloud(), Scope: c.scope})
	var ie *kvassert.InputError
	if errors.As(err, &ie) {
		return usageError(a.flagName(consentFlag(ie.Input))+": "+redirectReason(ie.Reason), "see 'kvassert tenants consent-url --help'")
	}
	if err != nil {
		return failure("", err)
	}
	return a.printRecord(record{{"consentUrl", u}}, "tsv")
}

// consentFlag names the flag of a ConsentURL parameter.
func consentFlag(input string) string {
	switch input {
	case "redirectURI":
		return "redirect-uri"
	case "Tenant":
		return "tenant"
	case "Scope":
		return "scope"
	case "state":
		return "state"
	}
	return "client-id"
}
