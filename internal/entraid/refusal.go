package entraid

// Refusal describes an AADSTS code with which Entra refuses the app in a
// whole tenant (or, PerResource, for one resource of it): retrying at once
// cannot succeed, so the library remembers it (a negative cache with
// back-off), the tenants package reports it, and the CLI explains it.
type Refusal struct {
	// Code is the AADSTS code.
	Code int
	// Reason is a stable snake_case label: the value of the
	// kvassert.tenant.state metric's reason attribute and of a tenant
	// report's state.
	Reason string
	// PerResource is set when the refusal concerns one resource (scope) of
	// the tenant, not the tenant: the app may still get tokens for others.
	PerResource bool
	// Offboarded is set for the codes a customer causes by removing or
	// disabling the app: a tenant that worked and then refuses with one
	// of them has left (its tokens are evicted everywhere).
	Offboarded bool
	// Local is set for a refusal that may depend on where the replica
	// runs: Conditional Access for workload identities (53003) commonly
	// blocks by network location, so one region's refusal says nothing of
	// another's. It is remembered by the replica that saw it and never
	// shared (nor followed when another replica shared it).
	Local bool
}

// refusals are the tenant-level refusals (Microsoft identity platform,
// AADSTS error code reference).
var refusals = map[int]Refusal{
	700016:  {Code: 700016, Reason: "app_not_found", Offboarded: true},
	7000112: {Code: 7000112, Reason: "app_disabled", Offboarded: true},
	90002:   {Code: 90002, Reason: "tenant_not_found"},
	900023:  {Code: 900023, Reason: "tenant_invalid"},
	53003:   {Code: 53003, Reason: "conditional_access", Local: true},
	7000229: {Code: 7000229, Reason: "app_missing_service_principal"},
	500011:  {Code: 500011, Reason: "resource_not_found", PerResource: true},
}

// TenantRefusal returns the refusal an AADSTS code means, if it is one.
func TenantRefusal(code int) (Refusal, bool) {
	r, ok := refusals[code]
	return r, ok
}

// RefusalCodes returns the codes TenantRefusal knows, for tables and tests.
func RefusalCodes() []int {
	return []int{700016, 7000112, 90002, 900023, 53003, 7000229, 500011}
}
