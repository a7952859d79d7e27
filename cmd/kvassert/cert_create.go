package main

import (
	"context"
	"encoding/pem"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/kvassert/kvassert/internal/kvid"
)

type certCreateCmd struct {
	vc       vaultCertFlags
	subject  string
	validity int
	keySize  int
	out      string
}

func newCertCreateCmd(a *App) *cobra.Command {
	c := &certCreateCmd{}
	cmd := &cobra.Command{
		Use:   "create",
		Short: "Create a non-exportable certificate for Entra ID client credentials",
		Long: `Create a self-issued certificate in Key Vault the way Entra ID client credentials
need it:

  - RSA key (--key-size, default 2048) that is NOT exportable: it never leaves the vault
  - key usage digitalSignature only, extended key usage client authentication
  - lifetime action EmailContacts at 80 % of the lifetime, not AutoRenew (a renewal
    makes a new key that the app registration does not know; Entra would refuse it)

Progress goes to stderr while the vault completes the certificate. Then the
thumbprints are printed and, with --out, the public certificate is written (DER
for .cer, PEM for .pem) for upload to the app registration. If the name exists,
a new version is created (rotation): register it on the app before the old one
expires.

Needs the certificates/create permission (Key Vault Certificates Officer).`,
		Example: `  kvassert cert create --vault https://myvault.vault.azure.net/ --cert app-auth --out app-auth.cer
  kvassert cert create --vault https://myvault.vault.azure.net/ --cert app-auth \
      --subject "CN=contoso SaaS, O=Contoso" --validity-months 6 --key-size 3072 -o json`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return c.run(cmd.Context(), a) },
	}
	c.vc.register(cmd, false)
	fs := cmd.Flags()
	fs.StringVar(&c.subject, "subject", "", `X.500 subject (default "CN=NAME")`)
	fs.IntVar(&c.validity, "validity-months", 12, "validity in months (1-120)")
	fs.IntVar(&c.keySize, "key-size", 2048, "RSA key size: 2048, 3072 or 4096")
	fs.StringVar(&c.out, "out", "", "write the public certificate to this file (DER; PEM if it ends in .pem)")
	_ = cmd.MarkFlagFilename("out", "cer", "pem", "crt")
	_ = cmd.RegisterFlagCompletionFunc("key-size", fixedCompletion("2048", "3072", "4096"))
	return cmd
}

func (c *certCreateCmd) spec(a *App) (certSpec, error) {
	s := certSpec{Subject: strings.TrimSpace(c.subject), ValidityMonths: c.validity, KeySize: c.keySize}
	if s.Subject == "" {
		s.Subject = "CN=" + c.vc.name
	}
	if !strings.Contains(s.Subject, "=") {
		return s, usageError(fmt.Sprintf("--subject %q is not an X.500 name", truncate(s.Subject, 80)), `use a distinguished name such as "CN=contoso SaaS"`)
	}
	if s.ValidityMonths < 1 || s.ValidityMonths > 120 {
		return s, usageError(fmt.Sprintf("--validity-months %d is outside 1..120", s.ValidityMonths), "12 months is usual; rotate before expiry")
	}
	switch s.KeySize {
	case 2048, 3072, 4096:
	default:
		return s, usageError(fmt.Sprintf("--key-size %d is not 2048, 3072 or 4096", s.KeySize), "Entra needs RSA keys of at least 2048 bits")
	}
	return s, nil
}

func (c *certCreateCmd) run(ctx context.Context, a *App) error {
	if err := c.vc.check(a); err != nil {
		return err
	}
	spec, err := c.spec(a)
	if err != nil {
		return err
	}
	if err := checkOutFile("--out", c.out); err != nil {
		return err
	}
	client, err := a.certClient(c.vc.vault)
	if err != nil {
		return err
	}
	v, _ := kvid.ParseVaultURL(c.vc.vault)
	p := a.newProgress(fmt.Sprintf("Creating certificate %s in %s (RSA %d, key not exportable)", c.vc.name, v.Host, spec.KeySize))
	vc, err := createCertificate(ctx, client, c.vc.name, spec, p.update)
	p.done(err)
	if err != nil {
		return err
	}
	if c.out != "" {
		data := vc.cert.Raw
		if strings.HasSuffix(strings.ToLower(c.out), ".pem") {
			data = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: vc.cert.Raw})
		}
		if err := writeFileAtomic(c.out, data, 0o644); err != nil {
			return failure("writing "+c.out, err)
		}
	}
	r := record{
		{"name", vc.name},
		{"version", vc.version},
		{"subject", vc.cert.Subject.String()},
		{"notBefore", vc.cert.NotBefore.UTC()},
		{"notAfter", vc.cert.NotAfter.UTC()},
	}
	r = append(r, certThumbprints(vc.cert)...)
	r = append(r, field{"kid", idString(vc.bundle.KID)}, field{"exportable", false}, field{"file", c.out})
	if err := a.emit(r, formatText); err != nil {
		return err
	}
	// The export names this certificate: KVASSERT_VAULT / KVASSERT_CERT may
	// name another one (the walk-through's saas-app-auth).
	next := "kvassert cert export --vault " + c.vc.vault + " --cert " + c.vc.name + " --format keycredential"
	if c.out != "" {
		next = "upload " + c.out + " under Certificates & secrets, or paste the output of '" + next + "' into its manifest"
	} else {
		next = "paste the output of '" + next + "' into its manifest, or export it with --format der"
	}
	fmt.Fprintln(a.Stderr, a.errStyle().dim("Next: register the certificate on the app registration: "+next+"."))
	return nil
}

// progress shows a long operation on stderr: a self-updating line on a
// terminal, one line per status change otherwise.
type progress struct {
	a      *App
	title  string
	last   string
	frame  int
	active bool
}

func (a *App) newProgress(title string) *progress {
	p := &progress{a: a, title: title}
	if !a.stderrTTY {
		fmt.Fprintln(a.Stderr, title+" ...")
	}
	return p
}

var spinner = []string{"⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧", "⠇", "⠏"}

func (p *progress) update(status string, elapsed time.Duration) {
	if status == "" {
		status = "inProgress"
	}
	if p.a.stderrTTY {
		p.frame++
		fmt.Fprintf(p.a.Stderr, "\r\x1b[K%s %s: %s (%s)", p.a.errStyle().cyan(spinner[p.frame%len(spinner)]), p.title, status, elapsed.Round(100*time.Millisecond))
		p.active = true
		return
	}
	if status != p.last {
		fmt.Fprintf(p.a.Stderr, "  status: %s (%s)\n", status, elapsed.Round(100*time.Millisecond))
		p.last = status
	}
}

func (p *progress) done(err error) {
	st := p.a.errStyle()
	if p.active {
		fmt.Fprint(p.a.Stderr, "\r\x1b[K")
	}
	if err == nil {
		fmt.Fprintln(p.a.Stderr, st.green("✓")+" "+p.title+": done")
	}
}
