package kvassert_test

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"

	"github.com/kvassert/kvassert"
	"github.com/kvassert/kvassert/internal/holdoff"
	"github.com/kvassert/kvassert/internal/testcert"
	"github.com/kvassert/kvassert/internal/testlog"
)

// vaultLeakTransport plays a vault that answers with a marker in its
// bodies (vault), and the token endpoint of the vault's credential (token).
type vaultLeakTransport struct {
	vault, token func() (int, string)
}

const (
	vaultLeakMarker = "VAULTLEAKMARKER"
	vaultLeakHost   = "leak.vault.azure.net"
	vaultLeakTenant = "11111111-2222-3333-4444-555555555555"
)

func (l *vaultLeakTransport) Do(req *http.Request) (*http.Response, error) {
	if req.Body != nil {
		_, _ = io.Copy(io.Discard, req.Body)
	}
	status, body, ct := 404, "", "application/json"
	h := http.Header{}
	base := "https://login.microsoftonline.com/" + vaultLeakTenant
	switch {
	case req.URL.Host == vaultLeakHost && req.Header.Get("Authorization") == "":
		status = 401
		h.Set("WWW-Authenticate", `Bearer authorization="`+base+`", resource="https://vault.azure.net"`)
	case req.URL.Host == vaultLeakHost:
		status, body = l.vault()
	case strings.HasSuffix(req.URL.Path, "/.well-known/openid-configuration"):
		status, body = 200, `{"token_endpoint":"`+base+`/oauth2/v2.0/token","authorization_endpoint":"`+base+`/oauth2/v2.0/authorize","issuer":"`+base+`/v2.0"}`
	case strings.HasSuffix(req.URL.Path, "/token"):
		status, body = l.token()
	}
	h.Set("Content-Type", ct)
	return &http.Response{StatusCode: status, Status: fmt.Sprint(status), Header: h, Request: req, Body: io.NopCloser(strings.NewReader(body)), ContentLength: int64(len(body))}, nil
}

// TestVaultAnswersNeverReachCredentialErrors: the vault's error answers
// and a malformed 200 to the vault's credential (whose text would be a Key
// Vault access token) reach neither the credential's errors nor its logs.
func TestVaultAnswersNeverReachCredentialErrors(t *testing.T) {
	der := testcert.New(t, &testcert.Options{CommonName: "c"}).DER()
	const v = "0123456789abcdef0123456789abcdef"
	certBody := `{"id":"https://` + vaultLeakHost + `/certificates/c/` + v + `","kid":"https://` + vaultLeakHost + `/keys/c/` + v + `","cer":"` + base64.StdEncoding.EncodeToString(der) + `","attributes":{"enabled":true}}`
	okToken := func() (int, string) {
		return 200, `{"token_type":"Bearer","expires_in":3600,"access_token":"kv-token"}`
	}
	cases := []struct {
		name         string
		vault, token func() (int, string)
	}{
		{"certificate read 403", func() (int, string) {
			return 403, `{"error":{"code":"Forbidden","message":"` + vaultLeakMarker + `","innererror":{"code":"ForbiddenByRbac"}}}`
		}, okToken},
		{"certificate read 500 text", func() (int, string) { return 500, vaultLeakMarker }, okToken},
		{"sign 404", func() (int, string) { return 200, certBody }, okToken}, // replaced below for the sign
		{"malformed 200 to the vault's credential", func() (int, string) { return 200, certBody }, func() (int, string) {
			return 200, `{"token_type":"Bearer","expires_in":"soon","access_token":"` + vaultLeakMarker + `"}`
		}},
	}
	for _, c := range cases {
		vault := c.vault
		if c.name == "sign 404" {
			calls := 0
			vault = func() (int, string) {
				if calls++; calls == 1 {
					return 200, certBody
				}
				return 404, `{"error":{"code":"KeyNotFound","message":"` + vaultLeakMarker + `"}}`
			}
		}
		tr := &vaultLeakTransport{vault: vault, token: c.token}
		co := policy.ClientOptions{Transport: tr, Retry: policy.RetryOptions{MaxRetries: -1}}
		vcred, err := azidentity.NewClientSecretCredential(vaultLeakTenant, "66666666-7777-8888-9999-000000000000", "secret",
			&azidentity.ClientSecretCredentialOptions{ClientOptions: co, DisableInstanceDiscovery: true})
		if err != nil {
			t.Fatal(err)
		}
		logs := &testlog.Buffer{}
		logger := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
		src, err := kvassert.NewKeyVaultCertificateSource("https://"+vaultLeakHost+"/", "c", vcred, &kvassert.KeyVaultCertificateOptions{ClientOptions: co, Throttle: holdoff.New(), Logger: logger})
		if err != nil {
			t.Fatal(err)
		}
		cred, err := kvassert.NewCredential(vaultLeakTenant, "77777777-8888-9999-0000-111111111111", src, &kvassert.CredentialOptions{ClientOptions: co, Logger: logger})
		if err != nil {
			t.Fatal(err)
		}
		_, err = cred.GetToken(context.Background(), policy.TokenRequestOptions{Scopes: []string{"https://graph.microsoft.com/.default"}})
		if err == nil {
			t.Fatalf("%s: no error", c.name)
		}
		if s := fmt.Sprintf("%v %+v", err, err); strings.Contains(s, vaultLeakMarker) {
			t.Errorf("%s: the answer reaches the credential's error: %v", c.name, err)
		}
		var re *azcore.ResponseError
		if c.name != "malformed 200 to the vault's credential" && !errors.As(err, &re) {
			t.Errorf("%s: no *azcore.ResponseError in the chain: %v", c.name, err)
		}
		if strings.Contains(logs.String(), vaultLeakMarker) {
			t.Errorf("%s: the answer reaches the logs:\n%s", c.name, logs.String())
		}
	}
}
