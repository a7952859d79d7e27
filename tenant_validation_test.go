package kvassert

import (
	"context"
	"strings"
	"testing"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
)

// Names made only of dots, or with an empty label, cannot be a tenant: they
// are refused by ValidTenantID, NewCredential and GetToken before any
// network call; GUIDs and domains still pass.
func TestTenantNamesThatCannotBeTenants(t *testing.T) {
	bad := []string{".", "..", "...", ".contoso.com", "contoso.com.", "contoso..com", "-", "contoso-.com", "-contoso.com", strings.Repeat("a", 64) + ".com"}
	good := []string{testHome, strings.ToUpper(testOther), "contoso.onmicrosoft.com", "Contoso.OnMicrosoft.com", "organizations", "xn--bcher-kva.example", "a", "a-b.c-d.e1"}
	for _, tn := range bad {
		if ValidTenantID(tn) {
			t.Errorf("ValidTenantID(%q) = true", tn)
		}
	}
	for _, tn := range good {
		if !ValidTenantID(tn) {
			t.Errorf("ValidTenantID(%q) = false", tn)
		}
	}
	src, tr := &countingSource{}, &failingTransport{}
	cred, err := NewCredential(testHome, testClient, src, &CredentialOptions{
		ClientOptions: policy.ClientOptions{Transport: tr}, AdditionallyAllowedTenants: []string{"*"},
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, tn := range bad {
		_, err := cred.GetToken(context.Background(), policy.TokenRequestOptions{TenantID: tn, Scopes: []string{testScope}})
		if err == nil || !strings.Contains(err.Error(), "not a tenant ID") {
			t.Errorf("GetToken(tenant %q): %v, want a refusal", tn, err)
		}
		if _, err := NewCredential(tn, testClient, src, nil); err == nil {
			t.Errorf("NewCredential(%q) accepted", tn)
		}
	}
	if src.calls != 0 || tr.calls != 0 {
		t.Fatalf("refused tenants made %d assertions and %d HTTP calls", src.calls, tr.calls)
	}
}
