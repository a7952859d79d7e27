package kvasserttest

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode"

	"github.com/kvassert/kvassert/internal/inputerr"
	"github.com/kvassert/kvassert/internal/textutil"
	"github.com/kvassert/kvassert/kvasserttest/internal/emu"
	"github.com/kvassert/kvassert/kvasserttest/internal/entra"
)

// Customer tenants (see Emulator): the controls of what a tenant's
// administrator, or Entra, does to a multi-tenant app.

// OpAdminConsent counts the admin-consent page and its form posts.
const OpAdminConsent = emu.OpAdminConsent

// SetConsent adds or removes the app's service principal in a tenant (ID
// or name), at once: added, it holds all of the app's roles (an existing
// one is left as it is); removed, the token endpoint answers AADSTS700016
// there (in the app's home tenant, AADSTS7000229). A single-tenant app
// cannot be consented outside its home tenant.
func (e *Emulator) SetConsent(clientID, tenant string, consented bool) error {
	return e.tenantControl("SetConsent", clientID, tenant, func() error { return e.entra.SetConsent(clientID, tenant, consented) })
}

// SetGrantedRoles sets the application permissions (app roles on the app's
// RolesResource, Microsoft Graph by default) a tenant granted the app,
// replacing the previous grant; none means consented with no role (tokens
// there carry no "roles" claim). An app without a service principal in the
// tenant gets one, as an admin consent with those roles would.
func (e *Emulator) SetGrantedRoles(clientID, tenant string, roles ...string) error {
	for _, r := range roles {
		if r == "" || len(r) > 120 || strings.ContainsFunc(r, unicode.IsSpace) {
			return inputerr.New("kvasserttest", "roles", "role %q in roles is empty, too long or holds white space", textutil.Truncate(r, 64))
		}
	}
	return e.tenantControl("SetGrantedRoles", clientID, tenant, func() error { return e.entra.SetGrantedRoles(clientID, tenant, roles) })
}

// SetServicePrincipalEnabled disables (false) or enables again (true) the
// app's service principal in a tenant, as the tenant's administrator does
// in Enterprise applications (enabled for users to sign in): disabled, the
// token endpoint answers AADSTS7000112. The app must be consented there.
// Deleting the service principal is SetConsent(clientID, tenant, false).
func (e *Emulator) SetServicePrincipalEnabled(clientID, tenant string, enabled bool) error {
	return e.tenantControl("SetServicePrincipalEnabled", clientID, tenant, func() error {
		return e.entra.SetServicePrincipalEnabled(clientID, tenant, enabled)
	})
}

// SetTenantRefusal makes the token endpoint refuse the app in a tenant with
// an AADSTS code, in Entra's JSON error shape and HTTP status; 0 clears it:
//
//	90002    tenant not found (400 invalid_tenant)
//	900023   tenant identifier not valid (400 invalid_request)
//	53003    blocked by Conditional Access for workload identities (400
//	         interaction_required; answered once the client authenticated)
//	7000229  the client application is missing a service principal in its
//	         home tenant (401 invalid_client)
//	500011   the resource principal was not found in the tenant (400
//	         invalid_resource; for every resource the app asks for there)
func (e *Emulator) SetTenantRefusal(clientID, tenant string, code int) error {
	if code != 0 && !slices.Contains(entra.RefusalCodes, code) {
		return inputerr.New("kvasserttest", "code", "code %d is not 0 or one of %v", code, entra.RefusalCodes)
	}
	return e.tenantControl("SetTenantRefusal", clientID, tenant, func() error { return e.entra.SetTenantRefusal(clientID, tenant, code) })
}

// SetConsentDelay sets how long, on the emulator's clock (SetClock), a
// consent given on the admin-consent page takes to reach the token
// endpoint: until then it answers AADSTS700016 for the new service
// principal, as Entra does while it replicates a fresh consent. The default
// is 0; it applies to consents given afterwards.
func (e *Emulator) SetConsentDelay(d time.Duration) error {
	if d < 0 {
		return inputerr.New("kvasserttest", "d", "consent delay %v (d) is negative", d)
	}
	e.entra.SetConsentDelay(d)
	return nil
}

// tenantControl checks the app and the tenant, runs f and words its
// failures as input errors.
func (e *Emulator) tenantControl(name, clientID, tenant string, f func() error) error {
	if err := e.checkApp(clientID); err != nil {
		return err
	}
	if _, ok := e.entra.TenantID(tenant); !ok {
		return inputerr.New("kvasserttest", "tenant", "no tenant %q (tenant) in the scenario", textutil.Truncate(tenant, 64))
	}
	err := f()
	switch {
	case err == nil:
		return nil
	case errors.Is(err, entra.ErrSingleTenant):
		return &inputerr.Error{Package: "kvasserttest", Input: "clientID", Reason: fmt.Sprintf("%s: app %s (clientID) cannot be consented in tenant %s: it is single-tenant", name, clientID, textutil.Truncate(tenant, 64)), Err: err}
	case errors.Is(err, entra.ErrNotConsented):
		return &inputerr.Error{Package: "kvasserttest", Input: "tenant", Reason: fmt.Sprintf("%s: app %s has no service principal in tenant %s (tenant): consent it first (SetConsent)", name, clientID, textutil.Truncate(tenant, 64)), Err: err}
	}
	return fmt.Errorf("kvasserttest: %s: %w", name, err)
}
