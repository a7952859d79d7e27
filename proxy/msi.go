package proxy

import (
	"context"
	"errors"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
)

// protocol is a managed identity endpoint protocol.
type protocol int

const (
	// appService: IDENTITY_ENDPOINT + IDENTITY_HEADER; GET
	// ?api-version=2019-08-01&resource=R with X-IDENTITY-HEADER.
	appService protocol = iota
	// cloudShell: MSI_ENDPOINT; POST form resource=R with Metadata: true.
	cloudShell
)

// appServiceAPIVersion is the only App Service protocol version served.
const appServiceAPIVersion = "2019-08-01"

// targetKind is what a managed identity route hands out tokens for.
type targetKind int

const (
	targetKV      targetKind = iota // an app with a Key Vault certificate
	targetFile                      // an app with a certificate configured at start
	targetForward                   // the developer's own identity (ForwardCredential)
)

// msiResponse is the managed identity endpoints' answer. Times are strings
// of epoch seconds, as the real endpoints send them.
type msiResponse struct {
	AccessToken string `json:"access_token"`
	ExpiresOn   string `json:"expires_on"`
	ExpiresIn   string `json:"expires_in,omitempty"`
	Resource    string `json:"resource"`
	TokenType   string `json:"token_type"`
	ClientID    string `json:"client_id,omitempty"`
}

// msiHandler serves one managed identity route. The identity selector an
// SDK may send (client_id, object_id, mi_res_id) is ignored: the path names
// the identity.
func (s *Server) msiHandler(p protocol, kind targetKind) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var errs fieldErrors
		resource, prob := msiResource(p, w, r, &errs)
		if prob != nil {
			writeProblem(w, prob)
			return
		}
		scope := resourceScope(resource, &errs)
		t := s.msiTarget(kind, r, &errs)
		if len(errs) > 0 {
			writeProblem(w, validationProblem(errs))
			return
		}
		ri := info(r.Context())
		ri.tenant, ri.clientID = strings.ToLower(t.tenant), strings.ToLower(t.clientID)

		ctx, cancel := context.WithTimeout(r.Context(), requestTimeout)
		defer cancel()
		tok, err := s.msiToken(ctx, t, scope)
		if err != nil {
			writeProblem(w, upstreamProblem(err))
			return
		}
		resp := msiResponse{
			AccessToken: tok.Token, ExpiresOn: strconv.FormatInt(tok.ExpiresOn.Unix(), 10),
			Resource: resource, TokenType: "Bearer", ClientID: strings.ToLower(t.clientID),
		}
		if p == cloudShell {
			resp.ExpiresIn = strconv.FormatInt(max(int64(time.Until(tok.ExpiresOn).Seconds()), 0), 10)
		}
		writeJSON(w, http.StatusOK, resp)
	}
}

// msiResource reads the resource of a managed identity request in protocol
// p, adding field errors; a request it cannot read at all gets a problem.
func msiResource(p protocol, w http.ResponseWriter, r *http.Request, errs *fieldErrors) (string, *problem) {
	if p == appService {
		q := r.URL.Query()
		if v := q.Get("api-version"); v != appServiceAPIVersion {
			errs.add("api-version", "must be "+appServiceAPIVersion+" (the App Service managed identity protocol)")
		}
		return q.Get("resource"), nil
	}
	// Cloud Shell.
	if !strings.EqualFold(r.Header.Get("Metadata"), "true") {
		errs.add("Metadata", "the header Metadata: true is required")
	}
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/x-www-form-urlencoded" {
		return "", &problem{Type: problemMediaType, Title: "Unsupported media type", Status: http.StatusUnsupportedMediaType,
			Detail: "Send resource=... as Content-Type: application/x-www-form-urlencoded."}
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxBody)
	if err := r.ParseForm(); err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return "", &problem{Type: problemTooLarge, Title: "Request body too large", Status: http.StatusRequestEntityTooLarge,
				Detail: "Request bodies are limited to " + strconv.Itoa(maxBody) + " bytes."}
		}
		errs.add("body", "not a valid form")
	}
	return r.PostForm.Get("resource"), nil
}

// msiTarget is the identity a managed identity route names in its path.
type msiTarget struct {
	kind               targetKind
	tenant, clientID   string
	vaultURL, certName string     // targetKV
	file               *namedFile // targetFile
}

// msiTarget reads and checks the identity in the path of r, adding field
// errors.
func (s *Server) msiTarget(kind targetKind, r *http.Request, errs *fieldErrors) msiTarget {
	t := msiTarget{kind: kind, tenant: r.PathValue("tenant"), clientID: r.PathValue("clientId")}
	if kind == targetForward {
		return t
	}
	checkTenant("tenant", t.tenant, errs)
	checkClientID("clientId", t.clientID, errs)
	if kind == targetFile {
		if t.file = s.files.named[r.PathValue("name")]; t.file == nil {
			errs.add("name", "no certificate of this name was configured at start (--file name=cert.pem[,key.pem])")
		}
		return t
	}
	t.certName = r.PathValue("certificate")
	if v := r.PathValue("vault"); checkVaultName("vault", v, errs) {
		if u, err := s.vaultURL(v); err != nil {
			errs.addErr("vault", err)
		} else {
			t.vaultURL = u
		}
	}
	checkCertificateName("certificate", t.certName, errs)
	return t
}

// msiToken gets the token of a checked target for scope.
func (s *Server) msiToken(ctx context.Context, t msiTarget, scope string) (azcore.AccessToken, error) {
	switch t.kind {
	case targetKV:
		return s.kvToken(ctx, t.tenant, t.clientID, scope, t.vaultURL, t.certName)
	case targetFile:
		return s.creds.token(ctx, t.tenant, t.clientID, scope, "file|named:"+t.file.name, t.file.src)
	}
	if s.cfg.ForwardCredential == nil {
		return azcore.AccessToken{}, errNoForwardCredential
	}
	return safeGetToken(ctx, s.cfg.ForwardCredential, policy.TokenRequestOptions{Scopes: []string{scope}})
}

func (s *Server) kvToken(ctx context.Context, tenant, clientID, scope, vaultURL, certName string) (azcore.AccessToken, error) {
	src, err := s.creds.certSource(ctx, vaultURL, certName)
	if err != nil {
		return azcore.AccessToken{}, err
	}
	return s.creds.token(ctx, tenant, clientID, scope, kvCertKey(vaultURL, certName), src)
}

// resourceScope turns a managed identity resource into its .default scope.
func resourceScope(resource string, errs *fieldErrors) string {
	switch {
	case resource == "":
		errs.add("resource", "required: the resource (application ID URI) to get a token for, e.g. https://vault.azure.net")
		return ""
	case len(resource) > 1024 || strings.ContainsFunc(resource, func(r rune) bool { return r <= ' ' || r == 0x7f }):
		errs.add("resource", "too long or contains white space or control characters")
		return ""
	}
	if strings.HasSuffix(resource, "/.default") {
		return resource
	}
	return resource + "/.default"
}
