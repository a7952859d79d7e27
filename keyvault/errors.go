package keyvault

import "github.com/kvassert/kvassert/internal/kvclient"

// ServiceError is an error answer of Key Vault (or of another Azure service
// reached with the vault's clients), worded by kvassert: no text of the
// answer's body reaches it, only values that match strict patterns. Its
// fields: Method, Host, Path of the request (no query); StatusCode;
// ErrorCode ("Forbidden", "CertificateNotFound") and InnerCode
// ("ForbiddenByRbac"), each empty unless it matches
// ^[A-Za-z][A-Za-z0-9_.]{0,63}$; Action, the data action an RBAC refusal
// (403) names ("Microsoft.KeyVault/vaults/keys/sign/action"); Caller, the
// application (client) ID an RBAC refusal names, when it is a GUID.
//
// Its Unwrap returns an *azcore.ResponseError with the same status and
// error code whose response has no body and only the Retry-After and
// x-ms-request-id headers, so that errors.As(err, &*azcore.ResponseError)
// keeps working for code that reads the status. Read it with errors.As.
type ServiceError = kvclient.ServiceError

// CredentialError is a failure of the vault's credential (the
// azcore.TokenCredential given to NewSigner), worded by kvassert. The
// credential's own error is not kept: azidentity's and MSAL's messages
// quote the token endpoint's answer, which for a malformed 200 holds a Key
// Vault access token. Its fields: Credential (the credential's
// CredentialName() when it has such a method, else its Go type);
// AuthenticationFailed (it reached its token endpoint, which refused or
// answered unusably); StatusCode of that answer; Code, the AADSTS code the
// failure names (7000215 for AADSTS7000215); Hint, kvassert's advice for
// Code. errors.Is still finds context.Canceled and
// context.DeadlineExceeded, and errors.As a panic of the credential
// (kvassert.PanicError).
type CredentialError = kvclient.CredentialError
