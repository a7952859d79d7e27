package kvassert_test

import (
	"context"
	"errors"
	"io/fs"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/kvassert/kvassert"
	"github.com/kvassert/kvassert/internal/certfile"
	"github.com/kvassert/kvassert/internal/jwtassert"
	"github.com/kvassert/kvassert/internal/kvid"
)

// TestInputErrors: every input check of the library returns an
// *InputError naming the input, whose Reason has no package prefix and
// whose Error is "package: reason", so the CLI and the proxy format them by
// type, never by their wording.
func TestInputErrors(t *testing.T) {
	certPEM, _, _ := localCertificate(t)
	for _, tc := range []struct {
		pkg, input string
		err        error
	}{
		{"keyvault", "vault URL", errOf(kvid.ParseVaultURL("http://myvault.vault.azure.net/"))},
		{"keyvault", "vault URL", errOf(kvid.ParseVaultURL("https://example.com/"))},
		{"keyvault", "vault name", errOf(kvid.ParseVaultURL("https://a--b.vault.azure.net/"))},
		{"keyvault", "vault name", kvid.CheckVaultName("1abc")},
		{"keyvault", "key ID", errOf(kvid.ParseKeyID("https://myvault.vault.azure.net/secrets/x"))},
		{"keyvault", "name", kvid.CheckName("bad_name")},
		{"assertion", "thumbprint", errOf(jwtassert.ParseThumbprint("xyz"))},
		{"assertion", "algorithm", errOf(jwtassert.ParseAlgorithm("HS256"))},
		{"assertion", "JWT", errOf(jwtassert.Parse("a.b"))},
		{"kvassert", "certificate data", errOf2(kvassert.ParseCertificateData([]byte("junk"), nil))},
		{"kvassert", "certificate data", errOf2(kvassert.ParseCertificateData(certPEM, nil))},
		{"kvassert", "tenant", errOf(kvassert.NewCredential("bad/tenant", "00000000-0000-0000-0000-000000000001", nopSource{}, nil))},
	} {
		var ie *kvassert.InputError
		if !errors.As(tc.err, &ie) {
			t.Errorf("%s %s: %T %v is not an *InputError", tc.pkg, tc.input, tc.err, tc.err)
			continue
		}
		if ie.Package != tc.pkg || ie.Input != tc.input {
			t.Errorf("%v: Package %q Input %q, want %q %q", ie, ie.Package, ie.Input, tc.pkg, tc.input)
		}
		if ie.Reason == "" || strings.HasPrefix(ie.Reason, ie.Package+":") || ie.Error() != tc.pkg+": "+ie.Reason {
			t.Errorf("%s: Reason %q, Error %q", tc.input, ie.Reason, ie.Error())
		}
	}
}

// TestNoPrivateKey: a certificate without its key is recognisable by
// errors.Is (the proxy and the CLI add "give the key file" to it).
func TestNoPrivateKey(t *testing.T) {
	certPEM, keyPEM, _ := localCertificate(t)
	if _, _, err := kvassert.ParseCertificateData(certPEM, nil); !errors.Is(err, certfile.ErrNoPrivateKey) {
		t.Errorf("certificate alone: %v, want ErrNoPrivateKey", err)
	}
	if _, _, err := kvassert.ParseCertificateData(append(certPEM, keyPEM...), nil); err != nil {
		t.Errorf("certificate and key: %v", err)
	}
	dir := t.TempDir()
	cert := filepath.Join(dir, "cert.pem")
	writeFile(t, cert, certPEM)
	if _, _, err := certfile.Load(cert, "", nil); !errors.Is(err, certfile.ErrNoPrivateKey) {
		t.Errorf("LoadCertificateFiles(cert only): %v, want ErrNoPrivateKey", err)
	}
	var pe *fs.PathError
	if _, _, err := certfile.Load(dir, "", nil); !errors.As(err, &pe) || pe.Path != dir {
		t.Errorf("LoadCertificateFiles(directory): %v, want an *fs.PathError for %s", err, dir)
	}
}

type nopSource struct{}

func (nopSource) Assertion(context.Context, string, string) (string, error) { return "", nil }

func errOf[T any](_ T, err error) error { return err }

func errOf2[A, B any](_ A, _ B, err error) error { return err }

// TestInputErrorQuotesValidUTF8: a long value is cut at a character
// boundary, never inside a UTF-8 sequence (which %q shows as a \x escape).
func TestInputErrorQuotesValidUTF8(t *testing.T) {
	long := "a" + strings.Repeat("é", 60)
	for _, err := range []error{kvid.CheckName(long), errOf(jwtassert.ParseThumbprint(long)), errOf(jwtassert.ParseAlgorithm(long))} {
		if err == nil || !utf8.ValidString(err.Error()) || strings.Contains(err.Error(), `\x`) {
			t.Errorf("%v quotes a cut UTF-8 sequence", err)
		}
	}
}
