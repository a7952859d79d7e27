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
