package tenants_test

import (
	"net/url"
	"strings"
	"testing"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/cloud"

	"github.com/kvassert/kvassert/tenants"
)

func TestConsentURL(t *testing.T) {
	const app = "6D2F4A8B-1C3E-4F5A-9B7D-2E4F6A8C0B16"
	for _, tc := range []struct {
		name, redirect, state string
		opts                  *tenants.ConsentURLOptions
		wantPrefix, wantScope string
	}{
		{"defaults", "https://app.example.com/consent", "s1", nil,
			"https://login.microsoftonline.com/organizations/v2.0/adminconsent?", "https://graph.microsoft.com/.default"},
		{"tenant", "https://app.example.com/consent", "s1", &tenants.ConsentURLOptions{Tenant: "Contoso.onmicrosoft.com"},
			"https://login.microsoftonline.com/contoso.onmicrosoft.com/v2.0/adminconsent?", "https://graph.microsoft.com/.default"},
		{"us government", "https://app.example.com/consent", "", &tenants.ConsentURLOptions{Cloud: cloud.AzureGovernment},
			"https://login.microsoftonline.us/organizations/v2.0/adminconsent?", "https://graph.microsoft.us/.default"},
		{"china, own scope", "http://localhost:8080/cb", "s", &tenants.ConsentURLOptions{Cloud: cloud.AzureChina, Scope: "https://microsoftgraph.chinacloudapi.cn/.default https://x.example/.default"},
			"https://login.chinacloudapi.cn/organizations/v2.0/adminconsent?", "https://microsoftgraph.chinacloudapi.cn/.default https://x.example/.default"},
		{"loopback ip", "http://127.0.0.1:1234/cb", "s", nil, "https://login.microsoftonline.com/organizations/", "https://graph.microsoft.com/.default"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			u, err := tenants.ConsentURL(app, tc.redirect, tc.state, tc.opts)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.HasPrefix(u, tc.wantPrefix) {
				t.Fatalf("%s does not start with %s", u, tc.wantPrefix)
			}
			p, _ := url.Parse(u)
			q := p.Query()
			if q.Get("client_id") != strings.ToLower(app) || q.Get("redirect_uri") != tc.redirect || q.Get("scope") != tc.wantScope || q.Get("state") != tc.state {
				t.Fatalf("query %v", q)
			}
			if _, has := q["state"]; has != (tc.state != "") {
				t.Fatalf("state present = %v", has)
			}
		})
	}
}

// TestInputErrorTable: every bad input of the package's exported functions
// is a *kvassert.InputError naming the parameter, quoting no secret.
func TestInputErrorTable(t *testing.T) {
	const app = "6d2f4a8b-1c3e-4f5a-9b7d-2e4f6a8c0b16"
	const redirect = "https://app.example.com/consent"
	cred := offlineCred(t)
	h, err := tenants.NewHandler(cred, redirect, key, nopConsent, nil)
	if err != nil {
		t.Fatal(err)
	}
	long := strings.Repeat("a", 300)
	rows := []struct {
		name, param string
		call        func() error
	}{
		{"client id", "clientID", func() error { _, err := tenants.ConsentURL(secret, redirect, "", nil); return err }},
		{"empty redirect", "redirectURI", func() error { _, err := tenants.ConsentURL(app, "", "", nil); return err }},
		{"http redirect", "redirectURI", func() error { _, err := tenants.ConsentURL(app, "http://app.example.com/cb", "", nil); return err }},
		{"ftp redirect", "redirectURI", func() error { _, err := tenants.ConsentURL(app, "ftp://app.example.com/cb", "", nil); return err }},
		{"relative redirect", "redirectURI", func() error { _, err := tenants.ConsentURL(app, "/cb", "", nil); return err }},
		{"fragment redirect", "redirectURI", func() error { _, err := tenants.ConsentURL(app, "https://a.example/cb#x", "", nil); return err }},
		{"userinfo redirect", "redirectURI", func() error {
			_, err := tenants.ConsentURL(app, "https://u:"+secret+"@a.example/cb", "", nil)
			return err
		}},
		{"long redirect", "redirectURI", func() error { _, err := tenants.ConsentURL(app, "https://a.example/"+long, "", nil); return err }},
		{"state control", "state", func() error { _, err := tenants.ConsentURL(app, redirect, secret+"\n", nil); return err }},
		{"state long", "state", func() error {
			_, err := tenants.ConsentURL(app, redirect, strings.Repeat(secret, 100), nil)
			return err
		}},
		{"tenant", "Tenant", func() error {
			_, err := tenants.ConsentURL(app, redirect, "", &tenants.ConsentURLOptions{Tenant: "a b"})
			return err
		}},
		{"tenant common", "Tenant", func() error {
			_, err := tenants.ConsentURL(app, redirect, "", &tenants.ConsentURLOptions{Tenant: "common"})
			return err
		}},
		{"tenant consumers", "Tenant", func() error {
			_, err := tenants.ConsentURL(app, redirect, "", &tenants.ConsentURLOptions{Tenant: "consumers"})
			return err
		}},
		{"cloud", "Cloud", func() error {
			_, err := tenants.ConsentURL(app, redirect, "", &tenants.ConsentURLOptions{Cloud: cloud.Configuration{ActiveDirectoryAuthorityHost: "http://login.example/"}})
			return err
		}},
		{"unknown cloud, no scope", "Scope", func() error {
			_, err := tenants.ConsentURL(app, redirect, "", &tenants.ConsentURLOptions{Cloud: cloud.Configuration{ActiveDirectoryAuthorityHost: "https://login.example/"}})
			return err
		}},
		{"scope", "Scope", func() error {
			_, err := tenants.ConsentURL(app, redirect, "", &tenants.ConsentURLOptions{Scope: "User.Read"})
			return err
		}},
		{"handler cred", "cred", func() error { _, err := tenants.NewHandler(nil, redirect, key, nopConsent, nil); return err }},
		{"handler redirect", "redirectURI", func() error {
			_, err := tenants.NewHandler(cred, "http://a.example/", key, nopConsent, nil)
			return err
		}},
		{"handler key", "stateKey", func() error {
			_, err := tenants.NewHandler(cred, redirect, []byte(secret), nopConsent, nil)
			return err
		}},
		{"handler key never filled", "stateKey", func() error {
			_, err := tenants.NewHandler(cred, redirect, make([]byte, 32), nopConsent, nil)
			return err
		}},
		{"handler callback", "onConsent", func() error { _, err := tenants.NewHandler(cred, redirect, key, nil, nil); return err }},
		{"handler ttl", "StateTTL", func() error {
			_, err := tenants.NewHandler(cred, redirect, key, nopConsent, &tenants.HandlerOptions{StateTTL: -1})
			return err
		}},
		{"handler prove", "ProveTimeout", func() error {
			_, err := tenants.NewHandler(cred, redirect, key, nopConsent, &tenants.HandlerOptions{ProveTimeout: 2 * 3600e9})
			return err
		}},
		{"handler roles", "Roles", func() error {
			_, err := tenants.NewHandler(cred, redirect, key, nopConsent, &tenants.HandlerOptions{Want: &tenants.Want{Roles: map[string][]string{"not a uri": nil}}})
			return err
		}},
		{"handler scope", "Scope", func() error {
			_, err := tenants.NewHandler(cred, redirect, key, nopConsent, &tenants.HandlerOptions{Scope: secret})
			return err
		}},
		{"handler consent url", "tenant", func() error { _, err := h.ConsentURL(secret + "/"); return err }},
		{"handler consent url alias", "tenant", func() error { _, err := h.ConsentURL("consumers"); return err }},
		{"check redirect", "redirectURI", func() error {
			_, err := tenants.Check(t.Context(), cred, "contoso.com", &tenants.Want{RedirectURI: "http://app.example.com/"})
			return err
		}},
		{"check cred", "cred", func() error { _, err := tenants.Check(t.Context(), nil, "contoso.com", nil); return err }},
		{"check tenant", "tenant", func() error { _, err := tenants.Check(t.Context(), cred, secret+" x", nil); return err }},
		{"check tenant alias", "tenant", func() error { _, err := tenants.Check(t.Context(), cred, "common", nil); return err }},
		{"check role", "Roles", func() error {
			_, err := tenants.Check(t.Context(), cred, "contoso.com", &tenants.Want{Roles: map[string][]string{"https://graph.microsoft.com": {""}}})
			return err
		}},
		{"checkall cred", "cred", func() error { _, err := tenants.CheckAll(t.Context(), nil, nil, nil, nil); return err }},
		{"checkall tenants", "tenants", func() error {
			_, err := tenants.CheckAll(t.Context(), cred, []string{"contoso.com", "bad tenant"}, nil, nil)
			return err
		}},
		{"checkall concurrency", "Concurrency", func() error {
			_, err := tenants.CheckAll(t.Context(), cred, nil, nil, &tenants.CheckOptions{Concurrency: -1})
			return err
		}},
		{"audit cred", "cred", func() error { _, err := tenants.AuditApp(t.Context(), nil, app, nil, nil, nil); return err }},
		{"audit object id", "appObjectID", func() error { _, err := tenants.AuditApp(t.Context(), cred, secret, nil, nil, nil); return err }},
		{"audit object id = client id", "appObjectID", func() error { _, err := tenants.AuditApp(t.Context(), cred, app, nil, nil, nil); return err }},
		{"audit known", "known", func() error {
			_, err := tenants.AuditApp(t.Context(), cred, "b2d4f6a8-0c1e-4a3b-8d5f-7a9c1e3b5d70", []string{"x y"}, nil, nil)
			return err
		}},
	}
	for _, r := range rows {
		err := r.call()
		var ie *kvassertInputError
		switch {
		case err == nil:
			t.Errorf("%s: no error", r.name)
		case !asInput(err, &ie):
			t.Errorf("%s: %T is not an InputError: %v", r.name, err, err)
		case !strings.Contains(strings.ToLower(ie.Input), strings.ToLower(r.param)):
			t.Errorf("%s: Input %q does not name %q", r.name, ie.Input, r.param)
		case !strings.Contains(strings.ToLower(err.Error()), strings.ToLower(r.param)):
			t.Errorf("%s: message %q does not name %q", r.name, err, r.param)
		case !strings.HasPrefix(err.Error(), "tenants: "):
			t.Errorf("%s: message %q lacks the package", r.name, err)
		}
		if err != nil && strings.Contains(err.Error(), secret) {
			t.Errorf("%s: the error quotes the value: %v", r.name, err)
		}
	}
}
