// Package keyvault signs with keys held in Azure Key Vault or Managed HSM
// and reads the certificates that go with them, through the official Azure
// SDK for Go clients (azkeys, azcertificates).
//
// Signer is a crypto.Signer whose private key never leaves the service: each
// signature is exactly one keys/sign call (plus azcore's retries on 408 and
// 5xx, which honour Retry-After within the caller's context). A 429 is not
// retried by azcore: the signers of a vault share a Throttle (by default one
// in-process gate per vault host, NewHoldOff) that holds every sign off for
// the vault's Retry-After and then releases the waiters gradually (one probe,
// then as many as the vault took last time spread over 500 ms); a sign
// waits out throttling at most Options.MaxThrottleWait (2 minutes by
// default), even with a context that never ends.
// CertificateCache reads a certificate once (DER, thumbprints, the versioned
// key ID to sign with, validity) and serves it from memory; after a TTL it
// looks for a new version in the background, so rotation is picked up
// without a restart and a slow or failing vault never holds up a caller
// that has a valid certificate. It remembers the version Entra accepts
// (Accepted, Refused, Accept), so that a version Key Vault renewed but
// nobody registered on the app yet does not stop tokens.
//
// Only https vault URLs on the Azure clouds' vault and Managed HSM domains
// are accepted; https on a loopback address is allowed for emulators.
package keyvault
