package obs

// ScopeName is the instrumentation scope of kvassert's meters and tracers.
const ScopeName = "github.com/kvassert/kvassert"

// Metric names. docs/telemetry.md has the full table (type, unit,
// attributes, meaning); TestDocListsEveryName keeps it complete.
const (
	// MetricTokenRequests counts GetToken calls by AttrTokenOutcome.
	MetricTokenRequests = "kvassert.token.requests"
	// MetricTokenAcquireDuration is the duration of each network acquisition
	// (assertion, Key Vault sign and token request), in seconds.
	MetricTokenAcquireDuration = "kvassert.token.acquire.duration"
	// MetricTokenRefreshes counts finished background refreshes.
	MetricTokenRefreshes = "kvassert.token.refreshes"
	// MetricTokenCachedCount is the number of tokens in the credential's cache.
	MetricTokenCachedCount = "kvassert.token.cached.count"
	// MetricSignDuration is the duration of each Key Vault sign, throttling
	// waits and retries included, in seconds.
	MetricSignDuration = "kvassert.keyvault.sign.duration"
	// MetricThrottleWaitDuration is the time a sign spent waiting at the
	// vault's shared throttling gate, in seconds.
	MetricThrottleWaitDuration = "kvassert.keyvault.throttle.wait.duration"
	// MetricThrottledResponses counts 429 answers from Key Vault.
	MetricThrottledResponses = "kvassert.keyvault.throttled_responses"
	// MetricCertificateReads counts certificate reads from Key Vault.
	MetricCertificateReads = "kvassert.keyvault.certificate.reads"
	// MetricCertificateTimeLeft is the time until the active certificate's
	// notAfter, in seconds (negative once expired): the metric to alert on.
	MetricCertificateTimeLeft = "kvassert.keyvault.certificate.time_left"
	// MetricCertificateRotationPending is 1 while the vault holds a newer
	// certificate version than the one in use, else 0.
	MetricCertificateRotationPending = "kvassert.keyvault.certificate.rotation_pending"
	// MetricSharedCacheLookups counts shared-cache (Redis) lookups by
	// AttrSharedCacheOutcome.
	MetricSharedCacheLookups = "kvassert.shared_cache.lookups"
	// MetricSharedCacheLockWaitDuration is the time spent waiting for the
	// shared cache's acquisition lock, in seconds.
	MetricSharedCacheLockWaitDuration = "kvassert.shared_cache.lock.wait.duration"
	// MetricSharedCacheFallbacks counts acquisitions made locally because the
	// shared cache failed.
	MetricSharedCacheFallbacks = "kvassert.shared_cache.fallbacks"
	// MetricTenantState counts the transitions of a tenant that worked to
	// a refused state (the customer removed or disabled the app), by
	// AttrTenantReason: once per transition and credential.
	MetricTenantState = "kvassert.tenant.state"
)

// Attribute keys. AttrErrorType and AttrServerAddress are OpenTelemetry
// semantic conventions; the others are kvassert's own.
const (
	// AttrErrorType classifies a failure: an AADSTS code ("AADSTS700016"),
	// "input", "throttled", "timeout", "canceled", a documented Key Vault
	// error code ("Forbidden", "KeyNotFound"), "http_<status>", "network",
	// or "_OTHER"; from typed errors only, never from an error's text. It is
	// absent on success.
	AttrErrorType = "error.type"
	// AttrServerAddress is the vault host (myvault.vault.azure.net).
	AttrServerAddress = "server.address"
	// AttrTokenOutcome is "cache_hit", "acquired" or "error".
	AttrTokenOutcome = "kvassert.token.outcome"
	// AttrTenantID is the tenant a token is for: always on spans, on metrics
	// only with telemetry.Options.TenantAttribute.
	AttrTenantID = "kvassert.tenant.id"
	// AttrTokenScope is the requested scope (spans only).
	AttrTokenScope = "kvassert.token.scope"
	// AttrCertificateName is the Key Vault certificate name.
	AttrCertificateName = "kvassert.certificate.name"
	// AttrCertificateVersion is the certificate version in use.
	AttrCertificateVersion = "kvassert.certificate.version"
	// AttrCertificateNewestVersion is the newest version in the vault.
	AttrCertificateNewestVersion = "kvassert.certificate.newest_version"
	// AttrSharedCacheOutcome is "hit", "miss" or "error".
	AttrSharedCacheOutcome = "kvassert.shared_cache.outcome"
	// AttrTenantReason is the stable label of a tenant's refusal
	// (internal/entraid.Refusal's Reason, e.g. "app_not_found").
	AttrTenantReason = "kvassert.tenant.reason"
)

// Values of AttrTokenOutcome.
const (
	OutcomeCacheHit = "cache_hit"
	OutcomeAcquired = "acquired"
	OutcomeError    = "error"
)

// Values of AttrSharedCacheOutcome.
const (
	SharedCacheHit   = "hit"
	SharedCacheMiss  = "miss"
	SharedCacheError = "error"
)

// Span names. Spans carry no token, assertion or secret; a failed span has
// status Error with AttrErrorType as its description.
const (
	// SpanAcquireToken covers one network acquisition (never a cache hit).
	SpanAcquireToken = "kvassert.acquire_token"
	// SpanSign covers one Key Vault sign; azkeys' Client.Sign and its HTTP
	// spans are its children.
	SpanSign = "kvassert.keyvault.sign"
	// SpanTokenRequest covers the POST to the tenant's token endpoint; the
	// azcore pipeline's HTTP span is its child.
	SpanTokenRequest = "kvassert.token_request"
	// SpanReadCertificate covers one certificate read from Key Vault.
	SpanReadCertificate = "kvassert.keyvault.read_certificate"
	// EventThrottleWait is added to the sign span for each wait at the
	// throttling gate, with attribute "kvassert.wait.seconds".
	EventThrottleWait = "kvassert.keyvault.throttle_wait"
)
