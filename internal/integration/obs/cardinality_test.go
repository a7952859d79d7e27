package obs_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"runtime"
	"sort"
	"testing"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/kvassert/kvassert"
	"github.com/kvassert/kvassert/internal/emuhook"
	"github.com/kvassert/kvassert/internal/integration/obstest"
	"github.com/kvassert/kvassert/internal/obs"
	"github.com/kvassert/kvassert/internal/testfixture"
)

// values returns the distinct values of attribute key on the points of
// metric name, sorted.
func values(rm metricdata.ResourceMetrics, name string, key attribute.Key) []string {
	seen := map[string]bool{}
	for _, p := range obstest.Points(rm, name) {
		if v, ok := p.Attrs.Value(key); ok {
			seen[v.Emit()] = true
		}
	}
	out := make([]string, 0, len(seen))
	for v := range seen {
		out = append(out, v)
	}
	sort.Strings(out)
	return out
}

// heapInUse is the live heap after a full collection.
func heapInUse() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// TestRefusedTenantsDoNotPickLabels is issue 18's defect 11 through a real
// Credential: 20,000 callers ask for tenants the credential does not allow,
// each named "AADSTS<n>.example.com". The refusal quotes the tenant, and
// error.type used to be taken from an AADSTS code found in that text: every
// string became a series of kvassert.token.requests (1,998 distinct values,
// the SDK's overflow series, +25 MiB). error.type must stay obs.TypeInput, the
// heap must not grow with the number of strings, and a real Entra refusal
// on the same credential must still be reported as its AADSTS code (from
// kvassert.AuthError, not from text).
func TestRefusedTenantsDoNotPickLabels(t *testing.T) {
	r := obstest.New(t)
	w := testfixture.NewWorld(t, &testfixture.WorldOptions{Scenario: world(),
		AllowedTenants: []string{emuhook.DemoWingtipTenant}, // never consented: AADSTS700016
		Credential:     func(o *kvassert.CredentialOptions) { o.Telemetry = r.Options }})
	cred := w.Cred
	ctx := context.Background()
	const n = 20000
	before := heapInUse()
	for i := range n {
		_, err := cred.GetToken(ctx, policy.TokenRequestOptions{TenantID: fmt.Sprintf("AADSTS%d.example.com", 100000+i), Scopes: []string{graph}})
		var ie *kvassert.InputError
		if !errors.As(err, &ie) {
			t.Fatalf("tenant %d: err = %v, want an InputError", i, err)
		}
	}
	rm := r.Collect(t)
	after := heapInUse()
	if got := values(rm, obs.MetricTokenRequests, obs.AttrErrorType); len(got) != 1 || got[0] != obs.TypeInput {
		t.Errorf("%d refused tenants made %d error.type values (first: %q), want only %q", n, len(got), got[:min(len(got), 3)], obs.TypeInput)
	}
	if v, ok := sumOf(rm, obs.MetricTokenRequests, "error.type=input,kvassert.token.outcome=error"); !ok || v != n {
		t.Errorf("requests {error.type=input} = %v (found %v), want %d", v, ok, n)
	}
	if ps := obstest.Points(rm, obs.MetricTokenRequests); len(ps) > 3 {
		t.Errorf("kvassert.token.requests has %d series after %d refusals", len(ps), n)
	}
	// Generous: one series is a few hundred bytes; 20,000 were megabytes.
	if grew := int64(after) - int64(before); grew > 2<<20 {
		t.Errorf("heap grew by %d KiB over %d refused tenants, want it bounded (< 2 MiB)", grew>>10, n)
	}

	// A real refusal by Entra is still reported by its AADSTS code.
	_, err := cred.GetToken(ctx, policy.TokenRequestOptions{TenantID: emuhook.DemoWingtipTenant, Scopes: []string{graph}})
	var ae *kvassert.AuthError
	if !errors.As(err, &ae) || ae.Code != 700016 {
		t.Fatalf("err = %v, want an AuthError AADSTS700016", err)
	}
	rm = r.Collect(t)
	if v, ok := sumOf(rm, obs.MetricTokenRequests, "error.type=AADSTS700016,kvassert.token.outcome=error"); !ok || v != 1 {
		t.Errorf("Entra's refusal not counted as AADSTS700016 (found %v)", ok)
	}
	if v, ok := sumOf(rm, obs.MetricTokenAcquireDuration, "error.type=AADSTS700016"); !ok || v != 1 {
		t.Errorf("acquisitions:%s", dump(rm, obs.MetricTokenAcquireDuration))
	}
	runtime.KeepAlive(cred)
}

// TestTenantLabelsAreBounded: with TenantAttribute, every distinct tenant
// is a label value; a credential serving more tenants than the bound
// reports the rest as "_OTHER", and the series of kvassert.token.requests
// stay below the SDK's cardinality limit (2000), so that no real series is
// pushed into the SDK's overflow.
func TestTenantLabelsAreBounded(t *testing.T) {
	r := obstest.New(t)
	opts := r.Options
	opts.TenantAttribute = true
	c := obs.NewCredential(opts)
	ctx := context.Background()
	const tenants = 5000
	for i := range tenants {
		tenant := fmt.Sprintf("%08x-0000-4000-8000-000000000000", i)
		c.Hit(tenant)
		c.Served(tenant, nil)
		c.Served(tenant, &kvassert.AuthError{Code: 700016, StatusCode: 400})
		c.Refreshed(ctx, tenant, nil)
		_, end := c.StartAcquire(ctx, tenant, graph)
		end(nil)
	}
	rm := r.Collect(t)
	for _, name := range []string{obs.MetricTokenRequests, obs.MetricTokenRefreshes, obs.MetricTokenAcquireDuration} {
		ps := obstest.Points(rm, name)
		if len(ps) >= 2000 {
			t.Errorf("%s: %d series, want fewer than the SDK's limit of 2000", name, len(ps))
		}
		var total float64
		for _, p := range ps {
			if v, ok := p.Attrs.Value("otel.metric.overflow"); ok && v.AsBool() && len(ps) >= 2000 {
				t.Errorf("%s: the SDK's overflow series was used", name)
			}
			total += p.Value
		}
		want := float64(tenants)
		if name == obs.MetricTokenRequests {
			want = 3 * tenants // hit, acquired, error
		}
		if total != want {
			t.Errorf("%s: counts add up to %v, want %v (none lost to the bound)", name, total, want)
		}
		if got := values(rm, name, obs.AttrTenantID); len(got) > 600 {
			t.Errorf("%s: %d tenant label values, want them bounded", name, len(got))
		}
	}
	if _, ok := sumOf(rm, obs.MetricTokenRefreshes, "kvassert.tenant.id=_OTHER"); !ok {
		t.Errorf("no _OTHER tenant series past the bound")
	}
	// A cache hit for a tenant past the bound stays allocation-free.
	late := fmt.Sprintf("%08x-0000-4000-8000-000000000000", tenants+1)
	c.Hit(late)
	if n := testing.AllocsPerRun(1000, func() { c.Hit(late) }); n != 0 {
		t.Errorf("Hit for a tenant past the bound allocates %v times per call, want 0", n)
	}
}

// hostileVault answers every request with a new error code, as a server
// trying to fill the metric backend would.
type hostileVault struct{ n int }

func (h *hostileVault) err() error {
	h.n++
	return fmt.Errorf("keyvault: signing: %w", &azcore.ResponseError{StatusCode: 400 + h.n%200, ErrorCode: fmt.Sprintf("Code%d", h.n)})
}

// TestServerCodesAreBounded: error codes a server makes up never become
// error.type values; the documented ones still do.
func TestServerCodesAreBounded(t *testing.T) {
	r := obstest.New(t)
	k := obs.NewKeyVault(r.Options, vaultHost)
	h := &hostileVault{}
	for range 10000 {
		_, end := k.StartSign(context.Background())
		end(h.err())
	}
	_, end := k.StartSign(context.Background())
	end(&azcore.ResponseError{StatusCode: http.StatusForbidden, ErrorCode: "Forbidden"})
	rm := r.Collect(t)
	got := values(rm, obs.MetricSignDuration, obs.AttrErrorType)
	if len(got) > 40 {
		t.Errorf("a server's made-up codes made %d error.type values (first: %q), want a small fixed set", len(got), got[:min(len(got), 3)])
	}
	if _, ok := sumOf(rm, obs.MetricSignDuration, "error.type=Forbidden,server.address="+vaultHost); !ok {
		t.Errorf("Key Vault's Forbidden not reported as such (%d values)", len(got))
	}
}
