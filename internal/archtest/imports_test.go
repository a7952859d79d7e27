package archtest

import (
	"go/build"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

const module = "github.com/kvassert/kvassert"

// rules: for each package (relative to the module, "." for the root), the
// module packages its non-test files may import; "" allows none. Standard
// library and third-party imports are checked by stdlibOnly.
var rules = map[string][]string{
	"internal/inputerr":  {},
	"internal/textutil":  {},
	"internal/redact":    {},
	"internal/flight":    {},
	"assertion":          {"internal/inputerr", "internal/jwtassert"},
	"internal/jwtassert": {"internal/inputerr", "internal/textutil"},
	"internal/kvid":      {"internal/inputerr", "internal/textutil"},
	"internal/holdoff":   {},
	"internal/kvclient":  {"internal/inputerr", "internal/flight", "internal/obs", "telemetry"},
	"keyvault":           {"internal/inputerr", "internal/holdoff", "internal/kvclient", "internal/kvid", "internal/obs", "telemetry"},
	"internal/certcache": {"keyvault", "internal/inputerr", "internal/textutil", "internal/flight", "internal/jwtassert", "internal/kvclient", "internal/kvid", "internal/obs", "telemetry"},
	".":                  {"assertion", "keyvault", "internal/certcache", "internal/jwtassert", "internal/kvclient", "internal/kvid", "internal/inputerr", "internal/textutil", "internal/flight", "internal/credclock", "internal/obs", "telemetry", "internal/certfile", "internal/entraid", "internal/rootaccess"},
	"proxy":              {".", "assertion", "keyvault", "internal/certcache", "internal/jwtassert", "internal/kvid", "internal/textutil", "internal/flight", "internal/redact", "internal/certfile", "internal/entraid", "internal/rootaccess", "tenants"},
	"internal/credclock": {},
	"internal/testlog":   {},
	// The emulators must not depend on the code they test.
	// rotation and fleet build on the library; the library never imports them.
	"rotation":            {".", "assertion", "keyvault", "internal/certcache", "internal/graphapi", "internal/inputerr", "internal/jwtassert", "internal/kvclient", "internal/kvid", "telemetry", "internal/entraid", "internal/rootaccess", "internal/textutil"},
	"tenants":             {".", "internal/entraid", "internal/graphapi", "internal/inputerr", "internal/jwtassert", "internal/rootaccess", "internal/textutil"}, // customer tenants: consent, checks, app hygiene
	"internal/graphapi":   {".", "assertion", "internal/jwtassert", "internal/kvclient", "internal/kvid", "internal/entraid", "internal/textutil"},               // rotation's Graph client (addKey/removeKey) and proof
	"fleet":               {".", "keyvault", "internal/kvclient", "internal/obs", "telemetry", "internal/inputerr", "internal/textutil", "internal/fleetstats", "tenants"},
	"internal/fleetstats": {},
	// Root-module helpers behind the root package's API: tenant and client ID
	// rules, certificate files, and the accessors the CLI, proxy and rotation
	// use (a source's certificate cache, a credential's counters).
	"internal/entraid":    {},
	"internal/certfile":   {"internal/inputerr"},
	"internal/rootaccess": {"internal/certcache"},
	"telemetry":           {},
	"internal/azotel":     {},
	"internal/obs/obsrec": {"telemetry"},
	// Test helpers: redistest uses the standard library only, so that
	// every module may import it without a Redis client; the replica is in
	// the fleet module (it builds on the fleet and go-redis).
	"internal/redistest": {},
	// browsertest: headless Chromium over the DevTools protocol (standard
	// library and golang.org/x/net/websocket only).
	"internal/browsertest":        {},
	"fleet/internal/replica":      {".", "fleet", "keyvault", "internal/certcache", "internal/emuhook", "internal/fleetstats", "internal/testfixture", "kvasserttest", "kvasserttest/scenario", "internal/certfile", "internal/rootaccess"},
	"internal/obs":                {"telemetry", "internal/inputerr", "internal/azotel"},
	"kvasserttest":                {"kvasserttest/internal/emu", "kvasserttest/internal/entra", "kvasserttest/internal/graph", "kvasserttest/internal/names", "kvasserttest/internal/vault", "kvasserttest/scenario", "internal/emuhook", "internal/inputerr", "internal/textutil"},
	"kvasserttest/internal/graph": {"kvasserttest/internal/emu", "kvasserttest/internal/entra"},
	"kvasserttest/scenario":       {"kvasserttest/internal/names", "internal/emuhook", "internal/inputerr"},
	"kvasserttest/internal/names": {},
	// internal/emuhook: what kvassert's own tests and CLI use of the emulators
	// beyond kvasserttest's API (standard library only).
	"internal/emuhook":            {},
	"kvasserttest/internal/emu":   {"internal/emuhook"},
	"kvasserttest/internal/entra": {"kvasserttest/internal/emu", "kvasserttest/internal/names", "kvasserttest/scenario", "internal/emuhook"},
	"kvasserttest/internal/vault": {"kvasserttest/internal/emu", "kvasserttest/internal/names", "kvasserttest/scenario", "internal/emuhook"},
}

// stdlibOnly packages import nothing outside the standard library.
var stdlibOnly = map[string]bool{"internal/inputerr": true, "internal/textutil": true, "internal/redact": true, "internal/flight": true, "assertion": true, "internal/jwtassert": true, "internal/holdoff": true, "internal/fleetstats": true, "internal/redistest": true}

func TestImportRules(t *testing.T) {
	_, file, _, _ := runtime.Caller(0)
	root := filepath.Join(filepath.Dir(file), "..", "..")
	for pkg, allowed := range rules {
		bp, err := build.Default.ImportDir(filepath.Join(root, pkg), 0)
		if err != nil {
			t.Errorf("%s: %v", pkg, err)
			continue
		}
		ok := map[string]bool{}
		for _, a := range allowed {
			ok[a] = true
		}
		for _, imp := range bp.Imports {
			rel, inModule := strings.CutPrefix(imp, module)
			switch {
			case inModule:
				rel = strings.TrimPrefix(rel, "/")
				if rel == "" {
					rel = "."
				}
				if !ok[rel] {
					t.Errorf("%s imports %s, which ARCHITECTURE.md does not allow", pkg, imp)
				}
			case stdlibOnly[pkg] && strings.Contains(strings.SplitN(imp, "/", 2)[0], "."):
				t.Errorf("%s imports %s: it may use the standard library only", pkg, imp)
			}
		}
	}
}
