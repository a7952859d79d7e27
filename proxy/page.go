package proxy

import (
	"embed"
	"io"
	"net/http"
)

// static holds the web page and its script and style sheet. They hold no
// data (no secret, no token, no configuration), which is why they are the
// only routes served without the secret; the script asks the developer for
// the secret or reads it from the URL fragment (#secret=...), which browsers
// never send to the server.
//
//go:embed static/index.html static/app.js static/app.css static/tenants.js
var static embed.FS

// pageCSP allows only the page's own script, style sheet and requests.
const pageCSP = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; " +
	"base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

var staticTypes = map[string]string{
	"app.js":     "text/javascript; charset=utf-8",
	"tenants.js": "text/javascript; charset=utf-8",
	"app.css":    "text/css; charset=utf-8",
}

func (s *Server) servePage(w http.ResponseWriter, r *http.Request) {
	serveEmbedded(w, "static/index.html", "text/html; charset=utf-8")
}

func (s *Server) serveStatic(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("file")
	ct, ok := staticTypes[name]
	if !ok {
		s.notFound(w, r)
		return
	}
	serveEmbedded(w, "static/"+name, ct)
}

func serveEmbedded(w http.ResponseWriter, name, contentType string) {
	data, err := static.ReadFile(name)
	if err != nil {
		http.Error(w, "missing embedded file", http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", contentType)
	h.Set("Content-Security-Policy", pageCSP)
	h.Set("Cache-Control", "no-cache")
	_, _ = w.Write(data)
}

// serveHealthz answers liveness probes: 200 "ok", and nothing about the
// proxy, its configuration or its upstreams; no secret is needed because
// nothing is revealed. Not cached, no CORS headers (the guard still refuses
// cross-site browser requests and foreign Host headers).
func serveHealthz(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Type", "text/plain; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	_, _ = io.WriteString(w, "ok\n")
}
