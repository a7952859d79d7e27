package main

import (
	"encoding/json"
	"maps"
	"strings"
	"testing"
	"time"

	"github.com/kvassert/kvassert/internal/emuhook"
	"github.com/kvassert/kvassert/internal/testcert"
	"github.com/kvassert/kvassert/internal/testfixture"
	"github.com/kvassert/kvassert/kvasserttest"
	"github.com/kvassert/kvassert/kvasserttest/scenario"
)

// renewDemoCertificate makes a new version of the demo certificate with its
// policy (what the vault's AutoRenew does) and returns its version.
func (c *cliEnv) renewDemoCertificate() string {
	c.t.Helper()
	return testfixture.Renew(c.t, c.certClient(), scenario.DemoCertificate)
}

// newRollEnv is a CLI env for cert status and roll: the demo app's home
// tenant and object ID set, Graph changes seen at once.
func newRollEnv(t *testing.T) *cliEnv {
	t.Helper()
	env := newCLIEnv(t)
	emuhook.Of(env.e).SetGraphPropagationDelay(0)
	env.vars["KVASSERT_TENANT_ID"] = scenario.DemoHomeTenant
	env.vars["KVASSERT_APP_OBJECT_ID"] = scenario.DemoAppObjectID
	return env
}

func TestCertStatusAndRoll(t *testing.T) {
	t.Parallel()
	env := newRollEnv(t)
	renewed := env.renewDemoCertificate()

	status := func() []map[string]any {
		t.Helper()
		r := env.run([]string{"cert", "status", "-o", "json"})
		wantOK(t, r)
		var rows []map[string]any
		if err := json.Unmarshal([]byte(r.stdout), &rows); err != nil {
			t.Fatalf("cert status -o json: %v\n%s", err, r.stdout)
		}
		if len(rows) != 2 {
			t.Fatalf("cert status: %d rows, want 2\n%s", len(rows), r.stdout)
		}
		return rows
	}
	rows := status()
	if rows[0]["version"] != renewed || rows[0]["accepted"] != "refused" || rows[0]["active"] != false ||
		rows[1]["accepted"] != "accepted" || rows[1]["active"] != true {
		t.Fatalf("before the roll: %v", rows)
	}
	if rows[0]["decision"] != "register" || rows[1]["decision"] != "accepted" || !strings.Contains(rows[0]["reason"].(string), "next roll registers it") {
		t.Fatalf("before the roll, decisions: %v", rows)
	}

	r := env.run([]string{"cert", "roll", "--dry-run"})
	wantOK(t, r)
	if !strings.Contains(r.stdout, "register") || env.e.Count(kvasserttest.OpGraphAddKey) != 0 {
		t.Fatalf("dry run: addKey %d, output:\n%s", env.e.Count(kvasserttest.OpGraphAddKey), r.stdout)
	}

	env.e.InjectFault(kvasserttest.OpGraphAddKey, kvasserttest.Fault{Status: 403, Times: 1})
	r = env.run([]string{"cert", "roll"})
	wantError(t, r, exitFailure, "Microsoft Graph addKey failed (HTTP 403)", "an app can roll only its own keys")

	r = env.run([]string{"cert", "roll", "-o", "json"})
	wantOK(t, r)
	rows = status()
	if rows[0]["accepted"] != "accepted" || rows[0]["active"] != true || rows[0]["graphKeyId"] == "" {
		t.Fatalf("after the roll: %v", rows)
	}
	if rows[0]["decision"] != "accepted" || rows[1]["decision"] != "accepted" || !strings.Contains(rows[1]["reason"].(string), "superseded") {
		t.Fatalf("after the roll, decisions: %v", rows)
	}
	if n := env.e.Count(kvasserttest.OpGraphAddKey); n != 2 { // the refused one and the one that worked
		t.Fatalf("%d addKey calls, want 2", n)
	}

	r = env.run([]string{"cert", "roll", "--query", "[].action", "-o", "tsv"})
	wantOK(t, r)
	if got := strings.Fields(r.stdout); strings.Join(got, " ") != "accepted keep" {
		t.Fatalf("re-run: actions %q, want accepted keep", got)
	}
}

func TestCertRollUsage(t *testing.T) {
	t.Parallel()
	env := newCLIEnv(t)
	env.vars["KVASSERT_TENANT_ID"] = scenario.DemoHomeTenant
	r := env.run([]string{"cert", "roll"})
	wantError(t, r, exitUsage, "--app-object-id is required", "Object ID")
	r = env.run([]string{"cert", "roll", "--app-object-id", "not-a-guid"})
	wantError(t, r, exitUsage, "is not a GUID", "Object ID")
	r = env.run([]string{"cert", "roll", "--app-object-id", scenario.DemoAppObjectID, "--pass-timeout", "1m"})
	wantError(t, r, exitUsage, "--pass-timeout must be longer than --accept-timeout", "--pass-timeout 30m")
}

// The client ID given as the object ID is a usage error (exit 2, before any
// request), in the CLI's words, with the command that finds the object ID:
// in cert status, cert roll and cert audit --app.
func TestCertRollObjectIDIsClientID(t *testing.T) {
	t.Parallel()
	env := newCLIEnv(t)
	env.vars["KVASSERT_TENANT_ID"] = scenario.DemoHomeTenant
	before := env.e.Counts()
	hint := "az ad app show --id " + scenario.DemoAppClientID + " --query id -o tsv"
	for _, args := range [][]string{
		{"cert", "status", "--app-object-id", scenario.DemoAppClientID},
		{"cert", "roll", "--app-object-id", strings.ToUpper(scenario.DemoAppClientID)},
		{"cert", "roll", "--dry-run"},
		{"cert", "audit", "--app", "--app-object-id", scenario.DemoAppClientID},
		{"cert", "audit", "--app"},
	} {
		r := env.run(args, "KVASSERT_APP_OBJECT_ID="+scenario.DemoAppClientID)
		wantError(t, r, exitUsage, "is the app's client ID, not its application object ID", hint)
		if strings.Contains(r.stderr, "rotation:") || strings.Contains(r.stderr, "app audit:") {
			t.Errorf("kvassert %s: a package prefix in the error:\n%s", strings.Join(args, " "), r.stderr)
		}
		if strings.Contains(strings.Join(args, " "), "--app-object-id") != strings.Contains(r.stderr, "--app-object-id") ||
			!strings.Contains(strings.Join(args, " "), "--app-object-id") && !strings.Contains(r.stderr, "KVASSERT_APP_OBJECT_ID") {
			t.Errorf("kvassert %s: the error does not name where the value came from:\n%s", strings.Join(args, " "), r.stderr)
		}
	}
	if after := env.e.Counts(); !maps.Equal(before, after) {
		t.Errorf("requests were made before the usage error: %v, then %v", before, after)
	}
}

// TestCertStatusShowsWhyAVersionIsSkipped: an imported certificate (its key
// made outside the vault) is shown as skipped with the reason, in the table
// and in JSON; cert roll reports it and registers it only with
// --register-imported-keys.
func TestCertStatusShowsWhyAVersionIsSkipped(t *testing.T) {
	t.Parallel()
	env := newRollEnv(t)
	cert := testcert.New(t, &testcert.Options{Serial: time.Now().UnixNano(), CommonName: "imported", NotBefore: time.Now().Add(-time.Minute)})
	imp := testfixture.Import(t, env.e, scenario.DemoCertificate, cert)
	r := env.run([]string{"cert", "status", "-o", "json"})
	wantOK(t, r)
	var rows []map[string]any
	if err := json.Unmarshal([]byte(r.stdout), &rows); err != nil || len(rows) != 2 {
		t.Fatalf("cert status -o json: %v\n%s", err, r.stdout)
	}
	if rows[0]["version"] != imp {
		t.Fatalf("the imported version is not the newest: %v", rows)
	}
	rows[0], rows[1] = rows[1], rows[0]
	if rows[1]["decision"] != "skipped" || !strings.Contains(rows[1]["reason"].(string), "imported") || rows[0]["decision"] != "accepted" || rows[0]["active"] != true {
		t.Fatalf("status of an imported version: %v", rows)
	}
	r = env.run([]string{"cert", "status"})
	wantOK(t, r)
	if !strings.Contains(r.stdout, "skipped") || !strings.Contains(r.stdout, "imported") {
		t.Fatalf("cert status table without the decision and reason:\n%s", r.stdout)
	}
	r = env.run([]string{"cert", "roll"})
	wantOK(t, r)
	if !strings.Contains(r.stdout, "attention") || env.e.Count(kvasserttest.OpGraphAddKey) != 0 {
		t.Fatalf("roll with an imported newest version: addKey %d\n%s", env.e.Count(kvasserttest.OpGraphAddKey), r.stdout)
	}
	r = env.run([]string{"cert", "roll", "--register-imported-keys"})
	wantOK(t, r)
	if env.e.Count(kvasserttest.OpGraphAddKey) != 1 {
		t.Fatalf("roll --register-imported-keys: addKey %d\n%s", env.e.Count(kvasserttest.OpGraphAddKey), r.stdout)
	}
}
