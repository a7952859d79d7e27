package kvasserttest

import (
	"context"
	"go/ast"
	"go/parser"
	"go/token"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/kvassert/kvassert/kvasserttest/scenario"
)

// TestEveryEmulatorOpIsDocumented reads the sources of the emulator's
// internal emu package and of this package: every constant of type emu.Op
// must be named in the Op doc (control.go), so users can count and fault
// every operation the emulator defines as Op("name"), and every Op constant
// exported here must be the emu constant of the same name.
func TestEveryEmulatorOpIsDocumented(t *testing.T) {
	emuOps := opValues(t, filepath.Join("internal", "emu", "*.go"))
	if len(emuOps) < 20 {
		t.Fatalf("found only %d emu.Op constants (%v): the source scan is broken", len(emuOps), emuOps)
	}
	doc, err := os.ReadFile("control.go")
	if err != nil {
		t.Fatal(err)
	}
	var missing []string
	for name, value := range emuOps {
		if !strings.Contains(string(doc), strconv.Quote(value)) {
			missing = append(missing, name+" "+value)
		}
	}
	sort.Strings(missing)
	if len(missing) > 0 {
		t.Errorf("emu defines operations that the Op doc in control.go does not list: %v", missing)
	}
	exported := opConstants(t, "*.go", func(spec *ast.ValueSpec, i int) bool {
		if i >= len(spec.Values) {
			return false
		}
		sel, ok := spec.Values[i].(*ast.SelectorExpr)
		if !ok {
			return false
		}
		pkg, ok := sel.X.(*ast.Ident)
		if !ok || pkg.Name != "emu" || sel.Sel.Name != spec.Names[i].Name {
			t.Errorf("Op constant %s is not emu.%s", spec.Names[i].Name, spec.Names[i].Name)
		}
		return true
	})
	if len(exported) < 8 {
		t.Errorf("only %d Op constants exported (%v): the source scan is broken", len(exported), exported)
	}
}

// parseSources parses the non-test Go files matching pattern; it fails
// the test when none match.
func parseSources(t *testing.T, pattern string) []*ast.File {
	t.Helper()
	files, err := filepath.Glob(pattern)
	if err != nil || len(files) == 0 {
		t.Fatalf("no files match %s (%v)", pattern, err)
	}
	var out []*ast.File
	fset := token.NewFileSet()
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		af, err := parser.ParseFile(fset, f, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, af)
	}
	return out
}

// opValues maps the emu.Op constants of the non-test Go files matching
// pattern to their string values.
func opValues(t *testing.T, pattern string) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, af := range parseSources(t, pattern) {
		ast.Inspect(af, func(n ast.Node) bool {
			spec, ok := n.(*ast.ValueSpec)
			if !ok {
				return true
			}
			if id, ok := spec.Type.(*ast.Ident); !ok || id.Name != "Op" {
				return true
			}
			for i, name := range spec.Names {
				if lit, ok := spec.Values[i].(*ast.BasicLit); ok && name.IsExported() {
					v, _ := strconv.Unquote(lit.Value)
					out[name.Name] = v
				}
			}
			return true
		})
	}
	return out
}

// opConstants lists the names of the constants of the non-test Go files
// matching pattern that keep(spec, index) selects.
func opConstants(t *testing.T, pattern string, keep func(*ast.ValueSpec, int) bool) []string {
	t.Helper()
	var names []string
	for _, af := range parseSources(t, pattern) {
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

// TestFaultOnNewlyExportedOp: an operation without a constant can be
// faulted and counted through the public API by its name.
func TestFaultOnNewlyExportedOp(t *testing.T) {
	k := newKVEnv(t)
	k.e.InjectFault(Op("certificates/delete"), Fault{Status: http.StatusConflict, Times: 1})
	_, err := k.certs().DeleteCertificate(context.Background(), scenario.DemoCertificate, nil)
	if re := asResponseError(t, err); re.StatusCode != http.StatusConflict {
		t.Errorf("delete with an injected 409: %d", re.StatusCode)
	}
	if n := k.e.Count(Op("certificates/delete")); n != 1 {
		t.Errorf(`Count(Op("certificates/delete")) = %d, want 1`, n)
	}
}
