package tenants

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/cloud"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"

	"github.com/kvassert/kvassert"
	"github.com/kvassert/kvassert/internal/entraid"
	"github.com/kvassert/kvassert/internal/graphapi"
	"github.com/kvassert/kvassert/internal/jwtassert"
	"github.com/kvassert/kvassert/internal/rootaccess"
	"github.com/kvassert/kvassert/internal/textutil"
)

// The states of a Report besides the refusal reasons of Entra's codes
// (app_not_found for AADSTS700016, app_disabled 7000112, tenant_not_found
// 90002, tenant_invalid 900023, conditional_access 53003,
// app_missing_service_principal 7000229, resource_not_found 500011), and
// "refused" for another refusal, "not_allowed" for a tenant the credential
// is not configured for (CredentialOptions.AdditionallyAllowedTenants).
const (
	// StateOK: a token in every resource, with every required role.
	StateOK = "ok"
	// StateMissingRoles: tokens, but a resource lacks required roles:
	// the customer's administrator must consent again (ConsentURL).
	StateMissingRoles = "missing_roles"
	// StateUnreachable: no answer from Entra (network, timeout,
	// cancellation, the vault): nothing is known of the tenant.
	StateUnreachable = "unreachable"
)

const (
	stateRefused    = "refused"
	stateNotAllowed = "not_allowed"
)

// Want is what the SaaS requires of each customer tenant.
type Want struct {
	// Roles are the app roles (application permissions) required per
	// resource, e.g. {"https://graph.microsoft.com": {"User.Read.All"}}.
	// A resource with no roles is checked for a token only. Empty: one
	// token for Microsoft Graph of the credential's cloud.
	Roles map[string][]string
	// ConsentURL makes the link a Report gives for a tenant that needs
	// consent, e.g. a Handler's ConsentURL method (a signed state that
	// expires) or a link to the SaaS's own onboarding page. Nil: the
	// admin-consent link for the tenant with RedirectURI and no state.
	ConsentURL func(tenant string) (string, error)
	// RedirectURI is the redirect URI (registered on the app) of the
	// default links. The admin-consent endpoint documents redirect_uri as
	// required: without it the links name none, like kvassert's error
	// hints, and Entra may refuse them (the emulator does, AADSTS900144).
	RedirectURI string
}

// ResourceReport is one resource of a tenant.
type ResourceReport struct {
	// Resource is the resource (audience), e.g. https://graph.microsoft.com.
	Resource string `json:"resource"`
	// State is StateOK, StateMissingRoles, or why there is no token.
	State string `json:"state"`
	// Granted are the token's roles claim (sorted): the application
	// permissions the tenant granted for the resource.
	Granted []string `json:"granted"`
	// Required are Want's roles for the resource; Missing those not granted.
	Required []string `json:"required,omitempty"`
	Missing  []string `json:"missing,omitempty"`
	// FromCache is set when the credential served the token from its cache
	// (no Key Vault signature, no token request).
	FromCache bool `json:"fromCache"`
}

// Report is the health of one customer tenant. It never holds a token.
type Report struct {
	// Tenant as given.
	Tenant string `json:"tenant"`
	// State is StateOK, StateMissingRoles, StateUnreachable, a refusal
	// reason (see the constants) or "refused" / "not_allowed".
	State string `json:"state"`
	// Err is why a token was refused or not obtained: a
	// *kvassert.AuthError (errors.As) for Entra's refusals. Nil when the
	// tenant gave every token.
	Err error `json:"-"`
	// Code is the AADSTS code of the refusal, 0 if none.
	Code int `json:"code,omitempty"`
	// Error is Err's first line; Hint says what fixes it.
	Error string `json:"error,omitempty"`
	Hint  string `json:"hint,omitempty"`
	// RefusedUntil is set when the credential remembered the refusal and
	// sent no request: it asks Entra again after this time (or at once
	// after Credential.ForgetTenant).
	RefusedUntil time.Time `json:"refusedUntil,omitzero"`
	// Resources are the resources checked, in order; after a refusal of
	// the whole tenant, the ones not asked are left out.
	Resources []ResourceReport `json:"resources"`
	// ConsentURL is the link to send the customer's administrator when a
	// consent fixes the state (missing roles, the app not found, a resource
	// not found).
	ConsentURL string `json:"consentUrl,omitempty"`
	// FromCache is set when every token came from the credential's cache.
	FromCache bool `json:"fromCache"`
}

// CheckOptions are CheckAll's options.
type CheckOptions struct {
	// Concurrency is how many tenants are checked at once (default 8, at
	// most 256): a bound on the Key Vault signatures and token requests in
	// flight.
	Concurrency int
}

// Check reports the health of tenant for the app of cred (see Report).
// A tenant whose token is cached costs nothing (no signature, no request);
// a remembered refusal costs nothing either. The error is a
// *kvassert.InputError for bad input; what Entra answers is in the Report.
func Check(ctx context.Context, cred *kvassert.Credential, tenant string, want *Want) (Report, error) {
	if cred == nil {
		return Report{}, inputErr("cred", "cred is a nil *kvassert.Credential")
	}
	if !entraid.ValidTenantID(tenant) {
		return Report{}, inputErr("tenant", "tenant (%d bytes) is not a tenant ID or domain", len(tenant))
	}
	p, err := plan(cred, want)
	if err != nil {
		return Report{}, err
	}
	return p.check(ctx, tenant), nil
}

// CheckAll checks tenants concurrently (CheckOptions.Concurrency at a
// time) and returns their reports in the same order. Every tenant is
// validated first: one bad entry is an InputError naming its index.
func CheckAll(ctx context.Context, cred *kvassert.Credential, tenants []string, want *Want, opts *CheckOptions) ([]Report, error) {
	if cred == nil {
		return nil, inputErr("cred", "cred is a nil *kvassert.Credential")
	}
	for i, t := range tenants {
		if !entraid.ValidTenantID(t) {
			return nil, inputErr("tenants", "tenants[%d] (%d bytes) is not a tenant ID or domain", i, len(t))
		}
	}
	n := 8
	if opts != nil && opts.Concurrency != 0 {
		if opts.Concurrency < 0 || opts.Concurrency > 256 {
			return nil, inputErr("Concurrency", "Concurrency %d is not between 1 and 256", opts.Concurrency)
		}
		n = opts.Concurrency
	}
	p, err := plan(cred, want)
	if err != nil {
		return nil, err
	}
	out := make([]Report, len(tenants))
	next := make(chan int)
	var wg sync.WaitGroup
	for range min(n, len(tenants)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				out[i] = p.safeCheck(ctx, tenants[i])
			}
		}()
	}
	for i := range tenants {
		next <- i
	}
	close(next)
	wg.Wait()
	return out, nil
}

// checkPlan is a validated Want for one credential.
type checkPlan struct {
	cred      *kvassert.Credential
	id        rootaccess.Identity
	resources []string            // sorted
	roles     map[string][]string // sorted, per resource
	consent   func(tenant string) (string, error)
	redirect  string
}

func plan(cred *kvassert.Credential, want *Want) (*checkPlan, error) {
	p := &checkPlan{cred: cred, id: rootaccess.CredentialIdentity(cred), roles: map[string][]string{}}
	var w Want
	if want != nil {
		w = *want
	}
	p.consent, p.redirect = w.ConsentURL, w.RedirectURI
	if p.redirect != "" {
		if err := checkRedirectURI(p.redirect); err != nil {
			return nil, err
		}
	}
	if len(w.Roles) == 0 {
		g, err := graphapi.Host(cloud.Configuration{ActiveDirectoryAuthorityHost: p.id.AuthorityHost})
		if err != nil {
			return nil, inputErr("Roles", "Roles: no default resource for this cloud (Microsoft Graph's host is unknown): name the resources in Want.Roles")
		}
		w.Roles = map[string][]string{"https://" + g: nil}
	}
	for res, roles := range w.Roles {
		r := strings.TrimSuffix(strings.TrimSuffix(res, "/.default"), "/")
		if r == "" || len(r) > 512 || strings.ContainsAny(r, " \t\r\n") || !strings.Contains(r, ":") {
			return nil, inputErr("Roles", "Roles: a resource (%d bytes) is not a resource URI such as https://graph.microsoft.com", len(res))
		}
		for _, role := range roles {
			if role == "" || len(role) > 256 || strings.ContainsFunc(role, isControl) {
				return nil, inputErr("Roles", "Roles: a role of a resource is empty, too long or holds control characters")
			}
		}
		rs := append(slices.Clone(p.roles[r]), roles...)
		slices.Sort(rs)
		p.roles[r] = slices.Compact(rs)
		if !slices.Contains(p.resources, r) {
			p.resources = append(p.resources, r)
		}
	}
	sort.Strings(p.resources)
	return p, nil
}

// safeCheck is check with a panic turned into an unreachable report: no
// goroutine of CheckAll lets a panic escape (a Want.ConsentURL that
// panics costs its report the link only, see consentURL).
func (p *checkPlan) safeCheck(ctx context.Context, tenant string) (r Report) {
	defer func() {
		if v := recover(); v != nil {
			r = Report{Tenant: tenant, State: StateUnreachable, Error: "tenants: the check panicked", Err: errors.New("tenants: the check panicked")}
		}
	}()
	return p.check(ctx, tenant)
}

func (p *checkPlan) check(ctx context.Context, tenant string) Report {
	r := Report{Tenant: tenant, State: StateOK, FromCache: true, Resources: []ResourceReport{}}
	for _, res := range p.resources {
		rr, err := p.resource(ctx, tenant, res)
		r.FromCache = r.FromCache && rr.FromCache
		r.Resources = append(r.Resources, rr)
		if err == nil {
			if rr.State == StateMissingRoles && r.State == StateOK {
				r.State = StateMissingRoles
			}
			continue
		}
		if r.Err == nil || rank(rr.State) > rank(r.State) {
			r.State, r.Err = rr.State, err
		}
		if tenantWide(err) {
			break // the other resources would be refused alike
		}
	}
	if r.Err != nil {
		r.FromCache = false
		r.Error = textutil.FirstLine(r.Err.Error(), 300)
		var ae *kvassert.AuthError
		if errors.As(r.Err, &ae) {
			r.Code, r.Hint, r.RefusedUntil = ae.Code, ae.Hint, ae.RefusedUntil
		}
		var ie *kvassert.InputError
		if errors.As(r.Err, &ie) && r.State == stateNotAllowed {
			r.Hint = "add the tenant to CredentialOptions.AdditionallyAllowedTenants (or \"*\" for any tenant)"
		}
	}
	if needsConsent(r.State) {
		r.ConsentURL = p.consentURL(tenant)
	}
	return r
}

// rank orders the states a tenant can be in by how much they say: a
// refusal of the tenant over an unreachable resource over a refused
// resource.
func rank(state string) int {
	switch state {
	case StateOK, StateMissingRoles:
		return 0
	case "resource_not_found":
		return 1
	case StateUnreachable:
		return 2
	}
	return 3
}

func tenantWide(err error) bool {
	var ae *kvassert.AuthError
	if errors.As(err, &ae) {
		r, ok := entraid.TenantRefusal(ae.Code)
		return !ok || !r.PerResource
	}
	var ie *kvassert.InputError
	return errors.As(err, &ie)
}

func needsConsent(state string) bool {
	return state == StateMissingRoles || state == "app_not_found" || state == "resource_not_found"
}

func (p *checkPlan) consentURL(tenant string) (u string) {
	if p.consent != nil {
		defer func() {
			if recover() != nil { // the SaaS's function: its panic costs the link only
				u = ""
			}
		}()
		link, err := p.consent(tenant)
		if err != nil {
			return ""
		}
		return link
	}
	scopes := make([]string, len(p.resources))
	for i, r := range p.resources {
		scopes[i] = r + "/.default"
	}
	u, err := consentURL(p.id.ClientID, p.redirect, "", ConsentURLOptions{Tenant: tenant,
		Cloud: cloud.Configuration{ActiveDirectoryAuthorityHost: p.id.AuthorityHost}, Scope: strings.Join(scopes, " ")})
	if err != nil {
		return ""
	}
	return u
}

// resource gets one token and reads its roles.
func (p *checkPlan) resource(ctx context.Context, tenant, res string) (ResourceReport, error) {
	scope := res + "/.default"
	rr := ResourceReport{Resource: res, Required: p.roles[res], Granted: []string{}}
	rr.FromCache = rootaccess.CachedToken(p.cred, tenant, scope)
	tok, err := p.cred.GetToken(ctx, policy.TokenRequestOptions{TenantID: tenant, Scopes: []string{scope}})
	if err != nil {
		rr.FromCache = false
		rr.State = classify(err)
		return rr, err
	}
	rr.Granted = rolesOf(tok.Token)
	for _, want := range rr.Required {
		if !slices.Contains(rr.Granted, want) {
			rr.Missing = append(rr.Missing, want)
		}
	}
	rr.State = StateOK
	if len(rr.Missing) > 0 {
		rr.State = StateMissingRoles
	}
	return rr, nil
}

// classify names the state an error of GetToken means.
func classify(err error) string {
	var ae *kvassert.AuthError
	if errors.As(err, &ae) {
		if r, ok := entraid.TenantRefusal(ae.Code); ok {
			return r.Reason
		}
		if ae.StatusCode >= 500 || ae.StatusCode == 429 {
			return StateUnreachable
		}
		return stateRefused
	}
	var ie *kvassert.InputError
	if errors.As(err, &ie) {
		return stateNotAllowed
	}
	return StateUnreachable
}

// rolesOf reads the roles claim of an access token (Entra's own answer
// over TLS: jwtassert.Parse decodes it without checking the signature, and
// nothing else is read). A token that is not a JWT, or has no roles,
// grants none.
func rolesOf(tok string) []string {
	t, err := jwtassert.Parse(tok)
	if err != nil {
		return []string{}
	}
	var c struct {
		Roles []string `json:"roles"`
	}
	if json.Unmarshal(t.RawClaims, &c) != nil || c.Roles == nil {
		return []string{}
	}
	slices.Sort(c.Roles)
	return slices.Compact(c.Roles)
}
