package kvid

import (
	"strings"
	"testing"
)

func TestParseVaultURL(t *testing.T) {
	good := map[string]Vault{
		"https://myvault.vault.azure.net":            {URL: "https://myvault.vault.azure.net/", Host: "myvault.vault.azure.net"},
		"https://MyVault.vault.azure.net/":           {URL: "https://myvault.vault.azure.net/", Host: "myvault.vault.azure.net"},
		"https://myvault.vault.azure.net:443/":       {URL: "https://myvault.vault.azure.net/", Host: "myvault.vault.azure.net"},
		"https://gov-vault.vault.usgovcloudapi.net/": {URL: "https://gov-vault.vault.usgovcloudapi.net/", Host: "gov-vault.vault.usgovcloudapi.net"},
		"https://cn-vault.vault.azure.cn/":           {URL: "https://cn-vault.vault.azure.cn/", Host: "cn-vault.vault.azure.cn"},
		"https://myhsm.managedhsm.azure.net/":        {URL: "https://myhsm.managedhsm.azure.net/", Host: "myhsm.managedhsm.azure.net", ManagedHSM: true},
		"https://127.0.0.1:8443/":                    {URL: "https://127.0.0.1:8443/", Host: "127.0.0.1:8443", Loopback: true},
		"https://[::1]:8443":                         {URL: "https://[::1]:8443/", Host: "[::1]:8443", Loopback: true},
		"https://localhost:8443":                     {URL: "https://localhost:8443/", Host: "localhost:8443", Loopback: true},
	}
	for in, want := range good {
		got, err := ParseVaultURL(in)
		if err != nil || got != want {
			t.Errorf("ParseVaultURL(%q) = %+v, %v; want %+v", in, got, err, want)
		}
	}
	bad := map[string]string{
		"":                                "empty",
		"http://myvault.vault.azure.net/": "uses http",
		"ftp://myvault.vault.azure.net/":  "not an https URL",
		"myvault.vault.azure.net":         "not an https URL",
		"https://user:pw@myvault.vault.azure.net/":    "user info",
		"https://myvault.vault.azure.net/?x=1":        "query or fragment",
		"https://myvault.vault.azure.net/#frag":       "query or fragment",
		"https://myvault.vault.azure.net/keys/k":      "has a path",
		"https://evil.example.com/":                   "not a Key Vault",
		"https://myvault.vault.azure.net.evil.com/":   "not a Key Vault",
		"https://a.b.vault.azure.net/":                "not a valid vault name",
		"https://myvault.vault.azure.net:8443/":       "port 8443",
		"https://10.0.0.1/":                           "not a Key Vault",
		"https://xn--vlt-8ma.vault.azure.net/":        "",
		"https://" + strings.Repeat("a", 3000) + "/":  "longer than",
		"https://myvault.vault.azure.net/%2e%2e/keys": "has a path",
	}
	for in, want := range bad {
		_, err := ParseVaultURL(in)
		if want == "" {
			continue // accepted or refused, but never a panic
		}
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("ParseVaultURL(%.60q) error = %v, want %q", in, err, want)
		}
		if err != nil && strings.Contains(err.Error(), "pw@") {
			t.Errorf("error repeats user info: %v", err)
		}
	}
}

func TestParseKeyID(t *testing.T) {
	id, err := ParseKeyID("https://myvault.vault.azure.net/keys/app-cert/0123456789abcdef0123456789abcdef")
	if err != nil || id.Name != "app-cert" || id.Version != "0123456789abcdef0123456789abcdef" || id.Kind != "keys" {
		t.Fatalf("ParseKeyID = %+v, %v", id, err)
	}
	if id.String() != "https://myvault.vault.azure.net/keys/app-cert/0123456789abcdef0123456789abcdef" {
		t.Fatalf("String() = %s", id)
	}
	latest, err := ParseKeyID("https://myhsm.managedhsm.azure.net/keys/signing/")
	if err != nil || latest.Version != "" || !latest.Vault.ManagedHSM {
		t.Fatalf("latest = %+v, %v", latest, err)
	}
	for in, want := range map[string]string{
		"https://myvault.vault.azure.net/secrets/app-cert":                 "not a keys identifier",
		"https://myvault.vault.azure.net/keys":                             "not a keys identifier",
		"https://myvault.vault.azure.net/keys/a/b/c":                       "not a keys identifier",
		"https://myvault.vault.azure.net/keys/../secrets/x":                "'..'",
		"https://myvault.vault.azure.net/keys/a%2Fb":                       "escaped",
		"https://myvault.vault.azure.net/keys/bad_name":                    "not a valid name",
		"https://myvault.vault.azure.net/keys/k/ver-1":                     "not a Key Vault version",
		"http://myvault.vault.azure.net/keys/k":                            "uses http",
		"https://myvault.vault.azure.net/keys/k?api-version=7.4":           "query or fragment",
		"https://evil.example/keys/k":                                      "not a Key Vault",
		"https://myvault.vault.azure.net//keys/k":                          "'..'",
		"https://myvault.vault.azure.net/keys/" + strings.Repeat("k", 200): "not a valid name",
	} {
		if _, err := ParseKeyID(in); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("ParseKeyID(%.70q) error = %v, want %q", in, err, want)
		}
	}
	if _, err := ParseCertificateID("https://myvault.vault.azure.net/certificates/app-cert"); err != nil {
		t.Fatal(err)
	}
}

// The loopback refusal names what works with kvassert's emulators (the real
// vault URL and the emulator's ClientOptions), not only AllowLoopback, which
// alone ends in an x509 error against an emulator whose CA is not trusted.
func TestLoopbackRefusalNamesTheEmulatorOption(t *testing.T) {
	v, err := ParseVaultURL("https://127.0.0.1:8443/")
	if err != nil {
		t.Fatal(err)
	}
	err = v.CheckLoopback(false)
	if err == nil {
		t.Fatal("a loopback vault URL was accepted")
	}
	for _, want := range []string{"emu.ClientOptions()", "https://NAME.vault.azure.net/", "AllowLoopback"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %s", err, want)
		}
	}
	if err := v.CheckLoopback(true); err != nil {
		t.Errorf("allowed loopback refused: %v", err)
	}
}
