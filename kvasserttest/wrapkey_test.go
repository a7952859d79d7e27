package kvasserttest

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"strings"
	"testing"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azkeys"

	"github.com/kvassert/kvassert/internal/emuhook"
	"github.com/kvassert/kvassert/kvasserttest/scenario"
)

// TestKeyVaultWrapUnwrapWithRealSDK drives keys/wrapKey and keys/unwrapKey
// with the real azkeys client: round trips for every algorithm, a wrap
// made locally with the public key, wrong algorithms, wrong key, missing
// permissions, key_ops without wrapKey.
func TestKeyVaultWrapUnwrapWithRealSDK(t *testing.T) {
	k := newKVEnv(t)
	ctx := context.Background()
	if err := k.e.Grant(scenario.DemoVault, emuhook.DemoWorkloadClientID, "keys/create", "keys/wrapKey", "keys/unwrapKey"); err != nil {
		t.Fatal(err)
	}
	kc := k.keys(k.cred, 0)
	rsaKey, err := kc.CreateKey(ctx, "kek", azkeys.CreateKeyParameters{Kty: to.Ptr(azkeys.KeyTypeRSA), KeySize: to.Ptr(int32(2048))}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kc.CreateKey(ctx, "other-kek", azkeys.CreateKeyParameters{Kty: to.Ptr(azkeys.KeyTypeRSA)}, nil); err != nil {
		t.Fatal(err)
	}
	dek := make([]byte, 32)
	rand.Read(dek)
	for _, alg := range []azkeys.EncryptionAlgorithm{azkeys.EncryptionAlgorithmRSAOAEP256, azkeys.EncryptionAlgorithmRSAOAEP, azkeys.EncryptionAlgorithmRSA15} {
		wrapped, err := kc.WrapKey(ctx, "kek", "", azkeys.KeyOperationParameters{Algorithm: to.Ptr(alg), Value: dek}, nil)
		if err != nil {
			t.Fatalf("wrap %s: %v", alg, err)
		}
		if *wrapped.KID != *rsaKey.Key.KID || len(wrapped.Result) != 256 || bytes.Contains(wrapped.Result, dek) {
			t.Fatalf("wrap %s: kid %s, %d bytes", alg, *wrapped.KID, len(wrapped.Result))
		}
		un, err := kc.UnwrapKey(ctx, "kek", wrapped.KID.Version(), azkeys.KeyOperationParameters{Algorithm: to.Ptr(alg), Value: wrapped.Result}, nil)
		if err != nil || !bytes.Equal(un.Result, dek) || *un.KID != *rsaKey.Key.KID {
			t.Fatalf("unwrap %s: %v (equal %v)", alg, err, bytes.Equal(un.Result, dek))
		}
		// The wrong key cannot unwrap it.
		_, err = kc.UnwrapKey(ctx, "other-kek", "", azkeys.KeyOperationParameters{Algorithm: to.Ptr(alg), Value: wrapped.Result}, nil)
		if re := asResponseError(t, err); re.StatusCode != 400 || re.ErrorCode != "BadParameter" || !strings.Contains(err.Error(), "padding") {
			t.Fatalf("unwrap %s with another key: %v", alg, err)
		}
	}

	// A wrap made locally with the public key (what RSA-OAEP-256 is) opens in the vault.
	pub := jwkPublicKey(t, rsaKey.Key).(*rsa.PublicKey)
	local, err := rsa.EncryptOAEP(sha256.New(), rand.Reader, pub, dek, nil)
	if err != nil {
		t.Fatal(err)
	}
	un, err := kc.UnwrapKey(ctx, "kek", "", azkeys.KeyOperationParameters{Algorithm: to.Ptr(azkeys.EncryptionAlgorithmRSAOAEP256), Value: local}, nil)
	if err != nil || !bytes.Equal(un.Result, dek) {
		t.Fatalf("unwrap of a local wrap: %v", err)
	}
	// Unwrapping with the other OAEP hash fails.
	_, err = kc.UnwrapKey(ctx, "kek", "", azkeys.KeyOperationParameters{Algorithm: to.Ptr(azkeys.EncryptionAlgorithmRSAOAEP), Value: local}, nil)
	if re := asResponseError(t, err); re.StatusCode != 400 || re.ErrorCode != "BadParameter" {
		t.Fatalf("unwrap with the wrong alg: %v", err)
	}

	for _, alg := range []azkeys.EncryptionAlgorithm{azkeys.EncryptionAlgorithmA256KW, "RSA-OAEP-512"} {
		_, err = kc.WrapKey(ctx, "kek", "", azkeys.KeyOperationParameters{Algorithm: to.Ptr(alg), Value: dek}, nil)
		if re := asResponseError(t, err); re.StatusCode != 400 || re.ErrorCode != "BadParameter" || !strings.Contains(err.Error(), "Invalid algorithm") {
			t.Fatalf("wrap with %s: %v", alg, err)
		}
	}
	// Too long for RSA-OAEP-256 with a 2048-bit key (at most 190 bytes).
	_, err = kc.WrapKey(ctx, "kek", "", azkeys.KeyOperationParameters{Algorithm: to.Ptr(azkeys.EncryptionAlgorithmRSAOAEP256), Value: make([]byte, 191)}, nil)
	if re := asResponseError(t, err); re.StatusCode != 400 || re.ErrorCode != "BadParameter" {
		t.Fatalf("wrap of 191 bytes: %v", err)
	}
	// An EC key cannot wrap.
	if _, err := kc.CreateKey(ctx, "ec-kek", azkeys.CreateKeyParameters{Kty: to.Ptr(azkeys.KeyTypeEC), KeyOps: []*azkeys.KeyOperation{to.Ptr(azkeys.KeyOperationWrapKey)}}, nil); err != nil {
		t.Fatal(err)
	}
	_, err = kc.WrapKey(ctx, "ec-kek", "", azkeys.KeyOperationParameters{Algorithm: to.Ptr(azkeys.EncryptionAlgorithmRSAOAEP256), Value: dek}, nil)
	if re := asResponseError(t, err); re.StatusCode != 400 || !strings.Contains(err.Error(), "not valid for a key of type EC") {
		t.Fatalf("wrap with an EC key: %v", err)
	}
	// key_ops without wrapKey: 403.
	if _, err := kc.CreateKey(ctx, "sign-only", azkeys.CreateKeyParameters{Kty: to.Ptr(azkeys.KeyTypeRSA), KeyOps: []*azkeys.KeyOperation{to.Ptr(azkeys.KeyOperationSign)}}, nil); err != nil {
		t.Fatal(err)
	}
	_, err = kc.WrapKey(ctx, "sign-only", "", azkeys.KeyOperationParameters{Algorithm: to.Ptr(azkeys.EncryptionAlgorithmRSAOAEP256), Value: dek}, nil)
	if re := asResponseError(t, err); re.StatusCode != 403 || !strings.Contains(err.Error(), "wrapKey") {
		t.Fatalf("wrap with a sign-only key: %v", err)
	}
	// Missing key: 404.
	_, err = kc.WrapKey(ctx, "no-such-key", "", azkeys.KeyOperationParameters{Algorithm: to.Ptr(azkeys.EncryptionAlgorithmRSAOAEP256), Value: dek}, nil)
	if re := asResponseError(t, err); re.StatusCode != 404 || re.ErrorCode != "KeyNotFound" {
		t.Fatalf("wrap with a missing key: %v", err)
	}

	// Permissions: 403 ForbiddenByRbac naming the data action.
	wrapped, err := kc.WrapKey(ctx, "kek", "", azkeys.KeyOperationParameters{Algorithm: to.Ptr(azkeys.EncryptionAlgorithmRSAOAEP256), Value: dek}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := k.e.Revoke(scenario.DemoVault, emuhook.DemoWorkloadClientID, "keys/wrapKey", "keys/unwrapKey"); err != nil {
		t.Fatal(err)
	}
	_, err = kc.WrapKey(ctx, "kek", "", azkeys.KeyOperationParameters{Algorithm: to.Ptr(azkeys.EncryptionAlgorithmRSAOAEP256), Value: dek}, nil)
	if re := asResponseError(t, err); re.StatusCode != 403 || innerCode(t, re) != "ForbiddenByRbac" || !strings.Contains(err.Error(), "Microsoft.KeyVault/vaults/keys/wrap/action") {
		t.Fatalf("wrap without permission: %v", err)
	}
	_, err = kc.UnwrapKey(ctx, "kek", "", azkeys.KeyOperationParameters{Algorithm: to.Ptr(azkeys.EncryptionAlgorithmRSAOAEP256), Value: wrapped.Result}, nil)
	if re := asResponseError(t, err); re.StatusCode != 403 || innerCode(t, re) != "ForbiddenByRbac" || !strings.Contains(err.Error(), "Microsoft.KeyVault/vaults/keys/unwrap/action") {
		t.Fatalf("unwrap without permission: %v", err)
	}
	if k.e.Count(Op("keys/wrapKey")) == 0 || k.e.Count(Op("keys/unwrapKey")) == 0 {
		t.Fatalf("wrap/unwrap not counted: %v", k.e.Counts())
	}
	// Faults apply to the new operations.
	if err := k.e.Grant(scenario.DemoVault, emuhook.DemoWorkloadClientID, "keys/unwrapKey"); err != nil {
		t.Fatal(err)
	}
	k.e.InjectFault(Op("keys/unwrapKey"), Fault{Status: 503})
	_, err = k.keys(k.cred, -1).UnwrapKey(ctx, "kek", "", azkeys.KeyOperationParameters{Algorithm: to.Ptr(azkeys.EncryptionAlgorithmRSAOAEP256), Value: wrapped.Result}, nil)
	if re := asResponseError(t, err); re.StatusCode != 503 {
		t.Fatalf("injected fault: %v", err)
	}
	k.e.ClearFaults(Op("keys/unwrapKey"))
	if un, err := kc.UnwrapKey(ctx, "kek", "", azkeys.KeyOperationParameters{Algorithm: to.Ptr(azkeys.EncryptionAlgorithmRSAOAEP256), Value: wrapped.Result}, nil); err != nil || !bytes.Equal(un.Result, dek) {
		t.Fatalf("unwrap after the fault: %v", err)
	}
}

// TestScenarioGrantsWrapUnwrap: a scenario file can grant keys/wrapKey and
// keys/unwrapKey (the scenario's "signing" key is RSA with the default ops).
func TestScenarioGrantsWrapUnwrap(t *testing.T) {
	s := scenario.Demo()
	s.Vaults[0].Access[0].Permissions = append(s.Vaults[0].Access[0].Permissions, "keys/wrapKey", "keys/unwrapKey")
	if err := s.Validate(); err != nil {
		t.Fatal(err)
	}
	e := NewTB(t, s, nil)
	cred, err := e.ClientSecretCredential(emuhook.DemoWorkloadClientID)
	if err != nil {
		t.Fatal(err)
	}
	kc, err := azkeys.NewClient(e.VaultURL(scenario.DemoVault), cred, &azkeys.ClientOptions{ClientOptions: e.ClientOptions()})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	w, err := kc.WrapKey(ctx, "signing", "", azkeys.KeyOperationParameters{Algorithm: to.Ptr(azkeys.EncryptionAlgorithmRSAOAEP256), Value: []byte("0123456789abcdef0123456789abcdef")}, nil)
	if err != nil {
		t.Fatal(err)
	}
	un, err := kc.UnwrapKey(ctx, "signing", w.KID.Version(), azkeys.KeyOperationParameters{Algorithm: to.Ptr(azkeys.EncryptionAlgorithmRSAOAEP256), Value: w.Result}, nil)
	if err != nil || string(un.Result) != "0123456789abcdef0123456789abcdef" {
		t.Fatalf("unwrap: %v", err)
	}
}
