package vault

import (
	"crypto"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"net/http"
	"strings"

	"github.com/kvassert/kvassert/kvasserttest/internal/emu"
)

// secretVersion is the secret backing one certificate version. Mutable
// fields are guarded by Vault.mu.
type secretVersion struct {
	name, version string
	contentType   string
	value         string
	kid           string
	attrs         attributes
	tags          map[string]string
	managed       bool
}

type secretItem struct {
	name     string
	versions []*secretVersion // oldest first
}

// secretValue encodes a certificate's secret. The private key is part of it
// only for an exportable policy: for a non-exportable one the service
// returns the certificate alone ("the private key isn't part of the value
// when it's retrieved as a secret", Key Vault documentation).
func secretValue(contentType string, der []byte, priv crypto.Signer, exportable bool) (string, error) {
	if !exportable {
		priv = nil
	}
	if contentType == contentPEM {
		var b strings.Builder
		if priv != nil {
			pkcs8, err := x509.MarshalPKCS8PrivateKey(priv)
			if err != nil {
				return "", err
			}
			b.Write(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pkcs8}))
		}
		b.Write(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
		return b.String(), nil
	}
	pfx, err := encodePKCS12(der, priv)
	if err != nil {
		return "", err
	}
	return base64.StdEncoding.EncodeToString(pfx), nil
}

// addSecretVersion stores a version as the latest; call with v.mu held.
func (v *Vault) addSecretVersion(sv *secretVersion) {
	item := itemFor(v.secrets, sv.name, func() *secretItem { return &secretItem{name: sv.name} })
	sv.name = item.name
	item.versions = append(item.versions, sv)
}

// secretRoute resolves /secrets/... (segs without "secrets").
func (v *Vault) secretRoute(method string, segs []string) (route, *apiError) {
	if len(segs) == 0 || segs[0] == "" || len(segs) > 2 || method != http.MethodGet {
		return route{}, methodNotAllowed(method, "/secrets/"+strings.Join(segs, "/"))
	}
	name, version := segs[0], ""
	if len(segs) == 2 {
		version = segs[1]
	}
	if e := checkName(name); e != nil {
		return route{}, e
	}
	if version == "versions" {
		return route{}, methodNotAllowed(method, "/secrets/"+name+"/versions")
	}
	return route{emu.OpSecretGet, "secrets/get", "secrets/" + name, v.getSecret(name, version)}, nil
}

// attributesJSON are the attributes of a secret version, and the first of
// a key version's.
type attributesJSON struct {
	Enabled         bool   `json:"enabled"`
	NotBefore       *int64 `json:"nbf,omitempty"`
	Expires         *int64 `json:"exp,omitempty"`
	Created         int64  `json:"created"`
	Updated         int64  `json:"updated"`
	RecoveryLevel   string `json:"recoveryLevel"`
	RecoverableDays int    `json:"recoverableDays"`
}

func attributesJSONOf(a attributes) attributesJSON {
	return attributesJSON{
		Enabled: a.enabled, NotBefore: a.notBefore, Expires: a.expir,
		Created: a.created, Updated: a.updated,
		RecoveryLevel: recoveryLevel, RecoverableDays: recoverableDays,
	}
}

type secretBundle struct {
	Value       string            `json:"value"`
	ContentType string            `json:"contentType,omitempty"`
	ID          string            `json:"id"`
	Managed     bool              `json:"managed,omitempty"`
	Attributes  attributesJSON    `json:"attributes"`
	Kid         string            `json:"kid,omitempty"`
	Tags        map[string]string `json:"tags,omitempty"`
}

func (v *Vault) getSecret(name, version string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		respond(v, w, func() (secretBundle, *apiError) {
			sv, e := v.findSecret(name, version)
			if e == nil && !sv.attrs.enabled {
				e = errf(http.StatusForbidden, "Forbidden", "Operation get is not allowed on a disabled secret.")
			}
			if e != nil {
				return secretBundle{}, e
			}
			return secretBundle{
				Value: sv.value, ContentType: sv.contentType, ID: v.cfg.BaseURL + "/secrets/" + sv.name + "/" + sv.version,
				Managed: sv.managed, Kid: sv.kid, Tags: cloneTags(sv.tags),
				Attributes: attributesJSONOf(sv.attrs),
			}, nil
		})
	}
}

// findSecret returns a version (latest for ""); call with v.mu held.
func (v *Vault) findSecret(name, version string) (*secretVersion, *apiError) {
	if item := v.secrets[strings.ToLower(name)]; item != nil {
		return pickVersion(item.versions, name, version, secretNotFound)
	}
	return nil, secretNotFound(name)
}
