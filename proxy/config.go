package proxy

import (
	"net/http"
	"slices"
	"strings"
)

// pageConfig is the answer of GET /api/config: what the page's form starts
// with. It names no secret: IDs, a vault URL, certificate names.
type pageConfig struct {
	ClientID        string   `json:"clientId,omitempty"`
	TenantID        string   `json:"tenantId,omitempty"`
	KeyVaultURI     string   `json:"keyVaultUri,omitempty"`
	CertificateName string   `json:"certificateName,omitempty"`
	Files           []string `json:"files"`
}

// pageConfig checks the Default* options as the token API would check the
// same values and normalises the vault to its URL.
func (s *Server) pageConfig() (pageConfig, error) {
	o := &s.cfg
	var errs fieldErrors
	if o.DefaultClientID != "" {
		checkClientID("Options.DefaultClientID", o.DefaultClientID, &errs)
	}
	if o.DefaultTenantID != "" {
		checkTenant("Options.DefaultTenantID", o.DefaultTenantID, &errs)
	}
	c := pageConfig{ClientID: strings.ToLower(o.DefaultClientID), TenantID: o.DefaultTenantID, CertificateName: o.DefaultCertificate, Files: []string{}}
	switch v := strings.TrimSpace(o.DefaultVault); {
	case v == "":
	case strings.Contains(v, "/"):
		c.KeyVaultURI = checkVaultURL("Options.DefaultVault", v, &errs)
	case checkVaultName("Options.DefaultVault", v, &errs):
		u, err := s.vaultURL(v)
		if err != nil {
			errs.addErr("Options.DefaultVault", err)
		}
		c.KeyVaultURI = u
	}
	if o.DefaultCertificate != "" {
		checkCertificateName("Options.DefaultCertificate", o.DefaultCertificate, &errs)
	}
	if err := errs.err(); err != nil {
		return pageConfig{}, err
	}
	for name := range s.files.named {
		c.Files = append(c.Files, name)
	}
	slices.Sort(c.Files)
	return c, nil
}

// apiConfig answers GET /api/config (behind the secret): the defaults of
// the page's form.
func (s *Server) apiConfig(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, s.page)
}
