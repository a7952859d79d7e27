package main

import (
	"strings"
	"testing"
)

// TestBadFlagValuesNameTheFlag: a value refused before any request is
// reported with the flag's name and a hint, never the library's parameter
// or field names (Options.Tenants[0], redirectURI, ...).
func TestBadFlagValuesNameTheFlag(t *testing.T) {
	t.Parallel()
	env := newCLIEnv(t)
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"proxy", "--customer-tenant", "bad!"}, `--customer-tenant "bad!" is not a tenant ID or domain`},
		{[]string{"proxy", "--customer-tenant", "contoso.onmicrosoft.com", "--redirect-uri", "notaurl"}, "--redirect-uri: "},
		{[]string{"proxy", "--customer-tenant", "contoso.onmicrosoft.com", "--require-role", "notaurl=x"}, `--require-role "notaurl=x" is not [RESOURCE=]ROLE`},
		{[]string{"token", "--tenant", "contoso.onmicrosoft.com", "--resource", "notaurl"}, `--resource "notaurl" is not a resource URI`},
		{[]string{"token", "--tenant", "contoso.onmicrosoft.com", "--scope", "x/.default"}, `--scope "x/.default" does not start with a resource URI`},
		{[]string{"cert", "audit", "--app-object-id", "notaguid"}, "--app-object-id applies only with --app"},
		{[]string{"tenants", "consent-url", "--redirect-uri", "https://app.example.com/consent", "--tenant", "bad!"}, `--tenant "bad!" is not a tenant ID or domain`},
		{[]string{"tenants", "check", "--customer-tenant", "contoso.onmicrosoft.com", "--redirect-uri", "notaurl"}, "--redirect-uri: "},
	} {
		r := env.run(c.args)
		if r.code != exitUsage {
			t.Errorf("kvassert %s: exit %d, want %d\n%s", strings.Join(c.args, " "), r.code, exitUsage, r.stderr)
			continue
		}
		if !strings.Contains(r.stderr, "error: "+c.want) || !strings.Contains(r.stderr, "\nhint: ") {
			t.Errorf("kvassert %s: stderr %q, want an error starting %q and a hint", strings.Join(c.args, " "), r.stderr, c.want)
		}
		if strings.Contains(r.stderr, "Options.") || strings.Contains(r.stderr, "redirectURI") {
			t.Errorf("kvassert %s names a library field: %q", strings.Join(c.args, " "), r.stderr)
		}
	}
}
