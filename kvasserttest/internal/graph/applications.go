package graph

import (
	"bytes"
	"crypto/sha1" //nolint:gosec // customKeyIdentifier is the SHA-1 thumbprint
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/http"
	"strings"

	"github.com/kvassert/kvassert/kvasserttest/internal/emu"
	"github.com/kvassert/kvassert/kvasserttest/internal/entra"
)

// keyCredentialJSON is Graph's keyCredential resource.
type keyCredentialJSON struct {
	CustomKeyIdentifier string  `json:"customKeyIdentifier"`
	DisplayName         string  `json:"displayName"`
	EndDateTime         string  `json:"endDateTime"`
	Key                 *string `json:"key"`
	KeyID               string  `json:"keyId"`
	StartDateTime       string  `json:"startDateTime"`
	Type                string  `json:"type"`
	Usage               string  `json:"usage"`
}

const graphTime = "2006-01-02T15:04:05Z"

// keyCredentialOf renders a credential; the key bytes only when withKey.
func keyCredentialOf(kc entra.KeyCredential, withKey bool) keyCredentialJSON {
	sum := sha1.Sum(kc.Certificate.Raw) //nolint:gosec
	out := keyCredentialJSON{
		CustomKeyIdentifier: strings.ToUpper(hex.EncodeToString(sum[:])),
		DisplayName:         kc.DisplayName,
		EndDateTime:         kc.Certificate.NotAfter.UTC().Format(graphTime),
		KeyID:               kc.KeyID,
		StartDateTime:       kc.Certificate.NotBefore.UTC().Format(graphTime),
		Type:                "AsymmetricX509Cert",
		Usage:               "Verify",
	}
	if withKey {
		k := base64.StdEncoding.EncodeToString(kc.Certificate.Raw)
		out.Key = &k
	}
	return out
}

func (g *Graph) metadata(r *http.Request, fragment string) string {
	host := hostOf(r.Host)
	if !IsGraphHost(host) {
		host = "graph.microsoft.com"
	}
	version, _, _ := strings.Cut(strings.TrimPrefix(r.URL.Path, "/"), "/")
	return "https://" + strings.ToLower(host) + "/" + version + "/$metadata#" + fragment
}

// getApplication answers GET /applications/{id}[?$select=...]. Reading
// needs Application.Read.All (or a role that implies it), even for the app
// itself. The key bytes are returned only when $select names keyCredentials,
// as Graph does.
func (g *Graph) getApplication(rw *responder, r *http.Request, c *emu.AccessClaims, app entra.App) {
	if !hasAnyRole(c, readRoles) {
		rw.fail(denied())
		return
	}
	all := []string{"id", "appId", "displayName", "keyCredentials", "servicePrincipalLockConfiguration"}
	fields, selected := all, false
	if sel := r.URL.Query().Get("$select"); sel != "" {
		fields, selected = nil, true
		for _, f := range strings.Split(sel, ",") {
			f = strings.TrimSpace(f)
			known := false
			for _, a := range all {
				if strings.EqualFold(a, f) {
					fields, known = append(fields, a), true
				}
			}
			if !known {
				rw.fail(badRequest("Could not find a property named '%s' on type 'microsoft.graph.application'.", truncate(f)))
				return
			}
		}
	}
	creds, err := g.dir.KeyCredentials(app.ClientID)
	if err != nil {
		rw.fail(notFound(app.ObjectID))
		return
	}
	out := map[string]any{}
	if selected {
		out["@odata.context"] = g.metadata(r, "applications("+strings.Join(fields, ",")+")/$entity")
	} else {
		out["@odata.context"] = g.metadata(r, "applications/$entity")
	}
	for _, f := range fields {
		switch f {
		case "id":
			out["id"] = app.ObjectID
		case "appId":
			out["appId"] = app.ClientID
		case "displayName":
			out["displayName"] = app.DisplayName
		case "keyCredentials":
			list := make([]keyCredentialJSON, 0, len(creds))
			for _, kc := range creds {
				list = append(list, keyCredentialOf(kc, selected))
			}
			out["keyCredentials"] = list
		case "servicePrincipalLockConfiguration":
			out["servicePrincipalLockConfiguration"] = app.ServicePrincipalLock // null when not set
		}
	}
	rw.json(http.StatusOK, out)
}

// canRoll reports whether the caller may call addKey/removeKey on app: the
// app itself needs no permission; another app needs Application.ReadWrite.All.
func canRoll(c *emu.AccessClaims, app entra.App) bool {
	return callerIs(c, app.ClientID) || hasAnyRole(c, writeRoles)
}

// decodeBody reads a JSON body, refusing unknown properties as Graph does.
func decodeBody(r *http.Request, v any) *graphError {
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var maxErr *http.MaxBytesError
		if errors.As(err, &maxErr) {
			return errf(http.StatusRequestEntityTooLarge, "Request_BadRequest", "The request body is too large.")
		}
		if strings.HasPrefix(err.Error(), "json: unknown field ") {
			return badRequest("Property %s does not exist on the request body's type.", truncate(strings.TrimPrefix(err.Error(), "json: unknown field ")))
		}
		return badRequest("Invalid JSON in the request body.")
	}
	return nil
}

// addKeyBody is the body of addKey.
type addKeyBody struct {
	KeyCredential *struct {
		Type                string `json:"type"`
		Usage               string `json:"usage"`
		Key                 string `json:"key"`
		DisplayName         string `json:"displayName"`
		CustomKeyIdentifier string `json:"customKeyIdentifier"`
		KeyID               string `json:"keyId"`
		StartDateTime       string `json:"startDateTime"`
		EndDateTime         string `json:"endDateTime"`
	} `json:"keyCredential"`
	PasswordCredential json.RawMessage `json:"passwordCredential"`
	Proof              string          `json:"proof"`
}

// addKey answers POST /applications/{id}/addKey.
func (g *Graph) addKey(rw *responder, r *http.Request, c *emu.AccessClaims, app entra.App) {
	if !canRoll(c, app) {
		rw.fail(denied())
		return
	}
	var b addKeyBody
	if e := decodeBody(r, &b); e != nil {
		rw.fail(e)
		return
	}
	if len(b.PasswordCredential) > 0 && !bytes.Equal(bytes.TrimSpace(b.PasswordCredential), []byte("null")) {
		rw.fail(badRequest("passwordCredential is not supported by the kvassert emulator: pass null and a keyCredential."))
		return
	}
	kc := b.KeyCredential
	switch {
	case kc == nil:
		rw.fail(badRequest("The keyCredential parameter is required."))
		return
	case kc.Type != "AsymmetricX509Cert":
		rw.fail(badRequest("keyCredential.type must be AsymmetricX509Cert."))
		return
	case kc.Usage != "Verify":
		rw.fail(badRequest("keyCredential.usage must be Verify."))
		return
	}
	der, err := base64.StdEncoding.DecodeString(kc.Key)
	var cert *x509.Certificate
	if err == nil {
		cert, err = x509.ParseCertificate(der)
	}
	if err != nil {
		rw.fail(badRequest("keyCredential.key must be a base64-encoded DER X.509 certificate (the public certificate only)."))
		return
	}
	if e := g.checkRollProof(app, b.Proof); e != nil {
		rw.fail(e)
		return
	}
	added, err := g.dir.AddKeyCredential(app.ClientID, cert, kc.DisplayName)
	switch {
	case errors.Is(err, entra.ErrDuplicateKey):
		rw.fail(badRequest("The application already has a key credential with the same key (thumbprint); upload of a duplicate key is not allowed."))
		return
	case err != nil:
		rw.fail(notFound(app.ObjectID))
		return
	}
	if fn := g.addKeyHook(); fn != nil {
		fn(added)
	}
	out := struct {
		Context string `json:"@odata.context"`
		keyCredentialJSON
	}{g.metadata(r, "microsoft.graph.keyCredential"), keyCredentialOf(added, false)}
	rw.json(http.StatusOK, out)
}

// checkRollProof checks an addKey or removeKey proof against the
// application's key credentials.
func (g *Graph) checkRollProof(app entra.App, proof string) *graphError {
	creds, err := g.dir.KeyCredentials(app.ClientID)
	if err != nil {
		return notFound(app.ObjectID)
	}
	_, e := checkProof(proof, app, creds, g.auth.Now())
	return e
}

// removeKey answers POST /applications/{id}/removeKey.
func (g *Graph) removeKey(rw *responder, r *http.Request, c *emu.AccessClaims, app entra.App) {
	if !canRoll(c, app) {
		rw.fail(denied())
		return
	}
	var b struct {
		KeyID string `json:"keyId"`
		Proof string `json:"proof"`
	}
	if e := decodeBody(r, &b); e != nil {
		rw.fail(e)
		return
	}
	if !isGUID(b.KeyID) {
		rw.fail(badRequest("keyId must be the GUID of one of the application's key credentials."))
		return
	}
	if e := g.checkRollProof(app, b.Proof); e != nil {
		rw.fail(e)
		return
	}
	switch err := g.dir.RemoveKeyCredential(app.ClientID, b.KeyID); {
	case errors.Is(err, entra.ErrNoKey):
		rw.fail(errf(http.StatusNotFound, "Request_ResourceNotFound", "No key credential with keyId '%s' on the application.", strings.ToLower(b.KeyID)))
	case err != nil:
		rw.fail(notFound(app.ObjectID))
	default:
		rw.noContent()
	}
}
