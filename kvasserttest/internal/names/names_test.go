package names

import "testing"

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
