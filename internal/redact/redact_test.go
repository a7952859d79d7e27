package redact_test

import (
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/kvassert/kvassert/internal/redact"
)

const jwt = "eyJhbGciOiJQUzI1NiIsInR5cCI6IkpXVCJ9.eyJhdWQiOiJodHRwczovL2dyYXBoIn0.c2lnbmF0dXJlLWJ5dGVzLWhlcmU"

func TestBytes(t *testing.T) {
	key, err := rsa.GenerateKey(rand.Reader, 1024) //nolint:gosec // test key, never used to sign
	if err != nil {
		t.Fatal(err)
	}
	pkcs8, _ := x509.MarshalPKCS8PrivateKey(key)
	pemKey := string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pkcs8}))
	rsaKey := string(pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)}))
	cert := "-----BEGIN CERTIFICATE-----\nMIIBszCCAV2gAwIBAgIU\n-----END CERTIFICATE-----\n"

	for _, tc := range []struct {
		name, in, want string
		gone           []string
	}{
		{"jwt alone", jwt, redact.Token, []string{"eyJhbGci"}},
		{"jwt in a message", `error: token "` + jwt + `" rejected`, `error: token "` + redact.Token + `" rejected`, nil},
		{"two jwts", jwt + " " + jwt, redact.Token + " " + redact.Token, nil},
		{"bearer jwt", "Authorization: Bearer " + jwt, "Authorization: Bearer " + redact.Token, nil},
		{"bearer opaque", "authorization: bearer abcdEFGH1234.~+/-xyz==", "authorization: bearer " + redact.Token, []string{"abcdEFGH"}},
		{"pkcs8 key", "key:\n" + pemKey + "end", "key:\n" + redact.PrivateKey + "\nend", []string{"MII"}},
		{"pkcs1 key", rsaKey, redact.PrivateKey + "\n", []string{"MII"}},
		{"truncated key", "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBg", redact.PrivateKey, []string{"MIIE"}},
		{"certificate kept", cert, cert, nil},
		{"plain text kept", "the bearer of bad news; eyJ is not a token", "the bearer of bad news; eyJ is not a token", nil},
		{"short dotted text kept", "eyJhbGci.eyJ.abc", "eyJhbGci.eyJ.abc", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := redact.String(tc.in)
			if got != tc.want {
				t.Errorf("String(%q)\n got %q\nwant %q", tc.in, got, tc.want)
			}
			for _, g := range tc.gone {
				if strings.Contains(got, g) {
					t.Errorf("%q still in %q", g, got)
				}
			}
		})
	}
}

func TestWriterSecrets(t *testing.T) {
	var buf bytes.Buffer
	w := redact.NewWriter(&buf)
	w.AddSecret("hunter2!pfx-password")
	w.AddSecret("short") // ignored: would redact ordinary words
	n, err := fmt.Fprintln(w, "opening with hunter2!pfx-password failed; short answer; "+jwt)
	if err != nil {
		t.Fatal(err)
	}
	line := "opening with hunter2!pfx-password failed; short answer; " + jwt + "\n"
	if n != len(line) {
		t.Errorf("Write reported %d bytes, want len(p) = %d", n, len(line))
	}
	want := "opening with " + redact.Secret + " failed; short answer; " + redact.Token + "\n"
	if buf.String() != want {
		t.Errorf("got %q, want %q", buf.String(), want)
	}
}

type failingWriter struct{}

func (failingWriter) Write([]byte) (int, error) { return 0, errors.New("closed") }

func TestWriterError(t *testing.T) {
	w := redact.NewWriter(failingWriter{})
	if n, err := w.Write([]byte("x")); err == nil || n != 0 {
		t.Errorf("Write = %d, %v; want 0 and the underlying error", n, err)
	}
}

func TestWriterConcurrent(t *testing.T) {
	var buf bytes.Buffer
	w := redact.NewWriter(&buf)
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			w.AddSecret(fmt.Sprintf("secret-value-%d", i))
			fmt.Fprintf(w, "secret-value-%d\n", i)
		}()
	}
	wg.Wait()
	if strings.Contains(buf.String(), "secret-value") {
		t.Errorf("a registered secret got through: %q", buf.String())
	}
	if got := strings.Count(buf.String(), redact.Secret+"\n"); got != 8 {
		t.Errorf("%d redacted lines, want 8: %q", got, buf.String())
	}
}

func TestWriterString(t *testing.T) {
	var buf bytes.Buffer
	w := redact.NewWriter(&buf)
	w.AddSecret("s3cr3t-value-1")
	got := w.String(`a "s3cr3t-value-1" and Bearer abcdefghijkl`)
	if strings.Contains(got, "s3cr3t") || strings.Contains(got, "abcdefghijkl") || buf.Len() != 0 {
		t.Errorf("String = %q (wrote %d bytes)", got, buf.Len())
	}
}
