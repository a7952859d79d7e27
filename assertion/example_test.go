package assertion_test

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"math/big"
	"time"

	"github.com/kvassert/kvassert/assertion"
)

// A Builder signs client assertions with any crypto.Signer: here a local key;
// in production a Key Vault key (package keyvault).
func Example() {
	key, _ := rsa.GenerateKey(rand.Reader, 2048)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "example"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, _ := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	cert, _ := x509.ParseCertificate(der)

	b, err := assertion.New(cert, key) // PS256 + x5t#S256, 10-minute lifetime
	if err != nil {
		panic(err)
	}
	jwt, err := b.Build(context.Background(), "6d2f4a8b-1c3e-4f5a-9b7d-2e4f6a8c0b16",
		"https://login.microsoftonline.com/contoso.onmicrosoft.com/oauth2/v2.0/token")
	if err != nil {
		panic(err)
	}
	tok, _ := assertion.Parse(jwt)
	fmt.Println(tok.Header.Alg, tok.Claims.Iss == tok.Claims.Sub, len(tok.Check(assertion.CheckOptions{Certificate: cert})))
	// Output: PS256 true 0
}
