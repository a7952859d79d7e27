package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/spf13/cobra"

	"github.com/kvassert/kvassert"
	"github.com/kvassert/kvassert/internal/emuhook"
	"github.com/kvassert/kvassert/kvasserttest"
	"github.com/kvassert/kvassert/kvasserttest/scenario"
)

// demoCertificate is the certificate the demo creates.
const demoCertificate = "saas-app-demo"

func newDemoCmd(a *App) *cobra.Command {
	return &cobra.Command{
		Use:   "demo",
		Short: "Watch kvassert get tokens, onboard and offboard a tenant, and roll the certificate against in-process emulators (no Azure needed)",
		Long: `Start the Key Vault and Entra ID emulators in this process and walk through what
kvassert does, in a few seconds and without network access:

  1. create a new certificate in the vault whose key is not exportable (the
     same code as "kvassert cert create") and register it on the multi-tenant app
  2. get Graph tokens for the app in contoso, fabrikam and northwind through the
     library (kvassert.NewKeyVaultCertificateSource + kvassert.NewCredential),
     counting the calls each costs: one keys/sign per new tenant
  3. show the client assertion kvassert built, decoded (never its signature)
  4. ask again: every token comes from the cache, with no call at all
  5. try wingtip, where the app has no admin consent: AADSTS700016 and the fix
  6. a new customer, tailspin, onboards through the emulated admin-consent
     page: the link and the redirect handler come from the tenants package,
     which proves the consent with a token and shows its roles
  7. tailspin removes the app: the next request Entra sees is refused,
     kvassert reports it once (TenantOffboarded), evicts its tokens, and
     later calls fail fast without a Key Vault sign
  8. the vault renews the certificate; one "cert roll" pass registers the new
     version through Microsoft Graph (proof of possession signed in Key Vault),
     waits for Entra to accept it, switches the source and retires the old key

No token is printed. With -o json the same facts come as one JSON document.`,
		Example: `  kvassert demo
  go run ./cmd/kvassert demo
  kvassert demo -o json`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return runDemo(cmd.Context(), a) },
	}
}

type demoTenant struct {
	Name      string    `json:"name"`
	TenantID  string    `json:"tenantId"`
	TokenTID  string    `json:"tokenTid,omitempty"`
	ExpiresOn time.Time `json:"expiresOn,omitzero"`
	Cached    bool      `json:"cached"`
	Calls     calls     `json:"calls"`
	Error     string    `json:"error,omitempty"`
	AADSTS    int       `json:"aadsts,omitempty"`
	Hint      string    `json:"hint,omitempty"`
	Elapsed   string    `json:"elapsed"`
}

type demoReport struct {
	Emulator    string           `json:"emulator"`
	Certificate record           `json:"certificate"`
	Cold        []demoTenant     `json:"cold"`
	Assertion   json.RawMessage  `json:"assertion"`
	Cached      []demoTenant     `json:"cached"`
	NoConsent   demoTenant       `json:"noConsent"`
	Onboarding  *demoOnboarding  `json:"onboarding,omitempty"`
	Offboarding *demoOffboarding `json:"offboarding,omitempty"`
	Rotation    *demoRotation    `json:"rotation,omitempty"`
	Totals      calls            `json:"totals"`
	Elapsed     string           `json:"elapsed"`
}

// demo is the state the chapters of the demo share: the emulators, the
// clients made in the set-up, and the report they fill.
type demo struct {
	a        *App
	w        io.Writer // the walkthrough (io.Discard with JSON output)
	st       style
	e        *kvasserttest.Emulator
	rep      demoReport
	names    map[string]string // tenant ID (lower case) to name
	chapter  int
	vaultURL string
	kvCred   azcore.TokenCredential
	opts     policy.ClientOptions

	// Set by the certificate chapter, used by the token chapters.
	capture   *capturingSource
	cred      *kvassert.Credential
	customers []string
	watch     *offboardWatch
}

// demoChapter is one numbered step of the walkthrough. To add one, write a
// method of demo that prints with section and kv, fills the report and
// returns an error only when kvassert did not behave as the demo shows;
// then list it in demoChapters.
type demoChapter func(d *demo, ctx context.Context) error

// demoChapters run in order, numbered from 1.
var demoChapters = []demoChapter{
	(*demo).createCertificate,
	(*demo).coldTokens,
	(*demo).showAssertion,
	(*demo).cachedTokens,
	(*demo).noConsent,
	(*demo).onboard,
	(*demo).offboard,
	(*demo).rotate,
}

func runDemo(ctx context.Context, a *App) error {
	start := time.Now()
	format, err := demoFormat(a)
	if err != nil {
		return err
	}
	jsonOut := format != ""
	d := &demo{a: a, w: a.Stdout, st: a.style()}
	if jsonOut {
		d.w = io.Discard
	}
	e, err := kvasserttest.New(scenario.Demo(), nil)
	if err != nil {
		return failure("starting the emulators", err)
	}
	defer e.Close()
	if err := d.setup(e); err != nil {
		return err
	}
	for _, ch := range demoChapters {
		if err := ch(d, ctx); err != nil {
			return err
		}
	}
	d.summary(start)
	if jsonOut {
		return a.emit(d.rep, format)
	}
	return nil
}

// demoFormat is the format of the demo's report, or "" for the walkthrough.
// The report is a nested document: json, jsonc, yaml and none print it;
// table and tsv apply only to values picked with --query.
func demoFormat(a *App) (string, error) {
	f := a.format("")
	switch {
	case a.query != nil && f == "":
		return formatJSON, nil
	case a.query != nil, f == formatJSON, f == formatJSONC, f == formatYAML, f == formatNone:
		return f, nil
	case a.outputGiven():
		return "", usageError(fmt.Sprintf("demo prints a walkthrough, or its report with -o json, jsonc, yaml or none: -o %s does not apply", f),
			"drop --output, use -o json, or pick values with --query (e.g. --query \"cold[].name\" -o tsv)")
	}
	return "", nil // KVASSERT_OUTPUT=table or tsv: the walkthrough
}

// section starts the next numbered chapter.
func (d *demo) section(title string) {
	d.chapter++
	d.heading(strconv.Itoa(d.chapter), title)
}

func (d *demo) heading(mark, title string) {
	fmt.Fprintf(d.w, "\n%s %s\n", d.st.cyan(mark), d.st.bold(title))
}

// kv prints one labelled value of a chapter.
func (d *demo) kv(k, v string) { fmt.Fprintf(d.w, "   %-12s %s\n", k, v) }

// setup prints the introduction and makes the Key Vault clients.
func (d *demo) setup(e *kvasserttest.Emulator) error {
	d.e = e
	d.rep.Emulator = e.URL()
	d.names = map[string]string{}
	for _, t := range e.Scenario().Tenants {
		d.names[strings.ToLower(t.ID)] = t.Name
	}
	w, st := d.w, d.st
	fmt.Fprintf(w, "%s  app-only Entra ID tokens in many tenants, signed by a Key Vault key that never leaves the vault\n", st.bold("kvassert demo"))
	fmt.Fprintln(w, st.dim("Everything runs in this process against emulated Entra ID and Key Vault: no Azure, no network."))
	fmt.Fprintf(w, "\n   %-12s %s\n", "emulators", e.URL()+st.dim(" (Entra ID, managed identity endpoint, Key Vault "+scenario.DemoVault+")"))
	d.kv("app", scenario.DemoAppClientID+st.dim(` "kvassert demo SaaS", multi-tenant, home tenant kvassert-saas`))
	d.kv("vault access", emuhook.DemoWorkloadClientID+st.dim(" (workload identity with keys/sign, keys/get, certificates/*; no secrets/get)"))

	d.opts = d.a.withDebug(e.ClientOptions())
	kvCred, err := e.ClientSecretCredential(emuhook.DemoWorkloadClientID)
	if err != nil {
		return failure("workload credential", err)
	}
	d.kvCred = kvCred
	d.vaultURL = e.VaultURL(scenario.DemoVault)
	return nil
}

// shortDuration formats a duration for people: "60m", "4.2ms", "15µs", "800ns".
func shortDuration(d time.Duration) string {
	switch {
	case d < 0:
		return "-" + shortDuration(-d)
	case d < time.Microsecond:
		return fmt.Sprintf("%dns", d.Nanoseconds())
	case d < time.Millisecond:
		return fmt.Sprintf("%dµs", d.Microseconds())
	case d < time.Second:
		return fmt.Sprintf("%.1fms", float64(d)/float64(time.Millisecond))
	case d < time.Minute && d%time.Second == 0:
		return fmt.Sprintf("%ds", int(d.Seconds()))
	case d < time.Minute:
		return fmt.Sprintf("%.1fs", d.Seconds())
	case d < 2*time.Hour:
		return fmt.Sprintf("%dm", int(d.Round(time.Minute).Minutes()))
	}
	return fmt.Sprintf("%dh%02dm", int(d.Hours()), int(d.Round(time.Minute).Minutes())%60)
}
