package kvasserttest

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
)

// IMDS (see Emulator): served in process by the client's round tripper.

const imdsHost = "169.254.169.254"

// imdsRoundTripper serves IMDS requests with imds and sends the rest to base.
type imdsRoundTripper struct {
	base *http.Transport
	imds http.Handler
}

func (t *imdsRoundTripper) RoundTrip(r *http.Request) (resp *http.Response, err error) {
	if r.URL.Hostname() != imdsHost {
		return t.base.RoundTrip(r)
	}
	if r.Body != nil {
		defer r.Body.Close()
	}
	defer func() {
		// A fault that drops the connection aborts the handler; the caller
		// sees a failed connection, as with the network endpoints.
		if p := recover(); p != nil {
			resp, err = nil, errors.New("kvasserttest: IMDS connection dropped")
		}
	}()
	rec := httptest.NewRecorder()
	t.imds.ServeHTTP(rec, r)
	resp = rec.Result()
	resp.Request = r
	return resp, nil
}

// CloseIdleConnections lets http.Client.CloseIdleConnections reach base.
func (t *imdsRoundTripper) CloseIdleConnections() { t.base.CloseIdleConnections() }

// serveIMDS answers an IMDS token request through the managed identity
// endpoint (App Service protocol) and reshapes its answer as IMDS's.
func (e *Emulator) serveIMDS(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/metadata/identity/oauth2/token" {
		http.Error(w, "not an emulated IMDS path", http.StatusNotFound)
		return
	}
	if r.Method != http.MethodGet || !strings.EqualFold(r.Header.Get("Metadata"), "true") {
		writeIMDSError(w, http.StatusBadRequest, "invalid_request", "Required metadata header not specified")
		return
	}
	in := r.URL.Query()
	q := url.Values{"api-version": {"2019-08-01"}, "resource": {in.Get("resource")}}
	for from, to := range map[string]string{"client_id": "client_id", "object_id": "object_id", "msi_res_id": "mi_res_id"} {
		if v := in.Get(from); v != "" {
			q.Set(to, v)
		}
	}
	inner, err := http.NewRequestWithContext(r.Context(), http.MethodGet, "/msi/token?"+q.Encode(), nil)
	if err != nil {
		writeIMDSError(w, http.StatusBadRequest, "invalid_request", "bad request")
		return
	}
	inner.Header.Set("X-IDENTITY-HEADER", e.header)
	rec := httptest.NewRecorder()
	e.entra.ServeManagedIdentity(rec, inner)
	res := rec.Result()
	if res.StatusCode != http.StatusOK {
		if ra := res.Header.Get("Retry-After"); ra != "" {
			w.Header().Set("Retry-After", ra)
		}
		writeIMDSError(w, res.StatusCode, "invalid_request", "Identity not found or request refused by the emulated managed identity endpoint")
		return
	}
	var tok struct {
		AccessToken string `json:"access_token"`
		ExpiresOn   string `json:"expires_on"`
		Resource    string `json:"resource"`
		TokenType   string `json:"token_type"`
		ClientID    string `json:"client_id"`
	}
	if err := json.NewDecoder(res.Body).Decode(&tok); err != nil {
		writeIMDSError(w, http.StatusInternalServerError, "unknown_error", "emulator error")
		return
	}
	exp, _ := strconv.ParseInt(tok.ExpiresOn, 10, 64)
	now := e.auth.Now().Unix()
	in2 := strconv.FormatInt(max(exp-now, 0), 10)
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	_ = json.NewEncoder(w).Encode(map[string]string{
		"access_token": tok.AccessToken, "client_id": tok.ClientID,
		"expires_in": in2, "expires_on": tok.ExpiresOn, "ext_expires_in": in2,
		"not_before": strconv.FormatInt(now, 10), "resource": tok.Resource, "token_type": tok.TokenType,
	})
}

// writeIMDSError writes IMDS's error shape.
func writeIMDSError(w http.ResponseWriter, status int, code, desc string) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": code, "error_description": desc})
}
