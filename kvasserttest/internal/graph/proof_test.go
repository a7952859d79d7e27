package graph

import (
	"crypto/rsa"
	"crypto/sha1" //nolint:gosec // x5t
	"crypto/x509"
	"encoding/base64"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/kvassert/kvassert/internal/testcert"
	"github.com/kvassert/kvassert/kvasserttest/internal/emu"
	"github.com/kvassert/kvassert/kvasserttest/internal/entra"
)

func testCert(t *testing.T, now time.Time) (*rsa.PrivateKey, *x509.Certificate) {
	t.Helper()
	c := testcert.New(t, &testcert.Options{CommonName: "t", NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour)})
	return c.RSA(t), c.Cert
}

func TestCheckProofShapes(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	key, cert := testCert(t, now)
	sum := sha1.Sum(cert.Raw) //nolint:gosec
	app := entra.App{ClientID: "c", ObjectID: "o"}
	creds := []entra.KeyCredential{{KeyID: "k", Certificate: cert}}
	claims := func() map[string]any {
		return map[string]any{"aud": ProofAudience, "iss": "O", "nbf": now.Unix(), "exp": now.Add(10 * time.Minute).Unix()}
	}
	// x5t in standard base64 (as .NET writes it sometimes) and iss in another case: accepted.
	h := map[string]any{"alg": "RS256", "x5t": base64.RawStdEncoding.EncodeToString(sum[:])}
	if kc, e := checkProof(testcert.SignJWT(t, key, h, claims()), app, creds, now); e != nil || kc.KeyID != "k" {
		t.Fatalf("valid proof refused: %+v", e)
	}
	h["x5t"] = base64.RawURLEncoding.EncodeToString(sum[:])
	for name, edit := range map[string]func(c map[string]any){
		"aud as an array": func(c map[string]any) { c["aud"] = []string{ProofAudience} },
		"exp as a string": func(c map[string]any) { c["exp"] = "1800000600" },
		"exp before nbf":  func(c map[string]any) { c["exp"] = now.Add(-time.Minute).Unix() },
	} {
		c := claims()
		edit(c)
		if _, e := checkProof(testcert.SignJWT(t, key, h, c), app, creds, now); e == nil || e.code != "Authentication_MissingOrMalformed" || e.status != 401 {
			t.Errorf("%s: %+v", name, e)
		}
	}
	creds[0].Revoked = true
	if _, e := checkProof(testcert.SignJWT(t, key, h, claims()), app, creds, now); e == nil || !strings.Contains(e.message, "revoked") {
		t.Errorf("revoked certificate: %+v", e)
	}
}

func TestRoute(t *testing.T) {
	for _, c := range []struct {
		method, path string
		op           emu.Op
		ref, action  string
		byAppID      bool
		code         string
	}{
		{"GET", "/v1.0/applications/abc", emu.OpGraphGetApplication, "abc", "", false, ""},
		{"GET", "/beta/Applications/abc", emu.OpGraphGetApplication, "abc", "", false, ""},
		{"POST", "/v1.0/applications/abc/addKey", emu.OpGraphAddKey, "abc", "addKey", false, ""},
		{"POST", "/v1.0/applications/abc/microsoft.graph.removeKey", emu.OpGraphRemoveKey, "abc", "removeKey", false, ""},
		{"POST", "/v1.0/applications(appId='xyz')/addKey", emu.OpGraphAddKey, "xyz", "addKey", true, ""},
		{"POST", "/v1.0/applications(appId=%27xyz%27)/removeKey", emu.OpGraphRemoveKey, "xyz", "removeKey", true, ""},
		{"POST", "/v1.0/applications/abc", "", "", "", false, "Request_BadRequest"},
		{"GET", "/v1.0/applications/abc/addKey", "", "", "", false, "Request_BadRequest"},
		{"GET", "/v1.0/users", "", "", "", false, "BadRequest"},
		{"GET", "/v2.0/applications/abc", "", "", "", false, "BadRequest"},
		{"GET", "/v1.0/applications", "", "", "", false, "BadRequest"},
		{"POST", "/v1.0/applications/abc/addPassword", "", "", "", false, "BadRequest"},
	} {
		rq, ge := route(httptest.NewRequest(c.method, "https://graph.microsoft.com"+c.path, nil))
		switch {
		case c.code != "" && (ge == nil || ge.code != c.code):
			t.Errorf("%s %s: %+v, want %s", c.method, c.path, ge, c.code)
		case c.code == "" && (ge != nil || rq.op != c.op || rq.appRef != c.ref || rq.action != c.action || rq.byAppID != c.byAppID):
			t.Errorf("%s %s: %+v %+v", c.method, c.path, rq, ge)
		}
	}
}
