package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

// field is one named value of a result.
type field struct {
	key string
	val any
}

// record is a result with fields in a fixed order: a JSON object, a
// two-column table, or one tab-separated line.
type record []field

// MarshalJSON writes the fields in order.
func (r record) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	b.WriteByte('{')
	for i, f := range r {
		if i > 0 {
			b.WriteByte(',')
		}
		k, _ := json.Marshal(f.key)
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

// printJSON writes v as indented JSON, or the result of --query on it.
func (a *App) printJSON(v any) error {
	if a.query != nil {
		return a.printQuery(v, "json")
	}
	return a.writeJSON(v)
}

// writeJSON writes v as indented JSON.
func (a *App) writeJSON(v any) error {
	enc := json.NewEncoder(a.Stdout)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// printRecord writes r in the output format (def when --output is not
// given), or the result of --query on it.
func (a *App) printRecord(r record, def string) error {
	if a.query != nil {
		return a.printQuery(r, def)
	}
	return a.renderRecord(r, def)
}

// renderRecord writes r in the output format (def when --output is not given).
func (a *App) renderRecord(r record, def string) error {
	switch a.format(def) {
	case "json":
		return a.writeJSON(r)
	case "tsv":
		vals := make([]string, len(r))
		for i, f := range r {
			vals[i] = tsvValue(f.val)
		}
		_, err := fmt.Fprintln(a.Stdout, strings.Join(vals, "\t"))
		return err
	default:
		st := a.style()
		tw := tabwriter.NewWriter(a.Stdout, 0, 0, 2, ' ', 0)
		for _, f := range r {
			fmt.Fprintf(tw, "%s\t%s\n", st.bold(f.key), textValue(f.val))
		}
		return tw.Flush()
	}
}

// printTable writes rows under a header (table), as JSON objects (json), or
// as tab-separated lines (tsv); or the result of --query on them.
func (a *App) printTable(rows []record, def string) error {
	if rows == nil {
		rows = []record{}
	}
	if a.query != nil {
		return a.printQuery(rows, def)
	}
	return a.renderTable(rows, def)
}

// renderTable writes rows in the output format (def when --output is not
// given).
func (a *App) renderTable(rows []record, def string) error {
	switch a.format(def) {
	case "json":
		return a.writeJSON(rows)
	case "tsv":
		for _, r := range rows {
			vals := make([]string, len(r))
			for i, f := range r {
				vals[i] = tsvValue(f.val)
			}
			if _, err := fmt.Fprintln(a.Stdout, strings.Join(vals, "\t")); err != nil {
				return err
			}
		}
		return nil
	default:
		if len(rows) == 0 {
			return nil
		}
		tw := tabwriter.NewWriter(a.Stdout, 0, 0, 2, ' ', 0)
		head := make([]string, len(rows[0]))
		for i, f := range rows[0] {
			head[i] = strings.ToUpper(f.key)
		}
		fmt.Fprintln(tw, strings.Join(head, "\t"))
		for _, r := range rows {
			vals := make([]string, len(r))
			for i, f := range r {
				vals[i] = textValue(f.val)
			}
			fmt.Fprintln(tw, strings.Join(vals, "\t"))
		}
		return tw.Flush()
	}
}

func textValue(v any) string {
	switch x := v.(type) {
	case nil:
		return "-"
	case string:
		if x == "" {
			return "-"
		}
		return x
	case []string:
		if len(x) == 0 {
			return "-"
		}
		return strings.Join(x, ", ")
	case time.Time:
		return x.UTC().Format(time.RFC3339)
	case *bool:
		if x == nil {
			return "unknown"
		}
		return strconv.FormatBool(*x)
	}
	return fmt.Sprint(v)
}

func tsvValue(v any) string {
	s := textValue(v)
	if s == "-" {
		if str, ok := v.(string); ok && str == "-" {
			return s
		}
		return ""
	}
	return strings.NewReplacer("\t", " ", "\n", " ").Replace(s)
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
func (s style) cyan(t string) string   { return s.wrap("36", t) }

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
