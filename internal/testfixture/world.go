package testfixture

import (
	"testing"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"

	"github.com/kvassert/kvassert"
	"github.com/kvassert/kvassert/internal/certcache"
	"github.com/kvassert/kvassert/internal/emuhook"
	"github.com/kvassert/kvassert/keyvault"
	"github.com/kvassert/kvassert/kvasserttest"
	"github.com/kvassert/kvassert/kvasserttest/scenario"
)

// WorldOptions says what world NewWorld builds; nil means the demo scenario,
// the demo app's credential over the demo vault certificate, every tenant
// allowed.
type WorldOptions struct {
	// Scenario is the emulated world; nil means scenario.Demo().
	Scenario *scenario.Scenario
	// Emulator are the emulator's options; nil means the defaults.
	Emulator *kvasserttest.Options
	// Before, when set, runs on the new emulator before the source and the
	// credential are built (faults, registrations, renewals).
	Before func(*kvasserttest.Emulator)
	// AllowedTenants are the credential's additionally allowed tenants; nil
	// means every tenant ("*"). An empty, non-nil slice allows none.
	AllowedTenants []string
	// Source, when set, edits the source's options before use.
	Source func(*kvassert.KeyVaultCertificateOptions)
	// Credential, when set, edits the credential's options before use.
	Credential func(*kvassert.CredentialOptions)
}

// World is one test world: the emulators, the workload identity that may
// sign with the vault key, and the demo app's source and credential over
// the demo vault certificate, all wired to the emulator. Tests build every
// other library object from it, so that the wiring (client options given to
// each layer) is written once, here.
type World struct {
	Emu *kvasserttest.Emulator
	// VaultCred is the demo workload identity (a client-secret credential
	// against the emulated Entra ID) that may read and sign in the vault.
	VaultCred azcore.TokenCredential
	Src       *kvassert.KeyVaultCertificateSource
	Cred      *kvassert.Credential
	o         WorldOptions
}

// NewWorld starts an emulator (closed when the test ends) and builds the
// world on it.
func NewWorld(tb testing.TB, o *WorldOptions) *World {
	tb.Helper()
	if o == nil {
		o = &WorldOptions{}
	}
	s := o.Scenario
	if s == nil {
		s = scenario.Demo()
	}
	e := kvasserttest.NewTB(tb, s, o.Emulator)
	if o.Before != nil {
		o.Before(e)
	}
	return WorldOn(tb, e, o)
}

// WorldOn builds the world on an emulator the test already has (o.Scenario,
// o.Emulator and o.Before are not used).
func WorldOn(tb testing.TB, e *kvasserttest.Emulator, o *WorldOptions) *World {
	tb.Helper()
	w := &World{Emu: e, VaultCred: VaultCredential(tb, e)}
	if o != nil {
		w.o = *o
	}
	w.Src = w.NewSource(tb, scenario.DemoCertificate, w.o.Source)
	w.Cred = w.NewCredential(tb, w.Src, w.o.Credential)
	return w
}

// ClientOptions are the azcore client options that reach the emulator.
func (w *World) ClientOptions() policy.ClientOptions { return w.Emu.ClientOptions() }

// VaultURL is the demo vault's URL.
func (w *World) VaultURL() string { return w.Emu.VaultURL(scenario.DemoVault) }

// KeyVault are keyvault signer options that reach the emulator.
func (w *World) KeyVault() *keyvault.SignerOptions { o := KVOptions(w.Emu); return &o }

// NewSource is a Key Vault certificate source over the demo vault's
// certificate name; mod, when set, edits its options.
func (w *World) NewSource(tb testing.TB, name string, mod func(*kvassert.KeyVaultCertificateOptions)) *kvassert.KeyVaultCertificateSource {
	tb.Helper()
	o := &kvassert.KeyVaultCertificateOptions{ClientOptions: w.Emu.ClientOptions()}
	if mod != nil {
		mod(o)
	}
	src, err := kvassert.NewKeyVaultCertificateSource(w.VaultURL(), name, w.VaultCred, o)
	if err != nil {
		tb.Fatal(err)
	}
	return src
}

// NewCertificateCache is a certificate cache over the demo vault's
// certificate name; mod, when set, edits its options.
func (w *World) NewCertificateCache(tb testing.TB, name string, mod func(*certcache.Options)) *certcache.Cache {
	tb.Helper()
	o := &certcache.Options{ClientOptions: w.Emu.ClientOptions()}
	if mod != nil {
		mod(o)
	}
	c, err := certcache.New(w.VaultURL(), name, w.VaultCred, o)
	if err != nil {
		tb.Fatal(err)
	}
	return c
}

// NewCredential is a credential for the demo app in its home tenant over
// src, allowing the world's tenants; mod, when set, edits its options.
func (w *World) NewCredential(tb testing.TB, src kvassert.Source, mod func(*kvassert.CredentialOptions)) *kvassert.Credential {
	tb.Helper()
	allowed := w.o.AllowedTenants
	if allowed == nil {
		allowed = []string{"*"}
	}
	o := &kvassert.CredentialOptions{ClientOptions: w.Emu.ClientOptions(), AdditionallyAllowedTenants: allowed}
	if mod != nil {
		mod(o)
	}
	c, err := kvassert.NewCredential(scenario.DemoHomeTenant, scenario.DemoAppClientID, src, o)
	if err != nil {
		tb.Fatal(err)
	}
	return c
}

// NewCredential is World.NewCredential on an emulator the test already has:
// a credential for the demo app over src, allowing every tenant.
func NewCredential(tb testing.TB, e *kvasserttest.Emulator, src kvassert.Source, mod func(*kvassert.CredentialOptions)) *kvassert.Credential {
	tb.Helper()
	return (&World{Emu: e}).NewCredential(tb, src, mod)
}

// NewSource is World.NewSource on an emulator the test already has: a Key
// Vault certificate source over the demo vault's certificate name.
func NewSource(tb testing.TB, e *kvasserttest.Emulator, name string, mod func(*kvassert.KeyVaultCertificateOptions)) *kvassert.KeyVaultCertificateSource {
	tb.Helper()
	return (&World{Emu: e, VaultCred: VaultCredential(tb, e)}).NewSource(tb, name, mod)
}

// WithHSM is the demo scenario plus a Managed HSM named name holding keys,
// in which the demo workload identity may sign and read keys (a vault of a
// test's own, so that its throttling gate holds no other test back).
func WithHSM(name string, keys ...scenario.VaultKey) *scenario.Scenario {
	s := scenario.Demo()
	s.Vaults = append(s.Vaults, scenario.Vault{Name: name, Tenant: scenario.DemoHomeTenant, ManagedHSM: true, Keys: keys,
		Access: []scenario.Access{{Principal: emuhook.DemoWorkloadClientID, Permissions: []string{"keys/sign", "keys/get"}}}})
	return s
}
