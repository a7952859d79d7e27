package graph

import (
	"net/http"
)

// orgRoles are the application permissions that may read /organization.
var orgRoles = []string{"Organization.Read.All", "Organization.ReadWrite.All", "Directory.Read.All", "Directory.ReadWrite.All"}

// serveOrganization answers GET /{version}/organization: the caller's
// tenant, as Graph lists it for an app-only token with Organization.Read.All
// (or a Directory role).
func (g *Graph) serveOrganization(rw *responder, r *http.Request) {
	if r.Method != http.MethodGet {
		rw.fail(methodNotAllowed(r.Method))
		return
	}
	claims, ge := g.authenticate(r)
	if ge != nil {
		rw.fail(ge)
		return
	}
	if !hasAnyRole(claims, orgRoles) {
		rw.fail(denied())
		return
	}
	org, ok := g.dir.Organization(claims.Tid)
	if !ok {
		rw.fail(notFound(claims.Tid))
		return
	}
	domains := []map[string]any{}
	if org.InitialDomain != "" {
		domains = append(domains, map[string]any{"name": org.InitialDomain, "isDefault": true, "isInitial": true, "type": "Managed"})
	}
	rw.json(http.StatusOK, map[string]any{
		"@odata.context": g.metadata(r, "organization"),
		"value":          []map[string]any{{"id": org.ID, "displayName": org.DisplayName, "verifiedDomains": domains}},
	})
}

// isOrganization reports whether the request is for /{version}/organization.
func isOrganization(r *http.Request) bool {
	p := r.URL.Path
	return p == "/v1.0/organization" || p == "/beta/organization"
}
