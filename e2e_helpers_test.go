package kvassert_test

import (
	"crypto/x509"
	"os"
	"testing"

	"github.com/kvassert/kvassert/internal/testcert"
)

func localCertificate(t testing.TB) (certPEM, keyPEM []byte, cert *x509.Certificate) {
	t.Helper()
	c := testcert.New(t, &testcert.Options{Serial: 99, CommonName: "local dev"})
	return c.CertPEM(), c.KeyPEM(t), c.Cert
}

func writeFile(t testing.TB, path string, data []byte) {
	t.Helper()
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
}
