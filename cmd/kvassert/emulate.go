package main

import (
	"bytes"
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/kvassert/kvassert/kvasserttest"
	"github.com/kvassert/kvassert/kvasserttest/scenario"
)

type emulateCmd struct {
	listen string
	config string
	caOut  string
	shell  string
}

func newEmulateCmd(a *App) *cobra.Command {
	c := &emulateCmd{}
	cmd := &cobra.Command{
		Use:   "emulate",
		Short: "Run the Key Vault and Entra ID emulators as a local HTTPS server",
		Long: `Run the emulated Entra ID token service, managed identity endpoint and Key
Vaults of a scenario on one loopback HTTPS address, until Ctrl+C (SIGINT) or
SIGTERM. Without --config it serves the built-in demo scenario: a multi-tenant
app consented in three customer tenants (not in wingtip), a non-exportable
certificate in the vault kvassert-demo, a workload identity with a client
secret that can sign, and a managed identity.

On start it prints the environment to use in another shell, as lines for the
shell of $SHELL (bash and zsh export, fish set -gx, PowerShell $env:; --shell
to choose), or as JSON with -o json (instructions then go to stderr). With
KVASSERT_EMULATOR and KVASSERT_CA_FILE set, every kvassert command sends all
its vault and login traffic to the emulator, so real Azure URLs such as
https://kvassert-demo.vault.azure.net/ work unchanged, and nothing reaches
Azure. The vaults are reached with the emulator's own workload identity
(KVASSERT_EMULATOR_TENANT_ID, KVASSERT_EMULATOR_CLIENT_ID,
KVASSERT_EMULATOR_CLIENT_SECRET: emulator-only values from the scenario), or
its managed identity endpoint: never with az login or AZURE_* credentials.
The lines also set the multi-tenant app (KVASSERT_CLIENT_ID, its home tenant
KVASSERT_TENANT_ID and application object ID KVASSERT_APP_OBJECT_ID), its
certificate (KVASSERT_VAULT, KVASSERT_CERT) and the customer tenants
(KVASSERT_CUSTOMER_TENANTS), so that token, assertion, cert status, cert roll,
proxy and tenants work with no more flags. The managed identity endpoint
(IDENTITY_ENDPOINT, IDENTITY_HEADER) is printed apart, for one command or an
app's own shell: exported where kvassert proxy runs, it would be used by the
proxy's own credential.

Each request is logged to stderr (method, host, path, status, duration; never
headers, bodies or query strings).`,
		Example: `  kvassert emulate
  kvassert emulate --listen 127.0.0.1:9443 --ca-out ./emulator-ca.pem
  kvassert emulate --config testdata/scenario.json
  kvassert emulate --shell fish
  kvassert emulate -o json > emulator.json`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return c.run(cmd.Context(), a) },
	}
	fs := cmd.Flags()
	fs.StringVar(&c.listen, "listen", "127.0.0.1:8443", "loopback address to listen on (port 0: any free port)")
	fs.StringVar(&c.config, "config", "", "scenario JSON file (default: the built-in demo scenario)")
	fs.StringVar(&c.caOut, "ca-out", "", "write the emulator's CA certificate (PEM) here (default: kvassert-emulator-ca.pem in the temp directory, kvassert-emulator-ca-PORT.pem for a port other than 8443)")
	fs.StringVar(&c.shell, "shell", "", "shell syntax of the printed lines: bash, zsh, sh, fish or powershell (default: from $SHELL)")
	_ = cmd.RegisterFlagCompletionFunc("shell", fixedCompletion("bash", "zsh", "sh", "fish", "powershell"))
	_ = cmd.MarkFlagFilename("config", "json")
	_ = cmd.MarkFlagFilename("ca-out", "pem")
	return structured(cmd) // --query with -o json
}

func (c *emulateCmd) run(ctx context.Context, a *App) error {
	jsonOut, err := c.outputJSON(a)
	if err != nil {
		return err
	}
	sh, err := pickShell(c.shell, a.Getenv("SHELL"), runtime.GOOS)
	if err != nil {
		return err
	}
	host, port, err := net.SplitHostPort(c.listen)
	if err != nil || !validPort(port) {
		return usageError(fmt.Sprintf("--listen %q is not host:port", truncate(c.listen, 60)), "use 127.0.0.1:8443, or 127.0.0.1:0 for a free port")
	}
	if ip := net.ParseIP(host); !(host == "localhost" || ip != nil && ip.IsLoopback()) {
		return usageError(fmt.Sprintf("--listen %q is not a loopback address: the emulator only serves this machine", c.listen), "use 127.0.0.1:PORT or [::1]:PORT")
	}
	if err := checkOutFile("--ca-out", c.caOut); err != nil {
		return err
	}
	s, label := scenario.Demo(), "built-in demo"
	if c.config != "" {
		if s, err = scenario.Load(c.config); err != nil {
			return &exitError{code: exitUsage, msg: "--config " + c.config, err: err, hint: "fix the scenario file (field names are those of package kvasserttest/scenario, in lower camel case)"}
		}
		label = c.config
	}
	caOut := c.caOut
	logger := slog.New(slog.NewTextHandler(a.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug})) // the emulator logs each request at Debug
	e, err := kvasserttest.New(s, &kvasserttest.Options{Addr: c.listen, Logger: logger})
	if err != nil {
		hint := ""
		if addrInUse(err) {
			hint = "another emulator may be running; pick another port with --listen 127.0.0.1:PORT (0 for any free port)"
		}
		return &exitError{code: exitFailure, msg: "starting the emulator", err: err, hint: hint}
	}
	defer e.Close()
	if caOut == "" {
		caOut = defaultCAFile(e.URL())
	}
	if abs, err := filepath.Abs(caOut); err == nil {
		caOut = abs
	}
	if err := writeFileAtomic(caOut, e.CAPEM(), 0o644); err != nil {
		return failure("writing the CA certificate", err)
	}
	summary := fmt.Sprintf("%s (%s, %s, %s, %s)", label, plural(len(s.Tenants), "tenant"), plural(len(s.Apps), "app"),
		strings.Replace(plural(len(s.ManagedIdentities), "managed identity"), "identitys", "identities", 1), plural(len(s.Vaults), "vault"))
	info := newEmulatorInfo(e, label, caOut)
	info.summary = summary
	if jsonOut {
		if err := a.printJSON(info.record()); err != nil {
			return err
		}
		fmt.Fprintln(a.Stderr, "kvassert emulator: serving on "+e.URL()+" until Ctrl+C or SIGTERM; requests are logged to stderr.")
	} else {
		a.printEmulatorEnv(info, sh)
	}
	<-ctx.Done()
	fmt.Fprintln(a.Stderr, "Stopping the emulator.")
	if err := e.Close(); err != nil {
		return failure("stopping the emulator", err)
	}
	if c.caOut == "" {
		removeOwnCAFile(caOut, e.CAPEM())
	}
	return nil
}

// removeOwnCAFile deletes the default CA file on a clean stop, so that
// emulators on random ports (--listen 127.0.0.1:0) leave no files behind in
// the temporary directory; only when it still holds this emulator's CA (a
// later emulator on the same port may have replaced it). A file given with
// --ca-out is the user's and stays.
func removeOwnCAFile(path string, pem []byte) {
	if got, err := os.ReadFile(path); err == nil && bytes.Equal(got, pem) {
		_ = os.Remove(path)
	}
}

// outputJSON reports whether the environment is printed as JSON: -o json
// (or KVASSERT_OUTPUT=json). Another format given on the command line is a
// usage error (the text is instructions, not data); one from KVASSERT_OUTPUT
// is ignored, as it is meant for the data commands.
func (c *emulateCmd) outputJSON(a *App) (bool, error) {
	switch {
	case a.Output == "json":
		return true, nil
	case a.query != nil:
		return false, usageError("kvassert emulate: --query does not apply to its shell lines, only to -o json",
			"add -o json, e.g. kvassert emulate -o json --query env (as for token and the other commands that print data)")
	case a.Output == "" || a.fromEnv("output"):
		return false, nil
	}
	return false, usageError(fmt.Sprintf("kvassert emulate prints shell lines or JSON: %s %s does not apply", a.flagName("output"), truncate(a.Output, 20)),
		"use -o json for the environment as JSON, or no -o for lines to paste (--shell picks their syntax)")
}

// emulatorInfo is what the other commands need against a running emulator.
type emulatorInfo struct {
	url, scenario, caFile string
	summary               string // the scenario and its counts, for the text form
	// env are the variables to set in the shell that runs kvassert, in
	// order, with the comment printed before each group.
	env []envVar
	// The multi-tenant app, when the scenario has one with a certificate.
	app      *scenario.App
	vaultURL string
	cert     string
	tenants  []tenantInfo // every tenant of the scenario, home first
	// The managed identity endpoint, when the scenario has an identity.
	identity     *scenario.ManagedIdentity
	miEndpoint   string
	miHeader     string
	tryTenant    string // a consented customer tenant, for the examples
	otherTenants []string
}

type envVar struct{ comment, name, value string }

type tenantInfo struct {
	name, id, domain, status string
	home, consented          bool
}

func newEmulatorInfo(e *kvasserttest.Emulator, label, caFile string) *emulatorInfo {
	s := e.Scenario()
	info := &emulatorInfo{url: e.URL(), scenario: label, caFile: caFile}
	add := func(comment, k, v string) { info.env = append(info.env, envVar{comment, k, v}) }
	add("Send kvassert's vault and login traffic to the emulator:", envEmulator, e.URL())
	add("", envCAFile, caFile)
	app, workload := pickApps(s)
	if workload != nil {
		add("The emulator's workload identity, which kvassert uses to reach its vaults (never your az login or AZURE_* credentials).\n"+
			"Emulator-only secret from the scenario: not a real credential, accepted nowhere else.", envEmulatorTenant, workload.HomeTenant)
		add("", envEmulatorClient, workload.ClientID)
		add("", envEmulatorSecret, workload.Secrets[0])
	}
	if app != nil {
		info.app = app
		add(fmt.Sprintf("The multi-tenant app %q: client ID, home tenant, application object ID (cert status and roll), certificate:", app.DisplayName),
			"KVASSERT_CLIENT_ID", app.ClientID)
		add("", "KVASSERT_TENANT_ID", app.HomeTenant)
		add("", "KVASSERT_APP_OBJECT_ID", app.AppObjectID())
		for _, ref := range app.Certificates {
			if ref.Vault != "" {
				info.vaultURL, info.cert = e.VaultURL(ref.Vault), ref.Name
				add("", "KVASSERT_VAULT", info.vaultURL)
				add("", "KVASSERT_CERT", ref.Name)
				break
			}
		}
		var customers []string
		for _, t := range s.Tenants {
			ti := tenantInfo{name: t.Name, id: t.ID, domain: t.ID, status: "not consented (AADSTS700016)"}
			if t.Name != "" {
				ti.domain = t.Name + ".onmicrosoft.com"
			}
			switch {
			case strings.EqualFold(t.ID, app.HomeTenant):
				ti.home, ti.status = true, "home tenant"
			case slices.ContainsFunc(app.ConsentedTenants, func(c string) bool { return strings.EqualFold(c, t.ID) }):
				ti.consented, ti.status = true, "consented"
			default:
				ti.consented, ti.status = consentOf(app, t.ID, ti.status)
			}
			if ti.home {
				info.tenants = append([]tenantInfo{ti}, info.tenants...)
				continue
			}
			info.tenants = append(info.tenants, ti)
			customers = append(customers, ti.domain)
			if ti.consented && info.tryTenant == "" {
				info.tryTenant = ti.domain
			}
		}
		if len(customers) > 0 {
			add("The customer tenants (consented or not; see the table below), for kvassert tenants check:", "KVASSERT_CUSTOMER_TENANTS", strings.Join(customers, " "))
		}
		if len(app.RedirectURIs) > 0 {
			add("A redirect URI registered on the app, for admin-consent links (kvassert tenants consent-url, the proxy's Tenants view):", "KVASSERT_REDIRECT_URI", app.RedirectURIs[0])
		}
	}
	if len(s.ManagedIdentities) > 0 {
		info.identity = &s.ManagedIdentities[0]
		info.miEndpoint, info.miHeader = e.ManagedIdentityEndpoint(), e.IdentityHeader()
	}
	return info
}

// record is the JSON form of -o json.
func (info *emulatorInfo) record() record {
	env := make(record, 0, len(info.env))
	for _, v := range info.env {
		env = append(env, field{v.name, v.value})
	}
	r := record{{"url", info.url}, {"scenario", info.scenario}, {"caFile", info.caFile}, {"env", env}}
	if info.app != nil {
		tenants := make([]record, 0, len(info.tenants))
		for _, t := range info.tenants {
			tenants = append(tenants, record{{"name", t.name}, {"id", t.id}, {"domain", t.domain}, {"home", t.home}, {"consented", t.home || t.consented}})
		}
		r = append(r,
			field{"clientId", info.app.ClientID},
			field{"homeTenant", info.app.HomeTenant},
			field{"applicationObjectId", info.app.AppObjectID()},
			field{"vaultUrl", info.vaultURL},
			field{"certificate", info.cert},
			field{"tenants", tenants})
	}
	if info.identity != nil {
		// Not in env: set only for one command or an app (kvassert proxy
		// would use it for its own credential).
		r = append(r, field{"managedIdentity", record{
			{"clientId", info.identity.ClientID}, {"name", info.identity.Name},
			{"IDENTITY_ENDPOINT", info.miEndpoint}, {"IDENTITY_HEADER", info.miHeader},
		}})
	}
	return r
}

// printEmulatorEnv prints the address and the lines to paste into another
// shell (in sh's syntax), the tenants and commands to try.
func (a *App) printEmulatorEnv(info *emulatorInfo, sh shellSyntax) {
	st := a.style()
	w := a.Stdout
	comment := func(t string) {
		for _, line := range strings.Split(t, "\n") {
			fmt.Fprintln(w, st.dim("# "+line))
		}
	}
	fmt.Fprintf(w, "%s Entra ID, managed identity endpoint and Key Vault on %s\n", st.bold("kvassert emulator:"), st.cyan(info.url))
	fmt.Fprintf(w, "scenario: %s\n", info.summary)
	fmt.Fprintf(w, "CA certificate: %s\n\n", info.caFile)
	comment("Paste into the shell that runs kvassert (" + sh.name + " syntax; --shell for another):")
	for _, v := range info.env {
		if v.comment != "" {
			comment(v.comment)
		}
		fmt.Fprintln(w, sh.set(v.name, v.value))
	}
	if info.identity != nil {
		fmt.Fprintln(w)
		comment(fmt.Sprintf("The emulator's managed identity endpoint (App Service protocol), identity %s (%s).", info.identity.ClientID, info.identity.Name))
		comment("Set it for one command or in an app's own shell only: where kvassert proxy runs, its credential would use it.")
		fmt.Fprintln(w, sh.prefix([][2]string{{"IDENTITY_ENDPOINT", info.miEndpoint}, {"IDENTITY_HEADER", info.miHeader}},
			fmt.Sprintf("kvassert token --managed-identity %s --tenant %s", info.identity.ClientID, cmp.Or(info.tryTenant, info.identity.Tenant))))
	}
	if info.app != nil {
		fmt.Fprintf(w, "\nTenants of app %s (%s):\n", info.app.ClientID, info.app.DisplayName)
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "  NAME\tTENANT ID\tAPP")
		for _, t := range info.tenants {
			fmt.Fprintf(tw, "  %s\t%s\t%s\n", cmp.Or(t.name, "-"), t.id, t.status)
		}
		tw.Flush()
		fmt.Fprintln(w, "\nTry:")
		if info.tryTenant != "" {
			fmt.Fprintf(w, "  kvassert token --tenant %s\n", info.tryTenant)
		}
		if info.cert != "" {
			fmt.Fprintln(w, "  kvassert cert status")
		}
		fmt.Fprintln(w, "  kvassert proxy")
	}
	fmt.Fprintln(w, "Serving until Ctrl+C or SIGTERM; requests are logged to stderr.")
}

// defaultCAFile is where the CA certificate goes without --ca-out:
// kvassert-emulator-ca.pem in the temporary directory for the default port,
// kvassert-emulator-ca-PORT.pem for another, so that a second emulator does
// not replace the CA file of one already running (whose users would then
// fail TLS verification).
func defaultCAFile(emulatorURL string) string {
	name := "kvassert-emulator-ca.pem"
	if u, err := url.Parse(emulatorURL); err == nil && u.Port() != "" && u.Port() != "8443" {
		name = "kvassert-emulator-ca-" + u.Port() + ".pem"
	}
	return filepath.Join(os.TempDir(), name)
}

// pickApps chooses the app to advertise (the first with a certificate,
// multi-tenant first) and the workload identity (the first app with a
// secret that some vault grants access to, else the first with a secret).
func pickApps(s *scenario.Scenario) (app, workload *scenario.App) {
	for i := range s.Apps {
		x := &s.Apps[i]
		if len(x.Certificates) > 0 && (app == nil || x.MultiTenant && !app.MultiTenant) {
			app = x
		}
	}
	granted := func(id string) bool {
		for _, v := range s.Vaults {
			for _, acc := range v.Access {
				if strings.EqualFold(acc.Principal, id) {
					return true
				}
			}
		}
		return false
	}
	for i := range s.Apps {
		x := &s.Apps[i]
		if len(x.Secrets) == 0 {
			continue
		}
		if workload == nil || granted(x.ClientID) && !granted(workload.ClientID) {
			workload = x
		}
	}
	return app, workload
}

// shellQuote quotes a value for a POSIX shell when it needs it.
func shellQuote(v string) string {
	if v != "" && strings.Trim(v, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./:@%+=,") == "" {
		return v
	}
	return "'" + strings.ReplaceAll(v, "'", `'\''`) + "'"
}

// shellSyntax prints variable assignments for one shell.
type shellSyntax struct {
	name string
	set  func(k, v string) string
	// prefix runs one command with extra variables.
	prefix func(vars [][2]string, command string) string
}

var (
	posixShell = shellSyntax{name: "bash/zsh",
		set: func(k, v string) string { return "export " + k + "=" + shellQuote(v) },
		prefix: func(vars [][2]string, command string) string {
			var b strings.Builder
			for _, kv := range vars {
				b.WriteString(kv[0] + "=" + shellQuote(kv[1]) + " ")
			}
			return b.String() + command
		}}
	fishShell = shellSyntax{name: "fish",
		set: func(k, v string) string { return "set -gx " + k + " " + fishQuote(v) },
		prefix: func(vars [][2]string, command string) string {
			var b strings.Builder
			b.WriteString("env ")
			for _, kv := range vars {
				b.WriteString(kv[0] + "=" + fishQuote(kv[1]) + " ")
			}
			return b.String() + command
		}}
	powerShell = shellSyntax{name: "PowerShell",
		set: func(k, v string) string { return "$env:" + k + " = " + psQuote(v) },
		// PowerShell has no per-command variables: set, run, remove.
		prefix: func(vars [][2]string, command string) string {
			var b strings.Builder
			names := make([]string, 0, len(vars))
			for _, kv := range vars {
				b.WriteString("$env:" + kv[0] + " = " + psQuote(kv[1]) + "; ")
				names = append(names, "Env:"+kv[0])
			}
			return b.String() + command + "; Remove-Item " + strings.Join(names, ", ")
		}}
)

// pickShell chooses the syntax: --shell, else $SHELL's name, else
// PowerShell on Windows and POSIX elsewhere.
func pickShell(flag, shellEnv, goos string) (shellSyntax, error) {
	name := strings.ToLower(strings.TrimSpace(flag))
	if name == "" {
		base := shellEnv[strings.LastIndexAny(shellEnv, `/\`)+1:]
		name = strings.TrimSuffix(strings.ToLower(base), ".exe")
		if name == "" && goos == "windows" {
			name = "powershell"
		}
	}
	switch name {
	case "fish":
		return fishShell, nil
	case "powershell", "pwsh":
		return powerShell, nil
	case "", "bash", "zsh", "sh", "dash", "ksh", "mksh", "ash", "posix":
		return posixShell, nil
	}
	if flag == "" {
		return posixShell, nil // an unknown $SHELL: the POSIX form is the likeliest to work
	}
	return shellSyntax{}, usageError(fmt.Sprintf("--shell %q is not a shell kvassert knows", truncate(flag, 30)), "use bash, zsh, sh, fish or powershell")
}

// fishQuote quotes a value for fish when it needs it.
func fishQuote(v string) string {
	if v != "" && strings.Trim(v, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./:@%+=,") == "" {
		return v
	}
	return "'" + strings.NewReplacer(`\`, `\\`, "'", `\'`).Replace(v) + "'"
}

// psQuote quotes a value for PowerShell: single quotes, ' doubled, and so
// are the typographic single quotes PowerShell also reads as ' (U+2018,
// U+2019, U+201A, U+201B), which would otherwise end the string.
func psQuote(v string) string { return "'" + psQuoteDoubler.Replace(v) + "'" }

var psQuoteDoubler = strings.NewReplacer("'", "''", "\u2018", "\u2018\u2018", "\u2019", "\u2019\u2019", "\u201a", "\u201a\u201a", "\u201b", "\u201b\u201b")

// consentOf reads a tenant's entry in app.Consents: whether the app is
// consented there and how the table describes it (status when absent).
func consentOf(app *scenario.App, tenant, status string) (bool, string) {
	for _, c := range app.Consents {
		if !strings.EqualFold(c.Tenant, tenant) {
			continue
		}
		switch {
		case c.Disabled:
			return false, "consented, service principal disabled (AADSTS7000112)"
		case len(c.Roles) == 0:
			return true, "consented, no role granted"
		}
		return true, "consented (" + strings.Join(c.Roles, ", ") + ")"
	}
	return false, status
}
