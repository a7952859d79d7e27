package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"

	"github.com/kvassert/kvassert/internal/redact"
)

// vaultCredential is a credential that gives a token, named as the chain
// reports it.
type vaultCredential struct{}

func (vaultCredential) GetToken(context.Context, policy.TokenRequestOptions) (azcore.AccessToken, error) {
	return azcore.AccessToken{Token: "eyJhbGciOiJSUzI1NiJ9.eyJhdWQiOiJodHRwczovL3ZhdWx0In0.c2lnbmF0dXJlc2lnbmF0dXJl", ExpiresOn: time.Now().Add(time.Hour)}, nil
}

// TestDebugNamesTheCredentialThatReachedTheVault: azidentity's chain (what
// DefaultAzureCredential is) says which of its credentials gave the token;
// --debug prints that line, redacted, and nothing of the token.
func TestDebugNamesTheCredentialThatReachedTheVault(t *testing.T) {
	var buf bytes.Buffer
	startAzureDebugLog(redact.NewWriter(&buf))
	defer stopAzureDebugLog()
	chain, err := azidentity.NewChainedTokenCredential([]azcore.TokenCredential{vaultCredential{}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := chain.GetToken(context.Background(), policy.TokenRequestOptions{Scopes: []string{"https://vault.azure.net/.default"}}); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	if !strings.Contains(out, "debug: azidentity: ChainedTokenCredential authenticated with main.vaultCredential") {
		t.Errorf("no line naming the credential:\n%s", out)
	}
	if strings.Contains(out, "eyJ") {
		t.Errorf("the token is printed:\n%s", out)
	}
}

// TestDebugLinesHoldNoQueryNorSecretHeaders: the request and response lines
// show the listed headers only, no query string, no user info, and a
// transport error by its kind only (Go's *url.Error quotes the whole URL).
func TestDebugLinesHoldNoQueryNorSecretHeaders(t *testing.T) {
	var buf bytes.Buffer
	u, _ := url.Parse("https://user:pw@login.microsoftonline.com/t/oauth2/v2.0/token?client_secret=SEKRET123&x=1#frag")
	r := &http.Request{Method: "POST", URL: u, Header: http.Header{}}
	r.Header.Set("Authorization", "Bearer SEKRETTOKEN")
	r.Header.Set("Cookie", "a=SEKRETCOOKIE")
	r.Header.Set("client-request-id", "0b1c2d3e")
	writeDebugRequest(&buf, r)
	resp := &http.Response{StatusCode: 400, Header: http.Header{}}
	resp.Header.Set("Set-Cookie", "SEKRETSET")
	resp.Header.Set("x-ms-request-id", "rid-1\nforged: line")
	writeDebugResponse(&buf, r, resp, nil, 1500*time.Microsecond)
	uerr := &url.Error{Op: "Post", URL: u.String(), Err: context.DeadlineExceeded}
	writeDebugResponse(&buf, r, nil, uerr, time.Second)
	writeDebugResponse(&buf, r, nil, &url.Error{Op: "Post", URL: u.String(), Err: errors.New("SEKRET tls")}, time.Second)
	writeDebugResponse(&buf, r, nil, &url.Error{Op: "Post", URL: u.String(), Err: &tls.CertificateVerificationError{Err: errors.New("SEKRET x509")}}, time.Second)
	out := buf.String()
	for _, bad := range []string{"SEKRET", "user:pw", "?", "frag", "Bearer", "\nforged"} {
		if strings.Contains(out, bad) {
			t.Errorf("debug lines hold %q:\n%s", bad, out)
		}
	}
	want := "debug: HTTP request  POST https://login.microsoftonline.com/t/oauth2/v2.0/token client-request-id=0b1c2d3e\n" +
		"debug: HTTP response POST https://login.microsoftonline.com/t/oauth2/v2.0/token: 400 after 2ms x-ms-request-id=rid-1_forged: line\n" +
		"debug: HTTP response POST https://login.microsoftonline.com/t/oauth2/v2.0/token: no response (timed out) after 1s\n" +
		"debug: HTTP response POST https://login.microsoftonline.com/t/oauth2/v2.0/token: no response (transport error) after 1s\n" +
		"debug: HTTP response POST https://login.microsoftonline.com/t/oauth2/v2.0/token: no response (TLS certificate not trusted) after 1s\n"
	if out != want {
		t.Errorf("got\n%s\nwant\n%s", out, want)
	}
}

// TestDebugLinesNeutraliseTerminalControls: a header value or an
// azidentity message is the server's text: an 8-bit CSI, DEL or a
// right-to-left override in it is shown as '_' or ' ', never sent to the
// terminal.
func TestDebugLinesNeutraliseTerminalControls(t *testing.T) {
	var buf bytes.Buffer
	u, _ := url.Parse("https://login.microsoftonline.com/t/oauth2/v2.0/token")
	r := &http.Request{Method: "POST", URL: u, Header: http.Header{}}
	resp := &http.Response{StatusCode: 200, Header: http.Header{}}
	resp.Header.Set("x-ms-request-id", "rid\u009b2J\x7f\u202eexe")
	writeDebugResponse(&buf, r, resp, nil, time.Millisecond)
	out := buf.String() + debugValueLong("ManagedIdentityCredential: \u009b2J\u2066x")
	if hasTerminalControl(strings.TrimSuffix(strings.ReplaceAll(out, "\n", ""), "\n")) {
		t.Errorf("debug lines hold terminal controls: %q", out)
	}
}
