package proxy

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"net/url"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"

	"github.com/kvassert/kvassert"
	"github.com/kvassert/kvassert/internal/certcache"
	"github.com/kvassert/kvassert/internal/entraid"
	"github.com/kvassert/kvassert/internal/jwtassert"
	"github.com/kvassert/kvassert/internal/kvid"
	"github.com/kvassert/kvassert/internal/rootaccess"
	"github.com/kvassert/kvassert/internal/textutil"
	"github.com/kvassert/kvassert/tenants"
)

// maxBody caps request bodies of the token API and the Cloud Shell routes.
const maxBody = 64 << 10

// requestTimeout bounds one token or certificate request.
const requestTimeout = 2 * time.Minute

// tokenFields are the fields every token request has.
type tokenFields struct {
	ClientID string   `json:"clientId"`
	TenantID string   `json:"tenantId"`
	Scopes   []string `json:"scopes"`
}

type kvCertificateRequest struct {
	tokenFields
	KeyVaultURI     string `json:"keyVaultUri"`
	CertificateName string `json:"certificateName"`
}

type kvKeyRequest struct {
	tokenFields
	KeyURI        string `json:"keyUri"`
	KeyThumbprint string `json:"keyThumbprint"`
}

type kvKeyInfoRequest struct {
	KeyVaultURI     string `json:"keyVaultUri"`
	CertificateName string `json:"certificateName"`
	SkipCache       bool   `json:"skipCache"`
}

type localCertificateRequest struct {
	tokenFields
	CertFile string `json:"certFile"`
	KeyFile  string `json:"keyFile"`
}

// tokenResponse is the answer of the token routes.
type tokenResponse struct {
	AccessToken string   `json:"access_token"`
	TokenType   string   `json:"token_type"`
	ExpiresIn   int64    `json:"expires_in"`
	ExpiresOn   int64    `json:"expires_on"`
	Scopes      []string `json:"scopes"`
	TenantID    string   `json:"tenant_id"`
}

// keyInfoResponse is the answer of kv-key-info. keyId and kid are what
// kv-key takes as keyUri and keyThumbprint (kid is the base64url SHA-1
// thumbprint, as the .NET proxy names it).
type keyInfoResponse struct {
	KeyID            string    `json:"keyId"`
	Kid              string    `json:"kid"`
	CertificateID    string    `json:"certificateId,omitempty"`
	Version          string    `json:"version"`
	X5T              string    `json:"x5t"`
	X5TS256          string    `json:"x5tS256"`
	Thumbprint       string    `json:"thumbprint"`
	ThumbprintSHA256 string    `json:"thumbprintSha256"`
	Subject          string    `json:"subject"`
	NotBefore        time.Time `json:"notBefore"`
	ExpiresOn        time.Time `json:"expiresOn"`
	Exportable       *bool     `json:"exportable,omitempty"`
	ReadAt           time.Time `json:"readAt"`
}

func (s *Server) apiKVCertificate(w http.ResponseWriter, r *http.Request) {
	var req kvCertificateRequest
	var vaultURL string
	if !decodeRequest(w, r, &req, func(errs *fieldErrors) {
		req.validate(errs)
		vaultURL = checkVaultURL("keyVaultUri", req.KeyVaultURI, errs)
		checkCertificateName("certificateName", req.CertificateName, errs)
	}) {
		return
	}
	s.serveToken(w, r, req.tokenFields, kvCertKey(vaultURL, req.CertificateName), func(ctx context.Context) (kvassert.Source, *problem) {
		src, err := s.creds.certSource(ctx, vaultURL, req.CertificateName)
		if err != nil {
			return nil, upstreamProblem(err)
		}
		return src, nil
	})
}

func (s *Server) apiKVKey(w http.ResponseWriter, r *http.Request) {
	var req kvKeyRequest
	var keyID string
	var thumb []byte
	if !decodeRequest(w, r, &req, func(errs *fieldErrors) {
		req.validate(errs)
		if req.KeyURI == "" {
			errs.add("keyUri", "required: the key identifier, https://{vault}.vault.azure.net/keys/{name}/{version} (kv-key-info returns it as keyId)")
		} else if id, err := kvid.ParseKeyID(req.KeyURI); err != nil {
			errs.addErr("keyUri", err)
		} else if id.Vault.Loopback {
			errs.add("keyUri", errLoopbackVault)
		} else {
			keyID = id.String()
		}
		if req.KeyThumbprint == "" {
			errs.add("keyThumbprint", "required: the certificate's thumbprint, hex as the portal shows it or base64url (kv-key-info returns it as kid)")
		} else if b, err := jwtassert.ParseThumbprint(req.KeyThumbprint); err != nil {
			errs.addErr("keyThumbprint", err)
		} else {
			thumb = b
		}
	}) {
		return
	}
	thumbKey := hex.EncodeToString(thumb)
	s.serveToken(w, r, req.tokenFields, "kv-key|"+keyID+"|"+thumbKey, func(ctx context.Context) (kvassert.Source, *problem) {
		src, err := s.creds.keySource(ctx, keyID, req.KeyThumbprint, thumbKey)
		if err != nil {
			return nil, upstreamProblem(err)
		}
		return src, nil
	})
}

func (s *Server) apiKVKeyInfo(w http.ResponseWriter, r *http.Request) {
	var req kvKeyInfoRequest
	var vaultURL string
	if !decodeRequest(w, r, &req, func(errs *fieldErrors) {
		vaultURL = checkVaultURL("keyVaultUri", req.KeyVaultURI, errs)
		checkCertificateName("certificateName", req.CertificateName, errs)
	}) {
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), requestTimeout)
	defer cancel()
	src, err := s.creds.certSource(ctx, vaultURL, req.CertificateName)
	if err != nil {
		writeProblem(w, upstreamProblem(err))
		return
	}
	certs := rootaccess.Cache(src)
	if req.SkipCache {
		certs.Invalidate()
	}
	c, err := certs.Certificate(ctx)
	if err != nil {
		writeProblem(w, upstreamProblem(err))
		return
	}
	writeJSON(w, http.StatusOK, newKeyInfo(c))
}

func newKeyInfo(c *certcache.Certificate) keyInfoResponse {
	sha1Sum, sha256Sum := thumbprints(c.Certificate.Raw)
	return keyInfoResponse{
		KeyID: c.KeyID, Kid: c.X5T, CertificateID: c.ID, Version: c.Version,
		X5T: c.X5T, X5TS256: c.X5TS256,
		Thumbprint: strings.ToUpper(hex.EncodeToString(sha1Sum)), ThumbprintSHA256: strings.ToUpper(hex.EncodeToString(sha256Sum)),
		Subject: c.Certificate.Subject.String(), NotBefore: c.Certificate.NotBefore.UTC(), ExpiresOn: c.Certificate.NotAfter.UTC(),
		Exportable: c.Exportable, ReadAt: c.ReadAt.UTC(),
	}
}

func (s *Server) apiLocalCertificate(w http.ResponseWriter, r *http.Request) {
	var req localCertificateRequest
	var lf *localFile
	if !decodeRequest(w, r, &req, func(errs *fieldErrors) {
		req.validate(errs)
		if req.CertFile == "" {
			errs.add("certFile", "required: the name of a certificate configured at start, or a file under the file root")
		} else {
			lf = s.files.resolve(req.CertFile, req.KeyFile, errs)
		}
	}) {
		return
	}
	s.serveToken(w, r, req.tokenFields, "file|"+lf.key, func(ctx context.Context) (kvassert.Source, *problem) {
		src, err := s.creds.fileSource(ctx, lf)
		if err != nil {
			return nil, validationProblem([]fieldError{{Field: "certFile", Message: err.Error()}})
		}
		return src, nil
	})
}

// decodeRequest reads the JSON body into req and runs check, which adds the
// field errors; on a problem it writes it and returns false.
func decodeRequest[T any](w http.ResponseWriter, r *http.Request, req *T, check func(*fieldErrors)) bool {
	if p := decodeJSON(w, r, req); p != nil {
		writeProblem(w, p)
		return false
	}
	var errs fieldErrors
	check(&errs)
	if len(errs) > 0 {
		writeProblem(w, validationProblem(errs))
		return false
	}
	return true
}

// serveToken is the end of every token route: note the request for the log
// line, get the source within the request timeout, get the token (cached per
// source, tenant and scope) and write it.
func (s *Server) serveToken(w http.ResponseWriter, r *http.Request, f tokenFields, srcKey string, source func(context.Context) (kvassert.Source, *problem)) {
	f.note(r)
	ctx, cancel := context.WithTimeout(r.Context(), requestTimeout)
	defer cancel()
	src, p := source(ctx)
	if p != nil {
		writeProblem(w, p)
		return
	}
	tok, err := s.creds.token(ctx, f.TenantID, f.ClientID, f.Scopes[0], srcKey, src)
	s.writeToken(w, f, tok, err)
}

func (s *Server) writeToken(w http.ResponseWriter, f tokenFields, tok azcore.AccessToken, err error) {
	if err != nil {
		p := upstreamProblem(err)
		if p.Type == problemEntra && consentCodes[p.Code] {
			p.ConsentURL = s.consentURL(f.TenantID, f.ClientID)
		}
		writeProblem(w, p)
		return
	}
	in := int64(time.Until(tok.ExpiresOn).Seconds())
	writeJSON(w, http.StatusOK, tokenResponse{
		AccessToken: tok.Token, TokenType: "Bearer", ExpiresIn: max(in, 0), ExpiresOn: tok.ExpiresOn.Unix(),
		Scopes: f.Scopes, TenantID: tenantOf(tok.Token, f.TenantID),
	})
}

// tenantOf is the tenant ID to answer for a token requested for the tenant
// given (a GUID or a domain): the token's tid claim, the tenant's GUID as
// kvassert token answers it. Only the payload is decoded: the token is
// Entra's own answer, just received over TLS. Without a usable tid, the
// tenant given, lowercased.
func tenantOf(token, given string) string {
	_, rest, ok := strings.Cut(token, ".")
	payload, _, ok2 := strings.Cut(rest, ".")
	if ok && ok2 && len(payload) <= maxBody {
		var c struct {
			Tid string `json:"tid"`
		}
		if data, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(payload, "=")); err == nil && json.Unmarshal(data, &c) == nil && entraid.ValidClientID(c.Tid) { // a GUID
			return strings.ToLower(c.Tid)
		}
	}
	return strings.ToLower(given)
}

// validate checks the fields every token request has.
func (f *tokenFields) validate(errs *fieldErrors) {
	checkClientID("clientId", f.ClientID, errs)
	checkTenant("tenantId", f.TenantID, errs)
	switch {
	case f.Scopes == nil:
		errs.add("scopes", "required: an array with one scope ending in /.default, e.g. [\"https://graph.microsoft.com/.default\"]")
	case len(f.Scopes) != 1:
		errs.add("scopes", "app-only tokens take exactly one scope, ending in /.default")
	default:
		checkScope("scopes[0]", f.Scopes[0], errs)
	}
}

// note records tenant and client ID for the request log line.
func (f *tokenFields) note(r *http.Request) {
	ri := info(r.Context())
	ri.tenant, ri.clientID = strings.ToLower(f.TenantID), strings.ToLower(f.ClientID)
}

// decodeJSON reads a JSON object body into dst (a pointer to a request
// struct): application/json only, at most maxBody bytes, member names
// exactly as documented (no unknown, differently cased or repeated
// members), nothing after the object.
func decodeJSON(w http.ResponseWriter, r *http.Request, dst any) *problem {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "application/json" {
		return &problem{Type: problemMediaType, Title: "Unsupported media type", Status: http.StatusUnsupportedMediaType,
			Detail: "Send the request body as Content-Type: application/json."}
	}
	data, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return &problem{Type: problemTooLarge, Title: "Request body too large", Status: http.StatusRequestEntityTooLarge,
				Detail: "Request bodies are limited to " + strconv.Itoa(maxBody) + " bytes."}
		}
		return validationProblem([]fieldError{{Field: "body", Message: "could not be read"}})
	}
	allowed := jsonFields(reflect.TypeOf(dst).Elem())
	var errs fieldErrors
	dec := json.NewDecoder(bytes.NewReader(data))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return validationProblem([]fieldError{{Field: "body", Message: "must be a JSON object"}})
	}
	seen := map[string]bool{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return validationProblem([]fieldError{{Field: "body", Message: "not valid JSON: " + err.Error()}})
		}
		name, _ := tok.(string)
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return validationProblem([]fieldError{{Field: "body", Message: "not valid JSON: " + err.Error()}})
		}
		switch {
		case !allowed[name]:
			errs.add(textutil.Truncate(name, 64), "unknown field")
		case seen[name]:
			errs.add(name, "given more than once")
		}
		seen[name] = true
	}
	if _, err := dec.Token(); err != nil {
		return validationProblem([]fieldError{{Field: "body", Message: "not valid JSON: " + err.Error()}})
	}
	if _, err := dec.Token(); err != io.EOF {
		return validationProblem([]fieldError{{Field: "body", Message: "unexpected data after the JSON object"}})
	}
	if len(errs) > 0 {
		return validationProblem(errs)
	}
	if err := json.Unmarshal(data, dst); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) && te.Field != "" {
			// Field is a Go-side path ("tokenFields.scopes"); members are flat.
			field := te.Field[strings.LastIndexByte(te.Field, '.')+1:]
			return validationProblem([]fieldError{{Field: field, Message: "must be " + jsonKind(te.Type)}})
		}
		return validationProblem([]fieldError{{Field: "body", Message: "not valid JSON: " + err.Error()}})
	}
	return nil
}

// jsonFields lists the JSON member names of a struct, embedded structs
// included.
func jsonFields(t reflect.Type) map[string]bool {
	out := map[string]bool{}
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if f.Anonymous && f.Type.Kind() == reflect.Struct {
			for k := range jsonFields(f.Type) {
				out[k] = true
			}
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name != "" && name != "-" {
			out[name] = true
		}
	}
	return out
}

func jsonKind(t reflect.Type) string {
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "true or false"
	case reflect.Slice:
		return "an array of strings"
	}
	return "of type " + t.String()
}

// consentCodes are the AADSTS codes an administrator's consent fixes: the
// app has no service principal in the tenant.
var consentCodes = map[int]bool{700016: true, 7000229: true}

// consentURL is the admin-consent link for client in tenant (both checked
// by the request's validation) on the login host of the configured cloud.
// For the configured app with Options.TenantRedirectURI it is the v2 link
// the Tenants view and tenants.Check give (the redirect URI lands the
// administrator on the SaaS's handler); otherwise the v1 link, which needs
// no redirect URI (Entra sends the administrator to the app's default one).
func (s *Server) consentURL(tenant, client string) string {
	cl := s.cfg.ClientOptions.Cloud
	if s.cfg.TenantRedirectURI != "" && strings.EqualFold(client, s.page.ClientID) {
		if u, err := tenants.ConsentURL(client, s.cfg.TenantRedirectURI, "", &tenants.ConsentURLOptions{Tenant: tenant, Cloud: cl}); err == nil {
			return u
		}
	}
	host := cl.ActiveDirectoryAuthorityHost
	u, err := url.Parse(host)
	if host == "" || err != nil || u.Scheme != "https" || u.Host == "" {
		host = "https://login.microsoftonline.com/"
	}
	return strings.TrimSuffix(host, "/") + "/" + url.PathEscape(strings.ToLower(tenant)) + "/adminconsent?client_id=" + url.QueryEscape(strings.ToLower(client))
}
