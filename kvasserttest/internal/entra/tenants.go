package entra

import (
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/kvassert/kvassert/kvasserttest/internal/names"
)

// servicePrincipal is an app's service principal in one tenant: what admin
// consent creates there.
type servicePrincipal struct {
	// allRoles: the tenant granted all of the app's roles (its home tenant,
	// ConsentedTenants, SetConsent, the consent page); they follow the app's
	// roles as AddRoles changes them. Otherwise roles holds the grant.
	allRoles bool
	roles    []string
	// disabled: the tenant's administrator disabled sign-in (AADSTS7000112).
	disabled bool
	// visibleAt: before it the token endpoint does not find the service
	// principal yet (AADSTS700016), as Entra replicates a fresh consent.
	visibleAt time.Time
}

// Errors of the tenant controls.
var (
	// ErrNoTenant: no tenant with that ID or name.
	ErrNoTenant = errors.New("entra: no such tenant")
	// ErrSingleTenant: a single-tenant app cannot be consented elsewhere.
	ErrSingleTenant = errors.New("entra: the app is single-tenant")
	// ErrNotConsented: the app has no service principal in the tenant.
	ErrNotConsented = errors.New("entra: the app has no service principal in the tenant")
)

// RefusalCodes are the AADSTS codes SetTenantRefusal accepts.
var RefusalCodes = []int{90002, 900023, 53003, 7000229, 500011}

// TenantID resolves a tenant ID (any case), {name}.onmicrosoft.com or name
// to the tenant's lower-case ID, with map lookups only.
func (e *Entra) TenantID(idOrName string) (string, bool) {
	k := strings.ToLower(idOrName)
	if t := e.tenants[k]; t != nil {
		return t.id, true
	}
	if t := e.domains[k]; t != nil {
		return t.id, true
	}
	if t := e.domains[k+".onmicrosoft.com"]; t != nil {
		return t.id, true
	}
	return "", false
}

// withApp runs f under the write lock with the app and the tenant's ID.
func (e *Entra) withApp(clientID, tenantIDOrName string, f func(a *app, tid string) error) error {
	tid, ok := e.TenantID(tenantIDOrName)
	if !ok {
		return fmt.Errorf("%w: %q", ErrNoTenant, tenantIDOrName)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	a := e.apps[strings.ToLower(clientID)]
	if a == nil {
		return fmt.Errorf("%w: client ID %q", ErrNoApp, clientID)
	}
	return f(a, tid)
}

// SetConsent adds (true) or removes (false) the app's service principal in a
// tenant (given by ID or name). A new one has all of the app's roles and is
// visible at once; an existing one is left as it is. A single-tenant app can
// only have one in its home tenant, as in Entra.
func (e *Entra) SetConsent(clientID, tenantIDOrName string, consented bool) error {
	return e.withApp(clientID, tenantIDOrName, func(a *app, tid string) error {
		switch {
		case consented && !a.multiTenant && tid != a.home:
			return fmt.Errorf("%w: app %s cannot be consented in tenant %s", ErrSingleTenant, clientID, tid)
		case !consented:
			delete(a.sp, tid)
		case a.sp[tid] == nil:
			a.sp[tid] = &servicePrincipal{allRoles: true}
		}
		return nil
	})
}

// GrantConsent records an admin consent, as the consent page's Accept does:
// the tenant grants all of the app's roles; a new service principal is found
// by the token endpoint only after delay (replication). An existing one
// keeps its state (disabled stays disabled) and gets all roles.
func (e *Entra) GrantConsent(clientID, tenantID string, delay time.Duration) error {
	return e.withApp(clientID, tenantID, func(a *app, tid string) error {
		if !a.multiTenant && tid != a.home {
			return fmt.Errorf("%w: app %s cannot be consented in tenant %s", ErrSingleTenant, clientID, tid)
		}
		if sp := a.sp[tid]; sp != nil {
			sp.allRoles, sp.roles = true, nil
			return nil
		}
		a.sp[tid] = &servicePrincipal{allRoles: true, visibleAt: e.now().Add(delay)}
		return nil
	})
}

// SetGrantedRoles sets the roles granted to the app in a tenant (none: no
// "roles" claim there), creating its service principal when it has none
// (as an admin consent with those roles would).
func (e *Entra) SetGrantedRoles(clientID, tenantIDOrName string, roles []string) error {
	return e.withApp(clientID, tenantIDOrName, func(a *app, tid string) error {
		if !a.multiTenant && tid != a.home {
			return fmt.Errorf("%w: app %s cannot be consented in tenant %s", ErrSingleTenant, clientID, tid)
		}
		sp := a.sp[tid]
		if sp == nil {
			sp = &servicePrincipal{}
			a.sp[tid] = sp
		}
		sp.allRoles, sp.roles = false, slices.Clone(roles)
		return nil
	})
}

// SetServicePrincipalEnabled disables (AADSTS7000112 at the token endpoint)
// or enables the app's service principal in a tenant.
func (e *Entra) SetServicePrincipalEnabled(clientID, tenantIDOrName string, enabled bool) error {
	return e.withApp(clientID, tenantIDOrName, func(a *app, tid string) error {
		sp := a.sp[tid]
		if sp == nil {
			return fmt.Errorf("%w: app %s, tenant %s", ErrNotConsented, clientID, tid)
		}
		sp.disabled = !enabled
		return nil
	})
}

// SetTenantRefusal makes the token endpoint refuse the app in a tenant with
// one of RefusalCodes; 0 clears it.
func (e *Entra) SetTenantRefusal(clientID, tenantIDOrName string, code int) error {
	if code != 0 && !slices.Contains(RefusalCodes, code) {
		return fmt.Errorf("entra: %d is not one of the refusal codes %v", code, RefusalCodes)
	}
	return e.withApp(clientID, tenantIDOrName, func(a *app, tid string) error {
		if code == 0 {
			delete(a.refusals, tid)
		} else {
			a.refusals[tid] = code
		}
		return nil
	})
}

// Consent is an app's service principal in a tenant as the emulator holds it.
type Consent struct {
	// Roles granted there (on the app's roles resource).
	Roles []string
	// Disabled: sign-in disabled by the tenant.
	Disabled bool
	// VisibleAt: when the token endpoint starts finding it (zero: at once).
	VisibleAt time.Time
}

// ConsentOf returns the app's service principal in a tenant, if any.
func (e *Entra) ConsentOf(clientID, tenantIDOrName string) (Consent, bool) {
	var out Consent
	found := false
	_ = e.withApp(clientID, tenantIDOrName, func(a *app, tid string) error {
		sp := a.sp[tid]
		if sp == nil {
			return nil
		}
		found = true
		out = Consent{Roles: slices.Clone(sp.granted(a)), Disabled: sp.disabled, VisibleAt: sp.visibleAt}
		return nil
	})
	return out, found
}

// granted is the roles the service principal holds.
func (sp *servicePrincipal) granted(a *app) []string {
	if sp.allRoles {
		return a.roles
	}
	return sp.roles
}

// tenantRefusal is the error of a refusal code set with SetTenantRefusal.
func tenantRefusal(code int, seg, clientID, resource string, t *tenant) *oauthError {
	switch code {
	case 90002:
		return tenantNotFound(seg)
	case 900023:
		return newErr(http.StatusBadRequest, "invalid_request", 900023,
			"Specified tenant identifier '%s' is neither a valid DNS name, nor a valid external domain.", seg)
	case 53003:
		return newErr(http.StatusBadRequest, "interaction_required", 53003,
			"Access has been blocked by Conditional Access policies. The access policy does not allow token issuance.")
	case 7000229:
		return newErr(http.StatusUnauthorized, "invalid_client", 7000229,
			"The client application %s is missing service principal in the tenant %s. See instructions here: https://go.microsoft.com/fwlink/?linkid=2225119",
			clientID, t.id)
	default: // 500011
		return newErr(http.StatusBadRequest, "invalid_resource", 500011,
			"The resource principal named %s was not found in the tenant named %s. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant. You might have sent your authentication request to the wrong tenant.",
			resource, t.display())
	}
}

// appNotFound is AADSTS700016.
func appNotFound(clientID string, t *tenant) *oauthError {
	return newErr(http.StatusBadRequest, "unauthorized_client", 700016,
		"Application with identifier '%s' was not found in the directory '%s'. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant. You may have sent your authentication request to the wrong tenant.",
		clientID, t.display())
}

// rolesFor is the "roles" claim of a token for resource: the granted roles
// when resource is the app's roles resource, else none.
func rolesFor(v *appView, resource string) []string {
	if len(v.roles) == 0 || !names.SameResource(resource, v.rolesResource) {
		return nil
	}
	return v.roles
}
