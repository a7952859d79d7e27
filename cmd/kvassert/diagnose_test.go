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
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/runtime"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"

	"github.com/kvassert/kvassert"
	"github.com/kvassert/kvassert/internal/certfile"
	"github.com/kvassert/kvassert/keyvault"
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
	noKey := &kvassert.InputError{Package: "kvassert", Input: "certificate data", Reason: "reworded: the key is elsewhere", Err: certfile.ErrNoPrivateKey}
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
	msg, hint, _ := describe(fmt.Errorf("keyvault: signing with https://myvault.vault.azure.net/keys/k/1: %w", err))
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
	// The description is the endpoint's text: it is not shown (issue 18),
	// the code and the hint are.
	if msg != "DefaultAzureCredential could not get a token to reach Key Vault: AADSTS7000215 (HTTP 401)" || !strings.Contains(hint, "AZURE_CLIENT_SECRET is wrong") {
		t.Errorf("got %q / %q", msg, hint)
	}
	// The same failure of another azidentity credential is not blamed on
	// the Key Vault credential.
	resp.Body = io.NopCloser(strings.NewReader(body))
	if msg, _, _ := describe(afe); !strings.HasPrefix(msg, "the Azure credential could not get a token: AADSTS7000215") {
		t.Errorf("unmarked: %q", msg)
	}
}

const leakMarker = "LEAKMARKER"

// TestDescribeVaultAnswerHoldsNoBodyText: a Key Vault refusal is described
// from its status, codes and the RBAC action and caller (strictly matched),
// never from the answer's text; the role hint stays.
func TestDescribeVaultAnswerHoldsNoBodyText(t *testing.T) {
	const caller = "66666666-7777-8888-9999-000000000000"
	msgText := "Caller is not authorized to perform action on resource. " + leakMarker + "\\r\\nCaller: appid=" + caller + ";oid=x;iss=y\\r\\nAction: 'Microsoft.KeyVault/vaults/keys/sign/action'\\r\\nResource: '" + leakMarker + "'"
	cases := []struct {
		status      int
		body, want  string
		hint        string
		contentType string
	}{
		{403, `{"error":{"code":"Forbidden","message":"` + msgText + `","innererror":{"code":"ForbiddenByRbac"}}}`,
			"Key Vault myvault.vault.azure.net answered 403 Forbidden/ForbiddenByRbac (action Microsoft.KeyVault/vaults/keys/sign/action) (caller appid=" + caller + ")", "Key Vault Crypto User", "application/json"},
		{404, `{"error":{"code":"KeyNotFound","message":"` + leakMarker + `. More."}}`, "Key Vault myvault.vault.azure.net answered 404 KeyNotFound", "az keyvault key list --vault-name myvault", "application/json"},
		{404, leakMarker + " plain", "Key Vault myvault.vault.azure.net answered 404 Not Found", "check the vault URL", "text/plain"},
		{429, `{"error":{"code":"Throttled","message":"` + leakMarker + `"}}`, "Key Vault myvault.vault.azure.net answered 429 Throttled", "throttling", "application/json"},
		{500, leakMarker, "Key Vault myvault.vault.azure.net answered 500 Internal Server Error", "", "text/plain"},
		{400, `{"error":{"code":"` + leakMarker + ` x","message":"` + leakMarker + `"}}`, "Key Vault myvault.vault.azure.net answered 400 Bad Request", "", "application/json"},
	}
	for _, c := range cases {
		req, _ := http.NewRequest("GET", "https://myvault.vault.azure.net/keys/k?api-version="+leakMarker, nil)
		resp := &http.Response{StatusCode: c.status, Status: fmt.Sprintf("%d %s", c.status, leakMarker), Request: req,
			Header: http.Header{"Content-Type": {c.contentType}}, Body: io.NopCloser(strings.NewReader(c.body))}
		err := runtime.NewResponseError(resp)
		msg, hint, _ := describe(failure("signing", fmt.Errorf("keyvault: signing: %w", err)))
		if strings.Contains(msg+hint, leakMarker) {
			t.Errorf("%d: the answer's text is shown: %q / %q", c.status, msg, hint)
		}
		if msg != "signing: "+c.want || !strings.Contains(hint, c.hint) {
			t.Errorf("%d: got %q / %q, want %q / ...%q...", c.status, msg, hint, c.want, c.hint)
		}
	}
}

// TestDescribeKeyVaultCredentialError: the keyvault package reports the
// vault credential's failures as a CredentialError (no azidentity error in
// the chain); the diagnosis keeps its hints from the typed fields.
func TestDescribeKeyVaultCredentialError(t *testing.T) {
	ce := &keyvault.CredentialError{Credential: defaultCredential{}.CredentialName(), AuthenticationFailed: true, StatusCode: 401, Code: 7000215}
	msg, hint, _ := describe(fmt.Errorf("keyvault: signing: %w", ce))
	if msg != "DefaultAzureCredential could not get a token to reach Key Vault: AADSTS7000215 (HTTP 401)" || !strings.Contains(hint, "AZURE_CLIENT_SECRET is wrong") {
		t.Errorf("refused: %q / %q", msg, hint)
	}
	ce = &keyvault.CredentialError{Credential: defaultCredential{emulator: true}.CredentialName(), AuthenticationFailed: true, StatusCode: 400, Code: 700016}
	msg, hint, _ = describe(fmt.Errorf("keyvault: signing: %w", ce))
	if !strings.HasPrefix(msg, "the emulator's identity could not get a token to reach its vaults: AADSTS700016") || !strings.Contains(hint, "KVASSERT_EMULATOR_CLIENT_ID") {
		t.Errorf("emulator: %q / %q", msg, hint)
	}
	ce = &keyvault.CredentialError{Credential: defaultCredential{}.CredentialName()}
	msg, hint, _ = describe(fmt.Errorf("keyvault: signing: %w", ce))
	if !strings.HasPrefix(msg, "no Azure credential to reach Key Vault") || !strings.Contains(hint, "az login") {
		t.Errorf("none applied: %q / %q", msg, hint)
	}
	// A malformed 200 (no status, no code): no text, the generic hint.
	ce = &keyvault.CredentialError{Credential: defaultCredential{}.CredentialName(), AuthenticationFailed: true}
	msg, hint, _ = describe(ce)
	if msg != "DefaultAzureCredential could not get a token to reach Key Vault: the token endpoint's answer was refused or unusable" || !strings.Contains(hint, "AZURE_TENANT_ID") {
		t.Errorf("malformed answer: %q / %q", msg, hint)
	}
}

// TestDescribeAuthFailedHoldsNoBodyText: an azidentity failure (of a
// credential the CLI uses directly) is described without its text.
func TestDescribeAuthFailedHoldsNoBodyText(t *testing.T) {
	body := `{"error":"invalid_client","error_description":"AADSTS7000215: ` + leakMarker + `","error_codes":[7000215]}`
	resp := &http.Response{StatusCode: 401, Header: http.Header{"Content-Type": {"application/json"}}, Body: io.NopCloser(strings.NewReader(body))}
	_, err := defaultCredential{TokenCredential: fakeCredential{&azidentity.AuthenticationFailedError{RawResponse: resp}}}.GetToken(context.Background(), policy.TokenRequestOptions{})
	msg, hint, _ := describe(err)
	if strings.Contains(msg+hint, leakMarker) || !strings.Contains(hint, "AZURE_CLIENT_SECRET is wrong") {
		t.Errorf("got %q / %q", msg, hint)
	}
}

// TestDescribeDropsRepeatedPrefixes: a library error shown as its text
// loses the package's "kvassert: " prefix, and the command's own words are
// not said twice ("managed identity: kvassert: managed identity: ..." was
// printed when Cloud Shell's MSI_ENDPOINT met --managed-identity).
func TestDescribeDropsRepeatedPrefixes(t *testing.T) {
	err := failure("managed identity", fmt.Errorf("kvassert: managed identity: %w", errors.New("Cloud Shell doesn't support user-assigned managed identities")))
	if msg, _, code := describe(err); msg != "managed identity: Cloud Shell doesn't support user-assigned managed identities" || code != exitFailure {
		t.Errorf("describe = %q, exit %d", msg, code)
	}
	if msg, _, _ := describe(failure("reading x", errors.New("kvassert: bad x"))); msg != "reading x: bad x" {
		t.Errorf("describe = %q", msg)
	}
}
