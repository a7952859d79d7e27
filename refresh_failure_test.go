package kvassert

import (
	"strings"
	"testing"
	"time"
)

// A 24 h token with refresh_in 1 s, whose refresh time has passed on both
// MSAL's clock and ours, while the refresh cannot succeed: every GetToken
// still gets the cached token at once, the failed refresh is tried once and
// then backs off, one warning is logged, and the refresh resumes (and
// replaces the token) once the back-off has passed and the fault is gone.
func TestFailedRefreshBacksOffAndWarnsOnce(t *testing.T) {
	for _, fault := range []string{"key vault down", "entra refuses (AADSTS700027)"} {
		t.Run(fault, func(t *testing.T) {
			v := newLifecycleEnv(t, 24*3600, 1)
			v.want(t, testOther, "tok-1", "first token")
			v.pastRefreshTime()
			if fault == "key vault down" {
				v.src.fail.Store(true)
			} else {
				v.entra.set(func(f *fakeEntra) { f.refuse = 700027 })
			}
			assertions, requests := v.src.calls.Load(), v.entra.requests.Load()
			const calls = 20
			for range calls {
				if tok := v.get(t, testOther); tok != "tok-1" {
					t.Fatalf("during the failed refresh got %q, want the cached tok-1", tok)
				}
			}
			gotAssertions, gotRequests := v.src.calls.Load()-assertions, v.entra.requests.Load()-requests
			warns, logs := v.log.warnings()
			t.Logf("%d calls: %d assertions, %d token requests, %d warnings", calls, gotAssertions, gotRequests, warns)
			// One failed refresh: one assertion (Key Vault down), or at most
			// three token requests (the refusal, then a retry for each version
			// the source moved on to: at most two).
			if gotAssertions > 3 || gotRequests > 3 {
				t.Fatalf("%d calls made %d assertions and %d token requests: the failed refresh is retried on every call", calls, gotAssertions, gotRequests)
			}
			if warns != 1 {
				t.Fatalf("%d warnings for one failed refresh, want 1:\n%s", warns, logs)
			}
			if fault != "key vault down" {
				if !strings.Contains(logs, "700027") {
					t.Fatalf("the warning does not name Entra's answer:\n%s", logs)
				}
				if v.src.invalidated.Load() == 0 {
					t.Fatal("the rotation code never reached the source (Feedback.Refused not called)")
				}
			}
			// The fault clears and the back-off (30-45 s) passes: the next call
			// starts a refresh that replaces the token.
			v.src.fail.Store(false)
			v.entra.set(func(f *fakeEntra) { f.refuse = 0 })
			v.advance(2 * time.Minute)
			v.get(t, testOther)
			if tok := v.get(t, testOther); tok == "tok-1" {
				t.Fatal("the token was not refreshed after the back-off")
			}
			if _, logs := v.log.warnings(); !strings.Contains(logs, "recovered") {
				t.Fatalf("no recovery line after the failures:\n%s", logs)
			}
		})
	}
}

// A token endpoint (or a cache in front of it) that hands back the token
// being refreshed: the refresh counts as failed, backs off and warns once,
// instead of re-caching the old token and refreshing it on every call.
func TestRefreshReturningTheSameTokenIsAFailure(t *testing.T) {
	v := newLifecycleEnv(t, 3600, 0)
	v.get(t, testOther)
	v.entra.set(func(f *fakeEntra) { f.same = true })
	v.advance(56 * time.Minute)
	for range 20 {
		v.want(t, testOther, "tok-1", "got")
	}
	if n := v.entra.requests.Load(); n != 2 {
		t.Fatalf("%d token requests, want the first and one refresh", n)
	}
	if warns, logs := v.log.warnings(); warns != 1 || !strings.Contains(logs, "returned the token being refreshed") {
		t.Fatalf("%d warnings, want 1 naming the cause:\n%s", warns, logs)
	}
}
