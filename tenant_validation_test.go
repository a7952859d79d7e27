package kvassert

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"

	"github.com/kvassert/kvassert/internal/entraid"
)

// Names made only of dots, or with an empty label, cannot be a tenant: they
// are refused by ValidTenantID, NewCredential and GetToken before any
// network call; GUIDs and domains still pass.
func TestTenantNamesThatCannotBeTenants(t *testing.T) {
	bad := []string{".", "..", "...", ".contoso.com", "contoso.com.", "contoso..com", "-", "contoso-.com", "-contoso.com", strings.Repeat("a", 64) + ".com"}
	good := []string{testHome, strings.ToUpper(testOther), "contoso.onmicrosoft.com", "Contoso.OnMicrosoft.com", "adfs.contoso.com", "common.example", "xn--bcher-kva.example", "a", "a-b.c-d.e1"}
	for _, tn := range bad {
		if entraid.ValidTenantID(tn) {
			t.Errorf("entraid.ValidTenantID(%q) = true", tn)
		}
	}
	for _, tn := range good {
		if !entraid.ValidTenantID(tn) {
			t.Errorf("entraid.ValidTenantID(%q) = false", tn)
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

// Names that are not one tenant: "common", "organizations" and
// "consumers" (any tenant), "adfs" and "dstsv2", which make MSAL switch to
// ADFS or dSTS handling (an extra discovery GET, confusing errors). They
// passed validation; now ValidTenantID, NewCredential,
// AdditionallyAllowedTenants and GetToken refuse them, in any case, with an
// InputError before any network call.
func TestTenantAliasesAreRefused(t *testing.T) {
	aliases := []string{"common", "Common", "organizations", "ORGANIZATIONS", "consumers", "adfs", "ADFS", "dstsv2", "DSTSv2"}
	src, tr := &countingSource{}, &failingTransport{}
	cred, err := NewCredential(testHome, testClient, src, &CredentialOptions{
		ClientOptions: policy.ClientOptions{Transport: tr}, AdditionallyAllowedTenants: []string{"*"},
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, tn := range aliases {
		if entraid.ValidTenantID(tn) {
			t.Errorf("entraid.ValidTenantID(%q) = true", tn)
		}
		_, err := cred.GetToken(context.Background(), policy.TokenRequestOptions{TenantID: tn, Scopes: []string{testScope}})
		var ie *InputError
		if !errors.As(err, &ie) || ie.Input != "tenant" || !strings.Contains(err.Error(), "specific tenant") {
			t.Errorf("GetToken(tenant %q): %v, want an InputError asking for a specific tenant", tn, err)
		}
		if _, err := NewCredential(tn, testClient, src, nil); err == nil {
			t.Errorf("NewCredential(%q) accepted", tn)
		}
		if _, err := NewCredential(testHome, testClient, src, &CredentialOptions{AdditionallyAllowedTenants: []string{tn}}); err == nil {
			t.Errorf("AdditionallyAllowedTenants %q accepted", tn)
		}
	}
	if src.calls != 0 || tr.calls != 0 {
		t.Fatalf("refused tenants made %d assertions and %d HTTP calls", src.calls, tr.calls)
	}
}
