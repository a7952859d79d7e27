package kvassert_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"

	"github.com/kvassert/kvassert"
	"github.com/kvassert/kvassert/internal/obs"
	"github.com/kvassert/kvassert/internal/obs/obsrec"
	"github.com/kvassert/kvassert/internal/rootaccess"
	"github.com/kvassert/kvassert/kvasserttest/scenario"
)

// codeTransport answers the token requests it matches with an Entra
// error of the code set for (tenant, scope) (scope "" for any), in Entra's
// JSON shape; the others go to the emulator.
type codeTransport struct {
	next  policy.Transporter
	mu    sync.Mutex
	codes map[[2]string]int
	// status is the HTTP status of the answers (0: 400).
	status int
}

func (rt *codeTransport) set(tenant, scope string, code int) {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	rt.codes[[2]string{tenant, scope}] = code
}

func (rt *codeTransport) Do(req *http.Request) (*http.Response, error) {
	if !strings.HasSuffix(req.URL.Path, "/oauth2/v2.0/token") || req.Body == nil {
		return rt.next.Do(req)
	}
	body, err := io.ReadAll(req.Body)
	if err != nil {
		return nil, err
	}
	req.Body = io.NopCloser(bytes.NewReader(body))
	form, _ := url.ParseQuery(string(body))
	tenant := strings.Split(strings.TrimPrefix(req.URL.Path, "/"), "/")[0]
	rt.mu.Lock()
	scope, _, _ := strings.Cut(form.Get("scope"), " ") // MSAL adds openid offline_access profile
	code := rt.codes[[2]string{tenant, scope}]
	if code == 0 {
		code = rt.codes[[2]string{tenant, ""}]
	}
	rt.mu.Unlock()
	if code == 0 {
		return rt.next.Do(req)
	}
	js := fmt.Sprintf(`{"error":"invalid_request","error_description":"AADSTS%d: refused. Trace ID: x","error_codes":[%d],"trace_id":"0b6e9d10-7c4a-4f0e-8d21-5a3b4c6d7e82","correlation_id":"1b6e9d10-7c4a-4f0e-8d21-5a3b4c6d7e82"}`, code, code)
	status := http.StatusBadRequest
	if rt.status != 0 {
		status = rt.status
	}
	return &http.Response{StatusCode: status, Status: fmt.Sprint(status), Request: req,
		Header: http.Header{"Content-Type": {"application/json; charset=utf-8"}}, Body: io.NopCloser(strings.NewReader(js))}, nil
}

func newRefusingWorld(t *testing.T, mod func(*kvassert.CredentialOptions)) (*refusalWorld, *codeTransport) {
	rt := &codeTransport{codes: map[[2]string]int{}}
	w := newRefusalWorld(t, nil, func(o *kvassert.CredentialOptions) {
		rt.next = o.ClientOptions.Transport
		o.ClientOptions.Transport = rt
		if mod != nil {
			mod(o)
		}
	})
	return w, rt
}

// Every tenant refusal is remembered with its own code and hint; only the
// offboarding codes of a tenant that worked evict and report.
func TestEveryRefusalCodeIsRemembered(t *testing.T) {
	for code, offboards := range map[int]bool{700016: true, 7000112: true, 90002: false, 900023: false, 53003: false, 7000229: false} {
		t.Run(fmt.Sprint(code), func(t *testing.T) {
			cb := &offboarded{done: make(chan struct{}, 1)}
			w, rt := newRefusingWorld(t, func(o *kvassert.CredentialOptions) { o.TenantOffboarded = cb.callback })
			ctx := context.Background()
			if _, err := w.Cred.GetToken(ctx, offboardScopes[0]); err != nil {
				t.Fatal(err)
			}
			rt.set(scenario.DemoContosoTenant, "", code)
			_, err := w.Cred.GetToken(ctx, offboardScopes[2])
			first := authErr(t, err, code)
			reqs := w.requests()
			_, err = w.Cred.GetToken(ctx, offboardScopes[2])
			if ae := authErr(t, err, code); ae.RefusedUntil.IsZero() || ae.Hint != first.Hint || ae.Hint == "" || w.requests() != reqs {
				t.Fatalf("second call: %v (hint %q), %d requests", ae, ae.Hint, w.requests()-reqs)
			}
			cached := rootaccess.CredentialStats(w.Cred).CachedTokens
			if offboards {
				select {
				case <-cb.done:
				case <-time.After(30 * time.Second):
					t.Fatal("not reported")
				}
				if cached != 0 {
					t.Fatalf("%d tokens kept", cached)
				}
				want := map[int]string{700016: "app_not_found", 7000112: "app_disabled"}[code]
				points := obsrec.Points(w.rec.Collect(t), obs.MetricTenantState)
				if len(points) != 1 || obsrec.Attrs(points[0].Attrs) != obs.AttrTenantReason+"="+want {
					t.Fatalf("points %+v, want reason %s", points, want)
				}
				return
			}
			// Not an offboarding: the cached token stays, nothing reported.
			time.Sleep(50 * time.Millisecond)
			if cached != 1 || cb.count() != 0 || len(obsrec.Points(w.rec.Collect(t), obs.MetricTenantState)) != 0 {
				t.Fatalf("%d cached tokens, %d reports, want 1 and none", cached, cb.count())
			}
		})
	}
}

// AADSTS500011 (the resource not found in the tenant) is remembered for
// that scope only: other scopes of the tenant still get tokens, and it is
// not shared (a SharedCache's refusal names the tenant, not the scope).
func TestResourceRefusalIsPerScope(t *testing.T) {
	shc := newMemRefusals()
	w, rt := newRefusingWorld(t, func(o *kvassert.CredentialOptions) { o.SharedCache = shc })
	ctx := context.Background()
	storage := "https://storage.azure.com/.default"
	rt.set(scenario.DemoContosoTenant, storage, 500011)
	_, err := w.Cred.GetToken(ctx, scopeOpts(scenario.DemoContosoTenant, storage))
	authErr(t, err, 500011)
	_, err = w.Cred.GetToken(ctx, scopeOpts(scenario.DemoContosoTenant, storage))
	if ae := authErr(t, err, 500011); ae.RefusedUntil.IsZero() {
		t.Fatal("not remembered")
	}
	if _, err := w.Cred.GetToken(ctx, offboardScopes[0]); err != nil {
		t.Fatalf("another scope of the tenant: %v", err)
	}
	if _, ok := shc.get(scenario.DemoContosoTenant); ok {
		t.Fatal("a per-resource refusal was shared as the tenant's")
	}
	if _, ok := rootaccess.TenantRefused(w.Cred, scenario.DemoContosoTenant); ok {
		t.Fatal("reported as the tenant's refusal")
	}
}
