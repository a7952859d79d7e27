package main

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/kvassert/kvassert/internal/jwtassert"
	"github.com/kvassert/kvassert/internal/kvid"
)

type decodeCmd struct {
	certFile string
	vault    string
	cert     string
	clientID string
	audience string
}

func newDecodeCmd(a *App) *cobra.Command {
	c := &decodeCmd{}
	cmd := &cobra.Command{
		Use:   "decode [JWT | -]",
		Short: "Decode a client assertion and check it as Entra ID would",
		Long: `Decode a client assertion (or any JWT) and check it the way Entra ID checks
certificate credentials: algorithm, thumbprint header (x5t or x5t#S256), aud,
iss = sub, jti, times and lifetime. With the certificate (--cert-file, or
--vault and --cert) it also checks that the thumbprint is that certificate's,
that the signature verifies with its key, and that it is within its validity.

Each problem is said in plain words; the exit code is 1 when there are any.
The signature itself is never printed. Pass "-" (or pipe into it) to read the
JWT from stdin, which keeps it out of the process list and shell history.`,
		Example: `  kvassert assertion --tenant $TENANT | kvassert decode --vault $VAULT --cert app-auth -
  kvassert decode --cert-file app-auth.pem - < assertion.jwt
  kvassert decode -o json - < assertion.jwt`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) > 1 {
				return usageError(fmt.Sprintf("decode takes one JWT (or -), got %d arguments", len(args)), "quote the JWT, or pass - and pipe it in")
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error { return c.run(cmd.Context(), a, args) },
	}
	fs := cmd.Flags()
	fs.StringVar(&c.certFile, "cert-file", "", "certificate (PEM or DER) whose key should have signed the assertion")
	fs.StringVar(&c.vault, "vault", "", "Key Vault holding the certificate, https://NAME.vault.azure.net/ (with --cert)")
	fs.StringVarP(&c.cert, "cert", "n", "", "name of the certificate in --vault")
	fs.StringVar(&c.clientID, "client-id", "", "expected client ID (iss and sub)")
	fs.StringVar(&c.audience, "audience", "", "expected aud (the token endpoint)")
	bindEnv(cmd, fs, "vault", "KVASSERT_VAULT")
	bindEnv(cmd, fs, "cert", "KVASSERT_CERT")
	kindFlags(fs, []string{"cert-file"}, []string{"vault", "cert"})
	exclusive(cmd, conflict{"cert-file", "vault", "both name the certificate to check the assertion against"},
		conflict{"cert-file", "cert", "both name the certificate to check the assertion against"})
	_ = cmd.MarkFlagFilename("cert-file", "pem", "cer", "crt")
	return cmd
}

func (c *decodeCmd) run(ctx context.Context, a *App, args []string) error {
	jwt, err := c.read(a, args)
	if err != nil {
		return err
	}
	if c.certFile != "" && (c.vault != "" || c.cert != "") {
		if a.fromEnv("vault") || a.fromEnv("cert") {
			c.vault, c.cert = "", ""
		} else {
			return usageError("give either --cert-file or --vault and --cert, not both", "both name the certificate to check the assertion against")
		}
	}
	tok, err := jwtassert.Parse(jwt)
	if err != nil {
		return &exitError{code: exitUsage, msg: "not a JWT", err: err, hint: "pass the whole compact JWT (three base64url parts separated by dots)"}
	}
	cert, certLabel, err := c.certificate(ctx, a)
	if err != nil {
		return err
	}
	problems := tok.Check(jwtassert.CheckOptions{Certificate: cert, ClientID: c.clientID, Audience: c.audience})
	for i, p := range problems {
		if strings.Contains(p, "signature does not verify") {
			problems[i] = p + ": the token was changed after it was signed, or another key signed it"
		}
	}
	if err := c.print(a, tok, cert, certLabel, problems); err != nil {
		return err
	}
	if len(problems) > 0 {
		return &exitError{code: exitFailure, msg: fmt.Sprintf("found %s in the token", plural(len(problems), "problem"))}
	}
	return nil
}

func (c *decodeCmd) read(a *App, args []string) (string, error) {
	src := ""
	if len(args) == 1 {
		src = args[0]
	}
	if src == "" || src == "-" {
		if src == "" && isTerminal(a.Stdin) {
			return "", usageError("no JWT given", "pass the JWT as the argument, or - and pipe it in (kvassert assertion ... | kvassert decode -)")
		}
		data, err := io.ReadAll(io.LimitReader(a.Stdin, 4*jwtassert.MaxTokenSize))
		if err != nil {
			return "", failure("reading stdin", err)
		}
		src = string(data)
	}
	src = strings.TrimSpace(src)
	if src == "" {
		return "", usageError("empty JWT", "pass the JWT as the argument, or - and pipe it in")
	}
	return src, nil
}

func (c *decodeCmd) certificate(ctx context.Context, a *App) (*x509.Certificate, string, error) {
	switch {
	case c.certFile != "":
		cert, err := readCertificateFile(c.certFile)
		if err != nil {
			return nil, "", err
		}
		return cert, c.certFile, nil
	case c.vault != "" || c.cert != "":
		if c.vault == "" || c.cert == "" {
			return nil, "", usageError("--vault and --cert go together", "give the vault URL and the certificate name, or --cert-file")
		}
		if err := checkVaultURL(a, "vault", c.vault); err != nil {
			return nil, "", err
		}
		if err := kvid.CheckName(c.cert); err != nil {
			return nil, "", flagError(a.flagName("cert"), err, "certificate names have 1-127 letters, digits and '-'")
		}
		client, err := a.certClient(c.vault)
		if err != nil {
			return nil, "", err
		}
		vc, err := getCertificate(ctx, client, c.cert, "")
		if err != nil {
			return nil, "", err
		}
		return vc.cert, "certificate " + vc.name + ", version " + vc.version, nil
	}
	return nil, "", nil
}

func (c *decodeCmd) print(a *App, tok *jwtassert.Token, cert *x509.Certificate, certLabel string, problems []string) error {
	sigNote := "not checked: give the certificate with --cert-file, or --vault and --cert"
	if cert != nil {
		sigNote = fmt.Sprintf("checked against %s: %s, thumbprint %s", certLabel, cert.Subject, thumbprintHex(cert))
	}
	if a.outputGiven() || a.query != nil {
		// The data: JSON by default, any format with --output.
		out := record{
			{"header", json.RawMessage(compactJSON(tok.RawHeader))},
			{"claims", json.RawMessage(compactJSON(tok.RawClaims))},
			{"signature", record{{"bytes", len(tok.Signature())}, {"checked", cert != nil}, {"note", sigNote}}},
			{"problems", append([]string{}, problems...)},
		}
		return a.emit(out, formatJSON)
	}
	st := a.style()
	now := time.Now()
	tw := tabwriter.NewWriter(a.Stdout, 0, 0, 2, ' ', 0)
	for _, sec := range []struct {
		name string
		raw  []byte
	}{{"Header", tok.RawHeader}, {"Claims", tok.RawClaims}} {
		fmt.Fprintln(tw, st.bold(sec.name))
		fields, err := orderedFields(sec.raw)
		if err != nil {
			fmt.Fprintf(tw, "  %s\n", termSafe(cellClean.Replace(string(sec.raw))))
			continue
		}
		for _, f := range fields {
			v := termSafe(cellClean.Replace(jsonText(f.val))) // a token being decoded may be hostile
			switch f.key {
			case "nbf", "iat", "exp":
				var n int64
				if json.Unmarshal(f.val, &n) == nil && n > 0 {
					v += "  " + st.dim(describeTime(time.Unix(n, 0), now))
				}
			case "x5c":
				v = st.dim(fmt.Sprintf("(certificate chain, %d characters)", len(v)))
			}
			fmt.Fprintf(tw, "  %s\t%s\n", termSafe(cellClean.Replace(f.key)), v)
		}
	}
	fmt.Fprintf(tw, "%s\t%d bytes, %s\n", st.bold("Signature"), len(tok.Signature()), termSafe(sigNote))
	if err := tw.Flush(); err != nil {
		return err
	}
	if len(problems) == 0 {
		what := "no problems: Entra ID would accept this assertion's form"
		if cert != nil {
			what = "no problems: Entra ID would accept this assertion from an app with this certificate"
		}
		_, err := fmt.Fprintln(a.Stdout, st.green("✓")+" "+what)
		return err
	}
	fmt.Fprintln(a.Stdout, st.bold("Problems"))
	for _, p := range problems {
		fmt.Fprintln(a.Stdout, "  "+st.red("✗")+" "+termSafe(cellClean.Replace(p)))
	}
	return nil
}

// describeTime says when t is relative to now, in UTC.
func describeTime(t, now time.Time) string {
	d := t.Sub(now).Round(time.Second)
	rel := "now"
	switch {
	case d > 0:
		rel = "in " + shortDuration(d)
	case d < 0:
		rel = shortDuration(-d) + " ago"
	}
	return t.UTC().Format(time.RFC3339) + " (" + rel + ")"
}

type rawField struct {
	key string
	val json.RawMessage
}

// orderedFields lists the members of a JSON object in their order.
func orderedFields(raw []byte) ([]rawField, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	t, err := dec.Token()
	if err != nil {
		return nil, err
	}
	if d, ok := t.(json.Delim); !ok || d != '{' {
		return nil, fmt.Errorf("not a JSON object")
	}
	var out []rawField
	for dec.More() {
		kt, err := dec.Token()
		if err != nil {
			return nil, err
		}
		k, _ := kt.(string)
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return nil, err
		}
		out = append(out, rawField{k, v})
	}
	return out, nil
}

// jsonText shows a JSON value: strings without quotes, the rest compact.
func jsonText(v json.RawMessage) string {
	var s string
	if json.Unmarshal(v, &s) == nil {
		return s
	}
	return string(compactJSON(v))
}

func compactJSON(raw []byte) []byte {
	var b bytes.Buffer
	if json.Compact(&b, raw) != nil {
		return raw
	}
	return b.Bytes()
}
