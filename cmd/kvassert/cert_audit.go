package main

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azcertificates"
	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azsecrets"
	"github.com/spf13/cobra"

	"github.com/kvassert/kvassert/internal/kvid"
	"github.com/kvassert/kvassert/keyvault"
)

// Audit statuses.
const (
	auditPass = "PASS"
	auditWarn = "WARN"
	auditFail = "FAIL"
)

// expiryWarning is how close to expiry a certificate draws a warning.
const expiryWarning = 30 * 24 * time.Hour

type certAuditCmd struct {
	vc     vaultCertFlags
	app    auditAppFlags
	failOn string
}

func newCertAuditCmd(a *App) *cobra.Command {
	c := &certAuditCmd{}
	cmd := &cobra.Command{
		Use:   "audit",
		Short: "Check a certificate against what Entra client credentials need",
		Long: `Check a Key Vault certificate and the caller's access to it, one line per check:

  exportable      the key must not be exportable (FAIL if it is)
  key             RSA, at least 2048 bits
  key-usage       digitalSignature only (WARN for more, FAIL without it)
  lifetime        AutoRenew (supported: kvassert signs with the version Entra accepts
                  until the renewed one is registered; WARN when the caller cannot
                  list versions, certificates/list) or an EmailContacts reminder
  validity        FAIL when expired or not yet valid, WARN within 30 days of expiry
  enabled         FAIL when disabled
  sign            the caller CAN sign with the key (a real keys/sign of a random
                  digest, verified with the certificate)
  private-key     the caller CANNOT read the private key (secrets/get on the
                  certificate's secret must fail, or return no key)

With --app (and --app-object-id, --client-id, --tenant: the app's home
tenant, or their KVASSERT_* variables), the app registration too, with a
token the certificate signs (it must be registered on the app):

  app-lock        the app instance property lock (Graph servicePrincipalLockConfiguration:
                  isEnabled and allProperties, or credentialsWithUsageVerify and
                  credentialsWithUsageSign): FAIL without it (a customer tenant's
                  admin could add a credential to the app's service principal), with
                  the fix; WARN when it cannot be read (needs Application.Read.All)
  tenants         with --customer-tenant / --customer-tenants-file: FAIL for each known customer
                  tenant that refuses the app (not consented, disabled, ...)

The exit code is 1 when a check fails or warns (--fail-on fail: only when one
fails), 0 when the certificate is clean.`,
		Example: `  kvassert cert audit --vault https://myvault.vault.azure.net/ --cert app-auth
  kvassert cert audit --vault https://myvault.vault.azure.net/ --cert app-auth --fail-on fail -o json
  kvassert cert audit --vault https://myvault.vault.azure.net/ --cert app-auth \
      --app --app-object-id $APP_OBJECT_ID --client-id $APP --tenant $HOME_TENANT --customer-tenants-file customers.txt`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return c.run(cmd.Context(), a) },
	}
	c.vc.register(cmd, true)
	c.app.register(cmd)
	cmd.Flags().StringVar(&c.failOn, "fail-on", "warn", "exit 1 on: warn (any finding) or fail (failures only)")
	_ = cmd.RegisterFlagCompletionFunc("fail-on", fixedCompletion("warn", "fail"))
	return cmd
}

type auditFinding struct {
	check, status, detail string
}

func (c *certAuditCmd) run(ctx context.Context, a *App) error {
	if err := c.vc.check(a); err != nil {
		return err
	}
	if c.failOn != "warn" && c.failOn != "fail" {
		return usageError(fmt.Sprintf("--fail-on %q is not warn or fail", truncate(c.failOn, 20)), "warn: any finding fails; fail: only failures do")
	}
	appAudit, err := c.app.check(a)
	if err != nil {
		return err
	}
	client, vc, err := c.vc.read(ctx, a)
	if err != nil {
		return err
	}
	findings := auditStatic(vc, time.Now())
	auditVersionsList(ctx, client, vc, findings)
	findings = append(findings, c.auditSign(ctx, a, vc), c.auditPrivateKey(ctx, a, vc))
	if appAudit {
		more, err := c.app.auditApp(ctx, a, c.vc.vault, vc.name)
		if err != nil {
			return err
		}
		findings = append(findings, more...)
	}

	rows := make([]record, len(findings))
	var fails, warns int
	for i, f := range findings {
		rows[i] = record{{"status", f.status}, {"check", f.check}, {"detail", f.detail}}
		switch f.status {
		case auditFail:
			fails++
		case auditWarn:
			warns++
		}
	}
	if a.format(formatTable) == formatTable && a.query == nil {
		st := a.style()
		for _, r := range rows {
			switch r[0].val {
			case auditFail:
				r[0].val = st.red(auditFail)
			case auditWarn:
				r[0].val = st.yellow(auditWarn)
			default:
				r[0].val = st.green(auditPass)
			}
		}
	}
	if err := a.printTable(rows, formatTable); err != nil {
		return err
	}
	if fails > 0 || (warns > 0 && c.failOn == "warn") {
		var found []string
		if fails > 0 {
			found = append(found, plural(fails, "failure"))
		}
		if warns > 0 {
			found = append(found, plural(warns, "warning"))
		}
		return &exitError{code: exitFailure, msg: fmt.Sprintf("audit of %s found %s", vc.name, strings.Join(found, " and ")),
			hint: "fix the findings above; 'kvassert cert create' makes a certificate that passes"}
	}
	return nil
}

func plural(n int, word string) string {
	if n == 1 {
		return "1 " + word
	}
	return fmt.Sprintf("%d %ss", n, word)
}

// auditStatic checks the certificate and its policy.
func auditStatic(vc *vaultCert, now time.Time) []auditFinding {
	x := vc.cert
	var out []auditFinding
	add := func(check, status, format string, args ...any) {
		out = append(out, auditFinding{check, status, fmt.Sprintf(format, args...)})
	}

	switch e := exportable(vc.bundle.Policy); {
	case e == nil:
		add("exportable", auditWarn, "the vault returned no key policy, so exportability is unknown")
	case *e:
		add("exportable", auditFail, "the private key is exportable: whoever can read the certificate's secret can copy it; create a non-exportable certificate (kvassert cert create)")
	default:
		add("exportable", auditPass, "the private key is not exportable")
	}

	switch k := x.PublicKey.(type) {
	case *rsa.PublicKey:
		if bits := k.N.BitLen(); bits < 2048 {
			add("key", auditFail, "RSA %d: Entra needs at least 2048 bits", bits)
		} else {
			add("key", auditPass, "RSA %d", bits)
		}
	default:
		add("key", auditFail, "%s: Entra client assertions need an RSA key", keyType(x))
	}

	names := keyUsageNames(x.KeyUsage)
	switch {
	case x.KeyUsage == 0:
		add("key-usage", auditWarn, "the certificate has no key usage extension; client credentials need digitalSignature only")
	case x.KeyUsage&x509.KeyUsageDigitalSignature == 0:
		add("key-usage", auditFail, "key usage %s lacks digitalSignature", strings.Join(names, ", "))
	case len(names) > 1:
		add("key-usage", auditWarn, "key usage is %s; client credentials need digitalSignature only", strings.Join(names, ", "))
	default:
		add("key-usage", auditPass, "digitalSignature only")
	}

	actions := lifetimeActions(vc.bundle.Policy)
	var auto, email bool
	for _, s := range actions {
		auto = auto || strings.HasPrefix(s, "AutoRenew")
		email = email || strings.HasPrefix(s, "EmailContacts")
	}
	switch {
	case vc.bundle.Policy == nil:
		add("lifetime", auditWarn, "the vault returned no policy, so the lifetime action is unknown")
	case auto:
		add("lifetime", auditPass, "%s: supported by kvassert: until a renewed version is registered on the app (kvassert cert export --format keycredential), it signs with the version Entra accepts and warns once; after a restart it needs certificates/list to find that version", strings.Join(actions, ", "))
	case !email:
		add("lifetime", auditWarn, "no lifetime action: nobody is reminded before the certificate expires; add EmailContacts")
	default:
		add("lifetime", auditPass, "%s", strings.Join(actions, ", "))
	}

	left := x.NotAfter.Sub(now)
	switch {
	case now.Before(x.NotBefore):
		add("validity", auditFail, "not valid before %s", x.NotBefore.UTC().Format(time.RFC3339))
	case left <= 0:
		add("validity", auditFail, "expired %s (%d days ago)", x.NotAfter.UTC().Format(time.RFC3339), -daysLeft(x, now))
	case left < expiryWarning:
		add("validity", auditWarn, "expires %s, in %d days: create a new version and register it on the app", x.NotAfter.UTC().Format(time.RFC3339), daysLeft(x, now))
	default:
		add("validity", auditPass, "valid until %s (%d days left)", x.NotAfter.UTC().Format(time.RFC3339), daysLeft(x, now))
	}

	if at := vc.bundle.Attributes; at != nil && at.Enabled != nil && !*at.Enabled {
		add("enabled", auditFail, "the certificate is disabled")
	} else {
		add("enabled", auditPass, "enabled")
	}
	return out
}

// auditSign signs a random digest with the certificate's key and verifies
// the signature with the certificate.
func (c *certAuditCmd) auditSign(ctx context.Context, a *App, vc *vaultCert) auditFinding {
	f := auditFinding{check: "sign"}
	kid := idString(vc.bundle.KID)
	pub, ok := vc.cert.PublicKey.(*rsa.PublicKey)
	if kid == "" || !ok {
		f.status, f.detail = auditFail, "no RSA key to sign with"
		return f
	}
	cred, err := a.KeyVaultCredential()
	if err != nil {
		f.status, f.detail = auditFail, "cannot reach the vault: "+errText(err)
		return f
	}
	signer, err := keyvault.NewSigner(ctx, kid, cred, &keyvault.SignerOptions{ClientOptions: a.ClientOptions(), AllowLoopback: a.allowLoopbackVault(), PublicKey: pub})
	if err != nil {
		f.status, f.detail = auditFail, errText(err)
		return f
	}
	digest := make([]byte, 32)
	if _, err := rand.Read(digest); err != nil {
		f.status, f.detail = auditFail, err.Error()
		return f
	}
	opts := &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash, Hash: crypto.SHA256}
	sig, err := signer.SignContext(ctx, digest, opts)
	if err != nil {
		f.status, f.detail = auditFail, "the caller cannot sign with the key: "+errText(err)
		return f
	}
	if err := rsa.VerifyPSS(pub, crypto.SHA256, digest, sig, opts); err != nil {
		f.status, f.detail = auditFail, "the key's signature does not verify with the certificate: the kid does not match the certificate"
		return f
	}
	f.status, f.detail = auditPass, "the caller can sign (PS256 keys/sign, verified with the certificate)"
	return f
}

// auditPrivateKey checks that the caller cannot read the private key through
// the certificate's secret.
func (c *certAuditCmd) auditPrivateKey(ctx context.Context, a *App, vc *vaultCert) auditFinding {
	f := auditFinding{check: "private-key"}
	sid := vc.bundle.SID
	if sid == nil {
		f.status, f.detail = auditPass, "the certificate has no secret"
		return f
	}
	v, err := kvid.ParseVaultURL(c.vc.vault)
	if err != nil {
		f.status, f.detail = auditWarn, errText(err)
		return f
	}
	cred, err := a.KeyVaultCredential()
	if err != nil {
		f.status, f.detail = auditWarn, "not checked: "+errText(err)
		return f
	}
	client, err := azsecrets.NewClient(v.URL, cred, &azsecrets.ClientOptions{ClientOptions: a.ClientOptions(), DisableChallengeResourceVerification: v.Loopback})
	if err != nil {
		f.status, f.detail = auditWarn, "not checked: "+errText(err)
		return f
	}
	resp, err := client.GetSecret(ctx, sid.Name(), sid.Version(), nil)
	var re *azcore.ResponseError
	switch {
	case errors.As(err, &re) && (re.StatusCode == http.StatusForbidden || re.StatusCode == http.StatusUnauthorized):
		f.status, f.detail = auditPass, "the caller cannot read the certificate's secret (secrets/get denied)"
		return f
	case errors.As(err, &re) && re.StatusCode == http.StatusNotFound:
		f.status, f.detail = auditPass, "the certificate's secret does not exist"
		return f
	case err != nil:
		f.status, f.detail = auditWarn, "not checked: "+errText(err)
		return f
	}
	if hasPrivateKey(deref(resp.ContentType), deref(resp.Value)) {
		f.status, f.detail = auditFail, "the caller can read the private key (secrets/get on an exportable certificate): remove secrets/get, and replace the certificate with a non-exportable one"
		return f
	}
	f.status, f.detail = auditPass, "the certificate's secret holds no private key (the caller has secrets/get, which kvassert does not need)"
	return f
}

// hasPrivateKey reports whether a certificate secret value (PKCS#12 in
// base64, or PEM) holds a private key.
func hasPrivateKey(contentType, value string) bool {
	if strings.Contains(contentType, "pem") || strings.Contains(value, "-----BEGIN") {
		return strings.Contains(value, "PRIVATE KEY-----")
	}
	der, err := base64.StdEncoding.DecodeString(strings.TrimSpace(value))
	if err != nil {
		return false
	}
	_, key, err := azidentity.ParseCertificates(der, nil)
	return err == nil && key != nil
}

// errText is an error's one-line description, as "error:" lines show it.
func errText(err error) string {
	msg, _, _ := describe(err)
	return oneLine(msg)
}

// auditVersionsList turns the lifetime finding of an AutoRenew certificate
// into a warning when the caller cannot list the certificate's versions:
// kvassert then cannot find the version Entra accepts after a restart that
// follows a renewal.
func auditVersionsList(ctx context.Context, client *azcertificates.Client, vc *vaultCert, findings []auditFinding) {
	for i, f := range findings {
		if f.check != "lifetime" || f.status != auditPass || !strings.HasPrefix(f.detail, "AutoRenew") {
			continue
		}
		_, err := client.NewListCertificatePropertiesVersionsPager(vc.name, nil).NextPage(ctx)
		var re *azcore.ResponseError
		if errors.As(err, &re) && re.StatusCode == http.StatusForbidden {
			findings[i] = auditFinding{"lifetime", auditWarn, "AutoRenew is supported by kvassert, but this caller cannot list the certificate's versions (certificates/list): after a restart that follows a renewal it cannot find the version Entra accepts; grant certificates/list, or register each renewed version at once"}
		}
	}
}
