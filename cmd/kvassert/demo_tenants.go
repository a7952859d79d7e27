package main

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"html"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"

	"github.com/kvassert/kvassert"
	"github.com/kvassert/kvassert/internal/emuhook"
	"github.com/kvassert/kvassert/kvasserttest"
	"github.com/kvassert/kvassert/kvasserttest/scenario"
	"github.com/kvassert/kvassert/tenants"
)

// demoGraph is the resource whose app roles the demo requires.
const demoGraph = "https://graph.microsoft.com"

// demoRequiredRoles are the application permissions the demo SaaS needs in
// every customer tenant (the demo app asks for exactly these).
var demoRequiredRoles = []string{"Organization.Read.All", "Sites.Read.All"}

// demoOnboarding is the JSON report of the onboarding chapter.
type demoOnboarding struct {
	Tenant     string   `json:"tenant"`
	TenantID   string   `json:"tenantId"`
	PageRoles  []string `json:"pageRoles"`  // what the consent page asked the administrator for
	Callback   string   `json:"callback"`   // the tenant the SaaS's callback got
	State      string   `json:"state"`      // the proof's tenants.Report state
	Granted    []string `json:"granted"`    // roles in the proving Graph token
	Required   []string `json:"required"`   // what the SaaS requires
	Missing    []string `json:"missing"`    // required, not granted
	PageStatus int      `json:"pageStatus"` // the redirect handler's answer
	Calls      calls    `json:"calls"`
	Consent    int64    `json:"consentRequests"` // GET of the page + POST of the form
	Elapsed    string   `json:"elapsed"`
}

// demoOffboarding is the JSON report of the offboarding chapter.
type demoOffboarding struct {
	Tenant       string    `json:"tenant"`
	CachedCalls  calls     `json:"cachedCalls"`  // the cached token, after the removal
	RefusedCalls calls     `json:"refusedCalls"` // the request that met the removal
	AADSTS       int       `json:"aadsts"`
	Hint         string    `json:"hint"`
	Reported     int       `json:"reported"` // TenantOffboarded calls
	Warnings     []string  `json:"warnings"` // the credential's Warn records
	FastCalls    calls     `json:"fastCalls"`
	FastElapsed  string    `json:"fastElapsed"`
	RefusedUntil time.Time `json:"refusedUntil,omitzero"`
	CheckState   string    `json:"checkState"` // tenants.Check of the tenant afterwards
	CheckCalls   calls     `json:"checkCalls"`
	ConsentURL   string    `json:"consentUrl,omitempty"`
}

// offboardWatch is what the demo's credential reports about offboarded
// tenants: the TenantOffboarded callbacks, and its Warn records while a
// chapter captures them (they would go to stderr otherwise).
type offboardWatch struct {
	mu        sync.Mutex
	capturing bool
	warnings  []string
	tenants   []string
	reported  chan struct{}
}

func newOffboardWatch() *offboardWatch { return &offboardWatch{reported: make(chan struct{}, 16)} }

// offboarded is the credential's TenantOffboarded callback.
func (o *offboardWatch) offboarded(tenant string, _ *kvassert.AuthError) {
	o.mu.Lock()
	o.tenants = append(o.tenants, tenant)
	o.mu.Unlock()
	select {
	case o.reported <- struct{}{}:
	default: // the chapter counts the tenants; the channel only wakes it
	}
}

func (o *offboardWatch) capture(on bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.capturing = on
}

// captureHandler sends the credential's records to the CLI's logger, except
// its warnings while the watch captures them: the chapter prints those.
type captureHandler struct {
	slog.Handler
	w *offboardWatch
}

func (h captureHandler) Handle(ctx context.Context, r slog.Record) error {
	if r.Level >= slog.LevelWarn {
		h.w.mu.Lock()
		capturing := h.w.capturing
		if capturing {
			var b strings.Builder
			b.WriteString(r.Message)
			r.Attrs(func(a slog.Attr) bool {
				fmt.Fprintf(&b, " %s=%v", a.Key, a.Value)
				return true
			})
			h.w.warnings = append(h.w.warnings, b.String())
		}
		h.w.mu.Unlock()
		if capturing {
			return nil
		}
	}
	return h.Handler.Handle(ctx, r)
}

func (h captureHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return captureHandler{h.Handler.WithAttrs(as), h.w}
}

func (h captureHandler) WithGroup(name string) slog.Handler {
	return captureHandler{h.Handler.WithGroup(name), h.w}
}

// demoWant is what the SaaS requires of a customer tenant.
func demoWant() *tenants.Want {
	return &tenants.Want{Roles: map[string][]string{demoGraph: demoRequiredRoles}, RedirectURI: emuhook.DemoRedirectURI}
}

// onboard lets a new customer, tailspin, consent through the emulated
// admin-consent page: the link comes from a tenants.Handler (signed,
// single-use state), the administrator's browser is plain net/http, and
// the redirect reaches the Handler, which proves the onboarding with a
// token and reports its roles.
func (d *demo) onboard(ctx context.Context) error {
	w, st := d.w, d.st
	tenant := emuhook.DemoTailspinTenant
	name := d.names[tenant]
	d.section("A new customer, " + name + ", onboards itself through the admin-consent page")
	t0, before := time.Now(), d.e.Counts()
	rep := &demoOnboarding{Tenant: name, TenantID: tenant, Required: demoRequiredRoles}
	d.rep.Onboarding = rep
	for _, l := range []string{
		`h, _ := tenants.NewHandler(cred, "` + emuhook.DemoRedirectURI + `", stateKey, onConsent, &tenants.HandlerOptions{Want: want})`,
		`link, _ := h.ConsentURL(tenant) // mux.Handle("/consent/callback", h)`,
	} {
		fmt.Fprintln(w, "   "+st.dim(l))
	}

	key := make([]byte, 32)
	_, _ = rand.Read(key) // never fails (crypto/rand, Go 1.24+)
	var proof tenants.Report
	h, err := tenants.NewHandler(d.cred, emuhook.DemoRedirectURI, key, func(_ context.Context, c tenants.Consent) error {
		rep.Callback = c.Tenant
		return nil
	}, &tenants.HandlerOptions{Want: demoWant(), ProveTimeout: 20 * time.Second, Logger: d.a.Logger,
		Proved: func(_ context.Context, r tenants.Report) { proof = r }})
	if err != nil {
		return failure("the consent handler", err)
	}
	link, err := h.ConsentURL(tenant)
	if err != nil {
		return failure("the consent link", err)
	}
	d.kv("link", redactState(link))

	// The administrator's browser: GET the page, POST its form with Accept.
	browser := *d.e.Client()
	browser.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	page, err := consentPage(ctx, &browser, link)
	if err != nil {
		return err
	}
	rep.PageRoles = page.roles
	d.kv("page", fmt.Sprintf("%q asks the administrator of %s for %s", page.app, page.tenant, strings.Join(page.roles, ", ")))
	callback, err := page.submit(ctx, &browser, "accept")
	if err != nil {
		return err
	}
	cb, err := url.Parse(callback)
	if err != nil || !strings.HasPrefix(callback, emuhook.DemoRedirectURI+"?") {
		return &exitError{code: exitFailure, msg: "demo: the consent page did not redirect to the app's redirect URI"}
	}
	fmt.Fprintf(w, "   %s Accept %s\n", st.green("✓"), st.dim("→ 302 "+emuhook.DemoRedirectURI+"?admin_consent=True&tenant="+cb.Query().Get("tenant")+"&scope=…&state=…"))

	// The redirect reaches the Handler (in process here; in a SaaS, its mux).
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, callback, nil)
	if err != nil {
		return failure("", err)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	rep.PageStatus = rec.Code
	rep.State, rep.Granted, rep.Missing = proof.State, []string{}, []string{}
	if len(proof.Resources) > 0 {
		rep.Granted, rep.Missing = nonNil(proof.Resources[0].Granted), nonNil(proof.Resources[0].Missing)
	}
	rep.Calls, rep.Elapsed = diff(d.e.Counts(), before), shortDuration(time.Since(t0))
	rep.Consent = d.e.Counts()[kvasserttest.OpAdminConsent] - before[kvasserttest.OpAdminConsent]
	if rec.Code != http.StatusOK || rep.Callback != tenant || proof.State != tenants.StateOK {
		return &exitError{code: exitFailure, msg: fmt.Sprintf("demo: onboarding %s: page %d, callback %q, proof %q (%s)", name, rec.Code, rep.Callback, proof.State, proof.Error)}
	}
	fmt.Fprintf(w, "   %s onConsent(%s) %s\n", st.green("✓"), rep.Callback, st.dim("the SaaS records its new customer"))
	fmt.Fprintf(w, "   %s proved    a Graph token in %s: %s\n", st.green("✓"), name, rep.State)
	d.kv("granted", strings.Join(rep.Granted, ", ")+st.dim(" (the token's roles claim)"))
	d.kv("required", strings.Join(rep.Required, ", ")+st.dim(fmt.Sprintf(" (missing: %d)", len(rep.Missing))))
	fmt.Fprintf(w, "     %s %s   %s %s · consent page %d %s\n", st.dim("Key Vault:"), rep.Calls.line(true), st.dim("Entra ID:"), rep.Calls.line(false), rep.Consent, st.dim("· "+rep.Elapsed))
	if n := rep.Calls[kvasserttest.OpKeySign]; n != 1 {
		return &exitError{code: exitFailure, msg: fmt.Sprintf("demo: onboarding %s cost %d keys/sign, expected exactly 1", name, n)}
	}
	return nil
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// redactState replaces the value of the state parameter: a state is a
// bearer of the onboarding and is never printed.
func redactState(link string) string {
	u, err := url.Parse(link)
	if err != nil {
		return "(unprintable link)"
	}
	q := u.Query()
	q.Del("state")
	u.RawQuery = q.Encode()
	return u.String() + "&state=…" // signed, expiring, single use
}

// consentForm is the emulated admin-consent page, read as a browser would.
type consentForm struct {
	action string
	fields url.Values
	app    string
	tenant string
	roles  []string
	origin string
}

var (
	reForm   = regexp.MustCompile(`<form method="POST" action="([^"]*)"`)
	reHidden = regexp.MustCompile(`<input type="hidden" name="([^"]+)" value="([^"]*)">`)
	reApp    = regexp.MustCompile(`<strong id="app">([^<]*)</strong>`)
	reTenant = regexp.MustCompile(`<strong id="tenant-name"[^>]*>([^<]*)</strong>`)
	reRoles  = regexp.MustCompile(`(?s)<ul id="roles">(.*?)</ul>`)
	reItem   = regexp.MustCompile(`<li>([^<]*)</li>`)
)

// consentPage GETs the consent page and reads its form.
func consentPage(ctx context.Context, c *http.Client, link string) (*consentForm, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, link, nil)
	if err != nil {
		return nil, failure("", err)
	}
	resp, err := c.Do(req)
	if err != nil {
		return nil, failure("opening the consent page", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err != nil || resp.StatusCode != http.StatusOK {
		return nil, &exitError{code: exitFailure, msg: fmt.Sprintf("demo: the consent page answered HTTP %d", resp.StatusCode)}
	}
	page := string(body)
	m := reForm.FindStringSubmatch(page)
	if m == nil {
		return nil, &exitError{code: exitFailure, msg: "demo: the consent page has no form"}
	}
	action, err := resp.Request.URL.Parse(html.UnescapeString(m[1]))
	if err != nil {
		return nil, failure("the consent form's action", err)
	}
	f := &consentForm{action: action.String(), fields: url.Values{}, origin: resp.Request.URL.Scheme + "://" + resp.Request.URL.Host}
	for _, h := range reHidden.FindAllStringSubmatch(page, -1) {
		f.fields.Set(html.UnescapeString(h[1]), html.UnescapeString(h[2]))
	}
	if m := reApp.FindStringSubmatch(page); m != nil {
		f.app = html.UnescapeString(m[1])
	}
	if m := reTenant.FindStringSubmatch(page); m != nil {
		f.tenant = html.UnescapeString(m[1])
	}
	if m := reRoles.FindStringSubmatch(page); m != nil {
		for _, li := range reItem.FindAllStringSubmatch(m[1], -1) {
			f.roles = append(f.roles, html.UnescapeString(li[1]))
		}
	}
	return f, nil
}

// submit posts the form with the button named (accept or cancel) and
// returns where the page redirects.
func (f *consentForm) submit(ctx context.Context, c *http.Client, button string) (string, error) {
	form := url.Values{}
	for k, v := range f.fields {
		form[k] = v
	}
	form.Set("action", button)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, f.action, strings.NewReader(form.Encode()))
	if err != nil {
		return "", failure("", err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", f.origin)
	resp, err := c.Do(req)
	if err != nil {
		return "", failure("submitting the consent form", err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode != http.StatusFound {
		return "", &exitError{code: exitFailure, msg: fmt.Sprintf("demo: the consent form answered HTTP %d, not a redirect", resp.StatusCode)}
	}
	return resp.Header.Get("Location"), nil
}

// offboard removes the app from tailspin: the cached token is still served
// (Entra does not revoke issued tokens), the next request Entra sees is
// refused with AADSTS700016, kvassert reports it once, evicts the tenant's
// tokens, and the calls after that fail fast with no Key Vault sign.
func (d *demo) offboard(ctx context.Context) error {
	w, st := d.w, d.st
	tenant := emuhook.DemoTailspinTenant
	name := d.names[tenant]
	d.section("The customer removes the app from " + name + ": kvassert notices once, then stops paying for it")
	rep := &demoOffboarding{Tenant: name, Warnings: []string{}}
	d.rep.Offboarding = rep
	if err := d.e.SetConsent(scenario.DemoAppClientID, tenant, false); err != nil {
		return failure("removing the app", err)
	}
	fmt.Fprintf(w, "   %s %s\n", st.yellow("✗"), "the administrator deletes the app's enterprise application (service principal) in "+name)

	dt, err := d.token(ctx, tenant, true)
	if err != nil {
		return &exitError{code: exitFailure, msg: "demo: the token cached for " + name + " was not served: " + firstLine(err.Error())}
	}
	rep.CachedCalls = dt.Calls
	fmt.Fprintf(w, "   %s cached      %d calls %s\n", st.green("✓"), dt.Calls.total(), st.dim("· issued tokens are not revoked: served until Entra is asked again (at the latest at refresh, within the hour)"))

	// A resource that stops accepting the token answers with a claims
	// challenge; the app hands it to GetToken (azcore's bearer token
	// policy does), which always asks Entra.
	d.watch.capture(true)
	defer d.watch.capture(false)
	claims := `{"access_token":{"nbf":{"essential":true,"value":"` + strconv.FormatInt(time.Now().Unix(), 10) + `"}}}`
	fmt.Fprintln(w, "   "+st.dim(`tok, err := cred.GetToken(ctx, policy.TokenRequestOptions{Scopes: graph, TenantID: tenant, Claims: challenge})`))
	before := d.e.Counts()
	_, err = d.cred.GetToken(ctx, policy.TokenRequestOptions{Scopes: []string{defaultScope}, TenantID: tenant, Claims: claims})
	rep.RefusedCalls = diff(d.e.Counts(), before)
	var ae *kvassert.AuthError
	if !errors.As(err, &ae) || ae.Code != 700016 {
		return &exitError{code: exitFailure, msg: fmt.Sprintf("demo: %s after the removal: %v, expected AADSTS700016", name, err)}
	}
	rep.AADSTS, rep.Hint = ae.Code, ae.Hint
	fmt.Fprintf(w, "   %s %s\n", st.red("✗"), firstSentence(firstLine(ae.Description)))
	fmt.Fprintf(w, "     %s %s   %s %s\n", st.dim("Key Vault:"), rep.RefusedCalls.line(true), st.dim("Entra ID:"), rep.RefusedCalls.line(false))
	select {
	case <-d.watch.reported:
	case <-time.After(5 * time.Second):
		return &exitError{code: exitFailure, msg: "demo: TenantOffboarded was not called for " + name}
	}
	d.watch.mu.Lock()
	rep.Reported = len(d.watch.tenants)
	rep.Warnings = append(rep.Warnings, d.watch.warnings...)
	d.watch.mu.Unlock()
	fmt.Fprintf(w, "   %s TenantOffboarded(%s) %s\n", st.yellow("!"), tenant, st.dim("called once: the SaaS marks the customer as gone"))
	for _, wr := range rep.Warnings {
		fmt.Fprintf(w, "     %s %s\n", st.dim("log WARN"), st.dim(wr))
	}
	fmt.Fprintf(w, "     %s %s\n", st.yellow("hint:"), ae.Hint)

	// Every call after that fails fast: no assertion, no sign, no request.
	for i := range 3 {
		before, t0 := d.e.Counts(), time.Now()
		_, err = d.cred.GetToken(ctx, policy.TokenRequestOptions{Scopes: []string{defaultScope}, TenantID: tenant})
		elapsed := time.Since(t0)
		c := diff(d.e.Counts(), before)
		if !errors.As(err, &ae) || ae.Code != 700016 || ae.RefusedUntil.IsZero() || c.total() != 0 {
			return &exitError{code: exitFailure, msg: fmt.Sprintf("demo: call %d for %s after the refusal made %d calls (%v); expected a remembered refusal", i+1, name, c.total(), err)}
		}
		rep.FastCalls, rep.FastElapsed, rep.RefusedUntil = c, shortDuration(elapsed), ae.RefusedUntil
	}
	fmt.Fprintf(w, "   %s 3 more calls  refused from memory %s\n", st.green("✓"), st.dim(fmt.Sprintf("· %s each · Entra is asked again after %s (back-off 5s, doubling, up to 1h)", rep.FastElapsed, rep.RefusedUntil.Local().Format("15:04:05"))))
	fmt.Fprintf(w, "     %s %s   %s %s\n", st.dim("Key Vault:"), rep.FastCalls.line(true), st.dim("Entra ID:"), rep.FastCalls.line(false))

	before = d.e.Counts()
	r, err := tenants.Check(ctx, d.cred, tenant, demoWant())
	if err != nil {
		return failure("checking "+name, err)
	}
	rep.CheckState, rep.ConsentURL, rep.CheckCalls = r.State, r.ConsentURL, diff(d.e.Counts(), before)
	d.kv("check", r.State+st.dim(fmt.Sprintf(" (tenants.Check, as kvassert tenants check reports it; %d calls)", rep.CheckCalls.total())))
	if r.ConsentURL != "" {
		d.kv("consent link", r.ConsentURL+st.dim(" (to send the customer, should it come back)"))
	}
	if rep.Reported != 1 || !slices.Contains(d.watch.tenants, tenant) {
		return &exitError{code: exitFailure, msg: fmt.Sprintf("demo: TenantOffboarded called %d times", rep.Reported)}
	}
	return nil
}
