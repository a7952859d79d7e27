package kvassert_test

import (
	"context"
	"fmt"
	"log"
	"sync/atomic"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"

	"github.com/kvassert/kvassert"
	"github.com/kvassert/kvassert/internal/rootaccess"
	"github.com/kvassert/kvassert/kvasserttest"
	"github.com/kvassert/kvassert/kvasserttest/scenario"
)

// A Source that wraps another (here to count its assertions) is made with
// WrapSource: it passes the context on unchanged (the signer is noted in
// it), and WrapSource forwards Entra's answers, throttling and the
// source's identity, so the wrapped Key Vault source still learns which
// certificate version Entra accepts.
func ExampleWrapSource() {
	emu, err := kvasserttest.New(scenario.Demo(), nil)
	if err != nil {
		log.Fatal(err)
	}
	defer emu.Close()
	vaultCred, _ := emu.ClientSecretCredential(workloadID)
	kv, err := kvassert.NewKeyVaultCertificateSource("https://kvassert-demo.vault.azure.net/", "saas-app-auth", vaultCred, nil)
	if err != nil {
		log.Fatal(err)
	}
	var assertions atomic.Int64
	src, err := kvassert.WrapSource(kv, func(ctx context.Context, clientID, tokenEndpoint string) (string, error) {
		assertions.Add(1)
		return kv.Assertion(ctx, clientID, tokenEndpoint)
	})
	if err != nil {
		log.Fatal(err)
	}
	cred, err := kvassert.NewCredential(scenario.DemoHomeTenant, scenario.DemoAppClientID, src,
		&kvassert.CredentialOptions{ClientOptions: emu.ClientOptions(), AdditionallyAllowedTenants: []string{"*"}})
	if err != nil {
		log.Fatal(err)
	}
	if _, err := cred.GetToken(context.Background(), policy.TokenRequestOptions{
		TenantID: scenario.DemoContosoTenant, Scopes: []string{"https://graph.microsoft.com/.default"}}); err != nil {
		log.Fatal(err)
	}
	// What the source learnt (module-internal view, for this test).
	inUse, _ := rootaccess.Cache(kv).Certificate(context.Background())
	accepted := rootaccess.Cache(kv).AcceptedCertificate()
	fmt.Println(assertions.Load(), accepted != nil && accepted.Version == inUse.Version)
	// Output: 1 true
}
