package main

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"net/url"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/kvassert/kvassert/internal/kvid"
	"github.com/kvassert/kvassert/proxy"
)

func init() { extraCommands = append(extraCommands, newProxyCmd) }

// defaultProxyAddr is the proxy's default listen address (proxy.Options.Addr).
const defaultProxyAddr = "127.0.0.1:5616"

type proxyCmd struct {
	listen      string
	allowRemote bool
	allowFwd    bool
	secretFile  string
	files       []string
	fileRoot    string
	app         appFlags
	vault, cert string
	cache       tokenCacheFlags
	tenants     tenantsFlags
}

func newProxyCmd(a *App) *cobra.Command {
	c := &proxyCmd{}
	cmd := &cobra.Command{
		Use:   "proxy",
		Short: "Serve tokens to local tools and emulate the managed identity endpoint",
		Long: `Run the developer proxy on a loopback address until Ctrl+C (SIGINT) or SIGTERM.

It hands out app-only tokens signed in Key Vault to tools such as curl and
Postman (the token API, described at /openapi.json, with a web page at /), and
emulates the managed identity endpoint so that an app using
ManagedIdentityCredential (or DefaultAzureCredential) in any Azure SDK runs
locally as the multi-tenant app in a chosen tenant, unchanged:

  App Service protocol (IDENTITY_ENDPOINT + IDENTITY_HEADER):
    /msi/TENANT/CLIENT_ID/kv/VAULT/CERTIFICATE   the app, with a Key Vault certificate
    /msi/TENANT/CLIENT_ID/file/NAME              the app, with a certificate given by --file
    /msi/forward                                 your own identity (DefaultAzureCredential),
                                                 only with --allow-forward
  Cloud Shell protocol (MSI_ENDPOINT): the same under /cloudshell/SECRET/...

Every request needs a secret printed at start (new ones each run). The API
secret opens the token API ("Authorization: Bearer SECRET" or
"X-Kvassert-Secret: SECRET"), the page and /openapi.json. Each managed identity
printed gets a secret of its own (its IDENTITY_HEADER, or the path segment of
its MSI_ENDPOINT), which opens that identity's route and nothing else: give an
app only its own lines. The proxy answers only requests addressed to
127.0.0.1, [::1] or localhost, refuses cross-site browser requests, and logs
one line per request to stderr (never a token or a secret).

With --allow-remote it serves TLS only, with a self-signed certificate made at
start (ECDSA P-256, valid 7 days, for the --listen address): its SHA-256
fingerprint and public-key pin are printed for clients to pin.

With --token-cache, only the proxy's configured source (--vault and --cert,
for --client-id when given) shares tokens through Redis; certificates a
request picks always prove their key to Entra ID themselves.

Key Vault is reached with azidentity's DefaultAzureCredential (az login,
AZURE_* variables, ...), which needs certificates/get, keys/get and keys/sign.
With KVASSERT_EMULATOR set, everything goes to "kvassert emulate", with the
emulator's own identity (KVASSERT_EMULATOR_CLIENT_*), never yours.

Give --tenant and --client-id (and --vault, --cert) to have the exact
environment variables printed for your app.`,
		Example: `  kvassert proxy --tenant contoso.onmicrosoft.com --client-id $APP \
      --vault https://myvault.vault.azure.net/ --cert app-auth
  kvassert proxy --file dev=./dev-cert.pem,./dev-key.pem --secret-out ~/.kvassert-proxy-secret
  kvassert proxy --file-root ./certs --listen 127.0.0.1:8080`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return c.run(cmd.Context(), a) },
	}
	c.app.register(cmd, "tenant for the printed environment variables (ID or domain)")
	c.cache.register(cmd)
	c.tenants.register(cmd)
	fs := cmd.Flags()
	fs.StringVar(&c.listen, "listen", defaultProxyAddr, "address to listen on: 127.0.0.1:PORT or [::1]:PORT (port 0: any free port)")
	fs.BoolVar(&c.allowRemote, "allow-remote", false, "allow a non-loopback --listen address; the proxy then serves TLS only, with a self-signed certificate whose fingerprint is printed (anyone who learns a secret gets tokens)")
	fs.BoolVar(&c.allowFwd, "allow-forward", false, "serve /msi/forward: tokens of your own identity (DefaultAzureCredential) for any resource, with a secret of its own")
	fs.StringVar(&c.secretFile, "secret-out", "", "also write the per-run secret to this file (mode 0600)")
	fs.StringArrayVar(&c.files, "file", nil, "a local certificate the proxy may use, NAME=CERT.pem[,KEY.pem] (PEM, or PKCS#12 without password); repeatable")
	fs.StringVar(&c.fileRoot, "file-root", "", "directory under which the local-certificate token API may read certificate files named in requests")
	fs.StringVar(&c.vault, "vault", "", "Key Vault of the app's certificate, for the printed environment variables (URL or name)")
	fs.StringVarP(&c.cert, "cert", "n", "", "name of the certificate in --vault, for the printed environment variables")
	aliasFlag(cmd, "secret-file", "", "secret-out")
	bindEnv(cmd, fs, "listen", "KVASSERT_PROXY_LISTEN")
	bindEnv(cmd, fs, "vault", "KVASSERT_VAULT")
	bindEnv(cmd, fs, "cert", "KVASSERT_CERT")
	_ = cmd.MarkFlagFilename("secret-out")
	_ = cmd.MarkFlagDirname("file-root")
	return cmd
}

func (c *proxyCmd) run(ctx context.Context, a *App) error {
	if err := c.check(a); err != nil {
		return err
	}
	files, keyFiles, err := c.parseFiles()
	if err != nil {
		return err
	}
	customers, roles, redirect, err := c.tenants.options(a, c.app.clientID != "" && c.app.tenant != "" && c.vault != "" && c.cert != "")
	if err != nil {
		return err
	}
	if err := a.requireAzure(); err != nil {
		return err
	}
	flush, err := c.cache.checkThenStartOTel(ctx, a)
	if err != nil {
		return err
	}
	defer flush()
	cred, err := a.KeyVaultCredential()
	if err != nil {
		return err
	}
	shared, closeCache, err := c.cache.open(ctx, a)
	if err != nil {
		return err
	}
	defer closeCache()
	level := slog.LevelInfo
	if a.Verbose {
		level = slog.LevelDebug
	}
	logger := slog.New(slog.NewTextHandler(a.Stderr, &slog.HandlerOptions{Level: level}))
	vaultName, _ := c.vaultName(a) // checked; "" without --vault
	s, err := proxy.New(&proxy.Options{
		Addr: c.listen, AllowRemote: c.allowRemote, AllowForward: c.allowFwd,
		KeyVaultCredential: cred, ForwardCredential: cred,
		ClientOptions: a.ClientOptions(),
		Files:         files, KeyFiles: keyFiles, FileRoot: c.fileRoot,
		Logger: logger, LogRequests: true, SharedCache: shared,
		DefaultClientID: c.app.clientID, DefaultTenantID: c.app.tenant, DefaultVault: vaultName, DefaultCertificate: c.cert,
		Tenants: customers, TenantRoles: roles, TenantRedirectURI: redirect,
	})
	if err != nil {
		return &exitError{code: exitUsage, msg: "starting the proxy", err: err}
	}
	// The secret goes to stdout (and --secret-out) only.
	a.redactor.AddSecret(s.Secret())
	ln, err := s.Listen()
	if err != nil {
		hint := ""
		if addrInUse(err) {
			hint = "another proxy may be running; pick another port with --listen 127.0.0.1:PORT (0 for any free port)"
		}
		return &exitError{code: exitFailure, msg: "listening on " + c.listen, err: err, hint: hint}
	}
	defer ln.Close()
	if c.secretFile != "" {
		if err := writeFileAtomic(c.secretFile, []byte(s.Secret()+"\n"), 0o600); err != nil {
			return failure("writing the secret file", err)
		}
	}
	scheme := "http"
	if c.allowRemote {
		scheme = "https" // TLS only
	}
	base := scheme + "://" + ln.Addr().String()
	c.printStart(a, s, base, slices.Sorted(maps.Keys(files)))
	if err := s.Serve(ctx, ln); err != nil {
		return failure("serving", err)
	}
	fmt.Fprintln(a.Stderr, "Stopping the proxy.")
	return nil
}

// check validates the flags and refuses setups that would make the proxy
// call itself.
func (c *proxyCmd) check(a *App) error {
	if err := checkOutFile(a.flagName("secret-out"), c.secretFile); err != nil {
		return err
	}
	host, port, err := net.SplitHostPort(c.listen)
	if err != nil || !validPort(port) {
		return usageError(fmt.Sprintf("%s %q is not host:port", a.flagName("listen"), truncate(c.listen, 60)), "use 127.0.0.1:5616, or 127.0.0.1:0 for a free port")
	}
	loopback := host == "localhost"
	if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
		loopback = true
	}
	if !loopback {
		if !c.allowRemote {
			return usageError(fmt.Sprintf("%s %q is not a loopback address: the proxy hands out tokens, so it serves this machine only", a.flagName("listen"), c.listen),
				"use 127.0.0.1:PORT or [::1]:PORT, or add --allow-remote if other machines must reach it")
		}
		a.warn("--allow-remote: the proxy listens on %s over TLS; anyone on the network who learns a secret gets tokens", c.listen)
	}
	if c.cache.url != "" && (c.vault == "" || c.cert == "") {
		a.warn("--token-cache shares only the tokens of the configured source (--vault and --cert); without them nothing is shared")
	}
	if c.app.clientID != "" {
		if err := c.app.checkClientID(a); err != nil {
			return err
		}
	}
	if c.app.tenant != "" {
		if err := c.app.checkTenant(a); err != nil {
			return err
		}
	}
	if c.vault != "" || c.cert != "" {
		if _, err := c.vaultName(a); err != nil {
			return err
		}
		if c.cert == "" {
			return usageError(a.flagName("vault")+" needs --cert NAME", "give the name of the certificate in the vault")
		}
		if err := kvid.CheckName(c.cert); err != nil {
			return flagError(a.flagName("cert"), err, "certificate names have 1-127 letters, digits and '-'")
		}
	}
	// The forward route uses DefaultAzureCredential, which would ask a
	// managed identity endpoint set in this environment: if that is this
	// proxy, every forward request would call the proxy again.
	for _, name := range []string{"IDENTITY_ENDPOINT", "MSI_ENDPOINT"} {
		v := strings.TrimSpace(a.Getenv(name))
		if v == "" {
			continue
		}
		if u, err := url.Parse(v); err == nil && sameEndpoint(u.Host, c.listen) {
			return usageError(name+" points at this proxy: its own DefaultAzureCredential would call itself",
				"unset "+name+" (and IDENTITY_HEADER) in the shell that runs the proxy; set them only for your app")
		}
		if a.emu == nil {
			// Under the emulator the vault credential is the emulator's own
			// (emulatorCredential), whatever else is set: nothing to warn about.
			a.warn("%s is set: DefaultAzureCredential (Key Vault access and /msi/forward) will use that managed identity endpoint", name)
		}
	}
	return nil
}

// validPort reports whether p is a port number, 0 (any free port) to 65535.
func validPort(p string) bool {
	_, err := strconv.ParseUint(p, 10, 16)
	return err == nil
}

// sameEndpoint reports whether host (host:port of a URL) is the listen address.
func sameEndpoint(host, listen string) bool {
	h1, p1, err1 := net.SplitHostPort(host)
	h2, p2, err2 := net.SplitHostPort(listen)
	if err1 != nil || err2 != nil || p1 != p2 || p2 == "0" {
		return false
	}
	loop := func(h string) bool {
		ip := net.ParseIP(h)
		return strings.EqualFold(h, "localhost") || ip != nil && ip.IsLoopback()
	}
	return strings.EqualFold(h1, h2) || loop(h1) && loop(h2)
}

// vaultName returns the vault name of --vault (a URL of the selected cloud,
// or a bare name).
func (c *proxyCmd) vaultName(a *App) (string, error) {
	v := strings.TrimSpace(c.vault)
	if v == "" {
		return "", usageError("--cert needs --vault", "give the vault that holds the certificate: --vault https://NAME.vault.azure.net/")
	}
	if !strings.Contains(v, "/") && !strings.Contains(v, ".") {
		if err := kvid.CheckVaultName(strings.ToLower(v)); err != nil {
			return "", flagError(a.flagName("vault"), err, "use the vault's name (3-24 letters, digits and single '-', starting with a letter) or URL")
		}
		return strings.ToLower(v), nil
	}
	if err := checkVaultURL(a, "vault", v); err != nil {
		return "", err
	}
	parsed, _ := kvid.ParseVaultURL(v)
	name, suffix, _ := strings.Cut(parsed.Host, ".")
	want := kvid.VaultDomain(a.Cloud())
	if parsed.Loopback || suffix != want {
		return "", usageError(fmt.Sprintf("%s %q is not a Key Vault of the selected cloud (*.%s)", a.flagName("vault"), truncate(v, 80), want),
			"managed identity routes name vaults of the --cloud given; use --cloud for another cloud")
	}
	return name, nil
}

// parseFiles reads --file NAME=CERT[,KEY] flags: the certificate and key
// files by name (proxy.Options.Files and KeyFiles).
func (c *proxyCmd) parseFiles() (files, keyFiles map[string]string, err error) {
	if len(c.files) == 0 {
		return nil, nil, nil
	}
	files, keyFiles = map[string]string{}, map[string]string{}
	for _, f := range c.files {
		name, paths, ok := strings.Cut(f, "=")
		cert, key, _ := strings.Cut(paths, ",")
		if !ok || name == "" || cert == "" {
			return nil, nil, usageError(fmt.Sprintf("--file %q is not NAME=CERT.pem[,KEY.pem]", truncate(f, 80)), "for example --file dev=./dev-cert.pem,./dev-key.pem")
		}
		if _, dup := files[name]; dup {
			return nil, nil, usageError(fmt.Sprintf("--file: the name %q is given twice", name), "give each certificate its own name")
		}
		files[name] = cert
		if key != "" {
			keyFiles[name] = key
		}
	}
	return files, keyFiles, nil
}

// startPrinter writes the start banner of the proxy to stdout.
type startPrinter struct {
	a  *App
	w  io.Writer
	st style
}

func (p *startPrinter) comment(t string) { fmt.Fprintln(p.w, p.st.dim("# "+t)) }

// export prints an export line; the secrets in it (IDENTITY_HEADER, the
// path segment of MSI_ENDPOINT) are registered with the redactor.
func (p *startPrinter) export(kv string) {
	k, v, _ := strings.Cut(kv, "=")
	if k == "IDENTITY_HEADER" || k == "MSI_ENDPOINT" {
		p.a.redactor.AddSecret(v)
		if k == "MSI_ENDPOINT" {
			if _, rest, ok := strings.Cut(v, "/cloudshell/"); ok {
				secret, _, _ := strings.Cut(rest, "/")
				p.a.redactor.AddSecret(secret)
			}
		}
	}
	fmt.Fprintf(p.w, "export %s=%s\n", k, shellQuote(v))
}

// exportAll prints the export lines of vars, unless err.
func (p *startPrinter) exportAll(vars []string, err error) {
	if err != nil {
		return
	}
	for _, v := range vars {
		p.export(v)
	}
}

// printStart prints where the proxy is, its API secret, and the
// environment variables (each with its own secret) for each managed
// identity target. Every secret printed is registered with the redactor:
// stdout only, never stderr. fileNames are the names of --file.
func (c *proxyCmd) printStart(a *App, s *proxy.Server, base string, fileNames []string) {
	p := &startPrinter{a: a, w: a.Stdout, st: a.style()}
	c.printWhere(p, s, base)
	c.printTokenAPI(p, s, base)
	c.printIdentities(p, s, base, fileNames)
	fmt.Fprintln(p.w, "\nServing until Ctrl+C or SIGTERM; requests are logged to stderr.")
}

// printWhere prints the proxy's address, TLS pins, API secret and page.
func (c *proxyCmd) printWhere(p *startPrinter, s *proxy.Server, base string) {
	w := p.w
	target := "Azure (DefaultAzureCredential)"
	if u, ok := p.a.Emulator(); ok {
		target = "the emulator at " + u
	}
	fmt.Fprintf(w, "%s %s, reaching %s\n", p.st.bold("kvassert proxy:"), p.st.cyan(base), target)
	if fp := s.Fingerprint(); fp != "" {
		fmt.Fprintf(w, "TLS certificate (self-signed, new each run, valid 7 days): SHA-256 fingerprint %s\n", fp)
		fmt.Fprintf(w, "public key pin (curl --pinnedpubkey): %s\n", s.PublicKeyPin())
	}
	fmt.Fprintf(w, "API secret (new each run; token API, page, OpenAPI): %s\n", s.Secret())
	if c.secretFile != "" {
		if abs, err := filepath.Abs(c.secretFile); err == nil {
			fmt.Fprintf(w, "secret file: %s\n", abs)
		}
	}
	// The page's script reads the secret from the fragment, which browsers
	// never send to a server.
	fmt.Fprintf(w, "web page: %s/#secret=%s\n", base, s.Secret())
	fmt.Fprintf(w, "OpenAPI: %s/openapi.json (send the API secret)\n", base)
	fmt.Fprintf(w, "liveness: %s/healthz (no secret)\n\n", base)
}

// printTokenAPI prints the curl command of the token API.
func (c *proxyCmd) printTokenAPI(p *startPrinter, s *proxy.Server, base string) {
	p.comment("Token API (curl, Postman): send the API secret as a bearer token.")
	p.export("KVASSERT_PROXY_SECRET=" + s.Secret())
	tenant, client := cmp.Or(c.app.tenant, "TENANT"), cmp.Or(c.app.clientID, "CLIENT_ID")
	vaultURL, certName := "https://VAULT.vault.azure.net/", "CERTIFICATE"
	if vaultName, _ := c.vaultName(p.a); vaultName != "" {
		vaultURL, certName = c.vault, c.cert
		if !strings.Contains(vaultURL, "/") {
			vaultURL = "https://" + vaultName + "." + kvid.VaultDomain(p.a.Cloud()) + "/"
		}
	}
	body := fmt.Sprintf(`{"clientId":"%s","tenantId":"%s","scopes":["https://graph.microsoft.com/.default"],"keyVaultUri":"%s","certificateName":"%s"}`, client, tenant, vaultURL, certName)
	pin := ""
	if s.Fingerprint() != "" {
		pin = " -k --pinnedpubkey '" + s.PublicKeyPin() + "'"
	}
	fmt.Fprintf(p.w, "curl -sS%s %s/api/token/kv-certificate -H \"Authorization: Bearer $KVASSERT_PROXY_SECRET\" \\\n    -H 'Content-Type: application/json' -d %s\n\n", pin, base, shellQuote(body))
}

// printIdentities prints the managed identity environment of each target:
// the configured vault certificate, each --file, forwarding, and the Cloud
// Shell protocol. Without --tenant and --client-id it prints the routes.
func (c *proxyCmd) printIdentities(p *startPrinter, s *proxy.Server, base string, fileNames []string) {
	p.comment("Managed identity for an app run locally (App Service protocol: ManagedIdentityCredential, DefaultAzureCredential).")
	p.comment("Each identity has its own IDENTITY_HEADER, which opens its route only: give an app its own lines.")
	tenant, client := c.app.tenant, c.app.clientID
	concrete := tenant != "" && client != ""
	vaultName, _ := c.vaultName(p.a)
	appEnv := func(t proxy.Target) {
		t.Tenant, t.ClientID = tenant, client
		p.exportAll(s.AppServiceEnv(base, t))
	}
	switch {
	case concrete && vaultName != "":
		p.comment(fmt.Sprintf("App %s in tenant %s, certificate %s in vault %s:", client, tenant, c.cert, vaultName))
		appEnv(proxy.Target{Vault: vaultName, Certificate: c.cert})
	case !concrete:
		p.comment("Give --tenant and --client-id (and --vault, --cert) for the exact lines and their secrets; the routes are:")
		p.comment("  " + base + "/msi/TENANT/CLIENT_ID/kv/VAULT/CERTIFICATE")
	}
	for _, name := range fileNames {
		if concrete {
			p.comment(fmt.Sprintf("App %s in tenant %s, certificate file %q:", client, tenant, name))
			appEnv(proxy.Target{File: name})
		} else {
			p.comment("  " + base + "/msi/TENANT/CLIENT_ID/file/" + name)
		}
	}
	if c.allowFwd {
		p.comment("Or your own identity (this shell's DefaultAzureCredential, any resource: keep this secret to yourself):")
		p.exportAll(s.AppServiceEnv(base, proxy.Target{Forward: true}))
	} else {
		p.comment("Tokens of your own identity (/msi/forward) are off; start with --allow-forward to serve them.")
	}
	if concrete && vaultName != "" {
		p.comment("Or the Cloud Shell protocol, for tools that read only MSI_ENDPOINT (unset IDENTITY_ENDPOINT; the path holds this identity's secret):")
		p.exportAll(s.CloudShellEnv(base, proxy.Target{Tenant: tenant, ClientID: client, Vault: vaultName, Certificate: c.cert}))
	}
}
