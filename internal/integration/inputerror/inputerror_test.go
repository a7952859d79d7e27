// Package inputerror holds the one table test over every exported
// constructor of kvassert's public packages (the fleet's included, which is
// why it lives in this test-only module): bad input is a
// *kvassert.InputError that names the parameter, before any network call,
// and never quotes a secret.
package inputerror

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"go/ast"
	"go/parser"
	"go/token"
	"math/big"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/AzureAD/microsoft-authentication-library-for-go/apps/confidential"

	"github.com/kvassert/kvassert"
	"github.com/kvassert/kvassert/assertion"
	"github.com/kvassert/kvassert/fleet"
	"github.com/kvassert/kvassert/keyvault"
	"github.com/kvassert/kvassert/kvasserttest"
	"github.com/kvassert/kvassert/kvasserttest/scenario"
	"github.com/kvassert/kvassert/proxy"
	"github.com/kvassert/kvassert/rotation"
)

// secret is a value that must never appear in an error.
const secret = "SECRETMARKER-do-not-echo"

// staticCred is a credential that is never called: every row fails first.
type staticCred struct{}

func (staticCred) GetToken(context.Context, policy.TokenRequestOptions) (azcore.AccessToken, error) {
	return azcore.AccessToken{}, errors.New("staticCred: not for use")
}

type nopSource struct{}

func (nopSource) Assertion(context.Context, string, string) (string, error) { return "", nil }

func selfSigned(t *testing.T) (*x509.Certificate, *rsa.PrivateKey) {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "table"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return cert, key
}

// row is one bad call: fn names the exported function ("pkg.Func"), input
// the parameter the error must name (in Input and in the message).
type row struct {
	fn, input string
	call      func() error
}

func rows(t *testing.T) []row {
	cert, key := selfSigned(t)
	ctx := context.Background()
	goodSrc := nopSource{}
	cred, err := kvassert.NewCredential("contoso.onmicrosoft.com", "6d2f4a8b-1c3e-4f5a-9b7d-2e4f6a8c0b16", goodSrc, nil)
	if err != nil {
		t.Fatal(err)
	}
	e := func(_ any, err error) error { return err }
	return []row{
		{"kvassert.NewCredential", "tenant", func() error {
			return e(kvassert.NewCredential("not a tenant/"+secret, "6d2f4a8b-1c3e-4f5a-9b7d-2e4f6a8c0b16", goodSrc, nil))
		}},
		{"kvassert.NewCredential", "client", func() error { return e(kvassert.NewCredential("contoso.onmicrosoft.com", secret, goodSrc, nil)) }},
		{"kvassert.NewCredential", "src", func() error {
			return e(kvassert.NewCredential("contoso.onmicrosoft.com", "6d2f4a8b-1c3e-4f5a-9b7d-2e4f6a8c0b16", nil, nil))
		}},
		{"kvassert.NewKeyVaultCertificateSource", "vault URL", func() error {
			return e(kvassert.NewKeyVaultCertificateSource("http://kv.vault.azure.net/?"+secret, "c", staticCred{}, nil))
		}},
		{"kvassert.NewKeyVaultCertificateSource", "cred", func() error {
			return e(kvassert.NewKeyVaultCertificateSource("https://kv.vault.azure.net/", "c", nil, nil))
		}},
		{"kvassert.NewKeyVaultKeySource", "key ID", func() error {
			return e(kvassert.NewKeyVaultKeySource("https://contoso-kv.vault.azure.net/secrets/x", cert, staticCred{}, nil))
		}},
		{"kvassert.NewLocalSource", "cert", func() error { return e(kvassert.NewLocalSource(nil, key, nil)) }},
		{"kvassert.NewManagedIdentitySource", "ClientID", func() error {
			return e(kvassert.NewManagedIdentitySource(&kvassert.ManagedIdentityOptions{ClientID: secret}))
		}},
		{"kvassert.NewMSALCredential", "src", func() error { return e(kvassert.NewMSALCredential(nil)) }},
		{"kvassert.WrapSource", "inner", func() error { return e(kvassert.WrapSource(nil, goodSrc.Assertion)) }},
		{"kvassert.ForTenant", "tenant", func() error { return e(kvassert.ForTenant(cred, "not a tenant/"+secret)) }},
		{"kvassert.Credential.ForgetTenant", "tenant", func() error { return cred.ForgetTenant(ctx, "not a tenant/"+secret) }},
		{"kvassert.ParseCertificateData", "data", func() error {
			_, _, err := kvassert.ParseCertificateData([]byte("not a certificate "+secret), nil)
			return err
		}},
		{"kvassert.AcquireWithFeedback", "src", func() error {
			return e(kvassert.AcquireWithFeedback(ctx, nil, func(context.Context) (confidential.AuthResult, error) {
				return confidential.AuthResult{}, nil
			}))
		}},
		{"assertion.New", "Lifetime", func() error {
			return e(assertion.New(cert, key, &assertion.Options{Lifetime: 5 * time.Hour}))
		}},
		{"keyvault.NewSigner", "key ID", func() error {
			return e(keyvault.NewSigner(ctx, "https://kv.vault.azure.net/certificates/x?"+secret, staticCred{}, nil))
		}},
		{"rotation.New", "ObjectID", func() error {
			return e(rotation.New("https://kv.vault.azure.net/", "c", staticCred{},
				rotation.Application{TenantID: "contoso.onmicrosoft.com", ClientID: "6d2f4a8b-1c3e-4f5a-9b7d-2e4f6a8c0b16", ObjectID: "6d2f4a8b-1c3e-4f5a-9b7d-2e4f6a8c0b16"}, nil))
		}},
		{"proxy.New", "Addr", func() error { return e(proxy.New(&proxy.Options{Addr: "0.0.0.0:1"})) }},
		{"fleet.NewClient", "URL", func() error { return e(fleet.NewClient("http://user:" + secret + "@cache:6379")) }},
		{"fleet.NewKey", "secret", func() error { return e(fleet.NewKey("k1", []byte("short"))) }},
		{"fleet.KeyFromBase64", "b64", func() error { return e(fleet.KeyFromBase64("k1", secret)) }},
		{"fleet.NewCache", "client", func() error { return e(fleet.NewCache(nil, nil, nil)) }},
		{"fleet.NewThrottle", "client", func() error { return e(fleet.NewThrottle(nil, "kv.vault.azure.net", nil)) }},
		{"fleet.LoadDataKey", "vault", func() error { return e(fleet.LoadDataKey(ctx, nil, nil, "kek", nil)) }},
		{"fleet.SealDataKey", "vault", func() error {
			_, _, err := fleet.SealDataKey(ctx, nil, "kek", nil)
			return err
		}},
		// A scenario's bad values are quoted with their field path (they are
		// IDs and names, not secrets; secrets in a scenario are never quoted).
		{"kvasserttest.New", "scenario", func() error {
			return e(kvasserttest.New(&scenario.Scenario{Tenants: []scenario.Tenant{{ID: "not-a-guid"}}}, nil))
		}},
		{"scenario.Parse", "scenario", func() error { return e(scenario.Parse([]byte(`{"tenants":[{"id":"not-a-guid"}]}`))) }},
		{"scenario.Load", "scenario", func() error {
			path := filepath.Join(t.TempDir(), "world.json")
			if err := os.WriteFile(path, []byte(`{"apps":[{"clientId":"not-a-guid","secrets":["`+secret+`"]}]}`), 0o600); err != nil {
				t.Fatal(err)
			}
			return e(scenario.Load(path))
		}},
	}
}

func TestInputErrorTable(t *testing.T) {
	for _, r := range rows(t) {
		err := r.call()
		var ie *kvassert.InputError
		switch {
		case err == nil:
			t.Errorf("%s (bad %s): no error", r.fn, r.input)
		case !errors.As(err, &ie):
			t.Errorf("%s (bad %s): %T is not a *kvassert.InputError: %v", r.fn, r.input, err, err)
		case !strings.Contains(strings.ToLower(ie.Input), strings.ToLower(r.input)):
			t.Errorf("%s: Input = %q, want it to name %q (%v)", r.fn, ie.Input, r.input, err)
		case !strings.Contains(strings.ToLower(err.Error()), strings.ToLower(r.input)) && !strings.Contains(strings.ToLower(err.Error()), strings.ToLower(ie.Input)):
			t.Errorf("%s: message %q does not name the parameter", r.fn, err)
		}
		if err != nil && strings.Contains(err.Error(), secret) {
			t.Errorf("%s: the error quotes the bad value: %v", r.fn, err)
		}
	}
}

// exempt are exported functions that take no input a caller can get wrong.
var exempt = map[string]string{
	"scenario.Demo":      "no parameters",
	"kvasserttest.NewTB": "kvasserttest.New with t.Fatal: the New rows cover it",
}

// TestInputErrorTableIsComplete: every exported function of the public
// packages that returns an error has a row above (or an exemption with a
// reason), so a new constructor cannot skip the promise.
func TestInputErrorTableIsComplete(t *testing.T) {
	have := map[string]bool{}
	for _, r := range rows(t) {
		have[r.fn] = true
	}
	_, file, _, _ := runtime.Caller(0)
	root := filepath.Join(filepath.Dir(file), "..", "..", "..")
	for dir, name := range map[string]string{".": "kvassert", "assertion": "assertion", "keyvault": "keyvault", "rotation": "rotation",
		"proxy": "proxy", "fleet": "fleet", "kvasserttest": "kvasserttest", "kvasserttest/scenario": "scenario", "telemetry": "telemetry"} {
		fset := token.NewFileSet()
		pkgs, err := parser.ParseDir(fset, filepath.Join(root, dir), func(fi os.FileInfo) bool { return !strings.HasSuffix(fi.Name(), "_test.go") }, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range pkgs {
			for _, f := range p.Files {
				for _, d := range f.Decls {
					fd, ok := d.(*ast.FuncDecl)
					if !ok || fd.Recv != nil || !fd.Name.IsExported() {
						continue
					}
					key := name + "." + fd.Name.Name
					if have[key] || exempt[key] != "" {
						continue
					}
					t.Errorf("%s has no row in TestInputErrorTable (bad input must be an InputError naming the parameter)", key)
				}
			}
		}
	}
}
