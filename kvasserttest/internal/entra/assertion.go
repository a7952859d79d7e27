package entra

import (
	"bytes"
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// jws is a parsed JWS compact serialization (a JWT).
type jws struct {
	header struct {
		Alg     string   `json:"alg"`
		Typ     string   `json:"typ"`
		Kid     string   `json:"kid"`
		X5t     string   `json:"x5t"`
		X5tS256 string   `json:"x5t#S256"`
		X5c     []string `json:"x5c"`
	}
	claims   map[string]any
	signing  string // base64url(header) "." base64url(payload)
	sig      []byte
	compact  string
	hasThumb bool
}

func malformedJWT() *oauthError {
	return newErr(http.StatusBadRequest, "invalid_request", 50027, "JWT token is invalid or malformed.")
}

// parseJWS decodes a compact JWS. It accepts only unpadded base64url, as the
// JWS specification requires.
func parseJWS(raw string) (*jws, *oauthError) {
	parts := strings.Split(raw, ".")
	if len(parts) != 3 || parts[0] == "" || parts[1] == "" || parts[2] == "" {
		return nil, malformedJWT()
	}
	j := &jws{signing: parts[0] + "." + parts[1], compact: raw}
	hb, err := base64.RawURLEncoding.DecodeString(parts[0])
	if err != nil || json.Unmarshal(hb, &j.header) != nil {
		return nil, malformedJWT()
	}
	pb, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return nil, malformedJWT()
	}
	dec := json.NewDecoder(bytes.NewReader(pb))
	dec.UseNumber()
	if err := dec.Decode(&j.claims); err != nil || j.claims == nil {
		return nil, malformedJWT()
	}
	if j.sig, err = base64.RawURLEncoding.DecodeString(parts[2]); err != nil {
		return nil, malformedJWT()
	}
	j.hasThumb = j.header.X5t != "" || j.header.X5tS256 != ""
	return j, nil
}

// str returns a string claim ("" when absent or not a string).
func (j *jws) str(name string) string {
	s, _ := j.claims[name].(string)
	return s
}

// audiences returns aud as a list (it may be a string or an array).
func (j *jws) audiences() []string {
	switch v := j.claims["aud"].(type) {
	case string:
		return []string{v}
	case []any:
		var out []string
		for _, a := range v {
			if s, ok := a.(string); ok {
				out = append(out, s)
			}
		}
		return out
	}
	return nil
}

// numericDate returns a NumericDate claim. Numbers and numeric strings are
// accepted (some clients send exp as a string, and Entra takes it).
func (j *jws) numericDate(name string) (time.Time, bool) {
	var f float64
	switch v := j.claims[name].(type) {
	case json.Number:
		x, err := v.Float64()
		if err != nil {
			return time.Time{}, false
		}
		f = x
	case string:
		x, err := strconv.ParseFloat(v, 64)
		if err != nil {
			return time.Time{}, false
		}
		f = x
	default:
		return time.Time{}, false
	}
	if math.IsNaN(f) || math.IsInf(f, 0) || f < 0 || f > 1e11 {
		return time.Time{}, false
	}
	sec, frac := math.Modf(f)
	return time.Unix(int64(sec), int64(frac*1e9)).UTC(), true
}

// loginHosts are the Entra hosts whose token endpoint URLs an assertion's aud
// may name (besides the host the request came to): the emulator is reached
// through a transport that re-routes the real host names.
var loginHosts = []string{
	"login.microsoftonline.com", "login.microsoft.com", "login.windows.net",
	"login.microsoftonline.us", "login.chinacloudapi.cn", "login.partner.microsoftonline.cn",
}

// audienceMatches reports whether aud names tenant t's token endpoint (v2.0 or
// v1), with t as GUID or domain, on the request host or an Entra login host.
func (e *Entra) audienceMatches(aud string, t *tenant, reqHost string) bool {
	u, err := url.Parse(aud)
	if err != nil || !strings.EqualFold(u.Scheme, "https") || u.RawQuery != "" || u.Fragment != "" {
		return false
	}
	hostOK := strings.EqualFold(u.Host, reqHost)
	for _, h := range loginHosts {
		hostOK = hostOK || strings.EqualFold(u.Host, h)
	}
	if !hostOK {
		return false
	}
	p := strings.Split(strings.Trim(u.Path, "/"), "/")
	switch {
	case len(p) == 4 && strings.EqualFold(p[1], "oauth2") && strings.EqualFold(p[2], "v2.0") && strings.EqualFold(p[3], "token"):
	case len(p) == 3 && strings.EqualFold(p[1], "oauth2") && strings.EqualFold(p[2], "token"):
	default:
		return false
	}
	at, kind := e.resolveTenant(p[0])
	return kind == tenantSpecific && at.id == t.id
}

// decodeThumbprint decodes an x5t / x5t#S256 value of the given digest size.
// The JOSE specification says base64url, but MSAL Go (and others) send
// standard base64 with padding; Entra takes both, and so does the emulator.
func decodeThumbprint(s string, size int) ([]byte, bool) {
	for _, enc := range []*base64.Encoding{base64.RawURLEncoding, base64.URLEncoding, base64.StdEncoding, base64.RawStdEncoding} {
		if b, err := enc.DecodeString(s); err == nil && len(b) == size {
			return b, true
		}
	}
	return nil, false
}

// timeRangeError is AADSTS700024 with Entra's wording.
func timeRangeError(now, nbf, exp time.Time) *oauthError {
	return newErr(http.StatusUnauthorized, "invalid_client", 700024,
		"Client assertion is not within its valid time range. Current time: %s, assertion valid from %s, expiry time of assertion %s. %s",
		isoTime(now), isoTime(nbf), isoTime(exp), certDocs)
}

// checkTimes applies Entra's time rules: exp present and not past, nbf (if
// any) not in the future, with clockSkew either way.
func checkTimes(j *jws, now time.Time) *oauthError {
	exp, hasExp := j.numericDate("exp")
	nbf, hasNbf := j.numericDate("nbf")
	if !hasNbf {
		nbf = time.Unix(0, 0)
	}
	if !hasExp {
		return timeRangeError(now, nbf, time.Unix(0, 0))
	}
	if now.After(exp.Add(clockSkew)) || (hasNbf && nbf.After(now.Add(clockSkew))) {
		return timeRangeError(now, nbf, exp)
	}
	return nil
}

// certificateAssertion validates a certificate client assertion for app a in
// tenant t, in the order Entra reports problems, and records its jti.
func (e *Entra) certificateAssertion(j *jws, a *appView, t *tenant, reqHost string) *oauthError {
	now := e.now()
	if oe := e.assertionClaims(j, a, t, reqHost, now); oe != nil {
		return oe
	}
	kc, oe := assertionKey(j, a, now)
	if oe != nil {
		return oe
	}
	if oe := verifyAssertionKey(j, kc, now); oe != nil {
		return oe
	}
	if !e.noReplay.Load() {
		exp, _ := j.numericDate("exp")
		if !e.jtis.add(a.clientID+"\x00"+j.str("jti"), exp.Add(clockSkew), now) {
			e.replays.Add(1)
			return newErr(http.StatusUnauthorized, "invalid_client", 50013,
				"Assertion is invalid: the client assertion with this 'jti' has already been used. Build a new assertion (with a fresh jti) for every token request. %s", certDocs)
		}
	}
	return nil
}

// assertionClaims checks the algorithm, issuer, subject, audience, times
// and jti of a certificate client assertion.
func (e *Entra) assertionClaims(j *jws, a *appView, t *tenant, reqHost string, now time.Time) *oauthError {
	if j.header.Alg != "RS256" && j.header.Alg != "PS256" {
		return newErr(http.StatusBadRequest, "invalid_request", 5002730,
			"Invalid JWT token. Unsupported key for the signing algorithm. The client assertion alg '%s' is not supported: use PS256 (or RS256).",
			j.header.Alg)
	}
	iss, sub := j.str("iss"), j.str("sub")
	if iss != sub {
		return newErr(http.StatusUnauthorized, "invalid_client", 50048,
			"Subject mismatches Issuer claim in the client assertion. %s", certDocs)
	}
	if !strings.EqualFold(iss, a.clientID) {
		return newErr(http.StatusUnauthorized, "invalid_client", 700021,
			"Client assertion application identifier doesn't match 'client_id' parameter. %s", certDocs)
	}
	audOK := false
	for _, aud := range j.audiences() {
		audOK = audOK || e.audienceMatches(aud, t, reqHost)
	}
	if !audOK {
		return newErr(http.StatusUnauthorized, "invalid_client", 700023,
			"Client assertion audience claim does not match Realm issuer. %s", certDocs)
	}
	if oe := checkTimes(j, now); oe != nil {
		return oe
	}
	if j.str("jti") == "" {
		return newErr(http.StatusBadRequest, "invalid_request", 90014,
			"The required field 'jti' is missing from the credential. Ensure that you have all the necessary parameters for the login request.")
	}
	return nil
}

// assertionKey finds the app's certificate named by the assertion's
// thumbprint header (x5t#S256 or x5t) among those the token service knows
// now.
func assertionKey(j *jws, a *appView, now time.Time) (*keyCredential, *oauthError) {
	var s256, s1 []byte
	var okS256, okS1 bool
	if j.header.X5tS256 != "" {
		s256, okS256 = decodeThumbprint(j.header.X5tS256, sha256.Size)
	}
	if j.header.X5t != "" {
		s1, okS1 = decodeThumbprint(j.header.X5t, 20)
	}
	for i := range a.certs {
		c := &a.certs[i]
		if now.Before(c.activeAt) {
			continue // added through Graph, not yet propagated to the token service
		}
		if (okS256 && bytes.Equal(c.sha256[:], s256)) || (okS1 && bytes.Equal(c.sha1[:], s1)) {
			return c, nil
		}
	}
	thumb := ""
	switch {
	case okS256:
		thumb = strings.ToUpper(hex.EncodeToString(s256))
	case okS1:
		thumb = strings.ToUpper(hex.EncodeToString(s1))
	}
	reason := "The key was not found."
	if thumb != "" {
		reason += ", Thumbprint of key used by client: '" + thumb + "'"
	}
	return nil, newErr(http.StatusUnauthorized, "invalid_client", 700027,
		"The certificate with identifier used to sign the client assertion is not registered on application. [Reason - %s, Please visit the Azure Portal, Graph Explorer or directly use MS Graph to see configured keys for app Id '%s'. Review the documentation at https://docs.microsoft.com/en-us/graph/deployments to determine the corresponding service endpoint and https://docs.microsoft.com/en-us/graph/api/application-get?view=graph-rest-1.0&tabs=http to build a query request URL, such as 'https://graph.microsoft.com/beta/applications/%s']",
		reason, a.clientID, a.clientID)
}

// verifyAssertionKey checks the assertion's signature with kc, then that kc
// is neither revoked nor outside its validity window.
func verifyAssertionKey(j *jws, kc *keyCredential, now time.Time) *oauthError {
	thumb := strings.ToUpper(hex.EncodeToString(kc.sha1[:]))
	pub, ok := kc.cert.PublicKey.(*rsa.PublicKey)
	if !ok {
		return newErr(http.StatusBadRequest, "invalid_request", 5002730,
			"Invalid JWT token. Unsupported key for the signing algorithm.")
	}
	digest := sha256.Sum256([]byte(j.signing))
	var err error
	if j.header.Alg == "PS256" {
		err = rsa.VerifyPSS(pub, crypto.SHA256, digest[:], j.sig, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash})
	} else {
		err = rsa.VerifyPKCS1v15(pub, crypto.SHA256, digest[:], j.sig)
	}
	if err != nil {
		return newErr(http.StatusUnauthorized, "invalid_client", 7000274,
			"Client assertion contains an invalid signature. [Reason - The provided signature value did not match the expected signature value., Thumbprint of key used by client: '%s', Found key 'Start=%s, End=%s']",
			thumb, kc.cert.NotBefore.UTC().Format("01/02/2006 15:04:05"), kc.cert.NotAfter.UTC().Format("01/02/2006 15:04:05"))
	}
	if kc.revoked {
		return newErr(http.StatusUnauthorized, "invalid_client", 7000277,
			"The certificate used to sign the client assertion was revoked. Thumbprint of key used by client: '%s'. %s", thumb, certDocs)
	}
	if now.Before(kc.cert.NotBefore) || now.After(kc.cert.NotAfter) {
		return newErr(http.StatusUnauthorized, "invalid_client", 1000502,
			"The provided certificate is not within its specified validity window. Current time: %s, certificate valid from %s, certificate expiry %s. Thumbprint of key used by client: '%s'.",
			isoTime(now), isoTime(kc.cert.NotBefore), isoTime(kc.cert.NotAfter), thumb)
	}
	return nil
}
