package tenants

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/cloud"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"

	"github.com/kvassert/kvassert"
	"github.com/kvassert/kvassert/internal/entraid"
	"github.com/kvassert/kvassert/internal/graphapi"
	"github.com/kvassert/kvassert/internal/rootaccess"
	"github.com/kvassert/kvassert/internal/textutil"
)

// AuditOptions are AuditApp's options.
type AuditOptions struct {
	// ClientOptions are the Microsoft Graph pipeline's (transport, retry);
	// the Graph host follows the credential's cloud.
	ClientOptions policy.ClientOptions
	// Concurrency is CheckAll's, for the known tenants.
	Concurrency int
}

// AppAudit is the hygiene of a multi-tenant app registration.
type AppAudit struct {
	// Locked is set when the app instance property lock protects the
	// credentials of the app's service principals (Microsoft Graph
	// servicePrincipalLockConfiguration: isEnabled, and allProperties or
	// both credentialsWithUsageVerify and credentialsWithUsageSign).
	Locked bool `json:"locked"`
	// LockChecked is false when the configuration could not be read;
	// LockError then says why (e.g. a 403: Application.Read.All missing).
	LockChecked bool   `json:"lockChecked"`
	LockError   string `json:"lockError,omitempty"`
	// Findings are what needs fixing, one line each with the fix.
	Findings []string `json:"findings"`
	// Tenants are the reports of the known tenants (CheckAll), in order;
	// Refusing counts those whose state is not ok.
	Tenants  []Report `json:"tenants"`
	Refusing int      `json:"refusing"`
}

// lockFix is the fix printed for an app without the credentials lock.
const lockFix = `turn on the app instance property lock for credentials: ` +
	`az rest --method PATCH --url https://graph.microsoft.com/v1.0/applications/{objectId} ` +
	`--body '{"servicePrincipalLockConfiguration":{"isEnabled":true,"allProperties":true}}' ` +
	`(or App registrations > the app > Authentication > App instance property lock)`

// AuditApp audits the home app registration appObjectID (its Object ID,
// not its client ID) of cred's app: whether the app instance property lock
// keeps customer tenants' administrators from adding credentials to its
// service principal there (reading it needs Application.Read.All or
// ownership; without it, the lock is reported as unchecked), and which of
// the SaaS's known tenants refuse the app (CheckAll with want). Input
// errors are *kvassert.InputError; Graph's errors are in LockError.
func AuditApp(ctx context.Context, cred *kvassert.Credential, appObjectID string, known []string, want *Want, opts *AuditOptions) (AppAudit, error) {
	if cred == nil {
		return AppAudit{}, inputErr("cred", "cred is a nil *kvassert.Credential")
	}
	if !entraid.ValidClientID(appObjectID) {
		return AppAudit{}, inputErr("appObjectID", "appObjectID (%d bytes) is not a GUID (the app registration's Object ID)", len(appObjectID))
	}
	for i, t := range known {
		if !entraid.ValidTenantID(t) {
			return AppAudit{}, inputErr("known", "known[%d] (%d bytes) is not a tenant ID or domain", i, len(t))
		}
	}
	var o AuditOptions
	if opts != nil {
		o = *opts
	}
	id := rootaccess.CredentialIdentity(cred)
	if appObjectID == id.ClientID {
		return AppAudit{}, inputErr("appObjectID", "appObjectID is the client ID; use the app registration's Object ID (az ad app show --id <client id> --query id)")
	}
	o.ClientOptions.Cloud = cloud.Configuration{ActiveDirectoryAuthorityHost: id.AuthorityHost}
	g, err := graphapi.New(cred, &o.ClientOptions)
	if err != nil {
		return AppAudit{}, inputErr("cred", "cred: no Microsoft Graph host is known for the credential's cloud")
	}
	a := AppAudit{Findings: []string{}, Tenants: []Report{}}
	if len(known) > 0 {
		reports, err := CheckAll(ctx, cred, known, want, &CheckOptions{Concurrency: o.Concurrency})
		if err != nil {
			return AppAudit{}, err
		}
		a.Tenants = reports
		for _, r := range reports {
			if r.State != StateOK {
				a.Refusing++
				a.Findings = append(a.Findings, "tenant "+r.Tenant+": "+r.State+fix(r))
			}
		}
	}
	lock, err := g.LockConfiguration(ctx, appObjectID)
	switch {
	case err != nil:
		a.LockError = lockError(err)
		a.Findings = append(a.Findings, "the app instance property lock could not be read: "+a.LockError)
	case !lock.LocksCredentials():
		a.LockChecked = true
		a.Findings = append(a.Findings, "the app's credentials are not locked: a customer tenant's administrator can add a credential to its service principal there; "+lockFix)
	default:
		a.LockChecked, a.Locked = true, true
	}
	return a, nil
}

// lockError words why the lock could not be read: from the error's type
// and codes, never from the answer's text (a JSON parser's message quotes
// the answer's bytes).
func lockError(err error) string {
	var ge *graphapi.Error
	var ae *kvassert.AuthError
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &ae):
		return "no Microsoft Graph token in the home tenant: " + firstLine(ae.Error())
	case errors.As(err, &ge):
		s := fmt.Sprintf("Microsoft Graph answered HTTP %d", ge.StatusCode)
		if ge.Code != "" {
			s += " " + ge.Code
		}
		if ge.Temporary() {
			return s + ": Graph is throttling or unavailable; run the audit again later"
		}
		if h := ge.Hint(); h != "" {
			s += ": " + h
		}
		return s
	case errors.As(err, &se), errors.As(err, &te):
		return "Microsoft Graph's answer (HTTP 200) is not the expected JSON"
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return "the audit was cancelled or timed out before Microsoft Graph answered"
	}
	if u := errors.Unwrap(err); u != nil { // past graphapi's "rotation: Microsoft Graph read lock: "
		err = u
	}
	return "Microsoft Graph could not be reached: " + textutil.FirstLine(err.Error(), 200)
}

func fix(r Report) string {
	switch {
	case r.ConsentURL != "":
		return " (send the administrator " + r.ConsentURL + ")"
	case r.Hint != "":
		return " (" + r.Hint + ")"
	}
	return ""
}

func firstLine(s string) string {
	for i := 0; i < len(s); i++ {
		if s[i] == '\n' {
			return s[:i]
		}
	}
	return s
}
