package kvassert

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"testing"

	"github.com/AzureAD/microsoft-authentication-library-for-go/apps/confidential"
	msalerrors "github.com/AzureAD/microsoft-authentication-library-for-go/apps/errors"
)

// entraRefusal is an MSAL error carrying Entra's answer with an AADSTS code.
func entraRefusal(code int) error {
	body := `{"error":"invalid_client","error_description":"AADSTS` + strconv.Itoa(code) + `: refused.","error_codes":[` + strconv.Itoa(code) + `]}`
	return msalerrors.CallErr{Resp: &http.Response{StatusCode: 401}, Err: fmt.Errorf("http call(token)(POST) error: reply status code was 401:\n%s", body)}
}

// verdicts is a Source that signs with "v<n>" and records Entra's answers.
type verdicts struct {
	mu         sync.Mutex
	version    string
	acceptedBy []string
	refusedBy  []string
	retry      bool
}

func (v *verdicts) Assertion(ctx context.Context, _, _ string) (string, error) {
	v.mu.Lock()
	s := v.version
	v.mu.Unlock()
	noteSigner(ctx, s)
	return "assertion", nil
}

func (v *verdicts) accepted(signer string) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.acceptedBy = append(v.acceptedBy, signer)
}

func (v *verdicts) refused(_ context.Context, signer string, code int) bool {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.refusedBy = append(v.refusedBy, fmt.Sprintf("%s/%d", signer, code))
	if v.retry {
		v.version = "v2"
	}
	return v.retry
}

// fakeMSAL calls the Source as MSAL's assertion callback does (with the
// request's ctx) and answers with res or err.
func fakeMSAL(src Source, answers ...func() (confidential.AuthResult, error)) (func(context.Context) (confidential.AuthResult, error), *int) {
	calls := 0
	return func(ctx context.Context) (confidential.AuthResult, error) {
		if _, err := src.Assertion(ctx, "client", "endpoint"); err != nil {
			return confidential.AuthResult{}, err
		}
		a := answers[min(calls, len(answers)-1)]
		calls++
		return a()
	}, &calls
}

func fromEntra() (confidential.AuthResult, error) {
	r := confidential.AuthResult{AccessToken: "t"}
	r.Metadata.TokenSource = confidential.TokenSourceIdentityProvider
	return r, nil
}

func fromCache() (confidential.AuthResult, error) {
	r := confidential.AuthResult{AccessToken: "t"}
	r.Metadata.TokenSource = confidential.TokenSourceCache
	return r, nil
}

func refusedWith(code int) func() (confidential.AuthResult, error) {
	return func() (confidential.AuthResult, error) { return confidential.AuthResult{}, entraRefusal(code) }
}

func TestFeedbackReachesTheSigner(t *testing.T) {
	ctx := context.Background()

	// A token from Entra proves the signer; one from MSAL's cache does not.
	src := &verdicts{version: "v1"}
	acquire, _ := fakeMSAL(src, fromEntra)
	if _, err := AcquireWithFeedback(ctx, src, acquire); err != nil || fmt.Sprint(src.acceptedBy) != "[v1]" {
		t.Fatalf("from Entra: err %v, accepted %v", err, src.acceptedBy)
	}
	acquire, _ = fakeMSAL(src, fromCache)
	if _, err := AcquireWithFeedback(ctx, src, acquire); err != nil || len(src.acceptedBy) != 1 {
		t.Fatalf("from the cache: accepted %v", src.acceptedBy)
	}

	// A rotation code is reported for the signer; when the source moved on,
	// the request runs once more, and the new signer's success is reported.
	src = &verdicts{version: "v1", retry: true}
	acquire, calls := fakeMSAL(src, refusedWith(700027), fromEntra)
	if _, err := AcquireWithFeedback(ctx, src, acquire); err != nil || *calls != 2 {
		t.Fatalf("refused then retried: err %v, calls %d", err, *calls)
	}
	if fmt.Sprint(src.refusedBy) != "[v1/700027]" || fmt.Sprint(src.acceptedBy) != "[v2]" {
		t.Fatalf("refused %v, accepted %v", src.refusedBy, src.acceptedBy)
	}

	// Not moved on: no retry. Refused on every retry while the source says
	// it moved on: two retries (the newest version, the accepted one it fell
	// back to, the version the list offers), no fourth request.
	src = &verdicts{version: "v1"}
	acquire, calls = fakeMSAL(src, refusedWith(7000274))
	if _, err := AcquireWithFeedback(ctx, src, acquire); err == nil || *calls != 1 || fmt.Sprint(src.refusedBy) != "[v1/7000274]" {
		t.Fatalf("no retry: err %v, calls %d, refused %v", err, *calls, src.refusedBy)
	}
	src = &verdicts{version: "v1", retry: true}
	acquire, calls = fakeMSAL(src, refusedWith(700027))
	if _, err := AcquireWithFeedback(ctx, src, acquire); err == nil || *calls != 3 {
		t.Fatalf("refused three times: err %v, calls %d, want 3", err, *calls)
	}

	// Codes a rotation does not explain are not reported.
	src = &verdicts{version: "v1", retry: true}
	acquire, calls = fakeMSAL(src, refusedWith(700016))
	if _, err := AcquireWithFeedback(ctx, src, acquire); err == nil || *calls != 1 || len(src.refusedBy) != 0 {
		t.Fatalf("700016: calls %d, refused %v", *calls, src.refusedBy)
	}

	// A request that made no assertion (MSAL answered from its cache, or
	// failed before the callback) reports nothing.
	src = &verdicts{version: "v1", retry: true}
	if _, err := AcquireWithFeedback(ctx, src, func(context.Context) (confidential.AuthResult, error) {
		return confidential.AuthResult{}, entraRefusal(700027)
	}); err == nil || len(src.refusedBy) != 0 {
		t.Fatalf("no assertion: refused %v", src.refusedBy)
	}
}

// perRequest signs each request with the signer its caller chose, so
// concurrent requests for many tenants report their own signers only.
type perRequest struct {
	mu         sync.Mutex
	acceptedBy map[string]int
}

type signerChoice struct{}

func (p *perRequest) Assertion(ctx context.Context, _, _ string) (string, error) {
	noteSigner(ctx, ctx.Value(signerChoice{}).(string))
	return "assertion", nil
}
func (p *perRequest) accepted(signer string) {
	p.mu.Lock()
	p.acceptedBy[signer]++
	p.mu.Unlock()
}
func (p *perRequest) refused(context.Context, string, int) bool { return false }

func TestFeedbackIsPerRequestUnderConcurrency(t *testing.T) {
	src := &perRequest{acceptedBy: map[string]int{}}
	var wg sync.WaitGroup
	for i := range 200 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			signer := fmt.Sprintf("v%d", i%4)
			ctx := context.WithValue(context.Background(), signerChoice{}, signer)
			acquire, _ := fakeMSAL(src, fromEntra)
			if _, err := AcquireWithFeedback(ctx, src, acquire); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	for i := range 4 {
		if n := src.acceptedBy[fmt.Sprintf("v%d", i)]; n != 50 {
			t.Fatalf("accepted %v, want 50 per signer", src.acceptedBy)
		}
	}
}
