package kvasserttest_test

// Tests of the Microsoft Graph emulation (addKey, removeKey, GET
// keyCredentials) with app-only tokens from azidentity, proofs built here
// claim by claim, and the propagation of added keys to the token endpoint.

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1" //nolint:gosec // x5t
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	"github.com/kvassert/kvassert/internal/emuhook"
	"github.com/kvassert/kvassert/kvasserttest"
	"github.com/kvassert/kvassert/kvasserttest/internal/names"
	"github.com/kvassert/kvassert/kvasserttest/scenario"
)

const (
	rollClientID  = "0b4d6f81-2a3c-4e5f-8a7b-9c0d1e2f3a4b"
	rollObjectID  = "d1e2f3a4-5b6c-4d7e-8f90-a1b2c3d4e5f6"
	otherClientID = "1c2d3e4f-5a6b-4c7d-8e9f-0a1b2c3d4e5f"
	rollSecret    = "roll-secret-not-a-real-credential"
)

// rollEnv is an emulator with an app ("roller") that holds a valid local
// certificate (key) and an expired one (oldKey), and a second app ("other").
type rollEnv struct {
	t             *testing.T
	e             *kvasserttest.Emulator
	key, oldKey   *rsa.PrivateKey
	cert, oldCert *x509.Certificate
	offset        atomic.Int64 // emulator clock = process clock + offset
}

func pemCert(c *x509.Certificate) string {
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw}))
}

func newRollEnv(t *testing.T) *rollEnv {
	t.Helper()
	now := time.Now()
	r := &rollEnv{t: t}
	r.key, r.cert = entraLocalCert(t, now.Add(-time.Hour), now.Add(365*24*time.Hour))
	r.oldKey, r.oldCert = entraLocalCert(t, now.Add(-400*24*time.Hour), now.Add(-24*time.Hour))
	s := &scenario.Scenario{
		Tenants: []scenario.Tenant{{ID: scenario.DemoHomeTenant, Name: "home"}, {ID: scenario.DemoContosoTenant, Name: "contoso"}},
		Apps: []scenario.App{
			{ClientID: rollClientID, ObjectID: rollObjectID, DisplayName: "roller", HomeTenant: scenario.DemoHomeTenant,
				MultiTenant: true, ConsentedTenants: []string{scenario.DemoContosoTenant}, Secrets: []string{rollSecret},
				Certificates: []scenario.CertificateRef{{PEM: pemCert(r.cert)}, {PEM: pemCert(r.oldCert)}}},
			{ClientID: otherClientID, HomeTenant: scenario.DemoHomeTenant, Secrets: []string{"other-secret"}},
		},
	}
	r.e = kvasserttest.NewTB(t, s, nil)
	r.e.SetClock(func() time.Time { return time.Now().Add(time.Duration(r.offset.Load())) })
	return r
}

func (r *rollEnv) now() time.Time { return time.Now().Add(time.Duration(r.offset.Load())) }

// token gets an app-only Graph token (or for another scope) with the app's
// client secret, through azidentity; a fresh credential each time, so
// newly granted roles show.
func (r *rollEnv) token(clientID, tenant, scope string) string {
	r.t.Helper()
	var secret string
	for _, a := range r.e.Scenario().Apps {
		if a.ClientID == clientID && len(a.Secrets) > 0 {
			secret = a.Secrets[0]
		}
	}
	cred, err := azidentity.NewClientSecretCredential(tenant, clientID, secret,
		&azidentity.ClientSecretCredentialOptions{ClientOptions: r.e.ClientOptions(), DisableInstanceDiscovery: true, AdditionallyAllowedTenants: []string{"*"}})
	if err != nil {
		r.t.Fatal(err)
	}
	tok, err := cred.GetToken(context.Background(), policy.TokenRequestOptions{Scopes: []string{scope}})
	if err != nil {
		r.t.Fatal(err)
	}
	return tok.Token
}

func (r *rollEnv) graphToken() string {
	return r.token(rollClientID, scenario.DemoHomeTenant, emuhook.GraphScope)
}

// graphError is Graph's error body.
type graphError struct {
	Error struct {
		Code       string
		Message    string
		InnerError struct {
			Date            string
			RequestID       string `json:"request-id"`
			ClientRequestID string `json:"client-request-id"`
		}
	}
}

// call sends a Graph request and returns the status, the raw body and the
// decoded error (if any).
func (r *rollEnv) call(method, url, token string, body any) (int, []byte, graphError, http.Header) {
	r.t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, url, rd)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("client-request-id", "11111111-2222-4333-8444-555555555555")
	resp, err := r.e.Client().Do(req)
	if err != nil {
		r.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var ge graphError
	if resp.StatusCode >= 400 {
		if err := json.Unmarshal(raw, &ge); err != nil {
			r.t.Fatalf("%s %s: %d with a body that is not Graph's error JSON: %q", method, url, resp.StatusCode, raw)
		}
	}
	return resp.StatusCode, raw, ge, resp.Header
}

func (r *rollEnv) appURL(suffix string) string {
	return emuhook.GraphURL + "applications/" + rollObjectID + suffix
}

func x5tOf(c *x509.Certificate) string {
	sum := sha1.Sum(c.Raw) //nolint:gosec
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// proof builds a proof of possession as the Graph documentation describes
// it; edit adjusts the header and claims before signing.
func proof(t *testing.T, key *rsa.PrivateKey, cert *x509.Certificate, now time.Time, edit func(h, c map[string]any)) string {
	t.Helper()
	h := map[string]any{"alg": "RS256", "typ": "JWT", "x5t": x5tOf(cert)}
	c := map[string]any{"aud": "00000002-0000-0000-c000-000000000000", "iss": rollObjectID,
		"nbf": now.Unix(), "exp": now.Add(10 * time.Minute).Unix()}
	if edit != nil {
		edit(h, c)
	}
	hb, _ := json.Marshal(h)
	cb, _ := json.Marshal(c)
	in := base64.RawURLEncoding.EncodeToString(hb) + "." + base64.RawURLEncoding.EncodeToString(cb)
	d := sha256Sum([]byte(in))
	var sig []byte
	var err error
	if h["alg"] == "PS256" {
		sig, err = rsa.SignPSS(rand.Reader, key, crypto.SHA256, d, nil)
	} else {
		sig, err = rsa.SignPKCS1v15(rand.Reader, key, crypto.SHA256, d)
	}
	if err != nil {
		t.Fatal(err)
	}
	return in + "." + base64.RawURLEncoding.EncodeToString(sig)
}

func sha256Sum(b []byte) []byte {
	h := crypto.SHA256.New()
	h.Write(b)
	return h.Sum(nil)
}

func addKeyBody(cert *x509.Certificate, proof string) map[string]any {
	return map[string]any{
		"keyCredential":      map[string]any{"type": "AsymmetricX509Cert", "usage": "Verify", "key": base64.StdEncoding.EncodeToString(cert.Raw)},
		"passwordCredential": nil,
		"proof":              proof,
	}
}

// certToken asks the token endpoint for a token with a certificate
// credential (azidentity builds and signs the assertion).
func (r *rollEnv) certToken(key *rsa.PrivateKey, cert *x509.Certificate, tenant string) error {
	r.t.Helper()
	cc, err := azidentity.NewClientCertificateCredential(tenant, rollClientID, []*x509.Certificate{cert}, key,
		&azidentity.ClientCertificateCredentialOptions{ClientOptions: r.e.ClientOptions(), DisableInstanceDiscovery: true})
	if err != nil {
		r.t.Fatal(err)
	}
	_, err = cc.GetToken(context.Background(), policy.TokenRequestOptions{Scopes: []string{"https://vault.azure.net/.default"}})
	return err
}

func TestGraphAddKeyRemoveKey(t *testing.T) {
	r := newRollEnv(t)
	emuhook.Of(r.e).SetGraphPropagationDelay(0)
	tok := r.graphToken()
	newKey, newCert := entraLocalCert(t, r.now().Add(-time.Minute), r.now().Add(365*24*time.Hour))

	status, raw, ge, _ := r.call("POST", r.appURL("/addKey"), tok, addKeyBody(newCert, proof(t, r.key, r.cert, r.now(), nil)))
	if status != 200 {
		t.Fatalf("addKey: %d %+v", status, ge)
	}
	var added struct {
		Context             string `json:"@odata.context"`
		KeyID               string
		Type, Usage         string
		CustomKeyIdentifier string
		DisplayName         string
		StartDateTime       string
		EndDateTime         string
		Key                 *string
	}
	if err := json.Unmarshal(raw, &added); err != nil {
		t.Fatal(err)
	}
	sum := sha1.Sum(newCert.Raw) //nolint:gosec
	if !names.IsGUID(added.KeyID) || added.Type != "AsymmetricX509Cert" || added.Usage != "Verify" || added.Key != nil ||
		added.CustomKeyIdentifier != strings.ToUpper(hex.EncodeToString(sum[:])) || added.DisplayName != "CN=local" ||
		added.EndDateTime != newCert.NotAfter.UTC().Format("2006-01-02T15:04:05Z") ||
		added.Context != "https://graph.microsoft.com/v1.0/$metadata#microsoft.graph.keyCredential" {
		t.Fatalf("addKey answer: %s", raw)
	}
	creds, _ := r.e.AppKeyCredentials(rollClientID)
	if len(creds) != 3 || creds[2].KeyID != added.KeyID || !creds[2].Certificate.Equal(newCert) {
		t.Fatalf("AppKeyCredentials after addKey: %+v", creds)
	}
	if err := r.certToken(newKey, newCert, scenario.DemoContosoTenant); err != nil {
		t.Fatalf("token with the added key (no propagation delay): %v", err)
	}

	// The same certificate again: 400.
	status, _, ge, _ = r.call("POST", r.appURL("/addKey"), tok, addKeyBody(newCert, proof(t, r.key, r.cert, r.now(), nil)))
	if status != 400 || ge.Error.Code != "Request_BadRequest" || !strings.Contains(ge.Error.Message, "same key") {
		t.Fatalf("duplicate addKey: %d %+v", status, ge)
	}

	// removeKey the original key with a proof from the new one.
	status, raw, ge, _ = r.call("POST", r.appURL("/removeKey"), tok, map[string]any{"keyId": creds[0].KeyID, "proof": proof(t, newKey, newCert, r.now(), nil)})
	if status != 204 || len(raw) != 0 {
		t.Fatalf("removeKey: %d %+v", status, ge)
	}
	if creds, _ := r.e.AppKeyCredentials(rollClientID); len(creds) != 2 || creds[0].Certificate.Equal(r.cert) || creds[1].Certificate.Equal(r.cert) {
		t.Fatalf("AppKeyCredentials after removeKey: %+v", creds)
	}
	if err := r.certToken(r.key, r.cert, scenario.DemoContosoTenant); err == nil || !strings.Contains(err.Error(), "AADSTS700027") {
		t.Fatalf("token with the removed key: %v, want AADSTS700027 at once", err)
	}
	// Removing it again: 404; and the removed key no longer proves anything.
	status, _, ge, _ = r.call("POST", r.appURL("/removeKey"), tok, map[string]any{"keyId": creds[0].KeyID, "proof": proof(t, newKey, newCert, r.now(), nil)})
	if status != 404 || ge.Error.Code != "Request_ResourceNotFound" {
		t.Fatalf("removeKey twice: %d %+v", status, ge)
	}
	status, _, ge, _ = r.call("POST", r.appURL("/removeKey"), tok, map[string]any{"keyId": added.KeyID, "proof": proof(t, r.key, r.cert, r.now(), nil)})
	if status != 401 || ge.Error.Code != "Authentication_MissingOrMalformed" {
		t.Fatalf("proof from a removed key: %d %+v", status, ge)
	}
	// Addressed by appId, as Graph also allows.
	_, anotherCert := entraLocalCert(t, r.now().Add(-time.Minute), r.now().Add(24*time.Hour))
	status, _, ge, _ = r.call("POST", emuhook.GraphURL+"applications(appId='"+rollClientID+"')/addKey", tok, addKeyBody(anotherCert, proof(t, newKey, newCert, r.now(), nil)))
	if status != 200 {
		t.Fatalf("addKey by appId: %d %+v", status, ge)
	}
	// The client ID in place of the object ID: 404, as Graph answers.
	status, _, ge, _ = r.call("POST", emuhook.GraphURL+"applications/"+rollClientID+"/addKey", tok, addKeyBody(newCert, proof(t, newKey, newCert, r.now(), nil)))
	if status != 404 || ge.Error.Code != "Request_ResourceNotFound" {
		t.Fatalf("addKey at /applications/{clientId}: %d %+v", status, ge)
	}
}

func TestGraphProofDefects(t *testing.T) {
	r := newRollEnv(t)
	tok := r.graphToken()
	_, newCert := entraLocalCert(t, r.now().Add(-time.Minute), r.now().Add(365*24*time.Hour))
	strangerKey, strangerCert := entraLocalCert(t, r.now().Add(-time.Minute), r.now().Add(365*24*time.Hour))
	now := r.now()
	cases := []struct {
		name, proof, want string
	}{
		{"no proof", "", "missing"},
		{"aud", proof(t, r.key, r.cert, now, func(_, c map[string]any) { c["aud"] = "https://graph.microsoft.com" }), "aud must be"},
		{"iss is the client ID", proof(t, r.key, r.cert, now, func(_, c map[string]any) { c["iss"] = rollClientID }), "iss is the application (client) ID"},
		{"iss other", proof(t, r.key, r.cert, now, func(_, c map[string]any) { c["iss"] = otherClientID }), "object ID"},
		{"exp - nbf over 10 min", proof(t, r.key, r.cert, now, func(_, c map[string]any) { c["exp"] = now.Add(10*time.Minute + time.Second).Unix() }), "at most 10 minutes"},
		{"no nbf", proof(t, r.key, r.cert, now, func(_, c map[string]any) { delete(c, "nbf") }), "nbf and exp are required"},
		{"expired", proof(t, r.key, r.cert, now, func(_, c map[string]any) {
			c["nbf"], c["exp"] = now.Add(-20*time.Minute).Unix(), now.Add(-10*time.Minute).Unix()
		}), "expired"},
		{"not yet valid", proof(t, r.key, r.cert, now, func(_, c map[string]any) {
			c["nbf"], c["exp"] = now.Add(10*time.Minute).Unix(), now.Add(15*time.Minute).Unix()
		}), "not yet valid"},
		{"unregistered key", proof(t, strangerKey, strangerCert, now, nil), "names no certificate"},
		{"registered but expired certificate", proof(t, r.oldKey, r.oldCert, now, nil), "not within its validity period"},
		{"x5t of a registered certificate, signed by another key", proof(t, strangerKey, r.cert, now, nil), "signature does not verify"},
		{"no x5t", proof(t, r.key, r.cert, now, func(h, _ map[string]any) { delete(h, "x5t") }), "no x5t"},
		{"PS256", proof(t, r.key, r.cert, now, func(h, _ map[string]any) { h["alg"] = "PS256" }), "RS256"},
		{"padding", proof(t, r.key, r.cert, now, nil) + "=", "padding"},
		{"padded parts", func() string {
			p := strings.Split(proof(t, r.key, r.cert, now, nil), ".")
			b, _ := base64.RawURLEncoding.DecodeString(p[1])
			return p[0] + "." + base64.URLEncoding.EncodeToString(append(b, ' ', ' ')) + "." + p[2]
		}(), "padding"},
		{"not a JWT", "abc.def", "not a JWS"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			for _, action := range []string{"addKey", "removeKey"} {
				body := addKeyBody(newCert, c.proof)
				if action == "removeKey" {
					creds, _ := r.e.AppKeyCredentials(rollClientID)
					body = map[string]any{"keyId": creds[1].KeyID, "proof": c.proof}
				}
				status, raw, ge, h := r.call("POST", r.appURL("/"+action), tok, body)
				if status != 401 || ge.Error.Code != "Authentication_MissingOrMalformed" || !strings.Contains(ge.Error.Message, c.want) {
					t.Fatalf("%s: %d %+v, want 401 Authentication_MissingOrMalformed mentioning %q", action, status, ge, c.want)
				}
				if sig := c.proof[strings.LastIndexByte(c.proof, '.')+1:]; len(sig) > 16 && strings.Contains(string(raw), sig) {
					t.Fatalf("%s: the error echoes the proof", action)
				}
				if ge.Error.InnerError.ClientRequestID != "11111111-2222-4333-8444-555555555555" || !names.IsGUID(ge.Error.InnerError.RequestID) ||
					h.Get("request-id") != ge.Error.InnerError.RequestID || ge.Error.InnerError.Date == "" {
					t.Fatalf("%s: innerError %+v", action, ge.Error.InnerError)
				}
			}
		})
	}
	if creds, _ := r.e.AppKeyCredentials(rollClientID); len(creds) != 2 {
		t.Fatalf("refused proofs changed the app's keys: %d keys", len(creds))
	}
	// The proof time window follows the emulator's clock: a year later the
	// same (valid-looking) proof built with process time is expired.
	r.offset.Store(int64(time.Hour))
	status, _, ge, _ := r.call("POST", r.appURL("/addKey"), r.graphToken(), addKeyBody(newCert, proof(t, r.key, r.cert, time.Now(), nil)))
	if status != 401 || !strings.Contains(ge.Error.Message, "expired") {
		t.Fatalf("proof an hour behind the emulator clock: %d %+v", status, ge)
	}
}

func TestGraphBodyAndPermissions(t *testing.T) {
	r := newRollEnv(t)
	tok := r.graphToken()
	_, newCert := entraLocalCert(t, r.now().Add(-time.Minute), r.now().Add(365*24*time.Hour))
	good := proof(t, r.key, r.cert, r.now(), nil)
	for name, body := range map[string]map[string]any{
		"type":               {"keyCredential": map[string]any{"type": "Symmetric", "usage": "Verify", "key": base64.StdEncoding.EncodeToString(newCert.Raw)}, "proof": good},
		"usage":              {"keyCredential": map[string]any{"type": "AsymmetricX509Cert", "usage": "Sign", "key": base64.StdEncoding.EncodeToString(newCert.Raw)}, "proof": good},
		"key":                {"keyCredential": map[string]any{"type": "AsymmetricX509Cert", "usage": "Verify", "key": "bm90IGEgY2VydA=="}, "proof": good},
		"no keyCredential":   {"proof": good},
		"unknown property":   {"keyCredential": map[string]any{"type": "AsymmetricX509Cert", "usage": "Verify", "key": base64.StdEncoding.EncodeToString(newCert.Raw)}, "proof": good, "extra": 1},
		"passwordCredential": {"keyCredential": map[string]any{"type": "AsymmetricX509Cert", "usage": "Verify", "key": base64.StdEncoding.EncodeToString(newCert.Raw)}, "proof": good, "passwordCredential": map[string]any{"displayName": "x"}},
	} {
		status, _, ge, _ := r.call("POST", r.appURL("/addKey"), tok, body)
		if status != 400 || ge.Error.Code != "Request_BadRequest" {
			t.Errorf("%s: %d %+v, want 400 Request_BadRequest", name, status, ge)
		}
	}
	status, _, ge, _ := r.call("POST", r.appURL("/removeKey"), tok, map[string]any{"keyId": "nope", "proof": good})
	if status != 400 || ge.Error.Code != "Request_BadRequest" {
		t.Errorf("removeKey with a bad keyId: %d %+v", status, ge)
	}

	// Another app may not roll this app's keys, even with a valid proof.
	other := r.token(otherClientID, scenario.DemoHomeTenant, emuhook.GraphScope)
	status, _, ge, _ = r.call("POST", r.appURL("/addKey"), other, addKeyBody(newCert, good))
	if status != 403 || ge.Error.Code != "Authorization_RequestDenied" {
		t.Fatalf("addKey by another app: %d %+v", status, ge)
	}

	// GET needs Application.Read.All, also for the app itself.
	status, _, ge, _ = r.call("GET", r.appURL("?$select=keyCredentials"), tok, nil)
	if status != 403 || ge.Error.Code != "Authorization_RequestDenied" {
		t.Fatalf("GET without read permission: %d %+v", status, ge)
	}
	if err := r.e.GrantAppRoles(rollClientID, "Application.Read.All"); err != nil {
		t.Fatal(err)
	}
	tok = r.graphToken()
	var app struct {
		ID, AppID      string
		KeyCredentials []struct {
			KeyID, CustomKeyIdentifier, StartDateTime, EndDateTime, Type, Usage string
			Key                                                                 *string
		}
	}
	status, raw, ge, _ := r.call("GET", r.appURL(""), tok, nil)
	if status != 200 || json.Unmarshal(raw, &app) != nil || app.ID != rollObjectID || app.AppID != rollClientID || len(app.KeyCredentials) != 2 {
		t.Fatalf("GET: %d %s %+v", status, raw, ge)
	}
	if app.KeyCredentials[0].Key != nil || app.KeyCredentials[0].Type != "AsymmetricX509Cert" || app.KeyCredentials[0].Usage != "Verify" ||
		app.KeyCredentials[0].StartDateTime != r.cert.NotBefore.UTC().Format("2006-01-02T15:04:05Z") {
		t.Fatalf("GET without $select returns: %s", raw)
	}
	app.ID, app.KeyCredentials = "", nil
	status, raw, _, _ = r.call("GET", r.appURL("?$select=keyCredentials"), tok, nil)
	if status != 200 || json.Unmarshal(raw, &app) != nil || len(app.KeyCredentials) != 2 || app.KeyCredentials[0].Key == nil ||
		*app.KeyCredentials[0].Key != base64.StdEncoding.EncodeToString(r.cert.Raw) || app.ID != "" {
		t.Fatalf("GET $select=keyCredentials: %d %s", status, raw)
	}
	status, _, ge, _ = r.call("GET", r.appURL("?$select=passwords"), tok, nil)
	if status != 400 || ge.Error.Code != "Request_BadRequest" {
		t.Fatalf("GET $select of an unknown property: %d %+v", status, ge)
	}
}

func TestGraphBearerTokens(t *testing.T) {
	r := newRollEnv(t)
	body := addKeyBody(r.cert, proof(t, r.key, r.cert, r.now(), nil))
	for name, tok := range map[string]string{
		"none":           "",
		"garbage":        "not-a-token",
		"vault audience": r.token(rollClientID, scenario.DemoHomeTenant, "https://vault.azure.net/.default"),
	} {
		status, raw, ge, h := r.call("POST", r.appURL("/addKey"), tok, body)
		if status != 401 || ge.Error.Code != "InvalidAuthenticationToken" || h.Get("WWW-Authenticate") == "" {
			t.Errorf("%s: %d %+v", name, status, ge)
		}
		if tok != "" && strings.Contains(string(raw), tok) {
			t.Errorf("%s: the error echoes the token", name)
		}
	}
	// A Graph token of the public cloud at the US Government Graph host.
	tok := r.graphToken()
	status, _, ge, _ := r.call("POST", "https://graph.microsoft.us/v1.0/applications/"+rollObjectID+"/addKey", tok, body)
	if status != 401 || !strings.Contains(ge.Error.Message, "audience") {
		t.Errorf("public-cloud token at graph.microsoft.us: %d %+v", status, ge)
	}
	// A token of another tenant (where the app is consented) does not see
	// the application object, which lives in its home tenant.
	foreign := r.token(rollClientID, scenario.DemoContosoTenant, emuhook.GraphScope)
	status, _, ge, _ = r.call("POST", r.appURL("/addKey"), foreign, body)
	if status != 404 || ge.Error.Code != "Request_ResourceNotFound" {
		t.Errorf("token of a customer tenant: %d %+v", status, ge)
	}
	// Expired: the emulator clock moves past the token's lifetime.
	r.offset.Store(int64(2 * time.Hour))
	status, _, ge, _ = r.call("POST", r.appURL("/addKey"), tok, body)
	if status != 401 || ge.Error.Code != "InvalidAuthenticationToken" || !strings.Contains(ge.Error.Message, "expired") {
		t.Errorf("expired token: %d %+v", status, ge)
	}
	// Unknown paths and methods.
	r.offset.Store(0)
	if status, _, ge, _ = r.call("GET", emuhook.GraphURL+"users", tok, nil); status != 400 || ge.Error.Code != "BadRequest" {
		t.Errorf("GET /users: %d %+v", status, ge)
	}
	if status, _, ge, _ = r.call("GET", r.appURL("/addKey"), tok, nil); status != 405 {
		t.Errorf("GET addKey: %d %+v", status, ge)
	}
}

func TestGraphFaults(t *testing.T) {
	r := newRollEnv(t)
	tok := r.graphToken()
	_, newCert := entraLocalCert(t, r.now().Add(-time.Minute), r.now().Add(365*24*time.Hour))
	r.e.InjectFault(kvasserttest.OpGraphAddKey, kvasserttest.Fault{Status: 429, RetryAfter: 1500 * time.Millisecond, Times: 1})
	r.e.InjectFault(kvasserttest.OpGraphRemoveKey, kvasserttest.Fault{Status: 503, Times: 1})
	r.e.InjectFault(kvasserttest.Op("graph/applications/get"), kvasserttest.Fault{Status: 403})
	status, _, ge, h := r.call("POST", r.appURL("/addKey"), tok, addKeyBody(newCert, proof(t, r.key, r.cert, r.now(), nil)))
	if status != 429 || ge.Error.Code != "Request_ThrottledTemporarily" || h.Get("Retry-After") != "2" {
		t.Fatalf("429 fault: %d %+v Retry-After=%q", status, ge, h.Get("Retry-After"))
	}
	status, _, ge, _ = r.call("POST", r.appURL("/addKey"), tok, addKeyBody(newCert, proof(t, r.key, r.cert, r.now(), nil)))
	if status != 200 {
		t.Fatalf("after a one-shot fault: %d %+v", status, ge)
	}
	status, _, ge, _ = r.call("POST", r.appURL("/removeKey"), tok, map[string]any{"keyId": "00000000-0000-4000-8000-000000000000", "proof": proof(t, r.key, r.cert, r.now(), nil)})
	if status != 503 || ge.Error.Code != "Service_ServiceUnavailable" {
		t.Fatalf("503 fault: %d %+v", status, ge)
	}
	for range 2 {
		if status, _, ge, _ = r.call("GET", r.appURL(""), tok, nil); status != 403 || ge.Error.Code != "Authorization_RequestDenied" {
			t.Fatalf("403 fault: %d %+v", status, ge)
		}
	}
	if r.e.Count(kvasserttest.OpGraphAddKey) != 2 || r.e.Count(kvasserttest.OpGraphRemoveKey) != 1 || r.e.Count(kvasserttest.Op("graph/applications/get")) != 2 {
		t.Fatalf("counts: %v", r.e.Counts())
	}
}

// TestGraphPropagationDelay: a key added through addKey is refused at the
// token endpoint (AADSTS700027) until the propagation delay has passed on
// the emulator's clock, then accepted.
func TestGraphPropagationDelay(t *testing.T) {
	r := newRollEnv(t)
	if emuhook.Of(r.e).GraphPropagationDelay() != emuhook.DefaultGraphPropagationDelay {
		t.Fatalf("default delay %v", emuhook.Of(r.e).GraphPropagationDelay())
	}
	emuhook.Of(r.e).SetGraphPropagationDelay(90 * time.Second)
	tok := r.graphToken()
	newKey, newCert := entraLocalCert(t, r.now().Add(-time.Minute), r.now().Add(365*24*time.Hour))
	t0 := r.now()
	if status, _, ge, _ := r.call("POST", r.appURL("/addKey"), tok, addKeyBody(newCert, proof(t, r.key, r.cert, r.now(), nil))); status != 200 {
		t.Fatalf("addKey: %d %+v", status, ge)
	}
	creds, _ := r.e.AppKeyCredentials(rollClientID)
	if at := creds[len(creds)-1].ActiveAt; at.Before(t0.Add(90*time.Second)) || at.After(r.now().Add(90*time.Second)) {
		t.Fatalf("ActiveAt %v, want addKey time + 90 s", at)
	}
	for _, tenant := range []string{scenario.DemoHomeTenant, scenario.DemoContosoTenant} {
		if err := r.certToken(newKey, newCert, tenant); err == nil || !strings.Contains(err.Error(), "AADSTS700027") {
			t.Fatalf("before propagation (%s): %v, want AADSTS700027", tenant, err)
		}
	}
	// The old key keeps working meanwhile.
	if err := r.certToken(r.key, r.cert, scenario.DemoContosoTenant); err != nil {
		t.Fatalf("old key during propagation: %v", err)
	}
	r.offset.Store(int64(60 * time.Second))
	if err := r.certToken(newKey, newCert, scenario.DemoContosoTenant); err == nil {
		t.Fatal("accepted 60 s into a 90 s propagation delay")
	}
	r.offset.Store(int64(91 * time.Second))
	for _, tenant := range []string{scenario.DemoHomeTenant, scenario.DemoContosoTenant} {
		if err := r.certToken(newKey, newCert, tenant); err != nil {
			t.Fatalf("after propagation (%s): %v", tenant, err)
		}
	}
}

// TestGraphConcurrentAddKey: two (or more) rollers adding the same renewed
// certificate at once end with one key: one addKey succeeds, the others get
// 400 Request_BadRequest.
func TestGraphConcurrentAddKey(t *testing.T) {
	r := newRollEnv(t)
	tok := r.graphToken()
	_, newCert := entraLocalCert(t, r.now().Add(-time.Minute), r.now().Add(365*24*time.Hour))
	const n = 6
	statuses := make(chan int, n)
	proofs := make([]string, n)
	for i := range proofs {
		proofs[i] = proof(t, r.key, r.cert, r.now(), nil)
	}
	start := make(chan struct{})
	for i := range n {
		go func() {
			<-start
			b, _ := json.Marshal(addKeyBody(newCert, proofs[i]))
			req, _ := http.NewRequest("POST", r.appURL("/addKey"), bytes.NewReader(b))
			req.Header.Set("Authorization", "Bearer "+tok)
			resp, err := r.e.Client().Do(req)
			if err != nil {
				statuses <- 0
				return
			}
			resp.Body.Close()
			statuses <- resp.StatusCode
		}()
	}
	close(start)
	got := map[int]int{}
	for range n {
		got[<-statuses]++
	}
	if got[200] != 1 || got[400] != n-1 {
		t.Fatalf("statuses %v, want one 200 and %d 400", got, n-1)
	}
	if creds, _ := r.e.AppKeyCredentials(rollClientID); len(creds) != 3 {
		t.Fatalf("%d keys after concurrent addKey, want 3", len(creds))
	}
}

// GET /v1.0/organization answers the caller's tenant to an app-only Graph
// token with Organization.Read.All (or a Directory role), 403 without one,
// 401 without a token; it is counted and faulted as its own op.
func TestGraphOrganization(t *testing.T) {
	r := newRollEnv(t)
	orgURL := emuhook.GraphURL + "organization"
	// The roll app has no organization role yet.
	if status, _, ge, _ := r.call("GET", orgURL, r.token(rollClientID, scenario.DemoContosoTenant, emuhook.GraphScope), nil); status != 403 || ge.Error.Code != "Authorization_RequestDenied" {
		t.Fatalf("without Organization.Read.All: %d %+v", status, ge)
	}
	if err := r.e.GrantAppRoles(rollClientID, "Organization.Read.All"); err != nil {
		t.Fatal(err)
	}
	status, raw, ge, _ := r.call("GET", orgURL, r.token(rollClientID, scenario.DemoContosoTenant, emuhook.GraphScope), nil)
	if status != 200 {
		t.Fatalf("GET /organization: %d %+v", status, ge)
	}
	var got struct {
		Value []struct {
			ID, DisplayName string
			VerifiedDomains []struct {
				Name      string
				IsInitial bool
			}
		}
	}
	if err := json.Unmarshal(raw, &got); err != nil {
		t.Fatal(err)
	}
	if len(got.Value) != 1 || got.Value[0].ID != scenario.DemoContosoTenant || got.Value[0].DisplayName != "contoso" ||
		len(got.Value[0].VerifiedDomains) != 1 || got.Value[0].VerifiedDomains[0].Name != "contoso.onmicrosoft.com" {
		t.Errorf("organization = %s", raw)
	}
	if status, _, ge, _ := r.call("GET", orgURL, "", nil); status != 401 || ge.Error.Code != "InvalidAuthenticationToken" {
		t.Errorf("no token: %d %+v", status, ge)
	}
	if status, _, _, _ := r.call("POST", orgURL, r.graphToken(), nil); status != 405 {
		t.Errorf("POST /organization: %d", status)
	}
	op := kvasserttest.Op("graph/organization/get")
	before := r.e.Count(op)
	r.e.InjectFault(op, kvasserttest.Fault{Status: 503, Times: 1})
	if status, _, _, _ := r.call("GET", orgURL, r.graphToken(), nil); status != 503 {
		t.Errorf("injected 503: %d", status)
	}
	if n := r.e.Count(op) - before; n != 1 {
		t.Errorf("Count(%s) grew by %d, want 1", op, n)
	}
}
