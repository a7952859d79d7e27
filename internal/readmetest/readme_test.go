// Package readmetest checks that every Go block of the README is code that
// compiles and runs: each block is a verified copy of an Example function or
// of a program under examples/, which go vet and go test build and run.
package readmetest

import (
	"bytes"
	"flag"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// A README Go block is preceded by a marker naming what it copies:
//
//	<!-- checked: example_test.go#ExampleNewCredential -->   the body of that function
//	<!-- checked: examples/hello/main.go -->                 the whole file
var markerRE = regexp.MustCompile(`^<!-- checked: ([^ #]+)(?:#([A-Za-z0-9_]+))? -->$`)

const repoRoot = "../.."

// update rewrites each marked README block from the code it names:
// go test ./internal/readmetest -update
var update = flag.Bool("update", false, "rewrite the README's marked Go blocks from the code they name")

type block struct {
	line   int    // line of the opening fence
	marker string // the marker line, or ""
	code   string
}

func goBlocks(t *testing.T, readme string) []block {
	t.Helper()
	var out []block
	lines := strings.Split(readme, "\n")
	for i := 0; i < len(lines); i++ {
		if strings.TrimSpace(lines[i]) != "```go" {
			continue
		}
		b := block{line: i + 1}
		for j := i - 1; j >= 0; j-- {
			if s := strings.TrimSpace(lines[j]); s != "" {
				if markerRE.MatchString(s) {
					b.marker = s
				}
				break
			}
		}
		var code []string
		for i++; i < len(lines) && strings.TrimSpace(lines[i]) != "```"; i++ {
			code = append(code, lines[i])
		}
		b.code = strings.Join(code, "\n")
		out = append(out, b)
	}
	return out
}

// source returns what a marker names: a whole file, or a function's body
// dedented by one tab, without its "// Output:" comment.
func source(path, fn string) (string, error) {
	data, err := os.ReadFile(filepath.Join(repoRoot, filepath.FromSlash(path)))
	if err != nil {
		return "", err
	}
	if fn == "" {
		return string(data), nil
	}
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, path, data, parser.ParseComments)
	if err != nil {
		return "", err
	}
	for _, d := range f.Decls {
		fd, ok := d.(*ast.FuncDecl)
		if !ok || fd.Name.Name != fn || fd.Body == nil {
			continue
		}
		start := fset.Position(fd.Body.Lbrace).Offset + 1
		end := fset.Position(fd.Body.Rbrace).Offset
		var body []string
		for _, l := range strings.Split(string(data[start:end]), "\n") {
			body = append(body, strings.TrimPrefix(l, "\t"))
		}
		text := strings.Join(body, "\n")
		if i := strings.Index(text, "// Output:"); i >= 0 {
			text = text[:i]
		}
		return text, nil
	}
	return "", fmt.Errorf("no function %s in %s", fn, path)
}

func normalize(s string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		out = append(out, strings.TrimRight(l, " \t"))
	}
	return strings.Trim(strings.Join(out, "\n"), "\n")
}

func TestEveryREADMEGoBlockIsCheckedCode(t *testing.T) {
	for _, doc := range []string{"README.md"} {
		data, err := os.ReadFile(filepath.Join(repoRoot, doc))
		if err != nil {
			t.Fatal(err)
		}
		if *update {
			data = rewrite(t, data)
			if err := os.WriteFile(filepath.Join(repoRoot, doc), data, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		blocks := goBlocks(t, string(data))
		if len(blocks) == 0 {
			t.Fatalf("%s: no Go blocks found", doc)
		}
		for _, b := range blocks {
			m := markerRE.FindStringSubmatch(b.marker)
			if m == nil {
				t.Errorf("%s:%d: Go block without a <!-- checked: file#Func --> marker on the line before it", doc, b.line)
				continue
			}
			want, err := source(m[1], m[2])
			if err != nil {
				t.Errorf("%s:%d: %v", doc, b.line, err)
				continue
			}
			if got, want := normalize(b.code), normalize(want); got != want {
				t.Errorf("%s:%d: block differs from %s%s:\n%s", doc, b.line, m[1], map[bool]string{true: "#" + m[2]}[m[2] != ""], diff(got, want))
			}
		}
	}
}

// diff names the first differing line of the README block and the code.
func diff(got, want string) string {
	g, w := strings.Split(got, "\n"), strings.Split(want, "\n")
	for i := 0; i < len(g) || i < len(w); i++ {
		var gl, wl string
		if i < len(g) {
			gl = g[i]
		}
		if i < len(w) {
			wl = w[i]
		}
		if gl != wl {
			var b bytes.Buffer
			fmt.Fprintf(&b, "  line %d\n  README: %q\n  code:   %q", i+1, gl, wl)
			return b.String()
		}
	}
	return "  (equal after normalization?)"
}

func TestMarkerParsing(t *testing.T) {
	readme := "x\n<!-- checked: a/b.go#ExampleX -->\n\n```go\nfoo()\n```\n```go\nbar()\n```\n"
	bs := goBlocks(t, readme)
	if len(bs) != 2 || bs[0].marker == "" || bs[1].marker != "" || bs[0].code != "foo()" {
		t.Fatalf("goBlocks = %+v", bs)
	}
	src, err := source("internal/readmetest/readme_test.go", "TestMarkerParsing")
	if err != nil || !strings.Contains(src, "goBlocks(t, readme)") || strings.HasPrefix(src, "\t\t") {
		t.Fatalf("source = %q, %v", src, err)
	}
	if _, err := source("internal/readmetest/readme_test.go", "NoSuchFunc"); err == nil {
		t.Fatal("a missing function must be an error")
	}
}

// rewrite replaces the body of every marked Go block with the code its
// marker names (dedented as the check compares it).
func rewrite(t *testing.T, data []byte) []byte {
	t.Helper()
	lines := strings.Split(string(data), "\n")
	var out []string
	for i := 0; i < len(lines); i++ {
		out = append(out, lines[i])
		m := markerRE.FindStringSubmatch(strings.TrimSpace(lines[i]))
		if m == nil || i+1 >= len(lines) || strings.TrimSpace(lines[i+1]) != "```go" {
			continue
		}
		src, err := source(m[1], m[2])
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, lines[i+1])
		out = append(out, strings.Split(normalize(src), "\n")...)
		j := i + 2
		for j < len(lines) && strings.TrimSpace(lines[j]) != "```" {
			j++
		}
		i = j - 1 // the closing fence is appended next
	}
	return []byte(strings.Join(out, "\n"))
}
