package proxy

import (
	"net/http"
	"slices"
	"strings"
)

// auth is how a route checks the per-run secret.
type auth int

const (
	// authNone: content holding no data (the page and its assets, and
	// /healthz).
	authNone auth = iota
	// authAPI: "Authorization: Bearer <secret>" or "X-Kvassert-Secret".
	authAPI
	// authIdentityHeader: X-IDENTITY-HEADER, the App Service protocol's
	// secret (IDENTITY_HEADER).
	authIdentityHeader
	// authPathSecret: the {secret} path segment; the Cloud Shell protocol
	// has no secret header, so MSI_ENDPOINT carries it.
	authPathSecret
)

type route struct {
	method, path string
	auth         auth
	handler      http.HandlerFunc
	// proto and kind name the managed identity route (authIdentityHeader,
	// authPathSecret), whose secret is that of the identity in the path.
	proto protocol
	kind  targetKind
}

// msiRoute is a managed identity route: its handler, its secret.
func (s *Server) msiRoute(method, path string, p protocol, kind targetKind) route {
	a := authIdentityHeader
	if p == cloudShell {
		a = authPathSecret
	}
	return route{method: method, path: path, auth: a, handler: s.msiHandler(p, kind), proto: p, kind: kind}
}

func (rt route) pattern() string { return rt.method + " " + rt.path }

// routes lists every route the proxy serves (the OpenAPI document describes
// each one; a test keeps them in step).
func (s *Server) routes() []route {
	return []route{
		{method: "GET", path: "/{$}", auth: authNone, handler: s.servePage},
		{method: "GET", path: "/static/{file}", auth: authNone, handler: s.serveStatic},
		{method: "GET", path: "/openapi.json", auth: authAPI, handler: s.serveOpenAPI},
		{method: "GET", path: "/healthz", auth: authNone, handler: serveHealthz},
		{method: "GET", path: "/api/config", auth: authAPI, handler: s.apiConfig},
		{method: "GET", path: "/api/tenants", auth: authAPI, handler: s.apiTenants},

		{method: "POST", path: "/api/token/kv-certificate", auth: authAPI, handler: s.apiKVCertificate},
		{method: "POST", path: "/api/token/kv-key", auth: authAPI, handler: s.apiKVKey},
		{method: "POST", path: "/api/token/kv-key-info", auth: authAPI, handler: s.apiKVKeyInfo},
		{method: "POST", path: "/api/token/local-certificate", auth: authAPI, handler: s.apiLocalCertificate},

		s.msiRoute("GET", "/msi/{tenant}/{clientId}/kv/{vault}/{certificate}", appService, targetKV),
		s.msiRoute("GET", "/msi/{tenant}/{clientId}/file/{name}", appService, targetFile),
		s.msiRoute("GET", "/msi/forward", appService, targetForward),

		s.msiRoute("POST", "/cloudshell/{secret}/{tenant}/{clientId}/kv/{vault}/{certificate}", cloudShell, targetKV),
		s.msiRoute("POST", "/cloudshell/{secret}/{tenant}/{clientId}/file/{name}", cloudShell, targetFile),
		s.msiRoute("POST", "/cloudshell/{secret}/forward", cloudShell, targetForward),
	}
}

// authenticate checks a route's secret before its handler runs: the API
// secret on the token API, the page's API and the OpenAPI document; on a
// managed identity route, the secret of the identity its path names (see
// identitySecret), so that the secret handed to one identity opens no
// other route.
func (s *Server) authenticate(rt route) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ok := false
		switch rt.auth {
		case authNone:
			rt.handler(w, r)
			return
		case authAPI:
			ok = s.secretEqual(apiSecret(r))
		case authIdentityHeader, authPathSecret:
			if rt.kind == targetForward && !s.cfg.AllowForward {
				writeProblem(w, errForwardOff)
				return
			}
			presented := r.Header.Get("X-IDENTITY-HEADER")
			if rt.auth == authPathSecret {
				presented = r.PathValue("secret")
			}
			id := identityKey(rt.kind, r.PathValue("tenant"), r.PathValue("clientId"), r.PathValue("vault"), r.PathValue("certificate"), r.PathValue("name"))
			ok = s.identitySecretEqual(presented, rt.proto, id)
		}
		if !ok {
			writeProblem(w, errUnauthorized)
			return
		}
		rt.handler(w, r)
	})
}

// notFound answers paths no route serves, and known paths asked with
// another method (405 with Allow).
func (s *Server) notFound(w http.ResponseWriter, r *http.Request) {
	var allow []string
	for _, m := range []string{http.MethodGet, http.MethodPost} {
		if m == r.Method || (r.Method == http.MethodHead && m == http.MethodGet) {
			continue
		}
		probe := r.Clone(r.Context())
		probe.Method = m
		if _, pattern := s.mux.Handler(probe); pattern != "" && pattern != "/" {
			allow = append(allow, m)
		}
	}
	if len(allow) > 0 {
		slices.Sort(allow)
		w.Header().Set("Allow", strings.Join(allow, ", "))
		writeProblem(w, &problem{Type: problemMethod, Title: "Method not allowed", Status: http.StatusMethodNotAllowed,
			Detail: "This route accepts " + strings.Join(allow, ", ") + "."})
		return
	}
	writeProblem(w, &problem{Type: problemNotFound, Title: "Not found", Status: http.StatusNotFound,
		Detail: "No such route; /openapi.json describes them all."})
}
