package rotation_test

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"

	"github.com/kvassert/kvassert"
	"github.com/kvassert/kvassert/internal/credclock"
	"github.com/kvassert/kvassert/internal/emuhook"
	"github.com/kvassert/kvassert/kvasserttest"
	"github.com/kvassert/kvassert/kvasserttest/scenario"
	"github.com/kvassert/kvassert/rotation"
)

// The rotation simulation: the promise of the package ("the app is never
// left without a key Entra accepts") checked after every simulated hour of
// a year in which the vault, Graph, people and faults do what they may do,
// while two or three rollers roll the same certificate concurrently and a
// service asks for tokens in three tenants every hour.
//
// Replay one seed:
//
//	go test -race -count=1 -run TestRotationSimulation ./rotation/ -args -sim.seed=7
//	KVASSERT_SIM_SEED=7 go test -race -count=1 -run TestRotationSimulation ./rotation/
//
// (a CI seed's failure names KVASSERT_SIM_DAYS=120 too: a replayed seed
// runs a year otherwise).
//
// KVASSERT_SIM_SKIP=import-new,prestaged-version turns event kinds off (to
// isolate a finding), KVASSERT_SIM_VERBOSE=1 logs everything that happened,
// KVASSERT_SIM_DAYS=N shortens the span.
//
// A longer run (seeds 1..N):
//
//	KVASSERT_SIM_SEEDS=200 go test -count=1 -timeout 0 -run TestRotationSimulation ./rotation/

var simSeedFlag = flag.Int64("sim.seed", 0, "replay one seed of TestRotationSimulation")

// simCISeeds run in every go test (over simCIDays): a few, to keep CI cheap.
var simCISeeds = []int64{1, 2, 3}

// TestRotationSimulation runs the simulation for the CI seeds (or the seed
// given by -sim.seed / KVASSERT_SIM_SEED, or KVASSERT_SIM_SEEDS seeds) and
// logs one summary line.
func TestRotationSimulation(t *testing.T) {
	if testing.Short() {
		t.Skip("simulated months per seed")
	}
	seeds, days := simCISeeds, simCIDays
	switch {
	case *simSeedFlag != 0:
		seeds, days = []int64{*simSeedFlag}, simDays
	case os.Getenv("KVASSERT_SIM_SEED") != "":
		n, err := strconv.ParseInt(os.Getenv("KVASSERT_SIM_SEED"), 10, 64)
		if err != nil {
			t.Fatalf("KVASSERT_SIM_SEED: %v", err)
		}
		seeds, days = []int64{n}, simDays
	case os.Getenv("KVASSERT_SIM_SEEDS") != "":
		n, err := strconv.Atoi(os.Getenv("KVASSERT_SIM_SEEDS"))
		if err != nil || n < 1 {
			t.Fatalf("KVASSERT_SIM_SEEDS=%q: want a positive count", os.Getenv("KVASSERT_SIM_SEEDS"))
		}
		seeds, days = nil, simDays
		for i := 1; i <= n; i++ {
			seeds = append(seeds, int64(i))
		}
	}
	if s := os.Getenv("KVASSERT_SIM_DAYS"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			t.Fatalf("KVASSERT_SIM_DAYS=%q: want a positive count", s)
		}
		days = n
	}
	var total simStats
	total.events, total.faults = map[string]int{}, map[string]int{}
	var failed []int64
	for _, seed := range seeds {
		var st simStats
		ok := t.Run(fmt.Sprintf("seed=%d,days=%d", seed, days), func(t *testing.T) {
			st = runSimulation(t, seed, days)
		})
		total.add(&st)
		if !ok {
			failed = append(failed, seed)
		}
	}
	t.Logf("rotation simulation: %s", total.String())
	if len(failed) > 0 {
		t.Logf("failed seeds (replay with -sim.seed=N or KVASSERT_SIM_SEED=N): %v", failed)
	}
}

// simDays is the simulated span of one run: a year, in which the 3-month
// certificate lives four times over. The CI seeds simulate simCIDays (the
// first version's whole life and its successors' registration, renewal and
// retirement) to keep go test -race within a minute.
const (
	simDays   = 365
	simCIDays = 120
)

// simStats are the counters of one or more runs.
type simStats struct {
	runs, steps, checks, rolls, rollErrors, callerErrors, callerErrorsNoKey int
	tokenCalls, violations                                                  int
	addKey, removeKey, tokenRequests, keySigns, vaultReads                  int64
	events, faults                                                          map[string]int
}

func (s *simStats) add(o *simStats) {
	s.runs += o.runs
	s.steps += o.steps
	s.checks += o.checks
	s.rolls += o.rolls
	s.rollErrors += o.rollErrors
	s.callerErrors += o.callerErrors
	s.callerErrorsNoKey += o.callerErrorsNoKey
	s.tokenCalls += o.tokenCalls
	s.violations += o.violations
	s.addKey += o.addKey
	s.removeKey += o.removeKey
	s.tokenRequests += o.tokenRequests
	s.keySigns += o.keySigns
	s.vaultReads += o.vaultReads
	for k, v := range o.events {
		s.events[k] += v
	}
	for k, v := range o.faults {
		s.faults[k] += v
	}
}

func (s *simStats) String() string {
	sum := func(m map[string]int) int {
		n := 0
		for _, v := range m {
			n += v
		}
		return n
	}
	return fmt.Sprintf("%d runs, %d steps (simulated hours), %d invariant checks, %d violations; %d rolls (%d ended in an error), addKey %d, removeKey %d; %d token calls, %d caller errors (%d while the vault held no valid key); emulator: %d token requests, %d keys/sign, %d certificate reads; %d events %s; %d faults %s",
		s.runs, s.steps, s.checks, s.violations, s.rolls, s.rollErrors, s.addKey, s.removeKey, s.tokenCalls, s.callerErrors, s.callerErrorsNoKey,
		s.tokenRequests, s.keySigns, s.vaultReads,
		sum(s.events), fmtCounts(s.events), sum(s.faults), fmtCounts(s.faults))
}

func fmtCounts(m map[string]int) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	b.WriteString("{")
	for i, k := range keys {
		if i > 0 {
			b.WriteString(" ")
		}
		fmt.Fprintf(&b, "%s:%d", k, m[k])
	}
	b.WriteString("}")
	return b.String()
}

const simCert = "sim-cert"

// sim is one run.
type sim struct {
	t     *testing.T
	seed  int64
	rng   *rand.Rand
	w     *world
	ctx   context.Context
	vcred emuClockCred
	src   *kvassert.KeyVaultCertificateSource
	cred  *kvassert.Credential

	rollers  []*rotation.Roller
	phase    []int // hour of day each roller rolls at
	every    []int // days between its rolls
	st       simStats
	history  []string // what happened, for the failure message
	step     int
	day, hr  int
	imported []importedCert
	foreign  *importedCert // a certificate that is not in the vault, for a person to register
	pol      *simPolicy
	kinds    map[string]int // violations by kind
	keyOrder []int          // order in which this run takes simKeys
	keysUsed int
	seen     int          // versions known to the simulation (see noteRenewals)
	days     int          // simulated span
	mu       sync.Mutex   // guards history against the service's background logging
	at       atomic.Int64 // day*24+hour, for that logging
}

// noteRenewals records the versions the vault made on its own (AutoRenew)
// since the simulation last looked.
func (s *sim) noteRenewals() {
	vs := s.versions()
	for _, v := range vs[min(s.seen, len(vs)):] {
		if s.seen > 0 {
			s.st.events["vault-autorenew"]++
			s.logf("event vault-autorenew: new version %s (thumb %s)", short8(v.Version), thumb(v.Certificate)[:8])
		}
	}
	s.seen = len(vs)
}

func runSimulation(t *testing.T, seed int64, days int) simStats {
	s := &sim{t: t, seed: seed, rng: rand.New(rand.NewPCG(uint64(seed), 0x6b7661737365)), ctx: context.Background()}
	s.st.runs, s.days = 1, days
	s.st.events, s.st.faults = map[string]int{}, map[string]int{}
	s.setUp()
	s.run(days)
	e := s.w.e
	s.st.addKey, s.st.removeKey = e.Count(kvasserttest.OpGraphAddKey), e.Count(kvasserttest.OpGraphRemoveKey)
	s.st.tokenRequests, s.st.keySigns = e.Count(kvasserttest.OpToken), e.Count(kvasserttest.OpKeySign)
	s.st.vaultReads = e.Count(kvasserttest.OpCertificateGet) + e.Count(kvasserttest.OpCertificateList) + e.Count(kvasserttest.Op("certificates/policy"))
	t.Logf("seed %d: %s; violations by kind %s", seed, s.st.String(), fmtCounts(s.kinds))
	if os.Getenv("KVASSERT_SIM_VERBOSE") != "" {
		s.mu.Lock()
		all := strings.Join(s.history, "\n  ")
		s.mu.Unlock()
		t.Logf("seed %d: everything that happened:\n  %s\nstate: %s", seed, all, s.state())
	}
	return s.st
}

// run simulates days, hour by hour, until the end or a violation.
func (s *sim) run(days int) {
	tenants := []string{scenario.DemoContosoTenant, emuhook.DemoFabrikamTenant, emuhook.DemoNorthwindTenant}
	for s.day = 0; s.day < days; s.day++ {
		for s.hr = 0; s.hr < 24; s.hr++ {
			s.step++
			s.st.steps++
			s.at.Store(int64(s.day*24 + s.hr))
			// People and the vault.
			if s.rng.Float64() < simEventRate {
				s.noteRenewals()
				s.event()
				s.seen = len(s.versions())
			}
			// Rollers due this hour, concurrently, under at most one fault.
			s.rolls()
			// An hour passes; the service asks for tokens in each tenant.
			s.w.advance(time.Hour)
			s.noteRenewals()
			hasKey := s.vaultHasGoodKey()
			for _, tenant := range tenants {
				s.st.tokenCalls++
				if _, err := s.cred.GetToken(s.ctx, policy.TokenRequestOptions{TenantID: tenant, Scopes: []string{"https://graph.microsoft.com/.default"}}); err != nil {
					s.st.callerErrors++
					if !hasKey {
						s.st.callerErrorsNoKey++
						continue
					}
					kind := "caller-error"
					if strings.Contains(err.Error(), "not yet valid") {
						kind = "caller-error-not-yet-valid"
					}
					s.violation(kind, "caller error in tenant %s while the vault holds a valid non-exportable key: %v", tenant, oneLineErr(err))
				}
			}
			// The promise.
			s.st.checks++
			if kind, why := s.checkInvariant(); why != "" {
				s.violation(kind, "%s", why)
				if kind == "no-key" {
					return // everything after it follows from it
				}
			}
		}
	}
}

// simEventRate is the chance per simulated hour of one event of people or
// the vault (about 50 a year, half of them new versions: a busy vault).
const simEventRate = 0.006

// simFaultRate is the chance that a roll runs under one injected fault.
const simFaultRate = 0.3

func (s *sim) setUp() {
	t := s.t
	w := newWorld(t, &kvasserttest.Options{TokenLifetime: 24 * time.Hour})
	s.w = w
	s.vcred = newEmuClockCred(w)
	v1 := s.createCertificate()
	for _, k := range w.keys() {
		if err := w.e.RemoveCertificate(scenario.DemoAppClientID, k.Certificate); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.e.RegisterCertificate(scenario.DemoAppClientID, v1); err != nil {
		t.Fatal(err)
	}
	graphRead := s.rng.IntN(4) != 0
	if graphRead {
		if err := w.e.GrantAppRoles(scenario.DemoAppClientID, "Application.Read.All"); err != nil {
			t.Fatal(err)
		}
	}
	emuhook.Of(w.e).SetGraphPropagationDelay(time.Duration(s.rng.IntN(120)) * time.Second)

	co := w.e.ClientOptions()
	ttl := time.Duration(1+s.rng.IntN(24)) * time.Hour
	src, err := kvassert.NewKeyVaultCertificateSource(w.e.VaultURL(scenario.DemoVault), simCert, s.vcred, &kvassert.KeyVaultCertificateOptions{
		ClientOptions: co, TTL: ttl, Clock: w.now, Logger: s.serviceLogger(),
	})
	if err != nil {
		t.Fatal(err)
	}
	tenants := []string{scenario.DemoContosoTenant, emuhook.DemoFabrikamTenant, emuhook.DemoNorthwindTenant}
	cred, err := kvassert.NewCredential(scenario.DemoHomeTenant, scenario.DemoAppClientID, src, &kvassert.CredentialOptions{
		ClientOptions: co, AdditionallyAllowedTenants: tenants, Logger: s.serviceLogger(),
	})
	if err != nil {
		t.Fatal(err)
	}
	credclock.Set(cred, w.now)
	s.src, s.cred = src, cred

	n := 2 + s.rng.IntN(2)
	for i := 0; i < n; i++ {
		cfg := w.config()
		cfg.certificate, cfg.cred, cfg.Logger = simCert, s.vcred, discard()
		// The recommended zero-touch setup: the roller creates the next
		// version itself when the one in use expires within three weeks
		// and nothing has replaced it (the vault's AutoRenew counts from
		// the latest version, which a person may have made unusable).
		cfg.RenewBefore = 21 * 24 * time.Hour
		cfg.ClientOptions.Retry = policy.RetryOptions{MaxRetries: 1, RetryDelay: time.Millisecond, MaxRetryDelay: 2 * time.Millisecond}
		if i == 0 {
			cfg.Source = src // the in-process roller; the others are cron jobs
		}
		r, err := cfg.new()
		if err != nil {
			t.Fatal(err)
		}
		s.rollers = append(s.rollers, r)
		s.phase = append(s.phase, s.rng.IntN(24))
		s.every = append(s.every, 3+s.rng.IntN(5))
	}
	s.logf("setup: %d rollers (every %v days at hours %v), Graph read %v, propagation %v, source TTL %v", n, s.every, s.phase, graphRead, emuhook.Of(w.e).GraphPropagationDelay(), ttl)
}

// serviceLogger is where the service's source and credential log: into
// the history with KVASSERT_SIM_VERBOSE=2, else nowhere.
func (s *sim) serviceLogger() *slog.Logger {
	if os.Getenv("KVASSERT_SIM_VERBOSE") != "2" {
		return discard()
	}
	return slog.New(slog.NewTextHandler(simLogWriter{s}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// simLogWriter appends log lines to the history (the sim's loop is the
// only writer that matters; a background read may log concurrently).
type simLogWriter struct{ s *sim }

func (l simLogWriter) Write(p []byte) (int, error) {
	l.s.mu.Lock()
	defer l.s.mu.Unlock()
	at := l.s.at.Load()
	l.s.history = append(l.s.history, fmt.Sprintf("d%03d h%02d service log: %s", at/24, at%24, strings.TrimSpace(string(p))))
	return len(p), nil
}

// rolls runs the rollers due this hour at once, under at most one fault.
func (s *sim) rolls() {
	var due []int
	together := s.rng.IntN(24*21) == 0 // now and then every roller at the same moment
	for i := range s.rollers {
		if together || (s.hr == s.phase[i] && s.day%s.every[i] == i%s.every[i]) {
			due = append(due, i)
		}
	}
	if len(due) == 0 {
		return
	}
	fault := ""
	if s.rng.Float64() < simFaultRate {
		fault = s.armFault()
	}
	type result struct {
		rep *rotation.Report
		err error
	}
	res := make([]result, len(due))
	var wg sync.WaitGroup
	for j, i := range due {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(s.ctx, 2*time.Minute) // a safety bound in real time: a hang is a failure
			defer cancel()
			rep, err := s.rollers[i].Roll(ctx)
			if ctx.Err() != nil {
				err = fmt.Errorf("roll did not end within 2 minutes (real time): %w", err)
			}
			res[j] = result{rep, err}
		}()
	}
	wg.Wait()
	s.clearFaults()
	for j, i := range due {
		s.st.rolls++
		r := res[j]
		acts := ""
		if r.rep != nil {
			acts = simActions(r.rep)
		}
		if r.err != nil {
			s.st.rollErrors++
			s.logf("roller %d (fault %q): %s; error: %s", i, fault, acts, oneLineErr(r.err))
			if strings.Contains(r.err.Error(), "did not end within") {
				s.violation("hang", "roller %d hung: %v", i, r.err)
			}
		} else {
			s.logf("roller %d (fault %q): %s", i, fault, acts)
		}
	}
}

// simActions is a report's steps with short versions.
func simActions(rep *rotation.Report) string {
	var b strings.Builder
	for i, st := range rep.Steps {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(string(st.Action) + " " + short8(st.Version))
	}
	if rep.Changed {
		b.WriteString(" [changed]")
	}
	return b.String()
}

func short8(v string) string {
	if len(v) > 8 {
		return v[:8]
	}
	return v
}

func oneLineErr(err error) string {
	m := err.Error()
	if i := strings.IndexByte(m, '\n'); i >= 0 {
		m = m[:i]
	}
	if len(m) > 300 {
		m = m[:300] + "…"
	}
	return m
}

// logf records what happened, stamped with the simulated day and hour.
func (s *sim) logf(format string, args ...any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.history = append(s.history, fmt.Sprintf("d%03d h%02d ", s.day, s.hr)+fmt.Sprintf(format, args...))
}

// violation fails the run with the seed, the step and what led to it; only
// the first violation of each kind is described.
func (s *sim) violation(kind, format string, args ...any) {
	s.t.Helper()
	s.st.violations++
	if s.kinds == nil {
		s.kinds = map[string]int{}
	}
	s.kinds[kind]++
	if s.kinds[kind] > 1 {
		return
	}
	s.mu.Lock()
	from := max(0, len(s.history)-60)
	last, n := strings.Join(s.history[from:], "\n  "), len(s.history)
	s.mu.Unlock()
	s.t.Errorf("SIMULATION VIOLATION %s seed=%d step=%d (day %d hour %d): %s\nreplay: KVASSERT_SIM_DAYS=%d go test -race -count=1 -run 'TestRotationSimulation' ./rotation/ -args -sim.seed=%d\nstate: %s\nlast %d of %d recorded happenings:\n  %s",
		kind, s.seed, s.step, s.day, s.hr, fmt.Sprintf(format, args...), s.days, s.seed, s.state(), n-from, n, last)
}
