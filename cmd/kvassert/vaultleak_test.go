package main

import (
	"crypto/elliptic"
	"crypto/tls"
	"crypto/x509"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kvassert/kvassert/internal/emuhook"
	"github.com/kvassert/kvassert/internal/testcert"
	"github.com/kvassert/kvassert/kvasserttest/scenario"
)

// hostileAzure serves, in place of the emulator, a token endpoint whose
// answers to the Key Vault credential are malformed 200s quoting a Key
// Vault access token (the marker), and vaults that only challenge. It
// returns the KVASSERT_EMULATOR address and the CA file.
func hostileAzure(t *testing.T, tokenBody string) (string, string) {
	t.Helper()
	ca := testcert.New(t, &testcert.Options{Curve: elliptic.P256(), CommonName: "hostile CA", IsCA: true, KeyUsage: x509.KeyUsageCertSign,
		NotAfter: time.Now().Add(time.Hour)})
	leaf := testcert.New(t, &testcert.Options{Curve: elliptic.P256(), Serial: 2, CommonName: "hostile", NotAfter: time.Now().Add(time.Hour),
		DNSNames: []string{"*.vault.azure.net", "login.microsoftonline.com", "localhost"}, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, Parent: ca.Cert, ParentKey: ca.Key})
	tenant := scenario.DemoHomeTenant
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		base := "https://login.microsoftonline.com/" + tenant
		switch {
		case strings.HasSuffix(r.Host, ".vault.azure.net"):
			w.Header().Set("WWW-Authenticate", `Bearer authorization="`+base+`", resource="https://vault.azure.net"`)
			w.WriteHeader(401)
		case strings.HasSuffix(r.URL.Path, "/.well-known/openid-configuration"):
			w.Header().Set("Content-Type", "application/json")
			_, _ = io.WriteString(w, `{"token_endpoint":"`+base+`/oauth2/v2.0/token","authorization_endpoint":"`+base+`/oauth2/v2.0/authorize","issuer":"`+base+`/v2.0"}`)
		case strings.HasSuffix(r.URL.Path, "/token"):
			w.Header().Set("Content-Type", "application/json")
			_, _ = io.WriteString(w, tokenBody)
		default:
			http.NotFound(w, r)
		}
	}))
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{leaf.DER(), ca.DER()}, PrivateKey: leaf.Key}}}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(caFile, ca.CertPEM(), 0o600); err != nil {
		t.Fatal(err)
	}
	return srv.URL, caFile
}

// TestVaultCredentialMalformedAnswerNeverPrinted: a malformed 200 to the
// Key Vault credential's token request (its text is a Key Vault access
// token) never reaches stderr, through the keyvault package (assertion)
// or the CLI's own vault clients (cert show), with --debug too; the hint
// stays.
func TestVaultCredentialMalformedAnswerNeverPrinted(t *testing.T) {
	t.Parallel()
	const marker = "KVACCESSTOKENMARKER"
	bodies := []string{
		`{"token_type":"Bearer","expires_in":"soon","access_token":"` + marker + `"}`,
		`{"token_type":"Bearer","expires_in":3600,"access_token":7,"refresh_token":"` + marker + `"}`,
		`{"error":"invalid_client","error_description":"AADSTS7000215: ` + marker + `","error_codes":[7000215]}`,
	}
	for _, body := range bodies {
		url, ca := hostileAzure(t, body)
		vars := map[string]string{
			"KVASSERT_EMULATOR": url, "KVASSERT_CA_FILE": ca,
			"KVASSERT_CLIENT_ID": scenario.DemoAppClientID, "KVASSERT_VAULT": "https://" + scenario.DemoVault + ".vault.azure.net/",
			"KVASSERT_CERT":               scenario.DemoCertificate,
			"KVASSERT_EMULATOR_TENANT_ID": scenario.DemoHomeTenant, "KVASSERT_EMULATOR_CLIENT_ID": emuhook.DemoWorkloadClientID,
			"KVASSERT_EMULATOR_CLIENT_SECRET": emuhook.DemoWorkloadSecret,
		}
		for _, args := range [][]string{{"assertion", "--tenant", "contoso.onmicrosoft.com"}, {"cert", "show"},
			{"assertion", "--debug", "--tenant", "contoso.onmicrosoft.com"}, {"cert", "show", "--debug"}} {
			r := runBin(t, vars, "", args)
			if r.code == 0 {
				t.Fatalf("kvassert %v succeeded", args)
			}
			if strings.Contains(r.stderr+r.stdout, marker) {
				t.Errorf("kvassert %v: the token endpoint's answer reaches the output:\n%s", args, r.stderr)
			}
			if !strings.Contains(r.stderr, "the emulator's identity could not get a token") || !strings.Contains(r.stderr, "hint: ") {
				t.Errorf("kvassert %v: no diagnosis of the emulator's identity:\n%s", args, r.stderr)
			}
			if strings.Contains(body, "7000215") && !strings.Contains(r.stderr, "KVASSERT_EMULATOR_CLIENT_SECRET is wrong") {
				t.Errorf("kvassert %v: the AADSTS7000215 hint is lost:\n%s", args, r.stderr)
			}
		}
	}
}
