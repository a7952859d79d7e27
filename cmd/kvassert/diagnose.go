package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"syscall"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/runtime"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"

	"github.com/kvassert/kvassert"
	"github.com/kvassert/kvassert/internal/kvclient"
	"github.com/kvassert/kvassert/internal/kvid"
	"github.com/kvassert/kvassert/keyvault"
)

// describe turns an error into one line, a hint and an exit code. It knows
// the errors of Entra ID (kvassert.AuthError), of Azure services
// (azcore.ResponseError), of azidentity, of refused input
// (kvassert.InputError) and of the network, all by type, and keeps what the
// command's exitError says was being done.
func describe(err error) (msg, hint string, code int) {
	msg, hint, code = describeErr(err)
	if code == exitFailure && unreachable(err) {
		code = exitUnreachable
	}
	return msg, hint, code
}

func describeErr(err error) (msg, hint string, code int) {
	code = exitFailure
	var ee *exitError
	if errors.As(err, &ee) {
		code = ee.code
		if ee.err == nil {
			return ee.msg, ee.hint, code
		}
		inner, innerHint := core(ee.err)
		msg = inner
		if ee.msg != "" && !strings.HasPrefix(inner, ee.msg+": ") { // not "managed identity: managed identity: ..."
			msg = ee.msg + ": " + inner
		}
		hint = ee.hint
		if innerHint != "" {
			hint = innerHint
		}
		return msg, hint, code
	}
	msg, hint = core(err)
	return msg, hint, code
}

// core describes an error that is not an exitError. It recognises errors
// by type only: the typed errors it knows are described from their fields
// (the library's wrapping text is left out, the caller's exitError says what
// was being done); any other error is shown as its first line.
func core(err error) (msg, hint string) {
	if msg, hint, ok := describeUnreachable(err); ok {
		return msg, hint
	}
	var ae *kvassert.AuthError
	if errors.As(err, &ae) {
		return firstLine(strings.TrimPrefix(ae.Error(), "kvassert: ")), ae.Hint
	}
	var ce *keyvault.CredentialError
	if errors.As(err, &ce) {
		if msg, hint, ok := describeCredential(ce); ok {
			return msg, hint
		}
	}
	if se := kvclient.AsServiceError(err); se != nil {
		return describeService(se)
	}
	var afe *azidentity.AuthenticationFailedError
	if errors.As(err, &afe) {
		status, code := authFailedCodes(afe)
		var kv *keyVaultCredentialError
		if errors.As(err, &kv) {
			if kv.emulator {
				return describeEmulatorAuthFailed(status, code)
			}
			return describeAuthFailed("DefaultAzureCredential", " to reach Key Vault", status, code)
		}
		return describeAuthFailed("the Azure credential", "", status, code)
	}
	var nc *noAzureCredentialError
	if errors.As(err, &nc) {
		return "no Azure credential to reach Key Vault: DefaultAzureCredential found none (environment, workload identity, managed identity, Azure CLI)",
			"set AZURE_TENANT_ID, AZURE_CLIENT_ID and AZURE_CLIENT_SECRET, sign in with 'az login', or run where a managed identity is available"
	}
	if r, ok := inputReason(err); ok {
		return r, ""
	}
	text := strings.TrimPrefix(firstLine(err.Error()), "kvassert: ") // the CLI speaks for the library
	var dns *net.DNSError
	if errors.As(err, &dns) {
		return text, "check the host name (for a vault: https://NAME.vault.azure.net/)"
	}
	var ue *url.Error
	var cve *tls.CertificateVerificationError
	var ua x509.UnknownAuthorityError
	if errors.As(err, &ue) && (errors.As(err, &cve) || errors.As(err, &ua)) {
		return text, "the server's TLS certificate is not trusted; with the emulator, set " + envCAFile + " to the CA file it wrote"
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return text, "the service did not answer in time; check the network and retry"
	}
	return text, ""
}

// describeUnreachable describes a request that reached no service (exit
// code 3): the host and the transport's reason, never the URL's path or
// query.
func describeUnreachable(err error) (msg, hint string, ok bool) {
	var ue *url.Error
	if !errors.As(err, &ue) {
		return "", "", false
	}
	host := "the service"
	if u, perr := url.Parse(ue.URL); perr == nil && u.Host != "" {
		host = u.Host
	}
	reason := firstLine(ue.Err.Error())
	var op *net.OpError
	if errors.As(ue.Err, &op) {
		reason = firstLine(op.Error())
	}
	msg = "could not reach " + host + ": " + reason
	var dns *net.DNSError
	var cve *tls.CertificateVerificationError
	var ua x509.UnknownAuthorityError
	switch {
	case errors.As(err, &dns):
		hint = "check the host name (for a vault: https://NAME.vault.azure.net/)"
	case errors.As(err, &cve) || errors.As(err, &ua):
		hint = "the server's TLS certificate is not trusted; with the emulator, set " + envCAFile + " to the CA file it wrote"
	case ue.Timeout() || errors.Is(err, context.DeadlineExceeded):
		hint = "the service did not answer in time; check the network and retry"
	default:
		hint = "check the network, the host name and any proxy (HTTPS_PROXY); with KVASSERT_EMULATOR set, check that 'kvassert emulate' is running there"
	}
	return msg, hint, true
}

// inputReason returns the reason of input the library refused (a
// kvassert.InputError) or of a file it could not read (an fs.PathError,
// whose path the caller names), without the package name.
func inputReason(err error) (string, bool) {
	var ie *kvassert.InputError
	if errors.As(err, &ie) {
		return ie.Reason, true
	}
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err.Error(), true
	}
	return "", false
}

// addrInUse reports whether err is a listen address already taken.
func addrInUse(err error) bool { return errors.Is(err, syscall.EADDRINUSE) }

// flagError is the usage error for a flag whose value the library refused:
// "--flag: reason".
func flagError(flag string, err error, hint string) error {
	r, ok := inputReason(err)
	if !ok {
		r = firstLine(err.Error())
	}
	return usageError(flag+": "+r, hint)
}

func firstLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexAny(s, "\r\n"); i >= 0 {
		s = strings.TrimSpace(s[:i])
	}
	return s
}

// describeService describes an error answer of an Azure service from
// kvassert's typed fields only (keyvault.ServiceError): the status, the
// error code, and for an RBAC refusal the action and the caller. No text of
// the answer's body is shown.
func describeService(se *keyvault.ServiceError) (string, string) {
	service, host := "the service", se.Host
	switch {
	case host == "":
	case kvid.IsVaultHost(host):
		service = "Key Vault " + host
	case strings.HasPrefix(strings.ToLower(host), "login."):
		service = "Entra ID " + host
	default:
		service = host
	}
	status := se.StatusCode
	msg := fmt.Sprintf("%s answered %d", service, status)
	if se.ErrorCode != "" {
		msg += " " + se.ErrorCode
		if se.InnerCode != "" {
			msg += "/" + se.InnerCode
		}
	} else if t := http.StatusText(status); t != "" {
		msg += " " + t
	}
	var hint string
	switch {
	case status == 403:
		if se.Action != "" {
			msg += " (action " + se.Action + ")"
		}
		if se.Caller != "" {
			msg += " (caller appid=" + se.Caller + ")"
		}
		hint = roleHint(se.Action)
	case status == 401:
		hint = "the vault did not accept the identity's token: the identity must be in the vault's tenant (check AZURE_TENANT_ID)"
	case status == 404 && strings.HasSuffix(se.ErrorCode, "NotFound") && se.ErrorCode != "NotFound":
		vault, _, _ := strings.Cut(host, ".")
		if vault == "" || !kvid.IsVaultHost(host) {
			vault = "VAULT"
		}
		kind := strings.ToLower(strings.TrimSuffix(se.ErrorCode, "NotFound"))
		if kind != "key" && kind != "secret" {
			kind = "certificate"
		}
		hint = fmt.Sprintf("check the name (names are case-insensitive); list them with: az keyvault %s list --vault-name %s", kind, vault)
	case status == 404:
		hint = "check the vault URL (https://NAME.vault.azure.net/) and the object name"
	case status == 429:
		hint = "the vault is throttling requests; wait a little and retry (tokens are cached, so steady use needs few signatures)"
	case status == 400 && se.ErrorCode == "BadParameter":
		hint = "check the values of the flags"
	}
	return msg, hint
}

// roleHint names the Azure RBAC role that grants a Key Vault data action.
func roleHint(action string) string {
	a := strings.ToLower(action)
	role := ""
	switch {
	case strings.Contains(a, "keys/sign"):
		role = "Key Vault Crypto User"
	case strings.Contains(a, "certificates/") && strings.HasSuffix(a, "/read"):
		role = "Key Vault Reader (or Key Vault Certificate User)"
	case strings.Contains(a, "certificates/"):
		role = "Key Vault Certificates Officer"
	case strings.Contains(a, "secrets/"):
		role = "Key Vault Secrets User"
	case strings.Contains(a, "keys/"):
		role = "Key Vault Crypto User"
	}
	if role == "" {
		return "the identity that reaches Key Vault lacks a permission on this vault: grant it a Key Vault role (RBAC) or an access policy"
	}
	return "grant the identity that reaches Key Vault the " + role + " role on the vault (or the matching access policy permission)"
}

// CLI names of the Key Vault credential (defaultCredential.CredentialName).
const (
	credNameDefault  = "DefaultAzureCredential"
	credNameEmulator = "the emulator's identity"
)

// describeCredential describes a failure of the Key Vault credential as
// the keyvault package reports it (its typed fields; the credential's own
// text, which quotes the token endpoint's answer, is not kept). ok is false
// for a context error or a panic, described from the error's own line.
func describeCredential(ce *keyvault.CredentialError) (msg, hint string, ok bool) {
	if ce.Unwrap() != nil {
		return "", "", false
	}
	switch {
	case ce.AuthenticationFailed && ce.Credential == credNameEmulator:
		msg, hint = describeEmulatorAuthFailed(ce.StatusCode, ce.Code)
	case ce.AuthenticationFailed && ce.Credential == credNameDefault:
		msg, hint = describeAuthFailed(credNameDefault, " to reach Key Vault", ce.StatusCode, ce.Code)
	case ce.AuthenticationFailed:
		msg, hint = describeAuthFailed("the Azure credential", " to reach Key Vault", ce.StatusCode, ce.Code)
	case ce.Credential == credNameDefault || ce.Credential == credNameEmulator:
		// The CLI's credential reports every other failure as "no
		// credential applied" (see defaultCredential).
		return "no Azure credential to reach Key Vault: DefaultAzureCredential found none (environment, workload identity, managed identity, Azure CLI)",
			"set AZURE_TENANT_ID, AZURE_CLIENT_ID and AZURE_CLIENT_SECRET, sign in with 'az login', or run where a managed identity is available", true
	default:
		return "", "", false
	}
	return msg, hint, true
}

// describeEmulatorAuthFailed is describeAuthFailed for the emulator's own
// identity, whose variables are KVASSERT_EMULATOR_*.
func describeEmulatorAuthFailed(status, code int) (string, string) {
	msg, hint := describeAuthFailed(credNameEmulator, " to reach its vaults", status, code)
	return msg, strings.ReplaceAll(hint, "AZURE_", "KVASSERT_EMULATOR_")
}

// authFailedCodes reads the status and the AADSTS code of an azidentity
// failure: the code from the token endpoint's error_codes, else from an
// "AADSTS<digits>" in the message. Nothing else of the answer is read.
func authFailedCodes(afe *azidentity.AuthenticationFailedError) (status, code int) {
	if r := afe.RawResponse; r != nil {
		status = r.StatusCode
		body, _ := runtime.Payload(r)
		var doc struct {
			ErrorCodes []int `json:"error_codes"`
		}
		if json.Unmarshal(body, &doc) == nil && len(doc.ErrorCodes) > 0 && doc.ErrorCodes[0] > 0 && doc.ErrorCodes[0] < 1e9 {
			code = doc.ErrorCodes[0]
		}
	}
	if code == 0 {
		if m := aadstsRE.FindStringSubmatch(afe.Error()); m != nil {
			code, _ = strconv.Atoi(m[1])
		}
	}
	return status, code
}

// aadstsRE finds an AADSTS code (digits only) in a message.
var aadstsRE = regexp.MustCompile(`AADSTS([0-9]{1,9})`)

// describeAuthFailed describes a credential's failure to get a token: who
// is the credential ("DefaultAzureCredential", for Key Vault), purpose what
// its token was for, status and code (AADSTS) what is known of the token
// endpoint's answer. The answer's text is never shown: the hint, keyed by
// the code, says what to do.
func describeAuthFailed(who, purpose string, status, code int) (string, string) {
	msg := who + " could not get a token" + purpose
	switch {
	case code != 0 && status != 0:
		msg += fmt.Sprintf(": AADSTS%d (HTTP %d)", code, status)
	case code != 0:
		msg += fmt.Sprintf(": AADSTS%d", code)
	case status != 0:
		msg += fmt.Sprintf(" (HTTP %d)", status)
	default:
		msg += ": the token endpoint's answer was refused or unusable"
	}
	hint := "check AZURE_TENANT_ID, AZURE_CLIENT_ID and AZURE_CLIENT_SECRET (or the managed identity) of the identity that reaches Key Vault"
	switch code {
	case 7000215, 7000222:
		hint = "AZURE_CLIENT_SECRET is wrong or expired: create a new client secret for AZURE_CLIENT_ID"
	case 700016:
		hint = "AZURE_CLIENT_ID is not an app registered in AZURE_TENANT_ID"
	case 90002:
		hint = "AZURE_TENANT_ID names no tenant"
	}
	return msg, hint
}

func firstSentence(s string) string {
	if i := strings.Index(s, ". "); i > 0 {
		return s[:i+1]
	}
	return s
}
