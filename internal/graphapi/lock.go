package graphapi

import (
	"context"
	"net/http"
)

// LockConfiguration is an application's servicePrincipalLockConfiguration
// (the app instance property lock): which properties of its service
// principals in other tenants their administrators cannot change.
type LockConfiguration struct {
	IsEnabled                  bool `json:"isEnabled"`
	AllProperties              bool `json:"allProperties"`
	CredentialsWithUsageVerify bool `json:"credentialsWithUsageVerify"`
	CredentialsWithUsageSign   bool `json:"credentialsWithUsageSign"`
	IdentifierUris             bool `json:"identifierUris"`
	TokenEncryptionKeyID       bool `json:"tokenEncryptionKeyId"`
}

// LocksCredentials reports whether the lock keeps a customer tenant's
// administrators from adding credentials to the app's service principal.
func (l *LockConfiguration) LocksCredentials() bool {
	return l != nil && l.IsEnabled && (l.AllProperties || l.CredentialsWithUsageVerify && l.CredentialsWithUsageSign)
}

// LockConfiguration reads the application's servicePrincipalLockConfiguration
// (nil when Graph returns none: the lock is off). It needs
// Application.Read.All (or ownership); a 403 is a *Error with StatusCode 403
// and Operation "read lock".
func (g *Client) LockConfiguration(ctx context.Context, appObjectID string) (*LockConfiguration, error) {
	var out struct {
		Lock *LockConfiguration `json:"servicePrincipalLockConfiguration"`
	}
	if err := g.do(ctx, "read lock", http.MethodGet, appObjectID, "?$select=servicePrincipalLockConfiguration", nil, &out); err != nil {
		return nil, err
	}
	return out.Lock, nil
}
