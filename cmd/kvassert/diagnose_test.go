package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"strings"
	"testing"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"

	"github.com/kvassert/kvassert"
)

// The diagnosis recognises the library's errors by type: these tests give
// it errors worded unlike anything the library says today, wrapped as the
// library wraps them, and check the line and hint still come out right.

func TestDescribeInputErrorByType(t *testing.T) {
	ie := &kvassert.InputError{Package: "keyvault", Input: "vault URL", Reason: "some reworded reason"}
	wrapped := fmt.Errorf("keyvault: doing something: %w", ie)
	msg, _, code := describe(flagError("--vault", wrapped, "a hint"))
	if msg != "--vault: some reworded reason" || code != exitUsage {
		t.Errorf("flagError: %q (exit %d), want %q (exit %d)", msg, code, "--vault: some reworded reason", exitUsage)
	}
	msg, _, _ = describe(failure("checking", wrapped))
	if msg != "checking: some reworded reason" {
		t.Errorf("failure: %q", msg)
	}
}

func TestDescribeAuthErrorByType(t *testing.T) {
	ae := &kvassert.AuthError{Tenant: "t1", StatusCode: 400, Code: 12345, Description: "AADSTS12345: a reworded description", Hint: "the hint"}
	msg, hint, code := describe(fmt.Errorf("kvassert: anything at all: %w", ae))
	if msg != "token request for tenant t1 failed (HTTP 400): AADSTS12345: a reworded description" || hint != "the hint" || code != exitFailure {
		t.Errorf("got %q / %q / %d", msg, hint, code)
	}
	if strings.Contains(msg, "kvassert:") {
		t.Errorf("the package name leaks into the line: %q", msg)
	}
}

func TestCertFileErrorByType(t *testing.T) {
	noKey := &kvassert.InputError{Package: "kvassert", Input: "certificate data", Reason: "reworded: the key is elsewhere", Err: kvassert.ErrNoPrivateKey}
	msg, hint, _ := describe(certFileError("c.pem", fmt.Errorf("kvassert: reading c.pem: %w", noKey)))
	if msg != "reading c.pem: reworded: the key is elsewhere" || !strings.Contains(hint, "--key-file") || !strings.Contains(hint, "not in c.pem") {
		t.Errorf("missing key: %q / %q", msg, hint)
	}
	pe := &fs.PathError{Op: "open", Path: "k.pem", Err: fs.ErrNotExist}
	msg, hint, _ = describe(certFileError("c.pem", fmt.Errorf("kvassert: %w", pe)))
	if msg != "reading k.pem: file does not exist" || strings.Contains(hint, "not in c.pem") {
		t.Errorf("unreadable key file: %q / %q", msg, hint)
	}
}

type fakeCredential struct{ err error }

func (f fakeCredential) GetToken(context.Context, policy.TokenRequestOptions) (azcore.AccessToken, error) {
	return azcore.AccessToken{}, f.err
}

func TestNoAzureCredentialByType(t *testing.T) {
	ctx := context.Background()
	_, err := defaultCredential{TokenCredential: fakeCredential{errors.New("SomeChain: reworded, nothing applied")}}.GetToken(ctx, policy.TokenRequestOptions{})
	msg, hint, _ := describe(fmt.Errorf("keyvault: signing with https://v.vault.azure.net/keys/k/1: %w", err))
	if !strings.HasPrefix(msg, "no Azure credential to reach Key Vault") || !strings.Contains(hint, "az login") {
		t.Errorf("got %q / %q", msg, hint)
	}
	// A cancelled request is not "no credential".
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	_, err = defaultCredential{TokenCredential: fakeCredential{context.Canceled}}.GetToken(cancelled, policy.TokenRequestOptions{})
	var nc *noAzureCredentialError
	if errors.As(err, &nc) {
		t.Errorf("a cancelled GetToken is reported as no credential: %v", err)
	}
}

func TestAddrInUseByType(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	_, err = net.Listen("tcp", ln.Addr().String())
	if err == nil {
		t.Fatal("second listen on the same address succeeded")
	}
	if !addrInUse(fmt.Errorf("proxy: %w", err)) {
		t.Errorf("addrInUse(%v) = false", err)
	}
	if addrInUse(errors.New("address already in use")) {
		t.Error("addrInUse matches the wording")
	}
}

// TestKeyVaultCredentialRefusedByType: a refused token request of the Key
// Vault credential is described from the token endpoint's JSON answer, not
// from azidentity's message.
func TestKeyVaultCredentialRefusedByType(t *testing.T) {
	body := `{"error":"invalid_client","error_description":"AADSTS7000215: some reworded text. Trace ID: x","error_codes":[7000215]}`
	resp := &http.Response{StatusCode: 401, Header: http.Header{"Content-Type": {"application/json"}}, Body: io.NopCloser(strings.NewReader(body))}
	afe := &azidentity.AuthenticationFailedError{RawResponse: resp}
	_, err := defaultCredential{TokenCredential: fakeCredential{afe}}.GetToken(context.Background(), policy.TokenRequestOptions{})
	msg, hint, _ := describe(fmt.Errorf("keyvault: reading certificate: %w", err))
	if msg != "DefaultAzureCredential could not get a token to reach Key Vault: AADSTS7000215: some reworded text." || !strings.Contains(hint, "AZURE_CLIENT_SECRET is wrong") {
		t.Errorf("got %q / %q", msg, hint)
	}
	// The same failure of another azidentity credential is not blamed on
	// the Key Vault credential.
	resp.Body = io.NopCloser(strings.NewReader(body))
	if msg, _, _ := describe(afe); !strings.HasPrefix(msg, "the Azure credential could not get a token: AADSTS7000215") {
		t.Errorf("unmarked: %q", msg)
	}
}
