package kvasserttest_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net/url"
	"regexp"
	"strings"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"

	"github.com/kvassert/kvassert/kvasserttest"
)

// A tenant's Conditional Access for workload identities blocks the demo's
// workload app in its home tenant: azidentity gets Entra's AADSTS53003
// answer, until the test clears the refusal.
func ExampleEmulator_SetTenantRefusal() {
	emu, err := kvasserttest.New(nil, nil)
	if err != nil {
		log.Fatal(err)
	}
	defer emu.Close()
	app := emu.Scenario().Apps[1] // the demo's workload app, with a client secret
	if err := emu.SetTenantRefusal(app.ClientID, app.HomeTenant, 53003); err != nil {
		log.Fatal(err)
	}
	cred, err := emu.ClientSecretCredential(app.ClientID)
	if err != nil {
		log.Fatal(err)
	}
	scope := policy.TokenRequestOptions{Scopes: []string{"https://vault.azure.net/.default"}}
	_, err = cred.GetToken(context.Background(), scope)
	var afe *azidentity.AuthenticationFailedError
	if errors.As(err, &afe) {
		fmt.Println("refused:", regexp.MustCompile(`AADSTS\d+`).FindString(err.Error()), "HTTP", afe.RawResponse.StatusCode)
	}
	_ = emu.SetTenantRefusal(app.ClientID, app.HomeTenant, 0)
	_, err = cred.GetToken(context.Background(), scope)
	fmt.Println("after clearing:", err == nil)
	// Output:
	// refused: AADSTS53003 HTTP 400
	// after clearing: true
}

// The emulated Entra serves the v2 admin-consent page of a tenant: an
// administrator (a browser, or a test posting the page's form) clicks
// Accept or Cancel. A redirect URI the app has not registered gets Entra's
// error page instead of a redirect.
func ExampleEmulator_adminConsent() {
	emu, err := kvasserttest.New(nil, nil)
	if err != nil {
		log.Fatal(err)
	}
	defer emu.Close()
	app := emu.Scenario().Apps[0] // the demo's multi-tenant app
	page := func(redirectURI string) string {
		q := url.Values{"client_id": {app.ClientID}, "scope": {"https://graph.microsoft.com/.default"},
			"redirect_uri": {redirectURI}, "state": {"opaque"}}
		resp, err := emu.Client().Get("https://login.microsoftonline.com/organizations/v2.0/adminconsent?" + q.Encode())
		if err != nil {
			log.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		if code := regexp.MustCompile(`id="error-code">(AADSTS\d+)`).FindSubmatch(body); code != nil {
			return fmt.Sprint(resp.StatusCode, " ", string(code[1]))
		}
		return fmt.Sprint(resp.StatusCode, " accept button: ", strings.Contains(string(body), `id="accept"`))
	}
	fmt.Println(page("http://localhost:8400/consent/callback")) // registered as http://localhost/consent/callback: any port
	fmt.Println(page("https://elsewhere.example/callback"))
	// Output:
	// 200 accept button: true
	// 400 AADSTS50011
}
