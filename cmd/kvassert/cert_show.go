package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/x509"
	"fmt"
	"math"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azcertificates"
	"github.com/spf13/cobra"
)

type certShowCmd struct {
	vc vaultCertFlags
}

func newCertShowCmd(a *App) *cobra.Command {
	c := &certShowCmd{}
	cmd := &cobra.Command{
		Use:   "show",
		Short: "Show a certificate's thumbprints, key ID, validity and policy",
		Long: `Show a Key Vault certificate as the app registration and client assertions see
it: the SHA-1 thumbprint (hex, as the portal shows it), the x5t (base64url SHA-1)
and x5t#S256 (base64url SHA-256) header values, the key ID (kid) that signs, the
validity and days left, and whether the key is exportable.

Needs the certificates/get permission only.`,
		Example: `  kvassert cert show --vault https://myvault.vault.azure.net/ --cert app-auth
  kvassert cert show --vault https://myvault.vault.azure.net/ --cert app-auth -o json
  kvassert cert show -n app-auth -o tsv   # with KVASSERT_VAULT set`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return c.run(cmd.Context(), a) },
	}
	c.vc.register(cmd, true)
	return cmd
}

func (c *certShowCmd) run(ctx context.Context, a *App) error {
	if err := c.vc.check(a); err != nil {
		return err
	}
	_, vc, err := c.vc.read(ctx, a)
	if err != nil {
		return err
	}
	return a.emit(showRecord(vc, time.Now()), formatText)
}

// showRecord is what "cert show" prints.
func showRecord(vc *vaultCert, now time.Time) record {
	x := vc.cert
	r := record{
		{"name", vc.name},
		{"version", vc.version},
		{"id", idString(vc.bundle.ID)},
		{"kid", idString(vc.bundle.KID)},
		{"subject", x.Subject.String()},
		{"issuer", x.Issuer.String()},
		{"notBefore", x.NotBefore.UTC()},
		{"notAfter", x.NotAfter.UTC()},
		{"daysLeft", daysLeft(x, now)},
	}
	r = append(r, certThumbprints(x)...)
	r = append(r,
		field{"sha256", sha256Hex(x)},
		field{"keyType", keyType(x)},
		field{"exportable", exportable(vc.bundle.Policy)},
		field{"keyUsage", keyUsageNames(x.KeyUsage)},
		field{"lifetimeActions", lifetimeActions(vc.bundle.Policy)},
		field{"enabled", vc.bundle.Attributes == nil || vc.bundle.Attributes.Enabled == nil || *vc.bundle.Attributes.Enabled},
	)
	return r
}

// daysLeft is the number of whole days until the certificate expires
// (negative once expired).
func daysLeft(x *x509.Certificate, now time.Time) int {
	return int(math.Floor(x.NotAfter.Sub(now).Hours() / 24))
}

func keyType(x *x509.Certificate) string {
	switch k := x.PublicKey.(type) {
	case *rsa.PublicKey:
		return fmt.Sprintf("RSA %d", k.N.BitLen())
	case *ecdsa.PublicKey:
		return "EC " + k.Curve.Params().Name
	}
	return fmt.Sprintf("%T", x.PublicKey)
}

func exportable(p *azcertificates.CertificatePolicy) *bool {
	if p == nil || p.KeyProperties == nil {
		return nil
	}
	return p.KeyProperties.Exportable
}

var keyUsageBits = []struct {
	bit  x509.KeyUsage
	name string
}{
	{x509.KeyUsageDigitalSignature, "digitalSignature"},
	{x509.KeyUsageContentCommitment, "nonRepudiation"},
	{x509.KeyUsageKeyEncipherment, "keyEncipherment"},
	{x509.KeyUsageDataEncipherment, "dataEncipherment"},
	{x509.KeyUsageKeyAgreement, "keyAgreement"},
	{x509.KeyUsageCertSign, "keyCertSign"},
	{x509.KeyUsageCRLSign, "cRLSign"},
	{x509.KeyUsageEncipherOnly, "encipherOnly"},
	{x509.KeyUsageDecipherOnly, "decipherOnly"},
}

func keyUsageNames(ku x509.KeyUsage) []string {
	names := []string{}
	for _, b := range keyUsageBits {
		if ku&b.bit != 0 {
			names = append(names, b.name)
		}
	}
	return names
}

func lifetimeActions(p *azcertificates.CertificatePolicy) []string {
	out := []string{}
	if p == nil {
		return out
	}
	for _, la := range p.LifetimeActions {
		if la == nil || la.Action == nil || la.Action.ActionType == nil {
			continue
		}
		s := string(*la.Action.ActionType)
		if t := la.Trigger; t != nil {
			switch {
			case t.LifetimePercentage != nil:
				s += fmt.Sprintf(" at %d%% of lifetime", *t.LifetimePercentage)
			case t.DaysBeforeExpiry != nil:
				s += fmt.Sprintf(" %d days before expiry", *t.DaysBeforeExpiry)
			}
		}
		out = append(out, s)
	}
	return out
}
