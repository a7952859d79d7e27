package fleet_test

import (
	"context"
	"fmt"
	"log"
	"os"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azkeys"

	"github.com/kvassert/kvassert"
	"github.com/kvassert/kvassert/fleet"
	"github.com/kvassert/kvassert/internal/emuhook"
	"github.com/kvassert/kvassert/kvasserttest"
	"github.com/kvassert/kvassert/kvasserttest/scenario"
)

// A fleet's shared token cache: a Redis client from a URL, a data key
// wrapped by a Key Vault key (one unwrapKey per process start), the cache
// for the credential and the fleet throttle for the signing vault.
func ExampleNewCache() {
	ctx := context.Background()
	rdb, err := fleet.NewClient(os.Getenv("KVASSERT_TOKEN_CACHE")) // e.g. rediss://app:secret@cache.example.com:6380
	if err != nil {
		log.Fatal(err)
	}
	var keys *azkeys.Client // a keys client for the vault holding the key-encryption key
	dk, err := fleet.LoadDataKey(ctx, rdb, keys, "fleet-kek", nil)
	if err != nil {
		log.Fatal(err) // or run without a shared cache: every replica then acquires on its own
	}
	cache, err := fleet.NewCache(rdb, dk, nil)
	if err != nil {
		log.Fatal(err)
	}
	defer cache.Close()
	throttle, err := fleet.NewThrottle(rdb, "myvault.vault.azure.net", &fleet.ThrottleOptions{Budget: 3600})
	if err != nil {
		log.Fatal(err)
	}
	// The cache goes to the credential, the throttle to the Key Vault
	// source that signs in myvault (its options' Throttle field).
	_ = &kvassert.CredentialOptions{SharedCache: cache}
	_ = throttle
}

// A data key made once and given to the replicas by configuration, so that
// nobody who can write to Redis can plant one: SealDataKey wraps a new key
// with the vault's key-encryption key, LoadDataKey unwraps the blob (here
// against the Key Vault emulator, without Redis).
func ExampleSealDataKey() {
	emu, err := kvasserttest.New(scenario.Demo(), nil)
	if err != nil {
		log.Fatal(err)
	}
	defer emu.Close()
	cred, _ := emu.ClientSecretCredential(emuhook.DemoWorkloadClientID)
	_ = emu.Grant(scenario.DemoVault, emuhook.DemoWorkloadClientID, "keys/create", "keys/wrapKey", "keys/unwrapKey")
	keys, err := azkeys.NewClient(emu.VaultURL(scenario.DemoVault), cred, &azkeys.ClientOptions{ClientOptions: emu.ClientOptions()})
	if err != nil {
		log.Fatal(err)
	}
	ctx := context.Background()
	if _, err := keys.CreateKey(ctx, "fleet-kek", azkeys.CreateKeyParameters{Kty: to.Ptr(azkeys.KeyTypeRSA), KeySize: to.Ptr(int32(2048))}, nil); err != nil {
		log.Fatal(err)
	}

	// Once, by an operator: the blob goes into the replicas' configuration.
	_, blob, err := fleet.SealDataKey(ctx, keys, "fleet-kek", &fleet.DataKeyOptions{ID: "k1"})
	if err != nil {
		log.Fatal(err)
	}
	// In every replica: one unwrapKey call, no Redis involved.
	dk, err := fleet.LoadDataKey(ctx, nil, keys, "fleet-kek", &fleet.DataKeyOptions{ID: "k1", Wrapped: blob})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(dk) // a Key prints its ID only
	// Output: fleet.Key(k1)
}
