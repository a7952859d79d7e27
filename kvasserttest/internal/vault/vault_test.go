package vault

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azcertificates"
	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azkeys"
	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azsecrets"
	"golang.org/x/crypto/pkcs12"

	"github.com/kvassert/kvassert/internal/testcert"
	"github.com/kvassert/kvassert/kvasserttest/internal/emu"
	"github.com/kvassert/kvassert/kvasserttest/scenario"
)

const (
	testTenant = "11111111-2222-4333-8444-555555555555"
	otherTen   = "99999999-2222-4333-8444-555555555555"
	writerApp  = "aaaaaaaa-0000-4000-8000-000000000001"
	signerApp  = "aaaaaaaa-0000-4000-8000-000000000002"
	nobodyApp  = "aaaaaaaa-0000-4000-8000-000000000003"
)

// harness serves one vault over TLS with httptest and hands out SDK
// clients whose credential issues emulator tokens.
type harness struct {
	t      *testing.T
	auth   *emu.Authority
	faults *emu.Faults
	v      *Vault
	srv    *httptest.Server
}

func newHarness(t *testing.T, sv scenario.Vault) *harness {
	t.Helper()
	auth, err := emu.NewAuthority()
	if err != nil {
		t.Fatal(err)
	}
	h := &harness{t: t, auth: auth, faults: &emu.Faults{}}
	if sv.Name == "" {
		sv.Name = "unit-vault"
	}
	if sv.Tenant == "" {
		sv.Tenant = testTenant
	}
	if sv.Access == nil {
		sv.Access = []scenario.Access{
			{Principal: writerApp, Permissions: []string{"*"}},
			{Principal: signerApp, Permissions: []string{"keys/sign", "certificates/get"}},
		}
	}
	h.srv = httptest.NewUnstartedServer(nil)
	h.srv.StartTLS()
	t.Cleanup(h.srv.Close)
	h.v, err = New(Config{Vault: sv, BaseURL: h.srv.URL, Authority: auth, Faults: h.faults})
	if err != nil {
		t.Fatal(err)
	}
	h.srv.Config.Handler = h.v
	return h
}

func (h *harness) claims(app string) emu.AccessClaims {
	now := time.Now().Unix()
	aud := ResourceVault
	if h.v.hsm {
		aud = ResourceManagedHSM
	}
	return emu.AccessClaims{Aud: aud, Iss: "https://sts.windows.net/" + testTenant + "/", Tid: testTenant, AppID: app,
		Oid: "0b0b0b0b-0000-4000-8000-" + app[len(app)-12:], Iat: now, Nbf: now, Exp: now + 3600}
}

func (h *harness) token(c emu.AccessClaims) string {
	tok, err := h.auth.Issue(c)
	if err != nil {
		h.t.Fatal(err)
	}
	return tok
}

// cred is an azcore.TokenCredential returning a fixed claim set.
type cred struct {
	h      *harness
	claims emu.AccessClaims
	calls  int
	mu     sync.Mutex
}

func (c *cred) GetToken(_ context.Context, o policy.TokenRequestOptions) (azcore.AccessToken, error) {
	c.mu.Lock()
	c.calls++
	c.mu.Unlock()
	tok, err := c.h.auth.Issue(c.claims)
	return azcore.AccessToken{Token: tok, ExpiresOn: time.Unix(c.claims.Exp, 0)}, err
}

func (h *harness) options() azcore.ClientOptions {
	return azcore.ClientOptions{
		Transport: h.srv.Client(),
		Retry:     policy.RetryOptions{RetryDelay: 10 * time.Millisecond, MaxRetryDelay: 2 * time.Second},
	}
}

func (h *harness) keysAs(c emu.AccessClaims) *azkeys.Client {
	cl, err := azkeys.NewClient(h.srv.URL, &cred{h: h, claims: c}, &azkeys.ClientOptions{ClientOptions: h.options(), DisableChallengeResourceVerification: true})
	if err != nil {
		h.t.Fatal(err)
	}
	return cl
}

func (h *harness) keys(app string) *azkeys.Client { return h.keysAs(h.claims(app)) }

func (h *harness) certs(app string) *azcertificates.Client {
	cl, err := azcertificates.NewClient(h.srv.URL, &cred{h: h, claims: h.claims(app)}, &azcertificates.ClientOptions{ClientOptions: h.options(), DisableChallengeResourceVerification: true})
	if err != nil {
		h.t.Fatal(err)
	}
	return cl
}

func (h *harness) secrets(app string) *azsecrets.Client {
	cl, err := azsecrets.NewClient(h.srv.URL, &cred{h: h, claims: h.claims(app)}, &azsecrets.ClientOptions{ClientOptions: h.options(), DisableChallengeResourceVerification: true})
	if err != nil {
		h.t.Fatal(err)
	}
	return cl
}

// do sends a raw request with a bearer token for app ("" for none).
func (h *harness) do(method, path, app, body string) (*http.Response, map[string]any) {
	h.t.Helper()
	req, err := http.NewRequest(method, h.srv.URL+path, strings.NewReader(body))
	if err != nil {
		h.t.Fatal(err)
	}
	if app != "" {
		req.Header.Set("Authorization", "Bearer "+h.token(h.claims(app)))
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := h.srv.Client().Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	var out map[string]any
	json.Unmarshal(data, &out) //nolint:errcheck // empty bodies stay nil
	return resp, out
}

func errorCode(body map[string]any) string {
	e, _ := body["error"].(map[string]any)
	c, _ := e["code"].(string)
	return c
}

func responseError(t *testing.T, err error) *azcore.ResponseError {
	t.Helper()
	var re *azcore.ResponseError
	if !errors.As(err, &re) {
		t.Fatalf("error %v is not an *azcore.ResponseError", err)
	}
	return re
}

func TestRawRequestShapes(t *testing.T) {
	h := newHarness(t, scenario.Vault{Keys: []scenario.VaultKey{{Name: "k1"}}})
	cases := []struct {
		name, method, path, app, body string
		status                        int
		code                          string
	}{
		{"no api-version", "GET", "/keys/k1/", writerApp, "", 400, "BadParameter"},
		{"challenge", "GET", "/keys/k1/?api-version=7.6", "", "", 401, "Unauthorized"},
		{"bad name", "GET", "/keys/bad_name/?api-version=7.6", writerApp, "", 400, "BadParameter"},
		{"unknown path", "GET", "/widgets?api-version=7.6", writerApp, "", 404, "NotFound"},
		{"unknown method", "DELETE", "/keys/k1/versions?api-version=7.6", writerApp, "", 404, "NotFound"},
		{"missing key", "GET", "/keys/nope/?api-version=7.6", writerApp, "", 404, "KeyNotFound"},
		{"missing version", "GET", "/keys/k1/0123456789abcdef0123456789abcdef?api-version=7.6", writerApp, "", 404, "KeyNotFound"},
		{"bad json", "POST", "/keys/k2/create?api-version=7.6", writerApp, "{", 400, "BadParameter"},
		{"empty body", "POST", "/keys/k2/create?api-version=7.6", writerApp, "", 400, "BadParameter"},
		{"bad kty", "POST", "/keys/k2/create?api-version=7.6", writerApp, `{"kty":"DSA"}`, 400, "BadParameter"},
		{"bad size", "POST", "/keys/k2/create?api-version=7.6", writerApp, `{"kty":"RSA","key_size":1024}`, 400, "BadParameter"},
		{"secp256k1", "POST", "/keys/k2/create?api-version=7.6", writerApp, `{"kty":"EC","crv":"P-256K"}`, 400, "BadParameter"},
		{"sign bad b64", "POST", "/keys/k1/sign?api-version=7.6", writerApp, `{"alg":"RS256","value":"***"}`, 400, "BadParameter"},
		{"sign bad alg", "POST", "/keys/k1/sign?api-version=7.6", writerApp, `{"alg":"ES256","value":"` + b64url(make([]byte, 32)) + `"}`, 400, "BadParameter"},
		{"forbidden", "GET", "/keys/k1/?api-version=7.6", nobodyApp, "", 403, "Forbidden"},
		{"secret missing", "GET", "/secrets/nope/?api-version=7.6", writerApp, "", 404, "SecretNotFound"},
		{"cert missing", "GET", "/certificates/nope/?api-version=7.6", writerApp, "", 404, "CertificateNotFound"},
		{"pending missing", "GET", "/certificates/nope/pending?api-version=7.6", writerApp, "", 404, "PendingCertificateNotFound"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			resp, body := h.do(c.method, c.path, c.app, c.body)
			if resp.StatusCode != c.status || errorCode(body) != c.code {
				t.Fatalf("got %d %v, want %d %s", resp.StatusCode, body, c.status, c.code)
			}
			if ct := resp.Header.Get("Content-Type"); ct != "application/json; charset=utf-8" {
				t.Errorf("Content-Type %q", ct)
			}
		})
	}
	// The challenge names the authority and tenant, and the resource.
	resp, _ := h.do("GET", "/keys/k1/?api-version=7.6", "", "")
	want := `Bearer authorization="https://login.microsoftonline.com/` + testTenant + `", resource="https://vault.azure.net"`
	if got := resp.Header.Get("WWW-Authenticate"); got != want {
		t.Errorf("challenge %q, want %q", got, want)
	}
	if n := h.faults.Count(emu.OpChallenge); n != 2 { // the "challenge" case and this one
		t.Errorf("OpChallenge count %d, want 2", n)
	}
}

func TestBodyCap(t *testing.T) {
	h := newHarness(t, scenario.Vault{})
	big := `{"kty":"RSA","tags":{"a":"` + strings.Repeat("x", maxBody) + `"}}`
	resp, body := h.do("POST", "/keys/big/create?api-version=7.6", writerApp, big)
	if resp.StatusCode != http.StatusRequestEntityTooLarge || errorCode(body) != "BadParameter" {
		t.Fatalf("got %d %v", resp.StatusCode, body)
	}
}

func TestTokenRejections(t *testing.T) {
	h := newHarness(t, scenario.Vault{Keys: []scenario.VaultKey{{Name: "k1"}}})
	ctx := context.Background()
	expired := h.claims(writerApp)
	expired.Exp, expired.Nbf = time.Now().Add(-2*time.Hour).Unix(), time.Now().Add(-3*time.Hour).Unix()
	wrongTenant := h.claims(writerApp)
	wrongTenant.Tid, wrongTenant.Iss = otherTen, "https://sts.windows.net/"+otherTen+"/"
	wrongAud := h.claims(writerApp)
	wrongAud.Aud = "https://management.azure.com/"
	for name, c := range map[string]struct {
		claims emu.AccessClaims
		msg    string
	}{
		"expired":      {expired, "TokenExpired"},
		"wrong tenant": {wrongTenant, "AKV10032"},
		"wrong aud":    {wrongAud, "AKV10022"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := h.keysAs(c.claims).GetKey(ctx, "k1", "", nil)
			re := responseError(t, err)
			if re.StatusCode != 401 || re.ErrorCode != "Unauthorized" || !strings.Contains(err.Error(), c.msg) {
				t.Fatalf("got %v", err)
			}
			tok := h.token(c.claims)
			if strings.Contains(err.Error(), tok) || strings.Contains(err.Error(), strings.Split(tok, ".")[1]) {
				t.Fatal("the error echoes the token")
			}
		})
	}
	// A token signed by another authority.
	other, _ := emu.NewAuthority()
	forged, _ := other.Issue(h.claims(writerApp))
	req, _ := http.NewRequest("GET", h.srv.URL+"/keys/k1/?api-version=7.6", nil)
	req.Header.Set("Authorization", "Bearer "+forged)
	resp, err := h.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	data, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 401 || !strings.Contains(string(data), "AKV10046") || resp.Header.Get("WWW-Authenticate") == "" {
		t.Fatalf("forged token: %d %s", resp.StatusCode, data)
	}
}

func TestKeysAllAlgorithms(t *testing.T) {
	h := newHarness(t, scenario.Vault{})
	ctx := context.Background()
	kc := h.keys(writerApp)
	shapes := []struct {
		name string
		p    azkeys.CreateKeyParameters
		algs []azkeys.SignatureAlgorithm
	}{
		{"rsa2048", azkeys.CreateKeyParameters{Kty: to.Ptr(azkeys.KeyTypeRSA), KeySize: to.Ptr(int32(2048))},
			[]azkeys.SignatureAlgorithm{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512"}},
		{"rsa3072", azkeys.CreateKeyParameters{Kty: to.Ptr(azkeys.KeyTypeRSAHSM), KeySize: to.Ptr(int32(3072))},
			[]azkeys.SignatureAlgorithm{"RS256", "PS384"}},
		{"p256", azkeys.CreateKeyParameters{Kty: to.Ptr(azkeys.KeyTypeEC), Curve: to.Ptr(azkeys.CurveNameP256)}, []azkeys.SignatureAlgorithm{"ES256"}},
		{"p384", azkeys.CreateKeyParameters{Kty: to.Ptr(azkeys.KeyTypeECHSM), Curve: to.Ptr(azkeys.CurveNameP384)}, []azkeys.SignatureAlgorithm{"ES384"}},
		{"p521", azkeys.CreateKeyParameters{Kty: to.Ptr(azkeys.KeyTypeEC), Curve: to.Ptr(azkeys.CurveNameP521)}, []azkeys.SignatureAlgorithm{"ES512"}},
	}
	for _, s := range shapes {
		t.Run(s.name, func(t *testing.T) {
			created, err := kc.CreateKey(ctx, s.name, s.p, nil)
			if err != nil {
				t.Fatal(err)
			}
			kid := *created.Key.KID
			if v := kid.Version(); len(v) != 32 || strings.ToLower(v) != v {
				t.Fatalf("version %q is not 32 lower-case hex", v)
			}
			if *created.Key.Kty != *s.p.Kty || *created.Attributes.RecoveryLevel != "Recoverable+Purgeable" || *created.Attributes.Exportable {
				t.Fatalf("bundle %+v", created.KeyBundle)
			}
			pub := publicFromJWK(t, created.Key)
			for _, alg := range s.algs {
				hash := sigAlgs[string(alg)].hash
				hh := hash.New()
				hh.Write([]byte("kvassert " + string(alg)))
				digest := hh.Sum(nil)
				// Latest version (empty version: "/keys/n//sign").
				res, err := kc.Sign(ctx, s.name, "", azkeys.SignParameters{Algorithm: &alg, Value: digest}, nil)
				if err != nil {
					t.Fatalf("%s: %v", alg, err)
				}
				if *res.KID != kid {
					t.Fatalf("sign kid %s, want %s", *res.KID, kid)
				}
				if err := localVerify(pub, string(alg), digest, res.Result); err != nil {
					t.Fatalf("%s: local verification: %v", alg, err)
				}
				ok, err := kc.Verify(ctx, s.name, kid.Version(), azkeys.VerifyParameters{Algorithm: &alg, Digest: digest, Signature: res.Result}, nil)
				if err != nil || !*ok.Value {
					t.Fatalf("%s: verify %v %v", alg, ok.Value, err)
				}
				bad := bytes.Clone(res.Result)
				bad[len(bad)/2] ^= 1
				ok, err = kc.Verify(ctx, s.name, "", azkeys.VerifyParameters{Algorithm: &alg, Digest: digest, Signature: bad}, nil)
				if err != nil || *ok.Value {
					t.Fatalf("%s: verify of a corrupted signature %v %v", alg, ok.Value, err)
				}
				_, err = kc.Sign(ctx, s.name, "", azkeys.SignParameters{Algorithm: &alg, Value: digest[:len(digest)-1]}, nil)
				if re := responseError(t, err); re.StatusCode != 400 || re.ErrorCode != "BadParameter" {
					t.Fatalf("%s: short digest: %v", alg, err)
				}
			}
		})
	}
}

// localVerify checks a signature with the standard library only.
func localVerify(pub crypto.PublicKey, alg string, digest, sig []byte) error {
	a := sigAlgs[alg]
	switch k := pub.(type) {
	case *rsa.PublicKey:
		if a.family == "PS" {
			return rsa.VerifyPSS(k, a.hash, digest, sig, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash})
		}
		return rsa.VerifyPKCS1v15(k, a.hash, digest, sig)
	case *ecdsa.PublicKey:
		n := len(sig) / 2
		der, err := asn1Sig(sig[:n], sig[n:])
		if err != nil {
			return err
		}
		if !ecdsa.VerifyASN1(k, digest, der) {
			return errors.New("ecdsa: invalid signature")
		}
		return nil
	}
	return errors.New("unknown key")
}

func publicFromJWK(t *testing.T, k *azkeys.JSONWebKey) crypto.PublicKey {
	t.Helper()
	data, err := json.Marshal(k)
	if err != nil {
		t.Fatal(err)
	}
	var j jwkInput
	if err := json.Unmarshal(data, &j); err != nil {
		t.Fatal(err)
	}
	pub, err := jwkPublic(j)
	if err != nil {
		t.Fatal(err)
	}
	return pub
}

func TestKeyVersionsListUpdate(t *testing.T) {
	h := newHarness(t, scenario.Vault{})
	ctx := context.Background()
	kc := h.keys(writerApp)
	p := azkeys.CreateKeyParameters{Kty: to.Ptr(azkeys.KeyTypeEC)}
	first, err := kc.CreateKey(ctx, "Rotating", p, nil)
	if err != nil {
		t.Fatal(err)
	}
	second, err := kc.CreateKey(ctx, "rotating", p, nil)
	if err != nil {
		t.Fatal(err)
	}
	latest, err := kc.GetKey(ctx, "ROTATING", "", nil)
	if err != nil || *latest.Key.KID != *second.Key.KID {
		t.Fatalf("latest %v %v", latest.Key, err)
	}
	old, err := kc.GetKey(ctx, "rotating", first.Key.KID.Version(), nil)
	if err != nil || *old.Key.KID != *first.Key.KID || !strings.Contains(string(*old.Key.KID), "/keys/Rotating/") {
		t.Fatalf("versioned get %v %v", old.Key, err)
	}
	var versions []string
	for pager := kc.NewListKeyPropertiesVersionsPager("rotating", nil); pager.More(); {
		page, err := pager.NextPage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, k := range page.Value {
			versions = append(versions, k.KID.Version())
		}
	}
	if len(versions) != 2 {
		t.Fatalf("versions %v", versions)
	}
	var names []string
	for pager := kc.NewListKeyPropertiesPager(nil); pager.More(); {
		page, err := pager.NextPage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, k := range page.Value {
			names = append(names, k.KID.Name())
		}
	}
	if len(names) != 1 || names[0] != "Rotating" {
		t.Fatalf("names %v", names)
	}
	// Disable the latest version: sign is refused, the old version still signs.
	upd, err := kc.UpdateKey(ctx, "rotating", second.Key.KID.Version(), azkeys.UpdateKeyParameters{KeyAttributes: &azkeys.KeyAttributes{Enabled: to.Ptr(false)}, Tags: map[string]*string{"env": to.Ptr("test")}}, nil)
	if err != nil || *upd.Attributes.Enabled || *upd.Tags["env"] != "test" {
		t.Fatalf("update %+v %v", upd, err)
	}
	digest := sha256.Sum256([]byte("x"))
	_, err = kc.Sign(ctx, "rotating", "", azkeys.SignParameters{Algorithm: to.Ptr(azkeys.SignatureAlgorithmES256), Value: digest[:]}, nil)
	if re := responseError(t, err); re.StatusCode != 403 {
		t.Fatalf("sign with a disabled key: %v", err)
	}
	if _, err := kc.Sign(ctx, "rotating", first.Key.KID.Version(), azkeys.SignParameters{Algorithm: to.Ptr(azkeys.SignatureAlgorithmES256), Value: digest[:]}, nil); err != nil {
		t.Fatal(err)
	}
	// key_ops without sign.
	if _, err := kc.UpdateKey(ctx, "rotating", first.Key.KID.Version(), azkeys.UpdateKeyParameters{KeyOps: []*azkeys.KeyOperation{to.Ptr(azkeys.KeyOperationVerify)}}, nil); err != nil {
		t.Fatal(err)
	}
	_, err = kc.Sign(ctx, "rotating", first.Key.KID.Version(), azkeys.SignParameters{Algorithm: to.Ptr(azkeys.SignatureAlgorithmES256), Value: digest[:]}, nil)
	if re := responseError(t, err); re.StatusCode != 403 {
		t.Fatalf("sign without key_ops sign: %v", err)
	}
}

func TestImportKey(t *testing.T) {
	h := newHarness(t, scenario.Vault{})
	ctx := context.Background()
	kc := h.keys(writerApp)
	priv, _ := ecdsa.GenerateKey(ellipticP256(), randReader)
	d := priv.D.FillBytes(make([]byte, 32))
	x, y := priv.X.FillBytes(make([]byte, 32)), priv.Y.FillBytes(make([]byte, 32))
	res, err := kc.ImportKey(ctx, "imported", azkeys.ImportKeyParameters{Key: &azkeys.JSONWebKey{
		Kty: to.Ptr(azkeys.KeyTypeEC), Crv: to.Ptr(azkeys.CurveNameP256), D: d, X: x, Y: y,
	}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(res.Key.X, x) || res.Key.D != nil {
		t.Fatalf("imported key %+v", res.Key)
	}
	digest := sha256.Sum256([]byte("imported"))
	sig, err := kc.Sign(ctx, "imported", "", azkeys.SignParameters{Algorithm: to.Ptr(azkeys.SignatureAlgorithmES256), Value: digest[:]}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := localVerify(&priv.PublicKey, "ES256", digest[:], sig.Result); err != nil {
		t.Fatal(err)
	}
	_, err = kc.ImportKey(ctx, "imported", azkeys.ImportKeyParameters{Key: &azkeys.JSONWebKey{Kty: to.Ptr(azkeys.KeyTypeEC), Crv: to.Ptr(azkeys.CurveNameP256), D: []byte{0}}}, nil)
	if re := responseError(t, err); re.StatusCode != 400 {
		t.Fatalf("bad import: %v", err)
	}
}

func TestRBAC(t *testing.T) {
	h := newHarness(t, scenario.Vault{Keys: []scenario.VaultKey{{Name: "k1"}}})
	ctx := context.Background()
	digest := sha256.Sum256([]byte("rbac"))
	params := azkeys.SignParameters{Algorithm: to.Ptr(azkeys.SignatureAlgorithmPS256), Value: digest[:]}
	if _, err := h.keys(signerApp).Sign(ctx, "k1", "", params, nil); err != nil {
		t.Fatalf("signer: %v", err)
	}
	_, err := h.keys(signerApp).GetKey(ctx, "k1", "", nil)
	re := responseError(t, err)
	if re.StatusCode != 403 || re.ErrorCode != "Forbidden" || !strings.Contains(err.Error(), "ForbiddenByRbac") ||
		!strings.Contains(err.Error(), "Microsoft.KeyVault/vaults/keys/read") || !strings.Contains(err.Error(), "appid="+signerApp) {
		t.Fatalf("get as signer: %v", err)
	}
	h.v.Grant(signerApp, "keys/get")
	if _, err := h.keys(signerApp).GetKey(ctx, "k1", "", nil); err != nil {
		t.Fatalf("after grant: %v", err)
	}
	h.v.Revoke(signerApp, "keys/sign")
	_, err = h.keys(signerApp).Sign(ctx, "k1", "", params, nil)
	if re := responseError(t, err); re.StatusCode != 403 || !strings.Contains(err.Error(), "keys/sign/action") {
		t.Fatalf("after revoke: %v", err)
	}
	h.v.Revoke(signerApp)
	if _, err := h.keys(signerApp).GetKey(ctx, "k1", "", nil); err == nil {
		t.Fatal("revoke all left access")
	}
	// Grants by object ID work too.
	c := h.claims(nobodyApp)
	h.v.Grant(strings.ToUpper(c.Oid), "keys/get")
	if _, err := h.keysAs(c).GetKey(ctx, "k1", "", nil); err != nil {
		t.Fatalf("grant by object ID: %v", err)
	}
}

func TestFaultsAndSignLimit(t *testing.T) {
	h := newHarness(t, scenario.Vault{Keys: []scenario.VaultKey{{Name: "k1", Kty: "EC"}}})
	ctx := context.Background()
	kc := h.keys(writerApp)
	digest := sha256.Sum256([]byte("limit"))
	params := azkeys.SignParameters{Algorithm: to.Ptr(azkeys.SignatureAlgorithmES256), Value: digest[:]}
	if _, err := kc.Sign(ctx, "k1", "", params, nil); err != nil { // challenge done
		t.Fatal(err)
	}
	h.faults.ResetCounts()
	h.faults.Set(emu.OpKeySign, emu.Fault{Status: 503, Times: 1})
	if _, err := kc.Sign(ctx, "k1", "", params, nil); err != nil {
		t.Fatalf("retry after 503: %v", err)
	}
	if n := h.faults.Count(emu.OpKeySign); n != 2 {
		t.Fatalf("sign count %d, want 2", n)
	}
	h.v.SetSignLimit(emu.RateLimit{Requests: 2, Window: time.Hour})
	noRetry := h.keysNoRetry()
	var throttled int
	for range 5 {
		_, err := noRetry.Sign(ctx, "k1", "", params, nil)
		if err != nil {
			re := responseError(t, err)
			if re.StatusCode != 429 || re.ErrorCode != "Throttled" || re.RawResponse.Header.Get("Retry-After") != "" ||
				!strings.Contains(err.Error(), "VaultRequestTypeLimitReached") {
				t.Fatalf("throttled answer: %v", err)
			}
			throttled++
		}
	}
	if throttled != 3 {
		t.Fatalf("%d throttled, want 3", throttled)
	}
	h.v.SetSignLimit(emu.RateLimit{})
	if _, err := noRetry.Sign(ctx, "k1", "", params, nil); err != nil {
		t.Fatal(err)
	}
}

func (h *harness) keysNoRetry() *azkeys.Client {
	o := h.options()
	o.Retry.MaxRetries = -1
	cl, err := azkeys.NewClient(h.srv.URL, &cred{h: h, claims: h.claims(writerApp)}, &azkeys.ClientOptions{ClientOptions: o, DisableChallengeResourceVerification: true})
	if err != nil {
		h.t.Fatal(err)
	}
	return cl
}

func TestManagedHSM(t *testing.T) {
	h := newHarness(t, scenario.Vault{ManagedHSM: true, Keys: []scenario.VaultKey{{Name: "hsmkey", Kty: "EC"}}})
	resp, body := h.do("GET", "/keys/hsmkey/?api-version=7.6", "", "")
	if resp.StatusCode != 401 || body != nil || !strings.Contains(resp.Header.Get("WWW-Authenticate"), `resource="https://managedhsm.azure.net"`) {
		t.Fatalf("HSM challenge: %d %v %q", resp.StatusCode, body, resp.Header.Get("WWW-Authenticate"))
	}
	resp, body = h.do("GET", "/certificates/c/?api-version=7.6", writerApp, "")
	if resp.StatusCode != 404 {
		t.Fatalf("HSM certificates: %d %v", resp.StatusCode, body)
	}
	ctx := context.Background()
	kc := h.keys(writerApp)
	k, err := kc.GetKey(ctx, "hsmkey", "", nil)
	if err != nil || *k.Key.Kty != azkeys.KeyTypeECHSM || k.Attributes.HSMPlatform != nil {
		t.Fatalf("HSM key %+v %v", k.Key, err)
	}
	created, err := kc.CreateKey(ctx, "rsa", azkeys.CreateKeyParameters{Kty: to.Ptr(azkeys.KeyTypeRSA)}, nil)
	if err != nil || *created.Key.Kty != azkeys.KeyTypeRSAHSM {
		t.Fatalf("HSM create %v %v", created.Key, err)
	}
	digest := sha256.Sum256([]byte("hsm"))
	resp, body = h.do("POST", "/keys/rsa/sign?api-version=7.6", writerApp, `{"alg":"PS256","value":"`+b64url(digest[:])+`"}`)
	if resp.StatusCode != 200 || body["alg"] != "PS256" || body["kid"] != string(*created.Key.KID) {
		t.Fatalf("HSM sign answer %d %v", resp.StatusCode, body)
	}
}

func TestCertificateLifecycle(t *testing.T) {
	h := newHarness(t, scenario.Vault{})
	ctx := context.Background()
	cc := h.certs(writerApp)
	h.v.SetPendingPolls(2)
	pol := azcertificates.CertificatePolicy{
		IssuerParameters:          &azcertificates.IssuerParameters{Name: to.Ptr("self")},
		X509CertificateProperties: &azcertificates.X509CertificateProperties{Subject: to.Ptr("CN=unit, O=kvassert, S=Test, C=NL"), ValidityInMonths: to.Ptr(int32(6))},
		KeyProperties:             &azcertificates.KeyProperties{KeyType: to.Ptr(azcertificates.KeyTypeEC), Curve: to.Ptr(azcertificates.CurveNameP384), Exportable: to.Ptr(false)},
	}
	created, err := cc.CreateCertificate(ctx, "unit", azcertificates.CreateCertificateParameters{CertificatePolicy: &pol}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if *created.Status != "inProgress" || len(created.CSR) == 0 {
		t.Fatalf("create answer %+v", created.CertificateOperation)
	}
	if _, err := cc.GetCertificate(ctx, "unit", "", nil); err == nil {
		t.Fatal("certificate visible before completion")
	}
	var statuses []string
	for range 3 {
		op, err := cc.GetCertificateOperation(ctx, "unit", nil)
		if err != nil {
			t.Fatal(err)
		}
		statuses = append(statuses, *op.Status)
	}
	if strings.Join(statuses, ",") != "inProgress,inProgress,completed" {
		t.Fatalf("statuses %v", statuses)
	}
	got, err := cc.GetCertificate(ctx, "unit", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(got.CER)
	if err != nil {
		t.Fatal(err)
	}
	if formatDN(cert.RawSubject) != "CN=unit, O=kvassert, S=Test, C=NL" || cert.Subject.CommonName != "unit" {
		t.Fatalf("subject %q", formatDN(cert.RawSubject))
	}
	if months := cert.NotAfter.Sub(cert.NotBefore).Hours() / 24 / 30; months < 5.9 || months > 6.2 {
		t.Fatalf("validity %v months", months)
	}
	pub, kid, err := h.v.PublicKey("unit")
	if err != nil || !publicKeysEqual(cert.PublicKey, pub) || kid != string(*got.KID) {
		t.Fatalf("key %v %s %v", err, kid, *got.KID)
	}
	// Non-exportable: the secret holds the certificate only.
	sec, err := h.secrets(writerApp).GetSecret(ctx, "unit", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	pfx, _ := base64.StdEncoding.DecodeString(*sec.Value)
	if _, _, err := pkcs12.Decode(pfx, ""); err == nil {
		t.Fatal("the secret of a non-exportable certificate decodes with a private key")
	}
	blocks, err := pkcs12.ToPEM(pfx, "")
	if err != nil || len(blocks) != 1 || blocks[0].Type != "CERTIFICATE" || !bytes.Equal(blocks[0].Bytes, got.CER) {
		t.Fatalf("non-exportable secret: %d blocks, %v", len(blocks), err)
	}
	// Policy update, then a second version with the new policy.
	pp, err := cc.UpdateCertificatePolicy(ctx, "unit", azcertificates.CertificatePolicy{
		KeyProperties:    &azcertificates.KeyProperties{Exportable: to.Ptr(true)},
		SecretProperties: &azcertificates.SecretProperties{ContentType: to.Ptr("application/x-pem-file")},
	}, nil)
	if err != nil || !*pp.KeyProperties.Exportable || *pp.KeyProperties.Curve != azcertificates.CurveNameP384 {
		t.Fatalf("policy update %+v %v", pp.KeyProperties, err)
	}
	h.v.SetPendingPolls(0)
	if _, err := cc.CreateCertificate(ctx, "unit", azcertificates.CreateCertificateParameters{}, nil); err != nil {
		t.Fatal(err)
	}
	second, err := cc.GetCertificate(ctx, "unit", "", nil)
	if err != nil || second.ID.Version() == got.ID.Version() {
		t.Fatalf("second version %v", err)
	}
	sec, err = h.secrets(writerApp).GetSecret(ctx, "unit", second.ID.Version(), nil)
	if err != nil || *sec.ContentType != "application/x-pem-file" || !strings.Contains(*sec.Value, "PRIVATE KEY") {
		t.Fatalf("exportable PEM secret: %v", err)
	}
	var versions int
	for pager := cc.NewListCertificatePropertiesVersionsPager("unit", nil); pager.More(); {
		page, err := pager.NextPage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		versions += len(page.Value)
	}
	if versions != 2 {
		t.Fatalf("%d versions", versions)
	}
	// Update: disable; the key stops signing.
	if _, err := cc.UpdateCertificate(ctx, "unit", "", azcertificates.UpdateCertificateParameters{CertificateAttributes: &azcertificates.CertificateAttributes{Enabled: to.Ptr(false)}}, nil); err != nil {
		t.Fatal(err)
	}
	digest := sha256.Sum256([]byte("x"))
	_, err = h.keys(writerApp).Sign(ctx, "unit", "", azkeys.SignParameters{Algorithm: to.Ptr(azkeys.SignatureAlgorithmES384), Value: append(digest[:], digest[:16]...)}, nil)
	if re := responseError(t, err); re.StatusCode != 403 {
		t.Fatalf("sign with a disabled certificate's key: %v", err)
	}
	// Delete, read deleted, recover.
	if _, err := cc.DeleteCertificate(ctx, "unit", nil); err != nil {
		t.Fatal(err)
	}
	if _, err := cc.CreateCertificate(ctx, "unit", azcertificates.CreateCertificateParameters{CertificatePolicy: &pol}, nil); responseError(t, err).StatusCode != 409 {
		t.Fatalf("create over a deleted certificate: %v", err)
	}
	if _, err := cc.GetDeletedCertificate(ctx, "unit", nil); err != nil {
		t.Fatal(err)
	}
	if _, err := cc.RecoverDeletedCertificate(ctx, "unit", nil); err != nil {
		t.Fatal(err)
	}
	if _, err := h.keys(writerApp).GetKey(ctx, "unit", "", nil); err != nil {
		t.Fatalf("recovered key: %v", err)
	}
}

func TestUnknownIssuerAndMerge(t *testing.T) {
	h := newHarness(t, scenario.Vault{})
	ctx := context.Background()
	cc := h.certs(writerApp)
	pol := azcertificates.CertificatePolicy{
		IssuerParameters:          &azcertificates.IssuerParameters{Name: to.Ptr("Unknown")},
		X509CertificateProperties: &azcertificates.X509CertificateProperties{Subject: to.Ptr("CN=merged")},
	}
	op, err := cc.CreateCertificate(ctx, "merged", azcertificates.CreateCertificateParameters{CertificatePolicy: &pol}, nil)
	if err != nil || !strings.Contains(*op.StatusDetails, "Merge") {
		t.Fatalf("create %v", err)
	}
	csr, err := x509.ParseCertificateRequest(op.CSR)
	if err != nil || csr.CheckSignature() != nil {
		t.Fatalf("csr %v", err)
	}
	// A CA signs the CSR.
	caKey, _ := ecdsa.GenerateKey(ellipticP256(), randReader)
	caTmpl := &x509.Certificate{SerialNumber: bigOne(), Subject: csr.Subject, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), BasicConstraintsValid: true, IsCA: true, KeyUsage: x509.KeyUsageCertSign}
	leafTmpl := &x509.Certificate{SerialNumber: bigOne(), Subject: csr.Subject, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(randReader, leafTmpl, caTmpl, csr.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	wrong, _ := x509.CreateCertificate(randReader, leafTmpl, caTmpl, &caKey.PublicKey, caKey)
	if _, err := cc.MergeCertificate(ctx, "merged", azcertificates.MergeCertificateParameters{X509Certificates: [][]byte{wrong}}, nil); responseError(t, err).StatusCode != 400 {
		t.Fatalf("merge of a foreign key: %v", err)
	}
	merged, err := cc.MergeCertificate(ctx, "merged", azcertificates.MergeCertificateParameters{X509Certificates: [][]byte{der}}, nil)
	if err != nil || !bytes.Equal(merged.CER, der) {
		t.Fatalf("merge %v", err)
	}
	done, err := cc.GetCertificateOperation(ctx, "merged", nil)
	if err != nil || *done.Status != "completed" || done.Target == nil {
		t.Fatalf("operation after merge %+v %v", done, err)
	}
	if _, err := cc.DeleteCertificateOperation(ctx, "merged", nil); err != nil {
		t.Fatal(err)
	}
	if _, err := cc.GetCertificateOperation(ctx, "merged", nil); responseError(t, err).StatusCode != 404 {
		t.Fatalf("deleted operation: %v", err)
	}
}

func TestConcurrentSigningAndUpdates(t *testing.T) {
	h := newHarness(t, scenario.Vault{Keys: []scenario.VaultKey{{Name: "hot", Kty: "EC"}}, Certificates: []scenario.VaultCertificate{{Name: "cert", KeyType: "EC"}}})
	ctx := context.Background()
	kc := h.keys(writerApp)
	cc := h.certs(writerApp)
	digest := sha256.Sum256([]byte("race"))
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for i := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 5 {
				name := "hot"
				if i%2 == 1 {
					name = "cert"
				}
				if _, err := kc.Sign(ctx, name, "", azkeys.SignParameters{Algorithm: to.Ptr(azkeys.SignatureAlgorithmES256), Value: digest[:]}, nil); err != nil {
					errs <- err
				}
			}
		}()
	}
	wg.Add(2)
	go func() {
		defer wg.Done()
		for range 5 {
			if _, err := kc.UpdateKey(ctx, "hot", "", azkeys.UpdateKeyParameters{Tags: map[string]*string{"n": to.Ptr("1")}}, nil); err != nil {
				errs <- err
			}
		}
	}()
	go func() {
		defer wg.Done()
		for range 3 {
			if _, err := cc.CreateCertificate(ctx, "cert", azcertificates.CreateCertificateParameters{}, nil); err != nil {
				errs <- err
			}
			if _, err := cc.GetCertificateOperation(ctx, "cert", nil); err != nil {
				errs <- err
			}
		}
	}()
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func TestPKCS12RoundTrip(t *testing.T) {
	c := testcert.New(t, &testcert.Options{NotBefore: time.Now(), NotAfter: time.Now().Add(time.Hour)})
	der, priv := c.DER(), c.RSA(t)
	pfx, err := encodePKCS12(der, priv)
	if err != nil {
		t.Fatal(err)
	}
	key, cert, err := pkcs12.Decode(pfx, "")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(cert.Raw, der) || !priv.Equal(key) {
		t.Fatal("round trip changed the certificate or key")
	}
	if _, _, err := pkcs12.Decode(pfx, "wrong"); err == nil {
		t.Fatal("wrong password accepted")
	}
}

func TestDN(t *testing.T) {
	for in, want := range map[string]string{
		"CN=a":                          "CN=a",
		"CN=a,O=b, ST=c,C=NL":           "CN=a, O=b, S=c, C=NL",
		`CN="x, y", E=a@example.com`:    `CN="x, y", E=a@example.com`,
		`cn=esc\,aped, dc=example`:      `CN="esc,aped", DC=example`,
		"O=Internet Widgits, S=Some, C": "",
	} {
		raw, e := parseDN(in)
		if want == "" {
			if e == nil {
				t.Errorf("%q: accepted", in)
			}
			continue
		}
		if e != nil {
			t.Errorf("%q: %v", in, e)
			continue
		}
		if got := formatDN(raw); got != want {
			t.Errorf("%q: got %q, want %q", in, got, want)
		}
	}
}

func FuzzRoute(f *testing.F) {
	for _, s := range []string{"/keys/a/sign", "/keys//", "/certificates/a/pending/merge", "/secrets/a/b/c", "/deletedcertificates/x/recover", "/%zz"} {
		f.Add("POST", s, `{"alg":"RS256","value":"AA"}`)
	}
	auth, _ := emu.NewAuthority()
	v, err := New(Config{Vault: scenario.Vault{Name: "fuzz-vault", Tenant: testTenant, Keys: []scenario.VaultKey{{Name: "a", Kty: "EC"}},
		Access: []scenario.Access{{Principal: writerApp, Permissions: []string{"*"}}}}, Authority: auth})
	if err != nil {
		f.Fatal(err)
	}
	now := time.Now().Unix()
	tok, _ := auth.Issue(emu.AccessClaims{Aud: ResourceVault, Tid: testTenant, AppID: writerApp, Nbf: now, Exp: now + 3600})
	f.Fuzz(func(t *testing.T, method, path, body string) {
		req, err := http.NewRequest(method, "https://fuzz-vault.vault.azure.net/", strings.NewReader(body))
		if err != nil {
			return
		}
		req.URL.Path = path
		req.URL.RawQuery = "api-version=7.6"
		req.Header.Set("Authorization", "Bearer "+tok)
		rec := httptest.NewRecorder()
		v.ServeHTTP(rec, req)
		if rec.Code == 0 || rec.Code >= 500 {
			t.Fatalf("%s %q: status %d %s", method, path, rec.Code, rec.Body)
		}
	})
}
