// Package browsertest drives a real headless Chromium for tests over a
// minimal Chrome DevTools Protocol client: start the browser on a free
// port, open one page, navigate, evaluate JavaScript, click like a user,
// wait for a condition, set the window size, and collect the page's script
// exceptions and console errors.
//
// A test that needs the browser fails, never skips, when it is required
// (CI=true or KVASSERT_REQUIRE_BROWSER=1: .ci/run installs chromium) and no
// browser is found; elsewhere it skips with the install hint. Set
// KVASSERT_CHROMIUM to a browser binary to choose one.
//
// Test support only: no production package may import it.
package browsertest

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/net/websocket"
)

// Timeout bounds each protocol call, each WaitFor and the browser's start.
const Timeout = 30 * time.Second

// Required reports whether a missing browser fails the test rather than
// skipping it.
func Required() bool {
	return os.Getenv("CI") == "true" || os.Getenv("KVASSERT_REQUIRE_BROWSER") != ""
}

// Find returns the path of a Chromium or Chrome binary, or "".
func Find() string {
	if p := os.Getenv("KVASSERT_CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	for _, p := range []string{"/usr/bin/chromium", "/Applications/Google Chrome.app/Contents/MacOS/Google Chrome"} {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	return ""
}

// Options configures Start. The zero value is a 1280×800 window with no
// extra arguments.
type Options struct {
	// Args are extra command-line arguments, e.g.
	// "--host-resolver-rules=MAP login.microsoftonline.com 127.0.0.1:8443"
	// or "--ignore-certificate-errors".
	Args []string
	// Width and Height of the viewport in CSS pixels (default 1280×800).
	Width, Height int
	// KeepNetworkErrors keeps failed loads (a 4xx answer to fetch, say) in
	// Errors; by default only script exceptions, console.error calls and
	// other error log entries (CSP violations) are kept.
	KeepNetworkErrors bool
}

// Page is one page target of a headless browser started by Start. Its
// methods fail the test on a protocol error or a timeout. Use it from the
// test's goroutine.
type Page struct {
	t    testing.TB
	ws   *websocket.Conn
	keep bool

	mu      sync.Mutex
	next    int
	pending map[int]chan message
	errs    []string
}

type message struct {
	ID     int             `json:"id,omitempty"`
	Method string          `json:"method,omitempty"`
	Params json.RawMessage `json:"params,omitempty"`
	Result json.RawMessage `json:"result,omitempty"`
	Error  *struct {
		Message string `json:"message"`
	} `json:"error,omitempty"`
}

var devtoolsRE = regexp.MustCompile(`DevTools listening on (ws://[^\s]+)`)

// Start launches headless Chromium with a fresh profile and connects to its
// page; the browser and its helper processes are killed when the test ends.
func Start(t testing.TB, opts *Options) *Page {
	t.Helper()
	var o Options
	if opts != nil {
		o = *opts
	}
	if o.Width <= 0 {
		o.Width = 1280
	}
	if o.Height <= 0 {
		o.Height = 800
	}
	skip := t.Skip
	if Required() {
		skip = t.Fatal
	}
	bin := Find()
	if bin == "" {
		skip("no Chromium or Chrome found (install the Debian package chromium, or set KVASSERT_CHROMIUM); CI=true or KVASSERT_REQUIRE_BROWSER=1 makes this a failure")
	}
	args := append([]string{"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync", "--disable-extensions",
		"--hide-scrollbars", fmt.Sprintf("--window-size=%d,%d", o.Width, o.Height),
		"--user-data-dir=" + t.TempDir(), "--remote-debugging-port=0", "--remote-allow-origins=http://127.0.0.1"},
		o.Args...)
	cmd := exec.Command(bin, append(args, "about:blank")...)
	setProcessGroup(cmd)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		skip(fmt.Sprintf("cannot start %s: %v", bin, err))
	}
	t.Cleanup(func() {
		killGroup(cmd)
		_ = cmd.Wait()
	})
	pageWS := pageTarget(t, bin, devtoolsAddress(t, bin, stderr))
	ws, err := websocket.Dial(pageWS, "", "http://127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	p := &Page{t: t, ws: ws, keep: o.KeepNetworkErrors, pending: map[int]chan message{}}
	t.Cleanup(func() { ws.Close() })
	go p.read()
	p.Call("Page.enable", nil)
	p.Call("Runtime.enable", nil)
	p.Call("Log.enable", nil) // CSP violations and failed loads
	p.SetSize(o.Width, o.Height)
	return p
}

// devtoolsAddress reads the browser's DevTools websocket address from its
// stderr, and keeps draining stderr afterwards.
func devtoolsAddress(t testing.TB, bin string, stderr interface{ Read([]byte) (int, error) }) string {
	t.Helper()
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
	var addr string
	select {
	case addr = <-found:
	case <-time.After(Timeout):
	}
	if addr == "" {
		t.Fatalf("%s did not print its DevTools address", bin)
	}
	return addr
}

// pageTarget returns the websocket URL of the browser's first page.
func pageTarget(t testing.TB, bin, browserWS string) string {
	t.Helper()
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
		for _, tg := range targets {
			if tg.Type == "page" {
				return tg.WS
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: no page target: %v", bin, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (p *Page) read() {
	for {
		var m message
		if err := websocket.JSON.Receive(p.ws, &m); err != nil {
			p.mu.Lock()
			for id, ch := range p.pending {
				close(ch)
				delete(p.pending, id)
			}
			p.mu.Unlock()
			return
		}
		if m.ID != 0 {
			p.mu.Lock()
			ch := p.pending[m.ID]
			delete(p.pending, m.ID)
			p.mu.Unlock()
			if ch != nil {
				ch <- m
			}
			continue
		}
		if p.isError(m) {
			p.mu.Lock()
			p.errs = append(p.errs, string(m.Params))
			p.mu.Unlock()
		}
	}
}

func (p *Page) isError(m message) bool {
	params := string(m.Params)
	switch m.Method {
	case "Runtime.exceptionThrown":
		return true
	case "Runtime.consoleAPICalled":
		return strings.Contains(params, `"type":"error"`)
	case "Log.entryAdded":
		return strings.Contains(params, `"level":"error"`) && (p.keep || !strings.Contains(params, `"source":"network"`))
	}
	return false
}

// Errors returns the script exceptions and console errors seen so far (raw
// protocol parameters).
func (p *Page) Errors() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.errs...)
}

// Call sends a DevTools protocol command and returns its result.
func (p *Page) Call(method string, params any) json.RawMessage {
	p.t.Helper()
	res, err := p.call(method, params)
	if err != nil {
		p.t.Fatal(err)
	}
	return res
}

// errProtocol is an error answer of the DevTools protocol (as opposed to
// a lost connection or no answer).
type errProtocol struct{ method, message string }

func (e *errProtocol) Error() string { return e.method + ": " + e.message }

// call sends a DevTools command and returns its result, or an error: an
// *errProtocol for the browser's error answer.
func (p *Page) call(method string, params any) (json.RawMessage, error) {
	p.mu.Lock()
	p.next++
	id := p.next
	ch := make(chan message, 1)
	p.pending[id] = ch
	p.mu.Unlock()
	msg := map[string]any{"id": id, "method": method}
	if params != nil {
		msg["params"] = params
	}
	if err := websocket.JSON.Send(p.ws, msg); err != nil {
		return nil, fmt.Errorf("%s: %w", method, err)
	}
	select {
	case m, ok := <-ch:
		if !ok {
			return nil, fmt.Errorf("%s: connection closed", method)
		}
		if m.Error != nil {
			return nil, &errProtocol{method, m.Error.Message}
		}
		return m.Result, nil
	case <-time.After(Timeout):
		return nil, fmt.Errorf("%s: no answer", method)
	}
}

// Navigate loads url and waits until the new document has loaded (a
// change of the fragment only keeps the document and returns at once).
func (p *Page) Navigate(url string) {
	p.t.Helper()
	p.Eval("window.__browsertestOld = true", nil)
	res := p.Call("Page.navigate", map[string]any{"url": url})
	var r struct {
		LoaderID  string `json:"loaderId"`
		ErrorText string `json:"errorText"`
	}
	_ = json.Unmarshal(res, &r)
	if r.ErrorText != "" {
		p.t.Fatalf("navigating to %s: %s", url, r.ErrorText)
	}
	if r.LoaderID != "" {
		p.WaitFor("!window.__browsertestOld && document.readyState === 'complete'")
	}
}

// URL returns the page's current address.
func (p *Page) URL() string {
	p.t.Helper()
	var s string
	p.Eval("location.href", &s)
	return s
}

// Eval evaluates a JavaScript expression (awaiting a promise, with a user
// gesture) and decodes its JSON value into out, unless out is nil. A thrown
// exception fails the test.
func (p *Page) Eval(expr string, out any) {
	p.t.Helper()
	if err := p.eval(expr, out); err != nil {
		p.t.Fatal(err)
	}
}

// eval is Eval returning its error: an *errProtocol when the browser
// refused the command (e.g. the page navigated while evaluating).
func (p *Page) eval(expr string, out any) error {
	res, err := p.call("Runtime.evaluate", map[string]any{"expression": expr, "awaitPromise": true, "returnByValue": true, "userGesture": true})
	if err != nil {
		return err
	}
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
		return err
	}
	if r.Exception != nil {
		return fmt.Errorf("evaluating %q: %s %s", expr, r.Exception.Text, r.Exception.Exception.Description)
	}
	if out != nil {
		if err := json.Unmarshal(r.Result.Value, out); err != nil {
			return fmt.Errorf("evaluating %q: result %s: %w", expr, r.Result.Value, err)
		}
	}
	return nil
}

// Text returns the textContent of the element with the given id ("" when
// there is none).
func (p *Page) Text(id string) string {
	p.t.Helper()
	var s string
	p.Eval(fmt.Sprintf("(document.getElementById(%q) || {textContent: ''}).textContent", id), &s)
	return s
}

// WaitFor polls a JavaScript expression until it is truthy; it fails the
// test after Timeout.
func (p *Page) WaitFor(expr string) {
	p.t.Helper()
	deadline := time.Now().Add(Timeout)
	for {
		var ok bool
		err := p.eval("Boolean("+expr+")", &ok)
		var pe *errProtocol
		switch {
		case err == nil && ok:
			return
		case err != nil && !errors.As(err, &pe):
			p.t.Fatal(err) // the connection, or an exception in expr
		}
		// Not yet, or the browser refused the evaluation because the page
		// is navigating ("Inspected target navigated or closed"): the
		// condition is asked again of the next document.
		if time.Now().After(deadline) {
			p.t.Fatalf("timed out waiting for %s (last: %v)", expr, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Click scrolls the first element matching the CSS selector into view and
// clicks its centre with real mouse events, as a user would: an element
// covered by another, or of zero size, is not clicked and fails the test.
func (p *Page) Click(selector string) {
	p.t.Helper()
	var at struct {
		X, Y  float64
		Found bool
		Hit   bool
	}
	p.Eval(fmt.Sprintf(`(() => {
		const el = document.querySelector(%q);
		if (!el) return {Found: false};
		el.scrollIntoView({block: 'center', inline: 'center'});
		const r = el.getBoundingClientRect();
		const x = r.left + r.width / 2, y = r.top + r.height / 2;
		const top = document.elementFromPoint(x, y);
		return {X: x, Y: y, Found: true, Hit: r.width > 0 && r.height > 0 && !!top && (top === el || el.contains(top))};
	})()`, selector), &at)
	if !at.Found {
		p.t.Fatalf("click: no element matches %s", selector)
	}
	if !at.Hit {
		p.t.Fatalf("click: %s is hidden, empty or covered at its centre", selector)
	}
	for _, typ := range []string{"mouseMoved", "mousePressed", "mouseReleased"} {
		ev := map[string]any{"type": typ, "x": at.X, "y": at.Y}
		if typ != "mouseMoved" {
			ev["button"] = "left"
			ev["clickCount"] = 1
		}
		p.Call("Input.dispatchMouseEvent", ev)
	}
}

// TypeInto focuses the element matching selector, selects its content and
// types text in its place ("" deletes the content).
func (p *Page) TypeInto(selector, text string) {
	p.t.Helper()
	var found bool
	p.Eval(fmt.Sprintf("(() => { const el = document.querySelector(%q); if (!el) return false; el.focus(); if (el.select) el.select(); return true; })()", selector), &found)
	if !found {
		p.t.Fatalf("type: no element matches %s", selector)
	}
	if text == "" {
		p.Call("Input.dispatchKeyEvent", map[string]any{"type": "keyDown", "key": "Delete", "code": "Delete", "windowsVirtualKeyCode": 46})
		p.Call("Input.dispatchKeyEvent", map[string]any{"type": "keyUp", "key": "Delete", "code": "Delete", "windowsVirtualKeyCode": 46})
		return
	}
	p.Call("Input.insertText", map[string]any{"text": text})
}

// SetSize sets the viewport to width×height CSS pixels (device scale 1, as
// a desktop window of that size: width media queries apply, the page's
// viewport meta tag does not) and waits for the layout to follow.
func (p *Page) SetSize(width, height int) {
	p.t.Helper()
	p.Call("Emulation.setDeviceMetricsOverride", map[string]any{
		"width": width, "height": height, "deviceScaleFactor": 1, "mobile": false,
	})
	p.WaitFor(fmt.Sprintf("window.innerWidth === %d", width))
}
