package fleet

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azkeys"

	"github.com/kvassert/kvassert/internal/emuhook"
	"github.com/kvassert/kvassert/internal/redistest"
	"github.com/kvassert/kvassert/internal/testfixture"
	"github.com/kvassert/kvassert/kvasserttest"
	"github.com/kvassert/kvassert/kvasserttest/scenario"
)

// kekEnv is the emulated vault with an RSA key-encryption key "fleet-kek"
// that the workload identity may wrap and unwrap with.
func kekEnv(t *testing.T) (*kvasserttest.Emulator, *azkeys.Client) {
	t.Helper()
	e := testfixture.NewWorld(t, nil).Emu
	if err := e.Grant(scenario.DemoVault, emuhook.DemoWorkloadClientID, "keys/create", "keys/wrapKey", "keys/unwrapKey"); err != nil {
		t.Fatal(err)
	}
	kc := testfixture.Keys(t, e, scenario.DemoVault)
	if _, err := kc.CreateKey(context.Background(), "fleet-kek", azkeys.CreateKeyParameters{Kty: to.Ptr(azkeys.KeyTypeRSA), KeySize: to.Ptr(int32(2048))}, nil); err != nil {
		t.Fatal(err)
	}
	return e, kc
}

// sameKey reports whether two keys are the same secret under the same ID.
func sameKey(t *testing.T, a, b *Key) bool {
	t.Helper()
	ad := adFor(normalize(testKey(tenantN(1))))
	entry := mustRing(t, a).seal([]byte("0123456789abcdef-check"), ad)
	_, err := mustRing(t, b).open(entry, ad)
	return err == nil
}

// TestLoadDataKeyBootstrapsOneFleetKey: replicas starting together agree on
// one data key (SET NX); a restart unwraps it with one Key Vault call.
func TestLoadDataKeyBootstrapsOneFleetKey(t *testing.T) {
	srv := redistest.Start(t)
	e, kc := kekEnv(t)
	ctx := context.Background()
	var keys [4]*Key
	var errs [4]error
	parallel(4, func(i int) {
		keys[i], errs[i] = LoadDataKey(ctx, newClient(t, srv), kc, "fleet-kek", nil)
	})
	for i := range keys {
		if errs[i] != nil {
			t.Fatalf("replica %d: %v", i, errs[i])
		}
		if keys[i].id != "k1" || !sameKey(t, keys[0], keys[i]) {
			t.Fatalf("replica %d has another data key", i)
		}
	}
	wraps, unwraps := e.Count(kvasserttest.Op("keys/wrapKey")), e.Count(kvasserttest.Op("keys/unwrapKey"))
	// Each replica wraps (it found no key) or unwraps (it found one); a
	// replica that lost the SET NX race unwraps the winner's. The winner
	// never unwraps.
	if wraps < 1 || unwraps > 3 || wraps > 4 {
		t.Fatalf("%d wraps, %d unwraps for 4 replicas", wraps, unwraps)
	}
	e.ResetCounts()
	again, err := LoadDataKey(ctx, newClient(t, srv), kc, "fleet-kek", &DataKeyOptions{})
	if err != nil || !sameKey(t, keys[0], again) {
		t.Fatalf("restart: %v", err)
	}
	if e.Count(kvasserttest.Op("keys/wrapKey")) != 0 || e.Count(kvasserttest.Op("keys/unwrapKey")) != 1 {
		t.Fatalf("restart: %v", e.Counts())
	}
	// A second ID is another key (rotation).
	k2, err := LoadDataKey(ctx, newClient(t, srv), kc, "fleet-kek", &DataKeyOptions{ID: "k2"})
	if err != nil || k2.id != "k2" {
		t.Fatal(err)
	}
	// The blob in Redis names the vault key and is not the key.
	blob, err := rawClient(srv).Get(ctx, "kvassert:datakey:k1").Result()
	if err != nil || !strings.Contains(blob, `"kid":"`) || !strings.Contains(blob, "fleet-kek") || !strings.Contains(blob, `"alg":"RSA-OAEP-256"`) {
		t.Fatalf("stored blob %q: %v", blob, err)
	}
}

func TestDataKeyFailures(t *testing.T) {
	srv := redistest.Start(t)
	e, kc := kekEnv(t)
	ctx := context.Background()
	// A blob kept in configuration instead of Redis: no Redis client.
	k, blob, err := SealDataKey(ctx, kc, "fleet-kek", &DataKeyOptions{ID: "cfg"})
	if err != nil {
		t.Fatal(err)
	}
	open := func(keyName string, blob []byte) (*Key, error) {
		return LoadDataKey(ctx, nil, kc, keyName, &DataKeyOptions{ID: "cfg", Wrapped: blob})
	}
	opened, err := open("fleet-kek", blob)
	if err != nil || !sameKey(t, k, opened) {
		t.Fatalf("open: %v", err)
	}
	raw := rawClient(srv)
	check := func(name string, err error, want string) {
		t.Helper()
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: got %v, want an error containing %q", name, err, want)
		}
	}
	raw.Set(ctx, "kvassert:datakey:bad", "garbage", 0)
	_, err = LoadDataKey(ctx, newClient(t, srv), kc, "fleet-kek", &DataKeyOptions{ID: "bad"})
	check("garbage blob", err, "not a blob made by SealDataKey")
	// Hostile blobs (issue 18, siblings): oversize, or an oversize wrapped
	// value, are refused before any Key Vault call.
	raw.Set(ctx, "kvassert:datakey:big", strings.Repeat("x", 1<<20), 0)
	_, err = LoadDataKey(ctx, newClient(t, srv), kc, "fleet-kek", &DataKeyOptions{ID: "big"})
	check("oversize blob", err, "not a blob made by SealDataKey")
	huge := strings.Replace(string(blob), `"wrapped":"`, `"wrapped":"`+strings.Repeat("AAAA", 400), 1)
	_, err = open("fleet-kek", []byte(huge))
	check("oversize wrapped value", err, "not a blob made by SealDataKey")
	tampered := strings.Replace(string(blob), `"wrapped":"`, `"wrapped":"AAAA`, 1)
	_, err = open("fleet-kek", []byte(tampered))
	check("tampered blob", err, "unwrapKey")
	_, err = open("other-kek", blob)
	check("other key name", err, "was wrapped by Key Vault key")
	_, err = LoadDataKey(ctx, newClient(t, srv), nil, "fleet-kek", nil)
	check("no keys client", err, "vault")
	_, err = LoadDataKey(ctx, newClient(t, srv), kc, "", nil)
	check("no key name", err, "keyName")
	_, err = LoadDataKey(ctx, newClient(t, srv), kc, "fleet-kek", &DataKeyOptions{ID: "no spaces"})
	check("bad ID", err, "invalid opts.ID")
	if err := e.Revoke(scenario.DemoVault, emuhook.DemoWorkloadClientID, "keys/unwrapKey"); err != nil {
		t.Fatal(err)
	}
	_, err = open("fleet-kek", blob)
	check("no unwrapKey permission", err, "ForbiddenByRbac")
	// Redis down at start: a clear error (the caller runs without sharing).
	srv.Stop()
	c, _ := NewClient(srv.URL())
	defer c.Close()
	_, err = LoadDataKey(ctx, c, kc, "fleet-kek", nil)
	check("Redis down", err, "from Redis")
}

// Issue 18 (defect 5, sibling found by hvault): a Key Vault refusal of
// wrapKey or unwrapKey reaches the error without the vault's answer text
// (azcore's ResponseError prints the whole body), keeping its status.
func TestDataKeyVaultErrorsHoldNoBodyText(t *testing.T) {
	e, kc := kekEnv(t)
	ctx := context.Background()
	_, blob, err := SealDataKey(ctx, kc, "fleet-kek", &DataKeyOptions{ID: "cfg"})
	if err != nil {
		t.Fatal(err)
	}
	for _, op := range []kvasserttest.Op{kvasserttest.Op("keys/wrapKey"), kvasserttest.Op("keys/unwrapKey")} {
		e.InjectFault(op, kvasserttest.Fault{Status: http.StatusForbidden})
	}
	_, _, werr := SealDataKey(ctx, kc, "fleet-kek", &DataKeyOptions{ID: "cfg2"})
	_, uerr := LoadDataKey(ctx, nil, kc, "fleet-kek", &DataKeyOptions{ID: "cfg", Wrapped: blob})
	e.ClearFaults()
	for name, err := range map[string]error{"wrapKey": werr, "unwrapKey": uerr} {
		var re *azcore.ResponseError
		if err == nil || !errors.As(err, &re) || re.StatusCode != http.StatusForbidden {
			t.Fatalf("%s: %v, want a 403 ResponseError in the chain", name, err)
		}
		if msg := err.Error(); strings.Contains(msg, "RESPONSE 403") || strings.Contains(msg, `"message"`) || strings.Contains(msg, "{") {
			t.Errorf("%s: the vault's answer reaches the error: %s", name, msg)
		}
	}
}
