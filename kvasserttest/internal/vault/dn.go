package vault

import (
	"crypto/x509/pkix"
	"encoding/asn1"
	"strings"
)

// X.500 names in Key Vault's string form: "CN=app, O=Contoso, S=WA, C=US",
// most specific first (the reverse of the RDN sequence), with "S" for the
// state, as Windows prints them.

var dnAttrs = []struct {
	names []string // first is the one printed
	oid   asn1.ObjectIdentifier
}{
	{[]string{"CN"}, asn1.ObjectIdentifier{2, 5, 4, 3}},
	{[]string{"SERIALNUMBER"}, asn1.ObjectIdentifier{2, 5, 4, 5}},
	{[]string{"C"}, asn1.ObjectIdentifier{2, 5, 4, 6}},
	{[]string{"L"}, asn1.ObjectIdentifier{2, 5, 4, 7}},
	{[]string{"S", "ST"}, asn1.ObjectIdentifier{2, 5, 4, 8}},
	{[]string{"STREET"}, asn1.ObjectIdentifier{2, 5, 4, 9}},
	{[]string{"O"}, asn1.ObjectIdentifier{2, 5, 4, 10}},
	{[]string{"OU"}, asn1.ObjectIdentifier{2, 5, 4, 11}},
	{[]string{"T", "TITLE"}, asn1.ObjectIdentifier{2, 5, 4, 12}},
	{[]string{"SN"}, asn1.ObjectIdentifier{2, 5, 4, 4}},
	{[]string{"G", "GN"}, asn1.ObjectIdentifier{2, 5, 4, 42}},
	{[]string{"DC"}, asn1.ObjectIdentifier{0, 9, 2342, 19200300, 100, 1, 25}},
	{[]string{"E", "EMAIL", "EMAILADDRESS"}, asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 1}},
}

var oidEmail = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 1}

// parseDN parses a subject in Key Vault's string form into the DER of its
// RDN sequence.
func parseDN(s string) ([]byte, *apiError) {
	parts, ok := splitDN(s)
	if !ok {
		return nil, badParameter("The subject '%s' is not a valid X.500 distinguished name.", s)
	}
	var seq pkix.RDNSequence
	for i := len(parts) - 1; i >= 0; i-- {
		key, val, found := strings.Cut(parts[i], "=")
		key = strings.ToUpper(strings.TrimSpace(key))
		val = unquoteDNValue(strings.TrimSpace(val))
		if !found || key == "" || val == "" {
			return nil, badParameter("The subject '%s' is not a valid X.500 distinguished name.", s)
		}
		var oid asn1.ObjectIdentifier
		for _, a := range dnAttrs {
			for _, n := range a.names {
				if n == key {
					oid = a.oid
				}
			}
		}
		if oid == nil {
			return nil, badParameter("The subject '%s' has an unknown attribute '%s'.", s, key)
		}
		var value any = val
		if oid.Equal(oidEmail) {
			value = asn1.RawValue{Class: asn1.ClassUniversal, Tag: asn1.TagIA5String, Bytes: []byte(val)}
		}
		seq = append(seq, pkix.RelativeDistinguishedNameSET{{Type: oid, Value: value}})
	}
	der, err := asn1.Marshal(seq)
	if err != nil {
		return nil, badParameter("The subject '%s' cannot be encoded.", s)
	}
	return der, nil
}

// splitDN splits on commas outside quotes and not escaped.
func splitDN(s string) ([]string, bool) {
	var parts []string
	var cur strings.Builder
	quoted, escaped := false, false
	for _, r := range s {
		switch {
		case escaped:
			cur.WriteRune(r)
			escaped = false
			continue
		case r == '\\':
			escaped = true
		case r == '"':
			quoted = !quoted
		case (r == ',' || r == ';') && !quoted:
			parts = append(parts, cur.String())
			cur.Reset()
			continue
		}
		cur.WriteRune(r)
	}
	if quoted || escaped {
		return nil, false
	}
	parts = append(parts, cur.String())
	if len(parts) == 1 && strings.TrimSpace(parts[0]) == "" {
		return nil, false
	}
	return parts, true
}

func unquoteDNValue(v string) string {
	if len(v) >= 2 && v[0] == '"' && v[len(v)-1] == '"' {
		v = v[1 : len(v)-1]
	}
	var b strings.Builder
	escaped := false
	for _, r := range v {
		if !escaped && r == '\\' {
			escaped = true
			continue
		}
		escaped = false
		b.WriteRune(r)
	}
	return b.String()
}

// formatDN prints the DER of an RDN sequence in Key Vault's string form.
func formatDN(raw []byte) string {
	var seq pkix.RDNSequence
	if _, err := asn1.Unmarshal(raw, &seq); err != nil {
		return ""
	}
	var parts []string
	for i := len(seq) - 1; i >= 0; i-- {
		for _, atv := range seq[i] {
			name := "OID." + atv.Type.String()
			for _, a := range dnAttrs {
				if a.oid.Equal(atv.Type) {
					name = a.names[0]
				}
			}
			val, _ := atv.Value.(string)
			if strings.ContainsAny(val, ",+\";<>=") || strings.TrimSpace(val) != val {
				val = `"` + strings.ReplaceAll(val, `"`, `""`) + `"`
			}
			parts = append(parts, name+"="+val)
		}
	}
	return strings.Join(parts, ", ")
}
