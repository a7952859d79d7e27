package main

import (
	"context"
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"strings"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azcertificates"
	"github.com/spf13/cobra"

	"github.com/kvassert/kvassert/internal/jwtassert"
	"github.com/kvassert/kvassert/internal/kvid"
)

func newCertCmd(a *App) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "cert",
		Short: "Create, show, export, audit and roll the app's Key Vault certificate",
		Long: `Manage the certificate the app authenticates with, as Entra ID client
credentials need it: an RSA key that is not exportable from Key Vault, key usage
digitalSignature only. When the vault renews it (AutoRenew) or you create a new
version, "cert roll" registers the new version on the app through Microsoft Graph
with a proof signed in Key Vault and retires the old key: no human step.

The vault is reached with azidentity's DefaultAzureCredential.`,
		Example: `  kvassert cert create --vault https://myvault.vault.azure.net/ --cert app-auth --out app-auth.cer
  kvassert cert show   --vault https://myvault.vault.azure.net/ --cert app-auth
  kvassert cert export --vault https://myvault.vault.azure.net/ --cert app-auth --format keycredential
  kvassert cert audit  --vault https://myvault.vault.azure.net/ --cert app-auth
  kvassert cert status --vault https://myvault.vault.azure.net/ --cert app-auth --client-id $APP --tenant $HOME --app-object-id $OBJ
  kvassert cert roll   --vault https://myvault.vault.azure.net/ --cert app-auth --client-id $APP --tenant $HOME --app-object-id $OBJ`,
		Args: cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) > 0 {
				return usageError(fmt.Sprintf("unknown command %q for %q", truncate(args[0], 40), cmd.CommandPath()),
					"the cert commands are create, show, export, audit, status and roll; run 'kvassert cert --help'")
			}
			return cmd.Help()
		},
	}
	cmd.AddCommand(structured(newCertCreateCmd(a)), structured(newCertShowCmd(a)), structured(newCertExportCmd(a)), structured(newCertAuditCmd(a)),
		structured(newCertStatusCmd(a)), structured(newCertRollCmd(a)))
	return cmd
}

// vaultCertFlags name a certificate in a vault.
type vaultCertFlags struct {
	vault, name, version string
}

func (f *vaultCertFlags) register(cmd *cobra.Command, withVersion bool) {
	fs := cmd.Flags()
	fs.StringVar(&f.vault, "vault", "", "Key Vault URL, https://NAME.vault.azure.net/")
	fs.StringVarP(&f.name, "cert", "n", "", "name of the certificate in --vault")
	aliasFlag(cmd, "name", "", "cert")
	bindEnv(cmd, fs, "vault", "KVASSERT_VAULT")
	bindEnv(cmd, fs, "cert", "KVASSERT_CERT")
	if withVersion {
		fs.StringVar(&f.version, "version", "", "certificate version (default: the current one)")
	}
}

func (f *vaultCertFlags) check(a *App) error {
	if f.vault == "" {
		return usageError("--vault is required", "give the vault URL, https://NAME.vault.azure.net/, or set KVASSERT_VAULT")
	}
	if err := checkVaultURL(a, "vault", f.vault); err != nil {
		return err
	}
	if f.name == "" {
		return usageError("--cert is required", "give the certificate name, or set KVASSERT_CERT")
	}
	if err := kvid.CheckName(f.name); err != nil {
		return flagError(a.flagName("cert"), err, "certificate names have 1-127 letters, digits and '-'")
	}
	if f.version != "" && !isHex(f.version) {
		return usageError(fmt.Sprintf("--version %q is not a Key Vault version", truncate(f.version, 40)), "versions are 32 hexadecimal digits; omit --version for the current one")
	}
	return nil
}

// certClient returns an azcertificates client for a vault URL, through
// ClientOptions and KeyVaultCredential.
func (a *App) certClient(vaultURL string) (*azcertificates.Client, error) {
	if err := a.requireAzure(); err != nil {
		return nil, err
	}
	v, err := kvid.ParseVaultURL(vaultURL)
	if err != nil {
		return nil, flagError(a.flagName("vault"), err, "use https://NAME.vault.azure.net/")
	}
	if err := checkLoopbackVault(a, "vault", v); err != nil {
		return nil, err
	}
	cred, err := a.KeyVaultCredential()
	if err != nil {
		return nil, err
	}
	c, err := azcertificates.NewClient(v.URL, cred, &azcertificates.ClientOptions{
		ClientOptions: a.ClientOptions(),
		// An emulator's loopback URL (accepted only with KVASSERT_EMULATOR)
		// cannot pass the challenge's resource check; real vault hosts keep it.
		DisableChallengeResourceVerification: v.Loopback,
	})
	if err != nil {
		return nil, failure("", err)
	}
	return c, nil
}

// vaultCert is a certificate read from a vault.
type vaultCert struct {
	name    string
	version string
	bundle  azcertificates.Certificate
	cert    *x509.Certificate
}

// read reads the certificate the flags name, and returns the vault's client
// too for what else a command asks the vault.
func (f *vaultCertFlags) read(ctx context.Context, a *App) (*azcertificates.Client, *vaultCert, error) {
	client, err := a.certClient(f.vault)
	if err != nil {
		return nil, nil, err
	}
	vc, err := getCertificate(ctx, client, f.name, f.version)
	if err != nil {
		return nil, nil, err
	}
	return client, vc, nil
}

// getCertificate reads a certificate version ("" for the current one).
func getCertificate(ctx context.Context, c *azcertificates.Client, name, version string) (*vaultCert, error) {
	resp, err := c.GetCertificate(ctx, name, version, nil)
	if err != nil {
		return nil, failure("reading certificate "+name, err)
	}
	if len(resp.CER) == 0 {
		return nil, &exitError{code: exitFailure, msg: "certificate " + name + " has no X.509 content yet",
			hint: "its creation is still pending: wait for it (kvassert cert create shows progress) and retry"}
	}
	x, err := x509.ParseCertificate(resp.CER)
	if err != nil {
		return nil, failure("certificate "+name, err)
	}
	vc := &vaultCert{name: name, bundle: resp.Certificate, cert: x}
	if resp.ID != nil {
		vc.version = resp.ID.Version()
		if n := resp.ID.Name(); n != "" {
			vc.name = n
		}
	}
	return vc, nil
}

// thumbprintHex is the SHA-1 thumbprint as the Azure portal shows it.
func thumbprintHex(c *x509.Certificate) string { return jwtassert.ThumbprintHex(c) }

func sha256Hex(c *x509.Certificate) string { return jwtassert.ThumbprintSHA256Hex(c) }

// certSpec is what "cert create" (and the demo) make.
type certSpec struct {
	Subject        string
	ValidityMonths int
	KeySize        int
}

// entraPolicy is the certificate policy Entra ID client credentials need:
// self-issued, RSA, key not exportable, key usage digitalSignature only,
// client-authentication EKU, and an expiry reminder (EmailContacts at 80 % of
// the lifetime) instead of AutoRenew: an automatic renewal makes a new key
// that is not registered on the app, and Entra refuses it (AADSTS700027).
func entraPolicy(s certSpec) azcertificates.CertificatePolicy {
	return azcertificates.CertificatePolicy{
		IssuerParameters: &azcertificates.IssuerParameters{Name: to.Ptr("Self")},
		KeyProperties: &azcertificates.KeyProperties{
			Exportable: to.Ptr(false),
			KeyType:    to.Ptr(azcertificates.KeyTypeRSA),
			KeySize:    to.Ptr(int32(s.KeySize)),
			ReuseKey:   to.Ptr(false),
		},
		SecretProperties: &azcertificates.SecretProperties{ContentType: to.Ptr("application/x-pkcs12")},
		X509CertificateProperties: &azcertificates.X509CertificateProperties{
			Subject:          to.Ptr(s.Subject),
			KeyUsage:         []*azcertificates.KeyUsageType{to.Ptr(azcertificates.KeyUsageTypeDigitalSignature)},
			EnhancedKeyUsage: []*string{to.Ptr("1.3.6.1.5.5.7.3.2")}, // client authentication
			ValidityInMonths: to.Ptr(int32(s.ValidityMonths)),
		},
		LifetimeActions: []*azcertificates.LifetimeAction{{
			Action:  &azcertificates.LifetimeActionType{ActionType: to.Ptr(azcertificates.CertificatePolicyActionEmailContacts)},
			Trigger: &azcertificates.LifetimeActionTrigger{LifetimePercentage: to.Ptr(int32(80))},
		}},
		Attributes: &azcertificates.CertificateAttributes{Enabled: to.Ptr(true)},
	}
}

// createCertificate creates a certificate version with the Entra policy and
// waits for the vault to complete it, polling the certificate operation with
// a growing delay (0.2 s up to 5 s) until ctx ends. progress, when not nil,
// gets each status the vault reports.
func createCertificate(ctx context.Context, c *azcertificates.Client, name string, s certSpec, progress func(status string, elapsed time.Duration)) (*vaultCert, error) {
	start := time.Now()
	resp, err := c.CreateCertificate(ctx, name, azcertificates.CreateCertificateParameters{
		CertificatePolicy:     to.Ptr(entraPolicy(s)),
		CertificateAttributes: &azcertificates.CertificateAttributes{Enabled: to.Ptr(true)},
		Tags:                  map[string]*string{"created-by": to.Ptr("kvassert")},
	}, nil)
	if err != nil {
		return nil, failure("creating certificate "+name, err)
	}
	status := deref(resp.Status)
	// The first poll goes out at once (a self-signed certificate is often
	// ready by then), the next ones after 0.2 s, 0.4 s, ... up to 5 s.
	delay, next := time.Duration(0), 200*time.Millisecond
	for {
		if progress != nil {
			progress(status, time.Since(start))
		}
		switch strings.ToLower(status) {
		case "completed":
			return getCertificate(ctx, c, name, "")
		case "inprogress", "":
		default:
			return nil, &exitError{code: exitFailure, msg: fmt.Sprintf("the vault ended the creation of %s with status %q", name, status),
				hint: "see the certificate's pending operation in the portal; delete it and retry"}
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(delay):
		}
		delay, next = next, min(next*2, 5*time.Second)
		op, err := c.GetCertificateOperation(ctx, name, nil)
		if err != nil {
			return nil, failure("waiting for certificate "+name, err)
		}
		if op.Error != nil {
			return nil, &exitError{code: exitFailure, msg: fmt.Sprintf("the vault could not create %s: %s %s", name, op.Error.Code, deref(op.StatusDetails))}
		}
		status = deref(op.Status)
	}
}

func deref[T any](p *T) T {
	var zero T
	if p == nil {
		return zero
	}
	return *p
}

func isHex(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	_, err := hex.DecodeString(strings.Repeat("0", len(s)%2) + s)
	return err == nil
}

// certThumbprints are the identifiers of a certificate.
func certThumbprints(c *x509.Certificate) record {
	x5t, x5tS256 := jwtassert.Thumbprints(c)
	return record{
		{"thumbprint", thumbprintHex(c)},
		{"x5t", x5t},
		{"x5t#S256", x5tS256},
	}
}

// idString is a Key Vault identifier, or "" for none.
func idString[T ~string](id *T) string {
	if id == nil {
		return ""
	}
	return string(*id)
}
