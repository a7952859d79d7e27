// Package entraid holds the checks of Entra ID identifiers (tenant and
// client IDs) that the library, the proxy, rotation and the CLI share.
package entraid

import "strings"

// ValidTenantID reports whether t can name a tenant: a GUID or a domain such
// as contoso.onmicrosoft.com: at most 256 bytes of dot-separated labels, each
// 1 to 63 letters, digits and '-', not starting or ending with '-'. Names
// such as ".", ".." or "contoso..com" are refused, and so are the names that
// are not one tenant, in any case: "common", "organizations" and
// "consumers" (app-only tokens need a specific tenant), "adfs" and "dstsv2"
// (which make MSAL switch to ADFS or dSTS handling).
func ValidTenantID(t string) bool { return ValidTenant(t) && !TenantAlias(t) }

// TenantAlias reports whether t (a valid tenant name) is one of the names
// Entra and MSAL give a meaning other than one tenant.
func TenantAlias(t string) bool {
	switch len(t) {
	case 4:
		return strings.EqualFold(t, "adfs")
	case 6:
		return strings.EqualFold(t, "common") || strings.EqualFold(t, "dstsv2")
	case 9:
		return strings.EqualFold(t, "consumers")
	case 13:
		return strings.EqualFold(t, "organizations")
	}
	return false
}

// ValidTenant reports whether t is tenant-shaped (a GUID or a domain name),
// aliases such as "common" included.
func ValidTenant(t string) bool {
	if t == "" || len(t) > 256 {
		return false
	}
	start := 0 // first byte of the current label
	for i := 0; i < len(t); i++ {
		switch tenantByte[t[i]] {
		case tenantAlnum:
		case tenantHyphen: // not first in a label
			if i == start {
				return false
			}
		case tenantDot: // ends a label: not empty, not ending with '-', at most 63
			if i == start || t[i-1] == '-' || i-start > 63 {
				return false
			}
			start = i + 1
		default:
			return false
		}
	}
	return start < len(t) && t[len(t)-1] != '-' && len(t)-start <= 63
}

// tenantByte classifies the bytes of a tenant name for ValidTenant (a table
// keeps the per-call check, which every GetToken makes, as cheap as a
// character-class loop).
var tenantByte = func() (c [256]uint8) {
	for ch := '0'; ch <= '9'; ch++ {
		c[ch] = tenantAlnum
	}
	for ch := 'a'; ch <= 'z'; ch++ {
		c[ch], c[ch-'a'+'A'] = tenantAlnum, tenantAlnum
	}
	c['-'], c['.'] = tenantHyphen, tenantDot
	return c
}()

const (
	tenantAlnum = 1 + iota
	tenantHyphen
	tenantDot
)

// ValidClientID reports whether id is a client (application) ID: a GUID.
func ValidClientID(id string) bool {
	if len(id) != 36 {
		return false
	}
	for i := 0; i < 36; i++ {
		ch := id[i]
		switch {
		case i == 8 || i == 13 || i == 18 || i == 23:
			if ch != '-' {
				return false
			}
		case !('0' <= ch && ch <= '9' || 'a' <= ch && ch <= 'f' || 'A' <= ch && ch <= 'F'):
			return false
		}
	}
	return true
}
