package rotation_test

import (
	"context"
	"fmt"
	"log"

	"github.com/kvassert/kvassert/internal/emuhook"
	"github.com/kvassert/kvassert/kvasserttest"
	"github.com/kvassert/kvassert/kvasserttest/scenario"
	"github.com/kvassert/kvassert/rotation"
)

// One roll pass, as a cron job would run it. Here the vault and Entra are the
// emulators; in production the vault credential is the workload's identity
// (for example azidentity.NewDefaultAzureCredential) and ClientOptions is
// left empty.
func ExampleRoller_Roll() {
	emu, err := kvasserttest.New(scenario.Demo(), nil)
	if err != nil {
		log.Fatal(err)
	}
	defer emu.Close()
	vaultCred, _ := emu.ClientSecretCredential(emuhook.DemoWorkloadClientID)

	r, err := rotation.New("https://kvassert-demo.vault.azure.net/", "saas-app-auth", vaultCred,
		rotation.Application{
			TenantID: scenario.DemoHomeTenant,
			ClientID: scenario.DemoAppClientID,
			ObjectID: scenario.DemoAppObjectID, // the app registration's Object ID
		},
		&rotation.Options{ClientOptions: emu.ClientOptions()})
	if err != nil {
		log.Fatal(err)
	}
	rep, err := r.Roll(context.Background())
	if err != nil {
		log.Fatal(err)
	}
	for _, s := range rep.Steps {
		fmt.Println(s.Action, "-", s.Why)
	}
	fmt.Println("changed:", rep.Changed)
	// Output:
	// accepted - Entra accepts the newest valid version
	// changed: false
}

// Status says per version what a roll does with it and why; it changes
// nothing.
func ExampleRoller_Status() {
	emu, err := kvasserttest.New(scenario.Demo(), nil)
	if err != nil {
		log.Fatal(err)
	}
	defer emu.Close()
	vaultCred, _ := emu.ClientSecretCredential(emuhook.DemoWorkloadClientID)

	r, err := rotation.New("https://kvassert-demo.vault.azure.net/", "saas-app-auth", vaultCred,
		rotation.Application{TenantID: scenario.DemoHomeTenant, ClientID: scenario.DemoAppClientID, ObjectID: scenario.DemoAppObjectID},
		&rotation.Options{ClientOptions: emu.ClientOptions()})
	if err != nil {
		log.Fatal(err)
	}
	st, err := r.Status(context.Background())
	if err != nil {
		log.Fatal(err)
	}
	for _, s := range st {
		fmt.Println(s.Action, s.Active, "-", s.Reason)
	}
	// Output:
	// accepted true - active: the newest version Entra accepts
}
