package proxy

import (
	"net/http"
	"strings"
	"testing"

	"github.com/kvassert/kvassert/kvasserttest"
	"github.com/kvassert/kvassert/kvasserttest/scenario"
)

// withDefault starts the proxy for the demo app, as "kvassert proxy
// --client-id --tenant --vault --cert" does.
func withDefault(vault string) envOption {
	return func(c *Options, _ *kvasserttest.Emulator) {
		c.DefaultClientID, c.DefaultTenantID = strings.ToUpper(scenario.DemoAppClientID), scenario.DemoContosoTenant
		c.DefaultVault, c.DefaultCertificate = vault, scenario.DemoCertificate
	}
}

func TestAPIConfig(t *testing.T) {
	t.Parallel()
	demoURL := "https://" + scenario.DemoVault + ".vault.azure.net/"
	for _, vault := range []string{scenario.DemoVault, strings.ToUpper(scenario.DemoVault), demoURL} {
		env := newEnv(t, withDefault(vault))
		got := decode[pageConfig](t, env.do("GET", "/api/config", "", nil, "Authorization", "Bearer "+env.s.Secret()), http.StatusOK)
		if got.ClientID != scenario.DemoAppClientID || got.TenantID != scenario.DemoContosoTenant ||
			got.KeyVaultURI != demoURL || got.CertificateName != scenario.DemoCertificate || got.Files == nil {
			t.Errorf("vault %q: config %+v", vault, got)
		}
	}
	// Behind the secret, like all data.
	env := newEnv(t)
	if p := problemOf(t, env.do("GET", "/api/config", "", nil), http.StatusUnauthorized); p.Status != http.StatusUnauthorized {
		t.Errorf("without the secret: %+v", p)
	}
	// Nothing configured: empty fields.
	got := decode[pageConfig](t, env.do("GET", "/api/config", "", nil, "X-Kvassert-Secret", env.s.Secret()), http.StatusOK)
	if got.ClientID != "" || got.KeyVaultURI != "" || len(got.Files) != 0 {
		t.Errorf("empty config %+v", got)
	}
}

func TestPageDefaultRefused(t *testing.T) {
	t.Parallel()
	for _, d := range []Options{
		{DefaultClientID: "not-a-guid"},
		{DefaultTenantID: "common"},
		{DefaultVault: "a--b"},
		{DefaultVault: "http://x.vault.azure.net/"},
		{DefaultVault: "https://127.0.0.1:8443/"},
		{DefaultCertificate: "bad_name"},
	} {
		d.Logger = discardLogger()
		if _, err := New(&d); err == nil || !strings.Contains(err.Error(), "Options.Default") {
			t.Errorf("default %+v: %v, want an error naming the field", d, err)
		}
	}
}
