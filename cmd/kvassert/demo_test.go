package main

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/kvassert/kvassert/internal/emuhook"
	"github.com/kvassert/kvassert/kvasserttest/scenario"
)

func TestDemo(t *testing.T) {
	t.Parallel()
	start := time.Now()
	r := runBin(t, nil, "", []string{"demo"})
	wantOK(t, r)
	if d := time.Since(start); d > 20*time.Second {
		t.Errorf("demo took %v; it should take seconds", d)
	}
	if r.stderr != "" {
		t.Errorf("demo wrote to stderr:\n%s", r.stderr)
	}
	out := r.stdout
	if jwtPattern.MatchString(out) {
		t.Fatalf("demo printed a JWT:\n%s", out)
	}
	for _, want := range []string{
		"Create a certificate", "exportable=false", "EmailContacts", "registered on the app registration",
		"tid " + scenario.DemoContosoTenant, "tid " + emuhook.DemoFabrikamTenant, "tid " + emuhook.DemoNorthwindTenant,
		`"alg":"PS256"`, `"x5t#S256":`, "aud ", "jti ",
		"cached · 0 calls",
		"AADSTS700016", "hint:", "adminconsent?client_id=" + scenario.DemoAppClientID,
		"secrets/get: 0",
		// The rotation chapter: renewed, registered through Graph, switched, old key retired.
		"The vault renews the certificate", "register ", "accepted ", "remove ", "the source switched without a restart",
		"Graph: 1 addKey, 1 removeKey",
		// The onboarding chapter: link with a hidden state, page, Accept, callback, proof with roles.
		"onboards itself through the admin-consent page", "&state=…", `asks the administrator of tailspin for Sites.Read.All, Organization.Read.All`,
		"Accept → 302 " + emuhook.DemoRedirectURI + "?admin_consent=True&tenant=" + emuhook.DemoTailspinTenant,
		"onConsent(" + emuhook.DemoTailspinTenant + ")", "proved    a Graph token in tailspin: ok",
		"granted      Organization.Read.All, Sites.Read.All", "(missing: 0)", "consent page 2",
		// The offboarding chapter: cached, refused once and reported, then fail fast with no call.
		"The customer removes the app from tailspin", "cached      0 calls",
		"TenantOffboarded(" + emuhook.DemoTailspinTenant + ") called once", "log WARN kvassert: Entra refuses the app",
		"3 more calls  refused from memory", "Key Vault: none   Entra ID: none", "check        app_not_found",
		"/" + emuhook.DemoTailspinTenant + "/adminconsent?client_id=" + scenario.DemoAppClientID, "reported once, then refused with no call",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("demo output lacks %q", want)
		}
	}
	// Each cold tenant: exactly one keys/sign.
	// 3 tenants + wingtip's refused request + tailspin's proof + the request that met its removal.
	if n := strings.Count(out, "Key Vault: keys/sign 1 "); n != 6 {
		t.Errorf("found %d per-tenant lines with exactly one keys/sign, want 6:\n%s", n, out)
	}
	if strings.Count(out, "TenantOffboarded(") != 1 || strings.Count(out, "log WARN") != 1 {
		t.Errorf("the offboarding was not reported exactly once:\n%s", out)
	}
	// A consent state is never printed: the only state= in the output is the elided one.
	if strings.Count(out, "state=") != strings.Count(out, "state=…") {
		t.Errorf("demo printed a consent state:\n%s", out)
	}
	if strings.Contains(out, "\x1b[") {
		t.Error("demo printed colours to a pipe")
	}
}

func TestDemoJSON(t *testing.T) {
	t.Parallel()
	r := runBin(t, nil, "", []string{"demo", "-o", "json"})
	wantOK(t, r)
	var rep struct {
		Cold []struct {
			Name     string           `json:"name"`
			TenantID string           `json:"tenantId"`
			TokenTID string           `json:"tokenTid"`
			Calls    map[string]int64 `json:"calls"`
		} `json:"cold"`
		Cached []struct {
			Calls map[string]int64 `json:"calls"`
		} `json:"cached"`
		NoConsent struct {
			AADSTS int    `json:"aadsts"`
			Hint   string `json:"hint"`
		} `json:"noConsent"`
		Assertion struct {
			Header map[string]any `json:"header"`
			Claims map[string]any `json:"claims"`
		} `json:"assertion"`
		Onboarding struct {
			TenantID, Callback, State string
			Granted, Required         []string
			Missing                   []string
			PageStatus                int
			Calls                     map[string]int64 `json:"calls"`
			ConsentRequests           int64            `json:"consentRequests"`
		} `json:"onboarding"`
		Offboarding struct {
			CachedCalls  map[string]int64 `json:"cachedCalls"`
			RefusedCalls map[string]int64 `json:"refusedCalls"`
			FastCalls    map[string]int64 `json:"fastCalls"`
			CheckCalls   map[string]int64 `json:"checkCalls"`
			AADSTS       int
			Reported     int
			Warnings     []string
			RefusedUntil time.Time
			CheckState   string
			ConsentURL   string
		} `json:"offboarding"`
		Rotation struct {
			OldVersion, NewVersion string
			KeysBefore, KeysAfter  int
			Graph                  map[string]int64 `json:"graph"`
		} `json:"rotation"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil {
		t.Fatalf("demo -o json: %v\n%s", err, r.stdout)
	}
	if len(rep.Cold) != 3 || len(rep.Cached) != 3 {
		t.Fatalf("cold %d, cached %d; want 3 and 3", len(rep.Cold), len(rep.Cached))
	}
	for _, c := range rep.Cold {
		if c.Calls["keys/sign"] != 1 || c.Calls["entra/token"] != 1 {
			t.Errorf("%s: calls %v; want exactly 1 keys/sign and 1 token request", c.Name, c.Calls)
		}
		if c.TokenTID != c.TenantID {
			t.Errorf("%s: token tid %s, want %s", c.Name, c.TokenTID, c.TenantID)
		}
	}
	for _, c := range rep.Cached {
		if len(c.Calls) != 0 {
			t.Errorf("cached round made calls: %v", c.Calls)
		}
	}
	if rep.NoConsent.AADSTS != 700016 || !strings.Contains(rep.NoConsent.Hint, "admin consent") {
		t.Errorf("noConsent = %+v", rep.NoConsent)
	}
	if rep.Assertion.Header["alg"] != "PS256" || rep.Assertion.Claims["iss"] != scenario.DemoAppClientID {
		t.Errorf("assertion = %+v", rep.Assertion)
	}
	if ro := rep.Rotation; ro.NewVersion == "" || ro.NewVersion == ro.OldVersion || ro.KeysAfter != ro.KeysBefore ||
		ro.Graph["graph/applications/addKey"] != 1 || ro.Graph["graph/applications/removeKey"] != 1 {
		t.Errorf("rotation = %+v; want a new version registered (1 addKey) and the old key removed (1 removeKey)", ro)
	}
	if on := rep.Onboarding; on.TenantID != emuhook.DemoTailspinTenant || on.Callback != on.TenantID || on.State != "ok" ||
		on.PageStatus != 200 || strings.Join(on.Granted, " ") != "Organization.Read.All Sites.Read.All" ||
		strings.Join(on.Required, " ") != strings.Join(on.Granted, " ") || len(on.Missing) != 0 ||
		on.Calls["keys/sign"] != 1 || on.Calls["entra/token"] != 1 || on.ConsentRequests != 2 {
		t.Errorf("onboarding = %+v", on)
	}
	off := rep.Offboarding
	if len(off.CachedCalls) != 0 || off.RefusedCalls["keys/sign"] != 1 || off.RefusedCalls["entra/token"] != 1 ||
		len(off.FastCalls) != 0 || len(off.CheckCalls) != 0 || off.AADSTS != 700016 || off.Reported != 1 || len(off.Warnings) != 1 ||
		off.RefusedUntil.IsZero() || off.CheckState != "app_not_found" || !strings.Contains(off.ConsentURL, emuhook.DemoTailspinTenant+"/v2.0/adminconsent") ||
		!strings.Contains(off.ConsentURL, "redirect_uri=") {
		t.Errorf("offboarding = %+v", off)
	}
	if jwtPattern.MatchString(r.stdout) || strings.Contains(r.stdout, "state=") {
		t.Error("demo -o json printed a JWT or a consent state")
	}
}
