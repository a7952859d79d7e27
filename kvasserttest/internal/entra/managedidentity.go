package entra

import (
	"crypto/subtle"
	"net/http"
	"strconv"
	"strings"

	"github.com/kvassert/kvassert/kvasserttest/internal/emu"
)

// appServiceAPIVersion is the App Service managed identity protocol version
// every current Azure SDK sends.
const appServiceAPIVersion = "2019-08-01"

// miError is the App Service managed identity endpoint's error body.
type miError struct {
	StatusCode    int    `json:"statusCode"`
	Message       string `json:"message"`
	CorrelationID string `json:"correlationId"`
}

func writeMIError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, miError{StatusCode: status, Message: msg, CorrelationID: newGUID()})
}

// ServeManagedIdentity serves the managed identity endpoint (App Service
// protocol: GET + X-IDENTITY-HEADER; Cloud Shell protocol: POST + Metadata: true).
//
// App Service: GET ?api-version=2019-08-01&resource=R[&client_id=|principal_id=|object_id=|mi_res_id=]
// with X-IDENTITY-HEADER equal to Config.IdentityHeader (compared in constant
// time; a missing or wrong header is answered 401, and an empty
// Config.IdentityHeader refuses every request). Answer:
// {"access_token","expires_on":"<epoch seconds>","resource","token_type":"Bearer","client_id"}.
//
// Cloud Shell: POST form resource=R (optional client_id), header Metadata: true.
// Answer adds "expires_in" and "not_before" (strings, as Cloud Shell sends).
//
// The identity is the one named by client ID, object (principal) ID or
// resource ID; with none named, the scenario's only identity. Otherwise the
// answer is App Service's 400 "Unable to load the proper Managed Identity.".
// Errors have App Service's shape: {"statusCode","message","correlationId"}.
// Tokens: aud = resource, iss = https://login.microsoftonline.com/{tid}/v2.0,
// tid = the identity's tenant, appid = azp = client ID, oid = sub = object ID,
// idtyp = app; those for api://AzureADTokenExchange are the federated
// credentials the token endpoint accepts.
func (e *Entra) ServeManagedIdentity(w http.ResponseWriter, r *http.Request) {
	if e.faults.Begin(w, r, emu.OpManagedIdentity, func(w http.ResponseWriter, status int) {
		writeMIError(w, status, http.StatusText(status))
	}) {
		return
	}
	var resource, selector, selValue string
	cloudShell := false
	switch r.Method {
	case http.MethodGet:
		got := r.Header.Get("X-IDENTITY-HEADER")
		want := e.cfg.IdentityHeader
		if want == "" || subtle.ConstantTimeCompare([]byte(got), []byte(want)) != 1 {
			writeMIError(w, http.StatusUnauthorized, "Unauthorized: the X-IDENTITY-HEADER header is missing or invalid.")
			return
		}
		q := r.URL.Query()
		if v := q.Get("api-version"); v != appServiceAPIVersion {
			writeMIError(w, http.StatusBadRequest, "The api-version '"+v+"' is not supported: use "+appServiceAPIVersion+".")
			return
		}
		resource = q.Get("resource")
		for _, k := range []string{"client_id", "principal_id", "object_id", "mi_res_id"} {
			if v := q.Get(k); v != "" {
				if selector != "" {
					writeMIError(w, http.StatusBadRequest, "Only one of client_id, principal_id, object_id and mi_res_id may be given.")
					return
				}
				selector, selValue = k, v
			}
		}
	case http.MethodPost:
		cloudShell = true
		if !strings.EqualFold(r.Header.Get("Metadata"), "true") {
			writeMIError(w, http.StatusBadRequest, "Required metadata header not specified")
			return
		}
		form, oe := readForm(r)
		if oe != nil {
			writeMIError(w, http.StatusBadRequest, "The request body is not a valid form.")
			return
		}
		resource = form.Get("resource")
		if v := form.Get("client_id"); v != "" {
			selector, selValue = "client_id", v
		}
	default:
		w.Header().Set("Allow", "GET, POST")
		writeMIError(w, http.StatusMethodNotAllowed, "Method not allowed.")
		return
	}
	resource = strings.TrimSuffix(resource, "/.default")
	if resource == "" {
		writeMIError(w, http.StatusBadRequest, "Required query variable 'resource' is missing")
		return
	}
	id := e.pickIdentity(selector, selValue)
	if id == nil {
		writeMIError(w, http.StatusBadRequest, "Unable to load the proper Managed Identity.")
		return
	}
	now := e.now()
	exp := now.Add(e.lifetime)
	claims := e.appClaims(resource, id.tenant, id.clientID, id.objectID, now)
	claims.XmsMirid = id.resourceID()
	tok, err := e.auth.Issue(claims)
	if err != nil {
		writeMIError(w, http.StatusInternalServerError, "Failed to issue a token.")
		return
	}
	body := map[string]string{
		"access_token": tok,
		"expires_on":   strconv.FormatInt(exp.Unix(), 10),
		"resource":     resource,
		"token_type":   "Bearer",
		"client_id":    id.clientID,
	}
	if cloudShell {
		body["expires_in"] = strconv.FormatInt(max(int64(e.lifetime.Seconds())-1, 1), 10)
		body["not_before"] = strconv.FormatInt(now.Unix(), 10)
	}
	writeJSON(w, http.StatusOK, body)
}

// pickIdentity finds the identity a request names, or the only one.
func (e *Entra) pickIdentity(selector, value string) *identity {
	if selector == "" {
		if len(e.ids) == 1 {
			return e.ids[0]
		}
		return nil
	}
	for _, id := range e.ids {
		switch selector {
		case "client_id":
			if strings.EqualFold(id.clientID, value) {
				return id
			}
		case "principal_id", "object_id":
			if strings.EqualFold(id.objectID, value) {
				return id
			}
		case "mi_res_id":
			// Any subscription and resource group: the scenario has none.
			name := id.name
			if name == "" {
				name = id.clientID
			}
			if strings.HasSuffix(strings.ToLower(value), "/providers/microsoft.managedidentity/userassignedidentities/"+strings.ToLower(name)) {
				return id
			}
		}
	}
	return nil
}
