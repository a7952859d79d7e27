package assertion_test

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"errors"
	"fmt"
	"math/big"
	"strings"
	"time"

	"github.com/kvassert/kvassert"
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

	b, err := assertion.New(cert, key, nil) // PS256 + x5t#S256, 10-minute lifetime
	if err != nil {
		panic(err)
	}
	jwt, err := b.Build(context.Background(), "6d2f4a8b-1c3e-4f5a-9b7d-2e4f6a8c0b16",
		"https://login.microsoftonline.com/contoso.onmicrosoft.com/oauth2/v2.0/token")
	if err != nil {
		panic(err)
	}
	header, _ := base64.RawURLEncoding.DecodeString(strings.Split(jwt, ".")[0])
	fmt.Println(string(header)[:32], strings.Count(jwt, "."))
	// Output: {"alg":"PS256","typ":"JWT","x5t# 2
}

// RS256 with the SHA-1 x5t (ADFS and older setups) and a 5-minute lifetime.
func ExampleNew_options() {
	key, _ := rsa.GenerateKey(rand.Reader, 2048)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "example"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, _ := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	cert, _ := x509.ParseCertificate(der)

	b, err := assertion.New(cert, key, &assertion.Options{Algorithm: assertion.RS256, Lifetime: 5 * time.Minute})
	if err != nil {
		panic(err)
	}
	jwt, _ := b.Build(context.Background(), "6d2f4a8b-1c3e-4f5a-9b7d-2e4f6a8c0b16",
		"https://login.microsoftonline.com/contoso.onmicrosoft.com/oauth2/v2.0/token")
	header, _ := base64.RawURLEncoding.DecodeString(strings.Split(jwt, ".")[0])
	fmt.Println(string(header)[:33])

	_, err = assertion.New(cert, key, &assertion.Options{Lifetime: 2 * time.Hour})
	var input *kvassert.InputError
	fmt.Println(errors.As(err, &input), input.Input)
	// Output:
	// {"alg":"RS256","typ":"JWT","x5t":
	// true Lifetime
}
