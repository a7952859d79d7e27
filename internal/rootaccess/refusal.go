package rootaccess

import "time"

// Refusal is a refusal of the app in a tenant that a kvassert Credential
// remembers (its negative cache): GetToken for the tenant fails fast until
// Until.
type Refusal struct {
	// Code is the AADSTS code (e.g. 700016).
	Code int
	// Until is when the next token request for the tenant is allowed.
	Until time.Time
	// Failures counts the refusals in a row.
	Failures int
}

var refusalOf func(cred any, tenant string) (Refusal, bool)

// RegisterRefusals installs the accessor; package kvassert calls it once,
// at init.
func RegisterRefusals(f func(cred any, tenant string) (Refusal, bool)) { refusalOf = f }

// TenantRefused returns the tenant-level refusal cred (a
// *kvassert.Credential) remembers for tenant (a tenant ID, any case), if
// one is in force: its back-off has not ended. Per-resource refusals
// (AADSTS500011) are not reported here.
func TenantRefused(cred any, tenant string) (Refusal, bool) { return refusalOf(cred, tenant) }
