package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azcertificates"
	"github.com/spf13/cobra"

	"github.com/kvassert/kvassert"
	"github.com/kvassert/kvassert/assertion"
	"github.com/kvassert/kvassert/keyvault"
	"github.com/kvassert/kvassert/kvasserttest"
	"github.com/kvassert/kvassert/kvasserttest/scenario"
)

// demoCertificate is the certificate the demo creates.
const demoCertificate = "saas-app-demo"

func newDemoCmd(a *App) *cobra.Command {
	return &cobra.Command{
		Use:   "demo",
		Short: "Watch kvassert get tokens in three tenants against in-process emulators (no Azure needed)",
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

No token is printed. With -o json the same facts come as one JSON document.`,
		Example: `  kvassert demo
  go run ./cmd/kvassert demo
  kvassert demo -o json`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return runDemo(cmd.Context(), a) },
	}
}

// capturingSource keeps the first assertion its Source makes, to show it
// decoded.
type capturingSource struct {
	kvassert.Source
	mu    sync.Mutex
	first string
}

// Assertion implements kvassert.Source.
func (c *capturingSource) Assertion(ctx context.Context, clientID, tokenEndpoint string) (string, error) {
	s, err := c.Source.Assertion(ctx, clientID, tokenEndpoint)
	if err == nil {
		c.mu.Lock()
		if c.first == "" {
			c.first = s
		}
		c.mu.Unlock()
	}
	return s, err
}

// Invalidate forwards to the wrapped source (certificate rotation).
func (c *capturingSource) Invalidate() {
	if inv, ok := c.Source.(kvassert.Invalidator); ok {
		inv.Invalidate()
	}
}

func (c *capturingSource) captured() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.first
}

// demoOps are the counted operations the demo reports, in display order.
var demoOps = []struct {
	op    kvasserttest.Op
	label string
	vault bool
}{
	{kvasserttest.OpKeySign, "keys/sign", true},
	{kvasserttest.OpCertificateGet, "certificates/get", true},
	{kvasserttest.OpChallenge, "auth challenge", true},
	{kvasserttest.OpSecretGet, "secrets/get", true},
	{kvasserttest.OpToken, "token", false},
	{kvasserttest.OpDiscovery, "discovery", false},
	{kvasserttest.OpInstance, "instance discovery", false},
}

// calls is a difference of the emulator's counters.
type calls map[kvasserttest.Op]int64

func diff(after, before map[kvasserttest.Op]int64) calls {
	d := calls{}
	for _, o := range demoOps {
		if n := after[o.op] - before[o.op]; n != 0 {
			d[o.op] = n
		}
	}
	return d
}

func (c calls) total() int64 {
	var n int64
	for _, v := range c {
		n += v
	}
	return n
}

// line renders the calls to one service ("keys/sign 1 · certificates/get 1").
func (c calls) line(vault bool) string {
	var parts []string
	for _, o := range demoOps {
		if o.vault == vault && c[o.op] != 0 {
			parts = append(parts, fmt.Sprintf("%s %d", o.label, c[o.op]))
		}
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, " · ")
}

// MarshalJSON writes the counters by operation name.
func (c calls) MarshalJSON() ([]byte, error) {
	m := map[string]int64{}
	for k, v := range c {
		m[string(k)] = v
	}
	return json.Marshal(m)
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
	Emulator    string          `json:"emulator"`
	Certificate record          `json:"certificate"`
	Cold        []demoTenant    `json:"cold"`
	Assertion   json.RawMessage `json:"assertion"`
	Cached      []demoTenant    `json:"cached"`
	NoConsent   demoTenant      `json:"noConsent"`
	Totals      calls           `json:"totals"`
	Elapsed     string          `json:"elapsed"`
}

func runDemo(ctx context.Context, a *App) error {
	start := time.Now()
	jsonOut := a.format("") == "json" || a.query != nil
	if a.Output != "" && !jsonOut {
		return usageError("demo prints a walkthrough, or JSON with -o json", "drop --output, or use -o json")
	}
	w := a.Stdout
	if jsonOut {
		w = io.Discard
	}
	st := a.style()
	rep := demoReport{}

	e, err := kvasserttest.New(scenario.Demo())
	if err != nil {
		return failure("starting the emulators", err)
	}
	defer e.Close()
	s := e.Scenario()
	rep.Emulator = e.URL()
	names := map[string]string{}
	for _, t := range s.Tenants {
		names[strings.ToLower(t.ID)] = t.Name
	}

	section := func(n, title string) {
		fmt.Fprintf(w, "\n%s %s\n", st.cyan(n), st.bold(title))
	}
	kv := func(k, v string) { fmt.Fprintf(w, "   %-12s %s\n", k, v) }

	fmt.Fprintf(w, "%s  app-only Entra ID tokens in many tenants, signed by a Key Vault key that never leaves the vault\n", st.bold("kvassert demo"))
	fmt.Fprintln(w, st.dim("Everything runs in this process against emulated Entra ID and Key Vault: no Azure, no network."))
	fmt.Fprintf(w, "\n   %-12s %s\n", "emulators", e.URL()+st.dim(" (Entra ID, managed identity endpoint, Key Vault "+scenario.DemoVault+")"))
	kv("app", scenario.DemoAppClientID+st.dim(` "kvassert demo SaaS", multi-tenant, home tenant kvassert-saas`))
	kv("vault access", scenario.DemoWorkloadClientID+st.dim(" (workload identity with keys/sign, keys/get, certificates/*; no secrets/get)"))

	opts := e.ClientOptions()
	kvCred, err := e.ClientSecretCredential(scenario.DemoWorkloadClientID)
	if err != nil {
		return failure("workload credential", err)
	}
	vaultURL := e.VaultURL(scenario.DemoVault)
	certClient, err := azcertificates.NewClient(vaultURL, kvCred, &azcertificates.ClientOptions{ClientOptions: opts})
	if err != nil {
		return failure("", err)
	}

	// 1. Create and register the certificate.
	section("1", "Create a certificate whose key cannot leave the vault (as 'kvassert cert create' does)")
	spec := certSpec{Subject: "CN=kvassert demo SaaS", ValidityMonths: 12, KeySize: 2048}
	var statuses []string
	var createTook time.Duration
	vc, err := createCertificate(ctx, certClient, demoCertificate, spec, func(status string, elapsed time.Duration) {
		if len(statuses) == 0 || statuses[len(statuses)-1] != status {
			statuses = append(statuses, status)
		}
		createTook = elapsed
	})
	if err != nil {
		return err
	}
	x5t, x5tS256 := assertion.Thumbprints(vc.cert)
	kv("vault", vaultURL)
	kv("certificate", vc.name+st.dim(" version "+vc.version))
	kv("policy", "RSA 2048, exportable=false, key usage digitalSignature, issuer Self, lifetime action EmailContacts")
	kv("status", strings.Join(statuses, " → ")+st.dim(fmt.Sprintf(" (%s)", createTook.Round(time.Millisecond))))
	kv("thumbprint", thumbprintHex(vc.cert)+st.dim(" (SHA-1, as the portal shows it)"))
	kv("x5t#S256", x5tS256)
	kv("kid", idString(vc.bundle.KID))
	if err := e.RegisterCertificate(scenario.DemoAppClientID, vc.cert); err != nil {
		return failure("registering the certificate", err)
	}
	fmt.Fprintf(w, "   %s registered on the app registration %s\n", st.green("✓"), st.dim("(what uploading the .cer in the portal does)"))
	rep.Certificate = record{{"name", vc.name}, {"version", vc.version}, {"thumbprint", thumbprintHex(vc.cert)}, {"x5t", x5t}, {"x5t#S256", x5tS256}, {"kid", idString(vc.bundle.KID)}, {"exportable", false}}

	// 2. Tokens in three tenants.
	src, err := kvassert.NewKeyVaultCertificateSource(vaultURL, demoCertificate, kvCred, &kvassert.KeyVaultCertificateOptions{
		CertificateSourceOptions: keyvault.CertificateSourceOptions{Options: keyvault.Options{ClientOptions: opts}, Logger: a.Logger}, // real vault URL, routed to the emulator
	})
	if err != nil {
		return failure("", err)
	}
	capture := &capturingSource{Source: src}
	customers := []string{scenario.DemoContosoTenant, scenario.DemoFabrikamTenant, scenario.DemoNorthwindTenant}
	cred, err := kvassert.NewCredential(scenario.DemoHomeTenant, scenario.DemoAppClientID, capture, &kvassert.CredentialOptions{
		ClientOptions:              opts,
		AdditionallyAllowedTenants: append(append([]string{}, customers...), scenario.DemoWingtipTenant),
		Logger:                     a.Logger,
	})
	if err != nil {
		return failure("", err)
	}
	section("2", "Get Graph tokens in three customer tenants through the library")
	for _, l := range []string{
		`src, _ := kvassert.NewKeyVaultCertificateSource(vaultURL, "` + demoCertificate + `", azCred, nil)`,
		`cred, _ := kvassert.NewCredential(homeTenant, appID, src, &kvassert.CredentialOptions{AdditionallyAllowedTenants: tenants})`,
		`tok, _ := cred.GetToken(ctx, policy.TokenRequestOptions{Scopes: graph, TenantID: tenant})`,
	} {
		fmt.Fprintln(w, "   "+st.dim(l))
	}
	scopes := []string{defaultScope}
	get := func(tenant string, cached bool) (demoTenant, error) {
		before := e.Counts()
		t0 := time.Now()
		tok, err := cred.GetToken(ctx, policy.TokenRequestOptions{Scopes: scopes, TenantID: tenant})
		dt := demoTenant{Name: names[strings.ToLower(tenant)], TenantID: tenant, Cached: cached, Elapsed: shortDuration(time.Since(t0))}
		dt.Calls = diff(e.Counts(), before)
		if err != nil {
			return dt, err
		}
		dt.TokenTID, _ = jwtClaims(tok.Token)["tid"].(string)
		dt.ExpiresOn = tok.ExpiresOn
		return dt, nil
	}
	for i, t := range customers {
		dt, err := get(t, false)
		if err != nil {
			return failure("token for "+names[t], err)
		}
		rep.Cold = append(rep.Cold, dt)
		mark := st.green("✓")
		if !strings.EqualFold(dt.TokenTID, t) {
			mark = st.red("✗ tid mismatch")
		}
		fmt.Fprintf(w, "   %s %-10s tid %s  expires %s %s\n", mark, dt.Name, dt.TokenTID,
			dt.ExpiresOn.Local().Format("15:04:05"), st.dim(fmt.Sprintf("(in %s) · %s", shortDuration(time.Until(dt.ExpiresOn)), dt.Elapsed)))
		fmt.Fprintf(w, "     %s %s   %s %s\n", st.dim("Key Vault:"), dt.Calls.line(true), st.dim("Entra ID:"), dt.Calls.line(false))
		if i == 0 {
			fmt.Fprintln(w, st.dim("     (first tenant only: the source reads the certificate once, and its two Key Vault clients each answer one auth challenge)"))
		}
		if n := dt.Calls[kvasserttest.OpKeySign]; n != 1 {
			return &exitError{code: exitFailure, msg: fmt.Sprintf("a cold token for %s cost %d keys/sign, expected exactly 1", dt.Name, n)}
		}
	}

	// 3. The assertion.
	section("3", "The client assertion kvassert built for "+names[customers[0]]+" (decoded; its signature came from keys/sign and is not shown)")
	tok, err := assertion.Parse(capture.captured())
	if err != nil {
		return failure("decoding the captured assertion", err)
	}
	rep.Assertion = json.RawMessage(fmt.Sprintf(`{"header":%s,"claims":%s}`, compactJSON(tok.RawHeader), compactJSON(tok.RawClaims)))
	fmt.Fprintf(w, "   %-8s %s\n", "header", string(compactJSON(tok.RawHeader)))
	fields, _ := orderedFields(tok.RawClaims)
	for i, f := range fields {
		label := ""
		if i == 0 {
			label = "claims"
		}
		v := jsonText(f.val)
		note := ""
		switch f.key {
		case "aud":
			note = "the token endpoint of the tenant"
		case "iss", "sub":
			note = "the app's client ID"
		case "jti":
			note = "fresh for every assertion"
		case "nbf", "iat", "exp":
			var n int64
			if json.Unmarshal(f.val, &n) == nil {
				note = describeTime(time.Unix(n, 0), time.Now())
			}
		}
		fmt.Fprintf(w, "   %-8s %-4s %s %s\n", label, f.key, v, st.dim(note))
	}

	// 4. Cached round.
	section("4", "The same three tenants again: served from the cache")
	var cachedTotal int64
	for _, t := range customers {
		dt, err := get(t, true)
		if err != nil {
			return failure("cached token for "+names[t], err)
		}
		rep.Cached = append(rep.Cached, dt)
		cachedTotal += dt.Calls.total()
		fmt.Fprintf(w, "   %s %-10s cached · %d calls %s\n", st.green("✓"), dt.Name, dt.Calls.total(), st.dim("· "+dt.Elapsed))
	}
	if cachedTotal != 0 {
		return &exitError{code: exitFailure, msg: fmt.Sprintf("the cached round made %d calls, expected none", cachedTotal)}
	}

	// 5. No consent.
	section("5", "wingtip, where no administrator has consented to the app")
	dt, err := get(scenario.DemoWingtipTenant, false)
	var ae *kvassert.AuthError
	switch {
	case err == nil:
		return &exitError{code: exitFailure, msg: "wingtip gave a token, but the app is not consented there"}
	case !errors.As(err, &ae):
		return failure("wingtip", err)
	}
	dt.Error, dt.AADSTS, dt.Hint = firstLine(ae.Description), ae.Code, ae.Hint
	rep.NoConsent = dt
	fmt.Fprintf(w, "   %s %s\n", st.red("✗"), firstSentence(firstLine(ae.Description)))
	fmt.Fprintf(w, "     %s %s\n", st.yellow("hint:"), ae.Hint)
	fmt.Fprintf(w, "     %s %s   %s %s\n", st.dim("Key Vault:"), dt.Calls.line(true), st.dim("Entra ID:"), dt.Calls.line(false))

	// Summary.
	rep.Totals = diff(e.Counts(), nil)
	rep.Elapsed = shortDuration(time.Since(start))
	section("✓", "Summary")
	fmt.Fprintf(w, "   %d tenants, %d cold tokens: %d keys/sign; %d cached tokens: 0 calls; 1 refused tenant, with the reason and the fix\n",
		len(customers), len(rep.Cold), len(rep.Cold), len(rep.Cached))
	fmt.Fprintf(w, "   %s %s\n", st.dim("Key Vault totals:"), rep.Totals.line(true))
	fmt.Fprintf(w, "   %s %s\n", st.dim("Entra ID totals: "), rep.Totals.line(false))
	fmt.Fprintf(w, "   The private key never left the vault: it was only asked to sign (secrets/get: %d).\n", rep.Totals[kvasserttest.OpSecretGet])
	fmt.Fprintf(w, "\nDone in %s. Next: run %s and follow what it prints, or see %s.\n", rep.Elapsed, st.bold("kvassert emulate"), st.bold("kvassert token --help"))
	if jsonOut {
		return a.printJSON(rep)
	}
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
