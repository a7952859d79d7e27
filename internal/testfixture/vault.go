package testfixture

import (
	"context"
	"crypto/x509"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azcertificates"
	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azkeys"

	"github.com/kvassert/kvassert/internal/testcert"
	"github.com/kvassert/kvassert/kvasserttest"
	"github.com/kvassert/kvassert/kvasserttest/scenario"
)

// Certificates is an azcertificates client on the emulated vault, as the
// demo workload identity.
func Certificates(tb testing.TB, e *kvasserttest.Emulator, vault string) *azcertificates.Client {
	tb.Helper()
	c, err := azcertificates.NewClient(e.VaultURL(vault), VaultCredential(tb, e), &azcertificates.ClientOptions{ClientOptions: e.ClientOptions()})
	if err != nil {
		tb.Fatal(err)
	}
	return c
}

// Keys is an azkeys client on the emulated vault, as the demo workload
// identity.
func Keys(tb testing.TB, e *kvasserttest.Emulator, vault string) *azkeys.Client {
	tb.Helper()
	c, err := azkeys.NewClient(e.VaultURL(vault), VaultCredential(tb, e), &azkeys.ClientOptions{ClientOptions: e.ClientOptions()})
	if err != nil {
		tb.Fatal(err)
	}
	return c
}

// Rotate creates a new self-issued version of a vault certificate (as
// AutoRenew does) and returns it once the vault has completed it (reading
// it from the emulator: no certificates/get is counted).
func Rotate(tb testing.TB, e *kvasserttest.Emulator, vault, name string) *x509.Certificate {
	tb.Helper()
	ctx := context.Background()
	client := Certificates(tb, e, vault)
	subject := "CN=kvassert demo SaaS"
	_, err := client.CreateCertificate(ctx, name, azcertificates.CreateCertificateParameters{CertificatePolicy: &azcertificates.CertificatePolicy{
		IssuerParameters:          &azcertificates.IssuerParameters{Name: to.Ptr("Self")},
		KeyProperties:             &azcertificates.KeyProperties{Exportable: to.Ptr(false), KeyType: to.Ptr(azcertificates.KeyTypeRSA), KeySize: to.Ptr(int32(2048))},
		X509CertificateProperties: &azcertificates.X509CertificateProperties{Subject: &subject, ValidityInMonths: to.Ptr(int32(12))},
	}}, nil)
	if err != nil {
		tb.Fatal(err)
	}
	for i := 0; ; i++ {
		op, err := client.GetCertificateOperation(ctx, name, nil)
		if err != nil {
			tb.Fatal(err)
		}
		if op.Status != nil && *op.Status == "completed" {
			break
		}
		if i > 250 {
			tb.Fatal("certificate never completed")
		}
		time.Sleep(20 * time.Millisecond)
	}
	c, err := e.Certificate(vault, name)
	if err != nil {
		tb.Fatal(err)
	}
	return c
}

// Import imports c (certificate and key, as one PEM bundle) as a new
// version of the demo vault's certificate name and returns the version.
func Import(tb testing.TB, e *kvasserttest.Emulator, name string, c *testcert.Cert) string {
	tb.Helper()
	bundle := string(c.CertPEM()) + string(c.KeyPEM(tb))
	resp, err := Certificates(tb, e, scenario.DemoVault).ImportCertificate(context.Background(), name, azcertificates.ImportCertificateParameters{
		Base64EncodedCertificate: &bundle,
		CertificatePolicy:        &azcertificates.CertificatePolicy{SecretProperties: &azcertificates.SecretProperties{ContentType: to.Ptr("application/x-pem-file")}},
	}, nil)
	if err != nil {
		tb.Fatal(err)
	}
	return resp.ID.Version()
}

// Renew makes a new version of certificate name with its own policy (what
// the vault's AutoRenew does) through client and returns the version.
func Renew(tb testing.TB, client *azcertificates.Client, name string) string {
	tb.Helper()
	ctx := context.Background()
	pol, err := client.GetCertificatePolicy(ctx, name, nil)
	if err != nil {
		tb.Fatal(err)
	}
	if _, err := client.CreateCertificate(ctx, name, azcertificates.CreateCertificateParameters{CertificatePolicy: &pol.CertificatePolicy}, nil); err != nil {
		tb.Fatal(err)
	}
	got, err := client.GetCertificate(ctx, name, "", nil)
	if err != nil {
		tb.Fatal(err)
	}
	return got.ID.Version()
}
