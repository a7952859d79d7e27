package tenants_test

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kvassert/kvassert"
	"github.com/kvassert/kvassert/kvasserttest/scenario"
	"github.com/kvassert/kvassert/tenants"
)

// countingSource counts the assertions in flight and fails each after a
// moment (no Entra needed: the tenants come out unreachable).
type countingSource struct{ now, max atomic.Int32 }

func (s *countingSource) Assertion(ctx context.Context, _, _ string) (string, error) {
	n := s.now.Add(1)
	defer s.now.Add(-1)
	for m := s.max.Load(); n > m && !s.max.CompareAndSwap(m, n); m = s.max.Load() {
	}
	time.Sleep(5 * time.Millisecond)
	return "", errors.New("countingSource: no assertion")
}

// TestCheckAllBoundsConcurrency: at most Concurrency tenants are asked at
// once (default 8), and every tenant gets its report, in order.
func TestCheckAllBoundsConcurrency(t *testing.T) {
	for _, c := range []struct{ opt, want int32 }{{0, 8}, {3, 3}} {
		src := &countingSource{}
		cred, err := kvassert.NewCredential(scenario.DemoHomeTenant, scenario.DemoAppClientID, src, &kvassert.CredentialOptions{AdditionallyAllowedTenants: []string{"*"}})
		if err != nil {
			t.Fatal(err)
		}
		list := make([]string, 40)
		for i := range list {
			list[i] = fmt.Sprintf("tenant%d.onmicrosoft.com", i)
		}
		reports, err := tenants.CheckAll(t.Context(), cred, list, nil, &tenants.CheckOptions{Concurrency: int(c.opt)})
		if err != nil {
			t.Fatal(err)
		}
		for i, r := range reports {
			if r.Tenant != list[i] || r.State != tenants.StateUnreachable || r.Error == "" {
				t.Fatalf("%d: %+v", i, r)
			}
		}
		if got := src.max.Load(); got != c.want {
			t.Fatalf("Concurrency %d: %d assertions at once, want %d", c.opt, got, c.want)
		}
	}
}
