package main

import (
	"bytes"
	"context"
	"crypto/sha1"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"
)

type certExportCmd struct {
	vc     vaultCertFlags
	format string
	out    string
}

func newCertExportCmd(a *App) *cobra.Command {
	c := &certExportCmd{}
	cmd := &cobra.Command{
		Use:   "export",
		Short: "Export the public certificate (DER, PEM) or its app-manifest keyCredentials entry",
		Long: `Export the public part of a Key Vault certificate, to register it on the app:

  --format pem            PEM (default); upload it under Certificates & secrets
  --format der            DER (.cer); refused to a terminal, use --out or a redirect
  --format keycredential  the entry for the "keyCredentials" array of the app
                          registration's manifest (Microsoft Graph format):
                          customKeyIdentifier (SHA-1 thumbprint, upper-case hex),
                          key (base64 DER), keyId, type AsymmetricX509Cert,
                          usage Verify, displayName (the subject), startDateTime
                          and endDateTime. The keyId is derived from the
                          certificate, so exporting it again gives the same entry.

The private key is never exported: it cannot be (the key is not exportable),
and kvassert never asks for it. --output and --query apply only to the JSON of --format keycredential printed on stdout.`,
		Example: `  kvassert cert export --vault https://myvault.vault.azure.net/ --cert app-auth --out app-auth.pem
  kvassert cert export --vault https://myvault.vault.azure.net/ --cert app-auth --format der > app-auth.cer
  kvassert cert export --vault https://myvault.vault.azure.net/ --cert app-auth --format keycredential`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return c.run(cmd.Context(), a) },
	}
	c.vc.register(cmd, true)
	cmd.Flags().StringVar(&c.format, "format", "pem", "der, pem or keycredential")
	cmd.Flags().StringVar(&c.out, "out", "", "write to this file instead of stdout")
	_ = cmd.RegisterFlagCompletionFunc("format", fixedCompletion("der", "pem", "keycredential"))
	_ = cmd.MarkFlagFilename("out")
	return cmd
}

func (c *certExportCmd) run(ctx context.Context, a *App) error {
	if err := c.vc.check(a); err != nil {
		return err
	}
	format := strings.ToLower(c.format)
	switch format {
	case "der", "pem", "keycredential":
	default:
		return usageError(fmt.Sprintf("--format %q is not der, pem or keycredential", truncate(c.format, 40)), "pem suits the portal upload, keycredential the manifest")
	}
	if err := c.checkOutput(a, format); err != nil {
		return err
	}
	if err := checkOutFile("--out", c.out); err != nil {
		return err
	}
	if format == "der" && c.out == "" && a.stdoutTTY {
		return usageError("refusing to write binary DER to a terminal", "use --out FILE, redirect stdout, or --format pem")
	}
	_, vc, err := c.vc.read(ctx, a)
	if err != nil {
		return err
	}
	var data []byte
	switch format {
	case "der":
		data = vc.cert.Raw
	case "pem":
		data = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: vc.cert.Raw})
	case "keycredential":
		if c.out == "" {
			return a.emit(keyCredential(vc.cert), formatJSON)
		}
		fallthrough
	default:
		compact, err := keyCredential(vc.cert).MarshalJSON()
		if err != nil {
			return failure("", err)
		}
		var buf bytes.Buffer
		if err := json.Indent(&buf, compact, "", "  "); err != nil {
			return failure("", err)
		}
		buf.WriteByte('\n')
		data = buf.Bytes()
	}
	if c.out != "" {
		if err := writeFileAtomic(c.out, data, 0o644); err != nil {
			return failure("writing "+c.out, err)
		}
		fmt.Fprintf(a.Stderr, "Wrote %s (%s, %s, thumbprint %s)\n", c.out, format, vc.cert.Subject, thumbprintHex(vc.cert))
		return nil
	}
	_, err = a.Stdout.Write(data)
	return err
}

// checkOutput refuses --output and --query where the export is not data:
// a PEM or DER certificate, or a file written with --out.
func (c *certExportCmd) checkOutput(a *App, format string) error {
	given := ""
	switch {
	case a.queryText != "":
		given = "--query"
	case a.outputGiven():
		given = "--output"
	default:
		return nil
	}
	if format != "keycredential" {
		return usageError(fmt.Sprintf("%s applies to the JSON of --format keycredential, not to a %s certificate", given, strings.ToUpper(format)),
			"add --format keycredential (e.g. --format keycredential --query customKeyIdentifier -o tsv), or drop "+given)
	}
	if c.out != "" {
		return usageError(given+" does not apply with --out: the file gets the keyCredential JSON as it is", "drop --out to print the result on stdout")
	}
	return nil
}

// keyCredentialNamespace is the UUID namespace of derived keyIds.
var keyCredentialNamespace = [16]byte{0x6b, 0x76, 0x61, 0x73, 0x73, 0x65, 0x72, 0x74, 0x8c, 0x1d, 0x4e, 0x5f, 0x9a, 0x2b, 0x3c, 0x4d}

// keyCredential is the app manifest's keyCredentials entry for a certificate
// (Microsoft Graph keyCredential resource).
func keyCredential(x *x509.Certificate) record {
	return record{
		{"customKeyIdentifier", thumbprintHex(x)},
		{"key", base64.StdEncoding.EncodeToString(x.Raw)},
		{"keyId", derivedUUID(x.Raw)},
		{"type", "AsymmetricX509Cert"},
		{"usage", "Verify"},
		{"displayName", x.Subject.String()},
		{"startDateTime", x.NotBefore.UTC().Format(time.RFC3339)},
		{"endDateTime", x.NotAfter.UTC().Format(time.RFC3339)},
	}
}

// derivedUUID is a name-based (version 5, SHA-1) UUID of data.
func derivedUUID(data []byte) string {
	h := sha1.New()
	h.Write(keyCredentialNamespace[:])
	h.Write(data)
	u := h.Sum(nil)[:16]
	u[6] = (u[6] & 0x0f) | 0x50
	u[8] = (u[8] & 0x3f) | 0x80
	s := hex.EncodeToString(u)
	return s[0:8] + "-" + s[8:12] + "-" + s[12:16] + "-" + s[16:20] + "-" + s[20:]
}
