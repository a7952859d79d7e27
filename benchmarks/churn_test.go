package benchmarks_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"

	"github.com/kvassert/kvassert"
	"github.com/kvassert/kvassert/internal/credclock"
	fixture "github.com/kvassert/kvassert/internal/testfixture"
)

// BenchmarkTenantChurn: memory over a churn of tenants with "*". Each
// round, every token of the previous rounds expires (the credential's clock
// moves 2 h ahead; the emulator's 1 h tokens are translated onto that clock)
// and churnTenants tenants never seen before get a token. Logged per round:
// the live heap (runtime.GC() twice, HeapAlloc minus before the client was
// made), which also holds the emulator's own per-token state (its jti replay
// cache). Metrics: client-KB, the heap the client retains at the end
// (HeapAlloc with it alive minus after dropping it), and emulator-KB, what
// is left after dropping it; with rounds=6 and rounds=24, so a client whose
// memory is flat retains the same after both. Alternatives: kvassert's
// Credential and one MSAL Go client (kvassert's source in confidential.New,
// AcquireTokenByCredential with WithTenantID). Run with -benchtime=1x;
// skipped in -short.
func BenchmarkTenantChurn(b *testing.B) {
	const churnTenants = 400
	e, tenants := manyTenantWorld(b, 30*2*churnTenants, "thousands of cold tokens per alternative")
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	next := 0

	alts := []struct {
		name string
		make func(offset *atomic.Int64) (getter, any)
	}{
		{"kvassert", func(offset *atomic.Int64) (getter, any) {
			now := func() time.Time { return time.Now().Add(time.Duration(offset.Load())) }
			c, _ := fixture.Credential(b, e, func(o *kvassert.CredentialOptions) {
				o.Logger = logger
				o.Transport = shiftedExpiry{next: o.Transport, now: now}
			})
			credclock.Set(c, now)
			return credGetter(c), c
		}},
		{"msal", func(*atomic.Int64) (getter, any) {
			_, src := fixture.Credential(b, e, nil)
			cred, err := kvassert.NewMSALCredential(src)
			if err != nil {
				b.Fatal(err)
			}
			c := fixture.MSAL(b, e, cred)
			return msalGetter(c), &c
		}},
	}
	heapNow := func() int64 {
		var m runtime.MemStats
		runtime.GC()
		runtime.GC()
		runtime.ReadMemStats(&m)
		return int64(m.HeapAlloc)
	}
	for _, a := range alts {
		for _, rounds := range []int{6, 24} {
			b.Run(fmt.Sprintf("%s/rounds=%d", a.name, rounds), func(b *testing.B) {
				if b.N != 1 {
					b.Fatal("run with -benchtime=1x")
				}
				base := heapNow()
				var offset atomic.Int64
				get, keep := a.make(&offset)
				heap := make([]int64, rounds)
				for r := range rounds {
					offset.Add(int64(2 * time.Hour))
					warm(b, get, tenants[next:next+churnTenants], 16)
					next += churnTenants
					heap[r] = heapNow() - base
				}
				alive := heapNow()
				runtime.KeepAlive(keep)
				get, keep = nil, nil
				dropped := heapNow()
				b.Logf("%s: live heap after each round of %d new tenants (KB): %v", a.name, churnTenants, kb(heap))
				b.ReportMetric(float64(alive-dropped)/1024, "client-KB")
				b.ReportMetric(float64(dropped-base)/1024, "emulator-KB")
			})
		}
	}
}

func kb(v []int64) []int64 {
	out := make([]int64, len(v))
	for i, x := range v {
		out[i] = x / 1024
	}
	return out
}

// shiftedExpiry puts the token service's relative expiry (expires_in) onto
// the benchmark's clock, as an absolute expires_on (which MSAL reads first),
// so tokens expire when the credential's moved clock says so.
type shiftedExpiry struct {
	next policy.Transporter
	now  func() time.Time
}

func (s shiftedExpiry) Do(r *http.Request) (*http.Response, error) {
	resp, err := s.next.Do(r)
	if err != nil || resp.StatusCode != http.StatusOK || !strings.HasSuffix(r.URL.Path, "/oauth2/v2.0/token") {
		return resp, err
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return nil, err
	}
	var m map[string]any
	if err := json.Unmarshal(body, &m); err != nil {
		return nil, err
	}
	if in, ok := m["expires_in"].(float64); ok {
		m["expires_on"] = s.now().Unix() + int64(in)
	}
	if body, err = json.Marshal(m); err != nil {
		return nil, err
	}
	resp.Body = io.NopCloser(bytes.NewReader(body))
	resp.ContentLength = int64(len(body))
	resp.Header.Del("Content-Length")
	return resp, nil
}
