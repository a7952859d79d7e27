package entra

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"html/template"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/kvassert/kvassert/internal/emuhook"
	"github.com/kvassert/kvassert/kvasserttest/internal/emu"
	"github.com/kvassert/kvassert/kvasserttest/internal/names"
)

// The v2 admin-consent endpoint, GET /{tenant}/v2.0/adminconsent?client_id&
// scope&redirect_uri&state ("Admin consent on the Microsoft identity
// platform"): a page on which an administrator of the emulated tenant (with
// "organizations" or "common": of the tenant they pick) clicks Accept or
// Cancel. The buttons POST the page's form, with an anti-forgery token
// bound to the request's parameters, to the same path. Accept records the
// grant (a service principal with all of the app's roles, found by the
// token endpoint after the consent delay) and redirects to
// redirect_uri?admin_consent=True&tenant={id}&scope={granted}&state={state};
// Cancel redirects with error=access_denied&error_subcode=cancel. A request
// Entra would not redirect is answered with an error page (HTTP 400), never
// a redirect:
//
//	case                                                      AADSTS
//	--------------------------------------------------------  -------
//	tenant segment unknown (a GUID or domain)                 90002
//	tenant segment neither a GUID nor a DNS name              900023
//	method other than GET or POST                             900561
//	query string or form over 8 KiB                           90015
//	client_id, redirect_uri or scope missing                  900144
//	a parameter given twice                                   90100
//	client_id unknown or not a GUID                           700016
//	single-tenant app, another tenant picked or named         700016
//	single-tenant app on /organizations or /common            50194
//	redirect_uri not registered on the app (web platform)     50011
//	scope not "{resource}/.default" (space-separated)         70011
//	form without a valid anti-forgery token, posted from      90100
//	  another origin, or without action=accept|cancel
//	  (emulator-specific)

// The v1 endpoint, GET /{tenant}/adminconsent?client_id[&redirect_uri]
// [&state] (the link "Grant tenant-wide admin consent to an application"
// gives an administrator), is the same page and form, with two
// differences: redirect_uri is optional (the app's first registered one;
// none registered is AADSTS500113), and the consent is to every permission
// the app lists (its roles resource's "/.default"; no scope parameter, and
// none on the redirect).

// maxConsentRequest caps the query string (GET) and the body (POST).
const maxConsentRequest = 8 << 10

// consentDeclined is Entra's description of a refused consent.
const consentDeclined = "AADSTS65004: User declined to consent to access the app."

// consentRequest is a validated admin-consent request.
type consentRequest struct {
	seg         string  // canonical tenant segment: tenant ID, "organizations" or "common"
	tenant      *tenant // nil for organizations / common
	clientID    string  // lower case
	appName     string
	home        string
	multiTenant bool
	roles       []string
	resource    string // the app's roles resource ("" is Graph)
	redirectURI string
	scope       string
	state       string
	v1          bool // /{tenant}/adminconsent: no scope, redirect_uri optional
}

// serveAdminConsent answers GET and POST /{tenant}/v2.0/adminconsent, and
// with v1 /{tenant}/adminconsent.
func (e *Entra) serveAdminConsent(w http.ResponseWriter, r *http.Request, seg string, v1 bool) {
	if e.faults.Begin(w, r, emu.OpAdminConsent, e.faultWriter(r)) {
		return
	}
	pageHeaders(w.Header())
	params, oe := consentParams(r)
	if oe != nil {
		e.errorPage(w, r, oe)
		return
	}
	req, oe := e.consentRequest(seg, params, v1)
	if oe != nil {
		e.errorPage(w, r, oe)
		return
	}
	if r.Method == http.MethodGet {
		e.consentPage(w, req)
		return
	}
	if oe := e.checkForm(r, req, params); oe != nil {
		e.errorPage(w, r, oe)
		return
	}
	switch params.Get("action") {
	case "accept":
	case "cancel":
		redirect(w, req.redirectURI, url.Values{"error": {"access_denied"}, "error_subcode": {"cancel"}, "error_description": {consentDeclined}}, req.state)
		return
	default:
		e.errorPage(w, r, badParam("action"))
		return
	}
	tid, oe := e.consentTenant(req, params)
	if oe != nil {
		e.errorPage(w, r, oe)
		return
	}
	if err := e.GrantConsent(req.clientID, tid, e.ConsentDelay()); err != nil {
		e.errorPage(w, r, appNotFound(req.clientID, e.tenants[tid]))
		return
	}
	granted := url.Values{"admin_consent": {"True"}, "tenant": {tid}}
	if !req.v1 {
		granted.Set("scope", grantedScope(req))
	}
	redirect(w, req.redirectURI, granted, req.state)
}

// consentParams reads the query (GET) or the form (POST), bounded, and
// refuses a parameter given twice.
func consentParams(r *http.Request) (url.Values, *oauthError) {
	var raw string
	switch r.Method {
	case http.MethodGet:
		raw = r.URL.RawQuery
	case http.MethodPost:
		if r.URL.RawQuery != "" {
			return nil, badParam("query string")
		}
		b, err := io.ReadAll(io.LimitReader(r.Body, maxConsentRequest+1))
		if err != nil {
			return nil, newErr(http.StatusBadRequest, "invalid_request", 90004, "InvalidRequestFormat - The request isn't properly formatted.")
		}
		raw = string(b)
	default:
		return nil, newErr(http.StatusMethodNotAllowed, "invalid_request", 900561,
			"The endpoint only accepts GET and POST requests. Received a %s request.", truncate(r.Method))
	}
	if len(raw) > maxConsentRequest {
		return nil, newErr(http.StatusBadRequest, "invalid_request", 90015, "Requested query string is too long.")
	}
	v, err := url.ParseQuery(raw)
	if err != nil {
		return nil, newErr(http.StatusBadRequest, "invalid_request", 90004, "InvalidRequestFormat - The request isn't properly formatted.")
	}
	for name, vals := range v {
		if len(vals) > 1 {
			return nil, badParam(name)
		}
	}
	return v, nil
}

func badParam(name string) *oauthError {
	return newErr(http.StatusBadRequest, "invalid_request", 90100, "%s parameter is empty or not valid.", truncate(name))
}

// dnsName is a DNS name as Entra accepts a tenant segment.
var dnsName = regexp.MustCompile(`^(?i)[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$`)

// consentRequest validates the tenant segment and the parameters.
func (e *Entra) consentRequest(seg string, params url.Values, v1 bool) (*consentRequest, *oauthError) {
	req := &consentRequest{v1: v1}
	t, kind := e.resolveTenant(seg)
	switch kind {
	case tenantSpecific:
		req.seg, req.tenant = t.id, t
	case tenantOrgs, tenantCommon:
		req.seg = strings.ToLower(seg)
	default:
		if !isGUID(seg) && (len(seg) > 253 || !dnsName.MatchString(seg)) {
			return nil, tenantRefusal(900023, truncate(seg), "", "", nil)
		}
		return nil, tenantNotFound(truncate(seg))
	}
	required := []string{"client_id", "redirect_uri", "scope"}
	if v1 {
		required = required[:1]
	}
	for _, p := range required {
		if params.Get(p) == "" {
			return nil, missingParam(p)
		}
	}
	clientID := params.Get("client_id")
	if !e.consentApp(req, clientID) {
		return nil, appNotFound(truncate(clientID), orDirectory(req.tenant))
	}
	if req.tenant == nil && !req.multiTenant {
		return nil, newErr(http.StatusBadRequest, "invalid_request", 50194,
			"Application '%s'(%s) is not configured as a multi-tenant application. Usage of the /%s endpoint is not supported for such applications created after '10/15/2018'. Use a tenant-specific endpoint or configure the application to be multi-tenant.",
			req.clientID, req.appName, req.seg)
	}
	if req.tenant != nil && !req.multiTenant && req.tenant.id != req.home {
		return nil, appNotFound(req.clientID, req.tenant)
	}
	req.redirectURI, req.scope, req.state = params.Get("redirect_uri"), params.Get("scope"), params.Get("state")
	if v1 {
		if oe := e.v1Defaults(req); oe != nil {
			return nil, oe
		}
	}
	if !e.redirectRegistered(req.clientID, req.redirectURI) {
		return nil, newErr(http.StatusBadRequest, "invalid_request", 50011,
			"The redirect URI '%s' specified in the request does not match the redirect URIs configured for the application '%s'. Make sure the redirect URI sent in the request matches one added to your application in the Azure portal. Navigate to https://aka.ms/redirectUriMismatchError to learn more about how to fix this.",
			truncate(req.redirectURI), req.clientID)
	}
	for _, s := range strings.Fields(req.scope) {
		if r, ok := strings.CutSuffix(s, "/.default"); !ok || r == "" {
			return nil, newErr(http.StatusBadRequest, "invalid_scope", 70011,
				"The provided value for the input parameter 'scope' is not valid. The scope %s is not valid.", truncate(s))
		}
	}
	return req, nil
}

// v1Defaults fills what the v1 endpoint does not take: the scope (every
// permission the app lists) and, when not given, the redirect URI (the
// app's first registered one).
func (e *Entra) v1Defaults(req *consentRequest) *oauthError {
	resource := strings.TrimRight(req.resource, "/")
	if resource == "" {
		resource = "https://graph.microsoft.com"
	}
	req.scope = resource + "/.default"
	if req.redirectURI != "" {
		return nil
	}
	e.mu.RLock()
	defer e.mu.RUnlock()
	if a := e.apps[req.clientID]; a != nil && len(a.redirectURIs) > 0 {
		req.redirectURI = a.redirectURIs[0]
		return nil
	}
	return newErr(http.StatusBadRequest, "invalid_request", 500113, "No reply address is registered for the application.")
}

// orDirectory is t, or a stand-in naming "organizations" in 700016.
func orDirectory(t *tenant) *tenant {
	if t != nil {
		return t
	}
	return &tenant{id: "organizations"}
}

// consentApp fills req with the app's snapshot; false when there is no
// such app.
func (e *Entra) consentApp(req *consentRequest, clientID string) bool {
	if !isGUID(clientID) {
		return false
	}
	e.mu.RLock()
	defer e.mu.RUnlock()
	a := e.apps[strings.ToLower(clientID)]
	if a == nil {
		return false
	}
	req.clientID, req.appName, req.home, req.multiTenant = a.clientID, a.name, a.home, a.multiTenant
	req.roles, req.resource = slices.Clone(a.roles), a.rolesResource
	return true
}

// redirectRegistered reports whether uri matches one of the app's redirect
// URIs (web platform).
func (e *Entra) redirectRegistered(clientID, uri string) bool {
	if len(uri) > 2*names.MaxRedirectURI {
		return false
	}
	e.mu.RLock()
	defer e.mu.RUnlock()
	a := e.apps[clientID]
	return a != nil && slices.ContainsFunc(a.redirectURIs, func(reg string) bool { return names.RedirectURIMatches(reg, uri) })
}

// consentTenant is the tenant an Accept consents in: the path's, or the
// one the administrator picked on /organizations and /common.
func (e *Entra) consentTenant(req *consentRequest, params url.Values) (string, *oauthError) {
	if req.tenant != nil {
		return req.tenant.id, nil
	}
	picked := params.Get("tenant")
	t := e.tenants[strings.ToLower(picked)]
	switch {
	case t == nil:
		return "", tenantNotFound(truncate(picked))
	case !req.multiTenant && t.id != req.home:
		return "", appNotFound(req.clientID, t)
	}
	return t.id, nil
}

// csrfToken binds the form to the request's parameters.
func (e *Entra) csrfToken(req *consentRequest) string {
	m := hmac.New(sha256.New, e.formKey)
	m.Write([]byte(strings.Join([]string{consentPath(req), req.seg, req.clientID, req.redirectURI, req.scope, req.state}, "\x00")))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// checkForm refuses a POST without the page's anti-forgery token, or sent
// from a page of another origin than the login host or the loopback address.
func (e *Entra) checkForm(r *http.Request, req *consentRequest, params url.Values) *oauthError {
	if origin := r.Header.Get("Origin"); origin != "" {
		u, err := url.Parse(origin)
		if err != nil || u.Scheme != "https" || !(emuhook.IsLoginHost(u.Hostname()) || emuhook.IsLoopbackHost(u.Hostname())) {
			return badParam("Origin")
		}
	}
	got := params.Get("csrf")
	if got == "" || !hmac.Equal([]byte(got), []byte(e.csrfToken(req))) {
		return badParam("csrf")
	}
	return nil
}

// grantedScope is the redirect's scope: the granted permissions as
// "{resource}/{role}", space-separated, or the requested scope when the
// app has no roles.
func grantedScope(req *consentRequest) string {
	if len(req.roles) == 0 {
		return req.scope
	}
	resource := strings.TrimRight(req.resource, "/")
	if resource == "" {
		resource = "https://graph.microsoft.com"
	}
	out := make([]string, len(req.roles))
	for i, r := range req.roles {
		out[i] = resource + "/" + r
	}
	return strings.Join(out, " ")
}

// redirect sends the browser to uri with params (and state when given)
// added to its query.
func redirect(w http.ResponseWriter, uri string, params url.Values, state string) {
	if state != "" {
		params.Set("state", state)
	}
	sep := "?"
	if strings.Contains(uri, "?") {
		sep = "&"
	}
	w.Header().Set("Location", uri+sep+params.Encode())
	w.WriteHeader(http.StatusFound)
}

// pageHeaders are the headers of every page: no caching, no framing, no
// script, no referrer to other origins.
func pageHeaders(h http.Header) {
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store, no-cache")
	h.Set("Pragma", "no-cache")
	h.Set("X-Frame-Options", "DENY")
	h.Set("X-Content-Type-Options", "nosniff")
	// same-origin, not no-referrer: under no-referrer a browser posts the
	// form with "Origin: null", which checkForm refuses; the redirect to
	// another origin still carries no Referer.
	h.Set("Referrer-Policy", "same-origin")
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'")
}

// consentPath is the path the page's form posts to: the one it was served
// on.
func consentPath(req *consentRequest) string {
	if req.v1 {
		return "/" + req.seg + "/adminconsent"
	}
	return "/" + req.seg + "/v2.0/adminconsent"
}

// tenantOption is one choice of the tenant select.
type tenantOption struct {
	ID, Label string
	Selected  bool
}

// consentPage renders the page an administrator accepts or cancels.
func (e *Entra) consentPage(w http.ResponseWriter, req *consentRequest) {
	data := map[string]any{
		"App":         req.appName,
		"ClientID":    req.clientID,
		"Roles":       req.roles,
		"Resource":    resourceLabel(req.resource),
		"Action":      consentPath(req),
		"RedirectURI": req.redirectURI,
		"Scope":       req.scope,
		"State":       req.state,
		"CSRF":        e.csrfToken(req),
	}
	if req.tenant != nil {
		data["Tenant"] = req.tenant.display()
		data["TenantID"] = req.tenant.id
	} else {
		data["Options"] = e.tenantOptions(req.home)
	}
	w.WriteHeader(http.StatusOK)
	_ = consentTemplate.Execute(w, data)
}

// tenantOptions lists the scenario's tenants, the first one other than the
// app's home tenant selected.
func (e *Entra) tenantOptions(home string) []tenantOption {
	out := make([]tenantOption, 0, len(e.cfg.Scenario.Tenants))
	picked := false
	for _, st := range e.cfg.Scenario.Tenants {
		t := e.tenants[strings.ToLower(st.ID)]
		o := tenantOption{ID: t.id, Label: t.id}
		if t.name != "" {
			o.Label = t.name + " (" + t.id + ")"
		}
		if !picked && t.id != home {
			o.Selected, picked = true, true
		}
		out = append(out, o)
	}
	return out
}

func resourceLabel(resource string) string {
	if names.SameResource(resource, "") {
		return "Microsoft Graph"
	}
	return resource
}

// errorPage renders an Entra-like sign-in error page (HTTP 400, or 405 for
// a method).
func (e *Entra) errorPage(w http.ResponseWriter, r *http.Request, oe *oauthError) {
	status := http.StatusBadRequest
	if oe.status == http.StatusMethodNotAllowed {
		status = oe.status
		w.Header().Set("Allow", "GET, POST")
	}
	w.WriteHeader(status)
	_ = errorTemplate.Execute(w, map[string]any{
		"Code":          oe.code,
		"Message":       oe.msg,
		"RequestID":     newGUID(),
		"CorrelationID": correlationID(r),
		"Timestamp":     e.now().UTC().Format(time.RFC3339),
	})
}

// truncate bounds a request value echoed in a message.
func truncate(s string) string {
	const n = 100
	if len(s) <= n {
		return s
	}
	return strings.ToValidUTF8(s[:n], "") + "…"
}

var consentTemplate = template.Must(template.New("consent").Parse(`<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Permissions requested</title>
<style>body{font-family:Segoe UI,sans-serif;max-width:32rem;margin:3rem auto;padding:0 1rem}button{padding:.4rem 1.4rem;margin-right:.5rem}.note{color:#555;font-size:.9rem}</style></head>
<body><h1>Permissions requested</h1>
<p class="note">kvassert emulator: you are an administrator of the emulated tenant.</p>
<p><strong id="app">{{.App}}</strong> <span class="note">(application {{.ClientID}}, unverified)</span></p>
<form method="POST" action="{{.Action}}">
{{if .Options}}<p><label for="tenant">Accept for the organization</label>
<select id="tenant" name="tenant">{{range .Options}}<option value="{{.ID}}"{{if .Selected}} selected{{end}}>{{.Label}}</option>{{end}}</select></p>
{{else}}<p>Accept for the organization <strong id="tenant-name" data-tenant="{{.TenantID}}">{{.Tenant}}</strong>
<input id="tenant" value="{{.TenantID}}" readonly size="36" aria-label="tenant ID"></p>{{end}}
<p>This app would like these application permissions on {{.Resource}}, for your whole organization:</p>
<ul id="roles">{{range .Roles}}<li>{{.}}</li>{{else}}<li>(none)</li>{{end}}</ul>
<input type="hidden" name="client_id" value="{{.ClientID}}">
<input type="hidden" name="redirect_uri" value="{{.RedirectURI}}">
<input type="hidden" name="scope" value="{{.Scope}}">
<input type="hidden" name="state" value="{{.State}}">
<input type="hidden" name="csrf" value="{{.CSRF}}">
<p><button id="accept" type="submit" name="action" value="accept">Accept</button>
<button id="cancel" type="submit" name="action" value="cancel">Cancel</button></p>
</form></body></html>
`))

var errorTemplate = template.Must(template.New("error").Parse(`<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Sign in to your account</title>
<style>body{font-family:Segoe UI,sans-serif;max-width:32rem;margin:3rem auto;padding:0 1rem}.d{color:#555;font-size:.85rem}</style></head>
<body><h1>Sign in</h1>
<p>Sorry, but we're having trouble signing you in.</p>
<p id="error"><span id="error-code">AADSTS{{.Code}}</span>: {{.Message}}</p>
<div class="d"><p>Request Id: {{.RequestID}}</p><p>Correlation Id: {{.CorrelationID}}</p><p>Timestamp: {{.Timestamp}}</p></div>
</body></html>
`))
