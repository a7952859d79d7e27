package main

import (
	"context"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/kvassert/kvassert/internal/jwtassert"
)

type assertionCmd struct {
	app      appFlags
	cred     credFlags
	audience string
}

func newAssertionCmd(a *App) *cobra.Command {
	c := &assertionCmd{}
	cmd := &cobra.Command{
		Use:   "assertion",
		Short: "Print a signed client assertion (JWT) for the app",
		Long: `Print a client assertion: the signed JWT that authenticates the app at a token
endpoint (client_assertion, with client_assertion_type
urn:ietf:params:oauth:client-assertion-type:jwt-bearer). Its aud is --audience,
or the v2.0 token endpoint of --tenant in the selected cloud.

Use it with tools that take a client assertion but cannot sign with Key Vault
(for example "az login --service-principal --federated-token"). Anyone holding
it can get tokens for the app until it expires (--lifetime): keep it short and
treat it as a secret. Inspect one with "kvassert decode".

The output is the JWT alone (default), or with -o json the JWT with its
audience and expiry.`,
		Example: `  # Sign with the vault certificate's key, for a tenant's token endpoint
  kvassert assertion --client-id $APP --tenant contoso.onmicrosoft.com \
      --vault https://kvassert-demo.vault.azure.net/ --cert saas-app-auth

  # Five-minute RS256 assertion (x5t header) for an ADFS token endpoint
  kvassert assertion --client-id $APP --audience https://adfs.contoso.com/adfs/oauth2/token \
      --alg RS256 --lifetime 5m --vault $VAULT --cert app-auth

  # Check what was signed
  kvassert assertion --tenant $TENANT | kvassert decode --vault $VAULT --cert app-auth -`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return c.run(cmd.Context(), cmd, a) },
	}
	c.app.register(cmd, "tenant whose token endpoint is the audience (instead of --audience)")
	c.cred.register(cmd)
	cmd.Flags().StringVar(&c.audience, "audience", "", "aud claim: the token endpoint the assertion will be sent to")
	bindEnv(cmd, cmd.Flags(), "audience", "KVASSERT_AUDIENCE")
	exclusive(cmd, conflict{"audience", "tenant", "--tenant T means --audience https://login.microsoftonline.com/T/oauth2/v2.0/token"})
	return cmd
}

func (c *assertionCmd) run(ctx context.Context, cmd *cobra.Command, a *App) error {
	if err := c.app.checkClientID(a); err != nil {
		return err
	}
	aud, err := c.resolveAudience(cmd, a)
	if err != nil {
		return err
	}
	src, err := c.cred.source(ctx, a)
	if err != nil {
		return err
	}
	jwt, err := src.Assertion(ctx, c.app.clientID, aud)
	if err != nil {
		return failure("signing the assertion", err)
	}
	if !a.outputGiven() && a.query == nil {
		// The bare assertion, for $(kvassert assertion ...); KVASSERT_OUTPUT
		// does not change that.
		_, err = fmt.Fprintln(a.Stdout, jwt)
		return err
	}
	r := record{{"assertion", jwt}, {"audience", aud}, {"clientId", c.app.clientID}}
	if t, perr := jwtassert.Parse(jwt); perr == nil && t.Claims.Exp != 0 {
		exp := time.Unix(t.Claims.Exp, 0)
		r = append(r, field{"expiresOn", exp.Local().Format(expiresOnLayout)}, field{"expires_on", t.Claims.Exp})
	}
	return a.emit(r, formatJSON)
}

// resolveAudience is --audience, or the token endpoint of --tenant.
func (c *assertionCmd) resolveAudience(cmd *cobra.Command, a *App) (string, error) {
	explicit := func(name string) bool { return cmd.Flags().Changed(name) && !a.fromEnv(name) }
	if explicit("audience") && explicit("tenant") {
		return "", usageError("give either --audience or --tenant, not both", "--tenant T means --audience https://login.microsoftonline.com/T/oauth2/v2.0/token")
	}
	if c.audience != "" && !explicit("tenant") {
		u, err := url.Parse(c.audience)
		if err != nil || u.Scheme != "https" || u.Host == "" || u.User != nil || u.Fragment != "" {
			return "", usageError(fmt.Sprintf("%s %q is not an https URL", a.flagName("audience"), truncate(c.audience, 100)),
				"use the token endpoint, e.g. https://login.microsoftonline.com/TENANT/oauth2/v2.0/token")
		}
		return c.audience, nil
	}
	if c.app.tenant == "" {
		return "", usageError("give --tenant or --audience", "the assertion's aud is the token endpoint it will be sent to")
	}
	if err := c.app.checkTenant(a); err != nil {
		return "", err
	}
	host := a.Cloud().ActiveDirectoryAuthorityHost
	if !strings.HasSuffix(host, "/") {
		host += "/"
	}
	return host + c.app.tenant + "/oauth2/v2.0/token", nil
}
