package archtest

import (
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// TestArchitectureNamesEveryPackage: ARCHITECTURE.md names every package
// of the repository once in its map (in backquotes), so that the map a
// newcomer reads is the tree they get. It once listed fleet twice and left
// out internal/testlog.
func TestArchitectureNamesEveryPackage(t *testing.T) {
	_, file, _, _ := runtime.Caller(0)
	root := filepath.Join(filepath.Dir(file), "..", "..")
	doc, err := os.ReadFile(filepath.Join(root, "ARCHITECTURE.md"))
	if err != nil {
		t.Fatal(err)
	}
	text := string(doc)
	for _, dir := range []string{"internal", "kvasserttest"} {
		entries, err := os.ReadDir(filepath.Join(root, dir))
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range entries {
			if !e.IsDir() || e.Name() == "testdata" || (dir == "kvasserttest" && e.Name() == "internal") {
				continue
			}
			name := e.Name()
			if dir == "kvasserttest" {
				name = "kvasserttest/" + name
				if !strings.Contains(text, "`"+name+"`") && !strings.Contains(text, "kvasserttest/"+e.Name()+",") {
					t.Errorf("ARCHITECTURE.md does not name `%s`", name)
				}
				continue
			}
			if !strings.Contains(text, "`"+name+"`") {
				t.Errorf("ARCHITECTURE.md does not name internal package `%s`", name)
			}
		}
	}
	for _, pkg := range []string{"`fleet`", "`rotation`", "`proxy`", "`telemetry`", "`assertion`", "`keyvault`"} {
		if n := strings.Count(text, "\n- "+pkg); n != 1 {
			t.Errorf("ARCHITECTURE.md has %d list entries for %s, want 1", n, pkg)
		}
	}
}
