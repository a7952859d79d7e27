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
	return func(c *Config, _ *kvasserttest.Emulator) {
		c.Default = PageDefault{ClientID: strings.ToUpper(scenario.DemoAppClientID), TenantID: scenario.DemoContosoTenant,
			Vault: vault, Certificate: scenario.DemoCertificate}
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
	for _, d := range []PageDefault{
		{ClientID: "not-a-guid"},
		{TenantID: "common"},
		{Vault: "a--b"},
		{Vault: "http://x.vault.azure.net/"},
		{Vault: "https://127.0.0.1:8443/"},
		{Certificate: "bad_name"},
	} {
		if _, err := New(Config{Logger: discardLogger(), Default: d}); err == nil || !strings.Contains(err.Error(), "Default.") {
			t.Errorf("default %+v: %v, want an error naming the field", d, err)
		}
	}
}
