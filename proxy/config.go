package proxy

import (
	"cmp"
	"net/http"
	"slices"
	"strings"
)

// pageConfig is the answer of GET /api/config: what the page's form starts
// with (IDs, a vault URL, certificate names) and the lines kvassert proxy
// printed. Those hold the managed identity secrets of the configured app
// (IDENTITY_HEADER, MSI_ENDPOINT's path), which open less than the API
// secret the request showed (its token API serves any app and tenant);
// never the secret of /msi/forward, the developer's own identity, which
// the API secret does not open. Served no-store, behind the API secret.
type pageConfig struct {
	ClientID        string   `json:"clientId,omitempty"`
	TenantID        string   `json:"tenantId,omitempty"`
	KeyVaultURI     string   `json:"keyVaultUri,omitempty"`
	CertificateName string   `json:"certificateName,omitempty"`
	Files           []string `json:"files"`
	// Base is the proxy's base URL as the page reached it, and Lines the
	// ready-to-paste lines for it (what kvassert proxy printed at start):
	// filled per request by apiConfig.
	Base  string      `json:"base,omitempty"`
	Lines []lineGroup `json:"lines,omitempty"`
}

// lineGroup is a titled block of shell lines (POSIX syntax) for the page's
// endpoints section.
type lineGroup struct {
	Title string   `json:"title"`
	Lines []string `json:"lines"`
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
func (s *Server) apiConfig(w http.ResponseWriter, r *http.Request) {
	c := s.page
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	c.Base = scheme + "://" + r.Host // a loopback or the listen address: the guard checked it
	c.Lines = s.pageLines(c)
	writeJSON(w, http.StatusOK, c)
}

// pageLines are the lines kvassert proxy prints at start for the page's
// configuration c, with its real base URL: the token API's curl command,
// and the managed identity variables of the configured certificate and of
// each file for the default tenant and client. The secret of /msi/forward
// is not among them: the API secret does not grant the developer's own
// identity.
func (s *Server) pageLines(c pageConfig) []lineGroup {
	client, tenant := cmp.Or(c.ClientID, "CLIENT_ID"), cmp.Or(c.TenantID, "TENANT")
	vaultURL, cert := cmp.Or(c.KeyVaultURI, "https://VAULT.vault.azure.net/"), cmp.Or(c.CertificateName, "CERTIFICATE")
	body := `{"clientId":"` + client + `","tenantId":"` + tenant + `","scopes":["https://graph.microsoft.com/.default"],"keyVaultUri":"` + vaultURL + `","certificateName":"` + cert + `"}`
	groups := []lineGroup{{Title: "Token API (curl, Postman): the API secret as a bearer token (export KVASSERT_PROXY_SECRET=the API secret first, as printed at start)", Lines: []string{
		"curl -sS " + c.Base + "/api/token/kv-certificate -H \"Authorization: Bearer $KVASSERT_PROXY_SECRET\" -H 'Content-Type: application/json' -d " + posixQuote(body),
	}}}
	if c.ClientID == "" || c.TenantID == "" {
		return groups
	}
	add := func(title string, t Target, cloudShellToo bool) {
		t.Tenant, t.ClientID = c.TenantID, c.ClientID
		lines, err := s.AppServiceEnv(c.Base, t)
		if err != nil {
			return
		}
		if cloudShellToo {
			if cs, err := s.CloudShellEnv(c.Base, t); err == nil {
				lines = append(lines, cs...)
			}
		}
		g := lineGroup{Title: title}
		for _, kv := range lines {
			k, v, _ := strings.Cut(kv, "=")
			g.Lines = append(g.Lines, "export "+k+"="+posixQuote(v))
		}
		groups = append(groups, g)
	}
	if c.KeyVaultURI != "" && c.CertificateName != "" {
		host := strings.TrimPrefix(c.KeyVaultURI, "https://")
		name, _, _ := strings.Cut(host, ".")
		add("Managed identity: app "+c.ClientID+" in tenant "+c.TenantID+", certificate "+c.CertificateName+" (App Service protocol; MSI_ENDPOINT for the Cloud Shell protocol, without IDENTITY_ENDPOINT)",
			Target{Vault: name, Certificate: c.CertificateName}, true)
	}
	for _, f := range c.Files {
		add("Managed identity: app "+c.ClientID+" in tenant "+c.TenantID+", certificate file "+f, Target{File: f}, false)
	}
	return groups
}

// posixQuote quotes a value for a POSIX shell when it needs it (as the
// CLI's export lines do).
func posixQuote(v string) string {
	if v != "" && strings.Trim(v, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./:@%+=,") == "" {
		return v
	}
	return "'" + strings.ReplaceAll(v, "'", `'\''`) + "'"
}
