package proxy

import (
	"errors"
	"strings"
	"testing"

	"github.com/kvassert/kvassert"
	"github.com/kvassert/kvassert/internal/kvid"
	"github.com/kvassert/kvassert/kvasserttest/scenario"
)

// TestTargetVaultNameAsKeyVault: a managed identity route names its vault
// by name; the proxy accepts exactly the names keyvault accepts (it once
// let "a--b" and a leading digit through to an environment that could never
// work).
func TestTargetVaultNameAsKeyVault(t *testing.T) {
	t.Parallel()
	s, err := New(&Options{Logger: discardLogger()})
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"a--b", "ab--cd", "1abc", "9vault", "ab-", "-ab", "ab", strings.Repeat("a", 25), "a_b"} {
		target := Target{Tenant: scenario.DemoContosoTenant, ClientID: scenario.DemoAppClientID, Vault: name, Certificate: "c"}
		_, err := s.AppServiceEnv("http://127.0.0.1:5616", target)
		if err == nil {
			t.Errorf("vault name %q accepted; kvid.CheckVaultName says %v", name, kvid.CheckVaultName(name))
		}
	}
	for _, name := range []string{"abc", "kvassert-demo", "A-Vault-1", strings.Repeat("a", 24)} {
		target := Target{Tenant: scenario.DemoContosoTenant, ClientID: scenario.DemoAppClientID, Vault: name, Certificate: "c"}
		if _, err := s.AppServiceEnv("http://127.0.0.1:5616", target); err != nil {
			t.Errorf("vault name %q refused: %v", name, err)
		}
	}
}

// TestFieldMessageByType: a library error becomes a field message from its
// type (InputError.Reason), whatever its wording.
func TestFieldMessageByType(t *testing.T) {
	ie := &kvassert.InputError{Package: "keyvault", Input: "name", Reason: "a reworded reason"}
	var errs fieldErrors
	errs.addErr("certificateName", errors.Join(errors.New("context"), ie))
	if len(errs) != 1 || errs[0].Message != "a reworded reason" {
		t.Errorf("field errors %+v", errs)
	}
}
