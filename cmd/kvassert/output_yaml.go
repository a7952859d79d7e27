package main

import (
	"bytes"
	"regexp"
	"strings"
)

// writeYAML writes tree as block-style YAML, as az's yaml output does
// (PyYAML's safe_dump: a list under a key is not indented, empty
// collections are [] and {}), but with the members of objects in their
// order. A string is written plain only when YAML reads it back as that
// same string; otherwise it is double-quoted with JSON's escapes, which
// YAML's double-quoted style shares.
func writeYAML(b *bytes.Buffer, tree any) {
	switch x := tree.(type) {
	case record:
		if len(x) > 0 {
			writeYAMLMap(b, x, "")
			return
		}
	case []any:
		if len(x) > 0 {
			writeYAMLList(b, x, "")
			return
		}
	}
	b.WriteString(yamlScalar(tree))
	b.WriteByte('\n')
}

// writeYAMLMap writes the members of a non-empty object, each line at
// indent; the caller has written the indent of the first line.
func writeYAMLMap(b *bytes.Buffer, r record, indent string) {
	for i, f := range r {
		if i > 0 {
			b.WriteString(indent)
		}
		b.WriteString(yamlString(f.key))
		b.WriteByte(':')
		switch x := f.val.(type) {
		case record:
			if len(x) > 0 {
				b.WriteString("\n" + indent + "  ")
				writeYAMLMap(b, x, indent+"  ")
				continue
			}
		case []any:
			if len(x) > 0 {
				b.WriteString("\n" + indent)
				writeYAMLList(b, x, indent)
				continue
			}
		}
		b.WriteString(" " + yamlScalar(f.val) + "\n")
	}
}

// writeYAMLList writes the elements of a non-empty list, each "- " at
// indent; the caller has written the indent of the first line.
func writeYAMLList(b *bytes.Buffer, l []any, indent string) {
	for i, e := range l {
		if i > 0 {
			b.WriteString(indent)
		}
		b.WriteString("- ")
		switch x := e.(type) {
		case record:
			if len(x) > 0 {
				writeYAMLMap(b, x, indent+"  ")
				continue
			}
		case []any:
			if len(x) > 0 {
				writeYAMLList(b, x, indent+"  ")
				continue
			}
		}
		b.WriteString(yamlScalar(e) + "\n")
	}
}

// yamlScalar is a scalar (or an empty collection) in YAML.
func yamlScalar(v any) string {
	switch x := v.(type) {
	case nil:
		return "null"
	case string:
		return yamlString(x)
	case record:
		return "{}"
	case []any:
		return "[]"
	}
	return scalarText(v) // bool, json.Number
}

var (
	// yamlPlainRE is what may be written plain: a letter, digit, '/' or
	// '_' first, then no character YAML gives meaning to in a plain scalar
	// (":" only when not followed by a space and never last, "#" only when
	// not after a space).
	yamlPlainRE = regexp.MustCompile(`^[A-Za-z0-9_/][A-Za-z0-9_ ./:@+=,()~$^#?&%-]*$`)
	// yamlNotStringRE is what a YAML 1.1 or 1.2 reader takes for a number,
	// a date or a time: anything starting with a digit or sign and a digit,
	// or a dot and a digit.
	yamlNotStringRE = regexp.MustCompile(`^([-+]?\.?[0-9])`)
)

// yamlKeywords are the plain scalars YAML 1.1 (PyYAML) or 1.2 reads as
// null, booleans or special numbers.
var yamlKeywords = map[string]bool{
	"null": true, "~": true, "true": true, "false": true, "yes": true, "no": true,
	"on": true, "off": true, "y": true, "n": true, ".inf": true, ".nan": true,
}

// yamlString is s as a YAML scalar: plain when that reads back as s,
// double-quoted otherwise.
func yamlString(s string) string {
	if s != "" && yamlPlainRE.MatchString(s) && !yamlNotStringRE.MatchString(s) &&
		!yamlKeywords[strings.ToLower(s)] && !strings.HasSuffix(s, " ") && !strings.HasSuffix(s, ":") &&
		!strings.Contains(s, ": ") && !strings.Contains(s, " #") && !strings.HasPrefix(s, "<<") {
		return s
	}
	return jsonQuote(s) // JSON's escapes are YAML's double-quoted ones
}
