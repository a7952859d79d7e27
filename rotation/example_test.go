package rotation_test

import (
	"context"
	"fmt"
	"io"
	"log"
	"log/slog"

	"github.com/kvassert/kvassert/internal/emuhook"
	"github.com/kvassert/kvassert/keyvault"
	"github.com/kvassert/kvassert/kvasserttest"
	"github.com/kvassert/kvassert/kvasserttest/scenario"
	"github.com/kvassert/kvassert/rotation"
)

// One roll pass, as a cron job would run it. Here the vault and Entra are the
// emulators; in production VaultCredential is the workload's identity (for
// example azidentity.NewDefaultAzureCredential) and ClientOptions is empty.
func ExampleRoller_Roll() {
	emu, err := kvasserttest.New(scenario.Demo(), nil)
	if err != nil {
		log.Fatal(err)
	}
	defer emu.Close()
	vaultCred, _ := emu.ClientSecretCredential(emuhook.DemoWorkloadClientID)

	r, err := rotation.New(rotation.Config{
		VaultURL:        "https://kvassert-demo.vault.azure.net/",
		Certificate:     "saas-app-auth",
		VaultCredential: vaultCred,
		VaultOptions:    keyvault.Options{ClientOptions: emu.ClientOptions()},
		TenantID:        scenario.DemoHomeTenant,
		ClientID:        scenario.DemoAppClientID,
		AppObjectID:     scenario.DemoAppObjectID, // the app registration's Object ID
		ClientOptions:   emu.ClientOptions(),
		Logger:          slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
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
