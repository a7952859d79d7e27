package main

import (
	"crypto/rsa"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/kvassert/kvassert/internal/emuhook"
	"github.com/kvassert/kvassert/internal/jwtassert"
	"github.com/kvassert/kvassert/kvasserttest/scenario"
)

func TestAssertion(t *testing.T) {
	t.Parallel()
	env := newCLIEnv(t)
	cert, x5t, x5tS256 := demoThumbprints(t, env)

	// Default: PS256, x5t#S256, aud = the tenant's token endpoint, 10 minutes.
	r := env.run([]string{"assertion", "--tenant", "contoso.onmicrosoft.com"})
	wantOK(t, r)
	jwt := strings.TrimSpace(r.stdout)
	if strings.Count(r.stdout, "\n") != 1 || !jwtPattern.MatchString(jwt) {
		t.Fatalf("stdout is not one JWT line: %q", r.stdout)
	}
	tok, err := jwtassert.Parse(jwt)
	if err != nil {
		t.Fatal(err)
	}
	aud := "https://login.microsoftonline.com/contoso.onmicrosoft.com/oauth2/v2.0/token"
	if p := tok.Check(jwtassert.CheckOptions{Certificate: cert, ClientID: scenario.DemoAppClientID, Audience: aud}); len(p) > 0 {
		t.Errorf("problems: %v", p)
	}
	if tok.Header.Alg != "PS256" || tok.Header.X5tS256 != x5tS256 || tok.Header.X5t != "" {
		t.Errorf("header = %+v", tok.Header)
	}
	if d := tok.Claims.Exp - tok.Claims.Nbf; d != 600 {
		t.Errorf("lifetime %d s, want 600", d)
	}

	// RS256 with x5t, a given audience and lifetime, x5c.
	adfs := "https://adfs.contoso.com/adfs/oauth2/token"
	r = env.run([]string{"assertion", "--audience", adfs, "--alg", "RS256", "--lifetime", "5m", "--x5c"})
	wantOK(t, r)
	tok, err = jwtassert.Parse(r.stdout)
	if err != nil {
		t.Fatal(err)
	}
	if tok.Header.Alg != "RS256" || tok.Header.X5t != x5t || len(tok.Header.X5c) != 1 || tok.Claims.Aud[0] != adfs || tok.Claims.Exp-tok.Claims.Nbf != 300 {
		t.Errorf("RS256 assertion: header %+v, claims %+v", tok.Header, tok.Claims)
	}
	if err := tok.VerifySignature(cert.PublicKey.(*rsa.PublicKey)); err != nil {
		t.Error(err)
	}

	// JSON.
	r = env.run([]string{"assertion", "--tenant", emuhook.DemoFabrikamTenant, "-o", "json"})
	wantOK(t, r)
	var out struct {
		Assertion, Audience, ClientID string
		ExpiresOn                     string `json:"expiresOn"`
		ExpiresOnTS                   int64  `json:"expires_on"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &out); err != nil {
		t.Fatal(err)
	}
	if !jwtPattern.MatchString(out.Assertion) || out.Audience != "https://login.microsoftonline.com/"+emuhook.DemoFabrikamTenant+"/oauth2/v2.0/token" ||
		out.ClientID != scenario.DemoAppClientID || time.Until(time.Unix(out.ExpiresOnTS, 0)) > 11*time.Minute {
		t.Errorf("json = %+v", out)
	}
}

func TestAssertionErrors(t *testing.T) {
	t.Parallel()
	env := newCLIEnv(t)
	wantUsageErrors(t, env, []usageCase{
		{[]string{"assertion", "--tenant", "contoso.onmicrosoft.com", "--audience", "https://x.example/token"}, nil, "either --audience or --tenant", ""},
		{[]string{"assertion", "--audience", "http://x.example/token"}, nil, "is not an https URL", "token endpoint"},
		{[]string{"assertion"}, []string{"AZURE_TENANT_ID="}, "give --tenant or --audience", ""},
		{[]string{"assertion", "--tenant", "contoso.onmicrosoft.com", "--lifetime", "2h"}, nil, "outside 1m..60m", "5m to 10m"},
		{[]string{"assertion", "--tenant", "contoso.onmicrosoft.com", "--alg", "ES256"}, nil, "--alg", "PS256"},
		{[]string{"assertion", "--tenant", "contoso.onmicrosoft.com"}, []string{"KVASSERT_CLIENT_ID=", "AZURE_CLIENT_ID="}, "--client-id is required", ""},
	})
}
