package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azcertificates"

	"github.com/kvassert/kvassert"
	"github.com/kvassert/kvassert/internal/emuhook"
	"github.com/kvassert/kvassert/internal/jwtassert"
	"github.com/kvassert/kvassert/kvasserttest"
	"github.com/kvassert/kvassert/kvasserttest/scenario"
)

// The chapters of "kvassert demo", in the order of demoChapters.

// createCertificate creates the certificate in the vault, as "kvassert cert
// create" does, registers it on the app and makes the credential the next
// chapters use.
func (d *demo) createCertificate(ctx context.Context) error {
	certClient, err := azcertificates.NewClient(d.vaultURL, d.kvCred, &azcertificates.ClientOptions{ClientOptions: d.opts})
	if err != nil {
		return failure("", err)
	}
	st := d.st
	d.section("Create a certificate whose key cannot leave the vault (as 'kvassert cert create' does)")
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
	x5t, x5tS256 := jwtassert.Thumbprints(vc.cert)
	d.kv("vault", d.vaultURL)
	d.kv("certificate", vc.name+st.dim(" version "+vc.version))
	d.kv("policy", "RSA 2048, exportable=false, key usage digitalSignature, issuer Self, lifetime action EmailContacts")
	d.kv("status", strings.Join(statuses, " → ")+st.dim(fmt.Sprintf(" (%s)", createTook.Round(time.Millisecond))))
	d.kv("thumbprint", thumbprintHex(vc.cert)+st.dim(" (SHA-1, as the portal shows it)"))
	d.kv("x5t#S256", x5tS256)
	d.kv("kid", idString(vc.bundle.KID))
	if err := d.e.RegisterCertificate(scenario.DemoAppClientID, vc.cert); err != nil {
		return failure("registering the certificate", err)
	}
	fmt.Fprintf(d.w, "   %s registered on the app registration %s\n", st.green("✓"), st.dim("(what uploading the .cer in the portal does)"))
	d.rep.Certificate = record{{"name", vc.name}, {"version", vc.version}, {"thumbprint", thumbprintHex(vc.cert)}, {"x5t", x5t}, {"x5t#S256", x5tS256}, {"kid", idString(vc.bundle.KID)}, {"exportable", false}}

	src, err := kvassert.NewKeyVaultCertificateSource(d.vaultURL, demoCertificate, d.kvCred, &kvassert.KeyVaultCertificateOptions{
		ClientOptions: d.opts, Logger: d.a.Logger, // real vault URL, routed to the emulator
	})
	if err != nil {
		return failure("", err)
	}
	d.capture = &capturingSource{Source: src}
	d.customers = []string{scenario.DemoContosoTenant, emuhook.DemoFabrikamTenant, emuhook.DemoNorthwindTenant}
	d.watch = newOffboardWatch()
	d.cred, err = kvassert.NewCredential(scenario.DemoHomeTenant, scenario.DemoAppClientID, d.capture, &kvassert.CredentialOptions{
		ClientOptions:              d.opts,
		AdditionallyAllowedTenants: append(append([]string{}, d.customers...), emuhook.DemoWingtipTenant, emuhook.DemoTailspinTenant),
		Logger:                     slog.New(captureHandler{d.a.Logger.Handler(), d.watch}),
		TenantOffboarded:           d.watch.offboarded,
	})
	if err != nil {
		return failure("", err)
	}
	return nil
}

// token gets a Graph token in tenant and counts the calls it cost.
func (d *demo) token(ctx context.Context, tenant string, cached bool) (demoTenant, error) {
	before := d.e.Counts()
	t0 := time.Now()
	tok, err := d.cred.GetToken(ctx, policy.TokenRequestOptions{Scopes: []string{defaultScope}, TenantID: tenant})
	dt := demoTenant{Name: d.names[strings.ToLower(tenant)], TenantID: tenant, Cached: cached, Elapsed: shortDuration(time.Since(t0))}
	dt.Calls = diff(d.e.Counts(), before)
	if err != nil {
		return dt, err
	}
	dt.TokenTID, _ = jwtClaims(tok.Token)["tid"].(string)
	dt.ExpiresOn = tok.ExpiresOn
	return dt, nil
}

// coldTokens gets tokens in the three customer tenants: one keys/sign each.
func (d *demo) coldTokens(ctx context.Context) error {
	w, st := d.w, d.st
	d.section("Get Graph tokens in three customer tenants through the library")
	for _, l := range []string{
		`src, _ := kvassert.NewKeyVaultCertificateSource(vaultURL, "` + demoCertificate + `", azCred, nil)`,
		`cred, _ := kvassert.NewCredential(homeTenant, appID, src, &kvassert.CredentialOptions{AdditionallyAllowedTenants: tenants})`,
		`tok, _ := cred.GetToken(ctx, policy.TokenRequestOptions{Scopes: graph, TenantID: tenant})`,
	} {
		fmt.Fprintln(w, "   "+st.dim(l))
	}
	for i, t := range d.customers {
		dt, err := d.token(ctx, t, false)
		if err != nil {
			return failure("token for "+d.names[t], err)
		}
		d.rep.Cold = append(d.rep.Cold, dt)
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
	return nil
}

// showAssertion decodes the first client assertion (never its signature).
func (d *demo) showAssertion(context.Context) error {
	w, st := d.w, d.st
	d.section("The client assertion kvassert built for " + d.names[d.customers[0]] + " (decoded; its signature came from keys/sign and is not shown)")
	tok, err := jwtassert.Parse(d.capture.captured())
	if err != nil {
		return failure("decoding the captured assertion", err)
	}
	d.rep.Assertion = json.RawMessage(fmt.Sprintf(`{"header":%s,"claims":%s}`, compactJSON(tok.RawHeader), compactJSON(tok.RawClaims)))
	fmt.Fprintf(w, "   %-8s %s\n", "header", string(compactJSON(tok.RawHeader)))
	fields, _ := orderedFields(tok.RawClaims)
	for i, f := range fields {
		label := ""
		if i == 0 {
			label = "claims"
		}
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
		fmt.Fprintf(w, "   %-8s %-4s %s %s\n", label, f.key, jsonText(f.val), st.dim(note))
	}
	return nil
}

// cachedTokens asks for the same tokens again: no call at all.
func (d *demo) cachedTokens(ctx context.Context) error {
	d.section("The same three tenants again: served from the cache")
	var cachedTotal int64
	for _, t := range d.customers {
		dt, err := d.token(ctx, t, true)
		if err != nil {
			return failure("cached token for "+d.names[t], err)
		}
		d.rep.Cached = append(d.rep.Cached, dt)
		cachedTotal += dt.Calls.total()
		fmt.Fprintf(d.w, "   %s %-10s cached · %d calls %s\n", d.st.green("✓"), dt.Name, dt.Calls.total(), d.st.dim("· "+dt.Elapsed))
	}
	if cachedTotal != 0 {
		return &exitError{code: exitFailure, msg: fmt.Sprintf("the cached round made %d calls, expected none", cachedTotal)}
	}
	return nil
}

// noConsent asks in a tenant without admin consent: the reason and the fix.
func (d *demo) noConsent(ctx context.Context) error {
	w, st := d.w, d.st
	d.section("wingtip, where no administrator has consented to the app")
	dt, err := d.token(ctx, emuhook.DemoWingtipTenant, false)
	var ae *kvassert.AuthError
	switch {
	case err == nil:
		return &exitError{code: exitFailure, msg: "wingtip gave a token, but the app is not consented there"}
	case !errors.As(err, &ae):
		return failure("wingtip", err)
	}
	dt.Error, dt.AADSTS, dt.Hint = firstLine(ae.Description), ae.Code, ae.Hint
	d.rep.NoConsent = dt
	fmt.Fprintf(w, "   %s %s\n", st.red("✗"), firstSentence(firstLine(ae.Description)))
	fmt.Fprintf(w, "     %s %s\n", st.yellow("hint:"), ae.Hint)
	fmt.Fprintf(w, "     %s %s   %s %s\n", st.dim("Key Vault:"), dt.Calls.line(true), st.dim("Entra ID:"), dt.Calls.line(false))
	return nil
}

// summary prints the totals (not a numbered chapter).
func (d *demo) summary(start time.Time) {
	w, st := d.w, d.st
	d.rep.Totals = diff(d.e.Counts(), nil)
	d.rep.Elapsed = shortDuration(time.Since(start))
	d.heading("✓", "Summary")
	fmt.Fprintf(w, "   %d tenants, %d cold tokens: %d keys/sign; %d cached tokens: 0 calls; 1 refused tenant, with the reason and the fix\n",
		len(d.customers), len(d.rep.Cold), len(d.rep.Cold), len(d.rep.Cached))
	if on := d.rep.Onboarding; on != nil && d.rep.Offboarding != nil {
		fmt.Fprintf(w, "   1 customer onboarded through the consent page (roles %s) and offboarded: reported once, then refused with no call\n",
			strings.Join(on.Granted, ", "))
	}
	if ro := d.rep.Rotation; ro != nil {
		fmt.Fprintf(w, "   1 rotation with no human step: version %s registered and active, version %s retired (%s)\n",
			short8(ro.NewVersion), short8(ro.OldVersion), ro.Graph.graphLine())
	}
	fmt.Fprintf(w, "   %s %s\n", st.dim("Key Vault totals:"), d.rep.Totals.line(true))
	fmt.Fprintf(w, "   %s %s\n", st.dim("Entra ID totals: "), d.rep.Totals.line(false))
	fmt.Fprintf(w, "   The private key never left the vault: it was only asked to sign (secrets/get: %d).\n", d.rep.Totals[kvasserttest.Op("secrets/get")])
	fmt.Fprintf(w, "\nDone in %s. Next: run %s and follow what it prints, or see %s.\n", d.rep.Elapsed, st.bold("kvassert emulate"), st.bold("kvassert token --help"))
}
