package obs_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"strconv"
	"strings"
	"testing"
)

// TestDocListsEveryName: docs/telemetry.md names every metric, attribute,
// attribute value and span of names.go (as `value`), so that the doc and
// the code cannot drift.
func TestDocListsEveryName(t *testing.T) {
	doc, err := os.ReadFile("../../docs/telemetry.md")
	if err != nil {
		t.Fatal(err)
	}
	f, err := parser.ParseFile(token.NewFileSet(), "names.go", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, d := range f.Decls {
		g, ok := d.(*ast.GenDecl)
		if !ok || g.Tok != token.CONST {
			continue
		}
		for _, s := range g.Specs {
			vs := s.(*ast.ValueSpec)
			for i, name := range vs.Names {
				lit, ok := vs.Values[i].(*ast.BasicLit)
				if !ok || lit.Kind != token.STRING {
					t.Fatalf("%s is not a string literal", name.Name)
				}
				v, _ := strconv.Unquote(lit.Value)
				n++
				if !strings.Contains(string(doc), "`"+v+"`") {
					t.Errorf("docs/telemetry.md does not list %s (`%s`)", name.Name, v)
				}
			}
		}
	}
	if n < 30 {
		t.Fatalf("found %d names in names.go; the parse missed some", n)
	}
}
