package main

import (
	"encoding/json"
	"strconv"
	"strings"
	"testing"

	"github.com/kvassert/kvassert/kvasserttest/scenario"
)

// TestQuery: --query takes a JMESPath expression as az does, through the
// built binary: the az idiom, a multi-select, numbers, JSON and table
// output, and the refusals.
func TestQuery(t *testing.T) {
	t.Parallel()
	env := newCLIEnv(t)
	contoso := []string{"token", "--tenant", "contoso.onmicrosoft.com"}

	// az account get-access-token --query accessToken -o tsv
	r := env.run(append(contoso, "--query", "accessToken", "-o", "tsv"))
	wantOK(t, r)
	tok := strings.TrimSuffix(r.stdout, "\n")
	if strings.ContainsAny(tok, "\t\n\" ") || jwtClaims(tok)["tid"] != scenario.DemoContosoTenant {
		t.Errorf("--query accessToken -o tsv = %q, want the bare token", r.stdout)
	}

	// A multi-select list keeps its order; a number prints as an integer.
	r = env.run(append(contoso, "--query", "[tokenType, expires_on, tenant]", "-o", "tsv"))
	wantOK(t, r)
	f := strings.Split(strings.TrimSuffix(r.stdout, "\n"), "\n")
	if len(f) != 3 || f[0] != "Bearer" || f[2] != scenario.DemoContosoTenant {
		t.Errorf("multi-select tsv = %q", r.stdout)
	} else if _, err := strconv.ParseInt(f[1], 10, 64); err != nil {
		t.Errorf("expires_on %q is not an integer", f[1])
	}

	// The token's default output is JSON: the result as JSON.
	r = env.run(append(contoso, "--query", "{type: tokenType, tenant: tenant}"))
	wantOK(t, r)
	var obj map[string]string
	if err := json.Unmarshal([]byte(r.stdout), &obj); err != nil || obj["type"] != "Bearer" || obj["tenant"] != scenario.DemoContosoTenant {
		t.Errorf("multi-select hash = %q (%v)", r.stdout, err)
	}

	// A table command: the selected field alone.
	r = env.run([]string{"cert", "show", "--query", "name", "-o", "tsv"})
	wantOK(t, r)
	if r.stdout != scenario.DemoCertificate+"\n" {
		t.Errorf("cert show --query name -o tsv = %q", r.stdout)
	}

	// A missing field is null: nothing printed, as az does.
	r = env.run(append(contoso, "--query", "nosuchfield", "-o", "tsv"))
	wantOK(t, r)
	if r.stdout != "" {
		t.Errorf("missing field printed %q", r.stdout)
	}

	wantError(t, env.run(append(contoso, "--query", "[accessToken")), exitUsage, "is not a JMESPath expression", "jmespath.org")
	wantError(t, env.run(append(contoso, "--query", "abs(accessToken)")), exitUsage, "cannot be evaluated", "")
	wantError(t, runBin(t, nil, "", []string{"emulate", "--query", "x"}), exitUsage, "--query does not apply", "token")
}
