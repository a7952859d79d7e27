package main

import (
	"net/url"
	"strings"

	"github.com/kvassert/kvassert/internal/entraid"
)

// validResource reports whether r can name the resource of an app-only
// token (the part of a scope before "/.default"): an application ID (a
// GUID), or an absolute URI with a scheme and a host such as
// https://graph.microsoft.com or api://APP_ID, without user info, query or
// fragment, and not itself ending in /.default. Checked before any request,
// so a mistyped --scope or --resource is a usage error (exit 2) rather than
// Entra's AADSTS500011.
func validResource(r string) bool {
	if entraid.ValidClientID(r) {
		return true
	}
	if r == "" || len(r) > 512 || strings.ContainsFunc(r, func(c rune) bool { return c <= ' ' || c == 0x7f }) {
		return false
	}
	if hasDefaultSuffix(r) {
		return false // RESOURCE/.default/.default: no resource is named so
	}
	u, err := url.Parse(r)
	return err == nil && u.Scheme != "" && u.Host != "" && u.User == nil && u.RawQuery == "" && u.Fragment == "" && !u.ForceQuery
}

// hasDefaultSuffix reports whether r ends in /.default (any case): a scope,
// not a resource.
func hasDefaultSuffix(r string) bool {
	return strings.HasSuffix(strings.ToLower(r), "/.default")
}

// validTenantName reports whether t can name one Entra tenant on the
// command line: a GUID or a domain with at least one dot
// (contoso.onmicrosoft.com). entraid.ValidTenantID also takes a single
// label such as "x", which no Entra tenant is named: Entra answers
// AADSTS90002 after a Key Vault signature, where the CLI can say so first.
func validTenantName(t string) bool {
	return entraid.ValidTenantID(t) && (entraid.ValidClientID(t) || strings.Contains(t, "."))
}
