package fleet_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kvassert/kvassert"
	"github.com/kvassert/kvassert/fleet"
	"github.com/kvassert/kvassert/internal/emuhook"
	"github.com/kvassert/kvassert/internal/redistest"
	"github.com/kvassert/kvassert/internal/testfixture"
	"github.com/kvassert/kvassert/tenants"
)

// consentReplay runs issue 21's replay across replicas: two replicas of a
// consent Handler (same state key, states from states(i)) behind two
// servers; an administrator accepts tailspin's consent on the emulated
// Entra page, the redirect reaches replica A, then the same redirect is
// replayed to replica B. It returns B's status and body and the number of
// callbacks run.
func consentReplay(t *testing.T, states func(i int) tenants.StateStore) (int, string, int32) {
	t.Helper()
	w := testfixture.NewWorld(t, nil)
	stateKey := []byte("0123456789abcdef0123456789abcdef")
	var called atomic.Int32
	var srvs [2]*httptest.Server
	var first *tenants.Handler
	for i := range srvs {
		cred, _ := testfixture.Credential(t, w.Emu, func(o *kvassert.CredentialOptions) {
			o.AdditionallyAllowedTenants = []string{"*"}
			o.Logger = slog.New(slog.DiscardHandler)
		})
		h, err := tenants.NewHandler(cred, emuhook.DemoRedirectURI, stateKey, func(_ context.Context, c tenants.Consent) error {
			if c.Tenant != strings.ToLower(emuhook.DemoTailspinTenant) {
				t.Errorf("consent for %q", c.Tenant)
			}
			called.Add(1)
			return nil
		}, &tenants.HandlerOptions{ProveTimeout: -1, States: states(i), Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			t.Fatal(err)
		}
		if first == nil {
			first = h
		}
		srvs[i] = httptest.NewServer(h)
		t.Cleanup(srvs[i].Close)
	}
	link, err := first.ConsentURL(emuhook.DemoTailspinTenant)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	loc, err := emuhook.SubmitConsent(ctx, w.Emu.Client(), link, "accept", "")
	if err != nil {
		t.Fatal(err)
	}
	if loc.Query().Get("admin_consent") != "True" || loc.Query().Get("state") == "" {
		t.Fatalf("redirect %v", loc.Query())
	}
	get := func(srv *httptest.Server) (int, string) {
		resp, err := http.Get(srv.URL + loc.Path + "?" + loc.RawQuery)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := get(srvs[0]); code != http.StatusOK {
		t.Fatalf("replica A: %d %s", code, body)
	}
	code, body := get(srvs[1])
	return code, body, called.Load()
}

// TestStateReplayedToAnotherReplicaIsRefused: with every replica's Handler
// on the fleet's shared StateStore, the consent redirect replayed to the
// second replica gets the "already used" page and the callback runs once.
func TestStateReplayedToAnotherReplicaIsRefused(t *testing.T) {
	srv := redistest.Start(t)
	key := randomKey(t, "k1")
	code, body, called := consentReplay(t, func(int) tenants.StateStore {
		client, err := fleet.NewClient(srv.URL())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { client.Close() })
		cache, err := fleet.NewCache(client, key, &fleet.CacheOptions{OpTimeout: 5 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cache.Close() })
		return cache.StateStore()
	})
	if code != http.StatusBadRequest || !strings.Contains(body, "already used") || called != 1 {
		t.Fatalf("replayed to replica B: %d, %d callbacks; want 400 already used and 1 callback:\n%s", code, called, body)
	}
}

// TestStateReplayAcceptedWithMemoryStores is the defect the shared store
// fixes: with the default per-replica memory, replica B accepts the
// replayed redirect and the callback runs twice.
func TestStateReplayAcceptedWithMemoryStores(t *testing.T) {
	code, body, called := consentReplay(t, func(int) tenants.StateStore { return nil })
	if code != http.StatusOK || called != 2 {
		t.Fatalf("memory stores: %d, %d callbacks; want the replay accepted (200, 2 callbacks):\n%s", code, called, body)
	}
}
