package vault

import (
	"errors"
	"github.com/kvassert/kvassert/kvasserttest/internal/names"
	"net/http"
	"slices"
	"strings"

	"github.com/kvassert/kvassert/kvasserttest/internal/emu"
)

// caller is the authenticated principal of a request.
type caller struct {
	appID, oid, iss string
}

// setChallenge sets the bearer challenge every 401 of the service carries.
func (v *Vault) setChallenge(w http.ResponseWriter) {
	w.Header().Set("WWW-Authenticate",
		`Bearer authorization="`+v.cfg.AuthorityHost+"/"+v.cfg.Vault.Tenant+`", resource="`+v.resource+`"`)
}

// unauthorized answers 401 with the challenge and the given message.
func (v *Vault) unauthorized(w http.ResponseWriter, message string) {
	v.setChallenge(w)
	if v.hsm && message == msgMissingToken {
		// Managed HSM answers the challenge with an empty body.
		v.standardHeaders(w)
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		w.Header().Set("Content-Length", "0")
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	v.writeError(w, errf(http.StatusUnauthorized, "Unauthorized", "%s", message))
}

const msgMissingToken = "AKV10000: Request is missing a Bearer or PoP token."

// authenticate checks the bearer token. It answers the request (401) and
// returns false when the token is missing or not acceptable. No part of the
// token is ever echoed.
func (v *Vault) authenticate(w http.ResponseWriter, r *http.Request) (caller, bool) {
	raw, ok := bearerToken(r)
	if !ok {
		v.cfg.Faults.Inc(emu.OpChallenge)
		v.unauthorized(w, msgMissingToken)
		return caller{}, false
	}
	claims, err := v.cfg.Authority.Verify(raw, v.resource)
	switch {
	case errors.Is(err, emu.ErrTokenExpired):
		v.unauthorized(w, "[TokenExpired] Error validating token: 'S2S12086'.")
		return caller{}, false
	case err != nil && claims == nil:
		// Not a token of this emulator's authority (bad signature or format).
		v.unauthorized(w, "AKV10046: Unable to resolve the key used for signature validation.")
		return caller{}, false
	case err != nil && strings.TrimSuffix(claims.Aud, "/") != v.resource:
		v.unauthorized(w, "AKV10022: Invalid audience. Expected "+v.resource+", found: "+claims.Aud+".")
		return caller{}, false
	case err != nil:
		v.unauthorized(w, "[TokenNotYetValid] Error validating token: the token is not yet valid.")
		return caller{}, false
	}
	if !strings.EqualFold(claims.Tid, v.cfg.Vault.Tenant) {
		found := claims.Iss
		if found == "" {
			found = "https://sts.windows.net/" + claims.Tid + "/"
		}
		t := v.cfg.Vault.Tenant
		v.unauthorized(w, "AKV10032: Invalid issuer. Expected one of https://sts.windows.net/"+t+"/, https://login.microsoftonline.com/"+t+"/v2.0, found "+found+".")
		return caller{}, false
	}
	appID := claims.AppID
	if appID == "" {
		appID = claims.Azp
	}
	return caller{appID: appID, oid: claims.Oid, iss: claims.Iss}, true
}

func bearerToken(r *http.Request) (string, bool) {
	h := r.Header.Get("Authorization")
	scheme, token, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	token = strings.TrimSpace(token)
	return token, token != ""
}

// allowed reports whether the caller's app ID or object ID holds perm.
func (v *Vault) allowed(c caller, perm string) bool {
	v.grantsMu.RLock()
	defer v.grantsMu.RUnlock()
	for _, p := range []string{c.appID, c.oid} {
		if p != "" && names.Allows(v.grants[strings.ToLower(p)], perm) {
			return true
		}
	}
	return false
}

// forbidden answers 403 ForbiddenByRbac the way an RBAC vault words it.
func (v *Vault) forbidden(w http.ResponseWriter, c caller, perm, object string) {
	resource := "/subscriptions/00000000-0000-0000-0000-000000000000/resourcegroups/kvasserttest/providers/microsoft.keyvault/vaults/" + strings.ToLower(v.cfg.Vault.Name)
	if v.hsm {
		resource = "/subscriptions/00000000-0000-0000-0000-000000000000/resourcegroups/kvasserttest/providers/microsoft.keyvault/managedhsms/" + strings.ToLower(v.cfg.Vault.Name)
	}
	if object != "" {
		resource += "/" + object
	}
	msg := "Caller is not authorized to perform action on resource.\r\n" +
		"If role assignments, deny assignments or role definitions were changed recently, please observe propagation time.\r\n" +
		"Caller: appid=" + c.appID + ";oid=" + c.oid + ";iss=" + c.iss + "\r\n" +
		"Action: '" + v.action(perm) + "'\r\n" +
		"Resource: '" + resource + "'\r\n" +
		"Assignment: (not found)\r\n" +
		"DenyAssignmentId: null\r\n" +
		"DecisionReason: 'DeniedWithNoValidRBAC' \r\n" +
		"Vault: " + v.cfg.Vault.Name + ";location=kvasserttest\r\n"
	v.writeError(w, &apiError{status: http.StatusForbidden, code: "Forbidden", message: msg, inner: "ForbiddenByRbac"})
}

// action maps a permission to the RBAC data action named in 403 answers.
func (v *Vault) action(perm string) string {
	if v.hsm {
		a, ok := hsmActions[perm]
		if !ok {
			a = "keys/" + strings.TrimPrefix(perm, "keys/") + "/action"
		}
		return "Microsoft.KeyVault/managedHsm/" + a
	}
	if a, ok := vaultActions[perm]; ok {
		return "Microsoft.KeyVault/vaults/" + a
	}
	return "Microsoft.KeyVault/vaults/" + perm + "/action"
}

var vaultActions = map[string]string{
	"keys/get": "keys/read", "keys/list": "keys/read", "keys/create": "keys/create/action",
	"keys/import": "keys/import/action", "keys/update": "keys/write", "keys/delete": "keys/delete",
	"keys/sign": "keys/sign/action", "keys/verify": "keys/verify/action",
	"keys/wrapKey": "keys/wrap/action", "keys/unwrapKey": "keys/unwrap/action",
	"certificates/get": "certificates/read", "certificates/list": "certificates/read",
	"certificates/create": "certificates/create/action", "certificates/import": "certificates/import/action",
	"certificates/update": "certificates/update/action", "certificates/delete": "certificates/delete",
	"secrets/get": "secrets/getSecret/action", "secrets/list": "secrets/readMetadata/action",
	"secrets/set": "secrets/setSecret/action", "secrets/delete": "secrets/delete",
}

var hsmActions = map[string]string{
	"keys/get": "keys/read/action", "keys/list": "keys/read/action", "keys/create": "keys/create",
	"keys/import": "keys/import/action", "keys/update": "keys/write/action", "keys/delete": "keys/delete",
	"keys/sign": "keys/sign/action", "keys/verify": "keys/verify/action",
	"keys/wrapKey": "keys/wrap/action", "keys/unwrapKey": "keys/unwrap/action",
}

// Grant adds permissions for a principal (client ID or object ID).
func (v *Vault) Grant(principal string, permissions ...string) {
	p := strings.ToLower(principal)
	v.grantsMu.Lock()
	defer v.grantsMu.Unlock()
	for _, perm := range permissions {
		if !slices.Contains(v.grants[p], perm) {
			v.grants[p] = append(v.grants[p], perm)
		}
	}
}

// Revoke removes permissions from a principal; with none, all. A permission
// is removed only as it was granted: revoking "keys/sign" leaves "keys/*".
func (v *Vault) Revoke(principal string, permissions ...string) {
	p := strings.ToLower(principal)
	v.grantsMu.Lock()
	defer v.grantsMu.Unlock()
	if len(permissions) == 0 {
		delete(v.grants, p)
		return
	}
	v.grants[p] = slices.DeleteFunc(slices.Clone(v.grants[p]), func(g string) bool { return slices.Contains(permissions, g) })
}
