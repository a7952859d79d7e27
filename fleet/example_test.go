package fleet_test

import (
	"context"
	"log"
	"os"

	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azkeys"

	"github.com/kvassert/kvassert/fleet"
)

// A fleet's shared token cache: a Redis client from a URL, a data key
// wrapped by a Key Vault key (one unwrapKey per process start), and the
// cache and the fleet throttle for the signing vault.
func ExampleNewCache() {
	ctx := context.Background()
	rdb, err := fleet.NewClient(os.Getenv("KVASSERT_TOKEN_CACHE")) // e.g. rediss://app:secret@cache.example.com:6380
	if err != nil {
		log.Fatal(err)
	}
	var keys *azkeys.Client // a keys client for the vault holding the key-encryption key
	dk, err := fleet.LoadDataKey(ctx, rdb, fleet.DataKeyOptions{Wrapper: &fleet.KeyVaultWrapper{Client: keys, Name: "fleet-kek"}})
	if err != nil {
		log.Fatal(err) // or run without a shared cache: every replica then acquires on its own
	}
	ring, err := fleet.NewKeyring(dk)
	if err != nil {
		log.Fatal(err)
	}
	cache, err := fleet.NewCache(rdb, fleet.Options{Keyring: ring})
	if err != nil {
		log.Fatal(err)
	}
	defer cache.Close()
	throttle, err := fleet.NewThrottle(rdb, fleet.ThrottleOptions{Vault: "myvault.vault.azure.net", Budget: 3600})
	if err != nil {
		log.Fatal(err)
	}
	_, _ = cache, throttle // give them to the credential and the Key Vault signer
}
