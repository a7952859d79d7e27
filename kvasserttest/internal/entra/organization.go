package entra

// Organization is what Microsoft Graph's /organization answers for a
// tenant: its ID, display name and initial domain.
type Organization struct {
	ID, DisplayName, InitialDomain string
}

// Organization returns the tenant with this ID (lower-case GUID), as
// Graph's /organization describes it.
func (e *Entra) Organization(tenantID string) (Organization, bool) {
	t, kind := e.resolveTenant(tenantID)
	if kind != tenantSpecific || t == nil {
		return Organization{}, false
	}
	return Organization{ID: t.id, DisplayName: t.name, InitialDomain: t.domain()}, true
}
