package assertion

import (
	"context"
	"encoding/base64"
	"strings"
	"testing"
	"time"

	"github.com/kvassert/kvassert/internal/jwtassert"
	"github.com/kvassert/kvassert/internal/testcert"
)

func TestParseRejectsMalformed(t *testing.T) {
	enc := base64.RawURLEncoding.EncodeToString
	good := enc([]byte(`{"alg":"PS256"}`))
	for _, c := range []struct{ name, in, want string }{
		{"empty", "", "empty token"},
		{"two parts", "a.b", "3 dot-separated parts"},
		{"padded", good + "==." + good + ".c2ln", "without padding"},
		{"std base64", good + "." + good + "./+8", "without padding"},
		{"empty signature", good + "." + good + ".", "signature part is empty"},
		{"not json", enc([]byte("nope")) + "." + good + ".c2ln", "header is not a JSON"},
		{"claims wrong type", good + "." + enc([]byte(`{"exp":"soon"}`)) + ".c2ln", "claims are not a JSON"},
		{"oversized", strings.Repeat("a", jwtassert.MaxTokenSize+1), "more than"},
	} {
		t.Run(c.name, func(t *testing.T) {
			if _, err := jwtassert.Parse(c.in); err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("Parse error = %v, want %q", err, c.want)
			}
		})
	}
}

func TestCheckFindsEachProblem(t *testing.T) {
	cert, key := validCert(t)
	b, _ := New(cert, key, nil)
	jwt, _ := b.Build(context.Background(), clientID, audience)
	tok, _ := jwtassert.Parse(jwt)
	other := testcert.RSAKey(t, 0)
	otherCert := selfSigned(t, other, time.Now().Add(-time.Hour), time.Now().Add(time.Hour))

	cases := []struct {
		name string
		o    jwtassert.CheckOptions
		want string
	}{
		{"expired", jwtassert.CheckOptions{Now: time.Now().Add(time.Hour)}, "expired"},
		{"future", jwtassert.CheckOptions{Now: time.Now().Add(-time.Hour)}, "not valid until"},
		{"wrong audience", jwtassert.CheckOptions{Audience: "https://login.microsoftonline.com/other/oauth2/v2.0/token"}, "aud is"},
		{"wrong client", jwtassert.CheckOptions{ClientID: "someone-else"}, "not the client ID"},
		{"wrong certificate", jwtassert.CheckOptions{Certificate: otherCert}, "thumbprint"},
		{"signature by another key", jwtassert.CheckOptions{Certificate: otherCert}, "does not verify"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := tok.Check(c.o)
			if !strings.Contains(strings.Join(p, "\n"), c.want) {
				t.Fatalf("Check = %q, want a problem containing %q", p, c.want)
			}
		})
	}
	bad, _ := jwtassert.Parse(base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"HS256"}`)) + "." + base64.RawURLEncoding.EncodeToString([]byte(`{"aud":["a","b"],"iss":"x","sub":"y"}`)) + ".c2ln")
	p := strings.Join(bad.Check(jwtassert.CheckOptions{}), "\n")
	for _, want := range []string{"alg is \"HS256\"", "neither x5t", "exactly one value", "iss (\"x\") and sub (\"y\")", "jti is missing", "exp is missing"} {
		if !strings.Contains(p, want) {
			t.Errorf("Check of a bad token misses %q in:\n%s", want, p)
		}
	}
}

func FuzzParse(f *testing.F) {
	f.Add("eyJhbGciOiJQUzI1NiJ9.eyJhdWQiOiJ4In0.c2ln")
	f.Add("a.b.c")
	f.Add("..")
	f.Add("eyJhbGciOiJQUzI1NiJ9.eyJhdWQiOlsieCIsInkiXX0.c2ln")
	f.Fuzz(func(t *testing.T, s string) {
		tok, err := jwtassert.Parse(s)
		if err != nil {
			if strings.Contains(err.Error(), s) && len(s) > 8 {
				t.Fatalf("error echoes the token: %v", err)
			}
			return
		}
		_ = tok.Check(jwtassert.CheckOptions{})
	})
}
