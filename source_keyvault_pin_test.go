package kvassert_test

import (
	"context"
	"crypto/rsa"
	"crypto/sha1"
	"encoding/hex"
	"strings"
	"testing"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azcertificates"

	"github.com/kvassert/kvassert"
	"github.com/kvassert/kvassert/internal/emuhook"
	"github.com/kvassert/kvassert/internal/holdoff"
	"github.com/kvassert/kvassert/internal/jwtassert"
	"github.com/kvassert/kvassert/internal/testfixture"
	"github.com/kvassert/kvassert/kvasserttest"
	"github.com/kvassert/kvassert/kvasserttest/scenario"
)

// NewKeyVaultKeySource with a Thumbprint and an unversioned key ID pins the
// version it read: after the certificate is renewed in the vault (a new
// version with a new key, which Entra does not know yet), the source still
// signs with the key of the registered certificate its thumbprint names, so
// tokens keep coming instead of AADSTS7000274 until a restart.
func TestKeySourceThumbprintPinsTheKeyVersion(t *testing.T) {
	e := kvasserttest.NewTB(t, scenario.Demo(), nil)
	ctx := context.Background()
	workload := testfixture.VaultCredential(t, e)
	cert, err := e.Certificate(scenario.DemoVault, scenario.DemoCertificate)
	if err != nil {
		t.Fatal(err)
	}
	keyID := e.VaultURL(scenario.DemoVault) + "keys/" + scenario.DemoCertificate // unversioned
	sum := sha1.Sum(cert.Raw)
	src, err := kvassert.NewKeyVaultKeySource(keyID, nil, workload, &kvassert.KeyVaultKeyOptions{
		ClientOptions: e.ClientOptions(), Throttle: holdoff.New(), Thumbprint: hex.EncodeToString(sum[:])})
	if err != nil {
		t.Fatal(err)
	}

	// The certificate is renewed: a new version with a new key.
	certs := testfixture.Certificates(t, e, scenario.DemoVault)
	pol, err := certs.GetCertificatePolicy(ctx, scenario.DemoCertificate, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := certs.CreateCertificate(ctx, scenario.DemoCertificate, azcertificates.CreateCertificateParameters{CertificatePolicy: &pol.CertificatePolicy}, nil); err != nil {
		t.Fatal(err)
	}
	renewed, err := e.Certificate(scenario.DemoVault, scenario.DemoCertificate)
	if err != nil || renewed.Equal(cert) || renewed.PublicKey.(*rsa.PublicKey).Equal(cert.PublicKey) {
		t.Fatalf("the renewal made no new key: %v", err)
	}

	jwt, err := src.Assertion(ctx, scenario.DemoAppClientID, emuhook.TokenEndpoint(scenario.DemoContosoTenant))
	if err != nil {
		t.Fatal(err)
	}
	tok, err := jwtassert.Parse(jwt)
	if err != nil {
		t.Fatal(err)
	}
	if p := tok.Check(jwtassert.CheckOptions{Certificate: cert, ClientID: scenario.DemoAppClientID}); len(p) != 0 {
		t.Fatalf("after the renewal the assertion does not match the registered certificate: %s", strings.Join(p, "; "))
	}
	// And Entra takes it.
	cred := testfixture.NewCredential(t, e, src, nil)
	if _, err := cred.GetToken(ctx, policy.TokenRequestOptions{TenantID: scenario.DemoContosoTenant, Scopes: []string{"https://graph.microsoft.com/.default"}}); err != nil {
		t.Fatalf("token after the renewal: %v", err)
	}
}
