package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/cloud"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	"github.com/jmespath-community/go-jmespath"
	"github.com/spf13/cobra"

	"github.com/kvassert/kvassert"
	"github.com/kvassert/kvassert/internal/redact"
)

// App is the state every command shares: the standard streams, the
// environment, the --output format, and the way to Azure (real Azure, or the
// emulator named by KVASSERT_EMULATOR + KVASSERT_CA_FILE).
//
// Commands reach Azure only through ClientOptions (for azkeys,
// azcertificates, azsecrets, azidentity and kvassert clients) and
// KeyVaultCredential, so that with the emulator variables set every vault and
// login request goes to the emulator and none to the real cloud.
type App struct {
	// Stdin is the command's standard input.
	Stdin io.Reader
	// Stdout receives the command's result (a token or assertion only when
	// that is what was asked for).
	Stdout io.Writer
	// Stderr receives progress, warnings and errors. Everything written to it
	// passes through a filter that replaces JWTs and known secret values
	// (envSecrets such as AZURE_CLIENT_SECRET and IDENTITY_HEADER, the secret
	// of a Cloud Shell MSI_ENDPOINT, OTLP header values, a PFX password, the
	// proxy's secrets) with "[redacted]".
	Stderr io.Writer
	// Getenv reads an environment variable (os.Getenv in the binary).
	Getenv func(string) string
	// queryText is --query, a JMESPath expression; query is it compiled.
	queryText   string
	query       jmespath.JMESPath
	queryOrders [][]string // the key order of each multiselect hash of --query
	// Output is the --output format (one of outputFormats), or "" for the
	// command's own default.
	Output string
	// Verbose is --verbose: debug logging on stderr (a summary: a few
	// lines).
	Verbose bool
	// Debug is --debug: --verbose, plus a line for every HTTP request and
	// response of every client (ClientOptions, HTTPClient) and azidentity's
	// authentication events, on the redacting Stderr (debug.go).
	Debug bool
	// OnlyShowErrors is --only-show-errors (az's): no warnings on stderr,
	// errors only; refused with --verbose or --debug, as az does.
	OnlyShowErrors bool
	// Logger receives the library's diagnostics (warnings; debug with
	// --verbose), written to Stderr. Tokens and assertions are never logged.
	Logger *slog.Logger

	cloudName string
	flagFrom  map[string]string // flag name -> environment variable that set it

	emu    *emulatorEnv // nil: real Azure
	envErr error        // a broken emulator configuration: every Azure call fails with it

	kvOnce sync.Once
	kvCred azcore.TokenCredential
	kvErr  error

	stdoutTTY, stderrTTY bool
	redactor             *redact.Writer
	// completing: a shell waits for completions; requests are not retried.
	completing bool
}

// extraCommands are constructors of commands that live in other files of
// this package and register themselves from an init function, e.g. the
// developer proxy (proxy.go):
//
//	func init() { extraCommands = append(extraCommands, newProxyCmd) }
//
// Each constructor gets the shared App (call its ClientOptions and
// KeyVaultCredential to reach Azure or the emulator, and credFlags to offer
// the same credential flags as "kvassert token"); the command returned is
// added to the root command as it is.
var extraCommands []func(*App) *cobra.Command

// run executes the command line args and returns the process exit code.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer, getenv func(string) string) (code int) {
	red := redact.NewWriter(stderr)
	a := &App{
		Stdin: stdin, Stdout: stdout, Stderr: red, Getenv: getenv,
		flagFrom:  map[string]string{},
		stdoutTTY: isTerminal(stdout), stderrTTY: isTerminal(stderr),
		redactor: red,
	}
	addEnvSecrets(red, getenv)
	a.setLogger()
	defer func() {
		// A last resort: a bug must not print a stack trace (which could hold
		// a token) nor exit 0.
		if p := recover(); p != nil {
			fmt.Fprintf(a.Stderr, "error: internal error: %v\nhint: please report this at https://github.com/kvassert/kvassert/issues\n", p)
			code = exitFailure
		}
	}()
	defer stopAzureDebugLog()
	root := newRootCmd(a)
	root.SetArgs(args)
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(a.Stderr)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return exitOK
	}
	return a.report(ctx, cobraUsageError(err))
}

// envSecrets are the environment variables whose values are credentials:
// the redacting stderr replaces them wherever they appear.
var envSecrets = []string{
	"AZURE_CLIENT_SECRET", "AZURE_CLIENT_CERTIFICATE_PASSWORD", "IDENTITY_HEADER", "MSI_SECRET",
	envEmulatorSecret, "KVASSERT_PROXY_SECRET",
}

// addEnvSecrets registers the secrets of the environment with red:
// envSecrets, and the secret path segment of a Cloud Shell endpoint that
// kvassert proxy printed (MSI_ENDPOINT=http://.../cloudshell/SECRET/...),
// which a --debug line of the request to it would otherwise show.
func addEnvSecrets(red *redact.Writer, getenv func(string) string) {
	for _, name := range envSecrets {
		red.AddSecret(getenv(name))
	}
	for _, name := range []string{"MSI_ENDPOINT", "IDENTITY_ENDPOINT"} {
		if _, rest, ok := strings.Cut(getenv(name), "/cloudshell/"); ok {
			secret, _, _ := strings.Cut(rest, "/")
			red.AddSecret(secret)
		}
	}
}

// cobraUsageError turns cobra's own command-line errors (an unknown
// command, with its "Did you mean this?" suggestions) into usage errors.
func cobraUsageError(err error) error {
	var ee *exitError
	if errors.As(err, &ee) {
		return err
	}
	text := err.Error()
	if !strings.HasPrefix(text, "unknown command ") {
		return err
	}
	var suggestions []string
	for _, l := range strings.Split(text, "\n") {
		if strings.HasPrefix(l, "\t") {
			suggestions = append(suggestions, strings.TrimSpace(l))
		}
	}
	hint := "run 'kvassert --help' for the commands"
	if len(suggestions) > 0 {
		hint = "did you mean " + strings.Join(suggestions, " or ") + "? run 'kvassert --help' for the commands"
	}
	return usageError(firstLine(text), hint)
}

func newRootCmd(a *App) *cobra.Command {
	root := &cobra.Command{
		Use:   "kvassert",
		Short: "App-only Entra ID tokens signed by a Key Vault key that never leaves the vault",
		Long: `kvassert gets app-only Microsoft Entra ID access tokens for a multi-tenant app in
any tenant where it is consented. The app authenticates with a certificate whose
private key is not exportable from Azure Key Vault: kvassert builds the client
assertion itself and asks Key Vault to sign it (one keys/sign call per token).

Start with "kvassert demo": it runs everything against in-process emulators.

Environment:
  KVASSERT_EMULATOR, KVASSERT_CA_FILE  send all vault and login traffic to a
                                      "kvassert emulate" server (real Azure URLs
                                      such as https://NAME.vault.azure.net/ keep working)
  KVASSERT_EMULATOR_TENANT_ID, KVASSERT_EMULATOR_CLIENT_ID, KVASSERT_EMULATOR_CLIENT_SECRET
                                      the emulator's own identity, which alone reaches
                                      its vaults (never az login or AZURE_* credentials)
  AZURE_TENANT_ID, AZURE_CLIENT_ID, AZURE_CLIENT_SECRET, IDENTITY_ENDPOINT, ...
                                      how kvassert reaches Key Vault (azidentity's
                                      DefaultAzureCredential)
  KVASSERT_OUTPUT                     default for --output
  Flags that name an environment variable in their help take their default from
  it; precedence is flag > KVASSERT_* > AZURE_*.

Exit codes: 0 success, 1 the service refused or a check fell short, 2 usage
error (before any network call), 3 a service could not be reached, 130 interrupted.`,
		Example: `  kvassert demo
  kvassert token --tenant contoso.onmicrosoft.com --client-id APP_ID \
      --vault https://myvault.vault.azure.net/ --cert app-auth
  kvassert cert create --vault https://myvault.vault.azure.net/ --cert app-auth --out app-auth.cer
  kvassert completion bash > /etc/bash_completion.d/kvassert`,
		Version:           kvassert.Version,
		SilenceUsage:      true,
		SilenceErrors:     true,
		DisableAutoGenTag: true,
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			return a.setup(cmd)
		},
	}
	root.SetFlagErrorFunc(func(cmd *cobra.Command, err error) error {
		return usageError(err.Error(), fmt.Sprintf("run '%s --help' for the flags it takes", cmd.CommandPath()))
	})
	pf := root.PersistentFlags()
	pf.StringVarP(&a.Output, "output", "o", "", "output format: json, jsonc, yaml, table, tsv or none (default depends on the command)")
	pf.StringVar(&a.queryText, "query", "", "JMESPath query on the output, as az's --query (e.g. --query accessToken -o tsv)")
	pf.StringVar(&a.cloudName, "cloud", "AzureCloud", "Azure cloud: AzureCloud, AzureChinaCloud or AzureUSGovernment")
	pf.BoolVar(&a.Verbose, "verbose", false, "log a summary of diagnostics (never tokens or secrets) to stderr")
	pf.BoolVar(&a.OnlyShowErrors, "only-show-errors", false, "only show errors, suppressing warnings (deprecation notes included), as az's --only-show-errors")
	pf.BoolVar(&a.Debug, "debug", false, "--verbose, plus every HTTP request and response (status, duration, request IDs) and the credential that reached the vault; never a query string, body, token or secret")
	bindEnv(root, pf, "output", envOutput)
	bindEnv(root, pf, "cloud", envCloud)
	_ = root.RegisterFlagCompletionFunc("output", fixedCompletion(outputFormats...))
	_ = root.RegisterFlagCompletionFunc("cloud", fixedCompletion("AzureCloud", "AzureChinaCloud", "AzureUSGovernment"))

	root.AddCommand(
		structured(newDemoCmd(a)),
		newEmulateCmd(a),
		structured(newTokenCmd(a)),
		structured(newAssertionCmd(a)),
		structured(newDecodeCmd(a)),
		newCertCmd(a),
		structured(newVersionCmd(a)),
	)
	setVersionFlag(root)
	for _, mk := range extraCommands {
		root.AddCommand(mk(a))
	}
	completeFlags(a, root)
	return root
}

// setup runs before every command: environment defaults for flags, the
// output format, the cloud, and the emulator configuration.
func (a *App) setup(cmd *cobra.Command) error {
	if err := a.resolveAliases(cmd); err != nil {
		return err
	}
	if err := a.applyEnv(cmd); err != nil {
		return err
	}
	if err := a.checkConflicts(cmd); err != nil {
		return err
	}
	if a.OnlyShowErrors && (a.Verbose || a.Debug) {
		return usageError("--only-show-errors can't be used together with --debug or --verbose", "drop --only-show-errors to see diagnostics, or --debug and --verbose to see errors only")
	}
	if err := a.setupQuery(cmd); err != nil {
		return err
	}
	if _, err := cloudByName(a.cloudName); err != nil {
		return err
	}
	a.setLogger()
	if a.Debug {
		startAzureDebugLog(a.Stderr)
	}
	a.envErr = a.loadEmulator()
	return nil
}

func (a *App) setLogger() {
	level := slog.LevelWarn
	switch {
	case a.Verbose || a.Debug:
		level = slog.LevelDebug
	case a.OnlyShowErrors:
		level = slog.LevelError
	}
	a.Logger = slog.New(slog.NewTextHandler(a.Stderr, &slog.HandlerOptions{Level: level}))
	a.routeOTelLogging(level)
}

// warn prints "warning: ..." on stderr, unless --only-show-errors.
func (a *App) warn(format string, args ...any) {
	if a.OnlyShowErrors {
		return
	}
	fmt.Fprintf(a.Stderr, "warning: "+format+"\n", args...)
}

// Cloud is the Azure cloud selected with --cloud.
func (a *App) Cloud() cloud.Configuration {
	c, err := cloudByName(a.cloudName)
	if err != nil {
		return cloud.AzurePublic
	}
	return c
}

func cloudByName(name string) (cloud.Configuration, error) {
	switch strings.ToLower(name) {
	case "", "azurecloud", "public", "azurepublic":
		return cloud.AzurePublic, nil
	case "azurechinacloud", "china":
		return cloud.AzureChina, nil
	case "azureusgovernment", "usgov", "azuregovernment":
		return cloud.AzureGovernment, nil
	}
	return cloud.Configuration{}, usageError(fmt.Sprintf("unknown cloud %q", name), "use AzureCloud, AzureChinaCloud or AzureUSGovernment")
}

// ClientOptions are the azcore client options for every Azure SDK, MSAL and
// kvassert client the command makes: the selected cloud and, with
// KVASSERT_EMULATOR set, a transport that sends every vault and login host to
// the emulator and trusts only its CA. With a broken emulator configuration
// the transport fails every request, so nothing reaches the real cloud by
// mistake.
func (a *App) ClientOptions() policy.ClientOptions {
	o := policy.ClientOptions{Cloud: a.Cloud()}
	o.Telemetry.ApplicationID = "kvassert-cli"
	o.Logging.IncludeBody = false
	switch {
	case a.envErr != nil:
		o.Transport = failingTransport{a.envErr}
	case a.emu != nil:
		o.Transport = a.emu.client
	}
	if a.completing {
		o.Retry.MaxRetries = -1
	}
	return a.withDebug(o)
}

// HTTPClient is the HTTP client behind ClientOptions: the emulator's routing
// client, or http.DefaultClient for real Azure.
func (a *App) HTTPClient() *http.Client {
	c := http.DefaultClient
	if a.emu != nil {
		c = a.emu.client
	}
	if a.Debug {
		next := c.Transport
		if next == nil {
			next = http.DefaultTransport
		}
		d := *c
		d.Transport = debugTransport{w: a.Stderr, next: next}
		c = &d
	}
	return c
}

// Emulator returns the emulator's base URL ("https://127.0.0.1:8443") when
// KVASSERT_EMULATOR is in effect.
func (a *App) Emulator() (string, bool) {
	if a.emu == nil {
		return "", false
	}
	return a.emu.url, true
}

// KeyVaultCredential is the credential that reaches Key Vault: azidentity's
// DefaultAzureCredential (environment, workload identity, managed identity,
// Azure CLI, ...), over ClientOptions; with KVASSERT_EMULATOR set, the
// emulator's own identity only (emulatorCredential). It is made once per
// process.
func (a *App) KeyVaultCredential() (azcore.TokenCredential, error) {
	a.kvOnce.Do(func() {
		if a.envErr != nil {
			a.kvErr = a.envErr
			return
		}
		if a.emu != nil {
			a.kvCred, a.kvErr = a.emulatorCredential()
			if a.kvErr == nil {
				a.kvCred = defaultCredential{TokenCredential: a.kvCred, emulator: true}
			}
			return
		}
		a.kvCred, a.kvErr = azidentity.NewDefaultAzureCredential(&azidentity.DefaultAzureCredentialOptions{
			ClientOptions: a.ClientOptions(),
			// The emulator serves no instance discovery for real clouds'
			// metadata host; its login host is trusted as configured.
			DisableInstanceDiscovery: a.emu != nil,
		})
		if a.kvErr != nil {
			a.kvErr = &exitError{code: exitFailure, msg: "cannot set up the Key Vault credential (DefaultAzureCredential)", err: a.kvErr,
				hint: "set AZURE_TENANT_ID, AZURE_CLIENT_ID and AZURE_CLIENT_SECRET, sign in with 'az login', or run with a managed identity"}
			return
		}
		a.kvCred = defaultCredential{TokenCredential: a.kvCred}
	})
	return a.kvCred, a.kvErr
}

// requireAzure returns the emulator configuration error, if any; commands
// call it before they talk to Azure so that the error is reported up front.
func (a *App) requireAzure() error { return a.envErr }

// failingTransport answers every request with err.
type failingTransport struct{ err error }

// Do implements policy.Transporter.
func (f failingTransport) Do(*http.Request) (*http.Response, error) { return nil, f.err }

// errNoResult is returned by commands that printed their findings and must
// exit with failure without a further message.
var errNoResult = errors.New("no result")
