package proxy

import (
	"fmt"
	"strings"
	"testing"

	"github.com/kvassert/kvassert/internal/browsertest"
	"github.com/kvassert/kvassert/internal/emuhook"
	"github.com/kvassert/kvassert/kvasserttest/scenario"
)

// The page is tested in headless Chromium driven over the DevTools protocol
// (internal/browsertest): the test types into the form like a developer,
// and reads the page's DOM. It fails when CI requires the browser and none
// is installed; CI installs the Debian package chromium.

// cdp wraps a browsertest.Page with the form's helpers.
type cdp struct {
	*browsertest.Page
	t *testing.T
}

func startChromium(t *testing.T) *cdp {
	t.Helper()
	return &cdp{Page: browsertest.Start(t, nil), t: t}
}

func (c *cdp) typeInto(id, text string) { c.t.Helper(); c.TypeInto("#"+id, text) }

func (c *cdp) selectRoute(route string) {
	c.t.Helper()
	c.Eval(fmt.Sprintf("(() => { const s = document.getElementById('route'); s.value = %q; s.dispatchEvent(new Event('change')); return true; })()", route), nil)
}

func (c *cdp) submit() {
	c.t.Helper()
	c.Eval("document.getElementById('status').textContent = ''; document.getElementById('submit').click(); true", nil)
	c.WaitFor("document.getElementById('status').textContent.match(/^(Token received|Certificate read|Failed)/)")
}

func TestPageInChromium(t *testing.T) {
	t.Parallel()
	c := startChromium(t)
	env := newEnv(t, withDefault(scenario.DemoVault))

	// The URL printed at start carries the secret in the fragment; the
	// script takes it and removes it from the address bar.
	c.Navigate(env.url + "/#secret=" + env.s.Secret())
	c.WaitFor("document.readyState === 'complete' && document.body.dataset.ready === 'true'")
	var state struct {
		Secret, Hash string
		Hidden       bool
	}
	c.Eval(`({Secret: document.getElementById('secret').value, Hash: location.hash, Hidden: document.getElementById('keyUri').closest('.field').hidden})`, &state)
	if state.Secret != env.s.Secret() || state.Hash != "" || !state.Hidden {
		t.Fatalf("after load: secret taken=%v, hash %q, kv-key fields hidden=%v", state.Secret == env.s.Secret(), state.Hash, state.Hidden)
	}
	// The form starts with what the proxy was started for, read from
	// /api/config with the secret.
	c.WaitFor("document.body.dataset.config === 'done'")
	var prefill map[string]string
	c.Eval(`Object.fromEntries(['clientId', 'tenantId', 'keyVaultUri', 'certificateName'].map(id => [id, document.getElementById(id).value]))`, &prefill)
	want := map[string]string{"clientId": scenario.DemoAppClientID, "tenantId": scenario.DemoContosoTenant,
		"keyVaultUri": "https://" + scenario.DemoVault + ".vault.azure.net/", "certificateName": scenario.DemoCertificate}
	for id, v := range want {
		if prefill[id] != v {
			t.Errorf("field %s prefilled with %q, want %q", id, prefill[id], v)
		}
	}
	// The prefilled form gets a token as it is.
	c.submit()
	if s := c.Text("status"); s != "Token received" {
		t.Fatalf("prefilled form: status %q; problem: %s %s", s, c.Text("problem-title"), c.Text("problem-detail"))
	}

	// The endpoint list is on the page.
	var endpoints []string
	c.Eval(`Array.from(document.querySelectorAll('tbody tr td:nth-child(2)')).map(td => td.textContent)`, &endpoints)
	if len(endpoints) < 10 || !strings.Contains(strings.Join(endpoints, " "), "/msi/{tenant}/{clientId}/kv/{vault}/{certificate}") {
		t.Errorf("endpoints listed: %v", endpoints)
	}

	// Fill the form and get a token.
	c.selectRoute("kv-certificate")
	c.typeInto("clientId", scenario.DemoAppClientID)
	c.typeInto("tenantId", scenario.DemoContosoTenant)
	c.typeInto("scopes", graph)
	c.typeInto("keyVaultUri", "https://"+scenario.DemoVault+".vault.azure.net/")
	c.typeInto("certificateName", scenario.DemoCertificate)
	c.submit()
	if s := c.Text("status"); s != "Token received" {
		t.Fatalf("status %q; problem: %s %s", s, c.Text("problem-title"), c.Text("problem-detail"))
	}
	// The copy button copies the whole token (clipboard stubbed: headless
	// Chromium has no clipboard to read back).
	var full string
	c.Eval(`(async () => {
		let copied = '';
		navigator.clipboard.writeText = (t) => { copied = t; return Promise.resolve(); };
		document.getElementById('copy').click();
		for (let i = 0; i < 100 && !copied; i++) { await new Promise(r => setTimeout(r, 10)); }
		return copied;
	})()`, &full)
	env.sawToken(full)
	c.WaitFor("document.getElementById('copy').textContent === 'Copied'")
	cl := claims(t, full)
	if cl["tid"] != scenario.DemoContosoTenant || cl["appid"] != scenario.DemoAppClientID {
		t.Errorf("copied token: tid %v appid %v", cl["tid"], cl["appid"])
	}
	shown := c.Text("token-display")
	if shown != full[:24]+"…"+full[len(full)-12:] {
		t.Errorf("token shown as %q, want its first 24 and last 12 characters", shown)
	}
	var html string
	c.Eval("document.documentElement.outerHTML", &html)
	if strings.Contains(html, full) || strings.Contains(html, full[len(full)-40:]) {
		t.Error("the page's DOM holds the whole token")
	}
	if got := c.Text("token-tenant"); got != scenario.DemoContosoTenant {
		t.Errorf("tenant shown %q", got)
	}
	var claimText string
	c.Eval("document.getElementById('claims').textContent", &claimText)
	if !strings.Contains(claimText, scenario.DemoAppClientID) {
		t.Errorf("claims shown: %q", claimText)
	}

	// Field-level errors land next to their fields.
	c.typeInto("clientId", "not-a-guid")
	c.submit()
	var invalid string
	c.Eval("document.getElementById('clientId').getAttribute('aria-invalid')", &invalid)
	if s := c.Text("status"); s != "Failed (HTTP 400)" || c.Text("err-clientId") == "" || invalid != "true" {
		t.Errorf("invalid client ID: status %q, field error %q, aria-invalid %q", s, c.Text("err-clientId"), invalid)
	}
	c.typeInto("clientId", scenario.DemoAppClientID)

	// kv-key-info, then its result feeds kv-key.
	c.selectRoute("kv-key-info")
	c.submit()
	if s := c.Text("status"); s != "Certificate read" {
		t.Fatalf("kv-key-info: status %q: %s", s, c.Text("problem-detail"))
	}
	c.Eval("document.getElementById('use-key').click(); true", nil)
	var route string
	c.Eval("document.getElementById('route').value", &route)
	if route != "kv-key" {
		t.Fatalf("route after 'Use with kv-key': %q", route)
	}
	c.typeInto("tenantId", emuhook.DemoFabrikamTenant)
	c.submit()
	if s := c.Text("status"); s != "Token received" || c.Text("token-tenant") != emuhook.DemoFabrikamTenant {
		t.Errorf("kv-key: status %q tenant %q: %s", s, c.Text("token-tenant"), c.Text("problem-detail"))
	}

	// A wrong secret is reported.
	c.typeInto("secret", "wrong")
	c.submit()
	if s := c.Text("status"); s != "Failed (HTTP 401)" || c.Text("problem-title") != "Missing or wrong secret" {
		t.Errorf("wrong secret: status %q, problem %q", s, c.Text("problem-title"))
	}
	// Without a secret, nothing is sent.
	c.typeInto("secret", "")
	c.submit()
	if c.Text("problem-title") != "No secret" {
		t.Errorf("no secret: problem %q", c.Text("problem-title"))
	}

	if errs := c.Errors(); len(errs) > 0 {
		t.Errorf("page errors (script exceptions, CSP violations): %v", errs)
	}

	// The Content-Security-Policy is in force: an injected inline script
	// does not run.
	var ran bool
	c.Eval(`(() => { const s = document.createElement('script'); s.textContent = 'window.injected = true'; document.body.append(s); return window.injected === true; })()`, &ran)
	if ran {
		t.Error("an inline script ran: no Content-Security-Policy")
	}
}
