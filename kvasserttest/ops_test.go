package kvasserttest

import (
	"context"
	"go/ast"
	"go/parser"
	"go/token"
	"net/http"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/kvassert/kvassert/kvasserttest/scenario"
)

// TestEveryEmulatorOpIsExported reads the sources of the emulator's
// internal emu package and of this package: every constant of type emu.Op
// must have an exported alias here with the same name, so users can count
// and fault every operation the emulator defines.
func TestEveryEmulatorOpIsExported(t *testing.T) {
	emuOps := opConstants(t, filepath.Join("internal", "emu", "*.go"), func(spec *ast.ValueSpec, _ int) bool {
		id, ok := spec.Type.(*ast.Ident)
		return ok && id.Name == "Op"
	})
	if len(emuOps) < 20 {
		t.Fatalf("found only %d emu.Op constants (%v): the source scan is broken", len(emuOps), emuOps)
	}
	exported := map[string]bool{}
	for _, name := range opConstants(t, "*.go", func(spec *ast.ValueSpec, i int) bool {
		if i >= len(spec.Values) {
			return false
		}
		sel, ok := spec.Values[i].(*ast.SelectorExpr)
		if !ok {
			return false
		}
		pkg, ok := sel.X.(*ast.Ident)
		return ok && pkg.Name == "emu" && sel.Sel.Name == spec.Names[i].Name
	}) {
		exported[name] = true
	}
	var missing []string
	for _, name := range emuOps {
		if !exported[name] {
			missing = append(missing, name)
		}
	}
	if len(missing) > 0 {
		t.Errorf("emu defines operations that kvasserttest does not export: %v; add them to the Op constants in control.go", missing)
	}
}

// opConstants lists the names of the constants of the non-test Go files
// matching pattern that keep(spec, index) selects.
func opConstants(t *testing.T, pattern string, keep func(*ast.ValueSpec, int) bool) []string {
	t.Helper()
	files, err := filepath.Glob(pattern)
	if err != nil || len(files) == 0 {
		t.Fatalf("no files match %s (%v)", pattern, err)
	}
	var names []string
	fset := token.NewFileSet()
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		af, err := parser.ParseFile(fset, f, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range af.Decls {
			gd, ok := d.(*ast.GenDecl)
			if !ok || gd.Tok != token.CONST {
				continue
			}
			for _, s := range gd.Specs {
				spec := s.(*ast.ValueSpec)
				for i, n := range spec.Names {
					if n.IsExported() && keep(spec, i) {
						names = append(names, n.Name)
					}
				}
			}
		}
	}
	sort.Strings(names)
	return names
}

// TestFaultOnNewlyExportedOp: an operation exported by the list above can
// be faulted and counted through the public API.
func TestFaultOnNewlyExportedOp(t *testing.T) {
	k := newKVEnv(t)
	k.e.InjectFault(OpCertificateDelete, Fault{Status: http.StatusConflict, Times: 1})
	_, err := k.certs().DeleteCertificate(context.Background(), scenario.DemoCertificate, nil)
	if re := asResponseError(t, err); re.StatusCode != http.StatusConflict {
		t.Errorf("delete with an injected 409: %d", re.StatusCode)
	}
	if n := k.e.Count(OpCertificateDelete); n != 1 {
		t.Errorf("Count(OpCertificateDelete) = %d, want 1", n)
	}
}
