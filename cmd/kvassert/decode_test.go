package main

import (
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"

	"github.com/kvassert/kvassert/internal/emuhook"
	"github.com/kvassert/kvassert/kvasserttest/scenario"
)

// tamper replaces the aud claim of a JWT, keeping its signature.
func tamper(t *testing.T, jwt string) string {
	t.Helper()
	parts := strings.Split(strings.TrimSpace(jwt), ".")
	raw, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var claims map[string]any
	if err := json.Unmarshal(raw, &claims); err != nil {
		t.Fatal(err)
	}
	claims["aud"] = "https://login.microsoftonline.com/attacker/oauth2/v2.0/token"
	raw, _ = json.Marshal(claims)
	return parts[0] + "." + base64.RawURLEncoding.EncodeToString(raw) + "." + parts[2]
}

func TestDecode(t *testing.T) {
	t.Parallel()
	env := newCLIEnv(t)
	r := env.run([]string{"assertion", "--tenant", "contoso.onmicrosoft.com"})
	wantOK(t, r)
	jwt := r.stdout
	sig := strings.Split(strings.TrimSpace(jwt), ".")[2]
	certFile := env.exportPEM(t, scenario.DemoCertificate)

	// Checked against the vault certificate (KVASSERT_VAULT/KVASSERT_CERT), from stdin.
	r = env.runIn(jwt, []string{"decode", "-"})
	wantOK(t, r)
	for _, want := range []string{"Header", "alg       PS256", "Claims", scenario.DemoAppClientID, "checked against certificate saas-app-auth", "no problems"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("decode output lacks %q:\n%s", want, r.stdout)
		}
	}
	// Against a certificate file, as an argument, with the expected client and audience.
	r = env.run([]string{"decode", "--cert-file", certFile, "--client-id", scenario.DemoAppClientID,
		"--audience", "https://login.microsoftonline.com/contoso.onmicrosoft.com/oauth2/v2.0/token", strings.TrimSpace(jwt)})
	wantOK(t, r)
	// Piped without "-", and without a certificate (not checked, not a problem).
	r = env.runIn(jwt, []string{"decode"}, "KVASSERT_VAULT=", "KVASSERT_CERT=")
	wantOK(t, r)
	if !strings.Contains(r.stdout, "not checked") {
		t.Errorf("decode without certificate:\n%s", r.stdout)
	}
	for _, out := range []string{r.stdout} {
		if strings.Contains(out, sig) {
			t.Error("decode printed the signature")
		}
	}

	// Tampered: the signature no longer verifies.
	r = env.runIn(tamper(t, jwt), []string{"decode", "-"})
	wantError(t, r, exitFailure, "found 1 problem in the token", "")
	if !strings.Contains(r.stdout, "signature does not verify") || !strings.Contains(r.stdout, "changed after it was signed") {
		t.Errorf("tampered assertion:\n%s", r.stdout)
	}
	// JSON lists the problems.
	r = env.runIn(tamper(t, jwt), []string{"decode", "-o", "json", "-"})
	var out struct {
		Header    map[string]any
		Problems  []string
		Signature struct{ Checked bool }
	}
	if err := json.Unmarshal([]byte(r.stdout), &out); err != nil {
		t.Fatal(err)
	}
	if r.code != exitFailure || len(out.Problems) != 1 || !out.Signature.Checked || out.Header["alg"] != "PS256" {
		t.Errorf("json: exit %d, %+v", r.code, out)
	}
	// Another certificate: thumbprint and signature mismatch.
	other, _ := selfSigned(t, "other")
	otherFile := t.TempDir() + "/other.cer"
	writeFile(t, otherFile, other.Raw)
	r = env.runIn(jwt, []string{"decode", "--cert-file", otherFile, "-"})
	wantError(t, r, exitFailure, "found 2 problems", "")
	if !strings.Contains(r.stdout, "is not this certificate's SHA-256 thumbprint") {
		t.Errorf("other certificate:\n%s", r.stdout)
	}
	// Wrong expectations.
	r = env.runIn(jwt, []string{"decode", "--client-id", emuhook.DemoWorkloadClientID, "-"})
	wantError(t, r, exitFailure, "found 1 problem", "")

	// Not a JWT; nothing given.
	wantError(t, env.run([]string{"decode", "not-a-jwt"}), exitUsage, "not a JWT", "three base64url parts")
	wantError(t, env.runIn("  \n", []string{"decode", "-"}), exitUsage, "empty JWT", "")
	wantError(t, env.runIn(jwt, []string{"decode", "--cert-file", certFile, "--vault", env.vaultURL(), "-"}), exitUsage, "either --cert-file or --vault", "")
	wantError(t, env.runIn(jwt, []string{"decode", "--cert", "nope", "-"}), exitFailure, "CertificateNotFound", "")
}

// TestDecodeHostileTokenCannotDriveTheTerminal: decode is run on tokens
// from anywhere; a header or claim holding terminal controls (an OSC 52
// clipboard write, a screen clear, an 8-bit CSI, a right-to-left override)
// is printed escaped, in the text layout and in every format.
func TestDecodeHostileTokenCannotDriveTheTerminal(t *testing.T) {
	t.Parallel()
	b64 := func(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }
	claims, _ := json.Marshal(map[string]string{"aud": hostile, "iss" + hostile: "x", "sub": "x"})
	header, _ := json.Marshal(map[string]string{"alg": "PS256", "typ": "JWT", "kid": hostile})
	jwt := b64(string(header)) + "." + b64(string(claims)) + "." + b64("signature-bytes")
	for _, args := range [][]string{{"decode", jwt}, {"decode", "-o", "table", "--query", "claims", jwt}, {"decode", "-o", "tsv", "--query", "claims", jwt}, {"decode", "-o", "yaml", jwt}, {"decode", "-o", "json", jwt}} {
		r := runBin(t, nil, "", args)
		if r.code != exitFailure {
			t.Errorf("kvassert %s: exit %d, want 1 (problems)\n%s", args[:len(args)-1], r.code, r.stderr)
		}
		if hasTerminalControl(r.stdout) || hasTerminalControl(r.stderr) {
			t.Errorf("kvassert %s writes terminal controls:\nstdout %q\nstderr %q", args[:len(args)-1], r.stdout, r.stderr)
		}
	}
}
