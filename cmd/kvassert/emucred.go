package main

import (
	"net/url"
	"strings"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"

	"github.com/kvassert/kvassert/internal/entraid"
)

// The emulator's own identity, as "kvassert emulate" prints it. With
// KVASSERT_EMULATOR set, kvassert reaches the emulator's vaults with this
// identity only: never with DefaultAzureCredential, whose chain would hand
// the emulator (or whatever listens at that address) a real credential of
// the developer: an 'az login' token, an AZURE_CLIENT_SECRET, a workload
// identity's federated token.
const (
	envEmulatorTenant = "KVASSERT_EMULATOR_TENANT_ID"
	envEmulatorClient = "KVASSERT_EMULATOR_CLIENT_ID"
	envEmulatorSecret = "KVASSERT_EMULATOR_CLIENT_SECRET"
)

// emulatorCredential is the Key Vault credential under KVASSERT_EMULATOR:
// the emulator's workload identity (KVASSERT_EMULATOR_TENANT_ID,
// KVASSERT_EMULATOR_CLIENT_ID, KVASSERT_EMULATOR_CLIENT_SECRET), or, without
// a secret, the emulator's own managed identity endpoint (IDENTITY_ENDPOINT
// on the emulator's address, as "kvassert emulate" prints it;
// KVASSERT_EMULATOR_CLIENT_ID picks the identity). Both talk to the emulator
// only, through ClientOptions. Anything else is refused.
func (a *App) emulatorCredential() (azcore.TokenCredential, error) {
	tenant := strings.TrimSpace(a.Getenv(envEmulatorTenant))
	client := strings.TrimSpace(a.Getenv(envEmulatorClient))
	secret := a.Getenv(envEmulatorSecret)
	hint := "set " + envEmulatorTenant + ", " + envEmulatorClient + " and " + envEmulatorSecret + " as 'kvassert emulate' prints them " +
		"(your az login and AZURE_* credentials are never sent to an emulator)"
	if secret != "" {
		a.redactor.AddSecret(secret)
		if !entraid.ValidTenantID(tenant) || !entraid.ValidClientID(client) {
			return nil, usageError(envEmulatorSecret+" is set but "+envEmulatorTenant+" or "+envEmulatorClient+" is missing or invalid", hint)
		}
		c, err := azidentity.NewClientSecretCredential(tenant, client, secret, &azidentity.ClientSecretCredentialOptions{
			ClientOptions: a.ClientOptions(), DisableInstanceDiscovery: true,
		})
		if err != nil {
			return nil, &exitError{code: exitUsage, msg: "the emulator's identity (" + envEmulatorClient + ")", err: err, hint: hint}
		}
		return c, nil
	}
	if a.emulatorIdentityEndpoint() {
		o := &azidentity.ManagedIdentityCredentialOptions{ClientOptions: a.ClientOptions()}
		if client != "" {
			if !entraid.ValidClientID(client) {
				return nil, usageError(envEmulatorClient+" is not a client ID (GUID)", hint)
			}
			o.ID = azidentity.ClientID(client)
		}
		c, err := azidentity.NewManagedIdentityCredential(o)
		if err != nil {
			return nil, &exitError{code: exitUsage, msg: "the emulator's managed identity (IDENTITY_ENDPOINT)", err: err, hint: hint}
		}
		return c, nil
	}
	return nil, usageError("KVASSERT_EMULATOR is set but not the emulator's identity to reach its vaults", hint)
}

// emulatorIdentityEndpoint reports whether the managed identity endpoint of
// the environment is the emulator's own: IDENTITY_ENDPOINT on the
// emulator's address, and no MSI_ENDPOINT elsewhere.
func (a *App) emulatorIdentityEndpoint() bool {
	if a.emu == nil {
		return false
	}
	if v := strings.TrimSpace(a.Getenv("MSI_ENDPOINT")); v != "" && !a.atEmulator(v) {
		return false
	}
	return a.atEmulator(strings.TrimSpace(a.Getenv("IDENTITY_ENDPOINT")))
}

// atEmulator reports whether raw is an https URL on the emulator's address.
func (a *App) atEmulator(raw string) bool {
	u, err := url.Parse(raw)
	return err == nil && u.Scheme == "https" && strings.EqualFold(u.Host, a.emu.addr) && u.User == nil
}
