package entra

import (
	"net/http"
	"net/url"
	"strings"

	"github.com/kvassert/kvassert/kvasserttest/internal/emu"
)

// openIDConfiguration is the v2.0 OpenID Provider metadata, with the fields
// (and order) of Entra's document.
type openIDConfiguration struct {
	TokenEndpoint                     string   `json:"token_endpoint"`
	TokenEndpointAuthMethodsSupported []string `json:"token_endpoint_auth_methods_supported"`
	JWKSURI                           string   `json:"jwks_uri"`
	ResponseModesSupported            []string `json:"response_modes_supported"`
	SubjectTypesSupported             []string `json:"subject_types_supported"`
	IDTokenSigningAlgValuesSupported  []string `json:"id_token_signing_alg_values_supported"`
	ResponseTypesSupported            []string `json:"response_types_supported"`
	ScopesSupported                   []string `json:"scopes_supported"`
	Issuer                            string   `json:"issuer"`
	RequestURIParameterSupported      bool     `json:"request_uri_parameter_supported"`
	UserinfoEndpoint                  string   `json:"userinfo_endpoint"`
	AuthorizationEndpoint             string   `json:"authorization_endpoint"`
	DeviceAuthorizationEndpoint       string   `json:"device_authorization_endpoint"`
	HTTPLogoutSupported               bool     `json:"http_logout_supported"`
	FrontchannelLogoutSupported       bool     `json:"frontchannel_logout_supported"`
	EndSessionEndpoint                string   `json:"end_session_endpoint"`
	ClaimsSupported                   []string `json:"claims_supported"`
	KerberosEndpoint                  string   `json:"kerberos_endpoint"`
	TenantRegionScope                 *string  `json:"tenant_region_scope"`
	CloudInstanceName                 string   `json:"cloud_instance_name"`
	CloudGraphHostName                string   `json:"cloud_graph_host_name"`
	MsgraphHost                       string   `json:"msgraph_host"`
	RbacURL                           string   `json:"rbac_url"`
}

// serveOpenIDConfiguration answers GET /{tenant}/v2.0/.well-known/openid-configuration.
// As in Entra, a tenant addressed by name gets its GUID in every URL, and
// /common and /organizations get the "{tenantid}" issuer template. The host
// is the request's: MSAL requires the issuer host to equal the authority's.
func (e *Entra) serveOpenIDConfiguration(w http.ResponseWriter, r *http.Request, seg string) {
	if e.faults.Begin(w, r, emu.OpDiscovery, e.faultWriter(r)) {
		return
	}
	t, kind := e.resolveTenant(seg)
	base := "https://" + r.Host + "/"
	var pathTenant, issuerTenant, region string
	switch kind {
	case tenantSpecific:
		pathTenant, issuerTenant, region = t.id, t.id, "WW"
	case tenantCommon, tenantOrgs, tenantConsumers:
		pathTenant, issuerTenant = strings.ToLower(seg), "{tenantid}"
		if kind == tenantConsumers {
			issuerTenant = "9188040d-6c67-4c5b-b112-36a304b66dad"
		}
	default:
		e.writeOAuthError(w, r, tenantNotFound(seg))
		return
	}
	doc := openIDConfiguration{
		TokenEndpoint:                     base + pathTenant + "/oauth2/v2.0/token",
		TokenEndpointAuthMethodsSupported: []string{"client_secret_post", "private_key_jwt", "client_secret_basic"},
		JWKSURI:                           base + pathTenant + "/discovery/v2.0/keys",
		ResponseModesSupported:            []string{"query", "fragment", "form_post"},
		SubjectTypesSupported:             []string{"pairwise"},
		IDTokenSigningAlgValuesSupported:  []string{"RS256"},
		ResponseTypesSupported:            []string{"code", "id_token", "code id_token", "id_token token"},
		ScopesSupported:                   []string{"openid", "profile", "email", "offline_access"},
		Issuer:                            base + issuerTenant + "/v2.0",
		UserinfoEndpoint:                  "https://graph.microsoft.com/oidc/userinfo",
		AuthorizationEndpoint:             base + pathTenant + "/oauth2/v2.0/authorize",
		DeviceAuthorizationEndpoint:       base + pathTenant + "/oauth2/v2.0/devicecode",
		HTTPLogoutSupported:               true,
		FrontchannelLogoutSupported:       true,
		EndSessionEndpoint:                base + pathTenant + "/oauth2/v2.0/logout",
		ClaimsSupported: []string{"sub", "iss", "cloud_instance_name", "cloud_instance_host_name", "cloud_graph_host_name",
			"msgraph_host", "aud", "exp", "iat", "auth_time", "acr", "nonce", "preferred_username", "name", "tid", "ver",
			"at_hash", "c_hash", "email"},
		KerberosEndpoint:   base + pathTenant + "/kerberos",
		CloudInstanceName:  "microsoftonline.com",
		CloudGraphHostName: "graph.windows.net",
		MsgraphHost:        "graph.microsoft.com",
		RbacURL:            "https://pas.windows.net",
	}
	if region != "" {
		doc.TenantRegionScope = &region
	}
	writeJSON(w, http.StatusOK, doc)
}

// serveJWKS answers GET /{tenant}/discovery/v2.0/keys with the Authority's key.
func (e *Entra) serveJWKS(w http.ResponseWriter, r *http.Request, seg string) {
	if e.faults.Begin(w, r, emu.OpJWKS, e.faultWriter(r)) {
		return
	}
	if _, kind := e.resolveTenant(seg); kind == tenantUnknown {
		e.writeOAuthError(w, r, tenantNotFound(seg))
		return
	}
	h := w.Header()
	h.Set("Content-Type", "application/json; charset=utf-8")
	h.Set("Cache-Control", "max-age=86400, private")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(e.auth.JWKS())
}

// instanceMetadata is one cloud's entry in the instance discovery answer.
type instanceMetadata struct {
	PreferredNetwork string   `json:"preferred_network"`
	PreferredCache   string   `json:"preferred_cache"`
	Aliases          []string `json:"aliases"`
}

// knownClouds are the public and sovereign cloud aliases, as Entra lists them.
var knownClouds = []instanceMetadata{
	{"login.microsoftonline.com", "login.windows.net", []string{"login.microsoftonline.com", "login.windows.net", "login.microsoft.com", "sts.windows.net"}},
	{"login.partner.microsoftonline.cn", "login.partner.microsoftonline.cn", []string{"login.partner.microsoftonline.cn", "login.chinacloudapi.cn"}},
	{"login.microsoftonline.de", "login.microsoftonline.de", []string{"login.microsoftonline.de"}},
	{"login.microsoftonline.us", "login.microsoftonline.us", []string{"login.microsoftonline.us", "login.usgovcloudapi.net"}},
	{"login-us.microsoftonline.com", "login-us.microsoftonline.com", []string{"login-us.microsoftonline.com"}},
}

// serveInstanceDiscovery answers GET /common/discovery/instance?api-version=1.1&authorization_endpoint=...
// like Entra: the tenant discovery endpoint of the authority plus the cloud
// aliases. The emulator's own host (a loopback address) is answered as a
// cloud of its own, so that clients which validate the authority accept it.
func (e *Entra) serveInstanceDiscovery(w http.ResponseWriter, r *http.Request) {
	if e.faults.Begin(w, r, emu.OpInstance, e.faultWriter(r)) {
		return
	}
	q := r.URL.Query()
	ae := q.Get("authorization_endpoint")
	if ae == "" {
		e.writeOAuthError(w, r, newErr(http.StatusBadRequest, "invalid_request", 50049, "Unknown or invalid instance."))
		return
	}
	u, err := url.Parse(ae)
	if err != nil || u.Scheme != "https" || u.Host == "" {
		e.writeOAuthError(w, r, newErr(http.StatusBadRequest, "invalid_instance", 50049, "Unknown or invalid instance."))
		return
	}
	host := strings.ToLower(u.Host)
	seg := strings.Split(strings.Trim(u.Path, "/"), "/")[0]
	var meta []instanceMetadata
	known := false
	for _, c := range knownClouds {
		for _, a := range c.Aliases {
			if a == host {
				known = true
			}
		}
	}
	if !known && !strings.EqualFold(host, r.Host) {
		e.writeOAuthError(w, r, newErr(http.StatusBadRequest, "invalid_instance", 50049, "Unknown or invalid instance."))
		return
	}
	meta = append(meta, knownClouds...)
	if !known {
		meta = append(meta, instanceMetadata{host, host, []string{host}})
	}
	writeJSON(w, http.StatusOK, struct {
		TenantDiscoveryEndpoint string             `json:"tenant_discovery_endpoint"`
		APIVersion              string             `json:"api-version"`
		Metadata                []instanceMetadata `json:"metadata"`
	}{
		TenantDiscoveryEndpoint: "https://" + host + "/" + seg + "/v2.0/.well-known/openid-configuration",
		APIVersion:              "1.1",
		Metadata:                meta,
	})
}
