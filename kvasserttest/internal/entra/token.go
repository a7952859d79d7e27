package entra

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/kvassert/kvassert/kvasserttest/internal/emu"
)

const jwtBearer = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"

// appView is a snapshot of an app, taken under the lock, for one request.
type appView struct {
	clientID      string
	home          string
	secrets       []string
	certs         []keyCredential
	fics          []ficView
	roles         []string // granted in the request's tenant
	rolesResource string
	refusal       int // SetTenantRefusal's code for the tenant, 0 if none
}

type ficView struct {
	issuer, subject string
	audiences       []string
}

// view snapshots the app with this client ID for a token request in tenant
// t, or returns why Entra would not find it there: 700016 (no app, no
// service principal, or one not replicated yet), 7000229 (none in its home
// tenant), 7000112 (disabled), or a tenant refusal (SetTenantRefusal) that
// strikes before the client is authenticated.
func (e *Entra) view(clientID, seg, resource string, t *tenant) (*appView, *oauthError) {
	e.mu.RLock()
	defer e.mu.RUnlock()
	a := e.apps[strings.ToLower(clientID)]
	if a == nil || !isGUID(clientID) {
		return nil, appNotFound(clientID, t)
	}
	refusal := a.refusals[t.id]
	switch refusal {
	case 90002, 900023, 7000229, 500011:
		return nil, tenantRefusal(refusal, seg, a.clientID, resource, t)
	}
	sp := a.sp[t.id]
	switch {
	case sp == nil && t.id == a.home:
		return nil, tenantRefusal(7000229, seg, a.clientID, resource, t)
	case sp == nil || e.now().Before(sp.visibleAt):
		return nil, appNotFound(clientID, t)
	case sp.disabled:
		return nil, newErr(http.StatusBadRequest, "unauthorized_client", 7000112,
			"Application '%s'(%s) is disabled.", a.clientID, a.name)
	}
	v := &appView{
		clientID:      a.clientID,
		home:          a.home,
		secrets:       a.secrets,
		roles:         sp.granted(a),
		rolesResource: a.rolesResource,
		refusal:       refusal,
	}
	for _, c := range a.certs {
		v.certs = append(v.certs, *c)
	}
	for _, f := range a.fics {
		v.fics = append(v.fics, ficView{issuer: f.Issuer, subject: f.Subject, audiences: f.Audiences})
	}
	return v, nil
}

// tokenResponse is Entra's client-credentials answer.
type tokenResponse struct {
	TokenType    string `json:"token_type"`
	ExpiresIn    int64  `json:"expires_in"`
	ExtExpiresIn int64  `json:"ext_expires_in"`
	AccessToken  string `json:"access_token"`
}

// serveToken answers POST /{tenant}/oauth2/v2.0/token.
func (e *Entra) serveToken(w http.ResponseWriter, r *http.Request, seg string) {
	if e.faults.Begin(w, r, emu.OpToken, e.faultWriter(r)) {
		return
	}
	resp, oe := e.token(r, seg)
	if oe != nil {
		e.writeOAuthError(w, r, oe)
		return
	}
	e.issued.Add(1)
	// Entra identifies successful answers too: a request ID, and the
	// client's correlation ID echoed.
	w.Header().Set("x-ms-request-id", newGUID())
	w.Header().Set("client-request-id", correlationID(r))
	writeJSON(w, http.StatusOK, resp)
}

func missingParam(name string) *oauthError {
	return newErr(http.StatusBadRequest, "invalid_request", 900144,
		"The request body must contain the following parameter: '%s'.", name)
}

// token runs the client-credentials grant.
func (e *Entra) token(r *http.Request, seg string) (*tokenResponse, *oauthError) {
	t, form, oe := e.grantRequest(r, seg)
	if oe != nil {
		return nil, oe
	}
	clientID, secret := clientCredentials(r, form)
	if clientID == "" {
		return nil, missingParam("client_id")
	}
	scope := form.Get("scope")
	if scope == "" {
		return nil, missingParam("scope")
	}
	resource, oe := parseScope(scope)
	if oe != nil {
		return nil, oe
	}
	a, oe := e.view(clientID, seg, resource, t)
	if oe != nil {
		return nil, oe
	}
	if oe := e.authenticateClient(r, form, a, t, secret); oe != nil {
		return nil, oe
	}
	if a.refusal == 53003 { // Conditional Access is evaluated once the client is authenticated
		return nil, tenantRefusal(53003, seg, a.clientID, resource, t)
	}
	return e.issueAppToken(a, t, resource)
}

// grantRequest checks the method, the tenant and the grant type of a token
// request and returns its tenant and form.
func (e *Entra) grantRequest(r *http.Request, seg string) (*tenant, url.Values, *oauthError) {
	if r.Method != http.MethodPost {
		return nil, nil, newErr(http.StatusBadRequest, "invalid_request", 900561,
			"The endpoint only accepts POST, OPTIONS requests. Received a %s request.", r.Method)
	}
	t, kind := e.resolveTenant(seg)
	if kind == tenantUnknown {
		return nil, nil, tenantNotFound(seg)
	}
	form, oe := readForm(r)
	if oe != nil {
		return nil, nil, oe
	}
	grant := form.Get("grant_type")
	if grant == "" {
		return nil, nil, missingParam("grant_type")
	}
	if grant != "client_credentials" {
		return nil, nil, newErr(http.StatusBadRequest, "unsupported_grant_type", 70003,
			"The app requested an unsupported grant type '%s'.", grant)
	}
	switch kind {
	case tenantCommon, tenantConsumers:
		return nil, nil, newErr(http.StatusBadRequest, "invalid_request", 9001023,
			"The grant type isn't supported over the /common or /consumers endpoints. Please use the /organizations or tenant-specific endpoint.")
	case tenantOrgs:
		return nil, nil, newErr(http.StatusBadRequest, "invalid_request", 50059,
			"No tenant-identifying information found in either the request or implied by any provided credentials.")
	}
	return t, form, nil
}

// clientCredentials returns the client ID and secret of a token request:
// from the form (client_secret_post) or the Authorization header
// (client_secret_basic).
func clientCredentials(r *http.Request, form url.Values) (clientID, secret string) {
	clientID, secret = form.Get("client_id"), form.Get("client_secret")
	if user, pass, ok := r.BasicAuth(); ok { // client_secret_basic
		u, err1 := url.QueryUnescape(user)
		p, err2 := url.QueryUnescape(pass)
		if err1 == nil && err2 == nil {
			if clientID == "" {
				clientID = u
			}
			if strings.EqualFold(clientID, u) && secret == "" {
				secret = p
			}
		}
	}
	return clientID, secret
}

// authenticateClient checks the client's secret or assertion.
func (e *Entra) authenticateClient(r *http.Request, form url.Values, a *appView, t *tenant, secret string) *oauthError {
	assertion, assertionType := form.Get("client_assertion"), form.Get("client_assertion_type")
	switch {
	case secret == "" && assertion == "":
		return newErr(http.StatusUnauthorized, "invalid_client", 7000216,
			"'client_assertion', 'client_secret' or 'request' is required for the 'client_credentials' grant type.")
	case secret != "" && assertion != "":
		return newErr(http.StatusBadRequest, "invalid_request", 9002313,
			"Invalid request. Request is malformed or invalid: give either 'client_secret' or 'client_assertion', not both.")
	case secret != "":
		if !secretMatches(a.secrets, secret) {
			return newErr(http.StatusUnauthorized, "invalid_client", 7000215,
				"Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '%s'.",
				a.clientID)
		}
		return nil
	}
	if assertionType != jwtBearer {
		return newErr(http.StatusBadRequest, "invalid_request", 9002313,
			"Invalid request. Request is malformed or invalid: 'client_assertion_type' must be '%s'.", jwtBearer)
	}
	j, oe := parseJWS(assertion)
	if oe != nil {
		return oe
	}
	if j.hasThumb {
		return e.certificateAssertion(j, a, t, r.Host)
	}
	return e.federatedAssertion(j, a)
}

// readForm reads the url-encoded body, capped at maxBody.
func readForm(r *http.Request) (url.Values, *oauthError) {
	r.Body = http.MaxBytesReader(nil, r.Body, maxBody)
	if err := r.ParseForm(); err != nil {
		return nil, newErr(http.StatusBadRequest, "invalid_request", 90004,
			"InvalidRequestFormat - The request isn't properly formatted.")
	}
	return r.PostForm, nil
}

// parseScope returns the resource of a client-credentials scope: exactly one
// "{resource}/.default", besides MSAL's "openid offline_access profile".
func parseScope(scope string) (string, *oauthError) {
	var rest []string
	for _, s := range strings.Fields(scope) {
		switch s {
		case "openid", "offline_access", "profile":
		default:
			rest = append(rest, s)
		}
	}
	if len(rest) != 1 {
		return "", newErr(http.StatusBadRequest, "invalid_scope", 70011,
			"The provided value for the input parameter 'scope' is not valid. The scope %s is not valid.", strings.Join(rest, " "))
	}
	resource, ok := strings.CutSuffix(rest[0], "/.default")
	if !ok {
		return "", newErr(http.StatusBadRequest, "invalid_scope", 1002012,
			"The provided value for scope %s is not valid. Client credential flows must have a scope value with /.default suffixed to the resource identifier (application ID URI).",
			rest[0])
	}
	if resource == "" {
		return "", newErr(http.StatusBadRequest, "invalid_scope", 70011,
			"The provided value for the input parameter 'scope' is not valid. The scope %s is not valid.", rest[0])
	}
	return resource, nil
}

// secretMatches compares in constant time against every secret.
func secretMatches(secrets []string, got string) bool {
	ok := 0
	for _, s := range secrets {
		ok |= subtle.ConstantTimeCompare([]byte(s), []byte(got))
	}
	return ok == 1
}

// issueAppToken signs an app-only access token for the app in tenant t.
func (e *Entra) issueAppToken(a *appView, t *tenant, resource string) (*tokenResponse, *oauthError) {
	now := e.now()
	sp := servicePrincipalID(t.id, a.clientID)
	claims := e.appClaims(resource, t.id, a.clientID, sp, now)
	claims.Roles = rolesFor(a, resource)
	tok, err := e.auth.Issue(claims)
	if err != nil {
		return nil, newErr(http.StatusInternalServerError, "server_error", 50000,
			"There was an error issuing a token.")
	}
	in := max(int64(e.lifetime.Seconds())-1, 1)
	return &tokenResponse{TokenType: "Bearer", ExpiresIn: in, ExtExpiresIn: in, AccessToken: tok}, nil
}

// appClaims are the claims of an app-only access token for resource,
// issued at now in tenant to clientID, whose principal (service principal
// or managed identity) is oid.
func (e *Entra) appClaims(resource, tenant, clientID, oid string, now time.Time) emu.AccessClaims {
	return emu.AccessClaims{
		Aud:   resource,
		Iss:   "https://login.microsoftonline.com/" + tenant + "/v2.0",
		Tid:   tenant,
		AppID: clientID,
		Azp:   clientID,
		Oid:   oid,
		Sub:   oid,
		IdTyp: "app",
		Ver:   "2.0",
		UTI:   uti(),
		Iat:   now.Unix(),
		Nbf:   now.Unix(),
		Exp:   now.Add(e.lifetime).Unix(),
	}
}

// uti is a random token identifier, as Entra's 22-character "uti".
func uti() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}
