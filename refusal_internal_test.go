package kvassert

import (
	"context"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"

	"github.com/kvassert/kvassert/internal/entraid"
)

// Every tenant refusal entraid knows has kvassert's wording and an
// actionable hint; where an administrator's consent fixes it, the hint
// holds the v2 admin-consent URL of the credential's cloud.
func TestRefusalHints(t *testing.T) {
	const (
		tenant = "2b6e9d10-7c4a-4f0e-8d21-5a3b4c6d7e82"
		client = "6d2f4a8b-1c3e-4f5a-9b7d-2e4f6a8c0b16"
		host   = "https://login.chinacloudapi.cn/"
	)
	consent := map[int]bool{700016: true, 7000112: true, 7000229: true, 500011: true}
	for _, code := range entraid.RefusalCodes() {
		if _, ok := entraid.TenantRefusal(code); !ok {
			t.Fatalf("%d: not a refusal", code)
		}
		if _, ok := descriptions[code]; !ok {
			t.Errorf("AADSTS%d has no description", code)
		}
		h := hintText(code, tenant, client, host)
		if len(h) < 40 || strings.Contains(h, "{") {
			t.Errorf("AADSTS%d: hint %q", code, h)
		}
		want := host + tenant + "/adminconsent?client_id=" + client + ")"
		if strings.Contains(h, want) != consent[code] {
			t.Errorf("AADSTS%d: hint %q; consent URL %q expected: %v", code, h, want, consent[code])
		}
		if strings.Contains(h, "login.microsoftonline.com") {
			t.Errorf("AADSTS%d: hint %q names the public cloud", code, h)
		}
	}
	if got := hintText(700016, tenant, client, ""); !strings.Contains(got, "https://login.microsoftonline.com/"+tenant+"/adminconsent?client_id="+client+")") {
		t.Errorf("public cloud, no scope: %q", got)
	}
}

// The back-off starts at 5 s, doubles with up to 50 % jitter, and never
// passes the maximum.
func TestRefusalBackoff(t *testing.T) {
	for failures, want := range map[int]time.Duration{1: 5 * time.Second, 2: 10 * time.Second, 3: 20 * time.Second, 10: 2560 * time.Second, 12: time.Hour, 100: time.Hour} {
		for range 50 {
			d := refusalBackoff(failures, time.Hour)
			if d < want || d > min(want+want/2, time.Hour) {
				t.Fatalf("failure %d: %v, want %v..%v", failures, d, want, min(want+want/2, time.Hour))
			}
		}
	}
	if d := refusalBackoff(1, time.Second); d != time.Second {
		t.Fatalf("max 1 s: %v", d)
	}
}

// The negative cache stays bounded whatever tenants callers name: 10,000
// distinct refused tenants leave at most maxRefusals refusals, the ones
// ending last kept; the tenants that worked are bounded too.
func TestNegativeCacheIsBounded(t *testing.T) {
	c, err := NewCredential(testHome, testClient, &countingSource{}, &CredentialOptions{AdditionallyAllowedTenants: []string{"*"}})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	tenant := func(i int) string { return fmt.Sprintf("%08x-0000-4000-8000-000000000000", i) }
	for i := range 10000 {
		key := flightKey{cacheKey: cacheKey{tenant: tenant(i), scope: "https://graph.microsoft.com/.default"}}
		c.noteRefusal(ctx, key, c.neg.seq.Load(), &AuthError{Tenant: key.tenant, Code: 700016})
		if c.noteSuccess(cacheKey{tenant: tenant(100000 + i)}, c.neg.seq.Load(), "", func() {}); len(c.neg.worked) > maxWorked {
			t.Fatalf("%d tenants that worked", len(c.neg.worked))
		}
	}
	if n := len(c.neg.m); n != maxRefusals || int(c.neg.n.Load()) != n {
		t.Fatalf("%d refusals (n %d), want %d", n, c.neg.n.Load(), maxRefusals)
	}
	// The newest refusal is remembered and fails fast.
	if err, _ := c.checkRefusal(ctx, tenant(9999), "https://graph.microsoft.com/.default"); err == nil {
		t.Fatal("the newest refusal was dropped")
	}
	// Once every back-off has ended, a new refusal drops them all.
	c.now = func() time.Time { return time.Now().Add(2 * time.Hour) }
	c.noteRefusal(ctx, flightKey{cacheKey: cacheKey{tenant: tenant(10000)}}, c.neg.seq.Load(), &AuthError{Code: 700016})
	if n := len(c.neg.m); n != 1 {
		t.Fatalf("%d refusals after every back-off ended, want 1", n)
	}
}

func TestWorkedTenantsAreBounded(t *testing.T) {
	c, err := NewCredential(testHome, testClient, &countingSource{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := range maxWorked + 100 {
		c.noteSuccess(cacheKey{tenant: fmt.Sprint(i)}, 0, "", func() {})
	}
	if n := len(c.neg.worked); n != maxWorked {
		t.Fatalf("%d tenants that worked, want %d", n, maxWorked)
	}
}

// A tenant that the bounded set of tenants that worked has dropped (at
// maxWorked tenants) still has its tokens evicted when Entra says the
// customer removed the app: the report needs the set, the eviction must
// not (before the fix the removed tenant's tokens stayed in memory and were
// served until they expired).
func TestOffboardingEvictsWithoutTheWorkedSet(t *testing.T) {
	c, err := NewCredential(testHome, testClient, &countingSource{}, &CredentialOptions{AdditionallyAllowedTenants: []string{"*"}})
	if err != nil {
		t.Fatal(err)
	}
	const gone = "0b6e9d10-7c4a-4f0e-8d21-5a3b4c6d7e82"
	key := cacheKey{tenant: gone, scope: "https://graph.microsoft.com/.default"}
	now := time.Now()
	if !c.noteSuccess(key, c.neg.seq.Load(), "", func() {
		c.cache.put(key, newEntry(azcore.AccessToken{Token: "t", ExpiresOn: now.Add(time.Hour)}, now), now.UnixNano())
	}) {
		t.Fatal("not stored")
	}
	// Other tenants work until gone is dropped from the set.
	for i := 0; ; i++ {
		if _, ok := c.neg.worked[gone]; !ok {
			break
		}
		if i > 50*maxWorked {
			t.Fatal("never dropped")
		}
		c.noteSuccess(cacheKey{tenant: fmt.Sprint(i)}, c.neg.seq.Load(), "", func() {})
	}
	c.noteRefusal(context.Background(), flightKey{cacheKey: cacheKey{tenant: gone, scope: "https://vault.azure.net/.default"}}, c.neg.seq.Load(), &AuthError{Tenant: gone, Code: 700016, StatusCode: 400})
	if e := c.cache.get(key); e != nil {
		t.Fatal("the removed tenant's token is still cached")
	}
}

// A RefusedTenantRetry far beyond an hour does not overflow the back-off
// into a negative or zero wait.
func TestRefusalBackoffDoesNotOverflow(t *testing.T) {
	for _, maxWait := range []time.Duration{math.MaxInt64, math.MaxInt64 / 3 * 2, 100 * 365 * 24 * time.Hour} {
		for _, failures := range []int{1, 2, 40, 62, 63, 64, 1 << 31} {
			for range 20 {
				if d := refusalBackoff(failures, maxWait); d < refusalBase || d > maxWait {
					t.Fatalf("refusalBackoff(%d, %v) = %v", failures, maxWait, d)
				}
			}
		}
	}
}
