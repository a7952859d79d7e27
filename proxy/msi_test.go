package proxy

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"

	"github.com/kvassert/kvassert/internal/emuhook"
	"github.com/kvassert/kvassert/kvasserttest"
	"github.com/kvassert/kvassert/kvasserttest/scenario"
)

// MSAL Go caches managed identity tokens process-wide by (identity,
// resource), so each request asks for a resource of its own, also across
// -count runs.
var resourceSeq atomic.Int64

func uniqueResource(name string) string {
	return "api://kvassert-proxy-test-" + name + "-" + strconv.FormatInt(resourceSeq.Add(1), 10)
}

// setManagedIdentityEnv sets the variables azidentity v1.15.0 (through MSAL
// Go's managedidentity.GetSource) reads: IDENTITY_ENDPOINT + IDENTITY_HEADER
// select App Service (IDENTITY_SERVER_THUMBPRINT would make it Service
// Fabric), MSI_ENDPOINT alone selects Cloud Shell (MSI_SECRET would make it
// Azure ML), IMDS_ENDPOINT with IDENTITY_ENDPOINT selects Azure Arc.
func setManagedIdentityEnv(t *testing.T, vars []string) {
	t.Helper()
	for _, k := range []string{"IDENTITY_ENDPOINT", "IDENTITY_HEADER", "IDENTITY_SERVER_THUMBPRINT", "MSI_ENDPOINT", "MSI_SECRET", "IMDS_ENDPOINT"} {
		t.Setenv(k, "")
	}
	for _, kv := range vars {
		k, v, _ := strings.Cut(kv, "=")
		t.Setenv(k, v)
	}
}

func miToken(t *testing.T, env *testEnv, opts *azidentity.ManagedIdentityCredentialOptions, resource string) (azcore.AccessToken, error) {
	t.Helper()
	cred, err := azidentity.NewManagedIdentityCredential(opts)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := cred.GetToken(context.Background(), policy.TokenRequestOptions{Scopes: []string{resource + "/.default"}})
	if err == nil {
		env.sawToken(tok.Token)
	}
	return tok, err
}

func TestManagedIdentityAppServiceKeyVault(t *testing.T) {
	env := newEnv(t)
	vars, err := env.s.AppServiceEnv(env.url, Target{Tenant: scenario.DemoContosoTenant, ClientID: scenario.DemoAppClientID, Vault: scenario.DemoVault, Certificate: scenario.DemoCertificate})
	if err != nil {
		t.Fatal(err)
	}
	setManagedIdentityEnv(t, vars)
	tok, err := miToken(t, env, nil, uniqueResource("appservice-kv"))
	if err != nil {
		t.Fatal(err)
	}
	checkClaims(t, tok, scenario.DemoContosoTenant, scenario.DemoAppClientID)

	// A user-assigned identity selector (client_id) is accepted; the path
	// names the identity.
	tok, err = miToken(t, env, &azidentity.ManagedIdentityCredentialOptions{ID: azidentity.ClientID(emuhook.DemoIdentityClientID)}, uniqueResource("appservice-kv"))
	if err != nil {
		t.Fatal(err)
	}
	checkClaims(t, tok, scenario.DemoContosoTenant, scenario.DemoAppClientID)
	if n := env.e.Count(kvasserttest.OpCertificateGet); n != 1 {
		t.Errorf("certificate read %d times, want 1 (cached)", n)
	}
	if !strings.Contains(env.logs.String(), "route=\"GET /msi/{tenant}/{clientId}/kv/{vault}/{certificate}\" tenant="+scenario.DemoContosoTenant+" client_id="+scenario.DemoAppClientID+" status=200") {
		t.Errorf("no request log line for the managed identity route:\n%s", env.logs.String())
	}
}

func TestManagedIdentityAppServiceFile(t *testing.T) {
	var lc *localCert
	env := newEnv(t, func(c *Options, e *kvasserttest.Emulator) {
		lc = newLocalCert(t, e)
		addFile(c, "app", lc)
	})
	vars, err := env.s.AppServiceEnv(env.url, Target{Tenant: emuhook.DemoFabrikamTenant, ClientID: scenario.DemoAppClientID, File: "app"})
	if err != nil {
		t.Fatal(err)
	}
	setManagedIdentityEnv(t, vars)
	tok, err := miToken(t, env, nil, uniqueResource("appservice-file"))
	if err != nil {
		t.Fatal(err)
	}
	checkClaims(t, tok, emuhook.DemoFabrikamTenant, scenario.DemoAppClientID)
	if n := env.e.Count(kvasserttest.OpKeySign); n != 0 {
		t.Errorf("%d vault signs for a local certificate", n)
	}
}

// allowForward turns forwarding on.
func allowForward(c *Options, _ *kvasserttest.Emulator) { c.AllowForward = true }

func TestManagedIdentityAppServiceForward(t *testing.T) {
	env := newEnv(t, allowForward)
	vars, err := env.s.AppServiceEnv(env.url, Target{Forward: true})
	if err != nil {
		t.Fatal(err)
	}
	setManagedIdentityEnv(t, vars)
	tok, err := miToken(t, env, nil, uniqueResource("appservice-forward"))
	if err != nil {
		t.Fatal(err)
	}
	checkClaims(t, tok, scenario.DemoHomeTenant, emuhook.DemoWorkloadClientID)
}

func TestManagedIdentityCloudShellKeyVault(t *testing.T) {
	env := newEnv(t)
	vars, err := env.s.CloudShellEnv(env.url, Target{Tenant: emuhook.DemoNorthwindTenant, ClientID: scenario.DemoAppClientID, Vault: scenario.DemoVault, Certificate: scenario.DemoCertificate})
	if err != nil {
		t.Fatal(err)
	}
	setManagedIdentityEnv(t, vars)
	tok, err := miToken(t, env, nil, uniqueResource("cloudshell-kv"))
	if err != nil {
		t.Fatal(err)
	}
	checkClaims(t, tok, emuhook.DemoNorthwindTenant, scenario.DemoAppClientID)
}

func TestManagedIdentityCloudShellFileAndForward(t *testing.T) {
	var lc *localCert
	env := newEnv(t, func(c *Options, e *kvasserttest.Emulator) {
		lc = newLocalCert(t, e)
		addFile(c, "app", lc)
		c.AllowForward = true
	})
	vars, err := env.s.CloudShellEnv(env.url, Target{Tenant: scenario.DemoContosoTenant, ClientID: scenario.DemoAppClientID, File: "app"})
	if err != nil {
		t.Fatal(err)
	}
	setManagedIdentityEnv(t, vars)
	tok, err := miToken(t, env, nil, uniqueResource("cloudshell-file"))
	if err != nil {
		t.Fatal(err)
	}
	checkClaims(t, tok, scenario.DemoContosoTenant, scenario.DemoAppClientID)

	vars, err = env.s.CloudShellEnv(env.url, Target{Forward: true})
	if err != nil {
		t.Fatal(err)
	}
	setManagedIdentityEnv(t, vars)
	tok, err = miToken(t, env, nil, uniqueResource("cloudshell-forward"))
	if err != nil {
		t.Fatal(err)
	}
	checkClaims(t, tok, scenario.DemoHomeTenant, emuhook.DemoWorkloadClientID)
}

// The real credential reports the proxy's refusals without retrying them.
func TestManagedIdentityRefusals(t *testing.T) {
	env := newEnv(t)
	vars, err := env.s.AppServiceEnv(env.url, Target{Tenant: emuhook.DemoWingtipTenant, ClientID: scenario.DemoAppClientID, Vault: scenario.DemoVault, Certificate: scenario.DemoCertificate})
	if err != nil {
		t.Fatal(err)
	}
	setManagedIdentityEnv(t, vars)
	_, err = miToken(t, env, nil, uniqueResource("refusal-consent"))
	var afe *azidentity.AuthenticationFailedError
	if !errors.As(err, &afe) || afe.RawResponse == nil || afe.RawResponse.StatusCode != http.StatusBadRequest || !strings.Contains(err.Error(), "700016") {
		t.Fatalf("unconsented tenant: %v", err)
	}

	vars[1] = "IDENTITY_HEADER=" + strings.Repeat("x", 43)
	setManagedIdentityEnv(t, vars)
	_, err = miToken(t, env, nil, uniqueResource("refusal-secret"))
	if !errors.As(err, &afe) || afe.RawResponse == nil || afe.RawResponse.StatusCode != http.StatusUnauthorized {
		t.Fatalf("wrong identity header: %v", err)
	}
}

func TestManagedIdentityAppServiceProtocol(t *testing.T) {
	env := newEnv(t)
	path := "/msi/" + scenario.DemoContosoTenant + "/" + scenario.DemoAppClientID + "/kv/" + scenario.DemoVault + "/" + scenario.DemoCertificate
	good := url.Values{"api-version": {"2019-08-01"}, "resource": {"https://vault.azure.net"}}
	secret := func(tail string) string {
		parts := strings.Split(strings.TrimPrefix(tail, "/msi/"), "/")
		if len(parts) == 5 && parts[2] == "kv" {
			return env.s.identitySecret(appService, identityKey(targetKV, parts[0], parts[1], parts[3], parts[4], ""))
		}
		if len(parts) == 4 && parts[2] == "file" {
			return env.s.identitySecret(appService, identityKey(targetFile, parts[0], parts[1], "", "", parts[3]))
		}
		return ""
	}
	hdr := []string{"X-IDENTITY-HEADER", secret(path)}

	resp := decode[map[string]string](t, env.do("GET", path+"?"+good.Encode(), "", nil, hdr...), http.StatusOK)
	env.sawToken(resp["access_token"])
	if resp["token_type"] != "Bearer" || resp["resource"] != "https://vault.azure.net" || resp["client_id"] != scenario.DemoAppClientID || resp["expires_on"] == "" {
		t.Errorf("response %v", resp)
	}
	if _, ok := resp["expires_in"]; ok {
		t.Errorf("App Service response has expires_in")
	}
	if c := claims(t, resp["access_token"]); c["aud"] != "https://vault.azure.net" {
		t.Errorf("aud %v", c["aud"])
	}

	for _, tc := range []struct {
		name, path, query string
		headers           []string
		status            int
		field             string
	}{
		{"no header", path, good.Encode(), nil, 401, ""},
		{"wrong header", path, good.Encode(), []string{"X-IDENTITY-HEADER", secret(path) + "x"}, 401, ""},
		{"token API secret is not the identity header", path, good.Encode(), []string{"Authorization", "Bearer " + env.s.Secret()}, 401, ""},
		{"token API secret as identity header", path, good.Encode(), []string{"X-IDENTITY-HEADER", env.s.Secret()}, 401, ""},
		{"api-version", path, "api-version=2017-09-01&resource=https://vault.azure.net", hdr, 400, "api-version"},
		{"no resource", path, "api-version=2019-08-01", hdr, 400, "resource"},
		{"resource with space", path, "api-version=2019-08-01&resource=a+b", hdr, 400, "resource"},
		{"tenant", "/msi/common!/" + scenario.DemoAppClientID + "/kv/" + scenario.DemoVault + "/c", good.Encode(), hdr, 400, "tenant"},
		{"client ID", "/msi/" + scenario.DemoContosoTenant + "/not-a-guid/kv/" + scenario.DemoVault + "/c", good.Encode(), hdr, 400, "clientId"},
		{"vault", "/msi/" + scenario.DemoContosoTenant + "/" + scenario.DemoAppClientID + "/kv/x/c", good.Encode(), hdr, 400, "vault"},
		{"certificate", "/msi/" + scenario.DemoContosoTenant + "/" + scenario.DemoAppClientID + "/kv/" + scenario.DemoVault + "/a_b", good.Encode(), hdr, 400, "certificate"},
		{"file", "/msi/" + scenario.DemoContosoTenant + "/" + scenario.DemoAppClientID + "/file/nope", good.Encode(), hdr, 400, "name"},
		{"no such certificate", "/msi/" + scenario.DemoContosoTenant + "/" + scenario.DemoAppClientID + "/kv/" + scenario.DemoVault + "/missing", good.Encode(), hdr, 404, ""},
		{"POST", path, good.Encode(), hdr, 405, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			method := "GET"
			if tc.name == "POST" {
				method = "POST"
			}
			headers := tc.headers
			if len(headers) == 2 && headers[0] == "X-IDENTITY-HEADER" && headers[1] == hdr[1] {
				headers = []string{"X-IDENTITY-HEADER", secret(tc.path)} // each path its own secret
			}
			p := problemOf(t, env.do(method, tc.path+"?"+tc.query, "", nil, headers...), tc.status)
			if tc.field != "" && !hasField(p, tc.field) {
				t.Errorf("problem %+v does not name %s", p, tc.field)
			}
		})
	}
}

func TestManagedIdentityCloudShellProtocol(t *testing.T) {
	env := newEnv(t)
	tail := "/" + scenario.DemoContosoTenant + "/" + scenario.DemoAppClientID + "/kv/" + scenario.DemoVault + "/" + scenario.DemoCertificate
	path := "/cloudshell/" + env.s.identitySecret(cloudShell, identityKey(targetKV, scenario.DemoContosoTenant, scenario.DemoAppClientID, scenario.DemoVault, scenario.DemoCertificate, "")) + tail
	form := "application/x-www-form-urlencoded"
	body := func() *strings.Reader { return strings.NewReader("resource=https%3A%2F%2Fmanagement.azure.com%2F") }

	resp := decode[map[string]string](t, env.do("POST", path, form, body(), "Metadata", "true"), http.StatusOK)
	env.sawToken(resp["access_token"])
	if resp["resource"] != "https://management.azure.com/" || resp["expires_in"] == "" || resp["expires_on"] == "" || resp["token_type"] != "Bearer" {
		t.Errorf("response %v", resp)
	}

	p := problemOf(t, env.do("POST", "/cloudshell/"+strings.Repeat("A", 43)+tail, form, body(), "Metadata", "true"), 401)
	if strings.Contains(p.Detail, env.s.Secret()) {
		t.Error("problem holds the secret")
	}
	problemOf(t, env.do("POST", "/cloudshell/"+tail[1:], form, body(), "Metadata", "true"), 404)
	if p := problemOf(t, env.do("POST", path, form, body()), 400); !hasField(p, "Metadata") {
		t.Errorf("problem %+v does not name Metadata", p)
	}
	problemOf(t, env.do("POST", path, "application/json", strings.NewReader(`{"resource":"x"}`), "Metadata", "true"), 415)
	if p := problemOf(t, env.do("POST", path, form, strings.NewReader("x=y"), "Metadata", "true"), 400); !hasField(p, "resource") {
		t.Errorf("problem %+v does not name resource", p)
	}
	big := strings.NewReader("resource=" + strings.Repeat("a", maxBody))
	problemOf(t, env.do("POST", path, form, big, "Metadata", "true"), 413)
	problemOf(t, env.do("GET", path, "", nil, "Metadata", "true"), 405)
}

func TestManagedIdentityForwardNotConfigured(t *testing.T) {
	env := newEnv(t, func(c *Options, _ *kvasserttest.Emulator) { c.ForwardCredential, c.AllowForward = nil, true })
	vars, err := env.s.AppServiceEnv(env.url, Target{Forward: true})
	if err != nil {
		t.Fatal(err)
	}
	problemOf(t, env.do("GET", "/msi/forward?api-version=2019-08-01&resource=https://vault.azure.net", "", nil, "X-IDENTITY-HEADER", envValue(vars, "IDENTITY_HEADER")), 501)
}
