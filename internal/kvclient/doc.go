// Package kvclient is the Azure SDK client plumbing that keyvault, the
// certificate cache, rotation and fleet share: the rewording of Key Vault's
// and the vault credential's errors (ServiceError, CredentialError, named
// keyvault.ServiceError and keyvault.CredentialError for users), Sanitize,
// the credential guard, quiet tracing and the client options every vault
// client gets.
package kvclient

import (
	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"

	"github.com/kvassert/kvassert/internal/inputerr"
	"github.com/kvassert/kvassert/internal/obs"
	"github.com/kvassert/kvassert/telemetry"
)

// ClientOptions is co as a vault client gets it: the telemetry's tracing
// provider unless co has one, with the Azure SDK's spans kept free of the
// vault's answers (QuietTracing).
func ClientOptions(co policy.ClientOptions, tel telemetry.Options) policy.ClientOptions {
	obs.ApplyTracing(tel, &co)
	co.TracingProvider = QuietTracing(co.TracingProvider)
	return co
}

// CheckCredential refuses a nil vault credential.
func CheckCredential(cred azcore.TokenCredential) error {
	if cred == nil {
		return inputerr.New("keyvault", "credential", "no credential (pass an azcore.TokenCredential, e.g. azidentity.NewDefaultAzureCredential)")
	}
	return nil
}
