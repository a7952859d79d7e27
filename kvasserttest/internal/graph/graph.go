// Package graph emulates the part of Microsoft Graph that rolls an
// application's certificate credentials: reading the application's
// keyCredentials, and the addKey and removeKey actions with their proof of
// possession.
//
// The application objects and their key credentials live in the Entra
// emulator (package entra), so a key added here becomes a credential the
// token endpoint accepts (after the propagation delay) and a key removed here
// stops working there at once.
//
// What is checked, and how each failure is answered (Graph's JSON error
// shape, see errors.go):
//
//	case                                                  HTTP  code
//	----------------------------------------------------  ----  ---------------------------------
//	no bearer token                                       401   InvalidAuthenticationToken
//	token not issued by this emulator, expired, not yet   401   InvalidAuthenticationToken
//	  valid, or not for Graph (audience)
//	application not found (or not in the token's tenant)  404   Request_ResourceNotFound
//	GET without Application.Read.All (or a role that      403   Authorization_RequestDenied
//	  implies it): an app may not read itself otherwise
//	addKey/removeKey by another app without               403   Authorization_RequestDenied
//	  Application.ReadWrite.All
//	body not JSON, keyCredential/keyId missing or bad,    400   Request_BadRequest
//	  type not AsymmetricX509Cert, usage not Verify,
//	  key not a DER X.509 certificate, a
//	  passwordCredential given
//	proof missing, with '=' padding, malformed, alg not   401   Authentication_MissingOrMalformed
//	  RS256, aud not 00000002-0000-0000-c000-000000000000,
//	  iss not the application's object ID, nbf/exp
//	  missing, exp-nbf over 10 minutes, now outside
//	  [nbf, exp] (5 minutes of skew), no x5t, x5t not a
//	  current (valid, unrevoked) certificate of the app,
//	  bad signature
//	addKey of a certificate the app already has           400   Request_BadRequest
//	removeKey of a keyId the app does not have            404   Request_ResourceNotFound
//	unknown path                                          400   BadRequest
//	unsupported method                                    405   Request_BadRequest
//
// Choices where Graph's behaviour is not pinned down publicly: removeKey may
// remove the app's last valid key (Graph lets an app remove any of its keys
// with a valid proof; the roller never does it); every proof defect answers
// 401 Authentication_MissingOrMalformed (the code Graph documents for a
// padded proof) with a message naming the defect; the key used to sign a
// proof must be registered and valid in the directory, whether or not it has
// propagated to the token service yet.
package graph

import (
	"net/http"
	"net/url"
	"strings"

	"github.com/kvassert/kvassert/kvasserttest/internal/emu"
	"github.com/kvassert/kvassert/kvasserttest/internal/entra"
)

// Config configures the emulated Graph.
type Config struct {
	// Authority verifies bearer tokens and gives the time.
	Authority *emu.Authority
	// Faults counts requests and injects faults (shared by the emulator).
	Faults *emu.Faults
	// Directory holds the applications and their key credentials.
	Directory *entra.Entra
}

// Graph is the emulated Microsoft Graph. Safe for concurrent use.
type Graph struct {
	auth   *emu.Authority
	faults *emu.Faults
	dir    *entra.Entra
	hooks  hooks // test hooks (hooks.go)
}

// New returns the emulated Graph.
func New(cfg Config) *Graph {
	f := cfg.Faults
	if f == nil {
		f = &emu.Faults{}
	}
	return &Graph{auth: cfg.Authority, faults: f, dir: cfg.Directory}
}

// maxBody caps request bodies (a certificate and a proof are a few KB).
const maxBody = 64 << 10

// request is one routed Graph call.
type request struct {
	op      emu.Op
	appRef  string // object ID, or client ID when byAppID
	byAppID bool   // addressed as applications(appId='...')
	action  string // "", "addKey", "removeKey"
}

// ServeHTTP serves /v1.0/applications/... (and /beta/...).
func (g *Graph) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rw := newResponder(w, r, g.auth.Now())
	if isOrganization(r) {
		if !g.faults.Begin(w, r, emu.OpGraphOrganization, rw.faultWriter) {
			g.serveOrganization(rw, r)
		}
		return
	}
	rq, ge := route(r)
	if ge != nil {
		rw.fail(ge)
		return
	}
	if g.faults.Begin(w, r, rq.op, rw.faultWriter) {
		return
	}
	claims, ge := g.authenticate(r)
	if ge != nil {
		rw.fail(ge)
		return
	}
	app, ge := g.findApp(rq, claims)
	if ge != nil {
		rw.fail(ge)
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxBody)
	if rq.action != "" && g.armedAfter(rq.op) {
		g.serveCommitted(w, r, rq.op, func(rw *responder) { g.serveAction(rw, r, rq, claims, app) })
		return
	}
	g.serveAction(rw, r, rq, claims, app)
}

// serveAction answers a routed, authenticated request.
func (g *Graph) serveAction(rw *responder, r *http.Request, rq request, claims *emu.AccessClaims, app entra.App) {
	switch rq.action {
	case "":
		g.getApplication(rw, r, claims, app)
	case "addKey":
		g.addKey(rw, r, claims, app)
	case "removeKey":
		g.removeKey(rw, r, claims, app)
	}
}

// route resolves /{version}/applications/{id}[/action] and
// /{version}/applications(appId='{id}')[/action].
func route(r *http.Request) (request, *graphError) {
	path := r.URL.EscapedPath()
	segs := strings.Split(strings.Trim(path, "/"), "/")
	for i, s := range segs {
		if u, err := url.PathUnescape(s); err == nil {
			segs[i] = u
		}
	}
	if len(segs) < 2 || (segs[0] != "v1.0" && segs[0] != "beta") {
		return request{}, unknownSegment(segs)
	}
	var rq request
	rest := segs[2:]
	switch first := segs[1]; {
	case strings.EqualFold(first, "applications") && len(rest) >= 1:
		rq.appRef, rest = rest[0], rest[1:]
	case len(first) > len("applications(appId='')") && strings.EqualFold(first[:len("applications(appId='")], "applications(appId='") && strings.HasSuffix(first, "')"):
		rq.appRef, rq.byAppID = first[len("applications(appId='"):len(first)-2], true
	default:
		return request{}, unknownSegment(segs[1:])
	}
	switch {
	case len(rest) == 0:
		rq.op = emu.OpGraphGetApplication
		if r.Method != http.MethodGet {
			return request{}, methodNotAllowed(r.Method)
		}
	case len(rest) == 1 && (strings.EqualFold(rest[0], "addKey") || strings.EqualFold(rest[0], "microsoft.graph.addKey")):
		rq.op, rq.action = emu.OpGraphAddKey, "addKey"
	case len(rest) == 1 && (strings.EqualFold(rest[0], "removeKey") || strings.EqualFold(rest[0], "microsoft.graph.removeKey")):
		rq.op, rq.action = emu.OpGraphRemoveKey, "removeKey"
	default:
		return request{}, unknownSegment(rest)
	}
	if rq.action != "" && r.Method != http.MethodPost {
		return request{}, methodNotAllowed(r.Method)
	}
	return rq, nil
}

// findApp resolves the addressed application in the caller's tenant.
func (g *Graph) findApp(rq request, c *emu.AccessClaims) (entra.App, *graphError) {
	app, ok := g.dir.AppByID(rq.appRef)
	if ok && rq.byAppID && !strings.EqualFold(app.ClientID, rq.appRef) {
		ok = false
	}
	if ok && !rq.byAppID && !strings.EqualFold(app.ObjectID, rq.appRef) {
		ok = false // /applications/{id} takes the object ID only
	}
	if !ok || !strings.EqualFold(app.HomeTenant, c.Tid) {
		return entra.App{}, notFound(rq.appRef)
	}
	return app, nil
}
