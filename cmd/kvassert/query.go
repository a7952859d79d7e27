package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/jmespath-community/go-jmespath"
	"github.com/spf13/cobra"
)

// structuredAnnotation marks the commands whose output --query applies to.
const structuredAnnotation = "kvassert/structured-output"

// structured marks cmd as printing structured output (a record, a table or
// JSON), so that it takes --query.
func structured(cmd *cobra.Command) *cobra.Command {
	if cmd.Annotations == nil {
		cmd.Annotations = map[string]string{}
	}
	cmd.Annotations[structuredAnnotation] = "true"
	return cmd
}

// setupQuery compiles --query (a JMESPath expression, as az's --query) for
// a command that prints structured output.
func (a *App) setupQuery(cmd *cobra.Command) error {
	a.query = nil
	if a.queryText == "" {
		return nil
	}
	if cmd.Annotations[structuredAnnotation] != "true" {
		return usageError(fmt.Sprintf("%s does not print structured output: --query does not apply", cmd.CommandPath()),
			"--query filters the output of token, assertion, decode, demo -o json and cert create, show and audit")
	}
	q, err := jmespath.Compile(a.queryText)
	if err != nil {
		return usageError(fmt.Sprintf("--query %q is not a JMESPath expression", truncate(a.queryText, 100)),
			"see https://jmespath.org; e.g. --query accessToken, or --query \"[accessToken, expiresOn]\"")
	}
	a.query = q
	return nil
}

// printQuery applies --query to v (any value that marshals to JSON) and
// prints the result as JSON (json), as values one per line and
// tab-separated within an object or row (tsv, as az does), or as a table
// (table, def when --output is not given). Object fields, which a JMESPath
// result does not order, come in key order.
func (a *App) printQuery(v any, def string) error {
	res, err := a.runQuery(v)
	if err != nil {
		return err
	}
	switch a.format(def) {
	case "json":
		return a.writeJSON(res)
	case "tsv":
		var b strings.Builder
		writeTSV(&b, res, true)
		_, err := fmt.Fprint(a.Stdout, b.String())
		return err
	default:
		switch x := res.(type) {
		case nil:
			return nil
		case map[string]any:
			return a.renderRecord(objectRecord(x), "table")
		case []any:
			if rows, ok := objectRows(x); ok {
				return a.renderTable(rows, "table")
			}
			for _, e := range x {
				if _, err := fmt.Fprintln(a.Stdout, scalarText(e)); err != nil {
					return err
				}
			}
			return nil
		}
		_, err := fmt.Fprintln(a.Stdout, scalarText(res))
		return err
	}
}

// runQuery evaluates --query on the JSON form of v. The error never quotes
// the output (it may hold a token).
func (a *App) runQuery(v any) (res any, err error) {
	data, err := marshalNoEscape(v)
	if err != nil {
		return nil, err
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var doc any
	if err := dec.Decode(&doc); err != nil {
		return nil, err
	}
	doc = numbersToFloat(doc)
	defer func() {
		if r := recover(); r != nil {
			res, err = nil, queryFailed(a.queryText)
		}
	}()
	res, err = a.query.Search(doc)
	if err != nil {
		return nil, queryFailed(a.queryText)
	}
	return res, nil
}

func queryFailed(q string) error {
	return usageError(fmt.Sprintf("--query %q cannot be evaluated on this command's output", truncate(q, 100)),
		"check the field names (run without --query to see them) and the types of function arguments")
}

// numbersToFloat turns json.Numbers into float64, the number type JMESPath
// functions work on.
func numbersToFloat(v any) any {
	switch x := v.(type) {
	case json.Number:
		f, _ := x.Float64()
		return f
	case map[string]any:
		for k, e := range x {
			x[k] = numbersToFloat(e)
		}
	case []any:
		for i, e := range x {
			x[i] = numbersToFloat(e)
		}
	}
	return v
}

// scalarText is a query result value as text: strings bare, numbers without
// exponent, null empty, anything else as compact JSON.
func scalarText(v any) string {
	switch x := v.(type) {
	case nil:
		return ""
	case string:
		return x
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64)
	case bool:
		return strconv.FormatBool(x)
	}
	b, _ := marshalNoEscape(v)
	return string(b)
}

// writeTSV writes v as az's tsv output does: a scalar on its line, an
// object's values on one line separated by tabs, an array's elements on one
// line each (top) or tab-separated (nested).
func writeTSV(b *strings.Builder, v any, top bool) {
	clean := strings.NewReplacer("\t", " ", "\n", " ", "\r", " ")
	switch x := v.(type) {
	case nil:
		return
	case []any:
		if !top {
			for i, e := range x {
				if i > 0 {
					b.WriteByte('\t')
				}
				b.WriteString(clean.Replace(scalarText(e)))
			}
			return
		}
		for _, e := range x {
			writeTSV(b, e, false)
			b.WriteByte('\n')
		}
		return
	case map[string]any:
		for i, k := range sortedKeys(x) {
			if i > 0 {
				b.WriteByte('\t')
			}
			b.WriteString(clean.Replace(scalarText(x[k])))
		}
	default:
		b.WriteString(clean.Replace(scalarText(x)))
	}
	if top {
		b.WriteByte('\n')
	}
}

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// objectRecord is an object of a query result as a record, in key order.
func objectRecord(m map[string]any) record {
	r := make(record, 0, len(m))
	for _, k := range sortedKeys(m) {
		r = append(r, field{k, scalarText(m[k])})
	}
	return r
}

// objectRows returns an array of objects as table rows (the keys of the
// first object as columns), or false when an element is not an object.
func objectRows(xs []any) ([]record, bool) {
	if len(xs) == 0 {
		return nil, false
	}
	first, ok := xs[0].(map[string]any)
	if !ok {
		return nil, false
	}
	cols := sortedKeys(first)
	rows := make([]record, 0, len(xs))
	for _, e := range xs {
		m, ok := e.(map[string]any)
		if !ok {
			return nil, false
		}
		r := make(record, len(cols))
		for i, c := range cols {
			r[i] = field{c, scalarText(m[c])}
		}
		rows = append(rows, r)
	}
	return rows, true
}
