package kvasserttest

import (
	"time"

	"github.com/kvassert/kvassert/internal/emuhook"
	"github.com/kvassert/kvassert/kvasserttest/internal/entra"
	"github.com/kvassert/kvassert/kvasserttest/scenario"
)

// The emulator controls only kvassert's own tests use are not methods of
// Emulator: internal/emuhook.Of(e) returns them.
func init() {
	emuhook.Of = func(e any) emuhook.Controls { return controls{e.(*Emulator)} }
}

// The default propagation delay emuhook documents is entra's (a negative
// constant converted to uint does not compile, so these two lines fail the
// build when they differ).
const (
	_ = uint(entra.DefaultPropagationDelay - emuhook.DefaultGraphPropagationDelay)
	_ = uint(emuhook.DefaultGraphPropagationDelay - entra.DefaultPropagationDelay)
)

// controls implements emuhook.Controls.
type controls struct{ e *Emulator }

func (c controls) InjectGraphFaultAfterCommit(op Op, f Fault) { c.e.graph.SetFaultAfterCommit(op, f) }

func (c controls) ClearGraphFaultsAfterCommit(ops ...Op) { c.e.graph.ClearFaultsAfterCommit(ops...) }

func (c controls) OnGraphAddKey(fn func(KeyCredential)) { c.e.graph.OnAddKey(fn) }

func (c controls) SetGraphPropagationDelay(d time.Duration) { c.e.entra.SetPropagationDelay(d) }

func (c controls) GraphPropagationDelay() time.Duration { return c.e.entra.PropagationDelay() }

func (c controls) SetListPageSize(vaultName string, n int) error {
	v, err := c.e.vault(vaultName)
	if err != nil {
		return err
	}
	v.SetListPageSize(n)
	return nil
}

func (c controls) AddCertificateVersion(vaultName, certName string, spec emuhook.VersionSpec) (string, error) {
	v, err := c.e.vault(vaultName)
	if err != nil {
		return "", err
	}
	return v.AddVersion(certName, spec)
}

func (c controls) CertificateVersions(vaultName, certName string) ([]emuhook.VersionInfo, error) {
	v, err := c.e.vault(vaultName)
	if err != nil {
		return nil, err
	}
	return v.Versions(certName)
}

func (c controls) AppObjectID(clientID string) (string, error) { return c.e.appObjectID(clientID) }

func (c controls) SetServicePrincipalLock(clientID string, isEnabled, allProperties, unlock bool) error {
	if err := c.e.checkApp(clientID); err != nil {
		return err
	}
	var lock *scenario.ServicePrincipalLock
	if !unlock {
		a := allProperties
		lock = &scenario.ServicePrincipalLock{IsEnabled: isEnabled, AllProperties: a, CredentialsWithUsageVerify: a, CredentialsWithUsageSign: a, IdentifierUris: a, TokenEncryptionKeyID: a}
	}
	return c.e.entra.SetServicePrincipalLock(clientID, lock)
}
