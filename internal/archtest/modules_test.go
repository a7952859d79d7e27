package archtest

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// modules are the repository's modules (directories holding a go.mod),
// each listed in go.work, and the module paths their go.mod must not
// require (prefixes): a library user's module graph holds every
// requirement of the root go.mod, a fleet user's every requirement of
// fleet's too. .ci/consumer-check checks the resulting graphs.
var modules = map[string][]string{
	".":                    {cliOnly, sdkOnly, redisOnly, "github.com/kvassert/kvassert/fleet", "github.com/kvassert/kvassert/cmd", "github.com/Azure/azure-sdk-for-go/sdk/tracing/azotel"},
	"fleet":                {cliOnly, sdkOnly, "github.com/kvassert/kvassert/cmd", "github.com/kvassert/kvassert/internal/integration", "github.com/Azure/azure-sdk-for-go/sdk/tracing/azotel"},
	"cmd/kvassert":         {"github.com/kvassert/kvassert/internal/integration"},
	"internal/integration": {},
	"benchmarks":           {"github.com/kvassert/kvassert/internal/integration"},
}

const (
	cliOnly   = "github.com/spf13/|github.com/jmespath|go.opentelemetry.io/otel/exporters/|google.golang.org/grpc|github.com/grpc-ecosystem/"
	sdkOnly   = "go.opentelemetry.io/otel/sdk"
	redisOnly = "github.com/redis/"
)

func TestModules(t *testing.T) {
	root := repoRoot()
	work, err := os.ReadFile(filepath.Join(root, "go.work"))
	if err != nil {
		t.Fatal(err)
	}
	for dir, banned := range modules {
		mod, err := os.ReadFile(filepath.Join(root, dir, "go.mod"))
		if err != nil {
			t.Error(err)
			continue
		}
		use := "./" + dir
		if dir == "." {
			use = "."
		}
		if !strings.Contains(string(work), "\t"+use+"\n") {
			t.Errorf("go.work does not use %s", use)
		}
		for _, line := range strings.Split(string(mod), "\n") {
			line = strings.TrimSpace(line)
			if v, ok := strings.CutPrefix(line, "go "); ok && v == "1.26.8" {
				t.Errorf("%s/go.mod: go %s: use the oldest Go the module needs", dir, v)
			}
			f := strings.Fields(strings.TrimPrefix(line, "require "))
			if len(f) < 2 || strings.HasPrefix(line, "//") || strings.HasPrefix(line, "module ") || strings.HasPrefix(line, "replace ") {
				continue
			}
			for _, b := range banned {
				for _, prefix := range strings.Split(b, "|") {
					if strings.HasPrefix(f[0], prefix) {
						t.Errorf("%s/go.mod requires %s", dir, f[0])
					}
				}
			}
		}
	}
	// Every go.mod in the repository is one of modules.
	err = filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == "testdata" || strings.HasPrefix(d.Name(), ".")) && path != root {
			return filepath.SkipDir
		}
		if d.Name() == "go.mod" {
			rel, _ := filepath.Rel(root, filepath.Dir(path))
			if _, ok := modules[filepath.ToSlash(rel)]; !ok {
				t.Errorf("%s is a module this test (and go.work, .ci/run) does not know", rel)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
