package kvassert

import (
	"encoding/base64"
	"fmt"
	"testing"
)

// Only a GUID tid of a JWT acquired for a domain teaches an alias; the
// claims are the answer's, unverified, so anything else is ignored.
func TestTokenTenantAcceptsOnlyAGUIDTid(t *testing.T) {
	const guid = "2b6e9d10-7c4a-4f0e-8d21-5a3b4c6d7e82"
	enc := base64.RawURLEncoding.EncodeToString
	jwt := func(claims string) string {
		return enc([]byte(`{"alg":"RS256"}`)) + "." + enc([]byte(claims)) + "." + enc([]byte("sig"))
	}
	for _, tc := range []struct {
		tenant, token, want string
	}{
		{"contoso.com", jwt(`{"tid":"` + guid + `"}`), guid},
		{"contoso.com", jwt(`{"tid":"2B6E9D10-7C4A-4F0E-8D21-5A3B4C6D7E82"}`), guid}, // lower-cased
		{guid, jwt(`{"tid":"0b6e9d10-7c4a-4f0e-8d21-5a3b4c6d7e82"}`), ""},            // a GUID is not a domain
		{"contoso.com", jwt(`{"tid":"fabrikam.com"}`), ""},
		{"contoso.com", jwt(`{"tid":"common"}`), ""},
		{"contoso.com", jwt(`{"tid":"2b6e9d10-7c4a-4f0e-8d21-5a3b4c6d7e8z"}`), ""},
		{"contoso.com", jwt(`{"tid":["` + guid + `"]}`), ""},
		{"contoso.com", jwt(`{}`), ""},
		{"contoso.com", "opaque-token", ""},
		{"contoso.com", "", ""},
	} {
		if got := tokenTenant(tc.tenant, tc.token); got != tc.want {
			t.Errorf("tokenTenant(%s, %.40q) = %q, want %q", tc.tenant, tc.token, got, tc.want)
		}
	}
}

// The aliases are bounded: a domain per call (AdditionallyAllowedTenants
// "*") never grows them past maxAliases; a domain that moves to another
// tenant leaves the first one's names.
func TestAliasesAreBounded(t *testing.T) {
	var n negativeCache
	const g1, g2 = "2b6e9d10-7c4a-4f0e-8d21-5a3b4c6d7e82", "0b6e9d10-7c4a-4f0e-8d21-5a3b4c6d7e82"
	for i := range maxAliases + 100 {
		n.learn(fmt.Sprintf("d%d.example", i), fmt.Sprintf("%08x-0000-4000-8000-000000000000", i%2000))
	}
	if len(n.alias) != maxAliases {
		t.Fatalf("%d aliases, want %d", len(n.alias), maxAliases)
	}
	total := 0
	for _, ds := range n.domains {
		total += len(ds)
	}
	if total != maxAliases {
		t.Fatalf("%d domains by GUID, want %d", total, maxAliases)
	}
	n = negativeCache{}
	for i := range maxDomains + 10 {
		n.learn(fmt.Sprintf("d%d.example", i), g1)
	}
	if len(n.domains[g1]) != maxDomains || len(n.alias) != maxDomains {
		t.Fatalf("%d domains of one GUID (%d aliases), want %d", len(n.domains[g1]), len(n.alias), maxDomains)
	}
	n = negativeCache{}
	n.learn("contoso.com", g1)
	n.learn("contoso.onmicrosoft.com", g1)
	if got := n.names(g1); len(got) != 3 {
		t.Fatalf("names of the GUID: %v", got)
	}
	if got := n.names("contoso.com"); len(got) != 3 || got[0] != "contoso.com" || got[1] != g1 {
		t.Fatalf("names of the domain: %v", got)
	}
	n.learn("contoso.com", g2) // moved to another tenant
	if got := n.names(g1); len(got) != 2 {
		t.Fatalf("names of the first GUID after the move: %v", got)
	}
	if got := n.names("contoso.com"); len(got) != 2 || got[1] != g2 {
		t.Fatalf("names of the moved domain: %v", got)
	}
	if got := n.names("unknown.example"); len(got) != 1 {
		t.Fatalf("names of an unknown domain: %v", got)
	}
}
