package proxy_test

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/kvassert/kvassert/proxy"
)

// fuzzRoutes are the token API routes, whose JSON bodies the proxy decodes.
var fuzzRoutes = []string{
	"/api/token/kv-certificate",
	"/api/token/kv-key",
	"/api/token/kv-key-info",
	"/api/token/local-certificate",
}

// FuzzTokenAPIRequest: arbitrary bodies and content types posted to the
// token API of a proxy without credentials never panic and always get a
// problem-details answer (4xx, or 501 once a request is valid but no
// credential is configured), never a token, never a 5xx otherwise, and
// never more than a few KB.
func FuzzTokenAPIRequest(f *testing.F) {
	s, err := proxy.New(&proxy.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		f.Fatal(err)
	}
	h := s.Handler()
	const app, tenant = "6d2f4a8b-1c3e-4f5a-9b7d-2e4f6a8c0b16", "2b6e9d10-7c4a-4f0e-8d21-5a3b4c6d7e82"
	for i, body := range []string{
		`{"clientId":"` + app + `","tenantId":"` + tenant + `","scopes":["https://graph.microsoft.com/.default"],"keyVaultUri":"https://v1x.vault.azure.net/","certificateName":"c"}`,
		`{"clientId":"` + app + `","tenantId":"` + tenant + `","scopes":["https://graph.microsoft.com/.default"],"keyUri":"https://v1x.vault.azure.net/keys/k/v","keyThumbprint":"AAAAAAAAAAAAAAAAAAAAAAAAAAA"}`,
		`{"keyVaultUri":"https://v1x.vault.azure.net/","certificateName":"c","skipCache":true}`,
		`{"clientId":"` + app + `","tenantId":"` + tenant + `","scopes":["https://graph.microsoft.com/.default"],"certFile":"../../etc/passwd","keyFile":""}`,
		`{}`, `[]`, `null`, `{"clientId":1}`, `{"clientId":"a","clientId":"b"}`, `{"ClientId":"x"}`, `{"scopes":"x"}`, `{} {}`, `{"a":`,
		`{"keyVaultUri":"http://127.0.0.1/","certificateName":"../x"}`,
	} {
		f.Add(uint8(i%len(fuzzRoutes)), "application/json", []byte(body))
	}
	f.Add(uint8(0), "text/plain", []byte(`{}`))
	f.Add(uint8(1), "application/json; charset=utf-8", []byte(`{"scopes":[]}`))
	f.Add(uint8(2), "application/json", []byte(strings.Repeat(" ", 70<<10)+"{}"))

	f.Fuzz(func(t *testing.T, route uint8, contentType string, body []byte) {
		path := fuzzRoutes[int(route)%len(fuzzRoutes)]
		r := httptest.NewRequest(http.MethodPost, "http://127.0.0.1:5616"+path, strings.NewReader(string(body)))
		r.Host = "127.0.0.1:5616"
		r.Header.Set("Authorization", "Bearer "+s.Secret())
		r.Header.Set("Content-Type", contentType)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)

		res := w.Result()
		if res.StatusCode == http.StatusOK || (res.StatusCode >= 500 && res.StatusCode != http.StatusNotImplemented) || res.StatusCode < 400 {
			t.Fatalf("%s %q: status %d: %s", path, body, res.StatusCode, w.Body.String())
		}
		if ct := res.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/problem+json") {
			t.Fatalf("%s: content type %q", path, ct)
		}
		var p struct {
			Status int    `json:"status"`
			Title  string `json:"title"`
		}
		if err := json.Unmarshal(w.Body.Bytes(), &p); err != nil || p.Status != res.StatusCode || p.Title == "" {
			t.Fatalf("%s: problem body %q (%v)", path, w.Body.String(), err)
		}
		if w.Body.Len() > 8<<10 {
			t.Fatalf("%s: %d-byte answer to a %d-byte body", path, w.Body.Len(), len(body))
		}
	})
}
