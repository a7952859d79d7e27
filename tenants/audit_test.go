package tenants_test

import (
	"strings"
	"testing"

	"github.com/kvassert/kvassert/internal/emuhook"
	"github.com/kvassert/kvassert/kvasserttest/scenario"
	"github.com/kvassert/kvassert/tenants"
)

// TestAuditApp: the app instance property lock read from Graph (locked,
// unlocked with the fix, unreadable without Application.Read.All), and the
// known tenants that refuse the app.
func TestAuditApp(t *testing.T) {
	w := world(t, nil)
	opts := &tenants.AuditOptions{ClientOptions: w.ClientOptions()}
	known := []string{scenario.DemoContosoTenant, wingtip(t)}

	// The demo app may not read its own registration yet.
	a, err := tenants.AuditApp(t.Context(), w.Cred, scenario.DemoAppObjectID, known, nil, opts)
	if err != nil {
		t.Fatal(err)
	}
	if a.LockChecked || !strings.Contains(a.LockError, "403") || a.Refusing != 1 || a.Tenants[1].State != "app_not_found" || len(a.Findings) != 2 ||
		!strings.Contains(a.Findings[0], "tenant "+wingtip(t)+": app_not_found (send the administrator https://login.microsoftonline.com/"+wingtip(t)+"/adminconsent?client_id=") ||
		!strings.Contains(a.Findings[1], "Application.Read.All") {
		t.Fatalf("%+v", a)
	}
	if err := w.Emu.GrantAppRoles(scenario.DemoAppClientID, "Application.Read.All"); err != nil {
		t.Fatal(err)
	}
	fresh := w.NewCredential(t, w.Src, nil) // no cached Graph token without the role
	a, err = tenants.AuditApp(t.Context(), fresh, scenario.DemoAppObjectID, nil, nil, opts)
	if err != nil || !a.LockChecked || !a.Locked || len(a.Findings) != 0 || a.LockError != "" {
		t.Fatalf("%+v %v", a, err)
	}
	for _, lock := range []struct{ enabled, all, unlock bool }{{false, true, false}, {true, false, false}, {false, false, true}} {
		if err := emuhook.Of(w.Emu).SetServicePrincipalLock(scenario.DemoAppClientID, lock.enabled, lock.all, lock.unlock); err != nil {
			t.Fatal(err)
		}
		a, err = tenants.AuditApp(t.Context(), fresh, scenario.DemoAppObjectID, nil, nil, opts)
		if err != nil || !a.LockChecked || a.Locked || len(a.Findings) != 1 || !strings.Contains(a.Findings[0], `"servicePrincipalLockConfiguration":{"isEnabled":true,"allProperties":true}`) {
			t.Fatalf("%+v: %+v %v", lock, a, err)
		}
	}
}
