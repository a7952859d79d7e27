package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/jmespath-community/go-jmespath"
	"github.com/jmespath-community/go-jmespath/pkg/parsing"
)

var update = flag.Bool("update", false, "rewrite testdata/golden/*.txt from the output")

// goldenToken is what "kvassert token" prints (az account get-access-token's
// shape), with a fake token.
var goldenToken = record{
	{"accessToken", "eyJ0eXAiOiJKV1QifQ.e30.c2ln"},
	{"expiresOn", "2026-12-06 23:10:00.000000"},
	{"expires_on", int64(1796598600)},
	{"tenant", "2b6e9d10-7c4a-4f0e-8d21-5a3b4c6d7e82"},
	{"tokenType", "Bearer"},
}

// goldenList is a list of rows, as "cert status" prints.
var goldenList = []record{
	{{"version", "0a1b2c3d"}, {"thumbprint", "52ED9B50"}, {"daysLeft", 364}, {"active", false}, {"graphKeyId", nil}, {"decision", "register"}},
	{{"version", "9f8e7d6c"}, {"thumbprint", "A1B2C3D4"}, {"daysLeft", 20}, {"active", true}, {"graphKeyId", "5d3c-1"}, {"decision", "accepted"}},
}

// goldenNested is a nested object, as "decode -o json" prints, with the
// strings YAML must quote.
var goldenNested = record{
	{"header", record{{"alg", "PS256"}, {"typ", "JWT"}, {"x5t#S256", "-Qx2"}}},
	{"claims", record{{"aud", "https://login.microsoftonline.com/t/oauth2/v2.0/token"}, {"exp", 1796598600}, {"nbf", 1796598000}, {"sub", "yes"}, {"note", "a: b # c\nd"}, {"empty", ""}, {"num", "0123"}}},
	{"signature", record{{"bytes", 256}, {"checked", true}, {"note", "not checked"}}},
	{"problems", []string{}},
	{"tags", []any{"a", record{{"k", "v"}, {"n", nil}}, []any{1, 2}}},
}

// goldenCases are the results each format's golden file holds, the query
// key order included.
var goldenCases = []struct {
	name, query string
	v           any
}{
	{"token", "", goldenToken},
	{"list", "", goldenList},
	{"nested", "", goldenNested},
	{"query hash keeps the query's order", "{t:tenant,e:expires_on}", goldenToken},
	{"query hash over a list", "[].{v:version, d:decision, a:active}", goldenList},
	{"query list", "[tenant, expires_on]", goldenToken},
	{"query scalar", "accessToken", goldenToken},
	{"query projection of an object", "claims", goldenNested},
	{"query null", "nosuchfield", goldenToken},
}

// renderGolden renders every golden case in format f (tty: stdout is a
// terminal).
func renderGolden(t *testing.T, f string, tty bool) string {
	t.Helper()
	var all bytes.Buffer
	for _, c := range goldenCases {
		var out bytes.Buffer
		a := &App{Stdout: &out, Output: f, queryText: c.query, Getenv: func(string) string { return "" }, stdoutTTY: tty}
		if c.query != "" {
			a.query = jmespath.MustCompile(c.query)
			ast, err := parsing.NewParser().Parse(c.query)
			if err != nil {
				t.Fatal(err)
			}
			a.queryOrders = hashOrders(ast, nil)
		}
		err := a.emit(c.v, formatJSON)
		all.WriteString("### " + c.name)
		if c.query != "" {
			all.WriteString(" --query " + c.query)
		}
		all.WriteString("\n")
		all.Write(out.Bytes())
		if err != nil {
			msg, hint, code := describe(err)
			all.WriteString("error (exit " + string(rune('0'+code)) + "): " + msg + "\nhint: " + hint + "\n")
		}
	}
	return all.String()
}

// TestOutputGolden: each format's output for a token, a list and a nested
// object, with and without --query, against testdata/golden (go test -run
// TestOutputGolden -update rewrites them). The shapes are az's (knack's
// output.py): json indented by 2; table a header row (keys, first letter
// upper-cased), dashes, one row per item, nested and null values left out;
// tsv values only, an object's in order, a nested list as its length, a
// nested object empty; yaml block style with indentless lists under a key.
// Where az sorts object keys (json without --query), kvassert keeps its
// output's order; a --query multiselect hash keeps the query's order in
// every format.
func TestOutputGolden(t *testing.T) {
	for _, f := range []string{formatJSON, formatJSONC, formatYAML, formatTable, formatTSV, formatNone} {
		got := renderGolden(t, f, true)
		path := filepath.Join("testdata", "golden", f+".txt")
		if *update {
			if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		want, err := os.ReadFile(path)
		if err != nil {
			t.Fatalf("%v (run go test -run TestOutputGolden -update)", err)
		}
		if got != string(want) {
			t.Errorf("-o %s differs from %s:\n--- got\n%s\n--- want\n%s", f, path, got, want)
		}
	}
	// jsonc is plain JSON when stdout is not a terminal (az); json is never
	// coloured.
	if jc, j := renderGolden(t, formatJSONC, false), renderGolden(t, formatJSON, true); jc != j || strings.Contains(j, "\x1b[") {
		t.Errorf("jsonc off a terminal is not json, or json is coloured:\n%s", jc)
	}
}

// TestQueryKeyOrder: the query's key order, in json, table and tsv, for
// hashes whose keys would sort the other way.
func TestQueryKeyOrder(t *testing.T) {
	for f, want := range map[string]string{
		formatJSON:  "{\n  \"t\": \"2b6e9d10-7c4a-4f0e-8d21-5a3b4c6d7e82\",\n  \"e\": 1796598600\n}\n",
		formatTSV:   "2b6e9d10-7c4a-4f0e-8d21-5a3b4c6d7e82\t1796598600\n",
		formatTable: "T                                     E\n------------------------------------  ----------\n2b6e9d10-7c4a-4f0e-8d21-5a3b4c6d7e82  1796598600\n",
		formatYAML:  "t: \"2b6e9d10-7c4a-4f0e-8d21-5a3b4c6d7e82\"\ne: 1796598600\n",
	} {
		var out bytes.Buffer
		q := "{t:tenant,e:expires_on}"
		a := &App{Stdout: &out, Output: f, queryText: q, Getenv: func(string) string { return "" }}
		a.query = jmespath.MustCompile(q)
		ast, _ := parsing.NewParser().Parse(q)
		a.queryOrders = hashOrders(ast, nil)
		if err := a.emit(goldenToken, formatJSON); err != nil {
			t.Fatal(err)
		}
		if out.String() != want {
			t.Errorf("-o %s --query %s = %q, want %q", f, q, out.String(), want)
		}
	}
}

// TestYAMLQuoting: strings YAML would read as something else are quoted.
func TestYAMLQuoting(t *testing.T) {
	for s, want := range map[string]string{
		"plain": "plain", "https://x.example/a?b=c": "https://x.example/a?b=c", "yes": `"yes"`, "No": `"No"`, "null": `"null"`,
		"~": `"~"`, "": `""`, "0123": `"0123"`, "1.5": `"1.5"`, "-1": `"-1"`, ".5": `".5"`, "2026-12-06": `"2026-12-06"`,
		"a: b": `"a: b"`, "a #b": `"a #b"`, "key:": `"key:"`, "- x": `"- x"`, "*ref": `"*ref"`, "&a": `"&a"`, "!tag": `"!tag"`,
		"{a}": `"{a}"`, "[a]": `"[a]"`, "'q'": `"'q'"`, "\"q\"": `"\"q\""`, "a\nb": `"a\nb"`, " lead": `" lead"`, "trail ": `"trail "`,
		"%x": `"%x"`, "@x": `"@x"`, "`x": "\"`x\"", "|x": `"|x"`, ">x": `">x"`, "?x": `"?x"`, ".inf": `".inf"`, "<<": `"<<"`,
		"CN=contoso SaaS": "CN=contoso SaaS", "x5t#S256": "x5t#S256", "é": `"é"`,
	} {
		if got := yamlString(s); got != want {
			t.Errorf("yamlString(%q) = %s, want %s", s, got, want)
		}
	}
}

// TestTextLayout: a command's human default (cert show, cert create): an
// object as labelled lines, a list of objects as a table, a value bare (a
// --query for one field prints just it).
func TestTextLayout(t *testing.T) {
	for _, c := range []struct {
		query string
		v     any
		want  string
	}{
		{"", record{{"name", "app"}, {"daysLeft", 3}, {"keyUsage", []string{"digitalSignature"}}, {"exportable", nil}},
			"name        app\ndaysLeft    3\nkeyUsage    digitalSignature\nexportable  -\n"},
		{"name", record{{"name", "app"}}, "app\n"},
		{"[name, name]", record{{"name", "app"}}, "app\napp\n"},
		{"", []record{{{"v", "a"}}, {{"v", "b"}}}, "V\n-\na\nb\n"},
	} {
		var out bytes.Buffer
		a := &App{Stdout: &out, queryText: c.query, Getenv: func(string) string { return "" }}
		if c.query != "" {
			a.query = jmespath.MustCompile(c.query)
		}
		if err := a.emit(c.v, formatText); err != nil {
			t.Fatal(err)
		}
		if out.String() != c.want {
			t.Errorf("text of %v --query %q = %q, want %q", c.v, c.query, out.String(), c.want)
		}
	}
}

// TestTableWideCharacters: a table stays aligned when a value holds
// characters a terminal shows two columns wide (CJK, emoji) or zero wide
// (combining marks), as tabulate (az's table) aligns them with wcwidth.
func TestTableWideCharacters(t *testing.T) {
	var out bytes.Buffer
	a := &App{Stdout: &out, Output: formatTable, Getenv: func(string) string { return "" }}
	rows := []record{
		{{"subject", "CN=日本語テスト 🔑"}, {"name", "unicode1"}},
		{{"subject", "CN=cafe\u0301"}, {"name", "x"}},
		{{"subject", "CN=ascii"}, {"name", "y"}},
	}
	if err := a.emit(rows, formatJSON); err != nil {
		t.Fatal(err)
	}
	// "CN=日本語テスト 🔑" is 18 columns wide: 3 + 6×2 + 1 + 2.
	want := "Subject" + strings.Repeat(" ", 13) + "Name\n" +
		strings.Repeat("-", 18) + "  " + strings.Repeat("-", 8) + "\n" +
		"CN=日本語テスト 🔑  unicode1\n" +
		"CN=cafe\u0301" + strings.Repeat(" ", 13) + "x\n" +
		"CN=ascii" + strings.Repeat(" ", 12) + "y\n"
	if out.String() != want {
		t.Errorf("table:\n%s\nwant\n%s", out.String(), want)
	}
}

// hostile holds what a terminal would act on: an OSC 52 clipboard write,
// a screen clear, BEL, an 8-bit CSI (C1), DEL and a right-to-left override.
const hostile = "\x1b]52;c;Y3VybCBldmlsLmV4YW1wbGUgfCBzaA==\a\x1b[2J\u009b31mred\x7f\u202eexe.txt"

// hasTerminalControl reports whether s holds a rune a terminal acts on
// (tab and newline apart) or one that reorders what it shows.
func hasTerminalControl(s string) bool {
	return strings.ContainsFunc(s, func(r rune) bool {
		return r != '\n' && r != '\t' && (r < 0x20 || r == 0x7f || r >= 0x80 && r <= 0x9f || r >= 0x202a && r <= 0x202e || r >= 0x2066 && r <= 0x2069)
	})
}

// TestOutputNeutralisesTerminalControls: a value from a service or from a
// token being decoded cannot drive the terminal (set the clipboard, clear
// the screen, reorder text) in any format; json and yaml keep the value
// (escaped), so that a reader gets it back unchanged.
func TestOutputNeutralisesTerminalControls(t *testing.T) {
	v := []record{{{"subject" + hostile, hostile}, {"n", "x"}}}
	for _, f := range []string{formatJSON, formatJSONC, formatYAML, formatTable, formatTSV, formatText} {
		var out bytes.Buffer
		a := &App{Stdout: &out, Output: f, Getenv: func(string) string { return "" }, stdoutTTY: false}
		if f == formatText {
			a.Output = ""
		}
		if err := a.emit(v, formatText); err != nil {
			t.Fatalf("-o %s: %v", f, err)
		}
		if hasTerminalControl(out.String()) {
			t.Errorf("-o %s writes terminal controls: %q", f, out.String())
		}
		if f == formatJSON {
			var back []map[string]string
			if err := json.Unmarshal(out.Bytes(), &back); err != nil || len(back) != 1 || back[0]["subject"+hostile] != hostile {
				t.Errorf("-o json does not give the value back: %v %q", err, out.String())
			}
		}
	}
	var text bytes.Buffer
	a := &App{Stdout: &text, Getenv: func(string) string { return "" }}
	if err := a.emit(record{{"subject", hostile}}, formatText); err != nil {
		t.Fatal(err)
	}
	if hasTerminalControl(text.String()) {
		t.Errorf("text layout writes terminal controls: %q", text.String())
	}
	if got := oneLine("error: " + hostile); hasTerminalControl(got) {
		t.Errorf("an error line writes terminal controls: %q", got)
	}
}
