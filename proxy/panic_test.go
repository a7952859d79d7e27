package proxy

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"

	"github.com/kvassert/kvassert/kvasserttest"
	"github.com/kvassert/kvassert/kvasserttest/scenario"
)

// panicCredential is a credential with a bug: every call panics.
type panicCredential struct{}

func (panicCredential) GetToken(context.Context, policy.TokenRequestOptions) (azcore.AccessToken, error) {
	panic("credential bug " + marker)
}

// Issue 18 (sibling of defect 2): a credential that panics, whether on the
// request's goroutine (forward) or in the proxy's detached creation of a
// source (kv-key reads the key's public half), costs its request a 500
// problem; the proxy lives and answers the next request.
func TestPanickingCredentialDoesNotKillTheProxy(t *testing.T) {
	t.Parallel()
	env := newEnv(t, func(c *Options, _ *kvasserttest.Emulator) {
		c.KeyVaultCredential = panicCredential{}
		c.ForwardCredential = panicCredential{}
		c.AllowForward = true
	})
	body := map[string]any{
		"clientId": scenario.DemoAppClientID, "tenantId": scenario.DemoContosoTenant, "scopes": []string{graph},
		"keyUri":        "https://" + scenario.DemoVault + ".vault.azure.net/keys/" + scenario.DemoCertificate + "/0123456789abcdef0123456789abcdef",
		"keyThumbprint": strings.Repeat("AB", 20),
	}
	for i := 0; i < 2; i++ {
		p := problemOf(t, env.api("kv-key", body), http.StatusInternalServerError)
		if strings.Contains(p.Detail+p.Title, marker) {
			t.Errorf("the problem carries the panic value: %+v", p)
		}
	}
	vars, err := env.s.AppServiceEnv(env.url, Target{Forward: true})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 2; i++ {
		resp := env.do("GET", "/msi/forward?api-version=2019-08-01&resource="+uniqueResource("panic"), "", nil, "X-IDENTITY-HEADER", envValue(vars, "IDENTITY_HEADER"))
		problemOf(t, resp, http.StatusInternalServerError)
	}
	// Still serving.
	problemOf(t, env.do("GET", "/nope", "", nil), http.StatusNotFound)
	if logs := env.logs.String(); strings.Contains(logs, marker) {
		t.Errorf("the panic value reached the log:\n%s", logs)
	}
}
