package proxy_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log"
	"log/slog"
	"net/http"
	"strings"

	"github.com/kvassert/kvassert/kvasserttest"
	"github.com/kvassert/kvassert/kvasserttest/scenario"
	"github.com/kvassert/kvassert/proxy"
)

// A proxy in front of Entra ID and Key Vault (emulated here; in real use,
// KeyVaultCredential and ForwardCredential are
// azidentity.NewDefaultAzureCredential and ClientOptions stays zero). It
// prints the environment variables that make an app's
// ManagedIdentityCredential get its tokens, then gets a token from the
// token API as curl would.
func ExampleNew() {
	e, err := kvasserttest.New(scenario.Demo(), nil)
	if err != nil {
		log.Fatal(err)
	}
	defer e.Close()
	vaultCred, err := e.ClientSecretCredential(workloadID)
	if err != nil {
		log.Fatal(err)
	}

	s, err := proxy.New(&proxy.Options{
		Addr:               "127.0.0.1:0", // default 127.0.0.1:5616
		KeyVaultCredential: vaultCred,
		ClientOptions:      e.ClientOptions(),
		Logger:             slog.New(slog.DiscardHandler),
	})
	if err != nil {
		log.Fatal(err)
	}
	ln, err := s.Listen()
	if err != nil {
		log.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go s.Serve(ctx, ln) //nolint:errcheck // returns nil when ctx ends
	base := "http://" + ln.Addr().String()

	// For an app that uses ManagedIdentityCredential (App Service protocol).
	vars, err := s.AppServiceEnv(base, proxy.Target{
		Tenant: scenario.DemoContosoTenant, ClientID: scenario.DemoAppClientID,
		Vault: scenario.DemoVault, Certificate: scenario.DemoCertificate,
	})
	if err != nil {
		log.Fatal(err)
	}
	for _, v := range vars {
		name, value, _ := strings.Cut(v, "=")
		// IDENTITY_HEADER is this identity's own secret, not the API secret.
		fmt.Println(name, strings.HasPrefix(value, base+"/msi/") || len(value) == 43 && value != s.Secret())
	}

	// The token API.
	body := `{"clientId":"` + scenario.DemoAppClientID + `","tenantId":"` + scenario.DemoContosoTenant + `",` +
		`"scopes":["https://graph.microsoft.com/.default"],` +
		`"keyVaultUri":"https://` + scenario.DemoVault + `.vault.azure.net/","certificateName":"` + scenario.DemoCertificate + `"}`
	req, err := http.NewRequest("POST", base+"/api/token/kv-certificate", strings.NewReader(body))
	if err != nil {
		log.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+s.Secret())
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		log.Fatal(err)
	}
	defer resp.Body.Close()
	var tok struct {
		AccessToken string `json:"access_token"`
		TenantID    string `json:"tenant_id"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&tok); err != nil {
		log.Fatal(err)
	}
	fmt.Println(resp.StatusCode, tok.TenantID, strings.Count(tok.AccessToken, "."))
	// Output:
	// IDENTITY_ENDPOINT true
	// IDENTITY_HEADER true
	// 200 2b6e9d10-7c4a-4f0e-8d21-5a3b4c6d7e82 2
}

// workloadID is the demo scenario's workload identity (scenario.Demo().Apps[1]),
// which may use the demo vault; its secret is the emulator's.
const workloadID = "3c5e7a9b-2d4f-4a6c-8e0a-1b3d5f7a9c27"
