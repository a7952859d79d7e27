package tenants

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/cloud"

	"github.com/kvassert/kvassert"
	"github.com/kvassert/kvassert/internal/entraid"
)

// Consent is a customer tenant's admin consent, as the redirect reported it
// (its state checked).
type Consent struct {
	// Tenant is the consenting tenant's ID (a GUID, lower case), as the
	// redirect names it: the link's tenant for a link made for a tenant ID,
	// else a claim that only the proof confirms (see NewHandler).
	Tenant string
	// Scope is the scope Entra reported as consented ("" if none or if it
	// was not a plain list of scopes).
	Scope string
}

// HandlerOptions are the optional settings of a Handler.
type HandlerOptions struct {
	// StateTTL is how long a consent link (its state) stays valid:
	// default 15 minutes, at most 24 hours.
	StateTTL time.Duration
	// ProveTimeout bounds how long the Handler retries, after the
	// callback, to get a token in the new tenant (Entra replicates a
	// consent within seconds to minutes; until then it answers AADSTS700016).
	// It bounds the whole proof: a token request still running then is
	// cancelled. Default 2 minutes, at most 1 hour; negative: do not prove
	// (the page then says the consent was recorded). The redirect's answer
	// waits for it: keep it below the http.Server's WriteTimeout.
	ProveTimeout time.Duration
	// Want is what the proof checks (see Check); nil: a Microsoft Graph
	// token. Its resources are also the consent link's scopes.
	Want *Want
	// Scope is the consent link's scope (see ConsentURLOptions.Scope);
	// default: the resources of Want, each with "/.default".
	Scope string
	// States remembers used states (see StateStore); nil: the Handler's
	// memory, at most 100,000 states in flight.
	States StateStore
	// Proved, if set, is called with the proof's report after the callback
	// succeeded (e.g. to store the roles the tenant granted); a panic in it
	// is recovered.
	Proved func(ctx context.Context, r Report)
	// Logger gets a Warn record when the callback fails or panics, or the
	// proof ends without a token; nil means slog.Default().
	Logger *slog.Logger
}

// Handler is the http.Handler of the app's admin-consent redirect URI; it
// also makes the consent links (ConsentURL). See NewHandler.
type Handler struct {
	cred      *kvassert.Credential
	redirect  string
	key       []byte
	bind      []byte // stateBinding: the app and redirectURI
	onConsent func(context.Context, Consent) error
	plan      *checkPlan
	scope     string
	ttl       time.Duration
	prove     time.Duration
	states    StateStore
	proved    func(context.Context, Report)
	logger    *slog.Logger
	now       func() time.Time
	sleep     func(ctx context.Context, d time.Duration) bool
}

// The bounds of a redirect the Handler reads: Entra's success redirect
// lists every granted permission in scope (about 60 bytes each, escaped),
// so 8 KiB takes an app with over a hundred.
const (
	maxQuery  = 8192
	maxParams = 16
)

// NewHandler returns the handler for redirectURI (registered on the app,
// web platform; https, or http on loopback for development), which must
// route to it. stateKey (at least 32 random bytes, the same on every
// replica; keep it secret) signs the states. onConsent is called once per
// accepted consent, with the tenant, before the proof; its error makes the
// page say the onboarding failed (the error's text is not shown).
//
// A redirect is a GET with a state the Handler minted, not expired and not
// used before (see StateStore). Anything else (another method, a query over
// 8 KiB, a parameter given twice, a missing or forged state, a tenant that
// is not a GUID) gets a 4xx page that quotes none of it and never reaches
// onConsent. A refusal (error=access_denied, e.g. the administrator
// cancelled) gets a page saying so and never reaches onConsent. After a
// consent the Handler makes cred forget the tenant's refusal and tokens
// (Credential.ForgetTenant), calls onConsent, then proves
// it (HandlerOptions.ProveTimeout) and shows the roles granted against
// Want's. The credential must be allowed the new tenant
// (CredentialOptions.AdditionallyAllowedTenants, e.g. "*").
//
// The redirect is not authenticated: whoever holds a link's state can send
// it to the redirect URI without Entra. A state is accepted once, by this
// Handler only (its app and redirect URI), and for a link made for a tenant
// ID only with that tenant; a link for "organizations" or a domain accepts
// whatever tenant the redirect names. So onConsent's Consent.Tenant is a
// claim until the proof confirms it: act on HandlerOptions.Proved's report
// (StateOK or StateMissingRoles) rather than on onConsent alone, and prefer
// links for a tenant ID when the customer's tenant is known.
func NewHandler(cred *kvassert.Credential, redirectURI string, stateKey []byte, onConsent func(ctx context.Context, c Consent) error, opts *HandlerOptions) (*Handler, error) {
	if cred == nil {
		return nil, inputErr("cred", "cred is a nil *kvassert.Credential")
	}
	if err := checkRedirectURI(redirectURI); err != nil {
		return nil, err
	}
	if len(stateKey) < 32 {
		return nil, inputErr("stateKey", "stateKey has %d bytes; it needs at least 32 random bytes", len(stateKey))
	}
	if bytes.Count(stateKey, stateKey[:1]) == len(stateKey) {
		// make([]byte, 32) never filled: anyone could forge states.
		return nil, inputErr("stateKey", "stateKey is %d equal bytes, a placeholder, not a secret: fill it from crypto/rand (the same on every replica)", len(stateKey))
	}
	if onConsent == nil {
		return nil, inputErr("onConsent", "onConsent is nil")
	}
	var o HandlerOptions
	if opts != nil {
		o = *opts
	}
	h := &Handler{cred: cred, redirect: redirectURI, key: append([]byte(nil), stateKey...), onConsent: onConsent,
		ttl: o.StateTTL, prove: o.ProveTimeout, states: o.States, proved: o.Proved, logger: o.Logger, now: time.Now, sleep: sleepCtx}
	switch {
	case h.ttl < 0 || h.ttl > 24*time.Hour:
		return nil, inputErr("StateTTL", "StateTTL %v is not between 0 (default 15 min) and 24 h", h.ttl)
	case h.ttl == 0:
		h.ttl = 15 * time.Minute
	}
	switch {
	case h.prove > time.Hour:
		return nil, inputErr("ProveTimeout", "ProveTimeout %v is over 1 h", h.prove)
	case h.prove == 0:
		h.prove = 2 * time.Minute
	}
	var err error
	if h.plan, err = plan(cred, o.Want); err != nil {
		return nil, err
	}
	h.bind = stateBinding(h.plan.id.ClientID, redirectURI)
	if h.plan.consent == nil {
		h.plan.consent = h.ConsentURL // the proof's link: signed, to this Handler
	}
	h.scope = o.Scope
	if h.scope == "" {
		scopes := make([]string, len(h.plan.resources))
		for i, r := range h.plan.resources {
			scopes[i] = r + "/.default"
		}
		h.scope = strings.Join(scopes, " ")
	}
	if err := checkScope(h.scope); err != nil {
		return nil, err
	}
	if h.states == nil {
		h.states = &memoryStates{used: map[string]time.Time{}, max: 100_000, now: func() time.Time { return h.now() }}
	}
	if h.logger == nil {
		h.logger = slog.Default()
	}
	return h, nil
}

// ConsentURL returns an admin-consent link for tenant ("" or
// "organizations": the administrator's own tenant) with a fresh state,
// valid for HandlerOptions.StateTTL and usable once, and only for this
// Handler's app and redirect URI. A link for a tenant ID is accepted only
// for a consent in that tenant; a link for a domain or "organizations"
// for a consent in any tenant.
func (h *Handler) ConsentURL(tenant string) (string, error) {
	if tenant != "" && !entraid.ValidTenant(tenant) {
		return "", inputErr("tenant", "tenant (%d bytes) is not a tenant ID or domain", len(tenant))
	}
	if tenant != "" {
		if err := checkConsentTenant(tenant); err != nil {
			return "", err
		}
	}
	g, isID := tenantGUID(tenant)
	domain := ""
	if tenant != "" && !isID && !entraid.TenantAlias(tenant) {
		domain = strings.ToLower(tenant)
	}
	state, err := mintState(h.key, h.bind, h.now().Add(h.ttl), g, domain)
	if err != nil {
		return "", err
	}
	o := ConsentURLOptions{Tenant: tenant, Cloud: cloud.Configuration{ActiveDirectoryAuthorityHost: h.plan.id.AuthorityHost}, Scope: h.scope}
	return consentURL(h.plan.id.ClientID, h.redirect, state, o)
}

func checkConsentTenant(t string) error {
	if entraid.TenantAlias(t) && !strings.EqualFold(t, "organizations") {
		return inputErr("tenant", "tenant %q cannot consent for an organization; use a tenant, or organizations", t)
	}
	return nil
}

// ServeHTTP handles the redirect.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	defer func() {
		if v := recover(); v != nil {
			h.logger.Warn("tenants: the consent redirect panicked; the administrator was asked to try again")
			writePage(w, http.StatusInternalServerError, page{Title: "Something went wrong", Message: "The consent could not be processed. Please try again."})
		}
	}()
	if r.Method != http.MethodGet { // not HEAD either: a consent is acted on once, for the browser
		w.Header().Set("Allow", "GET")
		writePage(w, http.StatusMethodNotAllowed, page{Title: "Method not allowed", Message: "This address only receives the redirect from Microsoft Entra ID."})
		return
	}
	q, bad := readRedirect(r.URL.RawQuery)
	if bad != "" {
		writePage(w, http.StatusBadRequest, page{Title: "Invalid consent response", Message: bad})
		return
	}
	st, err := verifyState(h.key, h.bind, q.Get("state"), h.now())
	if err != nil {
		writePage(w, http.StatusBadRequest, page{Title: "Invalid or expired consent link",
			Message: "This consent response does not come from a link this app made, or the link expired. Please start the onboarding again."})
		return
	}
	if e := q.Get("error"); e != "" {
		if h.use(w, r, st.nonce, st.exp) {
			writePage(w, http.StatusOK, refusalPage(e, q.Get("error_subcode")))
		}
		return
	}
	if !strings.EqualFold(q.Get("admin_consent"), "true") {
		writePage(w, http.StatusBadRequest, page{Title: "Invalid consent response", Message: "The response neither grants nor refuses consent (admin_consent=True is missing)."})
		return
	}
	tenant := q.Get("tenant")
	g, ok := tenantGUID(tenant) // a tenant ID is a GUID
	if !ok {
		writePage(w, http.StatusBadRequest, page{Title: "Invalid consent response", Message: "The response names no valid tenant ID."})
		return
	}
	if st.tenant != ([16]byte{}) && g != st.tenant {
		writePage(w, http.StatusBadRequest, page{Title: "Invalid consent response",
			Message: "The response names another tenant than the one this consent link was made for. Please start the onboarding again."})
		return
	}
	if !h.use(w, r, st.nonce, st.exp) {
		return
	}
	h.onboard(w, r.Context(), Consent{Tenant: strings.ToLower(tenant), Scope: consentedScope(q.Get("scope"))}, st.domain)
}

// readRedirect parses the query, refusing what Entra never sends.
func readRedirect(raw string) (url.Values, string) {
	if len(raw) > maxQuery {
		return nil, "The response is too long."
	}
	q, err := url.ParseQuery(raw)
	if err != nil {
		return nil, "The response is not a valid query string."
	}
	if len(q) > maxParams {
		return nil, "The response has too many parameters."
	}
	for _, v := range q {
		if len(v) > 1 {
			return nil, "The response repeats a parameter."
		}
	}
	if q.Get("state") == "" {
		return nil, "The response has no state: it does not come from a link this app made."
	}
	return q, ""
}

// use marks the state used; false (with the page written) when it was.
func (h *Handler) use(w http.ResponseWriter, r *http.Request, nonce string, exp time.Time) (ok bool) {
	fresh, err := func() (fresh bool, err error) {
		defer func() {
			if v := recover(); v != nil {
				err = errors.New("tenants: the StateStore panicked")
			}
		}()
		return h.states.Use(r.Context(), nonce, exp.Add(stateSkew))
	}()
	switch {
	case err != nil:
		h.logger.Warn("tenants: the state store failed; the administrator was asked to try again", "error", err.Error())
		writePage(w, http.StatusServiceUnavailable, page{Title: "Please try again", Message: "The consent could not be recorded right now. Please start the onboarding again in a few minutes."})
	case !fresh:
		writePage(w, http.StatusBadRequest, page{Title: "Consent link already used", Message: "This consent response was already received. Please start the onboarding again if needed."})
	}
	return err == nil && fresh
}

func consentedScope(s string) string {
	if s == "" || len(s) > maxQuery || strings.ContainsFunc(s, isControl) {
		return ""
	}
	return s
}

// forget clears the tenant's remembered refusal and its tokens, in memory
// and in the credential's SharedCache, so that the next request goes to
// Entra (and a token from before the consent, without the new roles, is
// not served).
func (h *Handler) forget(ctx context.Context, tenant string) {
	var ie *kvassert.InputError
	if err := h.cred.ForgetTenant(ctx, tenant); err != nil && !errors.As(err, &ie) { // a tenant the credential does not allow: the proof says so
		h.logger.Warn("tenants: could not forget the tenant's refusal in the shared cache; other replicas may refuse it until their back-off ends", "tenant", tenant, "error", err.Error())
	}
}

// onboard calls the callback and proves the consent. domain is the
// domain the consent link was made for, if any: a refusal the credential
// remembers under that name (a Check by domain before the consent) is
// forgotten too, since the credential cannot know yet that the domain and
// the tenant ID are one tenant.
func (h *Handler) onboard(w http.ResponseWriter, ctx context.Context, c Consent, domain string) {
	h.forget(ctx, c.Tenant)
	if domain != "" {
		h.forget(ctx, domain)
	}
	if err := h.callback(ctx, c); err != nil {
		h.logger.Warn("tenants: the onConsent callback failed; the administrator was told onboarding failed", "tenant", c.Tenant, "error", err.Error())
		writePage(w, http.StatusInternalServerError, page{Title: "Onboarding failed", Tenant: c.Tenant,
			Message: "Consent was granted, but this app could not complete the onboarding. Please contact its support."})
		return
	}
	if h.prove < 0 {
		writePage(w, http.StatusOK, page{Title: "Consent recorded", Tenant: c.Tenant, OK: true, Message: "Your organization granted consent to this app."})
		return
	}
	rep := h.proveTenant(ctx, c.Tenant)
	if h.proved != nil {
		func() {
			defer func() { _ = recover() }()
			h.proved(ctx, rep)
		}()
	}
	if rep.State != StateOK && rep.State != StateMissingRoles {
		h.logger.Warn("tenants: no token in a tenant that consented", "tenant", c.Tenant, "state", rep.State, "code", rep.Code)
	}
	writePage(w, http.StatusOK, reportPage(rep))
}

func (h *Handler) callback(ctx context.Context, c Consent) (err error) {
	defer func() {
		if v := recover(); v != nil {
			err = fmt.Errorf("tenants: onConsent panicked")
		}
	}()
	return h.onConsent(ctx, c)
}

// proveTenant checks the tenant until a token comes, a refusal that
// waiting cannot fix, or ProveTimeout, which bounds the whole proof: a
// token request still running then is cancelled (the answer before it,
// if any, is reported).
func (h *Handler) proveTenant(ctx context.Context, tenant string) Report {
	deadline := h.now().Add(h.prove)
	pctx, cancel := context.WithTimeout(ctx, h.prove)
	defer cancel()
	delay := time.Second
	var last *Report
	for {
		rep := h.plan.safeCheck(pctx, tenant)
		if last != nil && pctx.Err() != nil && ctx.Err() == nil {
			return *last // cut by ProveTimeout: the answer before says more
		}
		if !h.waitFor(rep) || deadline.Sub(h.now()) <= delay || ctx.Err() != nil {
			return rep // no time left for another try after the back-off
		}
		if !h.sleep(pctx, delay) {
			return rep
		}
		last = &rep
		delay = min(2*delay, 15*time.Second)
		h.forget(pctx, tenant) // drop the refusal (and a token without the roles) it remembered
	}
}

// waitFor: the states replication explains right after a consent.
func (h *Handler) waitFor(r Report) bool {
	switch r.State {
	case "app_not_found", "resource_not_found", StateUnreachable:
		return true
	case StateMissingRoles: // a token from before the grant (forget drops it)
		return true
	}
	return false
}

func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
