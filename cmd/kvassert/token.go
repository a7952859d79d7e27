package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/spf13/cobra"

	"github.com/kvassert/kvassert"
)

// defaultScope is the scope "kvassert token" asks for by default.
const defaultScope = "https://graph.microsoft.com/.default"

// expiresOnLayout is how az account get-access-token writes expiresOn (local time).
const expiresOnLayout = "2006-01-02 15:04:05.000000"

type tokenCmd struct {
	app      appFlags
	cred     credFlags
	cache    tokenCacheFlags
	scope    string
	resource string
}

func newTokenCmd(a *App) *cobra.Command {
	c := &tokenCmd{}
	cmd := &cobra.Command{
		Use:   "token",
		Short: "Get an app-only access token for the app in a tenant",
		Long: `Get an app-only access token (OAuth 2.0 client credentials) for the multi-tenant
app --client-id in --tenant, authenticated with a client assertion that Key Vault
signs (or with a managed identity as federated credential, or, for development,
a local key).

The output has the fields of "az account get-access-token": accessToken,
expiresOn (local time), expires_on (Unix seconds), tenant and tokenType. The
token is the only secret kvassert ever prints, and only here, on stdout.

Key Vault is reached with azidentity's DefaultAzureCredential (AZURE_TENANT_ID,
AZURE_CLIENT_ID, AZURE_CLIENT_SECRET, workload or managed identity, az login).
It needs certificates/get and keys/sign on the vault, never secrets/get.

Flags take defaults from the environment variables named in their help;
precedence is flag > KVASSERT_* > AZURE_*. Once one credential flag is given
on the command line, the credential variables (KVASSERT_VAULT, KVASSERT_CERT,
...) are ignored.`,
		Example: `  # A Graph token in a customer tenant, signed by a Key Vault certificate's key
  kvassert token --tenant contoso.onmicrosoft.com --client-id 6d2f4a8b-1c3e-4f5a-9b7d-2e4f6a8c0b16 \
      --vault https://kvassert-demo.vault.azure.net/ --cert saas-app-auth

  # Only the token, for a shell variable (fields are tab-separated; accessToken is the first)
  TOKEN=$(kvassert token --tenant contoso.onmicrosoft.com -o tsv | cut -f1)

  # A key and the thumbprint registered on the app: needs only keys/sign
  kvassert token --tenant $TENANT --client-id $APP \
      --key-id https://myvault.vault.azure.net/keys/app-auth/0123456789abcdef --thumbprint 52ED9B50...

  # A managed identity as federated credential, Azure Resource Manager scope
  kvassert token --tenant $TENANT --client-id $APP --managed-identity $MI_CLIENT_ID \
      --resource https://management.azure.com`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return c.run(cmd.Context(), a) },
	}
	c.app.register(cmd, "tenant to get the token in: ID or domain (contoso.onmicrosoft.com)")
	c.cred.register(cmd)
	c.cache.register(cmd)
	fs := cmd.Flags()
	fs.StringVar(&c.scope, "scope", defaultScope, "scope of the token; app-only tokens take RESOURCE/.default")
	fs.StringVar(&c.resource, "resource", "", "resource URI instead of --scope, e.g. https://management.azure.com (becomes RESOURCE/.default)")
	bindEnv(cmd, fs, "scope", "KVASSERT_SCOPE")
	exclusive(cmd, conflict{"scope", "resource", "--resource R is the same as --scope R/.default"})
	return cmd
}

func (c *tokenCmd) run(ctx context.Context, a *App) error {
	if err := c.app.checkClientID(a); err != nil {
		return err
	}
	if err := c.app.checkTenant(a); err != nil {
		return err
	}
	scope, err := c.resolveScope(a)
	if err != nil {
		return err
	}
	flush, err := c.cache.checkThenStartOTel(ctx, a)
	if err != nil {
		return err
	}
	defer flush()
	src, err := c.cred.source(ctx, a)
	if err != nil {
		return err
	}
	shared, closeCache, err := c.cache.open(ctx, a)
	if err != nil {
		return err
	}
	defer closeCache()
	cred, err := kvassert.NewCredential(c.app.tenant, c.app.clientID, src, &kvassert.CredentialOptions{
		ClientOptions: a.ClientOptions(),
		Logger:        a.Logger,
		SharedCache:   shared,
	})
	if err != nil {
		return failure("", err)
	}
	tok, err := cred.GetToken(ctx, policy.TokenRequestOptions{Scopes: []string{scope}})
	if err != nil {
		return err
	}
	tenant := c.app.tenant
	if tid, _ := jwtClaims(tok.Token)["tid"].(string); tid != "" {
		tenant = tid
	}
	return a.printRecord(record{
		{"accessToken", tok.Token},
		{"expiresOn", tok.ExpiresOn.Local().Format(expiresOnLayout)},
		{"expires_on", tok.ExpiresOn.Unix()},
		{"tenant", tenant},
		{"tokenType", "Bearer"},
	}, formatJSON)
}

func (c *tokenCmd) resolveScope(a *App) (string, error) {
	scope := c.scope
	if c.resource != "" {
		if hasDefaultSuffix(strings.TrimSuffix(c.resource, "/")) {
			return "", usageError(fmt.Sprintf("%s %q ends in /.default, which --resource adds itself", a.flagName("resource"), truncate(c.resource, 100)),
				"drop /.default (--resource R is the same as --scope R/.default)")
		}
		if !validResource(strings.TrimSuffix(c.resource, "/")) {
			return "", usageError(fmt.Sprintf("%s %q is not a resource URI or application ID", a.flagName("resource"), truncate(c.resource, 100)),
				"use the resource's URI, e.g. https://management.azure.com or api://APP_ID, or its application ID (a GUID)")
		}
		scope = strings.TrimSuffix(c.resource, "/") + "/.default"
	}
	if strings.ContainsAny(scope, " \t\r\n") || !strings.HasSuffix(scope, "/.default") {
		return "", usageError(fmt.Sprintf("%s %q: app-only tokens take one scope ending in /.default", a.flagName("scope"), truncate(scope, 100)),
			"use RESOURCE/.default, e.g. https://graph.microsoft.com/.default (permissions come from the app's admin-consented application permissions)")
	}
	if !validResource(strings.TrimSuffix(scope, "/.default")) {
		return "", usageError(fmt.Sprintf("%s %q does not start with a resource URI or application ID", a.flagName("scope"), truncate(scope, 100)),
			"use RESOURCE/.default, e.g. https://graph.microsoft.com/.default or api://APP_ID/.default")
	}
	return scope, nil
}

// jwtClaims decodes the claims of a JWT without verifying it; nil when s is
// not a JWT (some tokens are opaque).
func jwtClaims(s string) map[string]any {
	parts := strings.Split(s, ".")
	if len(parts) != 3 {
		return nil
	}
	data, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return nil
	}
	var m map[string]any
	if json.Unmarshal(data, &m) != nil {
		return nil
	}
	return m
}

// noArgs refuses positional arguments with a usage error.
func noArgs(cmd *cobra.Command, args []string) error {
	if len(args) > 0 {
		return usageError(fmt.Sprintf("%s takes no arguments, got %q", cmd.CommandPath(), truncate(args[0], 40)),
			fmt.Sprintf("run '%s --help' for its flags", cmd.CommandPath()))
	}
	return nil
}
