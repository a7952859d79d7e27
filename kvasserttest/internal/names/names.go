// Package names holds the emulators' rules for identifiers (GUIDs, vault and
// object names), the Key Vault permission list and the derived application
// object ID: what package scenario validates with and the vault and Entra
// emulations check requests with. Standard library only.
package names

import (
	"crypto/sha256"
	"fmt"
	"regexp"
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
