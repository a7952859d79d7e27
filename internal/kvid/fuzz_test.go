package kvid_test

import (
	"net"
	"regexp"
	"strings"
	"testing"

	"github.com/kvassert/kvassert/internal/kvid"
)

var urlSeeds = []string{
	"https://myvault.vault.azure.net/",
	"https://myvault.vault.azure.net",
	"https://MyVault.Vault.Azure.Net:443/",
	"https://myhsm.managedhsm.azure.net/",
	"https://myvault.vault.azure.cn/",
	"https://myvault.vault.usgovcloudapi.net/",
	"https://127.0.0.1:8443/",
	"https://[::1]:1/",
	"https://[::1]", // found by the fuzzer: an IPv6 loopback without a port
	"https://localhost/",
	"http://myvault.vault.azure.net/",
	"https://user:pw@myvault.vault.azure.net/",
	"https://myvault.vault.azure.net/?a=b",
	"https://myvault.vault.azure.net/#f",
	"https://myvault.vault.azure.net.evil.com/",
	"https://xn--myvult-4ve.vault.azure.net/",
	"https://myvault.vault.azure.net:8443/",
	"https://myvault.vault.azure.net/keys/k/0123abcd",
	"https://myvault.vault.azure.net/keys/k",
	"https://myvault.vault.azure.net/keys/k/",
	"https://myvault.vault.azure.net/keys/../secrets/k",
	"https://myvault.vault.azure.net/keys/%2e%2e/k",
	"https://myvault.vault.azure.net/certificates/c/v1",
	"https://myhsm.managedhsm.azure.net/keys/k/abc",
	"https://127.0.0.1:1/keys/k/v",
}

var (
	nameRE    = regexp.MustCompile(`^[a-zA-Z0-9-]{1,127}$`)
	versionRE = regexp.MustCompile(`^[a-zA-Z0-9]{0,64}$`)
)

// checkVault asserts what every accepted vault must be: an https URL of a
// Key Vault / Managed HSM host of an Azure cloud on 443, or a loopback
// address, in normal form.
func checkVault(t *testing.T, raw string, v kvid.Vault) {
	t.Helper()
	if v.URL != "https://"+v.Host+"/" || v.Host != strings.ToLower(v.Host) {
		t.Fatalf("%q: URL %q host %q not in normal form", raw, v.URL, v.Host)
	}
	host := v.Host
	if h, _, err := net.SplitHostPort(v.Host); err == nil {
		host = h
	}
	host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]") // "[::1]" without a port
	if v.Loopback {
		ip := net.ParseIP(host)
		if host != "localhost" && (ip == nil || !ip.IsLoopback()) {
			t.Fatalf("%q: loopback vault on %q", raw, v.Host)
		}
		return
	}
	if host != v.Host {
		t.Fatalf("%q: a port other than 443 accepted: %q", raw, v.Host)
	}
	ok := false
	for _, s := range []string{".vault.azure.net", ".vault.azure.cn", ".vault.usgovcloudapi.net", ".managedhsm.azure.net", ".managedhsm.azure.cn", ".managedhsm.usgovcloudapi.net"} {
		if label, found := strings.CutSuffix(host, s); found {
			ok = label != "" && !strings.ContainsAny(label, "./@?#%\\ ") && v.ManagedHSM == strings.Contains(s, "managedhsm")
		}
	}
	if !ok {
		t.Fatalf("%q: accepted host %q (hsm %v)", raw, host, v.ManagedHSM)
	}
	// The normal form parses to itself.
	again, err := kvid.ParseVaultURL(v.URL)
	if err != nil || again != v {
		t.Fatalf("%q: normal form %q reparses to %+v, %v", raw, v.URL, again, err)
	}
}

// FuzzParseVaultURL: never panics; accepts only vault hosts in normal form;
// errors are bounded and never repeat a query string.
func FuzzParseVaultURL(f *testing.F) {
	for _, s := range urlSeeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		v, err := kvid.ParseVaultURL(raw)
		if err != nil {
			checkErr(t, raw, err)
			return
		}
		checkVault(t, raw, v)
	})
}

// FuzzParseKeyID: never panics; an accepted key ID has a valid vault, the
// kind "keys", a valid name and version, and its String() parses back to it.
func FuzzParseKeyID(f *testing.F) {
	for _, s := range urlSeeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		id, err := kvid.ParseKeyID(raw)
		if err != nil {
			checkErr(t, raw, err)
			return
		}
		checkVault(t, raw, id.Vault)
		if id.Kind != "keys" || !nameRE.MatchString(id.Name) || !versionRE.MatchString(id.Version) {
			t.Fatalf("%q: accepted %+v", raw, id)
		}
		again, err := kvid.ParseKeyID(id.String())
		if err != nil || again != id {
			t.Fatalf("%q: String() %q reparses to %+v, %v", raw, id.String(), again, err)
		}
		if _, err := kvid.ParseCertificateID(id.String()); err == nil {
			t.Fatalf("%q: a key ID parses as a certificate ID", raw)
		}
	})
}

func checkErr(t *testing.T, raw string, err error) {
	t.Helper()
	msg := err.Error()
	if msg == "" || len(msg) > 3*2048+512 {
		t.Fatalf("%q: error of %d bytes", raw, len(msg))
	}
	// A query string is dropped from errors (it may hold a SAS-like secret).
	if i := strings.IndexAny(raw, "?#"); i >= 0 && i+1 < len(raw) {
		if q := raw[i+1:]; len(q) >= 12 && strings.IndexFunc(q, isAlnum) >= 0 && !strings.Contains(raw[:i], q) && strings.Contains(msg, q) {
			t.Fatalf("%q: the error repeats the query %q: %s", raw, q, msg)
		}
	}
}

func isAlnum(r rune) bool {
	return 'a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9'
}
