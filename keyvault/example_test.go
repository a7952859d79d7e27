package keyvault_test

import (
	"context"
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"errors"
	"fmt"
	"log"

	"github.com/kvassert/kvassert/keyvault"
	"github.com/kvassert/kvassert/kvasserttest"
	"github.com/kvassert/kvassert/kvasserttest/scenario"
)

// A crypto.Signer whose private key stays in Key Vault. In production cred is
// e.g. azidentity.NewDefaultAzureCredential(nil) and opts is nil.
func ExampleNewSigner() {
	emu, err := kvasserttest.New(scenario.Demo(), nil)
	if err != nil {
		log.Fatal(err)
	}
	defer emu.Close()
	cred, _ := emu.ClientSecretCredential(workloadID)

	signer, err := keyvault.NewSigner(context.Background(), "https://kvassert-demo.vault.azure.net/keys/signing", cred, &keyvault.SignerOptions{ClientOptions: emu.ClientOptions()})
	if err != nil {
		log.Fatal(err)
	}
	digest := sha256.Sum256([]byte("hello"))
	pss := &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash, Hash: crypto.SHA256}
	sig, err := signer.SignContext(context.Background(), digest[:], pss)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(rsa.VerifyPSS(signer.Public().(*rsa.PublicKey), crypto.SHA256, digest[:], sig, pss) == nil)
	// Output: true
}

// Key Vault's refusals are *keyvault.ServiceError (worded by kvassert: the
// answer's body never reaches the error); read the status and the codes
// with errors.As.
func ExampleServiceError() {
	emu, err := kvasserttest.New(scenario.Demo(), nil)
	if err != nil {
		log.Fatal(err)
	}
	defer emu.Close()
	cred, _ := emu.ClientSecretCredential(workloadID)

	_, err = keyvault.NewSigner(context.Background(), "https://kvassert-demo.vault.azure.net/keys/missing", cred, &keyvault.SignerOptions{ClientOptions: emu.ClientOptions()})
	var se *keyvault.ServiceError
	if errors.As(err, &se) {
		fmt.Println(se.StatusCode, se.ErrorCode)
	}
	// Output: 404 KeyNotFound
}

// workloadID is the demo scenario's workload identity (scenario.Demo().Apps[1]),
// which may use the demo vault; its secret is the emulator's.
const workloadID = "3c5e7a9b-2d4f-4a6c-8e0a-1b3d5f7a9c27"
