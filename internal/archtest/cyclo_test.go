package archtest

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"testing"
)

// maxCyclo is the highest cyclomatic complexity a production function may
// have (counted as gocyclo v0.6.0 counts: 1, plus one per if, for, range,
// non-default case and select case, && and ||; function literals count
// toward the function that holds them).
const maxCyclo = 25

// cycloAllowed lists today's offenders by "directory function" (as gocyclo
// prints them). TEMPORARY for the v1 round: other branches are splitting
// each of them; the lead empties this list at merge. An entry that is no
// longer above maxCyclo (or gone) fails the test, so that it is removed.
var cycloAllowed = map[string]bool{}

// cycloFunc is one function and its complexity.
type cycloFunc struct {
	key  string // "directory function"
	pos  string // file:line
	cplx int
}

// TestCyclomaticComplexity fails listing every production (non-test)
// function of every module of the repository above maxCyclo. With
// KVASSERT_CYCLO_OVER=n it logs every function above n (to compare with
// `go run github.com/fzipp/gocyclo/cmd/gocyclo@v0.6.0 -over n -ignore '_test\.go$' .`).
func TestCyclomaticComplexity(t *testing.T) {
	funcs, err := cyclomatic(repoRoot())
	if err != nil {
		t.Fatal(err)
	}
	if n, err := strconv.Atoi(os.Getenv("KVASSERT_CYCLO_OVER")); err == nil {
		for _, f := range funcs {
			if f.cplx > n {
				t.Logf("%d %s %s", f.cplx, f.key, f.pos)
			}
		}
	}
	seen := map[string]bool{}
	var over []string
	for _, f := range funcs {
		if f.cplx <= maxCyclo {
			continue
		}
		seen[f.key] = true
		if !cycloAllowed[f.key] {
			over = append(over, fmt.Sprintf("%d %s %s", f.cplx, f.key, f.pos))
		}
	}
	if len(over) > 0 {
		t.Errorf("functions above cyclomatic complexity %d (split them):\n%s", maxCyclo, strings.Join(over, "\n"))
	}
	for key := range cycloAllowed {
		if !seen[key] {
			t.Errorf("cycloAllowed lists %q, which is no longer above %d: remove the entry", key, maxCyclo)
		}
	}
}

// repoRoot is the repository's root directory (this file is in
// internal/archtest).
func repoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..")
}

// cyclomatic returns the complexity of every function declared in a
// non-test .go file under root (every module: nested modules are walked
// too; testdata, vendor and hidden directories are not), highest first.
func cyclomatic(root string) ([]cycloFunc, error) {
	var out []cycloFunc
	fset := token.NewFileSet()
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		name := d.Name()
		if d.IsDir() {
			if path != root && (name == "testdata" || name == "vendor" || strings.HasPrefix(name, ".") || strings.HasPrefix(name, "_")) {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(name, ".go") || strings.HasSuffix(name, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(fset, path, nil, parser.SkipObjectResolution)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, filepath.Dir(path))
		for _, decl := range f.Decls {
			fn, ok := decl.(*ast.FuncDecl)
			if !ok || fn.Body == nil {
				continue
			}
			p := fset.Position(fn.Pos())
			file, _ := filepath.Rel(root, p.Filename)
			out = append(out, cycloFunc{
				key:  filepath.ToSlash(rel) + " " + funcName(fn),
				pos:  fmt.Sprintf("%s:%d", filepath.ToSlash(file), p.Line),
				cplx: complexity(fn),
			})
		}
		return nil
	})
	sort.SliceStable(out, func(i, j int) bool { return out[i].cplx > out[j].cplx })
	return out, err
}

// funcName is fn's name as gocyclo prints it: "f", "(T).m" or "(*T).m".
func funcName(fn *ast.FuncDecl) string {
	if fn.Recv == nil || len(fn.Recv.List) == 0 {
		return fn.Name.Name
	}
	return "(" + recvType(fn.Recv.List[0].Type) + ")." + fn.Name.Name
}

func recvType(e ast.Expr) string {
	switch t := e.(type) {
	case *ast.StarExpr:
		return "*" + recvType(t.X)
	case *ast.IndexExpr:
		return recvType(t.X)
	case *ast.IndexListExpr:
		return recvType(t.X)
	case *ast.Ident:
		return t.Name
	}
	return "?"
}

// complexity is gocyclo's count for one function.
func complexity(fn *ast.FuncDecl) int {
	c := 1
	ast.Inspect(fn, func(n ast.Node) bool {
		switch n := n.(type) {
		case *ast.IfStmt, *ast.ForStmt, *ast.RangeStmt:
			c++
		case *ast.CaseClause:
			if n.List != nil {
				c++
			}
		case *ast.CommClause:
			if n.Comm != nil {
				c++
			}
		case *ast.BinaryExpr:
			if n.Op == token.LAND || n.Op == token.LOR {
				c++
			}
		}
		return true
	})
	return c
}
