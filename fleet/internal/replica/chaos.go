package replica

import (
	"context"
	"errors"
	"log/slog"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/kvassert/kvassert"
	"github.com/kvassert/kvassert/fleet"
	"github.com/kvassert/kvassert/internal/certfile"
	"github.com/kvassert/kvassert/internal/fleetstats"
	"github.com/kvassert/kvassert/internal/testfixture"
	"github.com/kvassert/kvassert/keyvault"
	"github.com/kvassert/kvassert/kvasserttest/scenario"
)

// Chaos makes a replica a chaos-test replica (RunChaos): callers that each
// make a fresh credential per call (a cold replica: every call goes to the
// fleet cache), alternating two sources over one Redis: the demo vault's
// certificate (registered on the app) and a local certificate that is not
// registered (Entra refuses it: any token it gets is a token for the wrong
// source).
type Chaos struct {
	// Duration is how long the callers call.
	Duration time.Duration
	// CallTimeout is each GetToken's deadline.
	CallTimeout time.Duration
	// Pause is each caller's pause between two calls.
	Pause time.Duration
	// UnregisteredPEM is the unregistered certificate and its key (PEM).
	UnregisteredPEM []byte
	// MaxHoldOff bounds the fleet throttle's hold-offs.
	MaxHoldOff time.Duration
}

// ChaosResult is what a chaos replica reports.
type ChaosResult struct {
	// Calls, Tokens and Errors of the registered source's callers; Late
	// counts calls that returned more than 5 s after their deadline.
	Calls, Tokens, Errors, Late int64
	// UnregisteredCalls of the unregistered source's callers, Refused
	// those Entra refused (AADSTS700027), WrongSource the tokens they got
	// (must be 0).
	UnregisteredCalls, Refused, WrongSource int64
	// WrongTenant counts tokens whose tid was not the tenant asked for.
	WrongTenant int64
	// Signs counts the registered source's assertions (one Key Vault sign
	// each) per tenant; CallsPerTenant its calls per tenant.
	Signs, CallsPerTenant map[string]int64
	// ErrorSamples are up to 5 distinct error texts (registered source).
	ErrorSamples []string
	// Cache and LocalCache are the two fleet caches' counters.
	Cache, LocalCache fleetstats.Cache
}

// countingSource counts its inner Key Vault source's assertions per
// tenant (the tenant is in the token endpoint); kvassert.WrapSource
// forwards Entra's answers and the source's identity.
type countingSource struct {
	inner *kvassert.KeyVaultCertificateSource
	mu    sync.Mutex
	n     map[string]int64
}

func (s *countingSource) Assertion(ctx context.Context, clientID, tokenEndpoint string) (string, error) {
	tenant := tokenEndpoint
	if u := strings.TrimPrefix(tokenEndpoint, "https://"); u != tokenEndpoint {
		if parts := strings.Split(u, "/"); len(parts) > 1 {
			tenant = parts[1]
		}
	}
	s.mu.Lock()
	s.n[tenant]++
	s.mu.Unlock()
	return s.inner.Assertion(ctx, clientID, tokenEndpoint)
}

// RunChaos is one chaos replica.
func RunChaos(ctx context.Context, cfg Config) (ChaosResult, error) {
	ch := cfg.Chaos
	res := ChaosResult{Signs: map[string]int64{}, CallsPerTenant: map[string]int64{}}
	co, vaultCred, err := cfg.connect()
	if err != nil {
		return res, err
	}
	logger := slog.New(slog.DiscardHandler)
	rdb, key, err := cfg.openRedis()
	if err != nil {
		return res, err
	}
	defer rdb.Close()
	fo := &fleet.CacheOptions{LockTTL: cfg.LockTTL, OpTimeout: time.Second, WaitTimeout: 5 * time.Second, Logger: logger}
	cacheKV, err := fleet.NewCache(rdb, key, fo)
	if err != nil {
		return res, err
	}
	defer cacheKV.Close()
	cacheLocal, err := fleet.NewCache(rdb, key, fo)
	if err != nil {
		return res, err
	}
	defer cacheLocal.Close()
	host := strings.TrimSuffix(strings.TrimPrefix(cfg.VaultURL, "https://"), "/")
	thr, err := fleet.NewThrottle(rdb, host, &fleet.ThrottleOptions{OpTimeout: time.Second, MaxHoldOff: ch.MaxHoldOff, Logger: logger})
	if err != nil {
		return res, err
	}
	kvo := keyvault.SignerOptions{ClientOptions: co, Throttle: thr}
	kv, err := kvassert.NewKeyVaultCertificateSource(cfg.VaultURL, scenario.DemoCertificate, vaultCred,
		&kvassert.KeyVaultCertificateOptions{ClientOptions: kvo.ClientOptions, Throttle: kvo.Throttle, Logger: logger})
	if err != nil {
		return res, err
	}
	counted := &countingSource{inner: kv, n: map[string]int64{}}
	countedSrc, err := kvassert.WrapSource(kv, counted.Assertion)
	if err != nil {
		return res, err
	}
	cert, signer, err := certfile.Parse(ch.UnregisteredPEM, nil)
	if err != nil {
		return res, err
	}
	local, err := kvassert.NewLocalSource(cert, signer, nil)
	if err != nil {
		return res, err
	}
	_, all := testfixture.ManyTenants(cfg.First + cfg.Tenants)
	tenants := all[cfg.First:]
	callers := max(cfg.Callers, 2)
	var mu sync.Mutex
	samples := map[string]bool{}
	end := time.Now().Add(ch.Duration)
	var wg sync.WaitGroup
	for i := range callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			registered := i%2 == 0
			var src kvassert.Source = local
			cache := cacheLocal
			if registered {
				src, cache = countedSrc, cacheKV
			}
			for time.Now().Before(end) {
				tenant := tenants[rand.N(len(tenants))]
				cred, err := kvassert.NewCredential(scenario.DemoHomeTenant, scenario.DemoAppClientID, src,
					&kvassert.CredentialOptions{ClientOptions: co, AdditionallyAllowedTenants: []string{"*"}, Logger: logger, SharedCache: cache})
				if err != nil {
					mu.Lock()
					samples["NewCredential: "+err.Error()] = true
					mu.Unlock()
					atomic.AddInt64(&res.Errors, 1)
					return
				}
				cctx, cancel := context.WithTimeout(ctx, ch.CallTimeout)
				start := time.Now()
				tok, err := cred.GetToken(cctx, testfixture.Opts(tenant))
				cancel()
				late := time.Since(start) > ch.CallTimeout+5*time.Second
				if err == nil {
					if tid, _ := testfixture.TenantOf(tok.Token); tid != tenant {
						atomic.AddInt64(&res.WrongTenant, 1)
					}
				}
				mu.Lock()
				res.record(samples, registered, tenant, late, err)
				mu.Unlock()
				time.Sleep(ch.Pause)
			}
		}()
	}
	wg.Wait()
	counted.mu.Lock()
	for t, n := range counted.n {
		res.Signs[t] = n
	}
	counted.mu.Unlock()
	for s := range samples {
		res.ErrorSamples = append(res.ErrorSamples, s)
	}
	res.Cache, res.LocalCache = fleetstats.OfCache(cacheKV), fleetstats.OfCache(cacheLocal)
	if res.Calls == 0 {
		return res, errors.New("replica: no calls made")
	}
	return res, nil
}

// record counts one call's outcome (the caller holds the lock over res
// and samples): registered tells the registered source's callers from the
// unregistered one's, late a call that returned more than 5 s after its
// deadline; samples collects up to 5 distinct error texts.
func (res *ChaosResult) record(samples map[string]bool, registered bool, tenant string, late bool, err error) {
	if late {
		res.Late++
	}
	switch {
	case registered:
		res.Calls++
		res.CallsPerTenant[tenant]++
		if err == nil {
			res.Tokens++
		} else {
			res.Errors++
			if len(samples) < 5 {
				samples[err.Error()] = true
			}
		}
	default:
		res.UnregisteredCalls++
		switch {
		case err == nil:
			res.WrongSource++
		case strings.Contains(err.Error(), "AADSTS700027"):
			res.Refused++
		}
	}
}
