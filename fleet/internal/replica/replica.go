// Package replica runs one replica of a service in its own OS process, for
// the fleet's multi-process tests and benchmarks (it is not part of the
// library): a kvassert credential, with or without a fleet cache and a
// fleet throttle on Redis, gets tokens for many tenants from an emulator
// that runs in the parent process (reached through
// emuhook.NewTransport), and reports what it did as JSON on stdout.
//
// The parent re-executes its own test binary with Command; the binary's
// TestMain calls TestMain, which runs Main when the environment variable Env
// is set.
package replica

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync/atomic"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	"github.com/redis/go-redis/v9"

	"github.com/kvassert/kvassert"
	"github.com/kvassert/kvassert/fleet"
	"github.com/kvassert/kvassert/internal/emuhook"
	"github.com/kvassert/kvassert/internal/fleetstats"
	"github.com/kvassert/kvassert/internal/rootaccess"
	"github.com/kvassert/kvassert/internal/testfixture"
	"github.com/kvassert/kvassert/keyvault"
	"github.com/kvassert/kvassert/kvasserttest/scenario"
)

// Env carries the Config (JSON) to a child process.
const Env = "KVASSERT_REPLICA"

// Config is what one replica does.
type Config struct {
	// EmulatorAddr and CAPEM reach the emulator (Emulator.Addr, CAPEM).
	EmulatorAddr string
	CAPEM        []byte
	// VaultURL is the demo vault's URL (Emulator.VaultURL).
	VaultURL string
	// Tenants is the number of tenants of testfixture.ManyTenants to get
	// tokens for, from First on (each replica gets all of them).
	Tenants, First int
	// Callers is the number of goroutines calling GetToken (default 32).
	Callers int
	// RedisURL enables the fleet cache (with Key, base64) when set.
	RedisURL string
	Key      string
	// LockTTL is the cache's lock life (default fleet's).
	LockTTL time.Duration
	// Budget, when above zero, paces signs with a fleet Throttle (Window
	// default 10 s); Throttle uses one without a budget (shared hold-off).
	Budget   int
	Window   time.Duration
	Throttle bool
	// WarmAll makes the replica read the certificate before the clock
	// starts, so Elapsed is token work only.
	WarmAll bool
	// Chaos, when set, makes the replica a chaos-test replica (RunChaos).
	Chaos *Chaos
}

// Result is what a replica reports.
type Result struct {
	Tokens        int
	CallerErrors  int64
	TokenRequests int64
	// WrongTenant counts tokens whose tid was not the tenant asked for.
	WrongTenant int64
	Elapsed     time.Duration
	Cache       fleetstats.Cache
	Throttle    fleetstats.Throttle
	// Chaos is a chaos replica's report (Config.Chaos).
	Chaos *ChaosResult `json:",omitempty"`
	Err   string       `json:",omitempty"`
}

// Command returns the command that runs exe (a test binary whose TestMain
// calls Main) as a replica doing cfg.
func Command(ctx context.Context, exe string, cfg Config) (*exec.Cmd, error) {
	b, err := json.Marshal(cfg)
	if err != nil {
		return nil, err
	}
	cmd := exec.CommandContext(ctx, exe, "-test.run=^$")
	cmd.Env = append(os.Environ(), Env+"="+string(b))
	cmd.Stderr = os.Stderr
	return cmd, nil
}

// Parse reads a replica's Result from its stdout.
func Parse(out []byte) (Result, error) {
	var r Result
	i := strings.LastIndex(string(out), "\n{")
	if err := json.Unmarshal(out[i+1:], &r); err != nil {
		return r, fmt.Errorf("replica output: %w", err)
	}
	if r.Err != "" {
		return r, errors.New("replica: " + r.Err)
	}
	return r, nil
}

// TestMain is the whole TestMain of a test binary that starts replicas: it
// runs the replica (Main) when Env is set, the tests otherwise, and exits.
func TestMain(m interface{ Run() int }) {
	if os.Getenv(Env) != "" {
		os.Exit(Main())
	}
	os.Exit(m.Run())
}

// Main runs the replica the environment describes and returns the exit
// code; the parent reads the Result from stdout.
func Main() int {
	var cfg Config
	if err := json.Unmarshal([]byte(os.Getenv(Env)), &cfg); err != nil {
		fmt.Fprintln(os.Stderr, "replica: bad config:", err)
		return 2
	}
	var res Result
	var err error
	if cfg.Chaos != nil {
		var cr ChaosResult
		cr, err = RunChaos(context.Background(), cfg)
		res.Chaos = &cr
	} else {
		res, err = Run(context.Background(), cfg)
	}
	if err != nil {
		res.Err = err.Error()
	}
	b, _ := json.Marshal(res)
	fmt.Printf("\n%s\n", b)
	if err != nil {
		return 1
	}
	return 0
}

// connect returns the client options that reach the parent's emulator and
// the vault credential (the demo workload app) over them.
func (cfg Config) connect() (policy.ClientOptions, *azidentity.ClientSecretCredential, error) {
	tr, err := emuhook.NewTransport(cfg.EmulatorAddr, cfg.CAPEM, nil)
	if err != nil {
		return policy.ClientOptions{}, nil, err
	}
	co := policy.ClientOptions{Transport: &http.Client{Transport: tr}}
	vaultCred, err := azidentity.NewClientSecretCredential(scenario.DemoHomeTenant, emuhook.DemoWorkloadClientID, emuhook.DemoWorkloadSecret,
		&azidentity.ClientSecretCredentialOptions{ClientOptions: co, DisableInstanceDiscovery: true})
	return co, vaultCred, err
}

// openRedis opens the Redis the replicas share and reads their cache key;
// the caller closes the client.
func (cfg Config) openRedis() (redis.UniversalClient, *fleet.Key, error) {
	rdb, err := fleet.NewClient(cfg.RedisURL)
	if err != nil {
		return nil, nil, err
	}
	key, err := fleet.KeyFromBase64("k1", cfg.Key)
	if err != nil {
		rdb.Close()
		return nil, nil, err
	}
	return rdb, key, nil
}

// Run is one replica.
func Run(ctx context.Context, cfg Config) (Result, error) {
	var res Result
	co, vaultCred, err := cfg.connect()
	if err != nil {
		return res, err
	}
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	kvo := keyvault.SignerOptions{ClientOptions: co}
	var cache *fleet.Cache
	var thr *fleet.Throttle
	if cfg.RedisURL != "" {
		rdb, key, err := cfg.openRedis()
		if err != nil {
			return res, err
		}
		defer rdb.Close()
		// Generous operation timeouts: 8 replicas share 2 cores.
		cache, err = fleet.NewCache(rdb, key, &fleet.CacheOptions{LockTTL: cfg.LockTTL, OpTimeout: 2 * time.Second, Logger: logger})
		if err != nil {
			return res, err
		}
		defer cache.Close()
		if cfg.Budget > 0 || cfg.Throttle {
			host := strings.TrimSuffix(strings.TrimPrefix(cfg.VaultURL, "https://"), "/")
			thr, err = fleet.NewThrottle(rdb, host, &fleet.ThrottleOptions{Budget: cfg.Budget, Window: cfg.Window, OpTimeout: 2 * time.Second, Logger: logger})
			if err != nil {
				return res, err
			}
			kvo.Throttle = thr
		}
	}
	src, err := kvassert.NewKeyVaultCertificateSource(cfg.VaultURL, scenario.DemoCertificate, vaultCred,
		&kvassert.KeyVaultCertificateOptions{ClientOptions: kvo.ClientOptions, Throttle: kvo.Throttle, Logger: logger})
	if err != nil {
		return res, err
	}
	o := &kvassert.CredentialOptions{ClientOptions: co, AdditionallyAllowedTenants: []string{"*"}, Logger: logger}
	if cache != nil {
		o.SharedCache = cache
	}
	cred, err := kvassert.NewCredential(scenario.DemoHomeTenant, scenario.DemoAppClientID, src, o)
	if err != nil {
		return res, err
	}
	if cfg.WarmAll {
		if _, err := rootaccess.Cache(src).Certificate(ctx); err != nil {
			return res, err
		}
	}
	_, all := testfixture.ManyTenants(cfg.First + cfg.Tenants)
	tenants := all[cfg.First:]
	callers := cfg.Callers
	if callers <= 0 {
		callers = 32
	}
	start := time.Now()
	testfixture.Spread(len(tenants), callers, func(i int) bool {
		tid := testfixture.TokenRetrying(ctx, cred, tenants[i], func() { atomic.AddInt64(&res.CallerErrors, 1) })
		if tid != tenants[i] {
			atomic.AddInt64(&res.WrongTenant, 1)
		}
		return true
	})
	res.Elapsed = time.Since(start)
	res.Tokens = len(tenants)
	res.TokenRequests = rootaccess.CredentialStats(cred).TokenRequests
	if cache != nil {
		res.Cache = fleetstats.OfCache(cache)
	}
	if thr != nil {
		res.Throttle = fleetstats.OfThrottle(thr)
	}
	return res, nil
}
