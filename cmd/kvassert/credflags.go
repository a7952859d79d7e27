package main

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/kvassert/kvassert"
	"github.com/kvassert/kvassert/assertion"
	"github.com/kvassert/kvassert/internal/certfile"
	"github.com/kvassert/kvassert/internal/entraid"
	"github.com/kvassert/kvassert/internal/jwtassert"
	"github.com/kvassert/kvassert/internal/kvid"
)

// appFlags name the multi-tenant app and the tenant to get a token in.
type appFlags struct {
	clientID string
	tenant   string
}

func (f *appFlags) register(cmd *cobra.Command, tenantUsage string) {
	fs := cmd.Flags()
	fs.StringVar(&f.clientID, "client-id", "", "application (client) ID of the multi-tenant app")
	fs.StringVarP(&f.tenant, "tenant", "t", "", tenantUsage)
	bindEnv(cmd, fs, "client-id", "KVASSERT_CLIENT_ID", "AZURE_CLIENT_ID")
	bindEnv(cmd, fs, "tenant", "KVASSERT_TENANT_ID", "AZURE_TENANT_ID")
}

// checkClientID validates --client-id (required).
func (f *appFlags) checkClientID(a *App) error {
	if f.clientID == "" {
		return usageError("--client-id is required", "give the application (client) ID of the app registration, or set KVASSERT_CLIENT_ID")
	}
	if !entraid.ValidClientID(f.clientID) {
		return usageError(fmt.Sprintf("%s %q is not a GUID", a.flagName("client-id"), truncate(f.clientID, 60)), "use the Application (client) ID shown on the app registration's overview page")
	}
	return nil
}

// checkTenant validates --tenant (required).
func (f *appFlags) checkTenant(a *App) error {
	if f.tenant == "" {
		return usageError("--tenant is required", "give the tenant ID or domain (contoso.onmicrosoft.com) to get the token in, or set KVASSERT_TENANT_ID")
	}
	switch strings.ToLower(f.tenant) {
	case "common", "organizations", "consumers", "adfs", "dstsv2":
		return usageError(fmt.Sprintf("%s %q: app-only tokens need a specific tenant", a.flagName("tenant"), f.tenant), "give the customer's tenant ID or domain")
	}
	if !validTenantName(f.tenant) {
		return usageError(fmt.Sprintf("%s %q is not a tenant ID or domain", a.flagName("tenant"), truncate(f.tenant, 60)), "use a GUID or a domain such as contoso.onmicrosoft.com")
	}
	return nil
}

// credFlags choose how client assertions are made; "kvassert token",
// "kvassert assertion" (and the developer proxy) share them. Exactly one of:
//
//	--vault URL --cert NAME                 a Key Vault certificate (key never leaves the vault)
//	--key-id URL --cert-file PEM            a Key Vault key and its certificate
//	--key-id URL --thumbprint T             a Key Vault key and its certificate's thumbprint
//	--cert-file PEM [--key-file PEM]        a local certificate and key (development)
//	--cert-file PFX [--password-env VAR]    a local PKCS#12 file (development)
//	--managed-identity CLIENT_ID            a managed identity as federated credential
type credFlags struct {
	vault, cert       string
	keyID             string
	certFile, keyFile string
	thumbprint        string
	passwordEnv       string
	managedIdentity   string
	alg               string
	lifetime          time.Duration
	x5c               bool
	password          string // hidden: refused with an explanation
	cmdName           string
	algFlag           *pflag.Flag // --alg, to tell an explicit choice from its default
}

// credential kinds.
const (
	credVault = iota + 1
	credKeyCert
	credKeyThumbprint
	credLocal
	credManagedIdentity
)

func (c *credFlags) register(cmd *cobra.Command) {
	fs := cmd.Flags()
	c.cmdName = cmd.CommandPath()
	fs.StringVar(&c.vault, "vault", "", "Key Vault holding the app's certificate, https://NAME.vault.azure.net/")
	fs.StringVarP(&c.cert, "cert", "n", "", "name of the certificate in --vault")
	fs.StringVar(&c.keyID, "key-id", "", "Key Vault or Managed HSM key to sign with, https://NAME.vault.azure.net/keys/KEY/VERSION (with --cert-file or --thumbprint)")
	fs.StringVar(&c.certFile, "cert-file", "", "certificate file: PEM or DER (with --key-id), PEM with key or PKCS#12 (alone; development only)")
	fs.StringVar(&c.keyFile, "key-file", "", "PEM private key for --cert-file (development only)")
	fs.StringVar(&c.thumbprint, "thumbprint", "", "thumbprint of the certificate registered for --key-id: SHA-1 hex as the portal shows it (RS256 with x5t), SHA-256 hex (PS256 with x5t#S256), or base64url")
	fs.StringVar(&c.passwordEnv, "password-env", "", "name of the environment variable that holds the PKCS#12 password (never pass a password as a flag)")
	fs.StringVar(&c.managedIdentity, "managed-identity", "", "client ID of a user-assigned managed identity the app trusts as a federated credential (in the app's home tenant)")
	fs.StringVar(&c.alg, "alg", "PS256", "assertion algorithm: PS256 (x5t#S256 header) or RS256 (x5t header, for ADFS); with --thumbprint the thumbprint's own unless given")
	c.algFlag = fs.Lookup("alg")
	fs.DurationVar(&c.lifetime, "lifetime", jwtassert.DefaultLifetime, "assertion lifetime, 1m to 60m (Entra recommends 5m-10m)")
	fs.BoolVar(&c.x5c, "x5c", false, "send the certificate in the x5c header (apps that trust subject name and issuer)")
	fs.StringVar(&c.password, "password", "", "refused: use --password-env")
	_ = fs.MarkHidden("password")
	bindEnv(cmd, fs, "vault", "KVASSERT_VAULT")
	bindEnv(cmd, fs, "cert", "KVASSERT_CERT")
	bindEnv(cmd, fs, "key-id", "KVASSERT_KEY_ID")
	bindEnv(cmd, fs, "cert-file", "KVASSERT_CERT_FILE")
	bindEnv(cmd, fs, "key-file", "KVASSERT_KEY_FILE")
	bindEnv(cmd, fs, "thumbprint", "KVASSERT_THUMBPRINT")
	bindEnv(cmd, fs, "password-env", "KVASSERT_PASSWORD_ENV")
	bindEnv(cmd, fs, "managed-identity", "KVASSERT_MANAGED_IDENTITY")
	bindEnv(cmd, fs, "alg", "KVASSERT_ALG")
	kindFlags(fs,
		[]string{"managed-identity"},
		[]string{"vault", "cert"},
		[]string{"key-id", "thumbprint", "cert-file"},
		[]string{"cert-file", "key-file", "password-env"},
	)
	exclusive(cmd, credConflicts()...)
	_ = cmd.RegisterFlagCompletionFunc("alg", fixedCompletion("PS256", "RS256"))
	_ = cmd.MarkFlagFilename("cert-file", "pem", "crt", "cer", "pfx", "p12")
	_ = cmd.MarkFlagFilename("key-file", "pem", "key")
}

// kind checks that the flags name exactly one credential.
func (c *credFlags) kind(a *App) (int, error) {
	if c.password != "" {
		return 0, usageError("--password is not accepted: a password on the command line ends up in shell history and process lists",
			"put the PKCS#12 password in an environment variable and name it with --password-env VAR")
	}
	hint := fmt.Sprintf("see '%s --help' for the credential flags", c.cmdName)
	k, err := c.pickKind(a, hint)
	if err != nil {
		return 0, err
	}
	if err := c.checkAssertionFlags(a, k, hint); err != nil {
		return 0, err
	}
	return k, nil
}

// pickKind finds the one credential the flags name and checks its flags.
func (c *credFlags) pickKind(a *App, hint string) (int, error) {
	n := a.flagName
	switch {
	case c.managedIdentity != "":
		return c.managedIdentityKind(a, hint)
	case c.vault != "" || c.cert != "":
		return c.vaultKind(a, hint)
	case c.keyID != "":
		return c.keyIDKind(a, hint)
	case c.certFile != "":
		if c.thumbprint != "" {
			return 0, usageError(n("thumbprint")+" needs --key-id", hint)
		}
		return credLocal, nil
	case c.thumbprint != "":
		return 0, usageError(n("thumbprint")+" needs --key-id", hint)
	case c.keyFile != "":
		return 0, usageError(n("key-file")+" needs --cert-file", hint)
	}
	return 0, usageError("no credential given",
		"give --vault URL --cert NAME (or --key-id, --cert-file, --managed-identity), or set KVASSERT_VAULT and KVASSERT_CERT")
}

// managedIdentityKind checks --managed-identity, which stands alone.
func (c *credFlags) managedIdentityKind(a *App, hint string) (int, error) {
	n := a.flagName
	for _, o := range []string{c.vault, c.cert, c.keyID, c.certFile, c.keyFile, c.thumbprint} {
		if o != "" {
			return 0, usageError(n("managed-identity")+" cannot be combined with certificate flags (--vault, --cert, --key-id, --cert-file, --key-file, --thumbprint)", hint)
		}
	}
	if !entraid.ValidClientID(c.managedIdentity) {
		return 0, usageError(fmt.Sprintf("%s %q is not a client ID (GUID)", n("managed-identity"), truncate(c.managedIdentity, 60)), "give the client ID of the user-assigned managed identity")
	}
	return credManagedIdentity, nil
}

// vaultKind checks --vault and --cert.
func (c *credFlags) vaultKind(a *App, hint string) (int, error) {
	n := a.flagName
	switch {
	case c.vault == "":
		return 0, usageError(n("cert")+" needs --vault", "give the vault that holds the certificate: --vault https://NAME.vault.azure.net/")
	case c.cert == "":
		return 0, usageError(n("vault")+" needs --cert NAME", "give the name of the certificate in the vault")
	case c.keyID != "" || c.certFile != "" || c.keyFile != "" || c.thumbprint != "":
		return 0, usageError("--vault/--cert cannot be combined with --key-id, --cert-file, --key-file or --thumbprint", hint)
	}
	if err := checkVaultURL(a, "vault", c.vault); err != nil {
		return 0, err
	}
	if err := kvid.CheckName(c.cert); err != nil {
		return 0, flagError(n("cert"), err, "certificate names have 1-127 letters, digits and '-'")
	}
	return credVault, nil
}

// keyIDKind checks --key-id with --cert-file or --thumbprint.
func (c *credFlags) keyIDKind(a *App, hint string) (int, error) {
	n := a.flagName
	id, err := kvid.ParseKeyID(c.keyID)
	if err != nil {
		return 0, flagError(n("key-id"), err, "use the key's identifier, https://NAME.vault.azure.net/keys/KEY/VERSION (a certificate's kid)")
	}
	if err := checkLoopbackVault(a, "key-id", id.Vault); err != nil {
		return 0, err
	}
	switch {
	case c.keyFile != "":
		return 0, usageError("--key-file cannot be used with --key-id: the key is in the vault", hint)
	case c.certFile != "" && c.thumbprint != "":
		return 0, usageError("give either --cert-file or --thumbprint with --key-id, not both", hint)
	case c.certFile != "":
		return credKeyCert, nil
	case c.thumbprint != "":
		if _, err := jwtassert.ParseThumbprint(c.thumbprint); err != nil {
			return 0, flagError(n("thumbprint"), err, "copy the thumbprint from the app registration's Certificates & secrets page")
		}
		return credKeyThumbprint, nil
	}
	return 0, usageError(n("key-id")+" needs the certificate registered on the app: --cert-file FILE or --thumbprint HEX", hint)
}

// checkAssertionFlags checks the flags that shape the assertion of kind k:
// --password-env, --alg and --lifetime.
func (c *credFlags) checkAssertionFlags(a *App, k int, hint string) error {
	n := a.flagName
	if c.passwordEnv != "" && k != credLocal {
		return usageError(n("password-env")+" only applies to a PKCS#12 --cert-file", hint)
	}
	if k == credManagedIdentity && !a.fromEnv("alg") && c.alg != "PS256" {
		return usageError("--alg applies to certificate credentials, not to --managed-identity", hint)
	}
	if k != credManagedIdentity {
		if _, err := jwtassert.ParseAlgorithm(c.alg); err != nil {
			return flagError(n("alg"), err, "use PS256 (default) or RS256")
		}
	}
	if c.lifetime < jwtassert.MinLifetime || c.lifetime > jwtassert.MaxLifetime {
		return usageError(fmt.Sprintf("--lifetime %v is outside 1m..60m", c.lifetime), "Entra recommends 5m to 10m")
	}
	return nil
}

// source makes the Source the flags describe. Nothing is read from the
// vault yet (except for --thumbprint, which reads the key's public half).
func (c *credFlags) source(ctx context.Context, a *App) (kvassert.Source, error) {
	k, err := c.kind(a)
	if err != nil {
		return nil, err
	}
	alg, _ := jwtassert.ParseAlgorithm(c.alg)
	if k == credKeyThumbprint && !c.algFlag.Changed {
		alg = "" // the thumbprint picks it: SHA-1 RS256 (x5t), SHA-256 PS256 (x5t#S256)
	}
	keyOpts := func(thumbprint string) *kvassert.KeyVaultKeyOptions {
		return &kvassert.KeyVaultKeyOptions{ClientOptions: a.ClientOptions(), AllowLoopback: a.allowLoopbackVault(), Thumbprint: thumbprint,
			Algorithm: assertion.Algorithm(alg), Lifetime: c.lifetime, IncludeX5C: c.x5c}
	}
	switch k {
	case credManagedIdentity:
		if err := a.requireAzure(); err != nil {
			return nil, err
		}
		if a.emu != nil && !a.emulatorIdentityEndpoint() {
			// The managed identity's token becomes the client assertion
			// sent to the emulator: it must be the emulator's own.
			return nil, usageError(a.flagName("managed-identity")+" with KVASSERT_EMULATOR set needs the emulator's managed identity endpoint",
				"set IDENTITY_ENDPOINT and IDENTITY_HEADER as 'kvassert emulate' prints them (no other endpoint's token is sent to an emulator)")
		}
		src, err := kvassert.NewManagedIdentitySource(&kvassert.ManagedIdentityOptions{
			ClientID: c.managedIdentity, ClientOptions: a.ClientOptions(), // its Cloud selects the audience
		})
		if err != nil {
			return nil, failure("managed identity", err)
		}
		return src, nil
	case credLocal:
		var password []byte
		if c.passwordEnv != "" {
			v, ok := os.LookupEnv(c.passwordEnv)
			if !ok {
				return nil, usageError(fmt.Sprintf("%s names the environment variable %q, which is not set", a.flagName("password-env"), c.passwordEnv),
					"export the PKCS#12 password in that variable first")
			}
			a.redactor.AddSecret(v)
			password = []byte(v)
		}
		cert, key, err := certfile.Load(c.certFile, c.keyFile, password)
		if err != nil {
			return nil, certFileError(c.certFile, err)
		}
		src, err := kvassert.NewLocalSource(cert, key, &kvassert.LocalCertificateOptions{Algorithm: assertion.Algorithm(alg), Lifetime: c.lifetime, IncludeX5C: c.x5c})
		if err != nil {
			return nil, failure(c.certFile, err)
		}
		return src, nil
	}
	// Key Vault credentials.
	if err := a.requireAzure(); err != nil {
		return nil, err
	}
	cred, err := a.KeyVaultCredential()
	if err != nil {
		return nil, err
	}
	switch k {
	case credVault:
		src, err := kvassert.NewKeyVaultCertificateSource(c.vault, c.cert, cred, &kvassert.KeyVaultCertificateOptions{
			ClientOptions: a.ClientOptions(), AllowLoopback: a.allowLoopbackVault(), Logger: a.Logger,
			Algorithm: assertion.Algorithm(alg), Lifetime: c.lifetime, IncludeX5C: c.x5c,
		})
		if err != nil {
			return nil, failure("certificate "+c.cert, err)
		}
		return src, nil
	case credKeyCert:
		cert, err := readCertificateFile(c.certFile)
		if err != nil {
			return nil, err
		}
		src, err := kvassert.NewKeyVaultKeySource(c.keyID, cert, cred, keyOpts(""))
		if err != nil {
			return nil, failure("key "+c.keyID, err)
		}
		return src, nil
	default: // credKeyThumbprint
		src, err := kvassert.NewKeyVaultKeySource(c.keyID, nil, cred, keyOpts(c.thumbprint))
		if err != nil {
			return nil, failure("key "+c.keyID, err)
		}
		return src, nil
	}
}

// certFileError reports a certificate or key file that
// certfile.Load refused, naming the file once: the one in
// the fs.PathError, or certFile for data it could not parse.
func certFileError(certFile string, err error) error {
	path := certFile
	var pe *fs.PathError
	if errors.As(err, &pe) {
		path = pe.Path
	}
	hint := "give a PEM file with the certificate and its key, --key-file for a separate PEM key, or a PKCS#12 file (--password-env for its password)"
	if errors.Is(err, certfile.ErrNoPrivateKey) {
		hint = "the private key is not in " + certFile + ": give its PEM file with --key-file"
	}
	// The file is the user's input: missing, unreadable or not a
	// certificate, it is a usage error (exit 2), found before any request.
	return &exitError{code: exitUsage, msg: "reading " + path, err: err, hint: hint}
}

// checkVaultURL validates a vault URL flag: https, a vault host (or the
// emulator's loopback address), nothing else.
func checkVaultURL(a *App, flag, raw string) error {
	v, err := kvid.ParseVaultURL(raw)
	if err != nil {
		hint := "use https://NAME.vault.azure.net/ (or the vault's URL in another cloud)"
		if strings.HasPrefix(strings.ToLower(raw), "http://") {
			hint = "Key Vault only speaks https: use https://" + strings.TrimPrefix(strings.TrimPrefix(raw, "http://"), "HTTP://")
		}
		return flagError(a.flagName(flag), err, hint)
	}
	if err := checkLoopbackVault(a, flag, v); err != nil {
		return err
	}
	if v.ManagedHSM && flag == "vault" {
		return usageError(a.flagName(flag)+": a Managed HSM holds keys, not certificates", "keep the certificate in a Key Vault, or use --key-id with --cert-file or --thumbprint")
	}
	return nil
}

// allowLoopbackVault reports whether vault URLs on this machine are
// accepted: only with the emulator configured, whose transport trusts the
// emulator's CA alone, so the Key Vault token can reach no other listener.
func (a *App) allowLoopbackVault() bool { return a.emu != nil }

// checkLoopbackVault refuses a vault on this machine unless the emulator
// is configured: a URL from a flag or the environment must never make
// kvassert send a real Key Vault token to a local listener.
func checkLoopbackVault(a *App, flag string, v kvid.Vault) error {
	if v.Loopback && !a.allowLoopbackVault() {
		return usageError(fmt.Sprintf("%s: %s is an address on this machine; kvassert sends its Key Vault token there only to the emulator", a.flagName(flag), v.Host),
			"use the vault's https://NAME.vault.azure.net/ URL, or set "+envEmulator+" and "+envCAFile+" to use the emulator")
	}
	return nil
}

// readCertificateFile reads one X.509 certificate, PEM or DER.
func readCertificateFile(path string) (*x509.Certificate, error) {
	data, err := readSmallFile(path, 1<<20)
	if err != nil {
		return nil, &exitError{code: exitFailure, msg: "reading the certificate file", err: err}
	}
	der := data
	if strings.Contains(string(data), "-----BEGIN") {
		der = nil
		rest := data
		for {
			var b *pem.Block
			b, rest = pem.Decode(rest)
			if b == nil {
				break
			}
			if b.Type == "CERTIFICATE" {
				der = b.Bytes
				break
			}
		}
		if der == nil {
			return nil, &exitError{code: exitFailure, msg: path + " holds no PEM CERTIFICATE block", hint: "give the public certificate (.cer, .pem, .crt), e.g. from 'kvassert cert export'"}
		}
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, &exitError{code: exitFailure, msg: path + " is not an X.509 certificate (PEM or DER)", hint: "give the public certificate (.cer, .pem, .crt), e.g. from 'kvassert cert export'"}
	}
	return cert, nil
}
