package kvid_test

import (
	"testing"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/cloud"

	"github.com/kvassert/kvassert/internal/kvid"
)

func TestVaultDomain(t *testing.T) {
	for _, tc := range []struct {
		c    cloud.Configuration
		want string
	}{
		{cloud.AzurePublic, "vault.azure.net"},
		{cloud.AzureChina, "vault.azure.cn"},
		{cloud.AzureGovernment, "vault.usgovcloudapi.net"},
		{cloud.Configuration{}, "vault.azure.net"},
	} {
		if got := kvid.VaultDomain(tc.c); got != tc.want {
			t.Errorf("VaultDomain(%q) = %q, want %q", tc.c.ActiveDirectoryAuthorityHost, got, tc.want)
		}
		// Every domain it names is one ParseVaultURL accepts.
		if _, err := kvid.ParseVaultURL("https://myvault." + kvid.VaultDomain(tc.c) + "/"); err != nil {
			t.Errorf("%s: %v", tc.want, err)
		}
	}
}

func TestIsVaultHost(t *testing.T) {
	for host, want := range map[string]bool{
		"myvault.vault.azure.net":          true,
		"MyVault.Vault.Azure.Net:443":      true,
		"hsm1.managedhsm.azure.net":        true,
		"myvault.vault.usgovcloudapi.net":  true,
		"a--b.vault.azure.net":             false,
		"vault.azure.net":                  false,
		"myvault.vault.azure.net.evil.com": false,
		"login.microsoftonline.com":        false,
		"127.0.0.1:8443":                   false,
	} {
		if got := kvid.IsVaultHost(host); got != want {
			t.Errorf("IsVaultHost(%q) = %v, want %v", host, got, want)
		}
	}
	for _, name := range []string{"abc", "my-vault-1", "a23456789012345678901234"} {
		if err := kvid.CheckVaultName(name); err != nil {
			t.Errorf("CheckVaultName(%q): %v", name, err)
		}
	}
	for _, name := range []string{"ab", "a--b", "1abc", "abc-", "-abc", "ABC", "a_b", "a234567890123456789012345"} {
		if kvid.CheckVaultName(name) == nil {
			t.Errorf("CheckVaultName(%q) accepted", name)
		}
	}
}
