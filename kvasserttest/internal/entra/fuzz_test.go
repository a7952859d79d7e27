package entra

import (
	"bytes"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/kvassert/kvassert/internal/emuhook"
)

// FuzzParseJWS: the compact-JWS decoder never panics, accepts only three
// non-empty unpadded base64url segments with a JSON object header and
// claims, and its claim accessors and time check never panic on what it
// accepts.
func FuzzParseJWS(f *testing.F) {
	now := time.Now()
	for _, s := range []string{
		"a.b.c", "e30.e30.e30", "e30.e30.", "..", "e30.bnVsbA.AA", "W10.e30.AA", "e30=.e30.AA",
		"eyJhbGciOiJQUzI1NiIsIng1dCNTMjU2IjoiQUFBQSJ9.eyJleHAiOiJ4In0.AA",
		jwsOf(`{"alg":"RS256","x5t":"AAAA"}`, `{"aud":["a",1,null],"exp":"1e400","nbf":-1}`, "sig"),
		jwsOf(`{"alg":"PS256"}`, `{"exp":1e11,"nbf":"NaN","iat":1.5}`, "sig"),
		jwsOf(`{"alg":"PS256","x5c":["AA"]}`, `{"aud":"https://login.microsoftonline.com/x/oauth2/v2.0/token","exp":99999999999}`, "s"),
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		j, oe := parseJWS(raw)
		if oe != nil {
			if j != nil || oe.code != 50027 {
				t.Fatalf("refusal %v with a result", oe)
			}
			return
		}
		parts := strings.Split(raw, ".")
		if len(parts) != 3 || j.signing != parts[0]+"."+parts[1] || j.claims == nil {
			t.Fatalf("accepted %q as %d parts, signing %q", raw, len(parts), j.signing)
		}
		for _, p := range parts {
			if p == "" || strings.ContainsAny(p, "=+/") {
				t.Fatalf("accepted segment %q", p)
			}
		}
		_ = j.str("iss")
		_ = j.audiences()
		if d, ok := j.numericDate("exp"); ok && (d.Before(time.Unix(0, 0)) || d.After(time.Unix(1e11+1, 0))) {
			t.Fatalf("exp %v out of range", d)
		}
		_ = checkTimes(j, now)
		_, _ = decodeThumbprint(j.header.X5t, 20)
		_, _ = decodeThumbprint(j.header.X5tS256, sha256.Size)
	})
}

// FuzzCertificateAssertion: arbitrary header and claims JSON, correctly
// signed with the demo app's certificate key, go through Entra's
// certificate-assertion validation for contoso. It never panics, and it
// accepts only what Entra would: PS256 or RS256, iss = sub = the client ID,
// aud = contoso's token endpoint, a jti, a live exp and nbf, and a thumbprint
// of the registered certificate.
func FuzzCertificateAssertion(f *testing.F) {
	fx := newFixture(f)
	tn, _ := fx.e.resolveTenant(contoso)
	a, oe := fx.e.view(demoApp, contoso, "https://vault.azure.net", tn)
	if oe != nil {
		f.Fatalf("no view of the demo app in contoso: %v", oe)
	}
	now := time.Now().Unix()
	good := func(alg, thumbName, thumb string) []byte {
		h, _ := json.Marshal(map[string]any{"alg": alg, "typ": "JWT", thumbName: thumb})
		return h
	}
	claimsJSON := func(m map[string]any) []byte { b, _ := json.Marshal(m); return b }
	aud := tokenURL(contoso)
	base := map[string]any{"aud": aud, "iss": demoApp, "sub": demoApp, "jti": "seed", "nbf": now, "iat": now, "exp": now + 600}
	f.Add(good("PS256", "x5t#S256", x5tS256(fx.appCert)), claimsJSON(base), byte(0))
	f.Add(good("RS256", "x5t", x5t(fx.appCert)), claimsJSON(base), byte(1))
	f.Add(good("none", "x5t", x5t(fx.appCert)), claimsJSON(base), byte(0))
	f.Add(good("PS256", "x5t#S256", "AAAA"), claimsJSON(base), byte(0))
	f.Add(good("PS256", "x5t#S256", x5tS256(fx.appCert)), []byte(`{"aud":["x","`+aud+`"],"iss":"`+demoApp+`","sub":"`+demoApp+`","jti":"j","exp":"`+"9999999999"+`"}`), byte(0))
	f.Add(good("PS256", "x5t#S256", x5tS256(fx.appCert)), []byte(`{"aud":"https://login.microsoftonline.com/common/oauth2/v2.0/token","iss":"x","sub":"x"}`), byte(2))
	f.Add([]byte(`{"alg":"PS256","x5t#S256":null,"x5t":7}`), []byte(`null`), byte(0))

	f.Fuzz(func(t *testing.T, header, claims []byte, mode byte) {
		in := base64.RawURLEncoding.EncodeToString(header) + "." + base64.RawURLEncoding.EncodeToString(claims)
		digest := sha256.Sum256([]byte(in))
		var sig []byte
		var err error
		switch mode % 3 {
		case 0:
			sig, err = rsa.SignPSS(rand.Reader, fx.appKey, crypto.SHA256, digest[:], &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash})
		case 1:
			sig, err = rsa.SignPKCS1v15(rand.Reader, fx.appKey, crypto.SHA256, digest[:])
		default:
			sig = bytes.Repeat([]byte{mode}, 256)
		}
		if err != nil {
			t.Fatal(err)
		}
		j, oe := parseJWS(in + "." + base64.RawURLEncoding.EncodeToString(sig))
		if oe != nil {
			return
		}
		if oe := fx.e.certificateAssertion(j, a, tn, "login.microsoftonline.com"); oe != nil {
			if oe.status < 400 || oe.status > 499 || oe.code == 0 || oe.msg == "" {
				t.Fatalf("refusal without a 4xx status, code or message: %+v", oe)
			}
			return
		}
		// Accepted: check what Entra requires.
		switch {
		case j.header.Alg != "PS256" && j.header.Alg != "RS256":
			t.Fatalf("accepted alg %q", j.header.Alg)
		case (j.header.Alg == "PS256") != (mode%3 == 0) || mode%3 == 2:
			t.Fatalf("accepted an %s header over a mode-%d signature", j.header.Alg, mode%3)
		case !strings.EqualFold(j.str("iss"), demoApp) || j.str("iss") != j.str("sub"):
			t.Fatalf("accepted iss %q sub %q", j.str("iss"), j.str("sub"))
		case j.str("jti") == "":
			t.Fatal("accepted without jti")
		}
		audOK := false
		for _, x := range j.audiences() {
			audOK = audOK || fx.e.audienceMatches(x, tn, "login.microsoftonline.com")
		}
		if !audOK {
			t.Fatalf("accepted aud %v", j.audiences())
		}
		exp, ok := j.numericDate("exp")
		if !ok || time.Now().After(exp.Add(clockSkew+time.Minute)) {
			t.Fatalf("accepted exp %v (%v)", exp, ok)
		}
		s256, ok256 := decodeThumbprint(j.header.X5tS256, sha256.Size)
		s1, ok1 := decodeThumbprint(j.header.X5t, 20)
		want256 := sha256.Sum256(fx.appCert.Raw)
		if !(ok256 && bytes.Equal(s256, want256[:])) && !(ok1 && bytes.Equal(s1, a.certs[0].sha1[:])) {
			t.Fatalf("accepted thumbprints %q / %q", j.header.X5tS256, j.header.X5t)
		}
	})
}

// jwsOf encodes a header and claims with a fake signature.
func jwsOf(header, claims, sig string) string {
	e := base64.RawURLEncoding
	return e.EncodeToString([]byte(header)) + "." + e.EncodeToString([]byte(claims)) + "." + e.EncodeToString([]byte(sig))
}

// FuzzAdminConsent: arbitrary tenant segments, query strings, methods and
// form bodies at the admin-consent endpoint never panic, never redirect (a
// redirect needs the page's anti-forgery token), answer only 200 (the page,
// for a GET), 400 or 405 with a bounded HTML body that holds no markup from
// the request, and never consent.
func FuzzAdminConsent(f *testing.F) {
	fx := newFixture(f)
	good := "client_id=" + demoApp + "&scope=https%3A%2F%2Fgraph.microsoft.com%2F.default&redirect_uri=http%3A%2F%2Flocalhost%3A9%2Fconsent%2Fcallback&state=s"
	for _, seed := range []struct {
		seg, query string
		post       bool
		body       string
	}{
		{emuhook.DemoTailspinTenant, good, false, ""},
		{"organizations", good, false, ""},
		{"common", good + "&state=x", false, ""},
		{"tailspin.onmicrosoft.com", good, true, good + "&action=accept&csrf=AAAA"},
		{emuhook.DemoTailspinTenant, "", true, good + "&action=accept&tenant=" + emuhook.DemoTailspinTenant},
		{"x<script>", "client_id=%3Cscript%3E&redirect_uri=javascript:alert(1)", false, ""},
		{"organizations", "client_id=" + demoApp + "&scope=%00&redirect_uri=http://localhost/consent/callback&state=%3Cb%3E", false, ""},
	} {
		f.Add(seed.seg, seed.query, seed.post, seed.body)
	}
	f.Fuzz(func(t *testing.T, seg, query string, post bool, body string) {
		if strings.ContainsAny(seg, "/?#") || !utf8.ValidString(seg) {
			return // not one path segment
		}
		method := http.MethodGet
		if post {
			method = http.MethodPost
		}
		req := httptest.NewRequest(method, "https://login.microsoftonline.com/x/v2.0/adminconsent", strings.NewReader(body))
		req.URL.Path = "/" + seg + "/v2.0/adminconsent"
		req.URL.RawQuery = query
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		rec := httptest.NewRecorder()
		fx.e.ServeHTTP(rec, req)
		switch st := rec.Code; {
		case st == http.StatusOK && !post:
		case st == http.StatusBadRequest, st == http.StatusMethodNotAllowed, st == http.StatusNotFound:
		default:
			t.Fatalf("status %d (Location %q)", st, rec.Header().Get("Location"))
		}
		out := rec.Body.String()
		if len(out) > 32<<10 || strings.Contains(out, "<script") || strings.Contains(out, "<b>") {
			t.Fatalf("body (%d bytes): %.300s", len(out), out)
		}
		if _, ok := fx.e.ConsentOf(demoApp, emuhook.DemoTailspinTenant); ok {
			t.Fatal("tailspin got consented")
		}
	})
}
