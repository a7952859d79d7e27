package emu

import (
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"testing"
	"time"
)

func TestLimiterSlidingWindow(t *testing.T) {
	now := time.Unix(1000, 0)
	l := &Limiter{now: func() time.Time { return now }}
	if !l.Allow() {
		t.Fatal("a zero limit must allow")
	}
	l.SetLimit(RateLimit{Requests: 3, Window: 10 * time.Second})
	for i := range 3 {
		if !l.Allow() {
			t.Fatalf("request %d refused inside the limit", i)
		}
		now = now.Add(time.Second)
	}
	if l.Allow() {
		t.Fatal("4th request in the window allowed")
	}
	now = now.Add(7 * time.Second) // the first admitted request (t=0) is now 10 s old
	if !l.Allow() || l.Allow() {
		t.Fatal("exactly one slot must free up as the oldest request leaves the window")
	}
}

func TestFaultsTimesAndCounters(t *testing.T) {
	var f Faults
	writeErr := func(w http.ResponseWriter, status int) { w.WriteHeader(status) }
	f.Set(OpKeySign, Fault{Status: 429, RetryAfter: 1500 * time.Millisecond, Times: 2})
	var statuses []int
	for range 3 {
		rec := httptest.NewRecorder()
		if f.Begin(rec, httptest.NewRequest("POST", "/keys/k/sign", nil), OpKeySign, writeErr) {
			statuses = append(statuses, rec.Code)
			if rec.Header().Get("Retry-After") != "2" {
				t.Fatalf("Retry-After = %q, want whole seconds rounded up", rec.Header().Get("Retry-After"))
			}
		} else {
			statuses = append(statuses, 0)
		}
	}
	if len(statuses) != 3 || statuses[0] != 429 || statuses[1] != 429 || statuses[2] != 0 {
		t.Fatalf("statuses = %v, want the fault twice then none", statuses)
	}
	if f.Count(OpKeySign) != 3 || f.Count(OpToken) != 0 {
		t.Fatalf("counts = %v", f.Counts())
	}
	f.ResetCounts()
	if len(f.Counts()) != 0 {
		t.Fatal("ResetCounts left counts")
	}
	f.Set(OpToken, Fault{Status: 503})
	f.Clear()
	if f.Begin(httptest.NewRecorder(), httptest.NewRequest("POST", "/", nil), OpToken, writeErr) {
		t.Fatal("a cleared fault still fired")
	}
}

func TestAuthorityIssueVerify(t *testing.T) {
	a, err := NewAuthority()
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	tok, err := a.Issue(AccessClaims{Aud: "https://vault.azure.net", Tid: "t", Iat: now.Unix(), Nbf: now.Unix(), Exp: now.Add(time.Hour).Unix()})
	if err != nil {
		t.Fatal(err)
	}
	if c, err := a.Verify(tok, "https://vault.azure.net/"); err != nil || c.Tid != "t" {
		t.Fatalf("Verify = %+v, %v", c, err)
	}
	if _, err := a.Verify(tok, "https://graph.microsoft.com"); err == nil || !strings.Contains(err.Error(), "audience") {
		t.Fatalf("wrong audience: %v", err)
	}
	parts := strings.Split(tok, ".")
	if _, err := a.Verify(parts[0] + "." + parts[1] + ".AAAA"); err == nil {
		t.Fatal("forged signature accepted")
	}
	a.SetClock(func() time.Time { return now.Add(2 * time.Hour) })
	if _, err := a.Verify(tok); err != ErrTokenExpired {
		t.Fatalf("expired: %v", err)
	}
	other, _ := NewAuthority()
	if _, err := other.Verify(tok); err == nil {
		t.Fatal("another emulator's token accepted")
	}
	for _, bad := range []string{"", "a.b", "!!.!!.!!", "eyJ9.eyJ9.eyJ9"} {
		if _, err := a.Verify(bad); err == nil {
			t.Fatalf("Verify(%q) accepted", bad)
		} else if strings.Contains(err.Error(), bad) && bad != "" {
			t.Fatalf("error echoes the token: %v", err)
		}
	}
	if !strings.Contains(string(a.JWKS()), a.KeyID()) {
		t.Fatal("JWKS lacks the key ID")
	}
}

// TestFaultsHoldAndSettledCount: a held request waits until Hold is closed;
// once Count reports it, its fault is settled, so a fault armed after the
// count applies to the next request only.
func TestFaultsHoldAndSettledCount(t *testing.T) {
	var f Faults
	writeErr := func(w http.ResponseWriter, status int) { w.WriteHeader(status) }
	hold := make(chan struct{})
	f.Set(OpCertificateGet, Fault{Hold: hold, Status: 503, Times: 1})
	done := make(chan int)
	go func() {
		rec := httptest.NewRecorder()
		f.Begin(rec, httptest.NewRequest("GET", "/certificates/c", nil), OpCertificateGet, writeErr)
		done <- rec.Code
	}()
	for f.Count(OpCertificateGet) != 1 {
		runtime.Gosched()
	}
	// The held request's fault is settled: this one is for the next request.
	f.Set(OpCertificateGet, Fault{Status: 403, Times: 1})
	select {
	case code := <-done:
		t.Fatalf("the held request returned (%d) before Hold was closed", code)
	default:
	}
	close(hold)
	if code := <-done; code != 503 {
		t.Errorf("held request answered %d, want its own fault's 503", code)
	}
	rec := httptest.NewRecorder()
	if !f.Begin(rec, httptest.NewRequest("GET", "/certificates/c", nil), OpCertificateGet, writeErr) || rec.Code != 403 {
		t.Errorf("next request answered %d, want the fault armed after the count (403)", rec.Code)
	}
}
