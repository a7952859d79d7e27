package tenants

import (
	"net"
	"net/url"
	"strings"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/cloud"

	"github.com/kvassert/kvassert/internal/entraid"
	"github.com/kvassert/kvassert/internal/graphapi"
	"github.com/kvassert/kvassert/internal/inputerr"
	"github.com/kvassert/kvassert/internal/textutil"
)

// ConsentURLOptions are the optional parts of an admin-consent link.
type ConsentURLOptions struct {
	// Tenant is the customer tenant (GUID or domain) whose administrator is
	// asked; "" means "organizations": Entra uses the signed-in
	// administrator's own tenant. "common" and "consumers" are refused
	// (the endpoint's documentation: a personal account cannot consent
	// for an organization).
	Tenant string
	// Cloud selects the authority host, as CredentialOptions.Cloud does;
	// zero means the public cloud.
	Cloud cloud.Configuration
	// Scope is the space-separated list of scopes to consent to, each
	// ending in "/.default" (every application permission the app
	// registration lists for that resource). Default: Microsoft Graph's
	// ".default" for the cloud (https://graph.microsoft.com/.default in the
	// public cloud).
	Scope string
}

// maxRedirectURI is Entra's limit on a redirect URI's length.
const maxRedirectURI = 256

// maxState bounds a caller's state; the Handler's are 99 to 439 bytes (a domain link carries the domain).
const maxState = 1024

// ConsentURL returns the v2 admin-consent link
// https://{authority host}/{tenant|organizations}/v2.0/adminconsent?client_id=...&redirect_uri=...&scope=...&state=...
// for the app clientID. redirectURI must be registered on the app (web
// platform) and be https, or http on a loopback host (localhost, 127.0.0.1,
// [::1]) for development, without the characters Entra does not support
// in redirect URIs (! $ ' ( ) , ;). state is opaque and returned by Entra on the
// redirect; "" leaves it out (a Handler refuses redirects without its own
// state: use Handler.ConsentURL with one). Bad input is a
// *kvassert.InputError naming the parameter.
func ConsentURL(clientID, redirectURI, state string, opts *ConsentURLOptions) (string, error) {
	if err := checkRedirectURI(redirectURI); err != nil {
		return "", err
	}
	if len(state) > maxState || strings.ContainsFunc(state, isControl) {
		return "", inputErr("state", "state (%d bytes) is longer than %d bytes or holds control characters", len(state), maxState)
	}
	var o ConsentURLOptions
	if opts != nil {
		o = *opts
	}
	return consentURL(clientID, redirectURI, state, o)
}

// consentURL builds the link; redirectURI may be "" (a report's link
// without Want.RedirectURI: then the v1 link, which needs none).
func consentURL(clientID, redirectURI, state string, o ConsentURLOptions) (string, error) {
	if !entraid.ValidClientID(clientID) {
		return "", inputErr("clientID", "clientID (%d bytes) is not a GUID", len(clientID))
	}
	tenant := o.Tenant
	switch {
	case tenant == "":
		tenant = "organizations"
	case !entraid.ValidTenant(tenant):
		return "", inputErr("Tenant", "tenant (%d bytes) is not a tenant ID or domain", len(tenant))
	case entraid.TenantAlias(tenant) && !strings.EqualFold(tenant, "organizations"): // the endpoint's docs: not "common"
		return "", inputErr("Tenant", "tenant %q cannot consent for an organization; use a tenant, or organizations", tenant)
	}
	host, err := authorityHost(o.Cloud)
	if err != nil {
		return "", err
	}
	scope := o.Scope
	if scope == "" {
		g, err := graphapi.Host(o.Cloud)
		if err != nil {
			return "", inputErr("Scope", "Scope: no default scope for this cloud (Microsoft Graph's host is unknown): set Scope")
		}
		scope = "https://" + g + "/.default"
	} else if err := checkScope(scope); err != nil {
		return "", err
	}
	if redirectURI == "" {
		// A report's link without Want.RedirectURI: the v2 endpoint
		// requires a redirect URI, the v1 one ("Grant tenant-wide admin
		// consent to an application") does not; it consents to every
		// permission the app lists and ends on the app's default redirect
		// URI.
		return host + url.PathEscape(strings.ToLower(tenant)) + "/adminconsent?client_id=" + url.QueryEscape(strings.ToLower(clientID)), nil
	}
	q := url.Values{"client_id": {strings.ToLower(clientID)}, "scope": {scope}, "redirect_uri": {redirectURI}}
	if state != "" {
		q.Set("state", state)
	}
	return host + url.PathEscape(strings.ToLower(tenant)) + "/v2.0/adminconsent?" + q.Encode(), nil
}

func checkScope(scope string) error {
	if len(scope) > 1024 {
		return inputErr("Scope", "scope (%d bytes) is longer than 1024 bytes", len(scope))
	}
	for _, s := range strings.Split(scope, " ") {
		if !strings.HasSuffix(s, "/.default") || len(s) == len("/.default") || strings.ContainsFunc(s, isControl) || strings.ContainsAny(s, "\t") {
			return inputErr("Scope", "scope (%d bytes) is not a space-separated list of resource/.default scopes", len(scope))
		}
	}
	return nil
}

// checkRedirectURI: https, or http on a loopback host; no user info or
// fragment, none of the characters Entra does not support (! $ ' ( ) , ;);
// at most 256 bytes.
func checkRedirectURI(s string) error {
	if s == "" || len(s) > maxRedirectURI {
		return inputErr("redirectURI", "redirectURI (%d bytes) is empty or longer than %d bytes", len(s), maxRedirectURI)
	}
	u, err := url.Parse(s)
	if err != nil || u.Host == "" || u.User != nil || u.Fragment != "" || strings.ContainsFunc(s, isControl) || u.Opaque != "" {
		return inputErr("redirectURI", "redirectURI is not an absolute URL without user info or fragment")
	}
	if strings.ContainsAny(s, "!$'(),;") { // Entra's redirect URI restrictions
		return inputErr("redirectURI", "redirectURI holds a character Entra does not support in redirect URIs (! $ ' ( ) , ;)")
	}
	switch u.Scheme {
	case "https":
		return nil
	case "http":
		if isLoopback(u.Hostname()) {
			return nil
		}
		return inputErr("redirectURI", "redirectURI uses http on %s: only https, or http on a loopback host for development", textutil.Truncate(u.Hostname(), 80))
	}
	return inputErr("redirectURI", "redirectURI scheme %q is not https", textutil.Truncate(u.Scheme, 16))
}

func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// authorityHost is the cloud's authority host with a trailing slash (the
// rule of kvassert.CredentialOptions.Cloud).
func authorityHost(c cloud.Configuration) (string, error) {
	h := c.ActiveDirectoryAuthorityHost
	if h == "" {
		h = cloud.AzurePublic.ActiveDirectoryAuthorityHost
	}
	u, err := url.Parse(h)
	if err != nil || u.Scheme != "https" || u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" || (u.Path != "" && u.Path != "/") {
		return "", inputErr("Cloud", "Cloud: the authority host must be a plain https://host/ URL")
	}
	return "https://" + strings.ToLower(u.Host) + "/", nil
}

func isControl(r rune) bool { return r < 0x20 || r == 0x7f }

func inputErr(input, format string, args ...any) error {
	return inputerr.New("tenants", input, format, args...)
}
