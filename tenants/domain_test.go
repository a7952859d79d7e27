package tenants_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/kvassert/kvassert/internal/emuhook"
	"github.com/kvassert/kvassert/tenants"
)

// A customer checked by domain before its consent (refused, and the
// refusal remembered under the domain) is healthy by domain right after a
// consent through a link made for that domain: the Handler forgets the
// refusal under the domain as well as under the tenant ID Entra's redirect
// names. Before, the domain kept failing fast with app_not_found for up to
// RefusedTenantRetry while the tenant ID said ok.
func TestConsentByDomainClearsTheDomainsRefusal(t *testing.T) {
	w := world(t, nil)
	const domain = "tailspin.onmicrosoft.com"
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	before, err := tenants.Check(ctx, w.Cred, domain, nil)
	if err != nil || before.State != "app_not_found" {
		t.Fatalf("before the consent: %+v %v", before, err)
	}
	var consented []string
	h, err := tenants.NewHandler(w.Cred, emuhook.DemoRedirectURI, key, func(_ context.Context, c tenants.Consent) error {
		consented = append(consented, c.Tenant)
		return nil
	}, &tenants.HandlerOptions{ProveTimeout: -1})
	if err != nil {
		t.Fatal(err)
	}
	link, err := h.ConsentURL(domain)
	if err != nil {
		t.Fatal(err)
	}
	loc, err := emuhook.SubmitConsent(ctx, w.Emu.Client(), link, "accept", "")
	if err != nil {
		t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, loc.Path+"?"+loc.RawQuery, nil))
	if rec.Code != http.StatusOK || len(consented) != 1 || consented[0] != strings.ToLower(emuhook.DemoTailspinTenant) {
		t.Fatalf("redirect: %d, callback %v", rec.Code, consented)
	}
	after, err := tenants.Check(ctx, w.Cred, domain, nil)
	if err != nil || after.State != tenants.StateOK || !after.RefusedUntil.IsZero() {
		t.Fatalf("after the consent, by domain: %s (refused until %v) %v", after.State, after.RefusedUntil, err)
	}
}
