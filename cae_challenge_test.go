package kvassert_test

import (
	"context"
	"encoding/base64"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/runtime"

	"github.com/kvassert/kvassert/kvasserttest"
)

// caeResource is a resource server (on a policy.Transporter) that refuses
// revoked tokens with a CAE claims challenge, as Microsoft Graph does after a
// revocation event, and records the token of every request.
type caeResource struct {
	mu      sync.Mutex
	revoked map[string]bool
	seen    []string
}

const caeClaims = `{"access_token":{"nbf":{"essential":true,"value":"1732960000"}}}`

func (r *caeResource) Do(req *http.Request) (*http.Response, error) {
	tok := strings.TrimPrefix(req.Header.Get("Authorization"), "Bearer ")
	r.mu.Lock()
	defer r.mu.Unlock()
	r.seen = append(r.seen, tok)
	resp := &http.Response{StatusCode: http.StatusOK, Header: http.Header{}, Body: io.NopCloser(strings.NewReader("{}")), Request: req}
	if r.revoked[tok] {
		resp.StatusCode = http.StatusUnauthorized
		resp.Header.Set("WWW-Authenticate", `Bearer realm="", error="insufficient_claims", claims="`+base64.StdEncoding.EncodeToString([]byte(caeClaims))+`"`)
	}
	return resp, nil
}

func (r *caeResource) revoke(tok string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.revoked[tok] = true
}

func (r *caeResource) requests() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.seen...)
}

// A token revoked by a CAE claims challenge is never handed out again: the
// token azcore's BearerTokenPolicy gets for the challenge replaces the cached
// one, so a new SDK client (a new policy, with no token of its own) gets it
// without a 401 and without another token request.
func TestCAEChallengeReplacesTheCachedToken(t *testing.T) {
	d := newDemo(t)
	res := &caeResource{revoked: map[string]bool{}}
	call := func() {
		t.Helper()
		pl := runtime.NewPipeline("test", "v0", runtime.PipelineOptions{
			PerRetry: []policy.Policy{runtime.NewBearerTokenPolicy(d.cred, []string{graph}, nil)},
		}, &policy.ClientOptions{Transport: res, Retry: policy.RetryOptions{MaxRetries: -1}})
		req, err := runtime.NewRequest(context.Background(), http.MethodGet, "https://graph.microsoft.com/v1.0/organization")
		if err != nil {
			t.Fatal(err)
		}
		resp, err := pl.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("resource answered %d", resp.StatusCode)
		}
	}
	call() // the first token, cached
	first := res.requests()[0]
	res.revoke(first)
	d.emu.ResetCounts()
	call() // 401 claims challenge, then a token for the claims, then 200
	got := res.requests()
	if len(got) != 3 || got[1] != first || got[2] == first {
		t.Fatalf("the challenge flow sent %d requests; want the revoked token, then a new one", len(got))
	}
	fresh := got[2]
	if n := d.emu.Count(kvasserttest.OpToken); n != 1 {
		t.Fatalf("the claims challenge made %d token requests, want 1", n)
	}
	// A new client: its policy has no token and asks the credential without
	// claims.
	call()
	got = res.requests()[3:]
	if got[0] == first {
		t.Fatalf("a new client got the revoked token back (%d requests, %d token requests in all)", len(got), d.emu.Count(kvasserttest.OpToken))
	}
	if len(got) != 1 || got[0] != fresh || d.emu.Count(kvasserttest.OpToken) != 1 {
		t.Fatalf("a new client sent %d requests and the credential made %d token requests in all; want the challenge's token, no new request", len(got), d.emu.Count(kvasserttest.OpToken))
	}
	// Direct calls: claims-less GetToken returns the challenge's token.
	tok, err := d.cred.GetToken(context.Background(), policy.TokenRequestOptions{Scopes: []string{graph}, EnableCAE: true})
	if err != nil || tok.Token != fresh {
		t.Fatalf("claims-less GetToken after the challenge: same token %v, err %v", tok.Token == fresh, err)
	}
}
