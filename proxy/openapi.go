package proxy

import (
	_ "embed"
	"net/http"
)

// openAPI is the OpenAPI 3.1 document of every route (a test keeps it in
// step with the routes and the request types).
//
//go:embed openapi.json
var openAPI []byte

func (s *Server) serveOpenAPI(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	_, _ = w.Write(openAPI)
}
