package kvasserttest_test

import (
	"fmt"
	"log"
	"time"

	"github.com/kvassert/kvassert/internal/emuhook"
	"github.com/kvassert/kvassert/kvasserttest"
	"github.com/kvassert/kvassert/kvasserttest/scenario"
)

// The Graph side of certificate rotation: the application object ID that
// addKey/removeKey address (and that proofs name as iss), the app's
// registered keys, and the delay before Entra accepts a key added through
// Graph.
func ExampleEmulator_AppKeyCredentials() {
	emu, err := kvasserttest.New(scenario.Demo(), nil)
	if err != nil {
		log.Fatal(err)
	}
	defer emu.Close()
	emuhook.Of(emu).SetGraphPropagationDelay(30 * time.Second) // on the emulator's clock (SetClock)

	objectID, _ := emuhook.Of(emu).AppObjectID(scenario.DemoAppClientID)
	keys, _ := emu.AppKeyCredentials(scenario.DemoAppClientID)
	fmt.Println("POST", emuhook.GraphURL+"applications/"+objectID+"/addKey")
	fmt.Println(len(keys), "key:", keys[0].DisplayName, "- accepted at once:", keys[0].ActiveAt.IsZero())
	// Output:
	// POST https://graph.microsoft.com/v1.0/applications/b2d4f6a8-0c1e-4a3b-8d5f-7a9c1e3b5d70/addKey
	// 1 key: CN=kvassert demo SaaS - accepted at once: true
}
