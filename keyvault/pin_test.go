package keyvault_test

import (
	"context"
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"strings"
	"testing"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azkeys"

	"github.com/kvassert/kvassert/internal/emuhook"
	"github.com/kvassert/kvassert/internal/kvid"
	"github.com/kvassert/kvassert/keyvault"
	"github.com/kvassert/kvassert/kvasserttest"
	"github.com/kvassert/kvassert/kvasserttest/scenario"
)

// rotateKey creates a new version of the demo vault's key name (what a key
// rotation does) and returns its key ID.
func rotateKey(t *testing.T, e *kvasserttest.Emulator, cred azcore.TokenCredential, name string) string {
	t.Helper()
	if err := e.Grant(scenario.DemoVault, emuhook.DemoWorkloadClientID, "keys/create"); err != nil {
		t.Fatal(err)
	}
	c, err := azkeys.NewClient(e.VaultURL(scenario.DemoVault), cred, &azkeys.ClientOptions{ClientOptions: e.ClientOptions()})
	if err != nil {
		t.Fatal(err)
	}
	resp, err := c.CreateKey(context.Background(), name, azkeys.CreateKeyParameters{Kty: to.Ptr(azkeys.KeyTypeRSA), KeySize: to.Ptr(int32(2048))}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return string(*resp.Key.KID)
}

func verifies(s *keyvault.Signer, pub *rsa.PublicKey, t *testing.T) {
	t.Helper()
	d := sha256.Sum256([]byte("pinned"))
	sig, err := s.SignContext(context.Background(), d[:], crypto.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	if err := rsa.VerifyPKCS1v15(pub, crypto.SHA256, d[:], sig); err != nil {
		t.Fatalf("the signature does not verify with the key version the signer was made for: %v", err)
	}
}

// A signer made from an unversioned key ID without a public key reads the
// key once and pins the version it read: after the key rotates it still
// signs with that version, the one its Public() reports.
func TestSignerPinsTheVersionItRead(t *testing.T) {
	e, cred, opts := setup(t)
	keyID := e.VaultURL(scenario.DemoVault) + "keys/signing"
	s, err := keyvault.NewSigner(context.Background(), keyID, cred, opts)
	if err != nil {
		t.Fatal(err)
	}
	if id, _ := kvid.ParseKeyID(s.KeyID()); id.Version == "" {
		t.Fatalf("KeyID() = %s, want the version read", s.KeyID())
	}
	pinned := s.KeyID()
	pub := s.Public().(*rsa.PublicKey)
	newID := rotateKey(t, e, cred, "signing")
	if strings.EqualFold(newID, pinned) {
		t.Fatal("the rotation made no new version")
	}
	verifies(s, pub, t)
	if s.KeyID() != pinned {
		t.Fatalf("KeyID() = %s after the rotation, want %s", s.KeyID(), pinned)
	}
	if n := e.Count(kvasserttest.OpKeyGet); n != 1 {
		t.Fatalf("keys/get calls = %d, want 1", n)
	}
}

// A signer given the public key and an unversioned key ID makes no lookup;
// its first signature, checked against that key, pins the version, so that a
// later rotation does not switch it to a key its certificate does not name.
// A key that rotated before the first signature is refused clearly.
func TestSignerWithPublicKeyPinsTheVersionOfItsFirstSignature(t *testing.T) {
	e, cred, opts := setup(t)
	ctx := context.Background()
	keyID := e.VaultURL(scenario.DemoVault) + "keys/signing"
	probe, err := keyvault.NewSigner(ctx, keyID, cred, opts)
	if err != nil {
		t.Fatal(err)
	}
	pub := probe.Public().(*rsa.PublicKey)
	e.ResetCounts()

	s, err := keyvault.NewSigner(ctx, keyID, cred, withPublicKey(opts, pub))
	if err != nil {
		t.Fatal(err)
	}
	if s.KeyID() != strings.TrimSuffix(keyID, "/") {
		t.Fatalf("KeyID() before any signature = %s", s.KeyID())
	}
	verifies(s, pub, t)
	if s.KeyID() != probe.KeyID() {
		t.Fatalf("KeyID() after the first signature = %s, want %s", s.KeyID(), probe.KeyID())
	}
	rotateKey(t, e, cred, "signing")
	verifies(s, pub, t)
	if n := e.Count(kvasserttest.OpKeyGet); n != 0 {
		t.Fatalf("keys/get calls = %d, want 0", n)
	}

	// Made after the rotation with the old public key: refused, and told why.
	late, err := keyvault.NewSigner(ctx, keyID, cred, withPublicKey(opts, pub))
	if err != nil {
		t.Fatal(err)
	}
	d := sha256.Sum256([]byte("late"))
	if _, err := late.SignContext(ctx, d[:], crypto.SHA256); err == nil || !strings.Contains(err.Error(), "rotated") || !strings.Contains(err.Error(), "versioned key ID") {
		t.Fatalf("sign with a rotated key: %v", err)
	}
}
