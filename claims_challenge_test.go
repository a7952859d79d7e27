package kvassert_test

import (
	"context"
	"encoding/base64"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/runtime"

	"github.com/kvassert/kvassert"
	"github.com/kvassert/kvassert/kvasserttest"
)

// hostileResource is a downstream resource server (a real TLS server) that
// answers every request with a CAE claims challenge carrying claims, as any
// endpoint an Azure SDK client talks to can.
func hostileResource(t *testing.T, claims string) (*httptest.Server, *atomic.Int64) {
	t.Helper()
	var hits atomic.Int64
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		w.Header().Set("WWW-Authenticate", `Bearer realm="", error="insufficient_claims", claims="`+base64.StdEncoding.EncodeToString([]byte(claims))+`"`)
		w.WriteHeader(http.StatusUnauthorized)
	}))
	t.Cleanup(srv.Close)
	return srv, &hits
}

// A resource server that answers with the claims challenge "null"
// (base64 "bnVsbA==") made MSAL Go write into a nil map and panic in the
// credential's detached acquisition goroutine: the process exited. Now the
// claims are refused with an InputError before any network call, the
// resource's caller gets that error, and the credential keeps working.
func TestClaimsChallengeNullDoesNotCrash(t *testing.T) {
	d := newDemo(t)
	// A token first, so that the challenge below is a real CAE round.
	if _, err := d.cred.GetToken(context.Background(), policy.TokenRequestOptions{Scopes: []string{graph}, EnableCAE: true}); err != nil {
		t.Fatal(err)
	}
	srv, hits := hostileResource(t, "null")
	pl := runtime.NewPipeline("test", "v0", runtime.PipelineOptions{
		PerRetry: []policy.Policy{runtime.NewBearerTokenPolicy(d.cred, []string{graph}, nil)},
	}, &policy.ClientOptions{Transport: srv.Client(), Retry: policy.RetryOptions{MaxRetries: -1}})
	d.emu.ResetCounts()
	req, err := runtime.NewRequest(context.Background(), http.MethodGet, srv.URL+"/v1.0/organization")
	if err != nil {
		t.Fatal(err)
	}
	resp, err := pl.Do(req)
	if err == nil {
		t.Fatalf("the claims challenge \"null\" got status %d and no error", resp.StatusCode)
	}
	var ie *kvassert.InputError
	if !errors.As(err, &ie) || ie.Input != "claims" {
		t.Fatalf("err = %v, want an InputError for the claims", err)
	}
	if hits.Load() != 1 {
		t.Fatalf("the resource saw %d requests, want 1 (the challenge is not retried)", hits.Load())
	}
	if n := d.emu.Count(kvasserttest.OpKeySign) + d.emu.Count(kvasserttest.OpToken); n != 0 {
		t.Fatalf("refused claims made %d signs and token requests: %v", n, d.emu.Counts())
	}
	// The credential keeps working, also for a well-formed challenge.
	for _, claims := range []string{"", caeClaims} {
		if _, err := d.cred.GetToken(context.Background(), policy.TokenRequestOptions{Scopes: []string{graph}, EnableCAE: true, Claims: claims}); err != nil {
			t.Fatalf("GetToken (claims %q) after the refused challenge: %v", claims, err)
		}
	}
}

// Claims that are not a JSON object whose members are objects (the shape of
// an OpenID Connect claims request, which is what Entra sends in a CAE
// challenge), or that are too long or too deeply nested, are refused with
// an InputError before any network call, with or without CAE; the refusal
// never quotes the claims.
func TestGetTokenRefusesMalformedClaims(t *testing.T) {
	d := newDemo(t)
	deep := strings.Repeat(`{"a":`, 40) + "1" + strings.Repeat("}", 40)
	bad := map[string]string{
		"null":                   "null",
		"null with space":        " null ",
		"array":                  `[{"access_token":{}}]`,
		"string":                 `"x"`,
		"number":                 `1`,
		"true":                   `true`,
		"not json":               `{access_token}`,
		"truncated":              `{"access_token":{"nbf":`,
		"trailing garbage":       `{"access_token":{}}x`,
		"two values":             `{} {}`,
		"access_token null":      `{"access_token":null}`,
		"access_token string":    `{"access_token":"SECRETMARKER"}`,
		"access_token array":     `{"access_token":[1,2]}`,
		"id_token number":        `{"id_token":5}`,
		"too deep":               `{"access_token":` + deep + `}`,
		"too long":               `{"access_token":{"x":"` + strings.Repeat("A", 17<<10) + `"}}`,
		"invalid utf-8":          "{\"access_token\":{\"\xff\":1}}",
		"bare base64 of null":    "bnVsbA==",
		"empty object in string": `"{}"`,
	}
	for name, claims := range bad {
		for _, cae := range []bool{true, false} {
			_, err := d.cred.GetToken(context.Background(), policy.TokenRequestOptions{Scopes: []string{graph}, EnableCAE: cae, Claims: claims})
			var ie *kvassert.InputError
			if !errors.As(err, &ie) || ie.Input != "claims" {
				t.Errorf("%s (CAE %v): err = %v, want an InputError for the claims", name, cae, err)
				continue
			}
			if strings.Contains(err.Error(), "SECRETMARKER") || strings.Contains(err.Error(), "AAAAAAAAAA") {
				t.Errorf("%s: the refusal quotes the claims: %v", name, err)
			}
		}
	}
	// With CAE, MSAL adds the client capabilities and failed, after the
	// sign, on a challenge that sets them itself.
	for _, claims := range []string{`{"access_token":{"xms_cc":{"values":["cp1"]}}}`, `{"access_token":{"xms_cc":null}}`, `{"access_token":{"xms_cc":[]}}`} {
		_, err := d.cred.GetToken(context.Background(), policy.TokenRequestOptions{Scopes: []string{graph}, EnableCAE: true, Claims: claims})
		var ie *kvassert.InputError
		if !errors.As(err, &ie) || ie.Input != "claims" {
			t.Errorf("%s (CAE): err = %v, want an InputError for the claims", claims, err)
		}
	}
	if n := len(d.emu.Counts()); n != 0 {
		t.Fatalf("refused claims made requests: %v", d.emu.Counts())
	}
	// Shapes Entra sends, and nulls inside a claim, pass.
	good := []string{
		caeClaims,
		`{"access_token":{"nbf":{"essential":true,"value":"1732960000"},"acrs":{"essential":true,"value":"c1"}}}`,
		`{"access_token":{"nbf":null}}`,
		`{}`,
		` {"access_token":{}} `,
	}
	for _, claims := range good {
		if _, err := d.cred.GetToken(context.Background(), policy.TokenRequestOptions{Scopes: []string{graph}, EnableCAE: true, Claims: claims}); err != nil {
			t.Errorf("claims %s: %v", claims, err)
		}
	}
}

// FuzzGetTokenClaims passes the fuzzed claims to Credential.GetToken (with
// and without CAE) against the emulators, through the real MSAL: no panic
// (the acquisition's goroutine would take the process down, or now return
// a PanicError), claims that are not a claims request are an InputError
// with no network call, and the credential keeps working.
func FuzzGetTokenClaims(f *testing.F) {
	for _, s := range []string{
		"null", " null", "[]", `""`, "0", "{}", caeClaims,
		`{"access_token":null}`, `{"access_token":{"xms_cc":null}}`, `{"access_token":{"xms_cc":{"values":null}}}`,
		`{"access_token":{"xms_cc":{"values":["cp1"]}}}`, `{"access_token":{"xms_cc":[]}}`, `{"access_token":{"nbf":null}}`,
		`{"id_token":{"auth_time":{"essential":true}}}`, `{"access_token":{},"access_token":null}`,
		`{"access_token":{"nbf":{"essential":true,"value":"1732960000"},"acrs":{"essential":true,"values":["c1","c2"]}}}`,
		strings.Repeat(`{"a":`, 15) + "{}" + strings.Repeat("}", 15),
	} {
		f.Add(s)
	}
	d := newDemo(f)
	ctx := context.Background()
	if _, err := d.cred.GetToken(ctx, policy.TokenRequestOptions{Scopes: []string{graph}, EnableCAE: true}); err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, claims string) {
		for _, cae := range []bool{true, false} {
			before := d.emu.Count(kvasserttest.OpToken)
			_, err := d.cred.GetToken(ctx, policy.TokenRequestOptions{Scopes: []string{graph}, EnableCAE: cae, Claims: claims})
			var pe *kvassert.PanicError
			if errors.As(err, &pe) {
				t.Fatalf("claims %q (CAE %v): a panic in the acquisition: %v\n%s", claims, cae, pe.Value, pe.Stack)
			}
			var ie *kvassert.InputError
			if errors.As(err, &ie) {
				if ie.Input != "claims" && claims != "" {
					t.Fatalf("claims %q: refused as %q: %v", claims, ie.Input, err)
				}
				if n := d.emu.Count(kvasserttest.OpToken); n != before {
					t.Fatalf("claims %q refused after %d token requests", claims, n-before)
				}
			}
			if len(claims) > 16<<10 && err == nil {
				t.Fatalf("claims of %d bytes accepted", len(claims))
			}
		}
		if _, err := d.cred.GetToken(ctx, policy.TokenRequestOptions{Scopes: []string{graph}, EnableCAE: true}); err != nil {
			t.Fatalf("after claims %q the credential fails: %v", claims, err)
		}
	})
}
