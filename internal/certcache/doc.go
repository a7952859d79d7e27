// Package certcache reads a Key Vault certificate once (DER, thumbprints,
// the versioned key ID to sign with, validity), serves it from memory with
// a keyvault.Signer for its key, and follows rotation: after a TTL it looks
// for a new version in the background, so rotation is picked up without a
// restart and a slow or failing vault never holds up a caller that has a
// valid certificate. It remembers the version Entra accepts (NoteAccepted,
// NoteRefused, Adopt), so that a version Key Vault renewed but nobody
// registered on the app yet does not stop tokens.
//
// It is what kvassert.KeyVaultCertificateSource, rotation and the CLI use;
// it is internal because no user calls it directly.
package certcache
