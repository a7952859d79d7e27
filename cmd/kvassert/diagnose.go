package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"syscall"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/runtime"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"

	"github.com/kvassert/kvassert"
	"github.com/kvassert/kvassert/keyvault"
)

// describe turns an error into one line, a hint and an exit code. It knows
// the errors of Entra ID (kvassert.AuthError), of Azure services
// (azcore.ResponseError), of azidentity, of refused input
// (kvassert.InputError) and of the network, all by type, and keeps what the
// command's exitError says was being done.
func describe(err error) (msg, hint string, code int) {
	code = exitFailure
	var ee *exitError
	if errors.As(err, &ee) {
		code = ee.code
		if ee.err == nil {
			return ee.msg, ee.hint, code
		}
		inner, innerHint := core(ee.err)
		msg = inner
		if ee.msg != "" {
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
	var ae *kvassert.AuthError
	if errors.As(err, &ae) {
		return firstLine(ae.Reason()), ae.Hint
	}
	var re *azcore.ResponseError
	if errors.As(err, &re) {
		return describeResponse(re)
	}
	var afe *azidentity.AuthenticationFailedError
	if errors.As(err, &afe) {
		var kv *keyVaultCredentialError
		if errors.As(err, &kv) {
			if kv.emulator {
				msg, hint := describeAuthFailed("the emulator's identity", " to reach its vaults", afe)
				return msg, strings.ReplaceAll(hint, "AZURE_", "KVASSERT_EMULATOR_")
			}
			return describeAuthFailed("DefaultAzureCredential", " to reach Key Vault", afe)
		}
		return describeAuthFailed("the Azure credential", "", afe)
	}
	var nc *noAzureCredentialError
	if errors.As(err, &nc) {
		return "no Azure credential to reach Key Vault: DefaultAzureCredential found none (environment, workload identity, managed identity, Azure CLI)",
			"set AZURE_TENANT_ID, AZURE_CLIENT_ID and AZURE_CLIENT_SECRET, sign in with 'az login', or run where a managed identity is available"
	}
	if r, ok := inputReason(err); ok {
		return r, ""
	}
	text := firstLine(err.Error())
	var dns *net.DNSError
	if errors.As(err, &dns) {
		return text, "check the host name (for a vault: https://NAME.vault.azure.net/)"
	}
	var ue *url.Error
	var ce *tls.CertificateVerificationError
	var ua x509.UnknownAuthorityError
	if errors.As(err, &ue) && (errors.As(err, &ce) || errors.As(err, &ua)) {
		return text, "the server's TLS certificate is not trusted; with the emulator, set " + envCAFile + " to the CA file it wrote"
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return text, "the service did not answer in time; check the network and retry"
	}
	return text, ""
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

// serviceError is the error body of Key Vault and most Azure services.
type serviceError struct {
	Error struct {
		Code       string `json:"code"`
		Message    string `json:"message"`
		InnerError *struct {
			Code string `json:"code"`
		} `json:"innererror"`
	} `json:"error"`
	// OAuthError is the error_description of Entra ID's token endpoint.
	OAuthError string `json:"error_description"`
	// ErrorCodes are the AADSTS codes of Entra ID's token endpoint.
	ErrorCodes []int `json:"error_codes"`
}

var (
	rbacActionRE = regexp.MustCompile(`Action: '([^']+)'`)
	rbacCallerRE = regexp.MustCompile(`Caller: (appid=[0-9a-fA-F-]+)`)
)

// describeResponse describes an error answer of an Azure service.
func describeResponse(re *azcore.ResponseError) (string, string) {
	service, host := "the service", ""
	if r := re.RawResponse; r != nil && r.Request != nil {
		host = r.Request.URL.Host
		switch {
		case keyvault.IsVaultHost(host):
			service = "Key Vault " + host
		case strings.HasPrefix(strings.ToLower(host), "login."):
			service = "Entra ID " + host
		default:
			service = host
		}
	}
	status := re.StatusCode
	var body []byte
	if re.RawResponse != nil {
		body, _ = runtime.Payload(re.RawResponse)
	}
	var se serviceError
	message := ""
	if json.Unmarshal(body, &se) == nil && se.Error.Message != "" {
		message = se.Error.Message
	} else if len(body) > 0 && len(body) < 300 && !bytes.ContainsAny(body, "{<") {
		message = string(body)
	}
	code := re.ErrorCode
	if se.Error.InnerError != nil && se.Error.InnerError.Code != "" {
		code += "/" + se.Error.InnerError.Code
	}
	head := fmt.Sprintf("%s answered %d", service, status)
	if code != "" {
		head += " " + code
	}
	msg := head
	if m := firstSentence(firstLine(message)); m != "" {
		msg += ": " + m
	}
	var hint string
	switch {
	case status == 403:
		action := ""
		if m := rbacActionRE.FindStringSubmatch(message); m != nil {
			action = m[1]
			msg += " (action " + action + ")"
		}
		if m := rbacCallerRE.FindStringSubmatch(message); m != nil {
			msg += " (caller " + m[1] + ")"
		}
		hint = roleHint(action)
	case status == 401:
		hint = "the vault did not accept the identity's token: the identity must be in the vault's tenant (check AZURE_TENANT_ID)"
	case status == 404 && strings.HasSuffix(re.ErrorCode, "NotFound") && re.ErrorCode != "NotFound":
		vault, _, _ := strings.Cut(host, ".")
		if vault == "" || !keyvault.IsVaultHost(host) {
			vault = "VAULT"
		}
		kind := strings.ToLower(strings.TrimSuffix(re.ErrorCode, "NotFound"))
		if kind != "key" && kind != "secret" {
			kind = "certificate"
		}
		hint = fmt.Sprintf("check the name (names are case-insensitive); list them with: az keyvault %s list --vault-name %s", kind, vault)
	case status == 404:
		hint = "check the vault URL (https://NAME.vault.azure.net/) and the object name"
	case status == 429:
		hint = "the vault is throttling requests; wait a little and retry (tokens are cached, so steady use needs few signatures)"
	case status == 400 && re.ErrorCode == "BadParameter":
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

// aadstsRE finds an Entra error description ("AADSTS<code>: <text>", the
// token endpoint's format) inside a message that quotes the answer.
var aadstsRE = regexp.MustCompile(`AADSTS\d+: [^"\\\r\n]*`)

// describeAuthFailed describes an azidentity authentication failure: who
// is the credential ("DefaultAzureCredential", for Key Vault), purpose what
// its token was for. The reason and the AADSTS code come from the token
// endpoint's JSON answer (error_description, error_codes) or, when the
// body was consumed, from the Entra description azidentity's message
// quotes; azidentity's own wording is never matched.
func describeAuthFailed(who, purpose string, afe *azidentity.AuthenticationFailedError) (string, string) {
	msg := who + " could not get a token" + purpose
	reason, code := "", 0
	if afe.RawResponse != nil {
		body, _ := runtime.Payload(afe.RawResponse)
		var se serviceError
		if json.Unmarshal(body, &se) == nil {
			reason = firstLine(se.OAuthError)
			if len(se.ErrorCodes) > 0 {
				code = se.ErrorCodes[0]
			} else {
				code = aadstsCode(reason)
			}
		}
	}
	if reason == "" {
		if m := aadstsRE.FindString(afe.Error()); m != "" {
			reason = strings.TrimSpace(m)
			code = aadstsCode(reason)
		}
	}
	switch {
	case reason != "":
		msg += ": " + firstSentence(reason)
	case afe.RawResponse != nil:
		msg += fmt.Sprintf(" (HTTP %d)", afe.RawResponse.StatusCode)
	default:
		msg += ": " + firstLine(afe.Error())
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

// aadstsCode reads the code of an Entra error_description, which starts
// "AADSTS<code>: " (the protocol's format), or 0.
func aadstsCode(desc string) int {
	rest, ok := strings.CutPrefix(desc, "AADSTS")
	if !ok {
		return 0
	}
	end := strings.IndexFunc(rest, func(r rune) bool { return r < '0' || r > '9' })
	if end <= 0 {
		return 0
	}
	n, _ := strconv.Atoi(rest[:end])
	return n
}

func firstSentence(s string) string {
	if i := strings.Index(s, ". "); i > 0 {
		return s[:i+1]
	}
	return s
}
