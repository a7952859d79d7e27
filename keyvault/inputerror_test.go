package keyvault_test

import (
	"context"
	"crypto"
	"crypto/rsa"
	"errors"
	"testing"
	"time"

	"github.com/kvassert/kvassert/internal/inputerr"
	"github.com/kvassert/kvassert/internal/testcert"
	"github.com/kvassert/kvassert/internal/testfixture"
	"github.com/kvassert/kvassert/keyvault"
	"github.com/kvassert/kvassert/kvasserttest/scenario"
)

// Input the caller gave and the package refused is a typed error (what the
// CLI and the proxy read with errors.As), naming the input.
func TestRefusedInputIsAnInputError(t *testing.T) {
	w := testfixture.NewWorld(t, &testfixture.WorldOptions{Scenario: world()})
	e, cred := w.Emu, w.VaultCred
	opts := keyvault.Options{ClientOptions: e.ClientOptions()}
	key := testcert.RSAKey(t, 0)
	signer, err := keyvault.NewSigner(context.Background(), e.VaultURL(scenario.DemoVault)+"keys/signing", cred, &key.PublicKey, &opts)
	if err != nil {
		t.Fatal(err)
	}
	cases := map[string]func() error{
		"MaxThrottleWait": func() error {
			_, err := keyvault.NewSigner(context.Background(), e.VaultURL(scenario.DemoVault)+"keys/signing", cred, &key.PublicKey,
				&keyvault.Options{ClientOptions: e.ClientOptions(), MaxThrottleWait: -time.Second})
			return err
		},
		"version": func() error {
			_, err := keyvault.NewCertificateCache(e.VaultURL(scenario.DemoVault), scenario.DemoCertificate, cred,
				&keyvault.CertificateCacheOptions{Options: opts, Version: "not-a-version"})
			return err
		},
		"options": func() error {
			_, err := keyvault.NewCertificateCache(e.VaultURL(scenario.DemoVault), scenario.DemoCertificate, cred,
				&keyvault.CertificateCacheOptions{Options: opts, TTL: -time.Second})
			return err
		},
		"digest": func() error {
			_, err := signer.SignContext(context.Background(), []byte("short"), crypto.SHA256)
			return err
		},
		"sign options": func() error {
			_, err := signer.SignContext(context.Background(), make([]byte, 32), &rsa.PSSOptions{SaltLength: 7, Hash: crypto.SHA256})
			return err
		},
		"vault URL": func() error {
			_, err := keyvault.NewCertificateCache("https://kvassert-hsm.managedhsm.azure.net/", "c", cred, &keyvault.CertificateCacheOptions{Options: opts})
			return err
		},
	}
	for input, f := range cases {
		err := f()
		var ie *inputerr.Error
		if !errors.As(err, &ie) || ie.Input != input || ie.Package != "keyvault" {
			t.Errorf("%s: %v (%T), want an InputError for %q", input, err, err, input)
		}
	}
}
