// Package redact removes credentials from text on its way to a terminal or
// a log: compact JWTs (access tokens, client assertions), the credential of
// an "Authorization: Bearer ..." value, PEM private keys, and values
// registered as secret (a PKCS#12 password, the proxy's API secret).
//
// It is the last line of defence of the CLI's stderr: code must still never
// format a secret into a message. Redaction works on whole writes; the CLI
// writes whole lines (fmt.Fprintln, slog), so a secret is never split
// across two writes.
package redact

import (
	"bytes"
	"io"
	"regexp"
	"sync"
)

// MinSecretLen is the length under which AddSecret ignores a value: shorter
// values would redact ordinary words.
const MinSecretLen = 8

// Replacement texts.
const (
	Token      = "[redacted token]"
	PrivateKey = "[redacted private key]"
	Secret     = "[redacted]"
)

var (
	// jwtRE matches a compact JWS (a token or an assertion).
	jwtRE = regexp.MustCompile(`eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}`)
	// bearerRE matches the credential after "Bearer " (RFC 6750 b64token).
	bearerRE = regexp.MustCompile(`(?i)(\bbearer\s+)[A-Za-z0-9._~+/-]{8,}=*`)
	// pemKeyRE matches a PEM private key block (any key type, encrypted or not).
	pemKeyRE = regexp.MustCompile(`(?s)-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----.*?(-----END [A-Z0-9 ]*PRIVATE KEY-----|$)`)
)

// Bytes returns p with JWTs, bearer credentials and PEM private keys
// replaced. It allocates only when something is replaced.
func Bytes(p []byte) []byte {
	if bytes.Contains(p, []byte("eyJ")) {
		p = jwtRE.ReplaceAllLiteral(p, []byte(Token))
	}
	if bytes.Contains(p, []byte("PRIVATE KEY-----")) {
		p = pemKeyRE.ReplaceAllLiteral(p, []byte(PrivateKey))
	}
	if bytes.Contains(bytes.ToLower(p), []byte("bearer")) {
		p = bearerRE.ReplaceAll(p, []byte("${1}"+Token))
	}
	return p
}

// String is Bytes for a string.
func String(s string) string { return string(Bytes([]byte(s))) }

// Writer is an io.Writer that redacts what it forwards: everything Bytes
// redacts, and the values registered with AddSecret. It is safe for
// concurrent use.
type Writer struct {
	w       io.Writer
	mu      sync.Mutex
	secrets [][]byte
}

// NewWriter returns a Writer that forwards to w.
func NewWriter(w io.Writer) *Writer { return &Writer{w: w} }

// AddSecret registers a value that must never reach the writer. Values
// shorter than MinSecretLen are ignored.
func (r *Writer) AddSecret(s string) {
	if len(s) < MinSecretLen {
		return
	}
	r.mu.Lock()
	r.secrets = append(r.secrets, []byte(s))
	r.mu.Unlock()
}

// String returns s with everything Write would redact replaced: for text
// that is formatted (quoted, escaped) after redaction, where a registered
// secret would no longer match byte for byte.
func (r *Writer) String(s string) string {
	out := Bytes([]byte(s))
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, sec := range r.secrets {
		out = bytes.ReplaceAll(out, sec, []byte(Secret))
	}
	return string(out)
}

// Write forwards p redacted. It reports len(p) on success, whatever the
// length of the redacted text.
func (r *Writer) Write(p []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := Bytes(p)
	for _, s := range r.secrets {
		out = bytes.ReplaceAll(out, s, []byte(Secret))
	}
	if _, err := r.w.Write(out); err != nil {
		return 0, err
	}
	return len(p), nil
}
