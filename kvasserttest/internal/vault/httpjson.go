package vault

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
)

var rawURL = base64.RawURLEncoding

// decodeB64URL decodes base64url with or without padding.
func decodeB64URL(s string) ([]byte, error) {
	return rawURL.DecodeString(strings.TrimRight(s, "="))
}

// readBody decodes a request body into dst and runs checks over it, in
// order; it writes the first error and returns false.
func (v *Vault) readBody(w http.ResponseWriter, r *http.Request, dst any, checks ...func() *apiError) bool {
	e := readJSON(r, dst)
	for _, check := range checks {
		if e != nil {
			break
		}
		e = check()
	}
	if e != nil {
		v.writeError(w, e)
		return false
	}
	return true
}

// tagCheck checks the tags a request body held (tags points into it).
func tagCheck(tags *map[string]string) func() *apiError {
	return func() *apiError { return checkTags(*tags) }
}

// readJSON decodes a request body (capped by ServeHTTP) into dst.
func readJSON(r *http.Request, dst any) *apiError {
	data, err := io.ReadAll(r.Body)
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return errf(http.StatusRequestEntityTooLarge, "BadParameter", "The request body is larger than the limit of %d bytes.", maxBody)
		}
		return badParameter("The request body could not be read.")
	}
	if len(strings.TrimSpace(string(data))) == 0 {
		return badParameter("The request body is required.")
	}
	if err := json.Unmarshal(data, dst); err != nil {
		return badParameter("Bad JSON content found in the request.")
	}
	return nil
}

// versioned is a key, secret or certificate version.
type versioned interface{ versionID() string }

func (kv *keyVersion) versionID() string    { return kv.version }
func (sv *secretVersion) versionID() string { return sv.version }
func (cv *certVersion) versionID() string   { return cv.version }

// pickVersion returns the version of an item's versions named version (the
// latest for ""), or notFound's error for name or name/version.
func pickVersion[T versioned](versions []T, name, version string, notFound func(string) *apiError) (T, *apiError) {
	var none T
	if len(versions) == 0 {
		return none, notFound(name)
	}
	if version == "" {
		return versions[len(versions)-1], nil
	}
	for _, x := range versions {
		if x.versionID() == strings.ToLower(version) {
			return x, nil
		}
	}
	return none, notFound(name + "/" + version)
}

// respond writes what read gives, read under v.mu's read lock, or its
// error.
func respond[T any](v *Vault, w http.ResponseWriter, read func() (T, *apiError)) {
	v.mu.RLock()
	body, e := read()
	v.mu.RUnlock()
	if e != nil {
		v.writeError(w, e)
		return
	}
	v.writeJSON(w, http.StatusOK, body)
}
