package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"regexp"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/width"
)

// The output formats of --output, as az's: json (the default of data
// commands), jsonc (json coloured on a terminal), yaml, table (a header row
// and one row per item), tsv (values only) and none (nothing; the exit code
// alone). A command's own default may also be formatText, a human layout
// that --output cannot select.
const (
	formatJSON  = "json"
	formatJSONC = "jsonc"
	formatYAML  = "yaml"
	formatTable = "table"
	formatTSV   = "tsv"
	formatNone  = "none"
	// formatText is a command's human layout when --output is not given:
	// an object as labelled lines, a list as a table.
	formatText = "text"
)

// outputFormats are the values --output takes, in the order help shows.
var outputFormats = []string{formatJSON, formatJSONC, formatYAML, formatTable, formatTSV, formatNone}

// field is one named value of a result.
type field struct {
	key string
	val any
}

// record is a result with fields in a fixed order: a JSON object whose
// members keep their order in every output format.
type record []field

// MarshalJSON writes the fields in order.
func (r record) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	b.WriteByte('{')
	for i, f := range r {
		if i > 0 {
			b.WriteByte(',')
		}
		k, _ := marshalNoEscape(f.key)
		b.Write(k)
		b.WriteByte(':')
		v, err := marshalNoEscape(f.val)
		if err != nil {
			return nil, err
		}
		b.Write(v)
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

func marshalNoEscape(v any) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimRight(b.Bytes(), "\n"), nil
}

// format is the output format in effect: --output, or def.
func (a *App) format(def string) string {
	if a.Output != "" {
		return a.Output
	}
	return def
}

// emit writes v, any value that marshals to JSON (records keep their field
// order), in the output format (def when --output is not given), after
// --query when one is given. Every command that prints data prints through
// emit.
func (a *App) emit(v any, def string) error {
	tree, err := toTree(v)
	if err != nil {
		return err
	}
	if a.query != nil {
		if tree, err = a.runQuery(tree); err != nil {
			return err
		}
	}
	return a.render(tree, a.format(def))
}

// outputGiven reports whether --output was given on the command line (not
// taken from KVASSERT_OUTPUT).
func (a *App) outputGiven() bool { return a.Output != "" && !a.fromEnv("output") }

// printJSON writes v as JSON (or as --output asks), after --query.
func (a *App) printJSON(v any) error { return a.emit(v, formatJSON) }

// printRecord writes r in the output format (def when --output is not
// given), after --query.
func (a *App) printRecord(r record, def string) error { return a.emit(r, def) }

// printTable writes rows (a list) in the output format (def when --output
// is not given), after --query.
func (a *App) printTable(rows []record, def string) error {
	if rows == nil {
		rows = []record{}
	}
	return a.emit(rows, def)
}

// render writes a result tree (see toTree) in format f. A null result
// (a --query that selects nothing) prints nothing in any format, as az.
func (a *App) render(tree any, f string) error {
	var b bytes.Buffer
	switch {
	case tree == nil:
		return nil
	}
	switch f {
	case formatNone:
		return nil
	case formatJSON:
		writeJSONTree(&b, tree, style{})
	case formatJSONC:
		writeJSONTree(&b, tree, a.style())
	case formatYAML:
		writeYAML(&b, tree)
	case formatTSV:
		writeTSV(&b, tree)
	case formatTable:
		if !writeTable(&b, tree) {
			return errNoTable
		}
	default: // formatText: an object as labelled lines, rows as a table, values bare
		switch {
		case isRecord(tree):
			writeText(&b, tree.(record), a.style())
		case isRows(tree):
			writeTable(&b, tree)
		default:
			writeTSV(&b, tree)
		}
	}
	_, err := a.Stdout.Write(b.Bytes())
	return err
}

func isRecord(v any) bool { _, ok := v.(record); return ok }

// isRows reports whether v is a list of objects.
func isRows(v any) bool {
	l, ok := v.([]any)
	if !ok {
		return false
	}
	for _, e := range l {
		if !isRecord(e) {
			return false
		}
	}
	return true
}

// toTree turns v into the tree the formats write: nil, bool, json.Number,
// string, []any and record (an object, its members in their JSON order).
func toTree(v any) (any, error) {
	data, err := marshalNoEscape(v)
	if err != nil {
		return nil, err
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	return decodeTree(dec)
}

func decodeTree(dec *json.Decoder) (any, error) {
	t, err := dec.Token()
	if err != nil {
		return nil, err
	}
	d, ok := t.(json.Delim)
	if !ok {
		return t, nil // nil, bool, json.Number, string
	}
	switch d {
	case '{':
		r := record{}
		for dec.More() {
			kt, err := dec.Token()
			if err != nil {
				return nil, err
			}
			k, _ := kt.(string)
			v, err := decodeTree(dec)
			if err != nil {
				return nil, err
			}
			r = append(r, field{k, v})
		}
		_, err = dec.Token() // '}'
		return r, err
	case '[':
		l := []any{}
		for dec.More() {
			v, err := decodeTree(dec)
			if err != nil {
				return nil, err
			}
			l = append(l, v)
		}
		_, err = dec.Token() // ']'
		return l, err
	}
	return nil, fmt.Errorf("unexpected %v", d)
}

// writeJSONTree writes tree as JSON indented by two spaces, as az does
// (non-ASCII as is), coloured with st (jsonc on a terminal).
func writeJSONTree(b *bytes.Buffer, tree any, st style) {
	writeJSONValue(b, tree, st, "")
	b.WriteByte('\n')
}

func writeJSONValue(b *bytes.Buffer, v any, st style, indent string) {
	in := indent + "  "
	switch x := v.(type) {
	case record:
		if len(x) == 0 {
			b.WriteString("{}")
			return
		}
		b.WriteString("{\n")
		for i, f := range x {
			b.WriteString(in + st.blue(jsonQuote(f.key)) + ": ")
			writeJSONValue(b, f.val, st, in)
			if i < len(x)-1 {
				b.WriteByte(',')
			}
			b.WriteByte('\n')
		}
		b.WriteString(indent + "}")
	case []any:
		if len(x) == 0 {
			b.WriteString("[]")
			return
		}
		b.WriteString("[\n")
		for i, e := range x {
			b.WriteString(in)
			writeJSONValue(b, e, st, in)
			if i < len(x)-1 {
				b.WriteByte(',')
			}
			b.WriteByte('\n')
		}
		b.WriteString(indent + "]")
	case string:
		b.WriteString(st.green(jsonQuote(x)))
	default:
		s, _ := marshalNoEscape(x)
		b.WriteString(st.yellow(string(s)))
	}
}

// scalarText is a value as text: strings bare, numbers as JSON writes them,
// null empty, true/false, and anything else as compact JSON.
func scalarText(v any) string {
	switch x := v.(type) {
	case nil:
		return ""
	case string:
		return x
	case json.Number:
		return x.String()
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64)
	case bool:
		return strconv.FormatBool(x)
	}
	b, _ := marshalNoEscape(v)
	return string(b)
}

// errNoTable is az's "Table output unavailable": the result has items but
// no scalar value to put in a column.
var errNoTable = usageError("table output unavailable: the result holds only nested values",
	"pick values with --query, e.g. --query \"claims\" -o table, or use -o json or yaml")

// cellClean keeps a value on its line and in its column.
var cellClean = strings.NewReplacer("\t", " ", "\r\n", " ", "\n", " ", "\r", " ")

// writeTSV writes tree as az's tsv output does: a list is one line per
// element, anything else one line; on a line, an object's values in order,
// a list's elements, or a scalar, separated by tabs; a nested list is its
// length and a nested object is empty, as az's. Unlike az, which prints
// Python's None, True and False, null is empty and booleans are true and
// false, as in the json output. Tabs and newlines inside a value become
// spaces so that every value stays in its column.
func writeTSV(b *bytes.Buffer, tree any) {
	if tree == nil {
		return
	}
	items, ok := tree.([]any)
	if !ok {
		items = []any{tree}
	}
	for _, it := range items {
		var vals []any
		switch x := it.(type) {
		case record:
			for _, f := range x {
				vals = append(vals, f.val)
			}
		case []any:
			vals = x
		default:
			vals = []any{x}
		}
		for i, v := range vals {
			if i > 0 {
				b.WriteByte('\t')
			}
			switch x := v.(type) {
			case []any:
				b.WriteString(strconv.Itoa(len(x)))
			case record:
			default:
				b.WriteString(termSafe(cellClean.Replace(scalarText(x))))
			}
		}
		b.WriteByte('\n')
	}
}

// writeTable writes tree as az's table output does: a header row (the keys,
// first letter upper-cased), a row of dashes, and one row per item (a list
// gives one item per element, anything else is one item). An object's
// scalar members are its columns, in order; nested objects, lists and null
// values are left out. A list item gives Column1, Column2, ...; a scalar
// item a Result column. Columns are the union of the items' columns in the
// order they first appear, two spaces apart. A cell may carry colour (the
// width counts what is visible). It reports false when items have no
// column (nothing written); an empty list or null writes nothing.
func writeTable(b *bytes.Buffer, tree any) bool {
	items, ok := tree.([]any)
	if !ok {
		items = []any{tree}
	}
	var cols []string
	seen := map[string]bool{}
	rows := make([]map[string]string, 0, len(items))
	for _, it := range items {
		row := tableRow(it)
		for _, f := range row {
			if !seen[f.key] {
				seen[f.key] = true
				cols = append(cols, f.key)
			}
		}
		m := make(map[string]string, len(row))
		for _, f := range row {
			m[f.key] = f.val.(string)
		}
		rows = append(rows, m)
	}
	if len(cols) == 0 {
		return tree == nil || len(items) == 0
	}
	width := make([]int, len(cols))
	for i, c := range cols {
		width[i] = visibleLen(c)
		for _, r := range rows {
			width[i] = max(width[i], visibleLen(r[c]))
		}
	}
	line := func(cell func(i int) string) {
		var l strings.Builder
		for i := range cols {
			if i > 0 {
				l.WriteString("  ")
			}
			s := cell(i)
			l.WriteString(s)
			l.WriteString(strings.Repeat(" ", width[i]-visibleLen(s)))
		}
		b.WriteString(strings.TrimRight(l.String(), " "))
		b.WriteByte('\n')
	}
	line(func(i int) string { return cols[i] })
	line(func(i int) string { return strings.Repeat("-", width[i]) })
	for _, r := range rows {
		line(func(i int) string { return r[cols[i]] })
	}
	return true
}

// tableRow is one item of a table as (column, cell text) pairs.
func tableRow(it any) record {
	var row record
	switch x := it.(type) {
	case record:
		for _, f := range x {
			switch f.val.(type) {
			case nil, record, []any:
				continue
			}
			row = append(row, field{capitalize(termSafe(cellClean.Replace(f.key))), termSafe(cellClean.Replace(scalarText(f.val)))})
		}
	case []any:
		for i, e := range x {
			row = append(row, field{"Column" + strconv.Itoa(i+1), termSafe(cellClean.Replace(scalarText(e)))})
		}
	case nil:
	default:
		row = append(row, field{"Result", termSafe(cellClean.Replace(scalarText(x)))})
	}
	return row
}

func capitalize(s string) string {
	r, n := utf8.DecodeRuneInString(s)
	if n == 0 {
		return s
	}
	return strings.ToUpper(string(r)) + s[n:]
}

// terminalControl reports whether r is a character a terminal acts on
// rather than shows (C0 controls, DEL, C1 controls such as the 8-bit CSI)
// or one that reorders what it shows (the bidirectional embeddings,
// overrides and isolates).
func terminalControl(r rune) bool {
	return r < 0x20 || r == 0x7f || r >= 0x80 && r <= 0x9f || r >= 0x202a && r <= 0x202e || r >= 0x2066 && r <= 0x2069
}

// termSafe writes each terminal control of s as its Go escape (\x1b,
// \u202e), so that a value from a service, or from a token being decoded,
// cannot set the clipboard, clear the screen or disguise itself when it is
// printed for a human (table, tsv, text, error lines).
func termSafe(s string) string {
	if !strings.ContainsFunc(s, terminalControl) {
		return s
	}
	var b strings.Builder
	for _, r := range s {
		if !terminalControl(r) {
			b.WriteRune(r)
			continue
		}
		q := strconv.QuoteRune(r)
		b.WriteString(q[1 : len(q)-1])
	}
	return b.String()
}

// jsonQuote is s as a JSON string, non-ASCII as is (as az), with the
// terminal controls JSON does not escape itself (DEL, C1, bidirectional
// formatting) written as \u escapes: the same string to a JSON reader,
// inert on a terminal, and valid YAML.
func jsonQuote(s string) string {
	q, _ := marshalNoEscape(s)
	if !strings.ContainsFunc(string(q), terminalControl) {
		return string(q)
	}
	var b strings.Builder
	for _, r := range string(q) {
		if terminalControl(r) {
			fmt.Fprintf(&b, "\\u%04x", r)
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

// ansiRE matches the colour sequences of style.
var ansiRE = regexp.MustCompile("\x1b\\[[0-9;]*m")

// visibleLen is the number of terminal columns s takes, without its colour
// sequences: East Asian wide and fullwidth characters (CJK, most emoji)
// take two, combining marks and format characters none, as wcwidth counts
// them (tabulate, az's table, aligns with it).
func visibleLen(s string) int {
	n := 0
	for _, r := range ansiRE.ReplaceAllString(s, "") {
		switch {
		case unicode.In(r, unicode.Mn, unicode.Me, unicode.Cf):
		case isWide(r):
			n += 2
		default:
			n++
		}
	}
	return n
}

// isWide reports whether a terminal shows r two columns wide.
func isWide(r rune) bool {
	if r < 0x1100 {
		return false
	}
	switch width.LookupRune(r).Kind() {
	case width.EastAsianWide, width.EastAsianFullwidth:
		return true
	}
	return false
}

// writeText writes an object as labelled lines: the key in bold, its value
// (nested values as compact JSON, empty ones as "-").
func writeText(b *bytes.Buffer, r record, st style) {
	w := 0
	for _, f := range r {
		w = max(w, visibleLen(termSafe(cellClean.Replace(f.key))))
	}
	for _, f := range r {
		key := termSafe(cellClean.Replace(f.key))
		v := scalarText(f.val)
		if l, ok := f.val.([]any); ok {
			parts := make([]string, len(l))
			for i, e := range l {
				parts[i] = scalarText(e)
			}
			v = strings.Join(parts, ", ")
		}
		if v == "" {
			v = "-"
		}
		fmt.Fprintf(b, "%s%s  %s\n", st.bold(key), strings.Repeat(" ", w-visibleLen(key)), termSafe(cellClean.Replace(v)))
	}
}

// isTerminal reports whether w is a terminal (a character device).
func isTerminal(w any) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// style colours text for a terminal; off for pipes and files, with NO_COLOR
// or TERM=dumb.
type style struct{ on bool }

func (a *App) style() style {
	return style{on: a.stdoutTTY && a.Getenv("NO_COLOR") == "" && a.Getenv("TERM") != "dumb"}
}

func (a *App) errStyle() style {
	return style{on: a.stderrTTY && a.Getenv("NO_COLOR") == "" && a.Getenv("TERM") != "dumb"}
}

func (s style) wrap(code, text string) string {
	if !s.on || text == "" {
		return text
	}
	return "\x1b[" + code + "m" + text + "\x1b[0m"
}

func (s style) bold(t string) string   { return s.wrap("1", t) }
func (s style) dim(t string) string    { return s.wrap("2", t) }
func (s style) red(t string) string    { return s.wrap("31", t) }
func (s style) green(t string) string  { return s.wrap("32", t) }
func (s style) yellow(t string) string { return s.wrap("33", t) }
func (s style) blue(t string) string   { return s.wrap("34", t) }
func (s style) cyan(t string) string   { return s.wrap("36", t) }

// checkOutFile refuses, before any request, a file flag (--out) whose
// directory does not exist or cannot be written: cert create would
// otherwise create the certificate in the vault and then fail.
func checkOutFile(flag, path string) error {
	if path == "" {
		return nil
	}
	dir := "."
	if i := strings.LastIndexAny(path, `/\`); i >= 0 {
		dir = path[:i+1]
	}
	hint := "give a path in an existing directory you can write to"
	if st, err := os.Stat(dir); err != nil || !st.IsDir() {
		return usageError(fmt.Sprintf("%s %s: the directory %s does not exist", flag, truncate(path, 200), truncate(dir, 200)), hint)
	}
	f, err := os.CreateTemp(dir, ".kvassert-*")
	if err != nil {
		return usageError(fmt.Sprintf("%s %s: cannot write in %s", flag, truncate(path, 200), truncate(dir, 200)), hint)
	}
	f.Close()
	os.Remove(f.Name())
	return nil
}

// writeFileAtomic writes data to path through a temporary file in the same
// directory and a rename, so that a reader never sees half a file and an
// existing symlink at path is replaced, not followed.
func writeFileAtomic(path string, data []byte, perm os.FileMode) error {
	dir := "."
	if i := strings.LastIndexAny(path, `/\`); i >= 0 {
		dir = path[:i+1]
	}
	f, err := os.CreateTemp(dir, ".kvassert-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	_, werr := f.Write(data)
	cerr := f.Close()
	if werr == nil {
		werr = cerr
	}
	if werr == nil {
		werr = os.Chmod(tmp, perm)
	}
	if werr == nil {
		werr = os.Rename(tmp, path)
	}
	if werr != nil {
		os.Remove(tmp)
		return werr
	}
	return nil
}
