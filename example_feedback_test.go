package kvassert_test

import (
	"context"
	"fmt"
	"log"
	"sync/atomic"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"

	"github.com/kvassert/kvassert"
	"github.com/kvassert/kvassert/internal/certcache"
	"github.com/kvassert/kvassert/internal/emuhook"
	"github.com/kvassert/kvassert/kvasserttest"
	"github.com/kvassert/kvassert/kvasserttest/scenario"
)

// countingSource wraps a Source to count its assertions. It passes the
// context on unchanged (the signer is noted in it) and forwards Feedback
// and ThrottleReporter, so the wrapped source keeps its rotation handling
// and the credential its throttling diagnostics.
type countingSource struct {
	inner      kvassert.Source
	assertions atomic.Int64
}

func (s *countingSource) Assertion(ctx context.Context, clientID, tokenEndpoint string) (string, error) {
	s.assertions.Add(1)
	return s.inner.Assertion(ctx, clientID, tokenEndpoint)
}

func (s *countingSource) Accepted(signer string) {
	if fb, ok := s.inner.(kvassert.Feedback); ok {
		fb.Accepted(signer)
	}
}

func (s *countingSource) Refused(ctx context.Context, signer string, code int) bool {
	fb, ok := s.inner.(kvassert.Feedback)
	return ok && fb.Refused(ctx, signer, code)
}

func (s *countingSource) ThrottledSince() (time.Time, bool) {
	if tr, ok := s.inner.(kvassert.ThrottleReporter); ok {
		return tr.ThrottledSince()
	}
	return time.Time{}, false
}

// A Source that wraps another forwards Feedback and ThrottleReporter: the
// wrapped Key Vault source still learns which certificate version Entra
// accepts.
func ExampleFeedback() {
	emu, err := kvasserttest.New(scenario.Demo(), nil)
	if err != nil {
		log.Fatal(err)
	}
	defer emu.Close()
	vaultCred, _ := emu.ClientSecretCredential(emuhook.DemoWorkloadClientID)
	kv, err := kvassert.NewKeyVaultCertificateSource(emu.VaultURL(scenario.DemoVault), scenario.DemoCertificate, vaultCred,
		&kvassert.KeyVaultCertificateOptions{Options: certcache.Options{ClientOptions: emu.ClientOptions()}})
	if err != nil {
		log.Fatal(err)
	}
	src := &countingSource{inner: kv}
	cred, err := kvassert.NewCredential(scenario.DemoHomeTenant, scenario.DemoAppClientID, src,
		&kvassert.CredentialOptions{ClientOptions: emu.ClientOptions(), AdditionallyAllowedTenants: []string{"*"}})
	if err != nil {
		log.Fatal(err)
	}
	if _, err := cred.GetToken(context.Background(), policy.TokenRequestOptions{
		TenantID: scenario.DemoContosoTenant, Scopes: []string{"https://graph.microsoft.com/.default"}}); err != nil {
		log.Fatal(err)
	}
	inUse, _ := kv.Certificate(context.Background())
	accepted := kv.Cache().AcceptedCertificate()
	fmt.Println(src.assertions.Load(), accepted != nil && accepted.Version == inUse.Version)
	// Output: 1 true
}
