package fleet

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/kvassert/kvassert/fleet/internal/replica"
	"github.com/kvassert/kvassert/internal/redistest"
	"github.com/kvassert/kvassert/internal/testfixture"
	"github.com/kvassert/kvassert/kvasserttest"
	"github.com/kvassert/kvassert/kvasserttest/scenario"
)

// TestMain runs this binary as a replica when a benchmark starts it as one.
func TestMain(m *testing.M) { replica.TestMain(m) }

// world is an emulator with n tenants and, when redis, a redis-server.
type world struct {
	e   *kvasserttest.Emulator
	srv *redistest.Server
	key string
}

func newWorld(b *testing.B, n int, redis bool) *world {
	b.Helper()
	s, _ := testfixture.ManyTenants(n)
	w := &world{e: kvasserttest.NewTB(b, s, nil)}
	if redis {
		w.srv = redistest.Start(b)
		k := make([]byte, 32)
		rand.Read(k)
		w.key = base64.StdEncoding.EncodeToString(k)
	}
	return w
}

func (w *world) config(tenants int) replica.Config {
	cfg := replica.Config{EmulatorAddr: strings.TrimPrefix(w.e.URL(), "https://"), CAPEM: w.e.CAPEM(), VaultURL: w.e.VaultURL(scenario.DemoVault),
		Tenants: tenants, Callers: 32, WarmAll: true}
	if w.srv != nil {
		cfg.RedisURL, cfg.Key = w.srv.URL(), w.key
	}
	return cfg
}

// outcome is what a set of replica processes did.
type outcome struct {
	wall     time.Duration // from starting the processes to the last one's end
	slowest  time.Duration // the longest replica's token phase
	signs    int64         // sign requests at the emulator (refused ones too)
	requests int64         // app token requests of the credentials
	errors   int64
	wrong    int64
	hits     int64
}

// run starts one replica process per config at once and waits for all.
func (w *world) run(b *testing.B, cfgs ...replica.Config) outcome {
	b.Helper()
	exe, err := os.Executable()
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	w.e.ResetCounts()
	type proc struct {
		cmd *exec.Cmd
		out *bytes.Buffer
	}
	var procs []proc
	start := time.Now()
	for _, cfg := range cfgs {
		cmd, err := replica.Command(ctx, exe, cfg)
		if err != nil {
			b.Fatal(err)
		}
		var out bytes.Buffer
		cmd.Stdout = &out
		if err := cmd.Start(); err != nil {
			b.Fatal(err)
		}
		procs = append(procs, proc{cmd, &out})
	}
	var o outcome
	for _, p := range procs {
		err := p.cmd.Wait()
		res, perr := replica.Parse(p.out.Bytes())
		if err != nil || perr != nil {
			b.Fatalf("replica: %v; %v", err, perr)
		}
		o.slowest = max(o.slowest, res.Elapsed)
		o.requests += res.TokenRequests
		o.errors += res.CallerErrors
		o.wrong += res.WrongTenant
		o.hits += res.Cache.Hits
	}
	o.wall = time.Since(start)
	o.signs = w.e.Count(kvasserttest.OpKeySign)
	if o.wrong != 0 {
		b.Fatalf("%d tokens for the wrong tenant", o.wrong)
	}
	return o
}

func (o outcome) report(b *testing.B, tenants int) {
	b.ReportMetric(float64(o.signs), "signs")
	b.ReportMetric(float64(o.requests), "token-posts")
	b.ReportMetric(float64(o.signs-o.requests), "refused-signs")
	b.ReportMetric(o.slowest.Seconds(), "s-to-all")
	b.ReportMetric(o.wall.Seconds(), "s-wall")
	b.ReportMetric(float64(o.errors), "caller-errors")
	b.ReportMetric(float64(o.hits), "shared-hits")
	_ = tenants
}

func times(n int, cfg replica.Config) []replica.Config {
	out := make([]replica.Config, n)
	for i := range out {
		out[i] = cfg
	}
	return out
}

func once(b *testing.B) {
	if b.N != 1 {
		b.Fatal("run with -benchtime=1x: each run needs cold tenants")
	}
}

// BenchmarkFleetCold: 8 replica processes each need the same 2,000 tenants,
// cold, with no sign limit: with the shared cache (one sign and one token
// request per tenant for the fleet) and without (each replica its own). The
// floor is one process getting the 2,000 tokens alone, in the same run.
// s-to-all is the slowest replica's time from its first GetToken to its
// last token.
func BenchmarkFleetCold(b *testing.B) {
	const tenants, procs = 2000, 8
	b.Run("floor/procs=1", func(b *testing.B) {
		once(b)
		w := newWorld(b, tenants, false)
		w.run(b, w.config(tenants)).report(b, tenants)
	})
	b.Run("shared/procs=8", func(b *testing.B) {
		once(b)
		w := newWorld(b, tenants, true)
		w.run(b, times(procs, w.config(tenants))...).report(b, tenants)
	})
	b.Run("none/procs=8", func(b *testing.B) {
		once(b)
		w := newWorld(b, tenants, false)
		w.run(b, times(procs, w.config(tenants))...).report(b, tenants)
	})
}

// BenchmarkFleetWarmRestart: one replica warms Redis with 10,000 tenants
// (cold, no sign limit: its time is the machine's unlimited rate), then a
// restarted replica (a new process, empty local cache) gets all of them
// from Redis: 0 signs.
func BenchmarkFleetWarmRestart(b *testing.B) {
	const tenants = 10000
	once(b)
	w := newWorld(b, tenants, true)
	cold := w.run(b, w.config(tenants))
	restart := w.run(b, w.config(tenants))
	b.ReportMetric(cold.slowest.Seconds(), "s-cold")
	b.ReportMetric(float64(cold.signs), "signs-cold")
	b.ReportMetric(restart.slowest.Seconds(), "s-to-warm")
	b.ReportMetric(float64(restart.signs), "signs-restart")
	b.ReportMetric(float64(restart.requests), "posts-restart")
	b.ReportMetric(float64(restart.errors), "caller-errors")
}

// BenchmarkFleetLimited: tenants cold across 8 replica processes sharing
// the cache, under an emulated sign limit: without a fleet throttle (each
// process's own 429 gate), with the fleet's shared 429 hold-off, and with a
// fleet budget of 90 % of the limit. The unlimited run of the same shape
// gives the machine's rate for the floor: the limit's full windows plus the
// last window's signs at that rate; when the machine is slower than the
// limit (then nothing is refused), the floor is the unlimited run's time.
//
// tenants=10000 under Key Vault's 4,000 / 10 s is the case; on a
// 2-core machine 8 processes make fewer than 400 tokens a second, so that
// limit never binds here. tenants=2000 under 400 / 10 s keeps the issue's
// 10-second window with a tenth of its count (a limit this machine does
// exceed), and tenants=2000 under 100 / 1 s shows a window ten times
// shorter, where the time between the budget admitting a sign and the vault
// counting it is a large share of the window.
func BenchmarkFleetLimited(b *testing.B) {
	const procs = 8
	for _, sc := range []struct {
		tenants int
		limit   signLimit
	}{
		{10000, signLimit{Requests: 4000, Window: 10 * time.Second}},
		{2000, signLimit{Requests: 400, Window: 10 * time.Second}},
		{2000, signLimit{Requests: 100, Window: time.Second}},
	} {
		tenants, limit := sc.tenants, sc.limit
		var unlimited time.Duration
		for _, c := range []struct {
			name     string
			limited  bool
			throttle bool
			budget   int
		}{
			{"nolimit", false, false, 0},
			{"no-fleet-throttle", true, false, 0},
			{"fleet-holdoff", true, true, 0},
			{fmt.Sprintf("fleet-budget=%d", limit.Requests*9/10), true, true, limit.Requests * 9 / 10},
		} {
			name := fmt.Sprintf("tenants=%d/limit=%dper%s/%s", tenants, limit.Requests, limit.Window, c.name)
			b.Run(name, func(b *testing.B) {
				once(b)
				w := newWorld(b, tenants, true)
				if c.limited {
					if err := w.e.SetSignLimit(scenario.DemoVault, limit.Requests, limit.Window); err != nil {
						b.Fatal(err)
					}
				}
				cfg := w.config(tenants)
				cfg.Throttle, cfg.Budget, cfg.Window = c.throttle, c.budget, limit.Window
				o := w.run(b, times(procs, cfg)...)
				o.report(b, tenants)
				if !c.limited {
					unlimited = o.slowest
					b.ReportMetric(float64(tenants)/o.slowest.Seconds(), "tokens/s")
					return
				}
				b.ReportMetric(100*float64(o.signs-o.requests)/float64(o.signs), "refused-%")
				if unlimited == 0 {
					return
				}
				full := (tenants - 1) / limit.Requests
				rate := float64(tenants) / unlimited.Seconds()
				limitFloor := float64(full)*limit.Window.Seconds() + float64(tenants-full*limit.Requests)/rate
				floor := max(limitFloor, unlimited.Seconds())
				b.ReportMetric(limitFloor, "limit-floor-s")
				b.ReportMetric(floor, "floor-s")
				b.ReportMetric(o.slowest.Seconds()/floor, "x-floor")
			})
		}
	}
}

// signLimit is an emulated vault sign limit: Requests per Window.
type signLimit struct {
	Requests int
	Window   time.Duration
}
