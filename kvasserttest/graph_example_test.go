package kvasserttest_test

import (
	"fmt"
	"log"

	"github.com/kvassert/kvassert/kvasserttest"
	"github.com/kvassert/kvassert/kvasserttest/scenario"
)

// The Graph side of certificate rotation: the application object ID that
// addKey/removeKey address (and that proofs name as iss), and the app's
// registered keys.
func ExampleEmulator_AppKeyCredentials() {
	emu, err := kvasserttest.New(nil, nil)
	if err != nil {
		log.Fatal(err)
	}
	defer emu.Close()

	keys, _ := emu.AppKeyCredentials(scenario.DemoAppClientID)
	fmt.Println("POST https://graph.microsoft.com/v1.0/applications/" + scenario.DemoAppObjectID + "/addKey")
	fmt.Println(len(keys), "key:", keys[0].DisplayName, "- accepted at once:", keys[0].ActiveAt.IsZero())
	// Output:
	// POST https://graph.microsoft.com/v1.0/applications/b2d4f6a8-0c1e-4a3b-8d5f-7a9c1e3b5d70/addKey
	// 1 key: CN=kvassert demo SaaS - accepted at once: true
}
