package tenants_test

import (
	"context"
	"errors"
	"testing"

	"github.com/kvassert/kvassert/tenants"

	"github.com/kvassert/kvassert"
	"github.com/kvassert/kvassert/internal/testfixture"
	"github.com/kvassert/kvassert/kvasserttest/scenario"
)

// secret never appears in an error or a page.
const secret = "SECRETMARKER-do-not-echo"

// key is a test state key.
var key = []byte("0123456789abcdef0123456789abcdef")

// nopSource is a Source never asked (the paths under test fail first).
type nopSource struct{}

func (nopSource) Assertion(context.Context, string, string) (string, error) {
	return "", context.Canceled
}

// offlineCred is a credential whose token requests never succeed.
func offlineCred(t testing.TB) *kvassert.Credential {
	t.Helper()
	c, err := kvassert.NewCredential(scenario.DemoHomeTenant, scenario.DemoAppClientID, nopSource{}, &kvassert.CredentialOptions{AdditionallyAllowedTenants: []string{"*"}})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// world is the demo world with every tenant allowed.
func world(t testing.TB, o *testfixture.WorldOptions) *testfixture.World {
	t.Helper()
	return testfixture.NewWorld(t, o)
}

type kvassertInputError = kvassert.InputError

func asInput(err error, ie **kvassert.InputError) bool { return errors.As(err, ie) }

func nopConsent(context.Context, tenants.Consent) error { return nil }
