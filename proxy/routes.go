package proxy

import (
	"net/http"
	"slices"
	"strings"
)

// auth is how a route checks the per-run secret.
type auth int

const (
	// authNone: static content holding no data (the page and its assets).
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
}

func (rt route) pattern() string { return rt.method + " " + rt.path }

// routes lists every route the proxy serves (the OpenAPI document describes
// each one; a test keeps them in step).
func (s *Server) routes() []route {
	return []route{
		{"GET", "/{$}", authNone, s.servePage},
		{"GET", "/static/{file}", authNone, s.serveStatic},
		{"GET", "/openapi.json", authAPI, s.serveOpenAPI},
		{"GET", "/api/config", authAPI, s.apiConfig},

		{"POST", "/api/token/kv-certificate", authAPI, s.apiKVCertificate},
		{"POST", "/api/token/kv-key", authAPI, s.apiKVKey},
		{"POST", "/api/token/kv-key-info", authAPI, s.apiKVKeyInfo},
		{"POST", "/api/token/local-certificate", authAPI, s.apiLocalCertificate},

		{"GET", "/msi/{tenant}/{clientId}/kv/{vault}/{certificate}", authIdentityHeader, s.msiHandler(appService, targetKV)},
		{"GET", "/msi/{tenant}/{clientId}/file/{name}", authIdentityHeader, s.msiHandler(appService, targetFile)},
		{"GET", "/msi/forward", authIdentityHeader, s.msiHandler(appService, targetForward)},

		{"POST", "/cloudshell/{secret}/{tenant}/{clientId}/kv/{vault}/{certificate}", authPathSecret, s.msiHandler(cloudShell, targetKV)},
		{"POST", "/cloudshell/{secret}/{tenant}/{clientId}/file/{name}", authPathSecret, s.msiHandler(cloudShell, targetFile)},
		{"POST", "/cloudshell/{secret}/forward", authPathSecret, s.msiHandler(cloudShell, targetForward)},
	}
}

// authenticate checks a route's secret before its handler runs.
func (s *Server) authenticate(rt route) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var presented string
		switch rt.auth {
		case authNone:
			rt.handler(w, r)
			return
		case authAPI:
			presented = apiSecret(r)
		case authIdentityHeader:
			presented = r.Header.Get("X-IDENTITY-HEADER")
		case authPathSecret:
			presented = r.PathValue("secret")
		}
		if !s.secretEqual(presented) {
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
		writeProblem(w, &Problem{Type: problemMethod, Title: "Method not allowed", Status: http.StatusMethodNotAllowed,
			Detail: "This route accepts " + strings.Join(allow, ", ") + "."})
		return
	}
	writeProblem(w, &Problem{Type: problemNotFound, Title: "Not found", Status: http.StatusNotFound,
		Detail: "No such route; /openapi.json describes them all."})
}
