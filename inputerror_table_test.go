package kvassert_test

import (
	"context"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/cloud"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"

	"github.com/kvassert/kvassert"
)

// inputSecret is put into bad input where a value could be echoed: no
// error may repeat it.
const inputSecret = "SECRETMARKER-not-echoed"

// nopVaultCred is a vault credential that must never be called: all these
// inputs are refused before any network call.
type nopVaultCred struct{ t *testing.T }

func (c nopVaultCred) GetToken(context.Context, policy.TokenRequestOptions) (azcore.AccessToken, error) {
	c.t.Error("a credential was called for input that should have been refused")
	return azcore.AccessToken{}, context.Canceled
}

// noShare is a SharedCache for the row that needs one.
type noShare struct{}

func (noShare) Token(ctx context.Context, _ kvassert.SharedKey, _ azcore.AccessToken, acquire func(context.Context) (azcore.AccessToken, error)) (azcore.AccessToken, error) {
	return acquire(ctx)
}

// TestInputErrorTable: every exported constructor and option of package
// kvassert refuses bad input with an *InputError whose message names the
// parameter, before any network call, and never repeats a secret.
func TestInputErrorTable(t *testing.T) {
	const (
		tenant = "00000000-0000-0000-0000-0000000000a1"
		client = "00000000-0000-0000-0000-0000000000c1"
		vault  = "https://myvault.vault.azure.net/"
		keyID  = "https://myvault.vault.azure.net/keys/k/0123456789abcdef0123456789abcdef"
	)
	certPEM, keyPEM, cert := localCertificate(t)
	kb, _ := pem.Decode(keyPEM)
	key, err := x509.ParsePKCS8PrivateKey(kb.Bytes)
	if err != nil {
		k1, err1 := x509.ParsePKCS1PrivateKey(kb.Bytes)
		if err1 != nil {
			t.Fatal(err)
		}
		key = k1
	}
	signer := key.(*rsa.PrivateKey)
	src, err := kvassert.NewLocalSource(cert, signer, nil)
	if err != nil {
		t.Fatal(err)
	}
	cred, err := kvassert.NewCredential(tenant, client, src, nil)
	if err != nil {
		t.Fatal(err)
	}
	vc := nopVaultCred{t}
	get := func(o policy.TokenRequestOptions) error {
		_, err := cred.GetToken(context.Background(), o)
		return err
	}
	graph := []string{"https://graph.microsoft.com/.default"}
	rows := []struct {
		name, param string
		err         error
	}{
		// NewCredential and its options.
		{"NewCredential nil Source", "src", errOf(kvassert.NewCredential(tenant, client, nil, nil))},
		{"NewCredential tenant", "tenant", errOf(kvassert.NewCredential("bad/"+inputSecret, client, src, nil))},
		{"NewCredential tenant alias", "tenant", errOf(kvassert.NewCredential("common", client, src, nil))},
		{"NewCredential client ID", "client ID", errOf(kvassert.NewCredential(tenant, inputSecret, src, nil))},
		{"AdditionallyAllowedTenants", "AdditionallyAllowedTenants", errOf(kvassert.NewCredential(tenant, client, src,
			&kvassert.CredentialOptions{AdditionallyAllowedTenants: []string{"a b" + inputSecret}}))},
		{"Cloud http", "Cloud", errOf(kvassert.NewCredential(tenant, client, src, &kvassert.CredentialOptions{
			ClientOptions: policy.ClientOptions{Cloud: cloud.Configuration{ActiveDirectoryAuthorityHost: "http://login.example/"}}}))},
		{"Cloud user info", "Cloud", errOf(kvassert.NewCredential(tenant, client, src, &kvassert.CredentialOptions{
			ClientOptions: policy.ClientOptions{Cloud: cloud.Configuration{ActiveDirectoryAuthorityHost: "https://u:" + inputSecret + "@login.example/"}}}))},
		{"SharedCache without identity", "SharedCache", errOf(kvassert.NewCredential(tenant, client, nopSource{},
			&kvassert.CredentialOptions{SharedCache: noShare{}}))},
		// GetToken.
		{"GetToken no scope", "scope", get(policy.TokenRequestOptions{})},
		{"GetToken two scopes", "scope", get(policy.TokenRequestOptions{Scopes: []string{graph[0], graph[0]}})},
		{"GetToken scope without /.default", "scope", get(policy.TokenRequestOptions{Scopes: []string{"https://graph.microsoft.com/User.Read"}})},
		{"GetToken scope with space", "scope", get(policy.TokenRequestOptions{Scopes: []string{"a b"}})},
		{"GetToken tenant", "tenant", get(policy.TokenRequestOptions{TenantID: "bad/tenant", Scopes: graph})},
		{"GetToken tenant not allowed", "tenant", get(policy.TokenRequestOptions{TenantID: "00000000-0000-0000-0000-0000000000a2", Scopes: graph})},
		{"GetToken claims", "claims", get(policy.TokenRequestOptions{Scopes: graph, Claims: "not json " + inputSecret})},
		{"ForTenant", "tenant", errOf(kvassert.ForTenant(cred, "organizations"))},
		// ForgetTenant.
		{"ForgetTenant empty", "tenant", cred.ForgetTenant(context.Background(), "")},
		{"ForgetTenant alias", "tenant", cred.ForgetTenant(context.Background(), "organizations")},
		{"ForgetTenant bad", "tenant", cred.ForgetTenant(context.Background(), "bad/"+inputSecret)},
		{"ForgetTenant not allowed", "tenant", cred.ForgetTenant(context.Background(), "00000000-0000-0000-0000-0000000000a2")},
		{"ForgetTenant nil ctx", "ctx", cred.ForgetTenant(nil, tenant)}, //nolint:staticcheck // the nil context is the bad input
		// Sources.
		{"NewMSALCredential nil Source", "src", errOf(kvassert.NewMSALCredential(nil))},
		{"WrapSource nil inner", "inner", errOf(kvassert.WrapSource(nil, src.Assertion))},
		{"WrapSource nil assertion", "assertion", errOf(kvassert.WrapSource(src, nil))},
		{"NewKeyVaultCertificateSource vault URL", "vault URL", errOf(kvassert.NewKeyVaultCertificateSource("http://myvault.vault.azure.net/?sig="+inputSecret, "c", vc, nil))},
		{"NewKeyVaultCertificateSource name", "name", errOf(kvassert.NewKeyVaultCertificateSource(vault, "../secrets/x", vc, nil))},
		{"NewKeyVaultCertificateSource nil cred", "cred", errOf(kvassert.NewKeyVaultCertificateSource(vault, "c", nil, nil))},
		{"KeyVaultCertificateOptions.Algorithm", "Algorithm", errOf(kvassert.NewKeyVaultCertificateSource(vault, "c", vc, &kvassert.KeyVaultCertificateOptions{Algorithm: "HS256"}))},
		{"KeyVaultCertificateOptions.Lifetime", "Lifetime", errOf(kvassert.NewKeyVaultCertificateSource(vault, "c", vc, &kvassert.KeyVaultCertificateOptions{Lifetime: time.Second}))},
		{"KeyVaultCertificateOptions.MaxThrottleWait", "MaxThrottleWait", errOf(kvassert.NewKeyVaultCertificateSource(vault, "c", vc, &kvassert.KeyVaultCertificateOptions{MaxThrottleWait: -time.Second}))},
		{"KeyVaultCertificateOptions loopback", "vault URL", errOf(kvassert.NewKeyVaultCertificateSource("https://127.0.0.1:8443/", "c", vc, nil))},
		{"NewKeyVaultKeySource key ID", "key ID", errOf(kvassert.NewKeyVaultKeySource(vault+"secrets/x", cert, vc, nil))},
		{"NewKeyVaultKeySource nil cert", "cert", errOf(kvassert.NewKeyVaultKeySource(keyID, nil, vc, nil))},
		{"NewKeyVaultKeySource nil cred", "cred", errOf(kvassert.NewKeyVaultKeySource(keyID, cert, nil, nil))},
		{"KeyVaultKeyOptions.Thumbprint and cert", "Thumbprint", errOf(kvassert.NewKeyVaultKeySource(keyID, cert, vc, &kvassert.KeyVaultKeyOptions{Thumbprint: strings.Repeat("ab", 20)}))},
		{"KeyVaultKeyOptions.Thumbprint", "thumbprint", errOf(kvassert.NewKeyVaultKeySource(keyID, nil, vc, &kvassert.KeyVaultKeyOptions{Thumbprint: "zz"}))},
		{"KeyVaultKeyOptions.Algorithm", "Algorithm", errOf(kvassert.NewKeyVaultKeySource(keyID, cert, vc, &kvassert.KeyVaultKeyOptions{Algorithm: "none"}))},
		{"KeyVaultKeyOptions.Lifetime", "Lifetime", errOf(kvassert.NewKeyVaultKeySource(keyID, cert, vc, &kvassert.KeyVaultKeyOptions{Lifetime: 24 * time.Hour}))},
		{"ManagedIdentityOptions.ClientID", "ClientID", errOf(kvassert.NewManagedIdentitySource(&kvassert.ManagedIdentityOptions{ClientID: inputSecret}))},
		{"ManagedIdentityOptions.Audience", "Audience", errOf(kvassert.NewManagedIdentitySource(&kvassert.ManagedIdentityOptions{Audience: "api://x y"}))},
		{"NewLocalSource nil cert", "cert", errOf(kvassert.NewLocalSource(nil, signer, nil))},
		{"NewLocalSource nil signer", "signer", errOf(kvassert.NewLocalSource(cert, nil, nil))},
		{"LocalCertificateOptions.Algorithm", "Algorithm", errOf(kvassert.NewLocalSource(cert, signer, &kvassert.LocalCertificateOptions{Algorithm: "ES256"}))},
		{"LocalCertificateOptions.Lifetime", "Lifetime", errOf(kvassert.NewLocalSource(cert, signer, &kvassert.LocalCertificateOptions{Lifetime: -time.Minute}))},
		{"ParseCertificateData empty", "certificate data", errOf2(kvassert.ParseCertificateData(nil, nil))},
		{"ParseCertificateData no key", "certificate data", errOf2(kvassert.ParseCertificateData(certPEM, []byte(inputSecret)))},
	}
	for _, r := range rows {
		var ie *kvassert.InputError
		switch {
		case r.err == nil:
			t.Errorf("%s: accepted", r.name)
		case !errors.As(r.err, &ie):
			t.Errorf("%s: %T %v is not an *InputError", r.name, r.err, r.err)
		case ie.Package == "kvassert" && !strings.Contains(strings.ToLower(r.err.Error()), strings.ToLower(r.param)):
			// (keyvault's and assertion's checks, which the sources call,
			// name it in Input; their wording is theirs.)
			t.Errorf("%s: %q does not name the parameter %q", r.name, r.err, r.param)
		case !strings.Contains(strings.ToLower(r.err.Error()+" "+ie.Input), strings.ToLower(r.param)):
			t.Errorf("%s: %q does not name the parameter %q", r.name, r.err, r.param)
		case strings.Contains(r.err.Error(), inputSecret):
			t.Errorf("%s: %q repeats a secret", r.name, r.err)
		}
	}
}

func (noShare) Refuse(context.Context, kvassert.SharedKey, kvassert.TenantRefusal) error { return nil }
func (noShare) Refusal(context.Context, kvassert.SharedKey) (kvassert.TenantRefusal, bool, error) {
	return kvassert.TenantRefusal{}, false, nil
}
func (noShare) Forget(context.Context, kvassert.SharedKey) error { return nil }
