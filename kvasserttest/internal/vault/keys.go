package vault

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/rsa"
	"math/big"
	"net/http"
	"slices"
	"sort"
	"strings"

	"github.com/kvassert/kvassert/kvasserttest/internal/emu"
)

// Attribute values the service reports for objects of a vault with soft
// delete (90 days) and no purge protection.
const (
	recoveryLevel   = "Recoverable+Purgeable"
	recoverableDays = 90
)

// attributes are the mutable attributes of one object version.
type attributes struct {
	enabled          bool
	notBefore, expir *int64
	created, updated int64
}

// keyVersion is one version of a key. priv never changes; everything else is
// guarded by Vault.mu.
type keyVersion struct {
	name, version string
	kty           string // RSA, RSA-HSM, EC, EC-HSM
	priv          crypto.Signer
	keyOps        []string
	attrs         attributes
	tags          map[string]string
	managed       bool // backs a certificate
}

type keyItem struct {
	name     string
	versions []*keyVersion // oldest first
}

func (v *Vault) kid(k *keyVersion) string {
	return v.cfg.BaseURL + "/keys/" + k.name + "/" + k.version
}

// keyRoute resolves /keys/... (segs without "keys").
func (v *Vault) keyRoute(method string, segs []string) (route, *apiError) {
	if len(segs) == 0 || (len(segs) == 1 && segs[0] == "") {
		if method == http.MethodGet {
			return route{op: emu.OpKeyList, perm: "keys/list", handle: v.listKeys}, nil
		}
		return route{}, methodNotAllowed(method, "/keys")
	}
	name := segs[0]
	if e := checkName(name); e != nil {
		return route{}, e
	}
	var r route
	var ok bool
	switch len(segs) {
	case 1:
		r, ok = v.keyItemRoute(method, name)
	case 2:
		if isCryptoOp(segs[1]) {
			return v.cryptoRoute(method, name, "", segs[1])
		}
		r, ok = v.keySubRoute(method, name, segs[1])
	case 3:
		if isCryptoOp(segs[2]) {
			return v.cryptoRoute(method, name, segs[1], segs[2])
		}
	}
	if !ok {
		return route{}, methodNotAllowed(method, "/keys/"+strings.Join(segs, "/"))
	}
	return r, nil
}

// keyItemRoute resolves /keys/{name}.
func (v *Vault) keyItemRoute(method, name string) (route, bool) {
	obj := "keys/" + name
	switch method {
	case http.MethodGet:
		return route{emu.OpKeyGet, "keys/get", obj, v.getKey(name, "")}, true
	case http.MethodPut:
		return route{emu.OpKeyImport, "keys/import", obj, v.importKey(name)}, true
	case http.MethodPatch:
		return route{emu.OpKeyUpdate, "keys/update", obj, v.updateKey(name, "")}, true
	}
	return route{}, false
}

// keySubRoute resolves /keys/{name}/{sub}: create, versions or a version
// (crypto operations go to cryptoRoute).
func (v *Vault) keySubRoute(method, name, sub string) (route, bool) {
	obj := "keys/" + name
	switch {
	case sub == "create" && method == http.MethodPost:
		return route{emu.OpKeyCreate, "keys/create", obj, v.handleCreateKey(name)}, true
	case sub == "versions" && method == http.MethodGet:
		return route{emu.OpKeyList, "keys/list", obj, v.listKeyVersions(name)}, true
	case method == http.MethodGet:
		return route{emu.OpKeyGet, "keys/get", obj, v.getKey(name, sub)}, true
	case method == http.MethodPatch:
		return route{emu.OpKeyUpdate, "keys/update", obj, v.updateKey(name, sub)}, true
	}
	return route{}, false
}

func (v *Vault) cryptoRoute(method, name, version, op string) (route, *apiError) {
	if method != http.MethodPost {
		return route{}, methodNotAllowed(method, "/keys/"+name+"/"+op)
	}
	switch op {
	case "sign":
		return route{emu.OpKeySign, "keys/sign", "keys/" + name, v.sign(name, version)}, nil
	case "wrapkey":
		return route{emu.OpKeyWrap, "keys/wrapKey", "keys/" + name, v.wrapKey(name, version)}, nil
	case "unwrapkey":
		return route{emu.OpKeyUnwrap, "keys/unwrapKey", "keys/" + name, v.unwrapKey(name, version)}, nil
	}
	return route{emu.OpKeyVerify, "keys/verify", "keys/" + name, v.verify(name, version)}, nil
}

// isCryptoOp reports the key operations served by cryptoRoute.
func isCryptoOp(seg string) bool {
	switch seg {
	case "sign", "verify", "wrapkey", "unwrapkey":
		return true
	}
	return false
}

func methodNotAllowed(method, path string) *apiError {
	return errf(http.StatusNotFound, "NotFound", "The operation %s %s is not supported.", method, path)
}

// findKey returns a version (latest for ""); call with v.mu held.
func (v *Vault) findKey(name, version string) (*keyVersion, *apiError) {
	if k := v.keys[strings.ToLower(name)]; k != nil {
		return pickVersion(k.versions, name, version, keyNotFound)
	}
	return nil, keyNotFound(name)
}

// jwk is the public JSON Web Key of a key version.
type jwk struct {
	Kid    string   `json:"kid"`
	Kty    string   `json:"kty"`
	KeyOps []string `json:"key_ops"`
	N      string   `json:"n,omitempty"`
	E      string   `json:"e,omitempty"`
	Crv    string   `json:"crv,omitempty"`
	X      string   `json:"x,omitempty"`
	Y      string   `json:"y,omitempty"`
}

type keyAttributesJSON struct {
	attributesJSON
	Exportable  bool   `json:"exportable"`
	HSMPlatform string `json:"hsmPlatform,omitempty"`
}

type keyBundle struct {
	Key        jwk               `json:"key"`
	Attributes keyAttributesJSON `json:"attributes"`
	Tags       map[string]string `json:"tags,omitempty"`
	Managed    bool              `json:"managed,omitempty"`
}

type keyItemJSON struct {
	Kid        string            `json:"kid"`
	Attributes keyAttributesJSON `json:"attributes"`
	Tags       map[string]string `json:"tags,omitempty"`
	Managed    bool              `json:"managed,omitempty"`
}

func b64url(b []byte) string { return rawURL.EncodeToString(b) }

func (v *Vault) keyAttributes(k *keyVersion) keyAttributesJSON {
	a := keyAttributesJSON{attributesJSON: attributesJSONOf(k.attrs)}
	if !v.hsm {
		a.HSMPlatform = "0"
		if strings.HasSuffix(k.kty, "-HSM") {
			a.HSMPlatform = "2"
		}
	}
	return a
}

// bundle renders a key version; call with v.mu held.
func (v *Vault) bundle(k *keyVersion) keyBundle {
	j := jwk{Kid: v.kid(k), Kty: k.kty, KeyOps: slices.Clone(k.keyOps)}
	switch pub := k.priv.Public().(type) {
	case *rsa.PublicKey:
		j.N = b64url(pub.N.Bytes())
		j.E = b64url(big.NewInt(int64(pub.E)).Bytes())
	case *ecdsa.PublicKey:
		size := (pub.Curve.Params().BitSize + 7) / 8
		x, y := make([]byte, size), make([]byte, size)
		pub.X.FillBytes(x)
		pub.Y.FillBytes(y)
		j.Crv, j.X, j.Y = curveName(pub.Curve), b64url(x), b64url(y)
	}
	return keyBundle{Key: j, Attributes: v.keyAttributes(k), Tags: cloneTags(k.tags), Managed: k.managed}
}

func cloneTags(t map[string]string) map[string]string {
	if len(t) == 0 {
		return nil
	}
	out := make(map[string]string, len(t))
	for k, v := range t {
		out[k] = v
	}
	return out
}

// createKeyParams is the body of POST /keys/{name}/create.
type createKeyParams struct {
	Kty            string            `json:"kty"`
	KeySize        *int              `json:"key_size"`
	Curve          string            `json:"crv"`
	KeyOps         []string          `json:"key_ops"`
	PublicExponent *int              `json:"public_exponent"`
	Attributes     *attributesInput  `json:"attributes"`
	Tags           map[string]string `json:"tags"`
	ReleasePolicy  any               `json:"release_policy"`
}

// attributesInput is the attributes object of create and update requests.
type attributesInput struct {
	Enabled    *bool  `json:"enabled"`
	NotBefore  *int64 `json:"nbf"`
	Expires    *int64 `json:"exp"`
	Exportable *bool  `json:"exportable"`
}

// enabledOr is the enabled attribute a request gave, or def.
func (a *attributesInput) enabledOr(def bool) bool {
	if a == nil || a.Enabled == nil {
		return def
	}
	return *a.Enabled
}

var validKeyOps = []string{"encrypt", "decrypt", "sign", "verify", "wrapKey", "unwrapKey", "import", "export"}

func checkKeyOps(ops []string) *apiError {
	for _, op := range ops {
		if !slices.Contains(validKeyOps, op) {
			return badParameter("Invalid key operation: '%s'.", op)
		}
	}
	return nil
}

func checkTags(tags map[string]string) *apiError {
	if len(tags) > 15 {
		return badParameter("The number of tags exceeds the maximum of 15.")
	}
	for k, val := range tags {
		if len(k) > 512 || len(val) > 256 {
			return badParameter("Tag names are limited to 512 and tag values to 256 characters.")
		}
	}
	return nil
}

// normalizeKty maps the requested key type to the stored one (Managed HSM
// keys are always HSM keys) and checks it.
func (v *Vault) normalizeKty(kty string) (string, *apiError) {
	switch kty {
	case "RSA", "RSA-HSM", "EC", "EC-HSM":
	case "":
		return "", badParameter("The parameter 'kty' is required.")
	case "oct", "oct-HSM":
		return "", badParameter("Key type %s is not supported by the kvassert emulator.", kty)
	default:
		return "", badParameter("Invalid key type: '%s'.", kty)
	}
	if v.hsm && !strings.HasSuffix(kty, "-HSM") {
		kty += "-HSM"
	}
	return kty, nil
}

// generateKey makes a new private key for kty/size/curve.
func generateKey(kty string, size *int, curve string) (crypto.Signer, *apiError) {
	if strings.HasPrefix(kty, "RSA") {
		bits := 2048
		if size != nil {
			bits = *size
		}
		if bits != 2048 && bits != 3072 && bits != 4096 {
			return nil, badParameter("The RSA key size %d is not supported; use 2048, 3072 or 4096.", bits)
		}
		if curve != "" {
			return nil, badParameter("The parameter 'crv' is not valid for a key of type %s.", kty)
		}
		k, err := rsa.GenerateKey(rand.Reader, bits)
		if err != nil {
			return nil, errf(http.StatusInternalServerError, "InternalServerError", "Key generation failed.")
		}
		return k, nil
	}
	if curve == "" {
		curve = "P-256"
	}
	c, ok := curveByName(curve)
	if !ok {
		if curve == "P-256K" {
			return nil, badParameter("Curve P-256K (secp256k1) is not supported by the kvassert emulator.")
		}
		return nil, badParameter("Invalid curve: '%s'.", curve)
	}
	if size != nil && *size != c.Params().BitSize {
		return nil, badParameter("The key size %d does not match curve %s.", *size, curve)
	}
	k, err := ecdsa.GenerateKey(c, rand.Reader)
	if err != nil {
		return nil, errf(http.StatusInternalServerError, "InternalServerError", "Key generation failed.")
	}
	return k, nil
}

func defaultKeyOps(kty string) []string {
	if strings.HasPrefix(kty, "EC") {
		return []string{"sign", "verify"}
	}
	return []string{"encrypt", "decrypt", "sign", "verify", "wrapKey", "unwrapKey"}
}

// createKey generates and stores a new key version.
func (v *Vault) createKey(name string, p createKeyParams) (*keyVersion, *apiError) {
	if e := checkName(name); e != nil {
		return nil, e
	}
	kty, e := v.normalizeKty(p.Kty)
	if e != nil {
		return nil, e
	}
	if p.PublicExponent != nil && *p.PublicExponent != 65537 {
		return nil, badParameter("Only the public exponent 65537 is supported by the kvassert emulator.")
	}
	if e := checkKeyOps(p.KeyOps); e != nil {
		return nil, e
	}
	if e := checkTags(p.Tags); e != nil {
		return nil, e
	}
	if p.Attributes != nil && p.Attributes.Exportable != nil && *p.Attributes.Exportable && p.ReleasePolicy == nil {
		return nil, badParameter("Exportable keys must have release policy")
	}
	if p.ReleasePolicy != nil {
		return nil, badParameter("Key release policies are not supported by the kvassert emulator.")
	}
	priv, e := generateKey(kty, p.KeySize, p.Curve)
	if e != nil {
		return nil, e
	}
	ops := p.KeyOps
	if ops == nil {
		ops = defaultKeyOps(kty)
	}
	kv := &keyVersion{name: name, kty: kty, priv: priv, keyOps: slices.Clone(ops), tags: cloneTags(p.Tags)}
	kv.attrs = v.newAttributes(p.Attributes)
	v.mu.Lock()
	defer v.mu.Unlock()
	if c := v.certs[strings.ToLower(name)]; c != nil && len(c.versions) > 0 {
		return nil, errf(http.StatusConflict, "Conflict", "Key %s is managed by certificate %s and cannot be created directly.", name, c.name)
	}
	v.addKeyVersion(kv)
	return kv, nil
}

// newAttributes builds the attributes of a new version.
func (v *Vault) newAttributes(in *attributesInput) attributes {
	now := v.now().Unix()
	a := attributes{enabled: true, created: now, updated: now}
	if in != nil {
		if in.Enabled != nil {
			a.enabled = *in.Enabled
		}
		a.notBefore, a.expir = in.NotBefore, in.Expires
	}
	return a
}

// addKeyVersion stores a version as the latest; call with v.mu held.
func (v *Vault) addKeyVersion(kv *keyVersion) {
	item := itemFor(v.keys, kv.name, func() *keyItem { return &keyItem{name: kv.name} })
	kv.name = item.name // IDs keep the case of the first version
	if kv.version == "" {
		kv.version = newVersion()
	}
	item.versions = append(item.versions, kv)
}

func (v *Vault) handleCreateKey(name string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var p createKeyParams
		if !v.readBody(w, r, &p) {
			return
		}
		kv, e := v.createKey(name, p)
		if e != nil {
			v.writeError(w, e)
			return
		}
		v.mu.RLock()
		b := v.bundle(kv)
		v.mu.RUnlock()
		v.writeJSON(w, http.StatusOK, b)
	}
}

func (v *Vault) getKey(name, version string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		respond(v, w, func() (keyBundle, *apiError) {
			kv, e := v.findKey(name, version)
			if e != nil {
				return keyBundle{}, e
			}
			return v.bundle(kv), nil
		})
	}
}

type listResult[T any] struct {
	Value    []T     `json:"value"`
	NextLink *string `json:"nextLink"`
}

func (v *Vault) listKeys(w http.ResponseWriter, r *http.Request) {
	v.mu.RLock()
	out := listResult[keyItemJSON]{Value: []keyItemJSON{}}
	for _, k := range v.keys {
		if len(k.versions) == 0 {
			continue
		}
		kv := k.versions[len(k.versions)-1]
		out.Value = append(out.Value, keyItemJSON{Kid: v.cfg.BaseURL + "/keys/" + k.name, Attributes: v.keyAttributes(kv), Tags: cloneTags(kv.tags), Managed: kv.managed})
	}
	v.mu.RUnlock()
	sort.Slice(out.Value, func(i, j int) bool { return out.Value[i].Kid < out.Value[j].Kid })
	v.writeJSON(w, http.StatusOK, out)
}

func (v *Vault) listKeyVersions(name string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		v.mu.RLock()
		out := listResult[keyItemJSON]{Value: []keyItemJSON{}}
		if k := v.keys[strings.ToLower(name)]; k != nil {
			for _, kv := range k.versions {
				out.Value = append(out.Value, keyItemJSON{Kid: v.kid(kv), Attributes: v.keyAttributes(kv), Tags: cloneTags(kv.tags), Managed: kv.managed})
			}
		}
		v.mu.RUnlock()
		v.writeJSON(w, http.StatusOK, out)
	}
}

// updateKeyParams is the body of PATCH /keys/{name}/{version}.
type updateKeyParams struct {
	KeyOps     []string          `json:"key_ops"`
	Attributes *attributesInput  `json:"attributes"`
	Tags       map[string]string `json:"tags"`
}

func (v *Vault) updateKey(name, version string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var p updateKeyParams
		keyOps := func() *apiError { return checkKeyOps(p.KeyOps) }
		if !v.readBody(w, r, &p, keyOps, tagCheck(&p.Tags)) {
			return
		}
		v.mu.Lock()
		kv, e := v.findKey(name, version)
		if e == nil && kv.managed {
			e = errf(http.StatusForbidden, "Forbidden", "Operation update is not allowed on a key that is managed by a certificate; update the certificate %s instead.", kv.name)
		}
		if e != nil {
			v.mu.Unlock()
			v.writeError(w, e)
			return
		}
		if p.KeyOps != nil {
			kv.keyOps = slices.Clone(p.KeyOps)
		}
		if a := p.Attributes; a != nil {
			if a.Enabled != nil {
				kv.attrs.enabled = *a.Enabled
			}
			if a.NotBefore != nil {
				kv.attrs.notBefore = a.NotBefore
			}
			if a.Expires != nil {
				kv.attrs.expir = a.Expires
			}
		}
		if p.Tags != nil {
			kv.tags = cloneTags(p.Tags)
		}
		kv.attrs.updated = v.now().Unix()
		b := v.bundle(kv)
		v.mu.Unlock()
		v.writeJSON(w, http.StatusOK, b)
	}
}

// importKeyParams is the body of PUT /keys/{name}.
type importKeyParams struct {
	Key        *jwkInput         `json:"key"`
	HSM        *bool             `json:"Hsm"`
	Attributes *attributesInput  `json:"attributes"`
	Tags       map[string]string `json:"tags"`
}

// jwkInput is a JSON Web Key with private parts, as import sends it.
type jwkInput struct {
	Kty    string   `json:"kty"`
	KeyOps []string `json:"key_ops"`
	Crv    string   `json:"crv"`
	N, E   string
	D      string `json:"d"`
	P, Q   string
	DP     string `json:"dp"`
	DQ     string `json:"dq"`
	QI     string `json:"qi"`
	X, Y   string
}

func (v *Vault) importKey(name string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var p importKeyParams
		if !v.readBody(w, r, &p) {
			return
		}
		if p.Key == nil {
			v.writeError(w, badParameter("The parameter 'key' is required."))
			return
		}
		kty := p.Key.Kty
		if p.HSM != nil && *p.HSM && !strings.HasSuffix(kty, "-HSM") {
			kty += "-HSM"
		}
		kty, e := v.normalizeKty(kty)
		if e == nil {
			e = checkKeyOps(p.Key.KeyOps)
		}
		if e == nil {
			e = checkTags(p.Tags)
		}
		var priv crypto.Signer
		if e == nil {
			priv, e = p.Key.privateKey()
		}
		if e != nil {
			v.writeError(w, e)
			return
		}
		ops := p.Key.KeyOps
		if ops == nil {
			ops = defaultKeyOps(kty)
		}
		kv := &keyVersion{name: name, kty: kty, priv: priv, keyOps: slices.Clone(ops), tags: cloneTags(p.Tags), attrs: v.newAttributes(p.Attributes)}
		v.mu.Lock()
		if c := v.certs[strings.ToLower(name)]; c != nil && len(c.versions) > 0 {
			v.mu.Unlock()
			v.writeError(w, errf(http.StatusConflict, "Conflict", "Key %s is managed by certificate %s and cannot be imported directly.", name, c.name))
			return
		}
		v.addKeyVersion(kv)
		b := v.bundle(kv)
		v.mu.Unlock()
		v.writeJSON(w, http.StatusOK, b)
	}
}

func (j *jwkInput) privateKey() (crypto.Signer, *apiError) {
	dec := func(field, s string) (*big.Int, *apiError) {
		b, err := decodeB64URL(s)
		if err != nil || len(b) == 0 {
			return nil, badParameter("JSON Web Key: the '%s' property is missing or not base64url.", field)
		}
		return new(big.Int).SetBytes(b), nil
	}
	switch strings.TrimSuffix(j.Kty, "-HSM") {
	case "RSA":
		n, e1 := dec("n", j.N)
		e, e2 := dec("e", j.E)
		d, e3 := dec("d", j.D)
		p, e4 := dec("p", j.P)
		q, e5 := dec("q", j.Q)
		for _, e := range []*apiError{e1, e2, e3, e4, e5} {
			if e != nil {
				return nil, e
			}
		}
		if !e.IsInt64() || e.Int64() > 1<<31-1 {
			return nil, badParameter("JSON Web Key: the public exponent is invalid.")
		}
		k := &rsa.PrivateKey{PublicKey: rsa.PublicKey{N: n, E: int(e.Int64())}, D: d, Primes: []*big.Int{p, q}}
		if bits := n.BitLen(); bits != 2048 && bits != 3072 && bits != 4096 {
			return nil, badParameter("The RSA key size %d is not supported; use 2048, 3072 or 4096.", bits)
		}
		if err := k.Validate(); err != nil {
			return nil, badParameter("JSON Web Key: the RSA key is invalid.")
		}
		k.Precompute()
		return k, nil
	case "EC":
		c, ok := curveByName(j.Crv)
		if !ok {
			return nil, badParameter("Invalid curve: '%s'.", j.Crv)
		}
		d, e := dec("d", j.D)
		if e != nil {
			return nil, e
		}
		size := (c.Params().BitSize + 7) / 8
		if d.Sign() <= 0 || d.Cmp(c.Params().N) >= 0 {
			return nil, badParameter("JSON Web Key: the EC private key is invalid.")
		}
		k, err := ecdsa.ParseRawPrivateKey(c, d.FillBytes(make([]byte, size)))
		if err != nil {
			return nil, badParameter("JSON Web Key: the EC private key is invalid.")
		}
		if j.X != "" || j.Y != "" {
			x, e1 := dec("x", j.X)
			y, e2 := dec("y", j.Y)
			if e1 != nil || e2 != nil || x.Cmp(k.X) != 0 || y.Cmp(k.Y) != 0 {
				return nil, badParameter("JSON Web Key: the public key does not match the private key.")
			}
		}
		return k, nil
	}
	return nil, badParameter("Invalid key type: '%s'.", j.Kty)
}
