package proxy

import (
	"errors"
	"strings"

	"github.com/kvassert/kvassert"
	"github.com/kvassert/kvassert/internal/entraid"
	"github.com/kvassert/kvassert/internal/kvid"
)

// The field checks of the token API, the managed identity routes and
// Target. The rules are the library's (entraid.ValidClientID,
// entraid.ValidTenantID, keyvault's parsers); this file only words them for
// a field-level problem.

// addErr adds the problem of a value the library refused: the reason of a
// kvassert.InputError (its wording without the package name), or the
// error's text for any other error.
func (f *fieldErrors) addErr(field string, err error) {
	var ie *kvassert.InputError
	if errors.As(err, &ie) {
		f.add(field, ie.Reason)
		return
	}
	f.add(field, err.Error())
}

// err is the *kvassert.InputError of errs ("proxy: Field: message;
// ..."), naming the first field as its Input, or nil.
func (f fieldErrors) err() error {
	if len(f) == 0 {
		return nil
	}
	msgs := make([]string, len(f))
	for i, e := range f {
		msgs[i] = e.Field + ": " + e.Message
	}
	return &kvassert.InputError{Package: "proxy", Input: f[0].Field, Reason: strings.Join(msgs, "; ")}
}

func checkClientID(field, v string, errs *fieldErrors) {
	if v == "" {
		errs.add(field, "required: the application (client) ID, a GUID")
	} else if !entraid.ValidClientID(v) {
		errs.add(field, "not a GUID: give the application (client) ID of the app registration")
	}
}

func checkTenant(field, v string, errs *fieldErrors) {
	switch {
	case v == "":
		errs.add(field, "required: the tenant ID (GUID) or a verified domain such as contoso.onmicrosoft.com")
	case !entraid.ValidTenantID(v):
		errs.add(field, "not a tenant ID or domain (letters, digits, '.', '-')")
	case strings.EqualFold(v, "common") || strings.EqualFold(v, "organizations") || strings.EqualFold(v, "consumers"):
		errs.add(field, "app-only tokens need a specific tenant, not "+strings.ToLower(v))
	}
}

func checkScope(field, v string, errs *fieldErrors) {
	switch {
	case v == "":
		errs.add(field, "required")
	case len(v) > 1024 || strings.ContainsFunc(v, func(r rune) bool { return r <= ' ' || r == 0x7f }):
		errs.add(field, "too long or contains white space or control characters")
	case !strings.HasSuffix(v, "/.default") || v == "/.default":
		errs.add(field, "app-only tokens need a scope ending in /.default, e.g. https://graph.microsoft.com/.default")
	}
}

// errLoopbackVault refuses vault URLs on this machine: the proxy would send
// its Key Vault token there (an emulator is reached with the real Azure
// names through ClientOptions instead).
const errLoopbackVault = "the proxy reaches Azure vaults only (https://{vault}.vault.azure.net/ or a sovereign cloud's), not addresses on this machine"

// checkVaultURL returns the normalised vault URL.
func checkVaultURL(field, v string, errs *fieldErrors) string {
	if v == "" {
		errs.add(field, "required: the vault URL, https://{vault}.vault.azure.net/")
		return ""
	}
	vault, err := kvid.ParseVaultURL(v)
	switch {
	case err != nil:
		errs.addErr(field, err)
		return ""
	case vault.Loopback:
		errs.add(field, errLoopbackVault)
		return ""
	case vault.ManagedHSM:
		errs.add(field, "a Managed HSM holds no certificates: use kv-key with the key and the certificate's thumbprint")
		return ""
	}
	return vault.URL
}

// checkVaultName checks a vault named by its name (the managed identity
// routes, Target.Vault) as keyvault does; names are case-insensitive.
func checkVaultName(field, v string, errs *fieldErrors) bool {
	if err := kvid.CheckVaultName(strings.ToLower(v)); err != nil {
		errs.addErr(field, err)
		return false
	}
	return true
}

func checkCertificateName(field, v string, errs *fieldErrors) {
	if v == "" {
		errs.add(field, "required: the name of the certificate in the vault")
	} else if err := kvid.CheckName(v); err != nil {
		errs.addErr(field, err)
	}
}
