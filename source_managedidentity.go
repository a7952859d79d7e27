package kvassert

import (
	"context"
	"errors"
	"fmt"
	"github.com/kvassert/kvassert/internal/entraid"
	"strings"
	"sync"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/cloud"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
)

// Audiences of managed identity tokens used as federated credentials.
const (
	FederatedAudiencePublic = "api://AzureADTokenExchange"
	FederatedAudienceUSGov  = "api://AzureADTokenExchangeUSGov"
	FederatedAudienceChina  = "api://AzureADTokenExchangeChina"
)

// FederatedAudience returns the token-exchange audience of a cloud.
func FederatedAudience(c cloud.Configuration) string {
	host := strings.ToLower(c.ActiveDirectoryAuthorityHost)
	switch {
	case strings.Contains(host, "login.microsoftonline.us"):
		return FederatedAudienceUSGov
	case strings.Contains(host, "login.chinacloudapi.cn"):
		return FederatedAudienceChina
	}
	return FederatedAudiencePublic
}

// ManagedIdentityOptions configure NewManagedIdentitySource.
type ManagedIdentityOptions struct {
	// Credential gets the managed identity's token. When nil, an
	// azidentity.ManagedIdentityCredential is made for ClientID.
	Credential azcore.TokenCredential
	// ClientID of the user-assigned managed identity (when Credential is nil).
	ClientID string
	// Cloud selects the federated audience (default: public cloud).
	Cloud cloud.Configuration
	// Audience overrides the audience (default: the cloud's
	// api://AzureADTokenExchange variant).
	Audience string
	// ClientOptions for the default ManagedIdentityCredential.
	ClientOptions policy.ClientOptions
}

// ManagedIdentitySource uses a managed identity token as the client assertion
// of an app that trusts the identity as a federated credential (the .NET
// library's WithManagedIdentity): no certificate or key exists at all. The
// app must be registered in the identity's tenant; other tenants are reached
// through the app's multi-tenancy. Tokens are cached until 5 minutes before
// they expire.
type ManagedIdentitySource struct {
	cred  azcore.TokenCredential
	scope []string
	id    string // SourceIdentity; empty for a caller's Credential

	mu  sync.Mutex
	tok azcore.AccessToken
	now func() time.Time
}

// NewManagedIdentitySource returns a federated-credential source.
func NewManagedIdentitySource(opts *ManagedIdentityOptions) (*ManagedIdentitySource, error) {
	var o ManagedIdentityOptions
	if opts != nil {
		o = *opts
	}
	aud := o.Audience
	if aud == "" {
		aud = FederatedAudience(o.Cloud)
	}
	if strings.ContainsAny(aud, " \t\r\n") {
		return nil, errors.New("kvassert: federated audience contains white space")
	}
	if o.ClientID != "" && !entraid.ValidClientID(o.ClientID) {
		return nil, fmt.Errorf("kvassert: managed identity client ID (%d bytes) is not a GUID", len(o.ClientID))
	}
	cred := o.Credential
	if cred == nil {
		mo := &azidentity.ManagedIdentityCredentialOptions{ClientOptions: o.ClientOptions}
		if o.ClientID != "" {
			mo.ID = azidentity.ClientID(o.ClientID)
		}
		c, err := azidentity.NewManagedIdentityCredential(mo)
		if err != nil {
			return nil, fmt.Errorf("kvassert: managed identity: %w", err)
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
	return &ManagedIdentitySource{cred: cred, scope: []string{strings.TrimSuffix(aud, "/") + "/.default"}, id: id, now: time.Now}, nil
}

// SourceIdentity implements SourceIdentifier: the managed identity (its
// client ID, or system-assigned) and the federated audience. It is empty
// when ManagedIdentityOptions.Credential was given, since kvassert cannot
// tell which identity that credential is: such a source cannot be used
// with a SharedCache unless wrapped in a Source that names the identity.
func (s *ManagedIdentitySource) SourceIdentity() string { return s.id }

// Assertion implements Source. clientID and tokenEndpoint are not part of a
// managed identity token; Entra matches the token's issuer and subject
// against the app's federated credentials.
func (s *ManagedIdentitySource) Assertion(ctx context.Context, _, _ string) (string, error) {
	s.mu.Lock()
	tok := s.tok
	s.mu.Unlock()
	if tok.Token != "" && s.now().Add(5*time.Minute).Before(tok.ExpiresOn) {
		return tok.Token, nil
	}
	tok, err := s.cred.GetToken(ctx, policy.TokenRequestOptions{Scopes: s.scope})
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
			return "", fmt.Errorf("kvassert: managed identity token for %s: %s", s.scope[0], what)
		}
		return "", fmt.Errorf("kvassert: managed identity token for %s: %w", s.scope[0], err)
	}
	s.mu.Lock()
	s.tok = tok
	s.mu.Unlock()
	return tok.Token, nil
}
