package main

import (
	"context"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azsecrets"

	"github.com/kvassert/kvassert/internal/emuhook"
	"github.com/kvassert/kvassert/internal/testcert"
	"github.com/kvassert/kvassert/internal/testfixture"
	"github.com/kvassert/kvassert/kvasserttest"
	"github.com/kvassert/kvassert/kvasserttest/scenario"
)

// tokenOut is "kvassert token" JSON.
type tokenOut struct {
	AccessToken string `json:"accessToken"`
	ExpiresOn   string `json:"expiresOn"`
	ExpiresOnTS int64  `json:"expires_on"`
	Tenant      string `json:"tenant"`
	TokenType   string `json:"tokenType"`
}

func parseToken(t *testing.T, r result) tokenOut {
	t.Helper()
	wantOK(t, r)
	var out tokenOut
	dec := json.NewDecoder(strings.NewReader(r.stdout))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&out); err != nil {
		t.Fatalf("token output: %v\n%s", err, r.stdout)
	}
	return out
}

// checkToken asserts an access token for the demo app in tenant.
func checkToken(t *testing.T, out tokenOut, tenant string) {
	t.Helper()
	claims := jwtClaims(out.AccessToken)
	if claims == nil {
		t.Fatalf("accessToken is not a JWT")
	}
	if claims["tid"] != tenant || claims["appid"] != scenario.DemoAppClientID || out.Tenant != tenant {
		t.Errorf("token tid %v appid %v, output tenant %s; want tenant %s, app %s", claims["tid"], claims["appid"], out.Tenant, tenant, scenario.DemoAppClientID)
	}
	if out.TokenType != "Bearer" {
		t.Errorf("tokenType = %q", out.TokenType)
	}
	exp, err := time.ParseInLocation(expiresOnLayout, out.ExpiresOn, time.Local)
	if err != nil {
		t.Errorf("expiresOn %q: %v", out.ExpiresOn, err)
	} else if exp.Unix() != out.ExpiresOnTS {
		t.Errorf("expiresOn %s is not expires_on %d", out.ExpiresOn, out.ExpiresOnTS)
	}
	if left := time.Until(time.Unix(out.ExpiresOnTS, 0)); left < 30*time.Minute || left > 2*time.Hour {
		t.Errorf("token expires in %v", left)
	}
}

func TestToken(t *testing.T) {
	t.Parallel()
	env := newCLIEnv(t)

	// Everything from the environment that "kvassert emulate" prints.
	out := parseToken(t, env.run([]string{"token", "--tenant", "contoso.onmicrosoft.com"}))
	checkToken(t, out, scenario.DemoContosoTenant)

	// All flags, no KVASSERT_* variables (only the Key Vault identity).
	r := env.run([]string{"token", "--tenant", emuhook.DemoFabrikamTenant, "--client-id", scenario.DemoAppClientID,
		"--vault", env.vaultURL(), "--cert", scenario.DemoCertificate, "--scope", "https://graph.microsoft.com/.default"},
		"KVASSERT_CLIENT_ID=", "KVASSERT_VAULT=", "KVASSERT_CERT=")
	checkToken(t, parseToken(t, r), emuhook.DemoFabrikamTenant)

	// --resource, RS256 with x5t, x5c.
	r = env.run([]string{"token", "--tenant", "northwind.onmicrosoft.com", "--resource", "https://management.azure.com/", "--alg", "RS256", "--x5c", "--lifetime", "5m"})
	out = parseToken(t, r)
	checkToken(t, out, emuhook.DemoNorthwindTenant)
	if aud := jwtClaims(out.AccessToken)["aud"]; aud != "https://management.azure.com" {
		t.Errorf("aud = %v", aud)
	}

	// tsv and table.
	r = env.run([]string{"token", "--tenant", "contoso.onmicrosoft.com", "-o", "tsv"})
	wantOK(t, r)
	f := strings.Split(strings.TrimSuffix(r.stdout, "\n"), "\t")
	if len(f) != 5 || jwtClaims(f[0]) == nil || f[3] != scenario.DemoContosoTenant || f[4] != "Bearer" {
		t.Errorf("tsv = %q", r.stdout)
	}
	if _, err := strconv.ParseInt(f[2], 10, 64); err != nil {
		t.Errorf("tsv expires_on %q", f[2])
	}
	r = env.run([]string{"token", "--tenant", "contoso.onmicrosoft.com", "-o", "table"}, "KVASSERT_OUTPUT=json")
	wantOK(t, r)
	// az's table: a header row, dashes, one row.
	if rows := strings.Split(strings.TrimSuffix(r.stdout, "\n"), "\n"); len(rows) != 3 || !strings.HasPrefix(rows[0], "AccessToken ") ||
		!strings.HasSuffix(rows[0], "  TokenType") || !strings.HasPrefix(rows[1], "---") || !strings.HasPrefix(rows[2], "eyJ") || !strings.HasSuffix(rows[2], "  Bearer") {
		t.Errorf("table = %q", r.stdout)
	}
	r = env.run([]string{"token", "--tenant", "contoso.onmicrosoft.com"}, "KVASSERT_OUTPUT=tsv")
	wantOK(t, r)
	if strings.HasPrefix(r.stdout, "{") {
		t.Error("KVASSERT_OUTPUT=tsv was ignored")
	}
}

func TestTokenEnvPrecedence(t *testing.T) {
	t.Parallel()
	env := newCLIEnv(t)
	const other = "00000000-0000-4000-8000-000000000001"
	// KVASSERT_CLIENT_ID beats AZURE_CLIENT_ID (the workload's); KVASSERT_TENANT_ID beats AZURE_TENANT_ID.
	out := parseToken(t, env.run([]string{"token"}, "KVASSERT_TENANT_ID="+emuhook.DemoNorthwindTenant))
	checkToken(t, out, emuhook.DemoNorthwindTenant)
	// The flag beats KVASSERT_*.
	out = parseToken(t, env.run([]string{"token", "--client-id", scenario.DemoAppClientID, "--tenant", scenario.DemoContosoTenant},
		"KVASSERT_CLIENT_ID="+other, "KVASSERT_TENANT_ID="+emuhook.DemoWingtipTenant))
	checkToken(t, out, scenario.DemoContosoTenant)
	// Without KVASSERT_TENANT_ID, AZURE_TENANT_ID (the home tenant) is used.
	out = parseToken(t, env.run([]string{"token"}))
	checkToken(t, out, scenario.DemoHomeTenant)
	// An explicit credential flag of another kind is not mixed with KVASSERT_VAULT/KVASSERT_CERT.
	certFile := env.exportPEM(t, scenario.DemoCertificate)
	kid := env.kid(t, scenario.DemoCertificate)
	out = parseToken(t, env.run([]string{"token", "--tenant", "contoso.onmicrosoft.com", "--key-id", kid, "--cert-file", certFile}))
	checkToken(t, out, scenario.DemoContosoTenant)
	// A bad value from the environment is named as such.
	wantError(t, env.run([]string{"token"}, "KVASSERT_CLIENT_ID=not-a-guid"), exitUsage, `KVASSERT_CLIENT_ID "not-a-guid" is not a GUID`, "Application (client) ID")
}

// exportPEM writes a vault certificate's PEM to a temp file.
func (c *cliEnv) exportPEM(t *testing.T, name string) string {
	t.Helper()
	cert, err := c.e.Certificate(scenario.DemoVault, name)
	if err != nil {
		t.Fatal(err)
	}
	der := cert.Raw
	p := filepath.Join(t.TempDir(), name+".pem")
	if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// kid is the versioned key ID of a vault certificate, from "cert show".
func (c *cliEnv) kid(t *testing.T, name string) string {
	t.Helper()
	r := c.run([]string{"cert", "show", "--cert", name, "-o", "json"})
	wantOK(t, r)
	var show map[string]any
	if err := json.Unmarshal([]byte(r.stdout), &show); err != nil {
		t.Fatal(err)
	}
	kid, _ := show["kid"].(string)
	if kid == "" {
		t.Fatalf("no kid in %s", r.stdout)
	}
	return kid
}

func TestTokenKeyVaultKey(t *testing.T) {
	t.Parallel()
	env := newCLIEnv(t)
	kid := env.kid(t, scenario.DemoCertificate)
	cert, err := env.e.Certificate(scenario.DemoVault, scenario.DemoCertificate)
	if err != nil {
		t.Fatal(err)
	}
	certFile := env.exportPEM(t, scenario.DemoCertificate)
	noVault := []string{"KVASSERT_VAULT=", "KVASSERT_CERT="}
	for _, args := range [][]string{
		{"--key-id", kid, "--thumbprint", thumbprintHex(cert)},
		{"--key-id", kid, "--thumbprint", thumbprintHex(cert), "--alg", "RS256"},
		{"--key-id", kid, "--cert-file", certFile},
		{"--key-id", kid, "--cert-file", certFile, "--alg", "rs256"},
	} {
		r := env.run(append([]string{"token", "--tenant", "fabrikam.onmicrosoft.com"}, args...), noVault...)
		checkToken(t, parseToken(t, r), emuhook.DemoFabrikamTenant)
	}
	// From the environment alone.
	r := env.run([]string{"token", "--tenant", "fabrikam.onmicrosoft.com"}, "KVASSERT_VAULT=", "KVASSERT_CERT=", "KVASSERT_KEY_ID="+kid, "KVASSERT_THUMBPRINT="+thumbprintHex(cert))
	checkToken(t, parseToken(t, r), emuhook.DemoFabrikamTenant)
}

// selfSigned makes a 2048-bit RSA certificate and its key.
func selfSigned(t *testing.T, cn string) (*x509.Certificate, *rsa.PrivateKey) {
	t.Helper()
	c := testcert.New(t, &testcert.Options{Serial: time.Now().UnixNano(), CommonName: cn})
	return c.Cert, c.RSA(t)
}

func TestTokenLocalFiles(t *testing.T) {
	t.Parallel()
	env := newCLIEnv(t)
	dir := t.TempDir()
	noVault := []string{"KVASSERT_VAULT=", "KVASSERT_CERT="}

	// PEM certificate and key in separate files.
	cert, key := selfSigned(t, "kvassert local test")
	if err := env.e.RegisterCertificate(scenario.DemoAppClientID, cert); err != nil {
		t.Fatal(err)
	}
	certFile, keyFile := filepath.Join(dir, "c.pem"), filepath.Join(dir, "k.pem")
	os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw}), 0o600)
	os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)}), 0o600)
	r := env.run([]string{"token", "--tenant", "contoso.onmicrosoft.com", "--cert-file", certFile, "--key-file", keyFile}, noVault...)
	checkToken(t, parseToken(t, r), scenario.DemoContosoTenant)
	// Explicit local flags win over KVASSERT_VAULT/KVASSERT_CERT in the environment.
	r = env.run([]string{"token", "--tenant", "contoso.onmicrosoft.com", "--cert-file", certFile, "--key-file", keyFile})
	checkToken(t, parseToken(t, r), scenario.DemoContosoTenant)

	// A PKCS#12 file: the secret of an exportable vault certificate.
	env.createExportable("exportable-pfx")
	if err := env.e.Grant(scenario.DemoVault, emuhook.DemoWorkloadClientID, "secrets/get"); err != nil {
		t.Fatal(err)
	}
	cred := testfixture.VaultCredential(t, env.e)
	sc, err := azsecrets.NewClient(env.vaultURL(), cred, &azsecrets.ClientOptions{ClientOptions: env.e.ClientOptions()})
	if err != nil {
		t.Fatal(err)
	}
	sec, err := sc.GetSecret(context.Background(), "exportable-pfx", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	pfx, err := base64.StdEncoding.DecodeString(*sec.Value)
	if err != nil {
		t.Fatal(err)
	}
	pfxFile := filepath.Join(dir, "app.pfx")
	os.WriteFile(pfxFile, pfx, 0o600)
	pcert, err := env.e.Certificate(scenario.DemoVault, "exportable-pfx")
	if err != nil {
		t.Fatal(err)
	}
	if err := env.e.RegisterCertificate(scenario.DemoAppClientID, pcert); err != nil {
		t.Fatal(err)
	}
	r = env.run([]string{"token", "--tenant", "contoso.onmicrosoft.com", "--cert-file", pfxFile}, noVault...)
	checkToken(t, parseToken(t, r), scenario.DemoContosoTenant)
	r = env.run([]string{"token", "--tenant", "contoso.onmicrosoft.com", "--cert-file", pfxFile, "--password-env", "PFX_PASSWORD"}, append(noVault, "PFX_PASSWORD=wrong-password-123")...)
	wantError(t, r, exitUsage, "reading "+pfxFile, "--password-env") // bad input, before any request
	r = env.run([]string{"token", "--tenant", "contoso.onmicrosoft.com", "--cert-file", pfxFile, "--password-env", "NO_SUCH_VAR"}, noVault...)
	wantError(t, r, exitUsage, `"NO_SUCH_VAR", which is not set`, "")

	// A certificate file without its key.
	r = env.run([]string{"token", "--tenant", "contoso.onmicrosoft.com", "--cert-file", certFile}, noVault...)
	wantError(t, r, exitUsage, "reading "+certFile, "--key-file")
}

func TestTokenManagedIdentity(t *testing.T) {
	t.Parallel()
	env := newCLIEnv(t)
	mi := []string{"IDENTITY_ENDPOINT=" + env.e.ManagedIdentityEndpoint(), "IDENTITY_HEADER=" + env.e.IdentityHeader()}
	for _, tenant := range []string{scenario.DemoHomeTenant, scenario.DemoContosoTenant} {
		r := env.run([]string{"token", "--tenant", tenant, "--managed-identity", emuhook.DemoIdentityClientID}, mi...)
		checkToken(t, parseToken(t, r), tenant)
	}
	r := env.run([]string{"token", "--tenant", scenario.DemoContosoTenant, "--managed-identity", emuhook.DemoIdentityClientID, "--alg", "RS256"}, mi...)
	wantError(t, r, exitUsage, "give either --managed-identity or --alg, not both", "no certificate, no assertion flags")
	r = env.run([]string{"token", "--tenant", scenario.DemoContosoTenant, "--managed-identity", "not-a-guid"}, mi...)
	wantError(t, r, exitUsage, "is not a client ID", "")
	r = env.run([]string{"token", "--tenant", scenario.DemoContosoTenant, "--managed-identity", emuhook.DemoIdentityClientID, "--vault", env.vaultURL()}, mi...)
	wantError(t, r, exitUsage, "give either --managed-identity or --vault, not both", "")
}

func TestTokenErrors(t *testing.T) {
	t.Parallel()
	env := newCLIEnv(t)
	contoso := []string{"token", "--tenant", "contoso.onmicrosoft.com"}
	cases := []struct {
		name      string
		args      []string
		extra     []string
		code      int
		msg, hint string
	}{
		{"missing tenant", []string{"token"}, []string{"AZURE_TENANT_ID="}, exitUsage, "--tenant is required", "KVASSERT_TENANT_ID"},
		{"missing client ID", contoso, []string{"KVASSERT_CLIENT_ID=", "AZURE_CLIENT_ID="}, exitUsage, "--client-id is required", "KVASSERT_CLIENT_ID"},
		{"no credential", contoso, []string{"KVASSERT_VAULT=", "KVASSERT_CERT="}, exitUsage, "no credential given", "--vault URL --cert NAME"},
		{"bad vault URL", append(contoso, "--vault", "not a url", "--cert", "x"), nil, exitUsage, "--vault: vault URL", "https://NAME.vault.azure.net/"},
		{"http vault URL", append(contoso, "--vault", "http://kvassert-demo.vault.azure.net/", "--cert", "x"), nil, exitUsage, "uses http", "https://kvassert-demo.vault.azure.net/"},
		{"non-vault host", append(contoso, "--vault", "https://example.com/", "--cert", "x"), nil, exitUsage, "is not a Key Vault", ""},
		{"vault without cert", append(contoso, "--vault", "https://kvassert-demo.vault.azure.net/"), []string{"KVASSERT_CERT="}, exitUsage, "--vault needs --cert", ""},
		{"bad cert name", append(contoso, "--cert", "no_underscores"), nil, exitUsage, "--cert", "letters, digits and '-'"},
		{"bad scope", append(contoso, "--scope", "https://graph.microsoft.com/User.Read"), nil, exitUsage, "/.default", ""},
		{"common tenant", []string{"token", "--tenant", "common"}, nil, exitUsage, "specific tenant", ""},
		{"password-env without PKCS#12", append(contoso, "--vault", env.vaultURL(), "--cert", "x", "--password-env", "X"), nil, exitUsage, "give either --vault or --password-env, not both", ""},
		{"thumbprint without key", append(contoso, "--thumbprint", "AB"), []string{"KVASSERT_VAULT=", "KVASSERT_CERT="}, exitUsage, "--thumbprint needs --key-id", ""},
		{"unknown certificate", append(contoso, "--cert", "nope"), nil, exitFailure, "CertificateNotFound", "az keyvault certificate list --vault-name kvassert-demo"},
		{"unknown vault", append(contoso, "--vault", "https://nope.vault.azure.net/", "--cert", "x"), nil, exitFailure, "answered 404", "vault URL"},
		{"tenant without consent", []string{"token", "--tenant", emuhook.DemoWingtipTenant}, nil, exitFailure, "AADSTS700016", "admin consent"},
		{"unknown tenant", []string{"token", "--tenant", "nowhere.onmicrosoft.com"}, nil, exitFailure, "AADSTS90002", "tenant does not exist"},
		{"wrong workload secret", contoso, []string{"KVASSERT_EMULATOR_CLIENT_SECRET=definitely-wrong-secret"}, exitFailure, "AADSTS7000215", "KVASSERT_EMULATOR_CLIENT_SECRET is wrong"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			wantError(t, env.run(c.args, c.extra...), c.code, c.msg, c.hint)
		})
	}
}

// A Key Vault permission taken away: signing fails with the role to grant.
func TestTokenSignDenied(t *testing.T) {
	t.Parallel()
	env := newCLIEnv(t)
	if err := env.e.Revoke(scenario.DemoVault, emuhook.DemoWorkloadClientID, "keys/sign"); err != nil {
		t.Fatal(err)
	}
	r := env.run([]string{"token", "--tenant", "contoso.onmicrosoft.com"})
	wantError(t, r, exitFailure, "403", "Key Vault Crypto User")
	if !strings.Contains(r.stderr, "keys/sign/action") {
		t.Errorf("the error does not name the denied action:\n%s", r.stderr)
	}
}

// Ctrl+C while a request hangs: the command stops at once with exit 130.
func TestTokenInterrupted(t *testing.T) {
	t.Parallel()
	env := newCLIEnv(t)
	env.e.InjectFault(kvasserttest.OpKeySign, kvasserttest.Fault{Latency: time.Minute})
	cmd := exec.Command(kvassertBin, "token", "--tenant", "contoso.onmicrosoft.com")
	cmd.Env = hermeticEnv(t, env.vars)
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for env.e.Count(kvasserttest.OpKeySign) == 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	start := time.Now()
	cmd.Process.Signal(os.Interrupt)
	err := cmd.Wait()
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("took %v to stop after SIGINT", d)
	}
	r := result{stdout: stdout.String(), stderr: stderr.String(), args: []string{"token", "(SIGINT)"}}
	if ee, ok := err.(*exec.ExitError); ok {
		r.code = ee.ExitCode()
	}
	checkStderr(t, r, env.vars, nil)
	wantError(t, r, exitInterrupted, "interrupted", "")
	if r.stdout != "" {
		t.Errorf("stdout after SIGINT: %q", r.stdout)
	}
}
