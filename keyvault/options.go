package keyvault

import (
	"crypto"
	"log/slog"
	"net/http"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azkeys"

	"github.com/kvassert/kvassert/internal/holdoff"
	"github.com/kvassert/kvassert/internal/inputerr"
	"github.com/kvassert/kvassert/internal/kvclient"
	"github.com/kvassert/kvassert/internal/kvid"
	"github.com/kvassert/kvassert/telemetry"
)

// defaultMaxThrottleWait is how long a sign waits out throttling when
// SignerOptions.MaxThrottleWait is zero.
const defaultMaxThrottleWait = 2 * time.Minute

// SignerOptions configure a Signer. A nil *SignerOptions means the
// defaults.
type SignerOptions struct {
	// ClientOptions for the azkeys client: transport, retries, logging,
	// cloud. The zero value uses azcore's defaults (3 retries on 408/5xx,
	// honouring Retry-After), except that the keys client never retries 429
	// itself: the signer waits throttling out at the vault's Throttle
	// (unless ClientOptions.Retry.StatusCodes is set).
	ClientOptions policy.ClientOptions
	// AllowLoopback accepts https vault URLs on this machine (127.0.0.1, [::1],
	// localhost), for emulators that cannot be reached through a re-routing
	// transport. Off by default: a vault URL from configuration must never
	// make the app send its Key Vault token to a local listener.
	AllowLoopback bool
	// PublicKey is the key's public half, when known (for example from its
	// certificate): NewSigner then makes no call and the signer needs only
	// keys/sign. Nil means: read it from the vault (one keys/get call,
	// needing keys/get) and pin the signer to the version read. See
	// NewSigner.
	PublicKey crypto.PublicKey
	// Throttle paces the signs sent to the vault (see Throttle). Nil means
	// the process-wide gate of the vault's host, which every signer of that
	// vault in the process shares. Give your own to isolate signers (tests)
	// or to share the hold-off between processes (fleet.Throttle).
	Throttle Throttle
	// MaxThrottleWait bounds how long one sign waits out throttling (429),
	// counted from the start of the sign, even when the caller's context has
	// no deadline: once it has passed, the sign fails with an error naming
	// the throttling. Zero means 2 minutes; negative values are refused.
	MaxThrottleWait time.Duration
	// Telemetry selects where the signs' and throttling's metrics and spans
	// go (default: the global OpenTelemetry providers; see
	// docs/telemetry.md). Its TracerProvider is also given to azkeys unless
	// ClientOptions.TracingProvider is set, so that its spans nest under
	// kvassert's.
	Telemetry telemetry.Options
	// Logger receives what an operator must act on (nil: slog.Default()).
	// The signer itself logs nothing today: its failures are its errors.
	// Nothing secret is ever logged.
	Logger *slog.Logger
}

// check refuses a loopback vault unless AllowLoopback is set, and bad
// option values.
func (o *SignerOptions) check(v kvid.Vault) error {
	if err := v.CheckLoopback(o != nil && o.AllowLoopback); err != nil {
		return err
	}
	if o != nil && o.MaxThrottleWait < 0 {
		return inputerr.New("keyvault", "MaxThrottleWait", "MaxThrottleWait is %v; give a positive duration, or 0 for the default (%v)", o.MaxThrottleWait, defaultMaxThrottleWait)
	}
	return nil
}

// throttle is the Throttle for signs to v: Throttle, else the process-wide
// gate of v's host.
func (o *SignerOptions) throttle(v kvid.Vault) Throttle {
	if o != nil && o.Throttle != nil {
		return o.Throttle
	}
	return holdoff.For(v.Host)
}

// maxThrottleWait is MaxThrottleWait with its default.
func (o *SignerOptions) maxThrottleWait() time.Duration {
	if o == nil || o.MaxThrottleWait <= 0 {
		return defaultMaxThrottleWait
	}
	return o.MaxThrottleWait
}

// telemetry is Telemetry, for nil options too.
func (o *SignerOptions) telemetry() telemetry.Options {
	if o == nil {
		return telemetry.Options{}
	}
	return o.Telemetry
}

// publicKey is PublicKey, for nil options too.
func (o *SignerOptions) publicKey() crypto.PublicKey {
	if o == nil {
		return nil
	}
	return o.PublicKey
}

func (o *SignerOptions) keysClient(v kvid.Vault, cred azcore.TokenCredential) (*azkeys.Client, error) {
	if err := kvclient.CheckCredential(cred); err != nil {
		return nil, err
	}
	if err := o.check(v); err != nil {
		return nil, err
	}
	var co policy.ClientOptions
	if o != nil {
		co = o.ClientOptions
	}
	co = kvclient.ClientOptions(co, o.telemetry())
	co.PerRetryPolicies = append(append([]policy.Policy(nil), co.PerRetryPolicies...), statusPolicy{})
	if co.Retry.StatusCodes == nil {
		// 429 is left to Signer.sign and the vault's Throttle.
		co.Retry.StatusCodes = []int{http.StatusRequestTimeout, http.StatusInternalServerError, http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout}
	}
	// An emulator on a loopback address cannot pass the challenge's
	// resource-domain check; real vault hosts always keep it on.
	return azkeys.NewClient(v.URL, kvclient.Guard(cred), &azkeys.ClientOptions{ClientOptions: co, DisableChallengeResourceVerification: v.Loopback})
}
