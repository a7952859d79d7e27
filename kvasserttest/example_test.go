package kvasserttest_test

import (
	"context"
	"crypto/sha256"
	"fmt"
	"log"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azkeys"

	"github.com/kvassert/kvassert/kvasserttest"
	"github.com/kvassert/kvassert/kvasserttest/scenario"
)

// The real azkeys client signs in an emulated vault, reached by its real
// URL; its credential is azidentity's DefaultAzureCredential, which the
// emulator answers as the demo's managed identity (IMDS). ClientOptions is
// the only wiring. A fault makes the vault throttle once and the SDK
// retries.
func ExampleNew() {
	emu, err := kvasserttest.New(nil, nil) // the demo scenario; in tests: kvasserttest.NewTB(t, nil, nil)
	if err != nil {
		log.Fatal(err)
	}
	defer emu.Close()

	co := emu.ClientOptions()
	cred, err := azidentity.NewDefaultAzureCredential(&azidentity.DefaultAzureCredentialOptions{ClientOptions: co})
	if err != nil {
		log.Fatal(err)
	}
	client, err := azkeys.NewClient("https://"+scenario.DemoVault+".vault.azure.net/", cred, &azkeys.ClientOptions{ClientOptions: co})
	if err != nil {
		log.Fatal(err)
	}
	emu.InjectFault(kvasserttest.OpKeySign, kvasserttest.Fault{Status: 429, RetryAfter: 1, Times: 1})
	digest := sha256.Sum256([]byte("hello"))
	resp, err := client.Sign(context.Background(), scenario.DemoCertificate, "", azkeys.SignParameters{
		Algorithm: to.Ptr(azkeys.SignatureAlgorithmPS256), Value: digest[:]}, nil)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(len(resp.Result), "byte signature after", emu.Count(kvasserttest.OpKeySign), "sign requests")
	// Output: 256 byte signature after 2 sign requests
}

// A test controls the emulated world: it takes the vault's sign permission
// from the identity the program uses, and the program's next sign is
// refused with 403 ForbiddenByRbac.
func ExampleEmulator_Revoke() {
	emu, err := kvasserttest.New(nil, nil)
	if err != nil {
		log.Fatal(err)
	}
	defer emu.Close()
	identity := emu.Scenario().ManagedIdentities[0].ClientID // the demo's managed identity
	if err := emu.Revoke(scenario.DemoVault, identity, "keys/sign"); err != nil {
		log.Fatal(err)
	}

	co := emu.ClientOptions()
	cred, _ := azidentity.NewDefaultAzureCredential(&azidentity.DefaultAzureCredentialOptions{ClientOptions: co})
	client, _ := azkeys.NewClient("https://"+scenario.DemoVault+".vault.azure.net/", cred, &azkeys.ClientOptions{ClientOptions: co})
	digest := sha256.Sum256([]byte("hello"))
	_, err = client.Sign(context.Background(), scenario.DemoCertificate, "", azkeys.SignParameters{
		Algorithm: to.Ptr(azkeys.SignatureAlgorithmPS256), Value: digest[:]}, nil)
	fmt.Println("refused:", err != nil, "- sign requests:", emu.Count(kvasserttest.OpKeySign))
	// Output: refused: true - sign requests: 1
}
