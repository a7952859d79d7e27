package proxy

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/cloud"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"

	"github.com/kvassert/kvassert"
	"github.com/kvassert/kvassert/kvasserttest/scenario"
)

// Every bad option of New and every bad Target of AppServiceEnv and
// CloudShellEnv is refused with a *kvassert.InputError whose message names
// the option or field, and never quotes a secret.
func TestInputErrorTable(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	notDir := filepath.Join(dir, "file")
	if err := os.WriteFile(notDir, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	badSecret := strings.Repeat("s3cr3t", 8) + "/"
	rows := []struct {
		name  string
		opts  Options
		param string // named in the message
	}{
		{"Addr not host:port", Options{Addr: "nope"}, "Options.Addr"},
		{"Addr not loopback", Options{Addr: "0.0.0.0:5616"}, "Options.Addr"},
		{"Addr a name", Options{Addr: "example.com:80"}, "Options.Addr"},
		{"Secret short", Options{Secret: "short-secret"}, "Options.Secret"},
		{"Secret characters", Options{Secret: badSecret}, "Options.Secret"},
		{"Files name", Options{Files: map[string]string{"a/b": "x.pem"}}, "Options.Files"},
		{"Files empty path", Options{Files: map[string]string{"a": ""}}, "Options.Files"},
		{"Files missing", Options{Files: map[string]string{"a": "/nonexistent/x.pem"}}, "Options.Files"},
		{"Files not a certificate", Options{Files: map[string]string{"a": notDir}}, "Options.Files"},
		{"KeyFiles without Files", Options{KeyFiles: map[string]string{"a": "/k.pem"}}, "Options.KeyFiles"},
		{"FileRoot missing", Options{FileRoot: "/nonexistent/dir"}, "Options.FileRoot"},
		{"FileRoot not a directory", Options{FileRoot: notDir}, "Options.FileRoot"},
		{"DefaultClientID", Options{DefaultClientID: "not-a-guid"}, "Options.DefaultClientID"},
		{"DefaultTenantID", Options{DefaultTenantID: "common"}, "Options.DefaultTenantID"},
		{"DefaultVault name", Options{DefaultVault: "a--b"}, "Options.DefaultVault"},
		{"DefaultVault http", Options{DefaultVault: "http://x.vault.azure.net/"}, "Options.DefaultVault"},
		{"DefaultCertificate", Options{DefaultCertificate: "bad_name"}, "Options.DefaultCertificate"},
		{"Tenants without the app", Options{Tenants: []string{"contoso.com"}}, "Options.Tenants"},
		{"Tenants not a tenant", Options{Tenants: []string{"not a tenant"}}, "Options.Tenants"},
		{"TenantRedirectURI without Tenants", Options{TenantRedirectURI: "https://app.example/consent"}, "Options.TenantRedirectURI"},
		{"TenantRoles without Tenants", Options{TenantRoles: map[string][]string{"https://graph.microsoft.com": {"A"}}}, "Options.TenantRoles"},
		{"Cloud not https", Options{ClientOptions: policy.ClientOptions{Cloud: cloud.Configuration{ActiveDirectoryAuthorityHost: "http://login.example/"}}}, "Options.ClientOptions.Cloud"},
	}
	for _, r := range rows {
		r.opts.Logger = discardLogger()
		_, err := New(&r.opts)
		checkInputError(t, r.name, err, r.param, badSecret)
	}

	s, err := New(&Options{Logger: discardLogger()})
	if err != nil {
		t.Fatal(err)
	}
	app, tenant := scenario.DemoAppClientID, scenario.DemoContosoTenant
	targets := []struct {
		name   string
		target Target
		param  string
	}{
		{"empty", Target{}, "Target.Tenant"},
		{"tenant", Target{Tenant: "common", ClientID: app, File: "x"}, "Target.Tenant"},
		{"client ID", Target{Tenant: tenant, ClientID: "x", Vault: scenario.DemoVault, Certificate: "c"}, "Target.ClientID"},
		{"file", Target{Tenant: tenant, ClientID: app, File: "nope"}, "Target.File"},
		{"vault", Target{Tenant: tenant, ClientID: app, Vault: "a/b", Certificate: "c"}, "Target.Vault"},
		{"certificate", Target{Tenant: tenant, ClientID: app, Vault: scenario.DemoVault, Certificate: "bad_name"}, "Target.Certificate"},
		{"nothing", Target{Tenant: tenant, ClientID: app}, "Target"},
		{"forward off", Target{Forward: true}, "Target.Forward"},
	}
	// Serve refuses a listener on every interface without AllowRemote.
	if ln, err := net.Listen("tcp", "0.0.0.0:0"); err == nil {
		checkInputError(t, "Serve on 0.0.0.0", s.Serve(context.Background(), ln), "ln", s.Secret())
		ln.Close()
	}
	for _, r := range targets {
		_, err := s.AppServiceEnv("http://127.0.0.1:5616", r.target)
		checkInputError(t, "AppServiceEnv "+r.name, err, r.param, s.Secret())
		_, err = s.CloudShellEnv("http://127.0.0.1:5616", r.target)
		checkInputError(t, "CloudShellEnv "+r.name, err, r.param, s.Secret())
	}
}

func checkInputError(t *testing.T, name string, err error, param, secret string) {
	t.Helper()
	var ie *kvassert.InputError
	switch {
	case err == nil:
		t.Errorf("%s: accepted", name)
	case !errors.As(err, &ie):
		t.Errorf("%s: %T %v, want a *kvassert.InputError", name, err, err)
	case !strings.Contains(err.Error(), param):
		t.Errorf("%s: %q does not name %s", name, err, param)
	case strings.Contains(err.Error(), secret):
		t.Errorf("%s: the message quotes the secret", name)
	}
}

// The option's documentation promises 7 days.
func TestTLSCertificateLifetime(t *testing.T) {
	if tlsCertificateLifetime != 7*24*time.Hour {
		t.Errorf("tlsCertificateLifetime %v; Options.AllowRemote and kvassert proxy say 7 days", tlsCertificateLifetime)
	}
}
