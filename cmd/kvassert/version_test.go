package main

import (
	"encoding/json"
	"runtime/debug"
	"strings"
	"testing"

	"github.com/kvassert/kvassert"
	"github.com/kvassert/kvassert/kvasserttest/scenario"
)

// TestVersion: "kvassert version" reports the release, the build and the
// linked MSAL Go and azcore versions, in JSON by default and through the
// output layer; --version prints the same as text; -v is not --version.
func TestVersion(t *testing.T) {
	t.Parallel()
	r := runBin(t, nil, "", []string{"version"})
	wantOK(t, r)
	var v map[string]any
	if err := json.Unmarshal([]byte(r.stdout), &v); err != nil {
		t.Fatalf("version: %v\n%s", err, r.stdout)
	}
	if v["kvassert"] != kvassert.Version || !strings.HasPrefix(v["go"].(string), "go") ||
		!strings.HasPrefix(v["msalGo"].(string), "v1.") || !strings.HasPrefix(v["azcore"].(string), "v1.") {
		t.Errorf("version = %v", v)
	}
	for _, k := range []string{"module", "revision", "revisionTime", "modified", "platform"} {
		if _, ok := v[k]; !ok {
			t.Errorf("version lacks %q: %v", k, v)
		}
	}
	r = runBin(t, nil, "", []string{"version", "--query", "[azcore, kvassert]", "-o", "tsv"})
	wantOK(t, r)
	if r.stdout != v["azcore"].(string)+"\n"+kvassert.Version+"\n" {
		t.Errorf("version --query -o tsv = %q", r.stdout)
	}
	r = runBin(t, nil, "", []string{"--version"})
	wantOK(t, r)
	for _, want := range []string{"kvassert version " + kvassert.Version, "msalGo", v["azcore"].(string)} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("--version lacks %q:\n%s", want, r.stdout)
		}
	}
	wantError(t, runBin(t, nil, "", []string{"-v"}), exitUsage, "unknown shorthand flag: 'v'", "")
}

// TestAssertionTableAndExportQuery: assertion -o table is a proper table
// (the JWT is data); cert export --query works on the keyCredential JSON
// and is refused, saying why, on a PEM certificate.
func TestAssertionTableAndExportQuery(t *testing.T) {
	t.Parallel()
	env := newCLIEnv(t)
	r := env.run([]string{"assertion", "--tenant", scenario.DemoContosoTenant, "-o", "table"})
	wantOK(t, r)
	rows := strings.Split(strings.TrimSuffix(r.stdout, "\n"), "\n")
	if len(rows) != 3 || !strings.HasPrefix(rows[0], "Assertion ") || !strings.Contains(rows[0], "  Audience  ") || !strings.HasPrefix(rows[2], "eyJ") {
		t.Errorf("assertion -o table = %q", r.stdout)
	}
	r = env.run([]string{"cert", "export", "--format", "keycredential", "--query", "{t:type, u:usage}", "-o", "tsv"})
	wantOK(t, r)
	if r.stdout != "AsymmetricX509Cert\tVerify\n" {
		t.Errorf("cert export --query = %q", r.stdout)
	}
	wantError(t, env.run([]string{"cert", "export", "--query", "keyId"}), exitUsage,
		"--query applies to the JSON of --format keycredential, not to a PEM certificate", "--format keycredential")
}

// TestVersionModifiedUnknownWithoutVCS: a binary built without a VCS stamp
// (go build in a git worktree, a source tarball, -buildvcs=false) does not
// claim an unmodified tree: modified is null like revision; with a stamp it
// is what the stamp says.
func TestVersionModifiedUnknownWithoutVCS(t *testing.T) {
	get := func(r record, key string) any {
		for _, f := range r {
			if f.key == key {
				return f.val
			}
		}
		t.Fatalf("no %q in %v", key, r)
		return nil
	}
	bi := &debug.BuildInfo{GoVersion: "go1.26.0", Main: debug.Module{Path: "github.com/kvassert/kvassert/cmd/kvassert", Version: "(devel)"}}
	if v := get(versionInfo(bi, true), "modified"); v != nil {
		t.Errorf("unstamped build: modified = %v, want null", v)
	}
	for stamp, want := range map[string]bool{"true": true, "false": false} {
		bi.Settings = []debug.BuildSetting{{Key: "vcs.revision", Value: "667fc53"}, {Key: "vcs.modified", Value: stamp}}
		if v := get(versionInfo(bi, true), "modified"); v != want {
			t.Errorf("vcs.modified=%s: modified = %v, want %v", stamp, v, want)
		}
	}
}
