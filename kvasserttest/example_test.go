package kvasserttest_test

import (
	"context"
	"crypto/sha256"
	"fmt"
	"log"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azkeys"

	"github.com/kvassert/kvassert/internal/emuhook"
	"github.com/kvassert/kvassert/kvasserttest"
	"github.com/kvassert/kvassert/kvasserttest/scenario"
)

// The real azkeys client signs in an emulated vault, reached by its real
// URL; a fault makes the vault throttle once and the SDK retries.
func ExampleNew() {
	emu, err := kvasserttest.New(scenario.Demo(), nil) // in tests: kvasserttest.NewTB(t, ...)
	if err != nil {
		log.Fatal(err)
	}
	defer emu.Close()

	cred, _ := emu.ClientSecretCredential(emuhook.DemoWorkloadClientID)
	client, err := azkeys.NewClient("https://kvassert-demo.vault.azure.net/", cred,
		&azkeys.ClientOptions{ClientOptions: emu.ClientOptions()})
	if err != nil {
		log.Fatal(err)
	}
	emu.InjectFault(kvasserttest.OpKeySign, kvasserttest.Fault{Status: 429, RetryAfter: 1, Times: 1})
	digest := sha256.Sum256([]byte("hello"))
	resp, err := client.Sign(context.Background(), "signing", "", azkeys.SignParameters{
		Algorithm: to.Ptr(azkeys.SignatureAlgorithmPS256), Value: digest[:]}, nil)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(len(resp.Result), "byte signature after", emu.Count(kvasserttest.OpKeySign), "sign requests")
	// Output: 256 byte signature after 2 sign requests
}
