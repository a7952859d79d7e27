package keyvault

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azkeys"
	"github.com/kvassert/kvassert/internal/kvclient"
)

// errThrottleBudget is the cause of the end of a sign's throttling budget.
var errThrottleBudget = errors.New("the sign's throttling budget (SignerOptions.MaxThrottleWait) is spent")

// sign calls keys/sign for the key version given ("" for the current one),
// waiting out throttling for as long as ctx and the signer's budget
// (SignerOptions.MaxThrottleWait) allow. The vault's sign limit is shared by every
// client of the vault, so the signers of a vault share a Throttle: the
// signer asks it before every attempt and tells it of every 429, and the
// Throttle decides when the next attempt may go (the in-process gate:
// after the hold-off, released gradually). The keys client leaves 429 to this loop
// (see keysClient); other transient answers are retried by azcore.
func (s *Signer) sign(ctx context.Context, version string, alg azkeys.SignatureAlgorithm, digest []byte) (azkeys.SignResponse, error) {
	call := &signCall{signer: s}
	ctx = context.WithValue(ctx, lastStatusKey{}, call)
	budget := s.maxWait
	if budget <= 0 {
		budget = defaultMaxThrottleWait
	}
	// Waiting at the Throttle ends at the caller's deadline or at the end of
	// the budget, whichever comes first; the sign requests themselves run
	// under the caller's ctx alone.
	wctx, cancel := context.WithTimeoutCause(ctx, budget, errThrottleBudget)
	defer cancel()
	var throttled error // the last 429 of this call
	for {
		if throttled == nil {
			if err := ctx.Err(); err != nil {
				return azkeys.SignResponse{}, err // ended before any throttling was seen
			}
		} else if err := wctx.Err(); err != nil {
			// Also for a Throttle whose Wait does not watch its context.
			return azkeys.SignResponse{}, throttleError(ctx, wctx, budget, err, throttled)
		}
		start := time.Now()
		err := s.gate.Wait(wctx)
		s.tel.GateWait(ctx, time.Since(start))
		if err != nil {
			return azkeys.SignResponse{}, throttleError(ctx, wctx, budget, err, throttled)
		}
		resp, err := s.client.Sign(ctx, s.id.Name, version, azkeys.SignParameters{Algorithm: &alg, Value: digest}, nil)
		err = kvclient.Sanitize(err) // the answer's body never reaches the error
		if err != nil && ctx.Err() != nil && call.last.Load() == http.StatusTooManyRequests {
			return resp, &throttledError{fmt.Errorf("Key Vault kept throttling (429: the vault's request limit) until the caller's deadline: %w", err)}
		}
		var re *azcore.ResponseError
		if err == nil || !errors.As(err, &re) || re.StatusCode != http.StatusTooManyRequests {
			return resp, err
		}
		throttled = err
		s.gate.Throttled(retryAfter(re.RawResponse))
	}
}

// throttleError explains why a sign stopped waiting at the Throttle: the
// caller's context ended, the budget was spent, or the hold-off outlasts
// either (waitErr from Throttle.Wait). last is the call's last 429, if any.
func throttleError(ctx, wctx context.Context, budget time.Duration, waitErr, last error) error {
	var hold *HoldOffError
	budgetFirst := errors.Is(context.Cause(wctx), errThrottleBudget)
	if errors.As(waitErr, &hold) && ctx.Err() == nil {
		callerDeadline, has := ctx.Deadline()
		budgetDeadline, _ := wctx.Deadline()
		budgetFirst = !has || budgetDeadline.Before(callerDeadline)
	}
	var msg error
	switch {
	case ctx.Err() != nil:
		msg = fmt.Errorf("Key Vault kept throttling (429: the vault's request limit) until the caller's deadline: %w", ctx.Err())
	case budgetFirst && hold != nil:
		msg = fmt.Errorf("Key Vault is throttling this vault (429: the vault's request limit) for %s more, past the %v a sign waits out throttling (SignerOptions.MaxThrottleWait)", hold.Remaining.Round(100*time.Millisecond), budget)
	case budgetFirst:
		msg = fmt.Errorf("Key Vault kept throttling (429: the vault's request limit) for the %v a sign waits out throttling (SignerOptions.MaxThrottleWait)", budget)
	case hold != nil:
		msg = waitErr
	default:
		msg = fmt.Errorf("waiting at the vault's throttle: %w", waitErr)
	}
	if last != nil {
		msg = fmt.Errorf("%w; the vault's last answer: %w", msg, last)
	}
	return &throttledError{msg}
}

// throttledError is a sign that throttling stopped: its error.type in
// telemetry is "throttled", whatever ended the wait.
type throttledError struct{ err error }

func (e *throttledError) Error() string { return e.err.Error() }

func (e *throttledError) Unwrap() error { return e.err }

// ErrorType returns "throttled" (see internal/obs.ErrorTyper).
func (e *throttledError) ErrorType() string { return "throttled" }

// lastStatusKey carries a *signCall in a request context; statusPolicy
// records there the status of every attempt (azcore's retries included), so
// that a context error can be told apart from throttling that lasted until
// the deadline (azcore reports only the context error then), and so that
// the signer knows at once when the vault starts and stops throttling.
type lastStatusKey struct{}

type signCall struct {
	last   atomic.Int32
	signer *Signer
}

type statusPolicy struct{}

func (statusPolicy) Do(req *policy.Request) (*http.Response, error) {
	resp, err := req.Next()
	if call, ok := req.Raw().Context().Value(lastStatusKey{}).(*signCall); ok && resp != nil {
		call.last.Store(int32(resp.StatusCode))
		if resp.StatusCode == http.StatusTooManyRequests {
			call.signer.tel.Throttled()
			call.signer.throttled.CompareAndSwap(0, time.Now().UnixNano())
		} else {
			call.signer.throttled.Store(0)
		}
	}
	return resp, err
}

// retryAfter reads a Retry-After header in seconds (capped at 60 s, as azcore does).
func retryAfter(resp *http.Response) time.Duration {
	if resp == nil {
		return 0
	}
	secs, err := strconv.Atoi(resp.Header.Get("Retry-After"))
	if err != nil || secs <= 0 {
		return 0
	}
	return min(time.Duration(secs)*time.Second, time.Minute)
}
