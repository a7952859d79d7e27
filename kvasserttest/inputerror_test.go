package kvasserttest_test

import (
	"crypto/x509"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/kvassert/kvassert/internal/emuhook"
	"github.com/kvassert/kvassert/internal/inputerr"
	"github.com/kvassert/kvassert/kvasserttest"
	"github.com/kvassert/kvassert/kvasserttest/scenario"
)

// TestInputErrorTable: every constructor and setter of kvasserttest and
// scenario refuses bad input with an *inputerr.Error (kvassert.InputError)
// whose message names the parameter, and never echoes a secret.
func TestInputErrorTable(t *testing.T) {
	e := kvasserttest.NewTB(t, nil, nil)
	cert, err := e.Certificate(scenario.DemoVault, scenario.DemoCertificate)
	if err != nil {
		t.Fatal(err)
	}
	other := &x509.Certificate{Raw: []byte("not registered"), PublicKey: cert.PublicKey}
	badScenario := scenario.Demo()
	badScenario.Tenants[0].ID = "not-a-guid"
	badVault := scenario.Demo()
	badVault.Vaults[0].Name = "my--vault"
	const secret = "s3cret-value-never-echoed"
	withSecret := scenario.Demo()
	withSecret.Apps[1].Secrets = []string{secret}
	withSecret.Apps[1].HomeTenant = "nowhere"

	const unknownApp = "00000000-0000-4000-8000-000000000000"
	rows := []struct {
		name, param string
		call        func() error
	}{
		{"New: bad tenant ID", "tenants[0].id", func() error { _, err := kvasserttest.New(badScenario, nil); return err }},
		{"New: vault name with --", "vaults[0].name", func() error { _, err := kvasserttest.New(badVault, nil); return err }},
		{"New: Options.Addr not loopback", "Options.Addr", func() error {
			_, err := kvasserttest.New(nil, &kvasserttest.Options{Addr: "192.0.2.1:0"})
			return err
		}},
		{"New: Options.Addr not host:port", "Options.Addr", func() error {
			_, err := kvasserttest.New(nil, &kvasserttest.Options{Addr: "localhost"})
			return err
		}},
		{"New: negative Options.TokenLifetime", "Options.TokenLifetime", func() error {
			_, err := kvasserttest.New(nil, &kvasserttest.Options{TokenLifetime: -time.Second})
			return err
		}},
		{"scenario.Parse: not JSON", "JSON", func() error { _, err := scenario.Parse([]byte("{")); return err }},
		{"scenario.Parse: two values", "JSON", func() error { _, err := scenario.Parse([]byte(`{} {}`)); return err }},
		{"scenario.Validate: app with a secret", "apps[1].homeTenant", func() error { return withSecret.Validate() }},
		{"SetSignLimit: negative", "requests", func() error { return e.SetSignLimit(scenario.DemoVault, -1, time.Second) }},
		{"SetSignLimit: unknown vault", "vaultName", func() error { return e.SetSignLimit("nope", 1, time.Second) }},
		{"Grant: unknown vault", "vaultName", func() error { return e.Grant("nope", unknownApp, "keys/sign") }},
		{"Grant: unknown permission", "permissions", func() error { return e.Grant(scenario.DemoVault, unknownApp, "keys/steal") }},
		{"Grant: empty principal", "principal", func() error { return e.Grant(scenario.DemoVault, "", "keys/sign") }},
		{"Revoke: unknown vault", "vaultName", func() error { return e.Revoke("nope", unknownApp) }},
		{"Certificate: unknown vault", "vaultName", func() error { _, err := e.Certificate("nope", "c"); return err }},
		{"Certificate: unknown certificate", "certName", func() error { _, err := e.Certificate(scenario.DemoVault, "nope"); return err }},
		{"RegisterCertificate: nil cert", "cert", func() error { return e.RegisterCertificate(scenario.DemoAppClientID, nil) }},
		{"RegisterCertificate: unknown app", "clientID", func() error { return e.RegisterCertificate(unknownApp, cert) }},
		{"RemoveCertificate: nil cert", "cert", func() error { return e.RemoveCertificate(scenario.DemoAppClientID, nil) }},
		{"RemoveCertificate: not registered", "cert", func() error { return e.RemoveCertificate(scenario.DemoAppClientID, other) }},
		{"RevokeCertificate: unknown app", "clientID", func() error { return e.RevokeCertificate(unknownApp, cert) }},
		{"RevokeCertificate: not registered", "cert", func() error { return e.RevokeCertificate(scenario.DemoAppClientID, other) }},
		{"SetConsent: unknown app", "clientID", func() error { return e.SetConsent(unknownApp, scenario.DemoContosoTenant, true) }},
		{"SetConsent: unknown tenant", "tenant", func() error { return e.SetConsent(scenario.DemoAppClientID, "nowhere", true) }},
		{"SetConsent: single-tenant app elsewhere", "clientID", func() error { return e.SetConsent(emuhook.DemoWorkloadClientID, scenario.DemoContosoTenant, true) }},
		{"SetGrantedRoles: unknown app", "clientID", func() error { return e.SetGrantedRoles(unknownApp, scenario.DemoContosoTenant, "Sites.Read.All") }},
		{"SetGrantedRoles: unknown tenant", "tenant", func() error { return e.SetGrantedRoles(scenario.DemoAppClientID, "nowhere", "Sites.Read.All") }},
		{"SetGrantedRoles: role with space", "roles", func() error {
			return e.SetGrantedRoles(scenario.DemoAppClientID, scenario.DemoContosoTenant, "Sites Read")
		}},
		{"SetGrantedRoles: empty role", "roles", func() error { return e.SetGrantedRoles(scenario.DemoAppClientID, scenario.DemoContosoTenant, "") }},
		{"SetGrantedRoles: single-tenant app elsewhere", "clientID", func() error {
			return e.SetGrantedRoles(emuhook.DemoWorkloadClientID, scenario.DemoContosoTenant)
		}},
		{"SetServicePrincipalEnabled: unknown app", "clientID", func() error { return e.SetServicePrincipalEnabled(unknownApp, scenario.DemoContosoTenant, false) }},
		{"SetServicePrincipalEnabled: unknown tenant", "tenant", func() error { return e.SetServicePrincipalEnabled(scenario.DemoAppClientID, "nowhere", false) }},
		{"SetServicePrincipalEnabled: not consented", "tenant", func() error {
			return e.SetServicePrincipalEnabled(scenario.DemoAppClientID, emuhook.DemoWingtipTenant, false)
		}},
		{"SetTenantRefusal: unknown code", "code", func() error { return e.SetTenantRefusal(scenario.DemoAppClientID, scenario.DemoContosoTenant, 50011) }},
		{"SetTenantRefusal: unknown app", "clientID", func() error { return e.SetTenantRefusal(unknownApp, scenario.DemoContosoTenant, 90002) }},
		{"SetTenantRefusal: unknown tenant", "tenant", func() error { return e.SetTenantRefusal(scenario.DemoAppClientID, "nowhere", 90002) }},
		{"SetConsentDelay: negative", "d", func() error { return e.SetConsentDelay(-time.Second) }},
		{"ClientSecretCredential: unknown app", "clientID", func() error { _, err := e.ClientSecretCredential(unknownApp); return err }},
		{"ClientSecretCredential: no secret", "clientID", func() error { _, err := e.ClientSecretCredential(scenario.DemoAppClientID); return err }},
		{"AppKeyCredentials: unknown app", "clientID", func() error { _, err := e.AppKeyCredentials(unknownApp); return err }},
		{"GrantAppRoles: unknown app", "clientID", func() error { return e.GrantAppRoles(unknownApp, "Application.Read.All") }},
		{"GrantAppRoles: empty role", "roles", func() error { return e.GrantAppRoles(scenario.DemoAppClientID, "") }},
	}
	for _, r := range rows {
		t.Run(r.name, func(t *testing.T) {
			err := r.call()
			var ie *inputerr.Error
			if !errors.As(err, &ie) {
				t.Fatalf("error %v (%T) is not an *inputerr.Error", err, err)
			}
			if !strings.Contains(err.Error(), r.param) {
				t.Errorf("error %q does not name %s", err, r.param)
			}
			if strings.Contains(err.Error(), secret) || strings.Contains(err.Error(), "demo-workload-secret") {
				t.Errorf("error %q echoes a secret", err)
			}
		})
	}
}
