package names

import (
	"strings"
	"testing"
)

// TestValidVaultNameRejectsConsecutiveHyphens: Key Vault names may not hold
// "--" (the service refuses them), nor end with '-'.
func TestValidVaultNameRejectsConsecutiveHyphens(t *testing.T) {
	for _, bad := range []string{"my--vault", "a--b", "ab-", "-ab", "1ab", "ab", "abcdefghijklmnopqrstuvwxy"} {
		if ValidVaultName(bad) {
			t.Errorf("ValidVaultName(%q) = true", bad)
		}
	}
	for _, good := range []string{"abc", "kvassert-demo", "a-b-c", "A1-b2", "abcdefghijklmnopqrstuvwx"} {
		if !ValidVaultName(good) {
			t.Errorf("ValidVaultName(%q) = false", good)
		}
	}
}

func TestAllows(t *testing.T) {
	if !Allows([]string{"keys/*"}, "keys/sign") || !Allows([]string{"*"}, "secrets/get") || !Allows([]string{"keys/sign"}, "keys/sign") {
		t.Fatal("expected grant")
	}
	if Allows([]string{"keys/sign"}, "secrets/get") || Allows([]string{"keys/*"}, "keysx/sign") || Allows(nil, "keys/sign") {
		t.Fatal("unexpected grant")
	}
}

func TestRedirectURIMatches(t *testing.T) {
	for _, c := range []struct {
		reg, req string
		want     bool
	}{
		{"https://app.example.com/cb", "https://app.example.com/cb", true},
		{"https://app.example.com/cb", "https://app.example.com:8443/cb", false}, // port matters on https
		{"https://app.example.com/cb", "https://app.example.com/CB", false},
		{"http://localhost/cb", "http://localhost:51234/cb", true},
		{"http://localhost:8080/cb", "http://localhost:51234/cb", true},
		{"http://127.0.0.1/cb", "http://127.0.0.1:9/cb", true},
		{"http://[::1]/cb", "http://[::1]:9/cb", true},
		{"http://127.0.0.1/cb", "http://localhost:9/cb", false},
		{"http://localhost/cb", "http://localhost:9/cb/x", false},
		{"http://localhost/cb", "http://localhost:9/cb?x=1", false},
		{"http://localhost/cb", "http://localhost:9/cb#x", false},
		{"http://localhost/cb", "http://user@localhost:9/cb", false},
		{"http://localhost/cb", "https://localhost:9/cb", false},
		{"http://localhost/cb", "http://localhost.evil.example/cb", false},
		{"http://localhost/cb", "%zz", false},
	} {
		if got := RedirectURIMatches(c.reg, c.req); got != c.want {
			t.Errorf("RedirectURIMatches(%q, %q) = %v", c.reg, c.req, got)
		}
	}
}

func TestCheckRedirectURI(t *testing.T) {
	for u, bad := range map[string]bool{
		"https://app.example.com/cb": false, "http://localhost/cb": false, "http://127.0.0.1:8400/cb": false, "http://[::1]/cb": false,
		"http://app.example.com/cb": true, "ftp://x/y": true, "/cb": true, "https://x/cb#f": true, "https://*.x/cb": true,
		"https://u:p@x/cb": true, "javascript:alert(1)": true, "https://x/" + strings.Repeat("a", 300): true,
	} {
		if got := CheckRedirectURI(u) != ""; got != bad {
			t.Errorf("CheckRedirectURI(%q) = %q", u, CheckRedirectURI(u))
		}
	}
}

func TestSameResource(t *testing.T) {
	for _, c := range []struct {
		a, b string
		want bool
	}{
		{"", "https://graph.microsoft.com", true},
		{"https://graph.microsoft.com/", "https://GRAPH.microsoft.com", true},
		{"00000003-0000-0000-c000-000000000000", "https://graph.microsoft.com", true},
		{"https://microsoftgraph.chinacloudapi.cn", "", true},
		{"https://vault.azure.net", "", false},
		{"api://my-api", "api://my-api/", true},
		{"api://my-api", "api://other", false},
	} {
		if got := SameResource(c.a, c.b); got != c.want {
			t.Errorf("SameResource(%q, %q) = %v", c.a, c.b, got)
		}
	}
}
