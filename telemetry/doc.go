// Package telemetry holds the Options that select where kvassert's
// OpenTelemetry metrics and spans go.
//
// kvassert uses only the OpenTelemetry API (go.opentelemetry.io/otel/metric
// and /trace). By default it takes the global providers, so an application
// that installed an OpenTelemetry SDK gets kvassert's telemetry with no code;
// without one, every instrument is a no-op. To send it elsewhere, set the
// Telemetry field of the component's options (kvassert.CredentialOptions,
// the source options, keyvault.SignerOptions, fleet's options).
//
// Every metric, attribute and span kvassert reports, with its type, unit
// and meaning, is listed in docs/telemetry.md. In short: token requests,
// acquisitions and refreshes (kvassert.token.*), Key Vault signs,
// throttling and certificate reads, with the time left on the active
// certificate to alert on (kvassert.keyvault.*), and the fleet's shared
// cache (kvassert.shared_cache.*); spans kvassert.acquire_token,
// kvassert.keyvault.sign, kvassert.token_request and
// kvassert.keyvault.read_certificate. Failures carry error.type, taken from
// typed errors only; attributes never hold a token, an assertion or a
// secret, and every label set is bounded.
package telemetry
