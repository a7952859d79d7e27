// Package certfile reads a certificate and its private key from files or
// memory, for kvassert.ParseCertificateData, the CLI and the proxy.
package certfile

import (
	"crypto"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"

	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"

	"github.com/kvassert/kvassert/internal/inputerr"
)

// ErrNoPrivateKey is wrapped by the errors of Parse and Load when the data
// holds a certificate but no usable private key (the key is usually in a
// separate file).
var ErrNoPrivateKey = errors.New("kvassert: no private key")

func inputErr(input, format string, args ...any) error {
	return inputerr.New("kvassert", input, format, args...)
}

// maxCredentialFile bounds certificate and key files read from disk.
const maxCredentialFile = 1 << 20

// Load reads a certificate and its private key for
// kvassert.NewLocalSource. certFile is PEM (certificate, optionally with the key) or
// PKCS#12 (.pfx/.p12, opened with password); keyFile, when not empty, is a
// PEM private key (PKCS#1 or PKCS#8). Parsing is azidentity.ParseCertificates,
// so the formats are exactly those azidentity accepts. A file that cannot be
// read gives an *fs.PathError, data that cannot be parsed an *InputError
// (wrapping ErrNoPrivateKey when the key is missing).
func Load(certFile, keyFile string, password []byte) (*x509.Certificate, crypto.Signer, error) {
	data, err := readBounded(certFile)
	if err != nil {
		return nil, nil, err
	}
	if keyFile != "" {
		key, err := readBounded(keyFile)
		if err != nil {
			return nil, nil, err
		}
		data = append(append(data, '\n'), key...)
	}
	cert, signer, err := Parse(data, password)
	if err != nil {
		return nil, nil, fmt.Errorf("kvassert: reading %s: %w", certFile, err)
	}
	return cert, signer, nil
}

// Parse parses a certificate and its private key from memory:
// PEM (certificate and key, in any order) or PKCS#12 opened with password,
// as azidentity.ParseCertificates accepts them. It returns the certificate
// whose public key matches the private key. Its errors are *InputError;
// errors.Is(err, ErrNoPrivateKey) when data holds no usable private key.
func Parse(data, password []byte) (*x509.Certificate, crypto.Signer, error) {
	if len(data) == 0 {
		return nil, nil, inputErr("certificate data", "no certificate data")
	}
	if len(data) > maxCredentialFile {
		return nil, nil, inputErr("certificate data", "certificate data is %d bytes; more than the %d accepted", len(data), maxCredentialFile)
	}
	if pemWithoutKey(data) {
		return nil, nil, &inputerr.Error{Package: "kvassert", Input: "certificate data", Reason: "the certificate data (PEM) holds no private key", Err: ErrNoPrivateKey}
	}
	certs, key, err := azidentity.ParseCertificates(data, password)
	if err != nil {
		return nil, nil, &inputerr.Error{Package: "kvassert", Input: "certificate data", Reason: "certificate data: " + err.Error(), Err: err}
	}
	signer, ok := key.(crypto.Signer)
	if !ok || len(certs) == 0 {
		return nil, nil, &inputerr.Error{Package: "kvassert", Input: "certificate data", Reason: "the certificate data holds no usable certificate and private key", Err: ErrNoPrivateKey}
	}
	// The leaf is the certificate whose key we hold.
	for _, c := range certs {
		if pub, ok := c.PublicKey.(interface{ Equal(crypto.PublicKey) bool }); ok && pub.Equal(signer.Public()) {
			return c, signer, nil
		}
	}
	return nil, nil, inputErr("certificate data", "the private key in the certificate data does not match any of its certificates")
}

// pemWithoutKey reports whether data is PEM with no private key block: a
// certificate whose key is in another file.
func pemWithoutKey(data []byte) bool {
	found := false
	for rest := data; ; {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			return found
		}
		if strings.HasSuffix(b.Type, "PRIVATE KEY") {
			return false
		}
		found = true
	}
}

func readBounded(path string) ([]byte, error) {
	if path == "" {
		return nil, inputErr("certificate file", "empty file name")
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("kvassert: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("kvassert: %w", err)
	}
	if st.IsDir() {
		return nil, fmt.Errorf("kvassert: %w", &fs.PathError{Op: "read", Path: path, Err: errors.New("is a directory, not a certificate file")})
	}
	if st.Size() > maxCredentialFile {
		return nil, fmt.Errorf("kvassert: %w", &fs.PathError{Op: "read", Path: path,
			Err: fmt.Errorf("%d bytes; certificate files are far smaller (limit %d)", st.Size(), maxCredentialFile)})
	}
	buf := make([]byte, st.Size())
	if _, err := io.ReadFull(f, buf); err != nil {
		return nil, fmt.Errorf("kvassert: %w", &fs.PathError{Op: "read", Path: path, Err: err})
	}
	return buf, nil
}
