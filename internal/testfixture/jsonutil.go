package testfixture

import (
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
)

// DecodeJWT decodes a JWT's payload into v (no verification; tests check
// tokens the emulator issued). It fails the test on a malformed token.
func DecodeJWT(tb testing.TB, tok string, v any) {
	tb.Helper()
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		tb.Fatalf("token has %d parts", len(parts))
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		tb.Fatal(err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		tb.Fatal(err)
	}
}

// RewriteJSON replaces resp's JSON object body with what edit makes of it
// (for azcore policies that make the emulator answer as a faulty service).
func RewriteJSON(resp *http.Response, edit func(map[string]any)) (*http.Response, error) {
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, err
	}
	edit(m)
	b, _ = json.Marshal(m)
	resp.Body = io.NopCloser(strings.NewReader(string(b)))
	resp.ContentLength = int64(len(b))
	resp.Header.Del("Content-Length")
	return resp, nil
}
