// Package names holds the emulators' rules for identifiers (GUIDs, vault and
// object names), the Key Vault permission list and the derived application
// object ID: what package scenario validates with and the vault and Entra
// emulations check requests with. Standard library only.
package names

import (
	"crypto/sha256"
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"strings"
)

var (
	guidRE      = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)
	vaultNameRE = regexp.MustCompile(`^[a-zA-Z][a-zA-Z0-9-]{1,22}[a-zA-Z0-9]$`)
	objNameRE   = regexp.MustCompile(`^[a-zA-Z0-9-]{1,127}$`)
)

// IsGUID reports whether s has the 8-4-4-4-12 hexadecimal GUID form.
func IsGUID(s string) bool { return guidRE.MatchString(s) }

// ValidVaultName reports whether s is a valid Key Vault / Managed HSM name:
// 3-24 letters, digits and '-', starting with a letter, ending with a letter
// or digit, without consecutive hyphens (the service refuses "--").
func ValidVaultName(s string) bool {
	return vaultNameRE.MatchString(s) && !strings.Contains(s, "--")
}

// ValidObjectName reports whether s is a valid key, certificate or secret name.
func ValidObjectName(s string) bool { return objNameRE.MatchString(s) }

// Permissions known to the emulators.
var Permissions = []string{
	"keys/get", "keys/list", "keys/create", "keys/import", "keys/update", "keys/delete",
	"keys/sign", "keys/verify", "keys/wrapKey", "keys/unwrapKey",
	"certificates/get", "certificates/list", "certificates/create", "certificates/import",
	"certificates/update", "certificates/delete",
	"secrets/get", "secrets/list", "secrets/set", "secrets/delete",
}

// Allows reports whether the granted permission list contains perm, honouring
// "family/*" and "*" wildcards.
func Allows(granted []string, perm string) bool {
	family, _, _ := strings.Cut(perm, "/")
	for _, g := range granted {
		if g == perm || g == "*" || g == family+"/*" {
			return true
		}
	}
	return false
}

// DerivedObjectID is the object ID a scenario app without an explicit
// objectId gets: a name-based (version 5 style) GUID of its client ID, the
// same on every run and in every process, in lower case.
func DerivedObjectID(clientID string) string {
	sum := sha256.Sum256([]byte("kvasserttest/application-object\x00" + strings.ToLower(clientID)))
	b := sum[:16]
	b[6] = b[6]&0x0f | 0x50 // version 5
	b[8] = b[8]&0x3f | 0x80 // RFC 9562 variant
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// MaxRedirectURI is the longest redirect URI Entra accepts on an app
// registration (256 characters).
const MaxRedirectURI = 256

// CheckRedirectURI returns why u cannot be a web redirect URI of an app
// registration, or "" when it can: an absolute https URL, or http on
// localhost / 127.0.0.1 / [::1] (development), without a fragment, a
// wildcard or user information, at most MaxRedirectURI characters.
func CheckRedirectURI(u string) string {
	if len(u) > MaxRedirectURI {
		return "longer than 256 characters"
	}
	p, err := url.Parse(u)
	switch {
	case err != nil || !p.IsAbs() || p.Host == "" || p.Opaque != "":
		return "not an absolute URL"
	case p.Fragment != "" || strings.Contains(u, "#"):
		return "holds a fragment"
	case p.User != nil:
		return "holds user information"
	case strings.Contains(p.Host, "*"):
		return "holds a wildcard"
	case p.Scheme == "https":
		return ""
	case p.Scheme == "http" && isLoopbackName(p.Hostname()):
		return ""
	}
	return "must be https (http only for localhost, 127.0.0.1 or [::1])"
}

func isLoopbackName(host string) bool {
	return strings.EqualFold(host, "localhost") || host == "127.0.0.1" || host == "::1"
}

// RedirectURIMatches reports whether a request's redirect_uri matches a
// registered one, as Entra matches them: exactly, except that for an http
// loopback URI (localhost, 127.0.0.1, [::1]) the port is ignored.
func RedirectURIMatches(registered, requested string) bool {
	if registered == requested {
		return true
	}
	r, err1 := url.Parse(registered)
	q, err2 := url.Parse(requested)
	if err1 != nil || err2 != nil || r.Scheme != "http" || q.Scheme != "http" || !isLoopbackName(r.Hostname()) {
		return false
	}
	return r.Hostname() == q.Hostname() && r.EscapedPath() == q.EscapedPath() && r.RawQuery == q.RawQuery &&
		q.User == nil && q.Fragment == "" && !strings.Contains(requested, "#")
}

// GraphAppID is Microsoft Graph's application ID.
const GraphAppID = "00000003-0000-0000-c000-000000000000"

// graphResources are Microsoft Graph's application ID URIs in the clouds.
var graphResources = []string{"https://graph.microsoft.com", "https://graph.microsoft.us", "https://dod-graph.microsoft.us", "https://microsoftgraph.chinacloudapi.cn", GraphAppID}

// SameResource reports whether two resource identifiers (application ID
// URIs or app IDs, as in a scope without "/.default") name the same
// resource: equal but for case and a trailing slash, or both Microsoft
// Graph ("" is Graph, the default).
func SameResource(a, b string) bool {
	a, b = normResource(a), normResource(b)
	if a == b {
		return true
	}
	isGraph := func(s string) bool { return slices.Contains(graphResources, s) }
	return isGraph(a) && isGraph(b)
}

func normResource(s string) string {
	if s == "" {
		return graphResources[0]
	}
	return strings.ToLower(strings.TrimRight(s, "/"))
}

// ValidResource reports whether s can name a resource: an https:// or
// api:// application ID URI, or a GUID.
func ValidResource(s string) bool {
	if IsGUID(s) {
		return true
	}
	p, err := url.Parse(s)
	return err == nil && (p.Scheme == "https" || p.Scheme == "api") && p.Host != "" && len(s) <= 256
}
