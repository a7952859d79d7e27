package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
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

On start it prints the environment to use in another shell. With
KVASSERT_EMULATOR and KVASSERT_CA_FILE set, every kvassert command sends all
its vault and login traffic to the emulator, so real Azure URLs such as
https://kvassert-demo.vault.azure.net/ work unchanged, and nothing reaches
Azure. The vaults are reached with the emulator's own workload identity
(KVASSERT_EMULATOR_TENANT_ID, KVASSERT_EMULATOR_CLIENT_ID,
KVASSERT_EMULATOR_CLIENT_SECRET: emulator-only values from the scenario), or
its managed identity endpoint: never with az login or AZURE_* credentials.

Each request is logged to stderr (method, host, path, status, duration; never
headers, bodies or query strings).`,
		Example: `  kvassert emulate
  kvassert emulate --listen 127.0.0.1:9443 --ca-out ./emulator-ca.pem
  kvassert emulate --config testdata/scenario.json`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return c.run(cmd.Context(), a) },
	}
	fs := cmd.Flags()
	fs.StringVar(&c.listen, "listen", "127.0.0.1:8443", "loopback address to listen on (port 0: any free port)")
	fs.StringVar(&c.config, "config", "", "scenario JSON file (default: the built-in demo scenario)")
	fs.StringVar(&c.caOut, "ca-out", "", "write the emulator's CA certificate (PEM) here (default: kvassert-emulator-ca.pem in the temp directory)")
	_ = cmd.MarkFlagFilename("config", "json")
	_ = cmd.MarkFlagFilename("ca-out", "pem")
	return cmd
}

func (c *emulateCmd) run(ctx context.Context, a *App) error {
	host, _, err := net.SplitHostPort(c.listen)
	if err != nil {
		return usageError(fmt.Sprintf("--listen %q is not host:port", truncate(c.listen, 60)), "use 127.0.0.1:8443, or 127.0.0.1:0 for a free port")
	}
	if ip := net.ParseIP(host); !(host == "localhost" || ip != nil && ip.IsLoopback()) {
		return usageError(fmt.Sprintf("--listen %q is not a loopback address: the emulator only serves this machine", c.listen), "use 127.0.0.1:PORT or [::1]:PORT")
	}
	s, label := scenario.Demo(), "built-in demo"
	if c.config != "" {
		if s, err = scenario.Load(c.config); err != nil {
			return &exitError{code: exitUsage, msg: "--config " + c.config, err: err, hint: "fix the scenario file (field names are those of package kvasserttest/scenario, in lower camel case)"}
		}
		label = c.config
	}
	caOut := c.caOut
	if caOut == "" {
		caOut = filepath.Join(os.TempDir(), "kvassert-emulator-ca.pem")
	}
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
	if abs, err := filepath.Abs(caOut); err == nil {
		caOut = abs
	}
	if err := writeFileAtomic(caOut, e.CAPEM(), 0o644); err != nil {
		return failure("writing the CA certificate", err)
	}
	a.printEmulatorEnv(e, label, caOut)
	<-ctx.Done()
	fmt.Fprintln(a.Stderr, "Stopping the emulator.")
	if err := e.Close(); err != nil {
		return failure("stopping the emulator", err)
	}
	return nil
}

// printEmulatorEnv prints the address and the environment for clients.
func (a *App) printEmulatorEnv(e *kvasserttest.Emulator, label, caFile string) {
	s := e.Scenario()
	st := a.style()
	w := a.Stdout
	fmt.Fprintf(w, "%s Entra ID, managed identity endpoint and Key Vault on %s\n", st.bold("kvassert emulator:"), st.cyan(e.URL()))
	fmt.Fprintf(w, "scenario: %s (%s, %s, %s, %s)\n", label, plural(len(s.Tenants), "tenant"), plural(len(s.Apps), "app"),
		strings.Replace(plural(len(s.ManagedIdentities), "managed identity"), "identitys", "identities", 1), plural(len(s.Vaults), "vault"))
	fmt.Fprintf(w, "CA certificate: %s\n\n", caFile)

	comment := func(t string) { fmt.Fprintln(w, st.dim("# "+t)) }
	export := func(k, v string) { fmt.Fprintf(w, "export %s=%s\n", k, shellQuote(v)) }
	comment("Send kvassert's vault and login traffic to the emulator:")
	export(envEmulator, e.URL())
	export(envCAFile, caFile)

	app, workload := pickApps(s)
	if workload != nil {
		comment("The emulator's workload identity, which kvassert uses to reach its vaults (never your az login or AZURE_* credentials).")
		comment("Emulator-only secret from the scenario: not a real credential, accepted nowhere else.")
		export(envEmulatorTenant, workload.HomeTenant)
		export(envEmulatorClient, workload.ClientID)
		export(envEmulatorSecret, workload.Secrets[0])
	}
	if app != nil {
		comment(fmt.Sprintf("The multi-tenant app %q and its certificate:", app.DisplayName))
		export("KVASSERT_CLIENT_ID", app.ClientID)
		for _, ref := range app.Certificates {
			if ref.Vault != "" {
				export("KVASSERT_VAULT", e.VaultURL(ref.Vault))
				export("KVASSERT_CERT", ref.Name)
				break
			}
		}
	}
	if len(s.ManagedIdentities) > 0 {
		mi := s.ManagedIdentities[0]
		comment(fmt.Sprintf("Managed identity endpoint (App Service protocol); identity %s (%s):", mi.ClientID, mi.Name))
		export("IDENTITY_ENDPOINT", e.ManagedIdentityEndpoint())
		export("IDENTITY_HEADER", e.IdentityHeader())
	}
	if app != nil {
		fmt.Fprintf(w, "\nTenants of app %s (%s):\n", app.ClientID, app.DisplayName)
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "  NAME\tTENANT ID\tAPP")
		for _, t := range s.Tenants {
			status := "not consented (AADSTS700016)"
			switch {
			case strings.EqualFold(t.ID, app.HomeTenant):
				status = "home tenant"
			case slices.ContainsFunc(app.ConsentedTenants, func(c string) bool { return strings.EqualFold(c, t.ID) }):
				status = "consented"
			}
			name := t.Name
			if name == "" {
				name = "-"
			}
			fmt.Fprintf(tw, "  %s\t%s\t%s\n", name, t.ID, status)
		}
		tw.Flush()
		if t, ok := firstConsented(s, app); ok {
			fmt.Fprintf(w, "\nTry: kvassert token --tenant %s\n", t)
		}
	}
	fmt.Fprintln(w, "Serving until Ctrl+C or SIGTERM; requests are logged to stderr.")
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

func firstConsented(s *scenario.Scenario, app *scenario.App) (string, bool) {
	for _, c := range app.ConsentedTenants {
		if t, ok := s.Tenant(c); ok {
			if t.Name != "" {
				return t.Name + ".onmicrosoft.com", true
			}
			return t.ID, true
		}
	}
	return "", false
}

// shellQuote quotes a value for a POSIX shell when it needs it.
func shellQuote(v string) string {
	if v != "" && strings.Trim(v, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./:@%+=,") == "" {
		return v
	}
	return "'" + strings.ReplaceAll(v, "'", `'\''`) + "'"
}
