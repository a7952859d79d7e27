package proxy

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

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
	if len(endpoints) < 10 || !strings.Contains(strings.Join(endpoints, " "), env.url+"/msi/"+scenario.DemoContosoTenant+"/"+scenario.DemoAppClientID+"/kv/"+scenario.DemoVault+"/"+scenario.DemoCertificate) {
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

// brokenIdentifiers lists the identifiers (runs of letters, digits, '_',
// '.' and '-') of the page's code, pre and dd#token-tenant elements that
// the layout splits over two lines. Only elements marked .long (a token, a
// URL) may break anywhere; hidden ones are skipped.
const brokenIdentifiers = `(() => {
	const bad = [];
	document.querySelectorAll('code, pre, #token-tenant').forEach((el) => {
		if (el.closest('.long') || el.getClientRects().length === 0) return;
		const walker = document.createTreeWalker(el, NodeFilter.SHOW_TEXT);
		for (let n = walker.nextNode(); n; n = walker.nextNode()) {
			for (const m of n.data.matchAll(/[A-Za-z0-9_.-]{2,}/g)) {
				const r = document.createRange();
				r.setStart(n, m.index);
				r.setEnd(n, m.index + m[0].length);
				const tops = new Set(Array.from(r.getClientRects()).filter((x) => x.width > 0).map((x) => Math.round(x.top)));
				if (tops.size > 1) bad.push(m[0]);
			}
		}
	});
	return bad;
})()`

// TestPageLayoutAndConsentLink: at a desktop (1280 px) and a phone (390 px)
// width no identifier is split mid-word and the page does not overflow
// sideways; the admin-consent URL of an AADSTS700016 answer is a link the
// proxy built, which a click opens; the endpoints show this proxy's real
// URLs and the lines kvassert proxy printed.
func TestPageLayoutAndConsentLink(t *testing.T) {
	t.Parallel()
	env := newEnv(t, withDefault(scenario.DemoVault))
	emu := strings.TrimPrefix(env.e.URL(), "https://")
	c := &cdp{t: t, Page: browsertest.Start(t, &browsertest.Options{Args: []string{
		// The consent link's host goes to the emulator's TLS listener.
		"--host-resolver-rules=MAP login.microsoftonline.com " + emu, "--ignore-certificate-errors",
	}})}
	c.Navigate(env.url + "/#secret=" + env.s.Secret())
	c.WaitFor("document.body.dataset.ready === 'true' && document.body.dataset.config === 'done'")

	// The endpoints: real URLs with the port, the configured app in place
	// of the placeholders, and the printed lines.
	var urls []string
	c.Eval(`Array.from(document.querySelectorAll('tbody code[data-url]')).map((el) => el.textContent)`, &urls)
	wantKV := env.url + "/msi/" + scenario.DemoContosoTenant + "/" + scenario.DemoAppClientID + "/kv/" + scenario.DemoVault + "/" + scenario.DemoCertificate
	if !slices.Contains(urls, wantKV) || !slices.Contains(urls, env.url+"/api/token/kv-certificate") || !slices.Contains(urls, env.url+"/healthz") {
		t.Errorf("endpoint URLs: %v", urls)
	}
	var lines string
	c.Eval(`document.getElementById('lines').hidden ? '' : document.getElementById('lines-list').textContent`, &lines)
	header, err := env.s.AppServiceEnv(env.url, Target{Tenant: scenario.DemoContosoTenant, ClientID: scenario.DemoAppClientID, Vault: scenario.DemoVault, Certificate: scenario.DemoCertificate})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"export " + header[0], "export " + header[1], "curl -sS " + env.url + "/api/token/kv-certificate", "export MSI_ENDPOINT=" + env.url + "/cloudshell/"} {
		if !strings.Contains(lines, want) {
			t.Errorf("the ready-to-paste lines lack %q:\n%s", want, lines)
		}
	}

	// A token (the long token display), then a tenant without consent.
	c.submit()
	if s := c.Text("status"); s != "Token received" {
		t.Fatalf("status %q: %s", s, c.Text("problem-detail"))
	}
	c.typeInto("tenantId", emuhook.DemoWingtipTenant)
	c.submit()
	if s := c.Text("status"); s != "Failed (HTTP 400)" {
		t.Fatalf("wingtip: status %q: %s", s, c.Text("problem-detail"))
	}
	wantURL := "https://login.microsoftonline.com/" + emuhook.DemoWingtipTenant + "/adminconsent?client_id=" + scenario.DemoAppClientID
	var link struct{ Tag, Href, Rel, Text string }
	c.Eval(`(() => { const a = document.querySelector('#problem-consent:not([hidden]) #consent-link'); return a ? {Tag: a.tagName, Href: a.href, Rel: a.rel, Text: a.textContent} : {}; })()`, &link)
	if link.Tag != "A" || link.Href != wantURL || link.Text != wantURL || !strings.Contains(link.Rel, "noopener") {
		t.Fatalf("consent link %+v, want an <a> to %s with rel=noopener", link, wantURL)
	}
	c.Eval(`document.getElementById('result').hidden = false; true`, nil) // the token too, for the layout check

	for _, width := range []int{1280, 390} {
		c.SetSize(width, 900)
		var broken []string
		c.Eval(brokenIdentifiers, &broken)
		if len(broken) > 0 {
			t.Errorf("at %d px, identifiers split over two lines: %q", width, broken)
		}
		var overflow struct{ Scroll, Inner int }
		c.Eval(`({Scroll: document.documentElement.scrollWidth, Inner: window.innerWidth})`, &overflow)
		if overflow.Scroll > overflow.Inner {
			var wide []string
			c.Eval(`Array.from(document.querySelectorAll('body *')).filter((el) => el.getBoundingClientRect().right > window.innerWidth + 0.5 && !el.closest('.scroll, pre')).map((el) => el.tagName + '#' + el.id + '.' + el.className + ' ' + Math.round(el.getBoundingClientRect().right))`, &wide)
			t.Errorf("at %d px the page is %d px wide: it scrolls sideways (%v)", width, overflow.Scroll, wide)
		}
	}

	// The link is clickable where it is shown (at phone width), and opens
	// the consent URL (in a new tab).
	c.Call("Target.setDiscoverTargets", map[string]any{"discover": true})
	c.Click("#consent-link")
	deadline := time.Now().Add(browsertest.Timeout)
	for {
		var targets struct {
			TargetInfos []struct{ Type, URL string } `json:"targetInfos"`
		}
		if err := json.Unmarshal(c.Call("Target.getTargets", nil), &targets); err != nil {
			t.Fatal(err)
		}
		if slices.ContainsFunc(targets.TargetInfos, func(ti struct{ Type, URL string }) bool { return ti.Type == "page" && ti.URL == wantURL }) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("clicking the consent link opened no page at %s: %+v", wantURL, targets.TargetInfos)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if errs := c.Errors(); len(errs) > 0 {
		t.Errorf("page errors: %v", errs)
	}
}

// A consent URL the proxy did not build gets no link: the page checks the
// scheme, host, path and client_id of what it is given.
func TestPageConsentLinkOnlyForLoginHosts(t *testing.T) {
	t.Parallel()
	env := newEnv(t)
	c := startChromium(t)
	c.Navigate(env.url + "/")
	c.WaitFor("document.body.dataset.ready === 'true'")
	good := "https://login.microsoftonline.com/contoso.onmicrosoft.com/adminconsent?client_id=" + scenario.DemoAppClientID
	for raw, want := range map[string]bool{
		good: true,
		"https://login.microsoftonline.us/" + emuhook.DemoWingtipTenant + "/v2.0/adminconsent?client_id=" + scenario.DemoAppClientID: true,
		"http://login.microsoftonline.com/x/adminconsent?client_id=" + scenario.DemoAppClientID:                                      false,
		"https://login.microsoftonline.com.evil.example/x/adminconsent?client_id=" + scenario.DemoAppClientID:                        false,
		"https://evil.example/x/adminconsent?client_id=" + scenario.DemoAppClientID:                                                  false,
		"javascript:alert(1)//https://login.microsoftonline.com/x/adminconsent":                                                      false,
		"https://login.microsoftonline.com/x/oauth2/v2.0/authorize?client_id=" + scenario.DemoAppClientID:                            false,
		"https://user@login.microsoftonline.com/x/adminconsent?client_id=" + scenario.DemoAppClientID:                                false,
		"https://login.microsoftonline.com:8443/x/adminconsent?client_id=" + scenario.DemoAppClientID:                                false,
		"https://login.microsoftonline.com/x/adminconsent?client_id=not-a-guid":                                                      false,
	} {
		var got struct {
			Shown bool
			Href  string
		}
		c.Eval(fmt.Sprintf(`(async () => {
			const real = window.fetch;
			window.fetch = async () => new Response(JSON.stringify({type: 'urn:kvassert:problem:entra-refused', title: 'Entra ID refused the token request', status: 400, aadsts: 700016, consentUrl: %q}), {status: 400, headers: {'Content-Type': 'application/problem+json'}});
			document.getElementById('secret').value = 'x';
			document.getElementById('status').textContent = '';
			document.getElementById('submit').click();
			for (let i = 0; i < 200 && !document.getElementById('status').textContent.startsWith('Failed'); i++) { await new Promise((r) => setTimeout(r, 10)); }
			window.fetch = real;
			return {Shown: !document.getElementById('problem-consent').hidden, Href: document.getElementById('consent-link').getAttribute('href') || ''};
		})()`, raw), &got)
		if got.Shown != want || want && got.Href != raw || !want && got.Href != "" {
			t.Errorf("consentUrl %q: link shown=%v href=%q, want shown=%v", raw, got.Shown, got.Href, want)
		}
	}
}
