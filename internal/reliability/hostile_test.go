package reliability_test

import (
	"context"
	"encoding/base64"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/runtime"

	"github.com/kvassert/kvassert"
	"github.com/kvassert/kvassert/kvasserttest"
)

// hostileChallenges are claims challenges a downstream resource server can
// send (base64 is added by the server); the first one crashed the process.
var hostileChallenges = []string{
	"null",
	`{"access_token":null}`,
	`[{"access_token":{}}]`,
	`{"access_token":{"xms_cc":null}}`,
	`{"access_token":{"xms_cc":{"values":["cp1"]}}}`,
	`"x"`,
	`{"access_token":` + strings.Repeat(`{"a":`, 64) + "1" + strings.Repeat("}", 65),
	`{"access_token":{"x":"` + strings.Repeat("c", 32<<10) + `"}}`,
	`{"access_token":{"nbf":{"essential":true,"value":"1732960000"}}}`, // well-formed
}

// Many callers, through azcore's bearer policy over one Credential, talk
// to resource servers that answer every request with a hostile claims
// challenge: no panic, every caller gets an answer (an error for a
// malformed challenge: an InputError, before any sign; a token for a
// well-formed one) within its deadline, and the credential still gets
// tokens afterwards.
func TestHostileClaimsChallengesUnderLoad(t *testing.T) {
	v := newEnv(t, 1)
	var served atomic.Int64
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		i := int(served.Add(1)) % len(hostileChallenges)
		w.Header().Set("WWW-Authenticate", `Bearer error="insufficient_claims", claims="`+base64.StdEncoding.EncodeToString([]byte(hostileChallenges[i]))+`"`)
		w.WriteHeader(http.StatusUnauthorized)
	}))
	defer srv.Close()
	const callers = 40
	var wg sync.WaitGroup
	var inputErrs, other atomic.Int64
	for range callers {
		wg.Go(func() {
			noPanic(t, "a request to a hostile resource", func() {
				pl := runtime.NewPipeline("test", "v0", runtime.PipelineOptions{
					PerRetry: []policy.Policy{runtime.NewBearerTokenPolicy(v.cred, []string{fixtureGraph}, nil)},
				}, &policy.ClientOptions{Transport: srv.Client(), Retry: policy.RetryOptions{MaxRetries: -1}})
				ctx, cancel := context.WithTimeout(context.Background(), time.Minute) // a safety bound
				defer cancel()
				req, err := runtime.NewRequest(ctx, http.MethodGet, srv.URL+"/resource")
				if err != nil {
					t.Error(err)
					return
				}
				resp, err := pl.Do(req)
				noteErr(err)
				var ie *kvassert.InputError
				var pe *kvassert.PanicError
				switch {
				case errors.As(err, &pe):
					t.Errorf("a panic in the acquisition: %v", err)
				case errors.As(err, &ie):
					inputErrs.Add(1)
				case err != nil:
					other.Add(1)
					t.Errorf("an error that is not a refusal of the claims: %.300v", err)
				case resp.StatusCode != http.StatusUnauthorized:
					t.Errorf("the hostile resource answered %d", resp.StatusCode)
				}
			})
		})
	}
	wg.Wait()
	t.Logf("%d callers: %d refused claims (InputError), %d other errors, %d resource requests, %d token requests",
		callers, inputErrs.Load(), other.Load(), served.Load(), v.e.Count(kvasserttest.OpToken))
	if inputErrs.Load() == 0 {
		t.Fatal("no malformed challenge was refused")
	}
	if _, err := v.get(context.Background(), t, v.fresh(t)); err != nil {
		t.Fatalf("the credential fails after the hostile challenges: %v", err)
	}
}
