package fleet_test

import (
	"context"
	"fmt"
	"log"
	"os"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azkeys"

	"github.com/kvassert/kvassert"
	"github.com/kvassert/kvassert/fleet"
	"github.com/kvassert/kvassert/kvasserttest"
	"github.com/kvassert/kvassert/kvasserttest/scenario"
)

// A fleet's shared token cache: a Redis client from a URL, a data key
// wrapped by a Key Vault key (one unwrapKey per process start), the cache
// for the credential and the fleet throttle for the signing vault.
func ExampleNewCache() {
	ctx := context.Background()
	var (
		vaultCred azcore.TokenCredential // the service's identity, e.g. azidentity.NewDefaultAzureCredential
		keys      *azkeys.Client         // a keys client for the vault that holds the key-encryption key
	)
	rdb, err := fleet.NewClient(os.Getenv("KVASSERT_TOKEN_CACHE")) // redis://, rediss://, ?cluster=true, ?master_name=
	if err != nil {
		log.Fatal(err)
	}
	// The cache's data key, wrapped by the Key Vault RSA key "fleet-kek": the
	// first replica creates it, the others unwrap it (one unwrapKey per start).
	dk, err := fleet.LoadDataKey(ctx, rdb, keys, "fleet-kek", nil)
	if err != nil {
		log.Fatal(err) // or run without a shared cache: every replica then acquires on its own
	}
	cache, err := fleet.NewCache(rdb, dk, nil)
	if err != nil {
		log.Fatal(err)
	}
	defer cache.Close()
	// The vault's 429 hold-off and a sign budget, shared by every replica.
	throttle, err := fleet.NewThrottle(rdb, "contoso-saas.vault.azure.net", &fleet.ThrottleOptions{Budget: 3600})
	if err != nil {
		log.Fatal(err)
	}

	src, err := kvassert.NewKeyVaultCertificateSource("https://contoso-saas.vault.azure.net/", "saas-app-auth", vaultCred,
		&kvassert.KeyVaultCertificateOptions{Throttle: throttle})
	if err != nil {
		log.Fatal(err)
	}
	cred, err := kvassert.NewCredential("contoso-saas.onmicrosoft.com", "6d2f4a8b-1c3e-4f5a-9b7d-2e4f6a8c0b16", src, &kvassert.CredentialOptions{
		AdditionallyAllowedTenants: []string{"*"},
		SharedCache:                cache, // read only on a local miss and on refresh
	})
	if err != nil {
		log.Fatal(err)
	}
	_ = cred // give it to the Azure SDK clients, as without a fleet
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
	cred, _ := emu.ClientSecretCredential(workloadID)
	_ = emu.Grant(scenario.DemoVault, workloadID, "keys/create", "keys/wrapKey", "keys/unwrapKey")
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

// workloadID is the demo scenario's workload identity (scenario.Demo().Apps[1]),
// which may use the demo vault; its secret is the emulator's.
const workloadID = "3c5e7a9b-2d4f-4a6c-8e0a-1b3d5f7a9c27"
