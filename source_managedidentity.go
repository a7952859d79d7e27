package kvassert

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/cloud"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"

	"github.com/kvassert/kvassert/internal/entraid"
)

// Audiences of managed identity tokens used as federated credentials.
const (
	federatedAudiencePublic = "api://AzureADTokenExchange"
	federatedAudienceUSGov  = "api://AzureADTokenExchangeUSGov"
	federatedAudienceChina  = "api://AzureADTokenExchangeChina"
)

// federatedAudience returns the token-exchange audience of a cloud.
func federatedAudience(c cloud.Configuration) string {
	host := strings.ToLower(c.ActiveDirectoryAuthorityHost)
	switch {
	case strings.Contains(host, "login.microsoftonline.us"):
		return federatedAudienceUSGov
	case strings.Contains(host, "login.chinacloudapi.cn"):
		return federatedAudienceChina
	}
	return federatedAudiencePublic
}

// ManagedIdentityOptions configure NewManagedIdentitySource. The zero value
// (or nil) is a system-assigned identity in the public cloud.
type ManagedIdentityOptions struct {
	// Credential gets the managed identity's token. When nil, an
	// azidentity.ManagedIdentityCredential is made for ClientID.
	Credential azcore.TokenCredential
	// ClientID of the user-assigned managed identity (when Credential is
	// nil); a GUID.
	ClientID string
	// Audience overrides the federated audience. The default is the
	// cloud's (ClientOptions.Cloud): api://AzureADTokenExchange in the
	// public cloud, api://AzureADTokenExchangeUSGov in Azure Government,
	// api://AzureADTokenExchangeChina in Azure China.
	Audience string
	// ClientOptions for the default ManagedIdentityCredential; its Cloud
	// also selects the default Audience. Zero means the ClientOptions of
	// the first Credential the source is given to (NewCredential).
	ClientOptions policy.ClientOptions
}

// ManagedIdentitySource uses a managed identity token as the client assertion
// of an app that trusts the identity as a federated credential (the .NET
// library's WithManagedIdentity): no certificate or key exists at all. The
// app must be registered in the identity's tenant; other tenants are reached
// through the app's multi-tenancy. Tokens are cached until 5 minutes before
// they expire.
type ManagedIdentitySource struct {
	mu    sync.Mutex
	final bool // configured or used
	opts  ManagedIdentityOptions
	cred  azcore.TokenCredential
	scope []string
	id    string // sourceIdentity; empty for a caller's Credential
	tok   azcore.AccessToken
	now   func() time.Time
}

// NewManagedIdentitySource returns a federated-credential source.
func NewManagedIdentitySource(opts *ManagedIdentityOptions) (*ManagedIdentitySource, error) {
	var o ManagedIdentityOptions
	if opts != nil {
		o = *opts
	}
	if strings.ContainsAny(o.Audience, " \t\r\n") {
		return nil, inputErr("Audience", "the federated Audience contains white space")
	}
	if o.ClientID != "" && !entraid.ValidClientID(o.ClientID) {
		return nil, inputErr("ClientID", "the managed identity ClientID (%d bytes) is not a GUID", len(o.ClientID))
	}
	s := &ManagedIdentitySource{now: time.Now}
	return s, s.build(o)
}

// build makes the identity's credential (unless given) for o.
func (s *ManagedIdentitySource) build(o ManagedIdentityOptions) error {
	aud := o.Audience
	if aud == "" {
		aud = federatedAudience(o.ClientOptions.Cloud)
	}
	cred := o.Credential
	if cred == nil {
		mo := &azidentity.ManagedIdentityCredentialOptions{ClientOptions: o.ClientOptions}
		if o.ClientID != "" {
			mo.ID = azidentity.ClientID(o.ClientID)
		}
		c, err := azidentity.NewManagedIdentityCredential(mo)
		if err != nil {
			return fmt.Errorf("kvassert: managed identity: %w", err)
		}
		cred = c
	}
	var id string
	if o.Credential == nil {
		who := "system-assigned"
		if o.ClientID != "" {
			who = "client-id:" + strings.ToLower(o.ClientID)
		}
		id = "managed-identity:" + who + "|" + strings.TrimSuffix(aud, "/")
	}
	s.opts, s.cred, s.scope, s.id = o, cred, []string{strings.TrimSuffix(aud, "/") + "/.default"}, id
	return nil
}

// configure implements configurable: the Credential's ClientOptions (and
// with them its cloud) when the source's were left zero and it makes its
// own ManagedIdentityCredential.
func (s *ManagedIdentitySource) configure(d inherited) error {
	return configureOnce(&s.mu, &s.final, &s.opts, func(o *ManagedIdentityOptions) bool {
		return (o.Credential == nil || o.Audience == "") && inheritClient(&o.ClientOptions, d)
	}, s.build)
}

// sourceIdentity is the managed identity (its client ID, or
// system-assigned) and the federated audience. It is empty when
// ManagedIdentityOptions.Credential was given, since kvassert cannot tell
// which identity that credential is: such a source cannot be used with a
// SharedCache unless wrapped in a Source that names the identity.
func (s *ManagedIdentitySource) sourceIdentity() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.final = true
	return s.id
}

// Assertion implements Source. clientID and tokenEndpoint are not part of a
// managed identity token; Entra matches the token's issuer and subject
// against the app's federated credentials.
func (s *ManagedIdentitySource) Assertion(ctx context.Context, _, _ string) (string, error) {
	s.mu.Lock()
	s.final = true
	tok, cred, scope := s.tok, s.cred, s.scope
	s.mu.Unlock()
	if tok.Token != "" && s.now().Add(5*time.Minute).Before(tok.ExpiresOn) {
		return tok.Token, nil
	}
	tok, err := cred.GetToken(ctx, policy.TokenRequestOptions{Scopes: scope})
	if err != nil {
		var afe *azidentity.AuthenticationFailedError
		if errors.As(err, &afe) {
			// Its text quotes the endpoint's answer (the body of a
			// refusal, values of a 200 it could not parse): a token
			// response. Word it from the status and content type.
			what := "the managed identity endpoint's answer is not a usable token response"
			if r := afe.RawResponse; r != nil {
				what = fmt.Sprintf("the managed identity endpoint answered HTTP %d (%s) without a usable token", r.StatusCode, describeBody(r.Header.Get("Content-Type"), -1))
			}
			return "", fmt.Errorf("kvassert: managed identity token for %s: %s", scope[0], what)
		}
		return "", fmt.Errorf("kvassert: managed identity token for %s: %w", scope[0], err)
	}
	s.mu.Lock()
	s.tok = tok
	s.mu.Unlock()
	return tok.Token, nil
}
