package main

import (
	"encoding/json"
	"fmt"
	"slices"
	"sort"

	"github.com/jmespath-community/go-jmespath"
	"github.com/jmespath-community/go-jmespath/pkg/parsing"
	"github.com/spf13/cobra"
)

// structuredAnnotation marks the commands that print data: they take
// --output and --query. The others refuse both when given on the command
// line.
const structuredAnnotation = "kvassert/structured-output"

// structured marks cmd as printing data (through App.emit), so that it
// takes --output and --query.
func structured(cmd *cobra.Command) *cobra.Command {
	if cmd.Annotations == nil {
		cmd.Annotations = map[string]string{}
	}
	cmd.Annotations[structuredAnnotation] = "true"
	return cmd
}

// isStructured reports whether cmd prints data.
func isStructured(cmd *cobra.Command) bool { return cmd.Annotations[structuredAnnotation] == "true" }

// setupQuery checks --output and compiles --query (a JMESPath expression,
// as az's --query) for a command that prints data.
func (a *App) setupQuery(cmd *cobra.Command) error {
	a.query, a.queryOrders = nil, nil
	if a.Output != "" && !slices.Contains(outputFormats, a.Output) {
		return usageError(fmt.Sprintf("%s: unknown output format %q", a.flagName("output"), truncate(a.Output, 20)), "use json, jsonc, yaml, table, tsv or none")
	}
	if !isStructured(cmd) {
		if a.fromEnv("output") {
			a.Output = "" // KVASSERT_OUTPUT is a default for the commands that print data
		}
		if a.Output != "" {
			return usageError(fmt.Sprintf("%s does not print data: --output does not apply", cmd.CommandPath()),
				"drop --output; it applies to "+structuredList(cmd.Root()))
		}
		if a.queryText != "" {
			return usageError(fmt.Sprintf("%s does not print data: --query does not apply", cmd.CommandPath()),
				"drop --query; it applies to "+structuredList(cmd.Root()))
		}
		return nil
	}
	if a.queryText == "" {
		return nil
	}
	q, err := jmespath.Compile(a.queryText)
	if err != nil {
		return usageError(fmt.Sprintf("--query %q is not a JMESPath expression", truncate(a.queryText, 100)),
			"see https://jmespath.org; e.g. --query accessToken, or --query \"[accessToken, expiresOn]\"")
	}
	a.query = q
	if ast, err := parsing.NewParser().Parse(a.queryText); err == nil {
		a.queryOrders = hashOrders(ast, nil)
	}
	return nil
}

// structuredList names the commands that print data, for a hint.
func structuredList(root *cobra.Command) string {
	var names []string
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		if isStructured(c) {
			names = append(names, c.CommandPath()[len(root.Name())+1:])
		}
		for _, s := range c.Commands() {
			walk(s)
		}
	}
	walk(root)
	sort.Strings(names)
	return joinAnd(names)
}

func joinAnd(s []string) string {
	switch len(s) {
	case 0:
		return ""
	case 1:
		return s[0]
	}
	out := ""
	for i, x := range s[:len(s)-1] {
		if i > 0 {
			out += ", "
		}
		out += x
	}
	return out + " and " + s[len(s)-1]
}

// hashOrders collects the key lists of the query's multiselect hashes
// ({a: x, b: y}), in the query's order: JMESPath results are unordered
// maps, and az keeps the query's order.
func hashOrders(n parsing.ASTNode, out [][]string) [][]string {
	if n.NodeType == parsing.ASTMultiSelectHash {
		keys := make([]string, 0, len(n.Children))
		for _, c := range n.Children {
			if k, ok := c.Value.(string); ok {
				keys = append(keys, k)
			}
		}
		out = append(out, keys)
	}
	for _, c := range n.Children {
		out = hashOrders(c, out)
	}
	return out
}

// runQuery evaluates --query on a result tree and returns the result as a
// tree whose objects are ordered: a multiselect hash in the query's order,
// an object of the output in its order, anything else by key. The error
// never quotes the output (it may hold a token).
func (a *App) runQuery(tree any) (res any, err error) {
	var orders [][]string
	orders = append(orders, a.queryOrders...)
	orders = docOrders(tree, orders)
	doc := plainTree(tree)
	defer func() {
		if r := recover(); r != nil {
			res, err = nil, queryFailed(a.queryText)
		}
	}()
	out, err := a.query.Search(doc)
	if err != nil {
		return nil, queryFailed(a.queryText)
	}
	return orderTree(out, orders), nil
}

func queryFailed(q string) error {
	return usageError(fmt.Sprintf("--query %q cannot be evaluated on this command's output", truncate(q, 100)),
		"check the field names (run without --query to see them) and the types of function arguments")
}

// docOrders collects the key order of every object of the output.
func docOrders(v any, out [][]string) [][]string {
	switch x := v.(type) {
	case record:
		keys := make([]string, len(x))
		for i, f := range x {
			keys[i] = f.key
			out = docOrders(f.val, out)
		}
		out = append(out, keys)
	case []any:
		for _, e := range x {
			out = docOrders(e, out)
		}
	}
	return out
}

// plainTree is a result tree as JMESPath takes it: maps, and float64 for
// numbers (the number type its functions work on).
func plainTree(v any) any {
	switch x := v.(type) {
	case record:
		m := make(map[string]any, len(x))
		for _, f := range x {
			m[f.key] = plainTree(f.val)
		}
		return m
	case []any:
		l := make([]any, len(x))
		for i, e := range x {
			l[i] = plainTree(e)
		}
		return l
	case json.Number:
		f, _ := x.Float64()
		return f
	}
	return v
}

// orderTree turns a JMESPath result back into a tree: each map becomes a
// record ordered by the first key list of orders that holds all its keys
// (the query's hashes first, then the output's objects), or by key.
func orderTree(v any, orders [][]string) any {
	switch x := v.(type) {
	case map[string]any:
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, o := range orders {
			if holdsAll(o, keys) {
				keys = orderedKeys(o, keys)
				break
			}
		}
		r := make(record, len(keys))
		for i, k := range keys {
			r[i] = field{k, orderTree(x[k], orders)}
		}
		return r
	case []any:
		l := make([]any, len(x))
		for i, e := range x {
			l[i] = orderTree(e, orders)
		}
		return l
	case float64:
		return json.Number(scalarText(x))
	}
	return v
}

func holdsAll(order, keys []string) bool {
	for _, k := range keys {
		if !slices.Contains(order, k) {
			return false
		}
	}
	return true
}

// orderedKeys is keys (all in order) in the order of order.
func orderedKeys(order, keys []string) []string {
	out := make([]string, 0, len(keys))
	for _, k := range order {
		if slices.Contains(keys, k) && !slices.Contains(out, k) {
			out = append(out, k)
		}
	}
	return out
}
