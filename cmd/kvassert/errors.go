package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"regexp"
	"strings"
	"sync"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/runtime"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"

	"github.com/kvassert/kvassert"
)

// Exit codes.
const (
	exitOK          = 0
	exitFailure     = 1 // the command failed, or decode/audit found problems
	exitUsage       = 2 // bad, missing or conflicting flags and arguments
	exitInterrupted = 130
)

// exitError is an error with the one-line message, hint and exit code to
// report. When err is set, its description follows msg after ": ".
type exitError struct {
	code      int
	msg, hint string
	err       error
}

// Error is the message and its cause (the report uses describe instead).
func (e *exitError) Error() string {
	switch {
	case e.err == nil:
		return e.msg
	case e.msg == "":
		return e.err.Error()
	}
	return e.msg + ": " + e.err.Error()
}

// Unwrap returns the cause.
func (e *exitError) Unwrap() error { return e.err }

// usageError is a problem with the command line (exit code 2).
func usageError(msg, hint string) error { return &exitError{code: exitUsage, msg: msg, hint: hint} }

// failure wraps err with what was being done (exit code 1).
func failure(doing string, err error) error {
	return &exitError{code: exitFailure, msg: doing, err: err}
}

// report prints err as "error: ..." (one line) and an optional "hint: ..."
// line on stderr and returns the exit code.
func (a *App) report(ctx context.Context, err error) int {
	if errors.Is(err, errNoResult) {
		return exitFailure
	}
	msg, hint, code := describe(err)
	if ctx.Err() != nil && (errors.Is(err, context.Canceled) || errors.Is(err, ctx.Err())) {
		msg, hint, code = "interrupted", "", exitInterrupted
	}
	fmt.Fprintln(a.Stderr, "error: "+oneLine(msg))
	if hint != "" {
		fmt.Fprintln(a.Stderr, "hint: "+oneLine(hint))
	}
	return code
}

// describe turns an error into one line, a hint and an exit code. It knows
// the errors of Entra ID (kvassert.AuthError), of Azure services
// (azcore.ResponseError), of azidentity and of the network, and keeps what
// the wrapping errors say about what was being done.
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

// core describes an error that is not an exitError.
func core(err error) (msg, hint string) {
	text := err.Error()
	var ae *kvassert.AuthError
	if errors.As(err, &ae) {
		return joinPrefix(text, ae.Error(), firstLine(clean(ae.Error()))), ae.Hint
	}
	var re *azcore.ResponseError
	if errors.As(err, &re) {
		inner, h := describeResponse(re)
		return joinPrefix(text, re.Error(), inner), h
	}
	var afe *azidentity.AuthenticationFailedError
	if errors.As(err, &afe) {
		inner, h := describeAuthFailed(afe)
		return joinPrefix(text, afe.Error(), inner), h
	}
	if strings.Contains(text, "DefaultAzureCredential: failed to acquire a token") {
		i := strings.Index(text, "DefaultAzureCredential")
		prefix := strings.TrimSuffix(strings.TrimSpace(clean(text[:i])), ":")
		m := "no Azure credential to reach Key Vault: DefaultAzureCredential found none (environment, workload identity, managed identity, Azure CLI)"
		if prefix != "" {
			m = prefix + ": " + m
		}
		return m, "set AZURE_TENANT_ID, AZURE_CLIENT_ID and AZURE_CLIENT_SECRET, sign in with 'az login', or run where a managed identity is available"
	}
	var dns *net.DNSError
	if errors.As(err, &dns) {
		return firstLine(clean(text)), "check the host name (for a vault: https://NAME.vault.azure.net/)"
	}
	var ue *url.Error
	if errors.As(err, &ue) && strings.Contains(text, "certificate") {
		return firstLine(clean(text)), "the server's TLS certificate is not trusted; with the emulator, set " + envCAFile + " to the CA file it wrote"
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return firstLine(clean(text)), "the service did not answer in time; check the network and retry"
	}
	return firstLine(clean(text)), ""
}

// joinPrefix keeps what the wrappers of inner said (the text before inner's
// own message) and appends the short description of inner.
func joinPrefix(text, innerText, short string) string {
	i := strings.Index(text, innerText)
	if i <= 0 {
		return short
	}
	prefix := strings.TrimSpace(clean(text[:i]))
	prefix = strings.TrimSuffix(prefix, ":")
	if prefix == "" {
		return short
	}
	return prefix + ": " + short
}

// packagePrefixes are removed from messages: the CLI speaks for the library.
var packagePrefixes = []string{"kvassert: ", "keyvault: ", "assertion: ", "kvasserttest: ", "scenario: "}

func clean(s string) string {
	for _, p := range packagePrefixes {
		s = strings.TrimPrefix(s, p)
		s = strings.ReplaceAll(s, ": "+p, ": ")
	}
	return s
}

func firstLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexAny(s, "\r\n"); i >= 0 {
		s = strings.TrimSpace(s[:i])
	}
	return s
}

// oneLine makes sure a message is one line.
func oneLine(s string) string {
	s = strings.NewReplacer("\r\n", " ", "\n", " ", "\r", " ", "\t", " ").Replace(s)
	return strings.TrimSpace(s)
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
		case isVaultHost(host):
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
		if vault == "" || !isVaultHost(host) {
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

var (
	credFailedRE = regexp.MustCompile(`(\w+Credential) authentication failed`)
	aadstsRE     = regexp.MustCompile(`AADSTS(\d+): [^"\\\r\n]*`)
)

// describeAuthFailed describes an azidentity authentication failure (the
// credential used to reach Key Vault).
func describeAuthFailed(afe *azidentity.AuthenticationFailedError) (string, string) {
	text := afe.Error()
	cred := "the Azure credential"
	if m := credFailedRE.FindStringSubmatch(text); m != nil {
		cred = m[1]
	} else if name, _, ok := strings.Cut(text, ":"); ok && strings.HasSuffix(name, "Credential") && !strings.Contains(name, " ") {
		cred = name
	}
	msg := cred + " could not get a token to reach Key Vault"
	reason, code := "", ""
	if afe.RawResponse != nil {
		body, _ := runtime.Payload(afe.RawResponse)
		var se serviceError
		if json.Unmarshal(body, &se) == nil && se.OAuthError != "" {
			reason = firstLine(se.OAuthError)
		}
	}
	if m := aadstsRE.FindStringSubmatch(text); m != nil {
		if reason == "" {
			reason = strings.TrimSpace(m[0])
		}
		code = m[1]
	}
	switch {
	case reason != "":
		msg += ": " + firstSentence(reason)
	case afe.RawResponse != nil:
		msg += fmt.Sprintf(" (HTTP %d)", afe.RawResponse.StatusCode)
	default:
		msg += ": " + firstLine(clean(text))
	}
	hint := "check AZURE_TENANT_ID, AZURE_CLIENT_ID and AZURE_CLIENT_SECRET (or the managed identity) of the identity that reaches Key Vault"
	switch code {
	case "7000215", "7000222":
		hint = "AZURE_CLIENT_SECRET is wrong or expired: create a new client secret for AZURE_CLIENT_ID"
	case "700016":
		hint = "AZURE_CLIENT_ID is not an app registered in AZURE_TENANT_ID"
	case "90002":
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

func isVaultHost(host string) bool {
	h := strings.ToLower(host)
	if i := strings.LastIndexByte(h, ':'); i >= 0 && !strings.Contains(h[i:], "]") {
		h = h[:i]
	}
	for _, s := range []string{".vault.azure.net", ".vault.azure.cn", ".vault.usgovcloudapi.net", ".managedhsm.azure.net", ".managedhsm.azure.cn", ".managedhsm.usgovcloudapi.net"} {
		if strings.HasSuffix(h, s) {
			return true
		}
	}
	return false
}

// jwtRE matches a compact JWS (a token or an assertion).
var jwtRE = regexp.MustCompile(`eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}`)

// redactor is the stderr writer: it replaces JWTs and registered secret
// values with "[redacted]". Writes are expected to be whole lines (they are,
// from fmt.Fprintln and slog).
type redactor struct {
	w       io.Writer
	mu      sync.Mutex
	secrets []string
}

func newRedactor(w io.Writer) *redactor { return &redactor{w: w} }

// addSecret registers a value that must never appear on stderr. Short
// values are ignored (they would redact ordinary words).
func (r *redactor) addSecret(s string) {
	if len(s) < 8 {
		return
	}
	r.mu.Lock()
	r.secrets = append(r.secrets, s)
	r.mu.Unlock()
}

// Write writes p with JWTs and registered secrets replaced.
func (r *redactor) Write(p []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := jwtRE.ReplaceAll(p, []byte("[redacted token]"))
	for _, s := range r.secrets {
		out = bytes.ReplaceAll(out, []byte(s), []byte("[redacted]"))
	}
	if _, err := r.w.Write(out); err != nil {
		return 0, err
	}
	return len(p), nil
}
