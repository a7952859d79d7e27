// Package obs holds kvassert's OpenTelemetry instruments and the hooks the
// credential, the Key Vault signer and certificate source, and the shared
// cache call, and the names of every metric, attribute and span
// (names.go; listed for users in docs/telemetry.md, which
// TestDocListsEveryName keeps complete). The options are the public
// telemetry.Options.
//
// Each hook is one call at its call site and is safe on a nil receiver
// (telemetry off). The cache-hit hook (Credential.Hit) allocates nothing:
// its attribute sets and option slices are built once.
package obs
