//go:build linux || darwin

package proxy

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/net/websocket"

	"github.com/kvassert/kvassert/internal/emuhook"
	"github.com/kvassert/kvassert/kvasserttest/scenario"
)

// The page is tested in headless Chromium driven over the DevTools protocol
// (a minimal client below): the test types into the form like a developer,
// and reads the page's DOM. It skips when no browser is installed; CI
// installs the Debian package chromium.

func findChromium() string {
	if p := os.Getenv("KVASSERT_CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if p := "/Applications/Google Chrome.app/Contents/MacOS/Google Chrome"; fileExists(p) {
		return p
	}
	return ""
}

func fileExists(p string) bool { _, err := os.Stat(p); return err == nil }

// cdp is a minimal Chrome DevTools Protocol client over one page target.
type cdp struct {
	t  *testing.T
	ws *websocket.Conn

	mu      sync.Mutex
	next    int
	pending map[int]chan cdpMessage
	errs    []string // exceptions and console errors seen on the page
}

type cdpMessage struct {
	ID     int             `json:"id,omitempty"`
	Method string          `json:"method,omitempty"`
	Params json.RawMessage `json:"params,omitempty"`
	Result json.RawMessage `json:"result,omitempty"`
	Error  *struct {
		Message string `json:"message"`
	} `json:"error,omitempty"`
}

var devtoolsRE = regexp.MustCompile(`DevTools listening on (ws://[^\s]+)`)

// startChromium launches headless Chromium and connects to its first page.
func startChromium(t *testing.T) *cdp {
	t.Helper()
	bin := findChromium()
	// CI sets KVASSERT_REQUIRE_BROWSER=1 (after installing chromium), so the
	// page test can never silently skip there.
	skip := t.Skip
	if os.Getenv("KVASSERT_REQUIRE_BROWSER") != "" {
		skip = t.Fatal
	}
	if bin == "" {
		skip("no Chromium or Chrome found (install the Debian package chromium, or set KVASSERT_CHROMIUM); skipping the browser test of the web page")
	}
	dir := t.TempDir()
	cmd := exec.Command(bin, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync", "--disable-extensions",
		"--user-data-dir="+dir, "--remote-debugging-port=0", "--remote-allow-origins=http://127.0.0.1", "about:blank")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		skip(fmt.Sprintf("cannot start %s: %v", bin, err))
	}
	t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) // the browser and its helper processes
		_ = cmd.Wait()
	})
	found := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		sent := false
		for sc.Scan() {
			if m := devtoolsRE.FindStringSubmatch(sc.Text()); m != nil && !sent {
				found <- m[1]
				sent = true
			}
		}
		if !sent {
			close(found)
		}
	}()
	var browserWS string
	select {
	case browserWS = <-found:
	case <-time.After(30 * time.Second):
	}
	if browserWS == "" {
		t.Fatalf("%s did not print its DevTools address", bin)
	}
	host := strings.TrimPrefix(browserWS, "ws://")
	host = host[:strings.IndexByte(host, '/')]

	var targets []struct {
		Type string `json:"type"`
		WS   string `json:"webSocketDebuggerUrl"`
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := http.Get("http://" + host + "/json/list")
		if err == nil {
			err = json.NewDecoder(resp.Body).Decode(&targets)
			resp.Body.Close()
		}
		if err == nil && len(targets) > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no page target: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	var pageWS string
	for _, tg := range targets {
		if tg.Type == "page" {
			pageWS = tg.WS
			break
		}
	}
	if pageWS == "" {
		t.Fatal("no page target")
	}
	ws, err := websocket.Dial(pageWS, "", "http://127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	c := &cdp{t: t, ws: ws, pending: map[int]chan cdpMessage{}}
	t.Cleanup(func() { ws.Close() })
	go c.read()
	c.call("Page.enable", nil)
	c.call("Runtime.enable", nil)
	c.call("Log.enable", nil) // CSP violations and failed loads
	return c
}

func (c *cdp) read() {
	for {
		var m cdpMessage
		if err := websocket.JSON.Receive(c.ws, &m); err != nil {
			c.mu.Lock()
			for id, ch := range c.pending {
				close(ch)
				delete(c.pending, id)
			}
			c.mu.Unlock()
			return
		}
		if m.ID != 0 {
			c.mu.Lock()
			ch := c.pending[m.ID]
			delete(c.pending, m.ID)
			c.mu.Unlock()
			if ch != nil {
				ch <- m
			}
			continue
		}
		switch m.Method {
		case "Runtime.exceptionThrown", "Runtime.consoleAPICalled", "Log.entryAdded":
			if m.Method == "Runtime.consoleAPICalled" && !strings.Contains(string(m.Params), `"type":"error"`) ||
				m.Method == "Log.entryAdded" && (!strings.Contains(string(m.Params), `"level":"error"`) ||
					strings.Contains(string(m.Params), `"source":"network"`)) { // the 400 and 401 below are on purpose
				continue
			}
			c.mu.Lock()
			c.errs = append(c.errs, string(m.Params))
			c.mu.Unlock()
		}
	}
}

// call sends a command and returns its result.
func (c *cdp) call(method string, params any) json.RawMessage {
	c.t.Helper()
	c.mu.Lock()
	c.next++
	id := c.next
	ch := make(chan cdpMessage, 1)
	c.pending[id] = ch
	c.mu.Unlock()
	msg := map[string]any{"id": id, "method": method}
	if params != nil {
		msg["params"] = params
	}
	if err := websocket.JSON.Send(c.ws, msg); err != nil {
		c.t.Fatalf("%s: %v", method, err)
	}
	select {
	case m, ok := <-ch:
		if !ok {
			c.t.Fatalf("%s: connection closed", method)
		}
		if m.Error != nil {
			c.t.Fatalf("%s: %s", method, m.Error.Message)
		}
		return m.Result
	case <-time.After(30 * time.Second):
		c.t.Fatalf("%s: no answer", method)
	}
	return nil
}

// eval evaluates a JavaScript expression (awaiting promises) and decodes its
// value into out.
func (c *cdp) eval(expr string, out any) {
	c.t.Helper()
	res := c.call("Runtime.evaluate", map[string]any{"expression": expr, "awaitPromise": true, "returnByValue": true, "userGesture": true})
	var r struct {
		Result struct {
			Value json.RawMessage `json:"value"`
		} `json:"result"`
		Exception *struct {
			Text      string `json:"text"`
			Exception struct {
				Description string `json:"description"`
			} `json:"exception"`
		} `json:"exceptionDetails"`
	}
	if err := json.Unmarshal(res, &r); err != nil {
		c.t.Fatal(err)
	}
	if r.Exception != nil {
		c.t.Fatalf("evaluating %q: %s %s", expr, r.Exception.Text, r.Exception.Exception.Description)
	}
	if out != nil {
		if err := json.Unmarshal(r.Result.Value, out); err != nil {
			c.t.Fatalf("evaluating %q: result %s: %v", expr, r.Result.Value, err)
		}
	}
}

func (c *cdp) text(id string) string {
	c.t.Helper()
	var s string
	c.eval(fmt.Sprintf("document.getElementById(%q).textContent", id), &s)
	return s
}

// waitFor polls a boolean expression.
func (c *cdp) waitFor(expr string) {
	c.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		var ok bool
		c.eval("Boolean("+expr+")", &ok)
		if ok {
			return
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("timed out waiting for %s", expr)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// typeInto replaces the value of an input by typing text into it.
func (c *cdp) typeInto(id, text string) {
	c.t.Helper()
	c.eval(fmt.Sprintf("(() => { const el = document.getElementById(%q); el.focus(); el.select(); return true; })()", id), nil)
	if text == "" {
		c.call("Input.dispatchKeyEvent", map[string]any{"type": "keyDown", "key": "Delete", "code": "Delete", "windowsVirtualKeyCode": 46})
		c.call("Input.dispatchKeyEvent", map[string]any{"type": "keyUp", "key": "Delete", "code": "Delete", "windowsVirtualKeyCode": 46})
		return
	}
	c.call("Input.insertText", map[string]any{"text": text})
}

func (c *cdp) selectRoute(route string) {
	c.t.Helper()
	c.eval(fmt.Sprintf("(() => { const s = document.getElementById('route'); s.value = %q; s.dispatchEvent(new Event('change')); return true; })()", route), nil)
}

func (c *cdp) submit() {
	c.t.Helper()
	c.eval("document.getElementById('status').textContent = ''; document.getElementById('submit').click(); true", nil)
	c.waitFor("document.getElementById('status').textContent.match(/^(Token received|Certificate read|Failed)/)")
}

func TestPageInChromium(t *testing.T) {
	t.Parallel()
	c := startChromium(t)
	env := newEnv(t, withDefault(scenario.DemoVault))

	// The URL printed at start carries the secret in the fragment; the
	// script takes it and removes it from the address bar.
	c.call("Page.navigate", map[string]any{"url": env.url + "/#secret=" + env.s.Secret()})
	c.waitFor("document.readyState === 'complete' && document.body.dataset.ready === 'true'")
	var state struct {
		Secret, Hash string
		Hidden       bool
	}
	c.eval(`({Secret: document.getElementById('secret').value, Hash: location.hash, Hidden: document.getElementById('keyUri').closest('.field').hidden})`, &state)
	if state.Secret != env.s.Secret() || state.Hash != "" || !state.Hidden {
		t.Fatalf("after load: secret taken=%v, hash %q, kv-key fields hidden=%v", state.Secret == env.s.Secret(), state.Hash, state.Hidden)
	}
	// The form starts with what the proxy was started for, read from
	// /api/config with the secret.
	c.waitFor("document.body.dataset.config === 'done'")
	var prefill map[string]string
	c.eval(`Object.fromEntries(['clientId', 'tenantId', 'keyVaultUri', 'certificateName'].map(id => [id, document.getElementById(id).value]))`, &prefill)
	want := map[string]string{"clientId": scenario.DemoAppClientID, "tenantId": scenario.DemoContosoTenant,
		"keyVaultUri": "https://" + scenario.DemoVault + ".vault.azure.net/", "certificateName": scenario.DemoCertificate}
	for id, v := range want {
		if prefill[id] != v {
			t.Errorf("field %s prefilled with %q, want %q", id, prefill[id], v)
		}
	}
	// The prefilled form gets a token as it is.
	c.submit()
	if s := c.text("status"); s != "Token received" {
		t.Fatalf("prefilled form: status %q; problem: %s %s", s, c.text("problem-title"), c.text("problem-detail"))
	}

	// The endpoint list is on the page.
	var endpoints []string
	c.eval(`Array.from(document.querySelectorAll('tbody tr td:nth-child(2)')).map(td => td.textContent)`, &endpoints)
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
	if s := c.text("status"); s != "Token received" {
		t.Fatalf("status %q; problem: %s %s", s, c.text("problem-title"), c.text("problem-detail"))
	}
	// The copy button copies the whole token (clipboard stubbed: headless
	// Chromium has no clipboard to read back).
	var full string
	c.eval(`(async () => {
		let copied = '';
		navigator.clipboard.writeText = (t) => { copied = t; return Promise.resolve(); };
		document.getElementById('copy').click();
		for (let i = 0; i < 100 && !copied; i++) { await new Promise(r => setTimeout(r, 10)); }
		return copied;
	})()`, &full)
	env.sawToken(full)
	c.waitFor("document.getElementById('copy').textContent === 'Copied'")
	cl := claims(t, full)
	if cl["tid"] != scenario.DemoContosoTenant || cl["appid"] != scenario.DemoAppClientID {
		t.Errorf("copied token: tid %v appid %v", cl["tid"], cl["appid"])
	}
	shown := c.text("token-display")
	if shown != full[:24]+"…"+full[len(full)-12:] {
		t.Errorf("token shown as %q, want its first 24 and last 12 characters", shown)
	}
	var html string
	c.eval("document.documentElement.outerHTML", &html)
	if strings.Contains(html, full) || strings.Contains(html, full[len(full)-40:]) {
		t.Error("the page's DOM holds the whole token")
	}
	if got := c.text("token-tenant"); got != scenario.DemoContosoTenant {
		t.Errorf("tenant shown %q", got)
	}
	var claimText string
	c.eval("document.getElementById('claims').textContent", &claimText)
	if !strings.Contains(claimText, scenario.DemoAppClientID) {
		t.Errorf("claims shown: %q", claimText)
	}

	// Field-level errors land next to their fields.
	c.typeInto("clientId", "not-a-guid")
	c.submit()
	var invalid string
	c.eval("document.getElementById('clientId').getAttribute('aria-invalid')", &invalid)
	if s := c.text("status"); s != "Failed (HTTP 400)" || c.text("err-clientId") == "" || invalid != "true" {
		t.Errorf("invalid client ID: status %q, field error %q, aria-invalid %q", s, c.text("err-clientId"), invalid)
	}
	c.typeInto("clientId", scenario.DemoAppClientID)

	// kv-key-info, then its result feeds kv-key.
	c.selectRoute("kv-key-info")
	c.submit()
	if s := c.text("status"); s != "Certificate read" {
		t.Fatalf("kv-key-info: status %q: %s", s, c.text("problem-detail"))
	}
	c.eval("document.getElementById('use-key').click(); true", nil)
	var route string
	c.eval("document.getElementById('route').value", &route)
	if route != "kv-key" {
		t.Fatalf("route after 'Use with kv-key': %q", route)
	}
	c.typeInto("tenantId", emuhook.DemoFabrikamTenant)
	c.submit()
	if s := c.text("status"); s != "Token received" || c.text("token-tenant") != emuhook.DemoFabrikamTenant {
		t.Errorf("kv-key: status %q tenant %q: %s", s, c.text("token-tenant"), c.text("problem-detail"))
	}

	// A wrong secret is reported.
	c.typeInto("secret", "wrong")
	c.submit()
	if s := c.text("status"); s != "Failed (HTTP 401)" || c.text("problem-title") != "Missing or wrong secret" {
		t.Errorf("wrong secret: status %q, problem %q", s, c.text("problem-title"))
	}
	// Without a secret, nothing is sent.
	c.typeInto("secret", "")
	c.submit()
	if c.text("problem-title") != "No secret" {
		t.Errorf("no secret: problem %q", c.text("problem-title"))
	}

	c.mu.Lock()
	if len(c.errs) > 0 {
		t.Errorf("page errors (script exceptions, CSP violations): %v", c.errs)
	}
	c.mu.Unlock()

	// The Content-Security-Policy is in force: an injected inline script
	// does not run.
	var ran bool
	c.eval(`(() => { const s = document.createElement('script'); s.textContent = 'window.injected = true'; document.body.append(s); return window.injected === true; })()`, &ran)
	if ran {
		t.Error("an inline script ran: no Content-Security-Policy")
	}
}
