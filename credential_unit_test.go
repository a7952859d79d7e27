package kvassert

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/cloud"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	msalerrors "github.com/AzureAD/microsoft-authentication-library-for-go/apps/errors"
)

const (
	testHome   = "8f3c2a51-4b7e-4d7c-9a53-0c6d1e2f3a41"
	testOther  = "2b6e9d10-7c4a-4f0e-8d21-5a3b4c6d7e82"
	testClient = "6d2f4a8b-1c3e-4f5a-9b7d-2e4f6a8c0b16"
)

// countingSource fails every assertion and counts calls, so a test can prove
// no assertion (and so no network call) was attempted.
type countingSource struct{ calls int }

func (s *countingSource) Assertion(context.Context, string, string) (string, error) {
	s.calls++
	return "", errors.New("countingSource: no assertions here")
}

// failingTransport fails every request and counts them.
type failingTransport struct{ calls int }

func (f *failingTransport) Do(*http.Request) (*http.Response, error) {
	f.calls++
	return nil, errors.New("failingTransport: no network in this test")
}

func TestNewCredentialRejectsBadInput(t *testing.T) {
	src := &countingSource{}
	cases := []struct {
		name             string
		tenant, clientID string
		src              Source
		opts             *CredentialOptions
		want             string
	}{
		{"nil source", testHome, testClient, nil, nil, "nil Source"},
		{"empty tenant", "", testClient, src, nil, "not a tenant ID"},
		{"path traversal tenant", "../etc", testClient, src, nil, "not a tenant ID"},
		{"url tenant", "https://evil.example/", testClient, src, nil, "not a tenant ID"},
		{"client not guid", testHome, "my-app", src, nil, "not a GUID"},
		{"http authority", testHome, testClient, src, &CredentialOptions{ClientOptions: policy.ClientOptions{Cloud: cloud.Configuration{ActiveDirectoryAuthorityHost: "http://login.microsoftonline.com/"}}}, "not https"},
		{"userinfo authority", testHome, testClient, src, &CredentialOptions{ClientOptions: policy.ClientOptions{Cloud: cloud.Configuration{ActiveDirectoryAuthorityHost: "https://user@login.microsoftonline.com/"}}}, "plain https"},
		{"bad allowed tenant", testHome, testClient, src, &CredentialOptions{AdditionallyAllowedTenants: []string{"a/b"}}, "AdditionallyAllowedTenants"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := NewCredential(c.tenant, c.clientID, c.src, c.opts)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err = %v, want %q", err, c.want)
			}
		})
	}
}

func TestGetTokenRefusesBeforeAnyNetworkCall(t *testing.T) {
	src, tr := &countingSource{}, &failingTransport{}
	cred, err := NewCredential(testHome, testClient, src, &CredentialOptions{
		ClientOptions:              policy.ClientOptions{Transport: tr},
		AdditionallyAllowedTenants: []string{testOther},
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	cases := []struct {
		name string
		opts policy.TokenRequestOptions
		want string
	}{
		{"tenant not allowed", policy.TokenRequestOptions{TenantID: "9a1b2c3d-4e5f-4a6b-8c7d-0e1f2a3b4c55", Scopes: []string{"https://graph.microsoft.com/.default"}}, "not configured for tenant"},
		{"hostile tenant", policy.TokenRequestOptions{TenantID: "contoso/../common", Scopes: []string{"https://graph.microsoft.com/.default"}}, "not a tenant ID"},
		{"no scope", policy.TokenRequestOptions{}, "no scope"},
		{"delegated scope", policy.TokenRequestOptions{Scopes: []string{"User.Read"}}, "/.default"},
		{"two scopes", policy.TokenRequestOptions{Scopes: []string{"https://graph.microsoft.com/.default", "https://vault.azure.net/.default"}}, "exactly one scope"},
		{"scope with newline", policy.TokenRequestOptions{Scopes: []string{"https://x/.default\n"}}, "white space"},
		{"huge scope", policy.TokenRequestOptions{Scopes: []string{strings.Repeat("a", 5000) + "/.default"}}, "too long"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := cred.GetToken(ctx, c.opts)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err = %v, want %q", err, c.want)
			}
		})
	}
	if src.calls != 0 || tr.calls != 0 {
		t.Fatalf("refused requests still made %d assertions and %d HTTP calls", src.calls, tr.calls)
	}
}

func TestResolveTenant(t *testing.T) {
	any, _ := NewCredential(testHome, testClient, &countingSource{}, &CredentialOptions{AdditionallyAllowedTenants: []string{"*"}})
	some, _ := NewCredential(testHome, testClient, &countingSource{}, &CredentialOptions{AdditionallyAllowedTenants: []string{strings.ToUpper(testOther)}})
	for _, c := range []struct {
		cred      *Credential
		in, want  string
		wantError bool
	}{
		{any, "", testHome, false},
		{any, testOther, testOther, false},
		{any, "Contoso.onmicrosoft.com", "contoso.onmicrosoft.com", false},
		{some, testOther, testOther, false},
		{some, strings.ToUpper(testHome), testHome, false},
		{some, "fabrikam.onmicrosoft.com", "", true},
	} {
		got, err := c.cred.resolveTenant(c.in)
		if (err != nil) != c.wantError || got != c.want {
			t.Errorf("resolveTenant(%q) = %q, %v", c.in, got, err)
		}
	}
}

func callErr(status int, body string) error {
	return msalerrors.CallErr{
		Resp: &http.Response{StatusCode: status},
		Err:  fmt.Errorf("http call(https://login.microsoftonline.com/x/oauth2/v2.0/token)(POST) error: reply status code was %d:\n%s", status, body),
	}
}

func TestAuthErrorFromEntraBody(t *testing.T) {
	body := `{"error":"unauthorized_client","error_description":"AADSTS700016: Application with identifier '6d2f' was not found in the directory 'Wingtip'.\r\nTrace ID: abc\r\nCorrelation ID: def\r\nTimestamp: 2026-11-27 10:00:00Z","error_codes":[700016],"timestamp":"2026-11-27 10:00:00Z","trace_id":"abc","correlation_id":"def"}`
	ae, ok := newAuthError(testOther, testClient, callErr(400, body))
	if !ok {
		t.Fatal("not recognised as an Entra answer")
	}
	if ae.Code != 700016 || ae.StatusCode != 400 || ae.ErrorCode != "unauthorized_client" {
		t.Fatalf("parsed %+v", ae)
	}
	msg := ae.Error()
	for _, want := range []string{"tenant " + testOther, "HTTP 400", "AADSTS700016: the application was not found in the tenant", "hint: the app is not registered or not consented", "adminconsent?client_id=" + testClient} {
		if !strings.Contains(msg, want) {
			t.Errorf("message lacks %q:\n%s", want, msg)
		}
	}
	if strings.Contains(msg, "Trace ID") || strings.Count(msg, "\n") != 1 {
		t.Errorf("message should be one line plus a hint line:\n%s", msg)
	}
	// Rotation-class codes are recognised.
	rot, _ := newAuthError(testHome, testClient, callErr(401, `{"error":"invalid_client","error_description":"AADSTS700027: Client assertion contains an invalid signature.","error_codes":[700027]}`))
	if !rotationCodes[rot.Code] || !strings.Contains(rot.Error(), "not registered on the app") {
		t.Fatalf("700027 not treated as rotation: %v", rot)
	}
	// Code only in the description.
	d, _ := newAuthError(testHome, testClient, callErr(400, `{"error":"invalid_request","error_description":"AADSTS90002: Tenant 'x' not found."}`))
	if d.Code != 90002 {
		t.Fatalf("code from description = %d", d.Code)
	}
	// Not an HTTP answer.
	if _, ok := newAuthError(testHome, testClient, errors.New("dial tcp: refused")); ok {
		t.Fatal("transport error taken for an Entra answer")
	}
}
