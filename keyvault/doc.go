// Package keyvault signs with keys held in Azure Key Vault or Managed HSM,
// through the official Azure SDK for Go client (azkeys).
//
// Signer is a crypto.Signer whose private key never leaves the service: each
// signature is exactly one keys/sign call (plus azcore's retries on 408 and
// 5xx, which honour Retry-After within the caller's context). A 429 is not
// retried by azcore: the signers of a vault share a Throttle (by default one
// in-process gate per vault host) that holds every sign off for the vault's
// Retry-After and then releases the waiters gradually (one probe, then as
// many as the vault took last time spread over 500 ms); a sign waits out
// throttling at most SignerOptions.MaxThrottleWait (2 minutes by default),
// even with a context that never ends.
//
// Errors a caller inspects: ServiceError (Key Vault's answer, worded by
// kvassert without the answer's text), CredentialError (the vault
// credential's failure), HoldOffError (a throttling hold-off past the
// caller's deadline), and kvassert.InputError for refused input.
//
// Only https vault URLs on the Azure clouds' vault and Managed HSM domains
// are accepted; https on a loopback address is allowed for emulators
// (SignerOptions.AllowLoopback). The certificate that goes with a key is
// read and cached by kvassert.KeyVaultCertificateSource.
package keyvault

import "github.com/kvassert/kvassert/internal/inputerr"

// inputErr is the error for input this package refuses (a
// kvassert.InputError).
func inputErr(input, format string, args ...any) error {
	return inputerr.New("keyvault", input, format, args...)
}
