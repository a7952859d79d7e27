// Package graphapi calls the three Microsoft Graph operations key rolling
// needs (addKey, removeKey, reading keyCredentials) and builds their proof of
// possession. It is internal: package rotation and the CLI use it.
package graphapi

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/cloud"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/runtime"

	"github.com/kvassert/kvassert"
	"github.com/kvassert/kvassert/internal/entraid"
	"github.com/kvassert/kvassert/internal/textutil"
)

// KeyCredential is a certificate registered on an application, as Microsoft
// Graph returns it (the key bytes are not read back).
type KeyCredential struct {
	// KeyID is Graph's identifier of the key credential (a GUID).
	KeyID string `json:"keyId"`
	// Type is "AsymmetricX509Cert" for certificates.
	Type string `json:"type"`
	// Usage is "Verify" for certificates used to sign client assertions.
	Usage string `json:"usage"`
	// CustomKeyIdentifier is the certificate's SHA-1 thumbprint (base64 in
	// Graph's JSON).
	CustomKeyIdentifier string `json:"customKeyIdentifier,omitempty"`
	// DisplayName is the certificate's subject, as Graph sets it.
	DisplayName string `json:"displayName,omitempty"`
	// StartDateTime and EndDateTime are the certificate's validity.
	StartDateTime time.Time `json:"startDateTime"`
	EndDateTime   time.Time `json:"endDateTime"`
}

// Error is an error answer of Microsoft Graph.
type Error struct {
	// StatusCode is the HTTP status.
	StatusCode int
	// Code is Graph's error code, e.g. Authorization_RequestDenied.
	Code string
	// Message is Graph's message, at most 300 bytes on one line: server
	// text, for matching (a duplicate key, a missing key); kvassert never
	// prints it, and Error leaves it out.
	Message string
	// Operation is what was asked: "addKey", "removeKey", "read keys" or
	// "read lock".
	Operation string
}

// The message names the operation, the status and Graph's error code, never
// Graph's Message: no text of a server's answer reaches an error.
func (e *Error) Error() string {
	s := fmt.Sprintf("rotation: Microsoft Graph %s failed (HTTP %d)", e.Operation, e.StatusCode)
	if e.Code != "" {
		s += ": " + e.Code
	}
	if h := e.Hint(); h != "" {
		s += "\nhint: " + h
	}
	return s
}

// Hint says what to do about the error, or "".
func (e *Error) Hint() string {
	switch {
	case e.Code == "Authentication_MissingOrMalformed":
		return "Graph refused the proof of possession: it must be signed by a currently valid certificate registered on the app, with iss = the app's object ID"
	case e.StatusCode == http.StatusForbidden && e.Operation == "read keys":
		return "reading the app's keyCredentials needs Application.Read.All or app ownership; addKey and removeKey do not (kvassert remembers the keyId it added in the vault's certificate tags)"
	case e.StatusCode == http.StatusForbidden && e.Operation == "read lock":
		return "reading the app's servicePrincipalLockConfiguration needs Application.Read.All or app ownership (or check it in the portal: App registrations > the app > Authentication > App instance property lock)"
	case e.StatusCode == http.StatusForbidden:
		return "check that the application object ID is this app's own (an app can roll only its own keys)"
	case e.StatusCode == http.StatusNotFound:
		return "no application with this object ID: use the app registration's Object ID, not its client (application) ID"
	case e.StatusCode == http.StatusTooManyRequests || e.StatusCode >= 500:
		return "Graph is throttling or unavailable; the roll is safe to re-run later"
	}
	return ""
}

// Temporary reports whether re-running later may succeed.
func (e *Error) Temporary() bool {
	return e.StatusCode == http.StatusTooManyRequests || e.StatusCode >= 500
}

// Client calls the three Microsoft Graph operations key rolling needs.
// Safe for concurrent use.
type Client struct {
	pl       runtime.Pipeline
	endpoint string // https://graph.microsoft.com/v1.0/
}

// New returns a client that authenticates with cred, which must
// give the app's own app-only token in its home tenant for
// https://{graph host}/.default (a kvassert.Credential does: an application
// needs no permission to roll its own keys).
//
// opts are the Graph pipeline's: Cloud selects the Graph host
// (graph.microsoft.com, graph.microsoft.us, microsoftgraph.chinacloudapi.cn),
// Transport, Retry (429 and 5xx are retried), Logging (bodies, which hold
// proofs, are never logged).
func New(cred azcore.TokenCredential, opts *policy.ClientOptions) (*Client, error) {
	if cred == nil {
		return nil, errors.New("rotation: nil credential")
	}
	var o policy.ClientOptions
	if opts != nil {
		o = *opts
	}
	host, err := Host(o.Cloud)
	if err != nil {
		return nil, err
	}
	o.Logging.IncludeBody = false
	scope := "https://" + host + "/.default"
	pl := runtime.NewPipeline("kvassert-rotation", kvassert.Version, runtime.PipelineOptions{
		PerRetry: []policy.Policy{runtime.NewBearerTokenPolicy(cred, []string{scope}, nil)},
	}, &o)
	return &Client{pl: pl, endpoint: "https://" + host + "/v1.0/"}, nil
}

// Host returns the Microsoft Graph host of the cloud whose authority
// host c names (the public cloud when empty).
func Host(c cloud.Configuration) (string, error) {
	h := strings.TrimSuffix(strings.TrimPrefix(strings.ToLower(c.ActiveDirectoryAuthorityHost), "https://"), "/")
	switch h {
	case "", "login.microsoftonline.com":
		return "graph.microsoft.com", nil
	case "login.microsoftonline.us":
		return "graph.microsoft.us", nil
	case "login.chinacloudapi.cn":
		return "microsoftgraph.chinacloudapi.cn", nil
	}
	return "", fmt.Errorf("rotation: no Microsoft Graph host is known for the authority host %q", textutil.FirstLine(h, 80))
}

// AddKey registers the certificate (DER) on the application appObjectID,
// authorised by proof (see Proof), and returns the new key credential.
func (g *Client) AddKey(ctx context.Context, appObjectID string, certDER []byte, proof string) (KeyCredential, error) {
	body := map[string]any{
		"keyCredential": map[string]string{
			"type":  "AsymmetricX509Cert",
			"usage": "Verify",
			"key":   base64.StdEncoding.EncodeToString(certDER),
		},
		"passwordCredential": nil,
		"proof":              proof,
	}
	var kc KeyCredential
	if err := g.do(ctx, "addKey", http.MethodPost, appObjectID, "/addKey", body, &kc); err != nil {
		return KeyCredential{}, err
	}
	if kc.KeyID == "" {
		return KeyCredential{}, errors.New("rotation: Microsoft Graph addKey answered without a keyId")
	}
	return kc, nil
}

// RemoveKey removes the key credential keyID from the application,
// authorised by proof, which must be signed by another valid registered
// certificate.
func (g *Client) RemoveKey(ctx context.Context, appObjectID, keyID, proof string) error {
	if !entraid.ValidClientID(keyID) {
		return fmt.Errorf("rotation: key ID (%d bytes) is not a GUID", len(keyID))
	}
	return g.do(ctx, "removeKey", http.MethodPost, appObjectID, "/removeKey", map[string]string{"keyId": keyID, "proof": proof}, nil)
}

// KeyCredentials reads the application's registered certificates. It needs
// Application.Read.All or ownership of the app, which rolling does not; a
// 403 is a *Error with StatusCode 403.
func (g *Client) KeyCredentials(ctx context.Context, appObjectID string) ([]KeyCredential, error) {
	var out struct {
		KeyCredentials []KeyCredential `json:"keyCredentials"`
	}
	if err := g.do(ctx, "read keys", http.MethodGet, appObjectID, "?$select=keyCredentials", nil, &out); err != nil {
		return nil, err
	}
	return out.KeyCredentials, nil
}

func (g *Client) do(ctx context.Context, op, method, appObjectID, suffix string, in, out any) error {
	if !entraid.ValidClientID(appObjectID) {
		return fmt.Errorf("rotation: the application object ID (%d bytes) is not a GUID", len(appObjectID))
	}
	req, err := runtime.NewRequest(ctx, method, g.endpoint+"applications/"+url.PathEscape(strings.ToLower(appObjectID))+suffix)
	if err != nil {
		return err
	}
	req.Raw().Header.Set("Accept", "application/json")
	if in != nil {
		if err := runtime.MarshalAsJSON(req, in); err != nil {
			return err
		}
	}
	resp, err := g.pl.Do(req)
	if err != nil {
		return fmt.Errorf("rotation: Microsoft Graph %s: %w", op, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return fmt.Errorf("rotation: Microsoft Graph %s: reading the answer: %w", op, err)
	}
	if resp.StatusCode/100 != 2 {
		return graphErrorFrom(resp.StatusCode, op, b)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			return fmt.Errorf("rotation: Microsoft Graph %s: the answer is not the expected JSON: %w", op, err)
		}
	}
	return nil
}

// graphCodePattern is what an error code of Graph looks like; anything
// else is not repeated.
var graphCodePattern = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_.]{0,63}$`)

// graphErrorFrom is the Error of an error answer with body b.
func graphErrorFrom(status int, op string, b []byte) *Error {
	ge := &Error{StatusCode: status, Operation: op}
	var e struct {
		Error struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	if json.Unmarshal(b, &e) == nil {
		if graphCodePattern.MatchString(e.Error.Code) {
			ge.Code = e.Error.Code
		}
		ge.Message = textutil.FirstLine(e.Error.Message, 300)
	}
	return ge
}
