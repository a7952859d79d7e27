package kvassert

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
)

// fakeEntra is a token endpoint on a policy.Transporter: it issues tokens
// "tok-1", "tok-2", ... with the configured lifetime (as expires_on, on its
// clock now) and refresh_in, or, when refuse is set, answers 401 with that
// AADSTS code. It counts token requests.
type fakeEntra struct {
	now       func() time.Time
	mu        sync.Mutex
	expiresIn int    // seconds
	refreshIn int    // seconds, 0 = none
	refuse    int    // AADSTS code to answer with, 0 = issue tokens
	same      bool   // issue the last token again (new expiry, same string)
	raw       string // when set, answer 200 with this body
	issued    int
	requests  atomic.Int64
}

func (f *fakeEntra) Do(r *http.Request) (*http.Response, error) {
	if !strings.HasSuffix(r.URL.Path, "/oauth2/v2.0/token") {
		return nil, fmt.Errorf("fakeEntra: unexpected request %s %s", r.Method, r.URL.Path)
	}
	f.requests.Add(1)
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.raw != "" {
		return response(r, http.StatusOK, f.raw), nil
	}
	if f.refuse != 0 {
		body := fmt.Sprintf(`{"error":"invalid_client","error_description":"AADSTS%d: Client assertion contains an invalid signature.","error_codes":[%d]}`, f.refuse, f.refuse)
		return response(r, http.StatusUnauthorized, body), nil
	}
	if !f.same || f.issued == 0 {
		f.issued++
	}
	body := fmt.Sprintf(`{"token_type":"Bearer","access_token":"tok-%d","expires_on":%d`, f.issued, f.now().Unix()+int64(f.expiresIn))
	if f.refreshIn > 0 {
		body += fmt.Sprintf(`,"refresh_in":%d`, f.refreshIn)
	}
	return response(r, http.StatusOK, body+"}"), nil
}

func (f *fakeEntra) set(fn func(f *fakeEntra)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fn(f)
}

func response(r *http.Request, status int, body string) *http.Response {
	return &http.Response{StatusCode: status, Status: http.StatusText(status), Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header: http.Header{"Content-Type": {"application/json"}}, Body: io.NopCloser(bytes.NewReader([]byte(body))),
		ContentLength: int64(len(body)), Request: r}
}

// switchSource makes assertions (any string: fakeEntra does not check them)
// or fails when fail is set; it counts both, and the refusals Entra reports
// to it (Feedback).
type switchSource struct {
	fail        atomic.Bool
	calls       atomic.Int64
	invalidated atomic.Int64
}

func (s *switchSource) Assertion(ctx context.Context, _, _ string) (string, error) {
	s.calls.Add(1)
	noteSigner(ctx, "v1")
	if s.fail.Load() {
		return "", errors.New("switchSource: Key Vault is down")
	}
	return "header.claims.signature", nil
}

// accepted implements feedback.
func (s *switchSource) accepted(string) {}

// refused implements feedback: it counts the refusal and asks for a retry.
func (s *switchSource) refused(context.Context, string, int) bool {
	s.invalidated.Add(1)
	return true
}

// logCount is a slog handler that counts records at each level and keeps
// their messages and attributes as text.
type logCount struct {
	mu    sync.Mutex
	warns int
	text  strings.Builder
	// panicOnWarn makes Handle panic on warnings (a broken handler).
	panicOnWarn atomic.Bool
}

func (h *logCount) Enabled(context.Context, slog.Level) bool { return true }
func (h *logCount) WithAttrs([]slog.Attr) slog.Handler       { return h }
func (h *logCount) WithGroup(string) slog.Handler            { return h }
func (h *logCount) Handle(_ context.Context, r slog.Record) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if r.Level >= slog.LevelWarn {
		h.warns++
		if h.panicOnWarn.Load() {
			panic("logCount: SECRETMARKER panic on a warning")
		}
	}
	fmt.Fprintf(&h.text, "%s %s", r.Level, r.Message)
	r.Attrs(func(a slog.Attr) bool { fmt.Fprintf(&h.text, " %s=%v", a.Key, a.Value); return true })
	h.text.WriteString("\n")
	return nil
}

func (h *logCount) warnings() (int, string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.warns, h.text.String()
}

// lifecycleEnv is a credential over fakeEntra and switchSource, with its
// clock settable (c.now, also fakeEntra's) while MSAL uses the real time.
type lifecycleEnv struct {
	c      *Credential
	entra  *fakeEntra
	src    *switchSource
	log    *logCount
	offset atomic.Int64 // added to the real time by c.now
}

func newLifecycleEnv(t *testing.T, expiresIn, refreshIn int) *lifecycleEnv {
	t.Helper()
	v := &lifecycleEnv{entra: &fakeEntra{expiresIn: expiresIn, refreshIn: refreshIn}, src: &switchSource{}, log: &logCount{}}
	c, err := NewCredential(testHome, testClient, v.src, &CredentialOptions{
		ClientOptions:              policy.ClientOptions{Transport: v.entra, Retry: policy.RetryOptions{MaxRetries: -1}},
		AdditionallyAllowedTenants: []string{"*"},
		Logger:                     slog.New(v.log),
	})
	if err != nil {
		t.Fatal(err)
	}
	c.now = func() time.Time { return time.Now().Add(time.Duration(v.offset.Load())) }
	v.entra.now = c.now
	v.c = c
	return v
}

func (v *lifecycleEnv) advance(d time.Duration) { v.offset.Add(int64(d)) }

// get calls GetToken for tenant and, when the call started a background
// refresh, waits for that refresh to finish.
// want fails the test, with what and the token, unless get gives want.
func (v *lifecycleEnv) want(t *testing.T, tenant, want, what string) {
	t.Helper()
	if tok := v.get(t, tenant); tok != want {
		t.Fatalf("%s %q", what, tok)
	}
}

// pastRefreshTime lets MSAL's RefreshOn (real clock) pass and moves ours
// past half of the lifetime (of a 24-hour token).
func (v *lifecycleEnv) pastRefreshTime() {
	time.Sleep(1100 * time.Millisecond)
	v.advance(13 * time.Hour)
}

func (v *lifecycleEnv) get(t *testing.T, tenant string) string {
	t.Helper()
	key := cacheKey{tenant: tenant, scope: testScope}
	e := v.c.cache.get(key)
	tok, err := v.c.GetToken(context.Background(), policy.TokenRequestOptions{TenantID: tenant, Scopes: []string{testScope}})
	if err != nil {
		t.Fatalf("GetToken(%s): %v", tenant, err)
	}
	if e != nil { // a refresh this call started has set e.refreshing already
		deadline := time.Now().Add(10 * time.Second)
		for e.refreshing.Load() {
			if time.Now().After(deadline) {
				t.Fatal("background refresh still running after 10 s")
			}
			time.Sleep(time.Millisecond)
		}
	}
	return tok.Token
}

const testScope = "https://graph.microsoft.com/.default"
