package rootaccess

// Identity is what package tenants needs to know of a kvassert Credential
// beyond its API: the app, its home tenant and the cloud's authority host.
type Identity struct {
	// ClientID is the app's client ID (lower case).
	ClientID string
	// Home is the home tenant as given (lower case).
	Home string
	// AuthorityHost is the cloud's authority host, e.g.
	// "https://login.microsoftonline.com/" (with the trailing slash).
	AuthorityHost string
}

var (
	identityOf func(cred any) Identity
	cachedOf   func(cred any, tenant, scope string) bool
)

// RegisterTenants installs the accessors package tenants uses; package
// kvassert calls it once, at init.
func RegisterTenants(identity func(cred any) Identity, cached func(cred any, tenant, scope string) bool) {
	identityOf, cachedOf = identity, cached
}

// CredentialIdentity returns cred's (a *kvassert.Credential) identity.
func CredentialIdentity(cred any) Identity { return identityOf(cred) }

// CachedToken reports whether cred (a *kvassert.Credential) holds a token
// for (tenant, scope) in memory that GetToken would hand out now (no CAE).
func CachedToken(cred any, tenant, scope string) bool { return cachedOf(cred, tenant, scope) }
