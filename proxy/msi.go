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
		var resource string
		switch p {
		case appService:
			q := r.URL.Query()
			if v := q.Get("api-version"); v != appServiceAPIVersion {
				errs.add("api-version", "must be "+appServiceAPIVersion+" (the App Service managed identity protocol)")
			}
			resource = q.Get("resource")
		case cloudShell:
			if !strings.EqualFold(r.Header.Get("Metadata"), "true") {
				errs.add("Metadata", "the header Metadata: true is required")
			}
			if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/x-www-form-urlencoded" {
				writeProblem(w, &Problem{Type: problemMediaType, Title: "Unsupported media type", Status: http.StatusUnsupportedMediaType,
					Detail: "Send resource=... as Content-Type: application/x-www-form-urlencoded."})
				return
			}
			r.Body = http.MaxBytesReader(w, r.Body, maxBody)
			if err := r.ParseForm(); err != nil {
				var mbe *http.MaxBytesError
				if errors.As(err, &mbe) {
					writeProblem(w, &Problem{Type: problemTooLarge, Title: "Request body too large", Status: http.StatusRequestEntityTooLarge,
						Detail: "Request bodies are limited to " + strconv.Itoa(maxBody) + " bytes."})
					return
				}
				errs.add("body", "not a valid form")
			}
			resource = r.PostForm.Get("resource")
		}
		scope := resourceScope(resource, &errs)

		tenant, clientID := r.PathValue("tenant"), r.PathValue("clientId")
		var vaultURL, certName, fileName string
		switch kind {
		case targetKV, targetFile:
			checkTenant("tenant", tenant, &errs)
			checkClientID("clientId", clientID, &errs)
			if kind == targetKV {
				certName = r.PathValue("certificate")
				if v := r.PathValue("vault"); checkVaultName("vault", v, &errs) {
					if u, err := s.vaultURL(v); err != nil {
						errs.addErr("vault", err)
					} else {
						vaultURL = u
					}
				}
				checkCertificateName("certificate", certName, &errs)
			} else {
				fileName = r.PathValue("name")
				if s.files.named[fileName] == nil {
					errs.add("name", "no certificate of this name was configured at start (--file name=cert.pem[,key.pem])")
				}
			}
		}
		if len(errs) > 0 {
			writeProblem(w, validationProblem(errs))
			return
		}
		ri := info(r.Context())
		ri.tenant, ri.clientID = strings.ToLower(tenant), strings.ToLower(clientID)

		ctx, cancel := context.WithTimeout(r.Context(), requestTimeout)
		defer cancel()
		var tok azcore.AccessToken
		var err error
		switch kind {
		case targetKV:
			tok, err = s.kvToken(ctx, tenant, clientID, scope, vaultURL, certName)
		case targetFile:
			nf := s.files.named[fileName]
			tok, err = s.creds.token(ctx, tenant, clientID, scope, "file|named:"+nf.name, nf.src)
		case targetForward:
			if s.cfg.ForwardCredential == nil {
				writeProblem(w, &Problem{Type: problemNotConfig, Title: "No forward credential", Status: http.StatusNotImplemented,
					Detail: "The proxy was started without a credential to forward to."})
				return
			}
			tok, err = safeGetToken(ctx, s.cfg.ForwardCredential, policy.TokenRequestOptions{Scopes: []string{scope}})
		}
		if err != nil {
			writeProblem(w, upstreamProblem(err))
			return
		}
		resp := msiResponse{
			AccessToken: tok.Token, ExpiresOn: strconv.FormatInt(tok.ExpiresOn.Unix(), 10),
			Resource: resource, TokenType: "Bearer", ClientID: strings.ToLower(clientID),
		}
		if p == cloudShell {
			resp.ExpiresIn = strconv.FormatInt(max(int64(time.Until(tok.ExpiresOn).Seconds()), 0), 10)
		}
		writeJSON(w, http.StatusOK, resp)
	}
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
