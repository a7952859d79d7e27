package fleet_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/kvassert/kvassert/fleet"
	"github.com/kvassert/kvassert/fleet/internal/replica"
	"github.com/kvassert/kvassert/internal/redistest"
	"github.com/kvassert/kvassert/internal/testfixture"
	"github.com/kvassert/kvassert/kvasserttest"
	"github.com/kvassert/kvassert/kvasserttest/scenario"
)

// TestMain runs this test binary as one replica (internal/replica) when
// the process tests start it as a child.
func TestMain(m *testing.M) { replica.TestMain(m) }

// processEnv is an emulator with n extra tenants, a Redis and a cache key:
// what the replica processes share.
type processEnv struct {
	e       *kvasserttest.Emulator
	srv     *redistest.Server
	key     string
	tenants []string
}

func newProcessEnv(t *testing.T, n int) *processEnv {
	t.Helper()
	s, tenants := testfixture.ManyTenants(n)
	secret := make([]byte, fleet.KeySize)
	rand.Read(secret)
	return &processEnv{e: testfixture.NewWorld(t, &testfixture.WorldOptions{Scenario: s}).Emu, srv: redistest.Start(t), key: base64.StdEncoding.EncodeToString(secret), tenants: tenants}
}

func (p *processEnv) config(tenants int) replica.Config {
	return replica.Config{EmulatorAddr: strings.TrimPrefix(p.e.URL(), "https://"), CAPEM: p.e.CAPEM(), VaultURL: p.e.VaultURL(scenario.DemoVault),
		Tenants: tenants, Callers: 8, RedisURL: p.srv.URL(), Key: p.key}
}

// start starts a replica process.
func (p *processEnv) start(t *testing.T, cfg replica.Config) (*exec.Cmd, *bytes.Buffer) {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	t.Cleanup(cancel)
	cmd, err := replica.Command(ctx, exe, cfg)
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	cmd.Stdout = &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	return cmd, &out
}

func wait(t *testing.T, cmd *exec.Cmd, out *bytes.Buffer) replica.Result {
	t.Helper()
	err := cmd.Wait()
	res, perr := replica.Parse(out.Bytes())
	if err != nil || perr != nil {
		t.Fatalf("replica process: %v; %v", err, perr)
	}
	return res
}

// TestCredentialProcessesShareTokens: 4 credentials in 4 OS processes ask
// for the same 20 tenants at once: the vault signs 20 times and Entra issues
// 20 app tokens in all, not 80.
func TestCredentialProcessesShareTokens(t *testing.T) {
	const procs, tenants = 4, 20
	p := newProcessEnv(t, tenants)
	p.e.ResetCounts()
	type run struct {
		cmd *exec.Cmd
		out *bytes.Buffer
	}
	var runs []run
	for range procs {
		cmd, out := p.start(t, p.config(tenants))
		runs = append(runs, run{cmd, out})
	}
	var requests, errs, wrong, hits int64
	for _, r := range runs {
		res := wait(t, r.cmd, r.out)
		requests += res.TokenRequests
		errs += res.CallerErrors
		wrong += res.WrongTenant
		hits += res.Cache.Hits
	}
	signs, posts := p.e.Count(kvasserttest.OpKeySign), p.e.Count(kvasserttest.OpToken)
	t.Logf("%d processes x %d tenants: %d signs, %d token POSTs (app tokens and one vault token per process), %d app token requests, %d shared hits", procs, tenants, signs, posts, requests, hits)
	if errs != 0 || wrong != 0 {
		t.Fatalf("%d caller errors, %d tokens for the wrong tenant", errs, wrong)
	}
	if signs != tenants || requests != tenants {
		t.Fatalf("%d signs and %d app token requests across %d processes, want %d each (one per tenant)", signs, requests, procs, tenants)
	}
	if posts > tenants+procs {
		t.Fatalf("%d token POSTs, want at most %d (one per tenant, one vault token per process)", posts, tenants+procs)
	}
}

// TestLockOwnerProcessKilled: the replica process that holds a token's lock
// is killed (SIGKILL) while its token request hangs; another replica process
// takes over once the lock expires, long before its wait would time out.
func TestLockOwnerProcessKilled(t *testing.T) {
	const lockTTL = 2 * time.Second
	p := newProcessEnv(t, 1)
	cfg := p.config(1)
	cfg.LockTTL = lockTTL
	p.e.InjectFault(kvasserttest.OpToken, kvasserttest.Fault{Latency: time.Minute})
	owner, _ := p.start(t, cfg)
	rdb := redis.NewClient(&redis.Options{Addr: p.srv.Addr()})
	defer rdb.Close()
	deadline := time.Now().Add(time.Minute)
	for {
		locks, err := rdb.Keys(context.Background(), fleet.DefaultPrefix+":*:lock").Result()
		if err == nil && len(locks) == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the owner process took no lock in a minute (%v, %v)", locks, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := owner.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	owner.Wait() //nolint:errcheck // killed
	p.e.ClearFaults(kvasserttest.OpToken)
	start := time.Now()
	next, out := p.start(t, cfg)
	res := wait(t, next, out)
	took := time.Since(start)
	t.Logf("the next replica got the token %v after the owner was killed (its run: %v; stats %+v)", took.Round(time.Millisecond), res.Elapsed.Round(time.Millisecond), res.Cache)
	if res.CallerErrors != 0 || res.Cache.Takeovers != 1 || res.Cache.Acquired != 1 {
		t.Fatalf("next replica: %d caller errors, %d takeovers, %d acquisitions; want 0, 1, 1", res.CallerErrors, res.Cache.Takeovers, res.Cache.Acquired)
	}
	// Generous: a replica that did not take over would wait for
	// WaitTimeout (60 s) before acquiring on its own.
	if res.Elapsed > lockTTL+20*time.Second {
		t.Fatalf("the takeover took %v with a lock TTL of %v", res.Elapsed, lockTTL)
	}
}

// TestRedisStoppedUnderProcesses: two replica processes are getting 300
// tenants when Redis is stopped: no caller error, every token for the right
// tenant, the rest acquired locally. After a restart, two new processes
// share again: one sign per tenant.
func TestRedisStoppedUnderProcesses(t *testing.T) {
	const tenants, more = 300, 20
	p := newProcessEnv(t, tenants+more)
	p.e.ResetCounts()
	cfg := p.config(tenants)
	cfg.Callers = 4
	a, aout := p.start(t, cfg)
	b, bout := p.start(t, cfg)
	deadline := time.Now().Add(time.Minute)
	for p.e.Count(kvasserttest.OpKeySign) < 30 {
		if time.Now().After(deadline) {
			t.Fatal("the replicas made fewer than 30 signs in a minute")
		}
		time.Sleep(10 * time.Millisecond)
	}
	p.srv.Stop()
	ra, rb := wait(t, a, aout), wait(t, b, bout)
	signs := p.e.Count(kvasserttest.OpKeySign)
	t.Logf("Redis stopped after 30 signs: %d signs for %d tenants on 2 replicas; stats %+v / %+v", signs, tenants, ra.Cache, rb.Cache)
	if ra.CallerErrors+rb.CallerErrors != 0 || ra.Tokens != tenants || rb.Tokens != tenants {
		t.Fatalf("%d caller errors, %d and %d tokens; want 0 errors and %d tokens each", ra.CallerErrors+rb.CallerErrors, ra.Tokens, rb.Tokens, tenants)
	}
	if ra.Cache.Fallbacks+rb.Cache.Fallbacks == 0 || signs < tenants || signs > 2*tenants {
		t.Fatalf("%d signs, %d fallbacks; want local acquisitions after the stop", signs, ra.Cache.Fallbacks+rb.Cache.Fallbacks)
	}

	p.srv.Restart()
	p.e.ResetCounts()
	cfg.First, cfg.Tenants = tenants, more
	c, cout := p.start(t, cfg)
	d, dout := p.start(t, cfg)
	rc, rd := wait(t, c, cout), wait(t, d, dout)
	if n := p.e.Count(kvasserttest.OpKeySign); n != more || rc.CallerErrors+rd.CallerErrors != 0 {
		t.Fatalf("after the restart: %d signs for %d tenants on 2 replicas, %d caller errors; want %d signs", n, more, rc.CallerErrors+rd.CallerErrors, more)
	}
}
