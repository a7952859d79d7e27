package tenants_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/kvassert/kvassert/tenants"
)

// FuzzHandlerRedirect: any query string and method get an answer without a
// panic; without the Handler's state the callback is never reached, and
// the page never quotes the query.
func FuzzHandlerRedirect(f *testing.F) {
	var reached atomic.Bool
	h, err := tenants.NewHandler(offlineCred(f), redirect, key, func(context.Context, tenants.Consent) error {
		reached.Store(true)
		return nil
	}, &tenants.HandlerOptions{ProveTimeout: -1})
	if err != nil {
		f.Fatal(err)
	}
	link, _ := h.ConsentURL("")
	valid := stateOf(f, link)
	for _, q := range []string{"", "admin_consent=True&tenant=2b6e9d10-7c4a-4f0e-8d21-5a3b4c6d7e82&state=" + valid[:40] + "x",
		"error=access_denied&error_subcode=cancel&state=x", "state=%zz", "a=1&a=2", strings.Repeat("x=1&", 600),
		"admin_consent=True&tenant=<script>&state=" + strings.Repeat("A", 99)} {
		f.Add("GET", q)
	}
	f.Add("POST", "state="+valid)
	f.Fuzz(func(t *testing.T, method, query string) {
		if method == "" || strings.ContainsAny(method, " \t\r\n()<>@,;:\\\"/[]?={}") || len(method) > 16 {
			method = "GET"
		}
		r := httptest.NewRequest(http.MethodGet, "https://app.example.com/consent", nil)
		r.Method = method
		r.URL.RawQuery = query
		w := httptest.NewRecorder()
		reached.Store(false)
		h.ServeHTTP(w, r)
		if q, _ := url.ParseQuery(query); reached.Load() && q.Get("state") != valid {
			t.Fatalf("onConsent reached without the Handler's state")
		}
		if w.Code < 400 && w.Code != 200 {
			t.Fatalf("status %d", w.Code)
		}
		if len(query) >= 8 && !strings.Contains(query, valid) && strings.Contains(w.Body.String(), query) {
			t.Fatalf("the page quotes the query")
		}
	})
}
