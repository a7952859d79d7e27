package keyvault_test

import (
	"context"
	"crypto"
	"crypto/rsa"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"

	"github.com/kvassert/kvassert/internal/certcache"
	"github.com/kvassert/kvassert/internal/inputerr"
	"github.com/kvassert/kvassert/internal/testcert"
	"github.com/kvassert/kvassert/internal/testfixture"
	"github.com/kvassert/kvassert/keyvault"
	"github.com/kvassert/kvassert/kvasserttest/scenario"
)

// TestInputErrorTable: input the caller gave and the package (or the
// certificate cache behind kvassert's Key Vault certificate source) refused
// is a typed error (what the CLI and the proxy read with errors.As) naming
// the input, in its Input field and in its message.
func TestInputErrorTable(t *testing.T) {
	w := testfixture.NewWorld(t, &testfixture.WorldOptions{Scenario: world()})
	e, cred := w.Emu, w.VaultCred
	opts := keyvault.SignerOptions{ClientOptions: e.ClientOptions()}
	key := testcert.RSAKey(t, 0)
	keyID := e.VaultURL(scenario.DemoVault) + "keys/signing"
	signer, err := keyvault.NewSigner(context.Background(), keyID, cred, withPublicKey(&opts, &key.PublicKey))
	if err != nil {
		t.Fatal(err)
	}
	newSigner := func(id string, cred azcore.TokenCredential, o *keyvault.SignerOptions) error {
		_, err := keyvault.NewSigner(context.Background(), id, cred, o)
		return err
	}
	newCache := func(vaultURL, name string, cred azcore.TokenCredential, o *certcache.Options) error {
		_, err := certcache.New(vaultURL, name, cred, o)
		return err
	}
	cache, _ := certcache.New(e.VaultURL(scenario.DemoVault), scenario.DemoCertificate, cred, (&certcache.Options{}).WithSigner(opts))
	rows := []struct {
		input, mention string
		err            error
	}{
		{"key ID", "key ID", newSigner("https://kvassert-demo.vault.azure.net/secrets/x", cred, &opts)},
		{"key ID", "key ID", newSigner("", cred, &opts)},
		{"vault URL", "vault URL", newSigner("https://example.com/keys/k", cred, &opts)},
		{"vault URL", "AllowLoopback", newSigner(e.URL()+"/keys/signing", cred, &keyvault.SignerOptions{PublicKey: &key.PublicKey})},
		{"credential", "credential", newSigner(keyID, nil, &opts)},
		{"MaxThrottleWait", "MaxThrottleWait", newSigner(keyID, cred, withPublicKey(&keyvault.SignerOptions{ClientOptions: e.ClientOptions(), MaxThrottleWait: -time.Second}, &key.PublicKey))},
		{"PublicKey", "public key", newSigner(keyID, cred, withPublicKey(&opts, []byte("not a key")))},
		{"digest", "digest", errOf(signer.SignContext(context.Background(), []byte("short"), crypto.SHA256))},
		{"sign options", "sign options", errOf(signer.SignContext(context.Background(), make([]byte, 32), nil))},
		{"sign options", "salt length", errOf(signer.SignContext(context.Background(), make([]byte, 32), &rsa.PSSOptions{SaltLength: 7, Hash: crypto.SHA256}))},
		{"sign options", "hash", errOf(signer.SignContext(context.Background(), make([]byte, 20), crypto.SHA1))},

		{"vault URL", "Managed HSM", newCache("https://kvassert-hsm.managedhsm.azure.net/", "c", cred, (&certcache.Options{}).WithSigner(opts))},
		{"vault URL", "vault URL", newCache("http://kvassert-demo.vault.azure.net/", "c", cred, nil)},
		{"vault URL", "AllowLoopback", newCache(e.URL(), "c", cred, nil)},
		{"name", "name", newCache(e.VaultURL(scenario.DemoVault), "bad_name", cred, nil)},
		{"credential", "credential", newCache(e.VaultURL(scenario.DemoVault), "c", nil, nil)},
		{"version", "version", newCache(e.VaultURL(scenario.DemoVault), scenario.DemoCertificate, cred, (&certcache.Options{Version: "not-a-version"}).WithSigner(opts))},
		{"TTL", "TTL", newCache(e.VaultURL(scenario.DemoVault), scenario.DemoCertificate, cred, (&certcache.Options{TTL: -time.Second}).WithSigner(opts))},
		{"ReadTimeout", "ReadTimeout", newCache(e.VaultURL(scenario.DemoVault), "c", cred, &certcache.Options{ReadTimeout: -time.Second})},
		{"ExpiryWarning", "ExpiryWarning", newCache(e.VaultURL(scenario.DemoVault), "c", cred, &certcache.Options{ExpiryWarning: -time.Second})},
		{"MaxThrottleWait", "MaxThrottleWait", newCache(e.VaultURL(scenario.DemoVault), "c", cred, &certcache.Options{MaxThrottleWait: -time.Second})},
		{"version", "version", errOf(cache.Version(context.Background(), "../x"))},
	}
	for _, r := range rows {
		var ie *inputerr.Error
		if !errors.As(r.err, &ie) || ie.Input != r.input || ie.Package != "keyvault" {
			t.Errorf("%s: %v (%T), want an InputError for %q", r.input, r.err, r.err, r.input)
			continue
		}
		if !strings.Contains(strings.ToLower(ie.Error()), strings.ToLower(r.mention)) {
			t.Errorf("%s: message %q does not name it (%q)", r.input, ie.Error(), r.mention)
		}
	}
}

func errOf[T any](_ T, err error) error { return err }
