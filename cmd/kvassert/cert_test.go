package main

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/kvassert/kvassert/internal/emuhook"
	"github.com/kvassert/kvassert/internal/entraid"
	"github.com/kvassert/kvassert/internal/jwtassert"
	"github.com/kvassert/kvassert/kvasserttest"
	"github.com/kvassert/kvassert/kvasserttest/scenario"
)

func writeFile(t *testing.T, path string, data []byte) {
	t.Helper()
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestCertCreate(t *testing.T) {
	t.Parallel()
	env := newCLIEnv(t)
	out := filepath.Join(t.TempDir(), "created.cer")
	r := env.run([]string{"cert", "create", "--vault", env.vaultURL(), "--name", "created", "--subject", "CN=created, O=kvassert tests",
		"--validity-months", "6", "--key-size", "3072", "--out", out, "-o", "json"})
	wantOK(t, r)
	for _, want := range []string{"Creating certificate created in kvassert-demo.vault.azure.net", "status: completed", "Next: register the certificate",
		"'kvassert cert export --vault " + env.vaultURL() + " --cert created --format keycredential'"} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("stderr lacks %q:\n%s", want, r.stderr)
		}
	}
	var got map[string]any
	if err := json.Unmarshal([]byte(r.stdout), &got); err != nil {
		t.Fatal(err)
	}
	cert, err := env.e.Certificate(scenario.DemoVault, "created")
	if err != nil {
		t.Fatal(err)
	}
	x5t, x5tS256 := jwtassert.Thumbprints(cert)
	if got["thumbprint"] != thumbprintHex(cert) || got["x5t"] != x5t || got["x5t#S256"] != x5tS256 || got["exportable"] != false || got["file"] != out {
		t.Errorf("create output = %v", got)
	}
	der, err := os.ReadFile(out)
	if err != nil || !bytes.Equal(der, cert.Raw) {
		t.Errorf("--out file is not the certificate's DER (%v)", err)
	}

	// The policy as Entra client credentials need it.
	resp, err := env.certClient().GetCertificate(context.Background(), "created", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	p := resp.Policy
	if p == nil || p.KeyProperties == nil || *p.KeyProperties.Exportable || *p.KeyProperties.KeySize != 3072 || string(*p.KeyProperties.KeyType) != "RSA" {
		t.Fatalf("key properties = %+v", p.KeyProperties)
	}
	if ku := p.X509CertificateProperties.KeyUsage; len(ku) != 1 || string(*ku[0]) != "digitalSignature" {
		t.Errorf("key usage = %v", ku)
	}
	if la := p.LifetimeActions; len(la) != 1 || string(*la[0].Action.ActionType) != "EmailContacts" {
		t.Errorf("lifetime actions = %+v", la)
	}
	if !strings.EqualFold(*p.IssuerParameters.Name, "Self") || *p.X509CertificateProperties.ValidityInMonths != 6 {
		t.Errorf("issuer %v, validity %v", *p.IssuerParameters.Name, *p.X509CertificateProperties.ValidityInMonths)
	}
	if cert.KeyUsage != x509.KeyUsageDigitalSignature || cert.Subject.CommonName != "created" {
		t.Errorf("certificate key usage %v, subject %v", cert.KeyUsage, cert.Subject)
	}

	// A PEM file for .pem; a second create makes a new version (rotation).
	pemOut := filepath.Join(t.TempDir(), "created.pem")
	wantOK(t, env.run([]string{"cert", "create", "-n", "created", "--out", pemOut}))
	data, _ := os.ReadFile(pemOut)
	if b, _ := pem.Decode(data); b == nil || b.Type != "CERTIFICATE" {
		t.Errorf("--out .pem is not PEM")
	}
	if cert2, _ := env.e.Certificate(scenario.DemoVault, "created"); cert2 == nil || cert2.Equal(cert) {
		t.Error("second create made no new version")
	}
}

func TestCertCreateErrors(t *testing.T) {
	t.Parallel()
	env := newCLIEnv(t)
	wantUsageErrors(t, env, []usageCase{
		{[]string{"cert", "create", "-n", "x", "--key-size", "1024"}, nil, "--key-size 1024", "at least 2048"},
		{[]string{"cert", "create", "-n", "x", "--validity-months", "0"}, nil, "--validity-months 0", ""},
		{[]string{"cert", "create", "-n", "x", "--subject", "no equals sign"}, nil, "not an X.500 name", "CN="},
		{[]string{"cert", "create"}, []string{"KVASSERT_CERT="}, "--cert is required", "KVASSERT_CERT"},
		{[]string{"cert", "create", "-n", "x"}, []string{"KVASSERT_VAULT="}, "--vault is required", "KVASSERT_VAULT"},
		{[]string{"cert", "create", "--vault", "http://kvassert-demo.vault.azure.net", "-n", "x"}, nil, "uses http", "https://kvassert-demo.vault.azure.net"},
		{[]string{"cert", "create", "--vault", "https://kvassert-demo.vault.azure.net/keys", "-n", "x"}, nil, "has a path", ""},
		{[]string{"cert", "create", "-n", "bad_name"}, nil, "is not a valid name", ""},
	})

	// The demo scenario's managed identity lacks certificates/create: the
	// request is refused, with the role to grant.
	mi := []string{
		"KVASSERT_EMULATOR_CLIENT_SECRET=", "KVASSERT_EMULATOR_CLIENT_ID=" + emuhook.DemoIdentityClientID,
		"IDENTITY_ENDPOINT=" + env.e.ManagedIdentityEndpoint(), "IDENTITY_HEADER=" + env.e.IdentityHeader(),
	}
	r := env.run([]string{"cert", "create", "-n", "denied"}, mi...)
	wantError(t, r, exitFailure, "403 Forbidden/ForbiddenByRbac", "Key Vault Certificates Officer", true)
	if !strings.Contains(r.stderr, "certificates/create/action") || !strings.Contains(r.stderr, "appid="+emuhook.DemoIdentityClientID) {
		t.Errorf("the denial names neither the action nor the caller:\n%s", r.stderr)
	}
	// The vault's message is server text: it is not shown (issue 18).
	if strings.Contains(r.stderr, "Caller is not authorized") || strings.Contains(r.stderr, "DeniedWithNoValidRBAC") {
		t.Errorf("the vault's answer reaches stderr:\n%s", r.stderr)
	}
	// The same identity may read it.
	wantOK(t, env.run([]string{"cert", "show"}, mi...))
}

func TestCertShow(t *testing.T) {
	t.Parallel()
	env := newCLIEnv(t)
	cert, x5t, x5tS256 := demoThumbprints(t, env)
	r := env.run([]string{"cert", "show", "-o", "json"})
	wantOK(t, r)
	var got map[string]any
	if err := json.Unmarshal([]byte(r.stdout), &got); err != nil {
		t.Fatal(err)
	}
	kid := regexp.MustCompile(`^https://kvassert-demo\.vault\.azure\.net/keys/saas-app-auth/[0-9a-f]{32}$`)
	if got["thumbprint"] != thumbprintHex(cert) || got["x5t"] != x5t || got["x5t#S256"] != x5tS256 || !kid.MatchString(got["kid"].(string)) ||
		got["exportable"] != false || got["keyType"] != "RSA 2048" || got["enabled"] != true {
		t.Errorf("cert show = %v", got)
	}
	if d := got["daysLeft"].(float64); d < 360 || d > 366 {
		t.Errorf("daysLeft = %v", d)
	}
	// Table, tsv, and a pinned version.
	r = env.run([]string{"cert", "show"})
	wantOK(t, r)
	if !regexp.MustCompile(`(?m)^thumbprint\s+` + thumbprintHex(cert) + `$`).MatchString(r.stdout) {
		t.Errorf("table:\n%s", r.stdout)
	}
	wantOK(t, env.run([]string{"cert", "show", "--version", got["version"].(string), "-o", "tsv"}))
	// The emulator's loopback address works as a vault URL too (its default vault).
	r = env.run([]string{"cert", "show", "--vault", env.e.URL() + "/", "-o", "json"})
	wantOK(t, r)
	if !strings.Contains(r.stdout, thumbprintHex(cert)) {
		t.Errorf("loopback vault URL:\n%s", r.stdout)
	}
	r = env.run([]string{"token", "--tenant", "contoso.onmicrosoft.com", "--vault", env.e.URL(), "-o", "tsv"})
	wantOK(t, r)
	wantError(t, env.run([]string{"cert", "show", "--version", "not-hex!"}), exitUsage, "is not a Key Vault version", "")
	wantError(t, env.run([]string{"cert", "show", "-n", "nope"}), exitFailure, "CertificateNotFound", "az keyvault certificate list --vault-name kvassert-demo")
}

func TestCertExport(t *testing.T) {
	t.Parallel()
	env := newCLIEnv(t)
	cert, err := env.e.Certificate(scenario.DemoVault, scenario.DemoCertificate)
	if err != nil {
		t.Fatal(err)
	}
	r := env.run([]string{"cert", "export"})
	wantOK(t, r)
	if b, _ := pem.Decode([]byte(r.stdout)); b == nil || !bytes.Equal(b.Bytes, cert.Raw) {
		t.Error("PEM export is not the certificate")
	}
	r = env.run([]string{"cert", "export", "--format", "der"})
	wantOK(t, r)
	if r.stdout != string(cert.Raw) {
		t.Error("DER export to a pipe is not the certificate")
	}
	out := filepath.Join(t.TempDir(), "app.cer")
	r = env.run([]string{"cert", "export", "--format", "der", "--out", out})
	wantOK(t, r)
	if data, _ := os.ReadFile(out); !bytes.Equal(data, cert.Raw) || !strings.Contains(r.stderr, "Wrote "+out) {
		t.Errorf("--out: %q", r.stderr)
	}

	r = env.run([]string{"cert", "export", "--format", "keycredential"})
	wantOK(t, r)
	var kc map[string]string
	if err := json.Unmarshal([]byte(r.stdout), &kc); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"customKeyIdentifier": thumbprintHex(cert),
		"key":                 base64.StdEncoding.EncodeToString(cert.Raw),
		"type":                "AsymmetricX509Cert",
		"usage":               "Verify",
		"displayName":         "CN=kvassert demo SaaS",
		"startDateTime":       cert.NotBefore.UTC().Format("2006-01-02T15:04:05Z"),
		"endDateTime":         cert.NotAfter.UTC().Format("2006-01-02T15:04:05Z"),
	}
	for k, v := range want {
		if kc[k] != v {
			t.Errorf("%s = %q, want %q", k, kc[k], v)
		}
	}
	if !entraid.ValidClientID(kc["keyId"]) || len(kc) != 8 {
		t.Errorf("keyCredential = %v", kc)
	}
	// Exporting again gives the same entry (same keyId).
	r2 := env.run([]string{"cert", "export", "--format", "keycredential"})
	if r2.stdout != r.stdout {
		t.Error("keycredential export is not stable")
	}
	wantError(t, env.run([]string{"cert", "export", "--format", "pfx"}), exitUsage, `--format "pfx"`, "keycredential")
}

// auditLines maps check -> status from "cert audit -o tsv".
func auditLines(t *testing.T, r result) map[string]string {
	t.Helper()
	m := map[string]string{}
	for _, l := range strings.Split(strings.TrimSpace(r.stdout), "\n") {
		f := strings.Split(l, "\t")
		if len(f) != 3 {
			t.Fatalf("audit line %q", l)
		}
		m[f[1]] = f[0]
	}
	return m
}

func TestCertAudit(t *testing.T) {
	t.Parallel()
	env := newCLIEnv(t)

	// A certificate made by "cert create" is clean.
	wantOK(t, env.run([]string{"cert", "create", "-n", "clean"}))
	r := env.run([]string{"cert", "audit", "-n", "clean", "-o", "tsv"})
	wantOK(t, r)
	for check, status := range auditLines(t, r) {
		if status != auditPass {
			t.Errorf("clean certificate: %s is %s", check, status)
		}
	}
	if got := auditLines(t, r); len(got) != 8 || got["sign"] != auditPass || got["private-key"] != auditPass {
		t.Errorf("checks = %v", got)
	}

	// The demo scenario's certificate: keyEncipherment is a warning; AutoRenew
	// is supported by kvassert (issue 9), and a warning only when the caller
	// cannot list the versions.
	r = env.run([]string{"cert", "audit"})
	wantError(t, r, exitFailure, "audit of saas-app-auth found 1 warning", "kvassert cert create")
	if !regexp.MustCompile(`(?m)^PASS\s+lifetime\s+AutoRenew.*supported by kvassert`).MatchString(r.stdout) || !regexp.MustCompile(`(?m)^WARN\s+key-usage`).MatchString(r.stdout) {
		t.Errorf("audit table:\n%s", r.stdout)
	}
	wantOK(t, env.run([]string{"cert", "audit", "--fail-on", "fail"}))
	env.e.InjectFault(kvasserttest.OpCertificateList, kvasserttest.Fault{Status: 403})
	r = env.run([]string{"cert", "audit"})
	if !regexp.MustCompile(`(?m)^WARN\s+lifetime\s+AutoRenew.*certificates/list`).MatchString(r.stdout) {
		t.Errorf("audit table with certificates/list denied:\n%s", r.stdout)
	}
	env.e.ClearFaults()

	// An exportable certificate fails; once the caller can read secrets, so
	// does the private-key check.
	env.createExportable("exportable")
	r = env.run([]string{"cert", "audit", "-n", "exportable", "-o", "tsv"})
	wantError(t, r, exitFailure, "1 failure", "")
	if got := auditLines(t, r); got["exportable"] != auditFail || got["private-key"] != auditPass {
		t.Errorf("exportable, no secrets/get: %v", got)
	}
	if err := env.e.Grant(scenario.DemoVault, emuhook.DemoWorkloadClientID, "secrets/get"); err != nil {
		t.Fatal(err)
	}
	r = env.run([]string{"cert", "audit", "-n", "exportable", "-o", "json"})
	if r.code != exitFailure {
		t.Fatalf("exit %d", r.code)
	}
	var rows []map[string]string
	if err := json.Unmarshal([]byte(r.stdout), &rows); err != nil {
		t.Fatal(err)
	}
	for _, row := range rows {
		if row["check"] == "private-key" && (row["status"] != auditFail || !strings.Contains(row["detail"], "can read the private key")) {
			t.Errorf("private-key = %v", row)
		}
	}
	// A non-exportable certificate's secret holds no key, even with secrets/get.
	r = env.run([]string{"cert", "audit", "-n", "clean", "-o", "tsv"})
	wantOK(t, r)

	// Without keys/sign the sign check fails.
	if err := env.e.Revoke(scenario.DemoVault, emuhook.DemoWorkloadClientID, "keys/sign"); err != nil {
		t.Fatal(err)
	}
	r = env.run([]string{"cert", "audit", "-n", "clean", "-o", "tsv"})
	wantError(t, r, exitFailure, "1 failure", "")
	if got := auditLines(t, r); got["sign"] != auditFail {
		t.Errorf("sign without keys/sign = %v", got)
	}
	if !strings.Contains(r.stdout, "cannot sign") || !strings.Contains(r.stdout, "403") {
		t.Errorf("sign detail:\n%s", r.stdout)
	}
	wantError(t, env.run([]string{"cert", "audit", "--fail-on", "never"}), exitUsage, "--fail-on", "")
}

// A vault on this machine is used only with the emulator configured: a
// real Key Vault token must never go to a local listener.
func TestLoopbackVaultNeedsEmulator(t *testing.T) {
	t.Parallel()
	env := newCLIEnv(t)
	noEmu := []string{"KVASSERT_EMULATOR=", "KVASSERT_CA_FILE="}
	for _, args := range [][]string{
		{"cert", "show", "--vault", env.e.URL() + "/", "-n", "x"},
		{"token", "--tenant", "contoso.onmicrosoft.com", "--vault", "https://localhost:8443/", "--cert", "x"},
		{"token", "--tenant", "contoso.onmicrosoft.com", "--key-id", "https://127.0.0.1:8443/keys/k/0123", "--thumbprint", strings.Repeat("AB", 20)},
	} {
		wantError(t, env.run(args, noEmu...), exitUsage, "is an address on this machine", "KVASSERT_EMULATOR")
	}
	if env.e.Count(kvasserttest.Op("keyvault/challenge"))+env.e.Count(kvasserttest.OpCertificateGet) != 0 {
		t.Error("a request reached the emulator without KVASSERT_EMULATOR")
	}
}
