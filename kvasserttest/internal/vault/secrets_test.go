package vault

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
)

// secretClient reads a vault's secrets over its REST API (GET
// /secrets/{name}/[{version}] with a bearer token), as azsecrets does, so
// that the module does not require azsecrets for these reads.
type secretClient struct {
	url  string // vault URL
	cred azcore.TokenCredential
	http policy.Transporter
}

// testSecret holds the fields of a secret the tests check.
type testSecret struct {
	Value       *string `json:"value"`
	ContentType *string `json:"contentType"`
	KID         *string `json:"kid"`
	Managed     *bool   `json:"managed"`
}

// GetSecret reads a version of a secret ("" for the latest).
func (c secretClient) GetSecret(ctx context.Context, name, version string, _ any) (testSecret, error) {
	tok, err := c.cred.GetToken(ctx, policy.TokenRequestOptions{Scopes: []string{"https://vault.azure.net/.default"}})
	if err != nil {
		return testSecret{}, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimSuffix(c.url, "/")+"/secrets/"+name+"/"+version+"?api-version=7.5", nil)
	if err != nil {
		return testSecret{}, err
	}
	req.Header.Set("Authorization", "Bearer "+tok.Token)
	resp, err := c.http.Do(req)
	if err != nil {
		return testSecret{}, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return testSecret{}, fmt.Errorf("GET secret %s: status %d", name, resp.StatusCode)
	}
	var b testSecret
	return b, json.NewDecoder(resp.Body).Decode(&b)
}
