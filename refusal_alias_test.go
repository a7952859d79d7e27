package kvassert_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"

	"github.com/kvassert/kvassert"
	"github.com/kvassert/kvassert/internal/emuhook"
	"github.com/kvassert/kvassert/internal/obs"
	"github.com/kvassert/kvassert/internal/obs/obsrec"
	"github.com/kvassert/kvassert/internal/rootaccess"
	"github.com/kvassert/kvassert/internal/testfixture"
	"github.com/kvassert/kvassert/kvasserttest/scenario"
)

// A tenant has two names in these tests: its GUID and its initial domain.
const contosoDomain = "contoso.onmicrosoft.com"

var (
	byGUID   = scopeOpts(scenario.DemoContosoTenant, testfixture.Graph)
	byDomain = scopeOpts(contosoDomain, testfixture.Graph)
	vaultBy  = func(tenant string) policy.TokenRequestOptions {
		return scopeOpts(tenant, "https://vault.azure.net/.default")
	}
)

// bothNames caches a token by each name of contoso (the one by domain
// teaches the credential its GUID) and checks that both are cached.
func bothNames(t *testing.T, cred *kvassert.Credential) {
	t.Helper()
	for _, o := range []policy.TokenRequestOptions{byGUID, byDomain} {
		if _, err := cred.GetToken(context.Background(), o); err != nil {
			t.Fatal(err)
		}
	}
	if n := rootaccess.CredentialStats(cred).CachedTokens; n != 2 {
		t.Fatalf("%d cached tokens, want 2", n)
	}
}

// Issue 21 (day 300): the customer removes the app; a call by the GUID is
// refused with AADSTS700016. The tokens cached under the domain go too, the
// domain fails fast (no sign), and the transition is reported once per
// tenant, also when the domain is later refused by Entra itself. Before
// aliases, the domain's token was still served from memory.
func TestOffboardingByGUIDReachesTheDomain(t *testing.T) {
	cb := &offboarded{done: make(chan struct{}, 4)}
	w := newRefusalWorld(t, nil, func(o *kvassert.CredentialOptions) { o.TenantOffboarded = cb.callback })
	ctx := context.Background()
	bothNames(t, w.Cred)
	if err := w.Emu.SetConsent(scenario.DemoAppClientID, scenario.DemoContosoTenant, false); err != nil {
		t.Fatal(err)
	}
	_, err := w.Cred.GetToken(ctx, vaultBy(scenario.DemoContosoTenant))
	authErr(t, err, 700016)
	if n := rootaccess.CredentialStats(w.Cred).CachedTokens; n != 0 {
		t.Fatalf("%d cached tokens after offboarding, want 0 (the domain's token was kept)", n)
	}
	signs := w.signs()
	for _, o := range []policy.TokenRequestOptions{byDomain, vaultBy(contosoDomain)} {
		tok, err := w.Cred.GetToken(ctx, o)
		if err == nil {
			t.Fatalf("a token (%d bytes) was served by domain for the removed tenant", len(tok.Token))
		}
		ae := authErr(t, err, 700016)
		if ae.RefusedUntil.IsZero() || ae.Tenant != contosoDomain {
			t.Fatalf("by domain: %+v, want the remembered refusal naming the domain", ae)
		}
	}
	if w.signs() != signs {
		t.Fatalf("%d signs by domain after the GUID's refusal, want none", w.signs()-signs)
	}
	// After the back-off the domain asks Entra for itself: refused, but
	// the same tenant: not a second transition.
	w.clock.Add(2 * time.Hour)
	_, err = w.Cred.GetToken(ctx, byDomain)
	if ae := authErr(t, err, 700016); !ae.RefusedUntil.IsZero() {
		t.Fatal("the domain did not ask Entra after the back-off")
	}
	time.Sleep(50 * time.Millisecond) // a second callback would have run by now
	if cb.count() != 1 || cb.calls[0] != scenario.DemoContosoTenant {
		t.Fatalf("TenantOffboarded calls %v, want one", cb.calls)
	}
	points := obsrec.Points(w.rec.Collect(t), obs.MetricTenantState)
	if len(points) != 1 || points[0].Value != 1 {
		t.Fatalf("%s points %+v, want one transition for the tenant", obs.MetricTenantState, points)
	}
	if n := strings.Count(w.logs.String(), "level=WARN"); n != 1 {
		t.Fatalf("%d warnings, want one:\n%s", n, w.logs)
	}
}

// The other way round: the domain is refused first. The GUID's tokens go
// (memory); the GUID asks Entra once (a refusal of a domain never makes
// the GUID fail fast: the domain's tid could lie) and is then remembered;
// one report for the tenant.
func TestOffboardingByDomainEvictsTheGUID(t *testing.T) {
	cb := &offboarded{done: make(chan struct{}, 4)}
	w := newRefusalWorld(t, nil, func(o *kvassert.CredentialOptions) { o.TenantOffboarded = cb.callback })
	ctx := context.Background()
	bothNames(t, w.Cred)
	if err := w.Emu.SetConsent(scenario.DemoAppClientID, scenario.DemoContosoTenant, false); err != nil {
		t.Fatal(err)
	}
	_, err := w.Cred.GetToken(ctx, vaultBy(contosoDomain))
	authErr(t, err, 700016)
	if n := rootaccess.CredentialStats(w.Cred).CachedTokens; n != 0 {
		t.Fatalf("%d cached tokens after offboarding, want 0 (the GUID's token was kept)", n)
	}
	reqs := w.requests()
	_, err = w.Cred.GetToken(ctx, byGUID)
	if ae := authErr(t, err, 700016); !ae.RefusedUntil.IsZero() {
		t.Fatal("the GUID failed fast on the domain's refusal")
	}
	_, err = w.Cred.GetToken(ctx, byGUID)
	if ae := authErr(t, err, 700016); ae.RefusedUntil.IsZero() {
		t.Fatal("the GUID's own refusal was not remembered")
	}
	if got := w.requests(); got != reqs+1 {
		t.Fatalf("%d token requests by GUID, want 1", got-reqs)
	}
	time.Sleep(50 * time.Millisecond)
	if cb.count() != 1 || cb.calls[0] != contosoDomain {
		t.Fatalf("TenantOffboarded calls %v, want one", cb.calls)
	}
	if points := obsrec.Points(w.rec.Collect(t), obs.MetricTenantState); len(points) != 1 || points[0].Value != 1 {
		t.Fatalf("%s points %+v, want one transition for the tenant", obs.MetricTenantState, points)
	}
}

// Issue 21, "ForgetTenant clears the tenant at once": after a re-consent,
// ForgetTenant by either name clears the refusals remembered under every
// name, in memory and in the SharedCache.
func TestForgetTenantClearsEveryName(t *testing.T) {
	for _, forget := range []string{scenario.DemoContosoTenant, contosoDomain} {
		t.Run(forget, func(t *testing.T) {
			shc := newMemRefusals()
			w := newRefusalWorld(t, nil, func(o *kvassert.CredentialOptions) { o.SharedCache = shc })
			ctx := context.Background()
			bothNames(t, w.Cred)
			if err := w.Emu.SetConsent(scenario.DemoAppClientID, scenario.DemoContosoTenant, false); err != nil {
				t.Fatal(err)
			}
			// Each name refused by Entra itself: both remembered, both shared.
			for _, o := range []policy.TokenRequestOptions{vaultBy(contosoDomain), vaultBy(scenario.DemoContosoTenant)} {
				_, err := w.Cred.GetToken(ctx, o)
				if ae := authErr(t, err, 700016); !ae.RefusedUntil.IsZero() {
					t.Fatalf("%s failed fast, want Entra's own refusal", o.TenantID)
				}
			}
			for _, name := range []string{scenario.DemoContosoTenant, contosoDomain} {
				if _, ok := shc.get(name); !ok {
					t.Fatalf("the refusal of %s was not shared", name)
				}
			}
			if err := w.Emu.SetConsent(scenario.DemoAppClientID, scenario.DemoContosoTenant, true); err != nil {
				t.Fatal(err)
			}
			if err := w.Cred.ForgetTenant(ctx, forget); err != nil {
				t.Fatal(err)
			}
			for _, name := range []string{scenario.DemoContosoTenant, contosoDomain} {
				if _, ok := shc.get(name); ok {
					t.Fatalf("ForgetTenant(%s) left the shared refusal of %s", forget, name)
				}
			}
			for _, o := range []policy.TokenRequestOptions{vaultBy(contosoDomain), vaultBy(scenario.DemoContosoTenant)} {
				if _, err := w.Cred.GetToken(ctx, o); err != nil {
					t.Fatalf("ForgetTenant(%s), then %s: %v", forget, o.TenantID, err)
				}
			}
		})
	}
}

// ForgetTenant by one name drops the tokens cached under every name.
func TestForgetTenantDropsTheTokensOfEveryName(t *testing.T) {
	w := newRefusalWorld(t, nil, nil)
	bothNames(t, w.Cred)
	if err := w.Cred.ForgetTenant(context.Background(), scenario.DemoContosoTenant); err != nil {
		t.Fatal(err)
	}
	if n := rootaccess.CredentialStats(w.Cred).CachedTokens; n != 0 {
		t.Fatalf("%d cached tokens after ForgetTenant by GUID, want 0", n)
	}
}

// liarTransport replaces the access token of the answers to a tenant's
// token requests with an unsigned JWT claiming tid (a forged Entra answer:
// the credential does not verify tokens).
type liarTransport struct {
	next   policy.Transporter
	tenant string
	tid    string
	mu     sync.Mutex
	forged []string
}

func (rt *liarTransport) Do(req *http.Request) (*http.Response, error) {
	resp, err := rt.next.Do(req)
	if err != nil || resp.StatusCode != http.StatusOK || req.URL.Path != "/"+rt.tenant+"/oauth2/v2.0/token" {
		return resp, err
	}
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	var m map[string]any
	if err := json.Unmarshal(body, &m); err != nil {
		return nil, err
	}
	enc := base64.RawURLEncoding.EncodeToString
	tok := enc([]byte(`{"alg":"RS256","typ":"JWT"}`)) + "." + enc([]byte(`{"tid":"`+rt.tid+`","uti":"`+time.Now().String()+`"}`)) + "." + enc([]byte("not a signature"))
	rt.mu.Lock()
	rt.forged = append(rt.forged, tok)
	rt.mu.Unlock()
	m["access_token"] = tok
	body, _ = json.Marshal(m)
	resp.Body = io.NopCloser(bytes.NewReader(body))
	resp.ContentLength = int64(len(body))
	resp.Header.Del("Content-Length")
	return resp, nil
}

func (rt *liarTransport) isForged(tok string) bool {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	for _, f := range rt.forged {
		if f == tok {
			return true
		}
	}
	return false
}

// A hostile (forged) answer for fabrikam's domain claims contoso's GUID as
// its tid. Fabrikam's offboarding then costs contoso at most an eviction
// and one token request: contoso never fails fast on fabrikam's refusal,
// is never served fabrikam's token (nor fabrikam contoso's), and
// ForgetTenant by fabrikam's domain costs contoso at most a request.
func TestHostileTidCostsTheVictimAtMostARequest(t *testing.T) {
	const fabrikam = "fabrikam.onmicrosoft.com"
	rt := &liarTransport{tenant: fabrikam, tid: scenario.DemoContosoTenant}
	w := newRefusalWorld(t, nil, func(o *kvassert.CredentialOptions) {
		rt.next = o.ClientOptions.Transport
		o.ClientOptions.Transport = rt
	})
	ctx := context.Background()
	victim, err := w.Cred.GetToken(ctx, byGUID)
	if err != nil {
		t.Fatal(err)
	}
	forged, err := w.Cred.GetToken(ctx, scopeOpts(fabrikam, testfixture.Graph))
	if err != nil || !rt.isForged(forged.Token) {
		t.Fatalf("fabrikam's forged token: %v", err)
	}
	// Fabrikam removes the app.
	if err := w.Emu.SetConsent(scenario.DemoAppClientID, emuhook.DemoFabrikamTenant, false); err != nil {
		t.Fatal(err)
	}
	_, err = w.Cred.GetToken(ctx, vaultBy(fabrikam))
	authErr(t, err, 700016)
	for i := 0; i < 3; i++ {
		tok, err := w.Cred.GetToken(ctx, byGUID)
		if err != nil {
			t.Fatalf("contoso refused after fabrikam's refusal: %v", err)
		}
		if rt.isForged(tok.Token) {
			t.Fatal("contoso was served fabrikam's token")
		}
		if tok.Token != victim.Token {
			victim = tok // the one extra request after the eviction
		}
	}
	if _, err := w.Cred.GetToken(ctx, vaultBy(scenario.DemoContosoTenant)); err != nil {
		t.Fatalf("contoso by another scope: %v", err)
	}
	reqs := w.requests()
	if err := w.Cred.ForgetTenant(ctx, fabrikam); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Cred.GetToken(ctx, byGUID); err != nil {
		t.Fatal(err)
	}
	if got := w.requests(); got > reqs+1 {
		t.Fatalf("%d token requests for contoso after ForgetTenant(fabrikam), want at most 1", got-reqs)
	}
	// Fabrikam by domain is refused, never served contoso's token.
	if tok, err := w.Cred.GetToken(ctx, scopeOpts(fabrikam, testfixture.Graph)); err == nil && !rt.isForged(tok.Token) {
		t.Fatal("fabrikam's domain was served a token that was not its own answer")
	}
}

// With a SharedCache, the offboarding reaches the tokens the fleet holds
// under the other names: a refused GUID's refusal is shared under its
// domain (whose shared tokens are then no longer served, and which fails
// fast on every replica); a refused domain's GUID is forgotten there (its
// shared tokens are no longer served; it is never refused on the domain's
// word).
func TestOffboardingReachesTheSharedCacheOfEveryName(t *testing.T) {
	for _, refused := range []string{scenario.DemoContosoTenant, contosoDomain} {
		t.Run(refused, func(t *testing.T) {
			shc := newMemRefusals()
			w := newRefusalWorld(t, nil, func(o *kvassert.CredentialOptions) { o.SharedCache = shc })
			bothNames(t, w.Cred)
			if err := w.Emu.SetConsent(scenario.DemoAppClientID, scenario.DemoContosoTenant, false); err != nil {
				t.Fatal(err)
			}
			_, err := w.Cred.GetToken(context.Background(), vaultBy(refused))
			authErr(t, err, 700016)
			if _, ok := shc.get(refused); !ok {
				t.Fatal("the refusal was not shared")
			}
			if refused == scenario.DemoContosoTenant {
				if r, ok := shc.get(contosoDomain); !ok || r.Code != 700016 {
					t.Fatalf("the domain's shared entry: %+v %v, want the GUID's refusal", r, ok)
				}
				return
			}
			if _, ok := shc.get(scenario.DemoContosoTenant); ok {
				t.Fatal("the GUID was refused on the domain's word")
			}
			shc.mu.Lock()
			defer shc.mu.Unlock()
			for _, k := range shc.forgot {
				if k == tenantSharedKey(scenario.DemoContosoTenant) {
					return
				}
			}
			t.Fatalf("the GUID's shared tokens were not forgotten: %v", shc.forgot)
		})
	}
}

// A token for the domain issued just before the customer removed the app,
// answered after the GUID's refusal was remembered, goes to its caller but
// is not cached, also when it is the token that teaches the alias.
func TestDomainTokenIssuedBeforeTheGUIDsOffboardingIsNotCached(t *testing.T) {
	w, ht := newHeldWorld(t)
	ctx := context.Background()
	if _, err := w.Cred.GetToken(ctx, byGUID); err != nil {
		t.Fatal(err)
	}
	late := ht.holdToken(ctx, w.Cred, byDomain) // issued; the customer removes the app now
	if err := w.Emu.SetConsent(scenario.DemoAppClientID, scenario.DemoContosoTenant, false); err != nil {
		t.Fatal(err)
	}
	_, err := w.Cred.GetToken(ctx, vaultBy(scenario.DemoContosoTenant))
	authErr(t, err, 700016)
	close(ht.release)
	if err := <-late; err != nil {
		t.Fatalf("the caller of the token issued before: %v", err)
	}
	if n := rootaccess.CredentialStats(w.Cred).CachedTokens; n != 0 {
		t.Fatalf("%d tokens cached for the removed tenant", n)
	}
	_, err = w.Cred.GetToken(ctx, byDomain)
	if ae := authErr(t, err, 700016); ae.RefusedUntil.IsZero() {
		t.Fatal("the domain is not failing fast")
	}
}
