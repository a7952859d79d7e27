package rotation_test

import (
	"context"
	"fmt"
	"log"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"

	"github.com/kvassert/kvassert"
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
	vaultCred, _ := emu.ClientSecretCredential(workloadID)

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
	vaultCred, _ := emu.ClientSecretCredential(workloadID)

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

// Inside a service: one replica rolls daily, and the service's own source
// switches to a new version as soon as Entra accepts it. The app registration
// needs no Graph permission: addKey and removeKey take a proof signed in the
// vault with a key the app already has.
func ExampleRoller_Run() {
	var (
		ctx       context.Context        // the service's lifetime
		vaultCred azcore.TokenCredential // the service's identity, e.g. azidentity.NewDefaultAzureCredential
		src       *kvassert.KeyVaultCertificateSource
	)
	r, err := rotation.New("https://contoso-saas.vault.azure.net/", "saas-app-auth", vaultCred,
		rotation.Application{
			TenantID: "contoso-saas.onmicrosoft.com",
			ClientID: "6d2f4a8b-1c3e-4f5a-9b7d-2e4f6a8c0b16",
			ObjectID: "0b8e7c5a-3d1f-4b2e-9a6c-8d7e5f4a3b21", // the app registration's Object ID
		},
		&rotation.Options{Source: src})
	if err != nil {
		log.Fatal(err)
	}
	go r.Run(ctx, 24*time.Hour) // daily with jitter; a failed pass is logged and retried at the next one
}

// workloadID is the demo scenario's workload identity (scenario.Demo().Apps[1]),
// which may use the demo vault; its secret is the emulator's.
const workloadID = "3c5e7a9b-2d4f-4a6c-8e0a-1b3d5f7a9c27"
