package kvassert

import (
	"bytes"
	"encoding/json"
	"strings"
	"unicode/utf8"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/cloud"

	"github.com/kvassert/kvassert/internal/entraid"
	"github.com/kvassert/kvassert/internal/textutil"
)

// This file holds the checks of what callers pass in: tenant and client IDs,
// scopes, the authority host.

// authorityHost validates the cloud's authority host: https only.
func authorityHost(c cloud.Configuration) (string, error) {
	h := c.ActiveDirectoryAuthorityHost
	if h == "" {
		h = cloud.AzurePublic.ActiveDirectoryAuthorityHost
	}
	if !strings.HasPrefix(h, "https://") {
		return "", inputErr("Cloud", "the cloud's authority host is not https; tokens are only requested over https")
	}
	if strings.ContainsAny(h[len("https://"):], "@?#") {
		// Not repeated: it may hold user info or a query.
		return "", inputErr("Cloud", "the cloud's authority host must be a plain https://host/ URL (no user info, query or fragment)")
	}
	if !strings.HasSuffix(h, "/") {
		h += "/"
	}
	return h, nil
}

func checkScopes(scopes []string) error {
	for _, s := range scopes {
		if s == "" || len(s) > 1024 || strings.ContainsAny(s, " \t\r\n") {
			return inputErr("scope", "scope %q is empty, too long or contains white space", textutil.Truncate(s, 80))
		}
	}
	if len(scopes) != 1 || !strings.HasSuffix(scopes[0], "/.default") {
		return inputErr("scope", "app-only tokens need exactly one scope ending in /.default (e.g. https://graph.microsoft.com/.default), got %q", textutil.Truncate(strings.Join(scopes, " "), 200))
	}
	return nil
}

// maxClaimsLen and maxClaimsDepth bound a claims challenge
// (TokenRequestOptions.Claims). Entra's CAE challenges are a few hundred
// bytes, three or four levels deep; the bounds keep a hostile resource
// server from making the credential parse, key its cache on, and send
// megabytes.
const (
	maxClaimsLen   = 16 << 10
	maxClaimsDepth = 16
)

// checkClaims refuses a claims challenge that is not an OpenID Connect
// claims request: one JSON object whose members ("access_token", "id_token",
// ...) are JSON objects, in valid UTF-8, at most maxClaimsLen bytes and
// maxClaimsDepth levels deep. MSAL Go panics on some other shapes (the
// literal null with CAE) and passes the rest on to Entra; azcore's bearer
// policy hands over whatever a resource server sent. With cae, the claims
// must not set the client capabilities, which MSAL adds. The claims are
// never quoted: they come from a server.
func checkClaims(claims string, cae bool) error {
	if len(claims) > maxClaimsLen {
		return inputErr("claims", "the claims challenge (%d bytes) is longer than %d bytes; a resource server sent a challenge no token service would issue", len(claims), maxClaimsLen)
	}
	if !utf8.ValidString(claims) || !json.Valid([]byte(claims)) {
		return inputErr("claims", "the claims challenge (%d bytes) is not valid JSON; it must be a JSON object such as {\"access_token\":{...}}", len(claims))
	}
	if d := jsonDepth(claims); d > maxClaimsDepth {
		return inputErr("claims", "the claims challenge nests %d levels deep, more than %d", d, maxClaimsDepth)
	}
	var req map[string]json.RawMessage
	if err := json.Unmarshal([]byte(claims), &req); err != nil || req == nil {
		return inputErr("claims", "the claims challenge is not a JSON object; it must be one such as {\"access_token\":{...}}")
	}
	for _, v := range req {
		if v = bytes.TrimSpace(v); len(v) == 0 || v[0] != '{' {
			return inputErr("claims", "a member of the claims challenge is not a JSON object; each (\"access_token\", \"id_token\", ...) must be one")
		}
	}
	if cae {
		// MSAL merges the client capabilities ({"access_token":{"xms_cc":
		// {"values":["cp1"]}}}) into the challenge and fails, after the
		// assertion is signed, when the challenge sets them itself.
		var at struct {
			CC json.RawMessage `json:"xms_cc"`
		}
		if raw, ok := req["access_token"]; ok && json.Unmarshal(raw, &at) == nil && at.CC != nil {
			var cc map[string]json.RawMessage
			if json.Unmarshal(at.CC, &cc) != nil || cc == nil || cc["values"] != nil {
				return inputErr("claims", "the claims challenge sets the client capabilities (access_token.xms_cc) itself, which CAE requests set")
			}
		}
	}
	return nil
}

// jsonDepth returns the deepest nesting of objects and arrays in the valid
// JSON text s.
func jsonDepth(s string) int {
	depth, deepest, inString := 0, 0, false
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case inString:
			if c == '\\' {
				i++
			} else if c == '"' {
				inString = false
			}
		case c == '"':
			inString = true
		case c == '{' || c == '[':
			depth++
			deepest = max(deepest, depth)
		case c == '}' || c == ']':
			depth--
		}
	}
	return deepest
}

// checkTenant is ValidTenantID as an InputError for input (what the
// tenant was given as; the message starts with it). Only tenant-shaped
// text is ever repeated.
func checkTenant(input, what, t string) error {
	if !entraid.ValidTenant(t) {
		return inputErr(input, "%s (%d bytes) is not a tenant ID or domain (letters, digits, '.', '-')", what, len(t))
	}
	if entraid.TenantAlias(t) {
		return inputErr(input, "%s %q names no single tenant; app-only tokens need a specific tenant: give its tenant ID (a GUID) or a verified domain such as contoso.onmicrosoft.com", what, lowerASCII(t))
	}
	return nil
}

// lowerASCII lowercases s, allocating only when s has an upper-case letter.
func lowerASCII(s string) string {
	for i := 0; i < len(s); i++ {
		if 'A' <= s[i] && s[i] <= 'Z' {
			return strings.ToLower(s)
		}
	}
	return s
}
