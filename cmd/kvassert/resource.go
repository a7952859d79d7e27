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
// fragment. Checked before any request, so a mistyped --scope or --resource
// is a usage error (exit 2) rather than Entra's AADSTS500011.
func validResource(r string) bool {
	if entraid.ValidClientID(r) {
		return true
	}
	if r == "" || len(r) > 512 || strings.ContainsFunc(r, func(c rune) bool { return c <= ' ' || c == 0x7f }) {
		return false
	}
	u, err := url.Parse(r)
	return err == nil && u.Scheme != "" && u.Host != "" && u.User == nil && u.RawQuery == "" && u.Fragment == "" && !u.ForceQuery
}
