package proxy

import (
	"context"
	"errors"
	"net/http"
	"strings"

	"github.com/kvassert/kvassert"
	"github.com/kvassert/kvassert/internal/entraid"
	"github.com/kvassert/kvassert/tenants"
)

// The page's Tenants view: GET /api/tenants reports, for the configured app
// (Options.DefaultClientID with the Key Vault certificate of DefaultVault and
// DefaultCertificate, home tenant DefaultTenantID), the health of each
// customer tenant of Options.Tenants, as "kvassert tenants check" does
// (tenants.CheckAll). It uses the credential the token API uses for that
// source, so a tenant whose token the proxy already holds costs no Key
// Vault signature, and a refused tenant is remembered (no signature until
// its back-off ends).

// maxTenants bounds Options.Tenants: a developer checks a handful of
// customers; a SaaS with thousands uses "kvassert tenants check".
const maxTenants = 256

// tenantsConcurrency is how many tenants one GET /api/tenants checks at once.
const tenantsConcurrency = 8

// tenantsResponse is the answer of GET /api/tenants.
type tenantsResponse struct {
	// ClientID is the app checked ("" when no tenant is configured).
	ClientID string `json:"clientId"`
	// Tenants are the reports, in the order of Options.Tenants.
	Tenants []tenants.Report `json:"tenants"`
}

// checkTenantOptions validates Options.Tenants and TenantRoles: each tenant
// a tenant ID or domain, at most maxTenants, and the configured app and
// certificate they need.
func (s *Server) checkTenantOptions() error {
	o := &s.cfg
	if len(o.Tenants) == 0 {
		if len(o.TenantRoles) > 0 {
			return optionError("TenantRoles", "Options.TenantRoles is set without Options.Tenants: name the customer tenants to check")
		}
		if o.TenantRedirectURI != "" {
			return optionError("TenantRedirectURI", "Options.TenantRedirectURI is set without Options.Tenants: name the customer tenants to check")
		}
		return nil
	}
	if len(o.Tenants) > maxTenants {
		return optionError("Tenants", "Options.Tenants has %d tenants; the page checks at most %d (use kvassert tenants check for more)", len(o.Tenants), maxTenants)
	}
	for i, t := range o.Tenants {
		if !entraid.ValidTenantID(t) || entraid.TenantAlias(t) {
			return optionError("Tenants", "Options.Tenants[%d] (%d bytes) is not a tenant ID or domain", i, len(t))
		}
	}
	if s.page.ClientID == "" || s.page.TenantID == "" || s.page.KeyVaultURI == "" || s.page.CertificateName == "" {
		return optionError("Tenants", "Options.Tenants needs the app to check: DefaultClientID, DefaultTenantID (its home tenant), DefaultVault and DefaultCertificate")
	}
	if err := s.checkTenantRedirect(); err != nil {
		return err
	}
	return checkTenantRoles(o.TenantRoles)
}

// checkTenantRedirect checks Options.TenantRedirectURI as the consent
// links will use it.
func (s *Server) checkTenantRedirect() error {
	if s.cfg.TenantRedirectURI == "" {
		return nil
	}
	if _, err := tenants.ConsentURL(s.page.ClientID, s.cfg.TenantRedirectURI, "", nil); err != nil {
		var ie *kvassert.InputError
		reason := "not a usable redirect URI"
		if errors.As(err, &ie) {
			reason = ie.Reason
		}
		return optionError("TenantRedirectURI", "Options.TenantRedirectURI: %s", reason)
	}
	return nil
}

// checkTenantRoles checks Options.TenantRoles: resource URIs and role names.
func checkTenantRoles(roles map[string][]string) error {
	for res, rs := range roles {
		if !strings.HasPrefix(res, "https://") && !strings.HasPrefix(res, "api://") || len(res) > 512 || strings.ContainsAny(res, " \t\r\n") {
			return optionError("TenantRoles", "Options.TenantRoles: a resource (%d bytes) is not a resource URI such as https://graph.microsoft.com", len(res))
		}
		for _, r := range rs {
			if r == "" || len(r) > 256 || strings.ContainsAny(r, " \t\r\n") {
				return optionError("TenantRoles", "Options.TenantRoles: a role of %s is empty, too long or holds white space", res)
			}
		}
	}
	return nil
}

// apiTenants answers GET /api/tenants (behind the API secret).
func (s *Server) apiTenants(w http.ResponseWriter, r *http.Request) {
	resp := tenantsResponse{Tenants: []tenants.Report{}}
	if len(s.cfg.Tenants) == 0 {
		writeJSON(w, http.StatusOK, resp)
		return
	}
	resp.ClientID = s.page.ClientID
	ri := info(r.Context())
	ri.clientID = s.page.ClientID
	ctx, cancel := context.WithTimeout(r.Context(), requestTimeout)
	defer cancel()
	src, err := s.creds.certSource(ctx, s.page.KeyVaultURI, s.page.CertificateName)
	if err != nil {
		writeProblem(w, upstreamProblem(err))
		return
	}
	cred, err := s.creds.credential(ctx, s.page.TenantID, s.page.ClientID, kvCertKey(s.page.KeyVaultURI, s.page.CertificateName), src)
	if err != nil {
		writeProblem(w, upstreamProblem(err))
		return
	}
	reports, err := checkAll(ctx, cred, s.cfg.Tenants, &tenants.Want{Roles: s.cfg.TenantRoles, RedirectURI: s.cfg.TenantRedirectURI})
	if err != nil {
		writeProblem(w, upstreamProblem(err))
		return
	}
	for i := range reports {
		reports[i].Error = reportError(reports[i].Err)
	}
	resp.Tenants = reports
	writeJSON(w, http.StatusOK, resp)
}

// checkAll is tenants.CheckAll with a panic turned into errPanic.
func checkAll(ctx context.Context, cred *kvassert.Credential, ts []string, want *tenants.Want) (reps []tenants.Report, err error) {
	defer func() {
		if v := recover(); v != nil {
			reps, err = nil, errPanic
		}
	}()
	return tenants.CheckAll(ctx, cred, ts, want, &tenants.CheckOptions{Concurrency: tenantsConcurrency})
}

// reportError words a report's error as the token API's problems do: from
// the error's type and codes only, never from its text (Entra's
// description is server text).
func reportError(err error) string {
	if err == nil {
		return ""
	}
	var ae *kvassert.AuthError
	if errors.As(err, &ae) {
		return entraDetail(ae)
	}
	p := upstreamProblem(err)
	return p.Title + ": " + p.Detail
}
