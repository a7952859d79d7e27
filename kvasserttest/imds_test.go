package kvasserttest_test

import (
	"context"
	"crypto/sha256"
	"net/http"
	"os"
	"strings"
	"testing"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azcertificates"
	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azkeys"

	"github.com/kvassert/kvassert/internal/emuhook"
	"github.com/kvassert/kvassert/kvasserttest"
	"github.com/kvassert/kvassert/kvasserttest/scenario"
)

// cleanAzureEnv clears every environment variable that makes azidentity
// pick a credential or a managed identity endpoint other than IMDS.
func cleanAzureEnv(t *testing.T) {
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		for _, prefix := range []string{"AZURE_", "IDENTITY_", "MSI_", "IMDS_"} {
			if strings.HasPrefix(name, prefix) {
				t.Setenv(name, "")
				os.Unsetenv(name) // t.Setenv restores it after the test
			}
		}
	}
}

// TestDefaultAzureCredentialThroughIMDS: with a clean environment, the
// newcomer's vault credential, azidentity.NewDefaultAzureCredential with the
// emulator's ClientOptions as the only wiring, gets its token from the
// emulated IMDS as the demo's managed identity, which may read the demo
// certificate and sign with its key.
func TestDefaultAzureCredentialThroughIMDS(t *testing.T) {
	cleanAzureEnv(t)
	e := kvasserttest.NewTB(t, nil, nil)
	co := e.ClientOptions()
	cred, err := azidentity.NewDefaultAzureCredential(&azidentity.DefaultAzureCredentialOptions{ClientOptions: co})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	// Claims skip MSAL's process-wide managed identity token cache, so this
	// request reaches the emulated IMDS (counted below).
	tok, err := cred.GetToken(ctx, policy.TokenRequestOptions{Scopes: []string{"https://vault.azure.net/.default"}, Claims: `{"access_token":{"nbf":{"essential":true}}}`})
	if err != nil {
		t.Fatalf("DefaultAzureCredential through the emulated IMDS: %v", err)
	}
	if c := entraDecode(t, tok.Token); c.Oid != emuhook.DemoIdentityObjectID || c.Tid != scenario.DemoHomeTenant {
		t.Fatalf("token for oid %s in tenant %s, want the demo managed identity", c.Oid, c.Tid)
	}
	if e.Count(kvasserttest.OpManagedIdentity) == 0 {
		t.Fatal("the managed identity endpoint was not counted")
	}

	vaultURL := "https://" + scenario.DemoVault + ".vault.azure.net/"
	certs, err := azcertificates.NewClient(vaultURL, cred, &azcertificates.ClientOptions{ClientOptions: co})
	if err != nil {
		t.Fatal(err)
	}
	cert, err := certs.GetCertificate(ctx, scenario.DemoCertificate, "", nil)
	if err != nil {
		t.Fatalf("reading the demo certificate as the managed identity: %v", err)
	}
	keys, err := azkeys.NewClient(vaultURL, cred, &azkeys.ClientOptions{ClientOptions: co})
	if err != nil {
		t.Fatal(err)
	}
	digest := sha256.Sum256([]byte("hello"))
	signed, err := keys.Sign(ctx, cert.KID.Name(), cert.KID.Version(), azkeys.SignParameters{Algorithm: to.Ptr(azkeys.SignatureAlgorithmPS256), Value: digest[:]}, nil)
	if err != nil || len(signed.Result) != 256 {
		t.Fatalf("signing with the demo certificate's key as the managed identity: %v", err)
	}
}

// TestIMDSProtocol: the emulated IMDS answers only with the Metadata header
// (azidentity's availability probe gets 400), names identities as IMDS
// does, and refuses an unknown one.
func TestIMDSProtocol(t *testing.T) {
	e := kvasserttest.NewTB(t, nil, nil)
	get := func(query string, metadata bool) *http.Response {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, "http://169.254.169.254/metadata/identity/oauth2/token?api-version=2018-02-01&resource=https://vault.azure.net"+query, nil)
		if metadata {
			req.Header.Set("Metadata", "true")
		}
		resp, err := e.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	if r := get("", false); r.StatusCode != http.StatusBadRequest {
		t.Errorf("probe without Metadata: %d, want 400", r.StatusCode)
	}
	if r := get("&client_id="+emuhook.DemoIdentityClientID, true); r.StatusCode != http.StatusOK {
		t.Errorf("by client ID: %d", r.StatusCode)
	}
	if r := get("&object_id="+emuhook.DemoIdentityObjectID, true); r.StatusCode != http.StatusOK {
		t.Errorf("by object ID: %d", r.StatusCode)
	}
	if r := get("&client_id=00000000-0000-4000-8000-000000000000", true); r.StatusCode != http.StatusBadRequest {
		t.Errorf("unknown identity: %d, want 400", r.StatusCode)
	}
	e.InjectFault(kvasserttest.OpManagedIdentity, kvasserttest.Fault{Drop: true, Times: 1})
	req, _ := http.NewRequest(http.MethodGet, "http://169.254.169.254/metadata/identity/oauth2/token?api-version=2018-02-01&resource=https://vault.azure.net", nil)
	req.Header.Set("Metadata", "true")
	if resp, err := e.Client().Do(req); err == nil {
		resp.Body.Close()
		t.Error("a dropped IMDS request answered")
	}
}
