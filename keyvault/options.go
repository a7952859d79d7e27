package keyvault

import (
	"net/http"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azkeys"

	"github.com/kvassert/kvassert/telemetry"
)

// DefaultMaxThrottleWait is how long a sign waits out throttling when
// Options.MaxThrottleWait is zero.
const DefaultMaxThrottleWait = 2 * time.Minute

// Options configure the Azure SDK clients this package creates.
type Options struct {
	// ClientOptions for azkeys and azcertificates: transport, retries,
	// logging, cloud. The zero value uses azcore's defaults (3 retries on
	// 408/5xx, honouring Retry-After), except that the keys client never
	// retries 429 itself: the signer waits throttling out at the vault's
	// Throttle (unless ClientOptions.Retry.StatusCodes is set).
	ClientOptions policy.ClientOptions
	// AllowLoopback accepts https vault URLs on this machine (127.0.0.1, [::1],
	// localhost), for emulators that cannot be reached through a re-routing
	// transport. Off by default: a vault URL from configuration must never
	// make the app send its Key Vault token to a local listener.
	AllowLoopback bool
	// Throttle paces the signs sent to the vault (see Throttle). Nil means
	// the process-wide gate of the vault's host (NewHoldOff, one per host),
	// which every signer of that vault in the process shares. Give your own
	// to isolate signers (tests) or to share the hold-off between processes.
	Throttle Throttle
	// MaxThrottleWait bounds how long one sign waits out throttling (429),
	// counted from the start of the sign, even when the caller's context has
	// no deadline: once it has passed, the sign fails with an error naming
	// the throttling. Zero means DefaultMaxThrottleWait; negative values
	// are refused.
	MaxThrottleWait time.Duration
	// Telemetry selects where the signs', throttling's and certificate
	// reads' metrics and spans go (default: the global OpenTelemetry
	// providers; see package telemetry). Its TracerProvider is also given to
	// azkeys and azcertificates unless ClientOptions.TracingProvider is set,
	// so that their spans nest under kvassert's.
	Telemetry telemetry.Options
}

// check refuses a loopback vault unless AllowLoopback is set, and bad
// option values.
func (o *Options) check(v Vault) error {
	if v.Loopback && (o == nil || !o.AllowLoopback) {
		return inputErr("vault URL", "%s is an address on this machine; only Azure vault hosts are used unless Options.AllowLoopback is set (for emulators)", v.Host)
	}
	if o != nil && o.MaxThrottleWait < 0 {
		return inputErr("MaxThrottleWait", "Options.MaxThrottleWait is %v; give a positive duration, or 0 for the default (%v)", o.MaxThrottleWait, DefaultMaxThrottleWait)
	}
	return nil
}

// throttle is the Throttle for signs to v: Options.Throttle, else the
// process-wide gate of v's host.
func (o *Options) throttle(v Vault) Throttle {
	if o != nil && o.Throttle != nil {
		return o.Throttle
	}
	return gateFor(v.Host)
}

// maxThrottleWait is MaxThrottleWait with its default.
func (o *Options) maxThrottleWait() time.Duration {
	if o == nil || o.MaxThrottleWait <= 0 {
		return DefaultMaxThrottleWait
	}
	return o.MaxThrottleWait
}

// telemetry is Telemetry, for nil options too.
func (o *Options) telemetry() telemetry.Options {
	if o == nil {
		return telemetry.Options{}
	}
	return o.Telemetry
}

func (o *Options) keysClient(v Vault, cred azcore.TokenCredential) (*azkeys.Client, error) {
	if cred == nil {
		return nil, errNoCredential
	}
	if err := o.check(v); err != nil {
		return nil, err
	}
	var co policy.ClientOptions
	if o != nil {
		co = o.ClientOptions
	}
	o.telemetry().ApplyTracing(&co)
	co.TracingProvider = quietTracing(co.TracingProvider)
	co.PerRetryPolicies = append(append([]policy.Policy(nil), co.PerRetryPolicies...), statusPolicy{})
	if co.Retry.StatusCodes == nil {
		// 429 is left to Signer.sign and the vault's Throttle.
		co.Retry.StatusCodes = []int{http.StatusRequestTimeout, http.StatusInternalServerError, http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout}
	}
	// An emulator on a loopback address cannot pass the challenge's
	// resource-domain check; real vault hosts always keep it on.
	return azkeys.NewClient(v.URL, guard(cred), &azkeys.ClientOptions{ClientOptions: co, DisableChallengeResourceVerification: v.Loopback})
}
