// Package telemetry names kvassert's OpenTelemetry metrics and spans and
// holds the Options that select where they go.
//
// kvassert uses only the OpenTelemetry API (go.opentelemetry.io/otel/metric
// and /trace). By default it takes the global providers, so an application
// that installed an OpenTelemetry SDK gets kvassert's telemetry with no code;
// without one, every instrument is a no-op.
//
// # Metrics
//
// Names follow OpenTelemetry's semantic conventions: units in UCUM,
// durations as histograms in seconds, counters without a _total suffix
// (Prometheus exporters add it), failures in error.type, and only
// low-cardinality attributes. kvassert.tenant.id is added to the token
// metrics only when Options.TenantAttribute is set.
//
//	Name                                            Type                    Unit        Attributes                                                  Meaning
//	kvassert.token.requests                         Counter                 {request}   kvassert.token.outcome, error.type, [kvassert.tenant.id]     GetToken calls: cache_hit, acquired (waited for the network), error
//	kvassert.token.acquire.duration                 Histogram               s           error.type, [kvassert.tenant.id]                             one network acquisition: assertion, Key Vault sign, token request
//	kvassert.token.refreshes                        Counter                 {refresh}   error.type, [kvassert.tenant.id]                             background refreshes finished (error.type set when one failed)
//	kvassert.token.cached.count                     UpDownCounter (async)   {token}     -                                                            tokens in the credential's cache
//	kvassert.keyvault.sign.duration                 Histogram               s           server.address, error.type                                   one Key Vault sign, throttling waits included
//	kvassert.keyvault.throttle.wait.duration        Histogram               s           server.address                                               each wait at the vault's shared throttling gate
//	kvassert.keyvault.throttled_responses           Counter                 {response}  server.address                                               429 answers from Key Vault
//	kvassert.keyvault.certificate.reads             Counter                 {read}      server.address, kvassert.certificate.name, error.type        certificate reads (error.type set on failure)
//	kvassert.keyvault.certificate.time_left         Gauge (async)           s           server.address, kvassert.certificate.name, .version          seconds until the active certificate's notAfter (alert on it)
//	kvassert.keyvault.certificate.rotation_pending  Gauge (async)           1           server.address, kvassert.certificate.name, .version, .newest_version  1 while the vault has a newer version than the one in use
//	kvassert.shared_cache.lookups                   Counter                 {lookup}    kvassert.shared_cache.outcome, error.type                    shared-cache (Redis) lookups: hit, miss, error
//	kvassert.shared_cache.lock.wait.duration        Histogram               s           error.type                                                   waits for the shared cache's acquisition lock
//	kvassert.shared_cache.fallbacks                 Counter                 {fallback}  error.type                                                   acquisitions made locally because the shared cache failed
//
// Duration histograms use the semantic conventions' bucket boundaries for
// seconds (5 ms to 10 s). kvassert.token.requests is counted in-process and
// reported at each collection (an asynchronous counter): a cache hit then
// costs one striped atomic add and no allocation, whatever the provider.
//
// error.type is an AADSTS code ("AADSTS700016", from kvassert.AuthError's
// Code), "input" (any kvassert.InputError: input refused before a network
// call), "throttled", "timeout", "canceled", a documented Key Vault error
// code ("Forbidden", "KeyNotFound"), "http_<status>", "network", or
// "_OTHER". It is taken from typed errors only, never from an error's text
// (which may quote a caller's tenant or a server's message), and its set of
// values is bounded: error codes a server makes up are reported by HTTP
// status, and past 128 distinct typed values new ones are "_OTHER".
//
// Every label set is bounded: with Options.TenantAttribute, a credential
// reports at most 512 tenants (later ones as kvassert.tenant.id=_OTHER), and
// kvassert.token.requests at most 1024 series per credential (the rest
// counted in one series per outcome with otel.metric.overflow=true), below
// the OpenTelemetry SDK's default cardinality limit of 2000.
//
// # Spans
//
// One kvassert.acquire_token span per network acquisition (never per cache
// hit), with children kvassert.keyvault.sign (under which azkeys' Client.Sign
// and its HTTP spans nest) and kvassert.token_request (under which the
// azcore pipeline's HTTP POST nests); kvassert.keyvault.read_certificate for
// each certificate read. Span attributes hold the tenant, scope, vault host
// and certificate name, never a token, an assertion or a secret. A failed
// span has status Error, described by its error.type, which is also an
// attribute. Options.AzureTracingProvider gives the Azure SDK clients the
// same TracerProvider, so that one trace shows the whole acquisition.
package telemetry
