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

// pageConfig checks d as the token API would check the same values and
// normalises the vault to its URL.
func (s *Server) pageConfig(d PageDefault) (pageConfig, error) {
	var errs fieldErrors
	if d.ClientID != "" {
		checkClientID("Default.ClientID", d.ClientID, &errs)
	}
	if d.TenantID != "" {
		checkTenant("Default.TenantID", d.TenantID, &errs)
	}
	c := pageConfig{ClientID: strings.ToLower(d.ClientID), TenantID: d.TenantID, CertificateName: d.Certificate, Files: []string{}}
	switch v := strings.TrimSpace(d.Vault); {
	case v == "":
	case strings.Contains(v, "/"):
		c.KeyVaultURI = checkVaultURL("Default.Vault", v, &errs)
	case checkVaultName("Default.Vault", v, &errs):
		u, err := s.vaultURL(v)
		if err != nil {
			errs.addErr("Default.Vault", err)
		}
		c.KeyVaultURI = u
	}
	if d.Certificate != "" {
		checkCertificateName("Default.Certificate", d.Certificate, &errs)
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
