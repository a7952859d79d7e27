package kvasserttest

import (
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log"
	"strings"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/cloud"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"

	"github.com/kvassert/kvassert/kvasserttest/internal/emu"
	"github.com/kvassert/kvassert/kvasserttest/internal/vault"
)

// Op names an emulated operation for fault injection and counters.
type Op = emu.Op

// Fault describes an injected failure: latency, an error status (with or
// without Retry-After), a dropped connection; for the next Times requests or
// until cleared.
type Fault = emu.Fault

// RateLimit is a sliding-window request limit.
type RateLimit = emu.RateLimit

// Operations that can be counted and faulted.
const (
	OpChallenge          = emu.OpChallenge
	OpKeyCreate          = emu.OpKeyCreate
	OpKeyImport          = emu.OpKeyImport
	OpKeyGet             = emu.OpKeyGet
	OpKeyList            = emu.OpKeyList
	OpKeySign            = emu.OpKeySign
	OpKeyVerify          = emu.OpKeyVerify
	OpKeyUpdate          = emu.OpKeyUpdate
	OpKeyWrap            = emu.OpKeyWrap
	OpKeyUnwrap          = emu.OpKeyUnwrap
	OpCertificateCreate  = emu.OpCertificateCreate
	OpCertificatePending = emu.OpCertificatePending
	OpCertificateGet     = emu.OpCertificateGet
	OpCertificateList    = emu.OpCertificateList
	OpCertificateImport  = emu.OpCertificateImport
	OpCertificatePolicy  = emu.OpCertificatePolicy
	OpCertificateUpdate  = emu.OpCertificateUpdate
	OpCertificateDelete  = emu.OpCertificateDelete
	OpCertificateMerge   = emu.OpCertificateMerge
	OpCertificateDeleted = emu.OpCertificateDeleted
	OpSecretGet          = emu.OpSecretGet
	OpDiscovery          = emu.OpDiscovery
	OpJWKS               = emu.OpJWKS
	OpInstance           = emu.OpInstance
	OpToken              = emu.OpToken
	OpManagedIdentity    = emu.OpManagedIdentity
)

// InjectFault arms a fault for every request of op (across all vaults),
// replacing the previous one for op.
func (e *Emulator) InjectFault(op Op, f Fault) { e.faults.Set(op, f) }

// ClearFaults disarms the faults of the given operations, or all of them.
func (e *Emulator) ClearFaults(ops ...Op) { e.faults.Clear(ops...) }

// Count is the number of requests for op received so far (faulted ones too).
func (e *Emulator) Count(op Op) int64 { return e.faults.Count(op) }

// Counts is a snapshot of every non-zero counter.
func (e *Emulator) Counts() map[Op]int64 { return e.faults.Counts() }

// ResetCounts zeroes every counter.
func (e *Emulator) ResetCounts() { e.faults.ResetCounts() }

// SetClock makes the emulator's token service and token validation use now
// instead of time.Now (nil restores it): for expiry and clock-skew tests.
func (e *Emulator) SetClock(now func() time.Time) { e.auth.SetClock(now) }

// SetSignLimit simulates a vault's sign rate limit (e.g. 4,000 per 10 s); a
// zero limit removes it. Over the limit the vault answers 429 Throttled
// without Retry-After, as the real service does.
func (e *Emulator) SetSignLimit(vaultName string, limit RateLimit) error {
	v, err := e.vault(vaultName)
	if err != nil {
		return err
	}
	v.SetSignLimit(limit)
	return nil
}

// Grant gives a principal (client ID or object ID) permissions on a vault,
// e.g. "keys/sign".
func (e *Emulator) Grant(vaultName, principal string, permissions ...string) error {
	v, err := e.vault(vaultName)
	if err != nil {
		return err
	}
	v.Grant(principal, permissions...)
	return nil
}

// Revoke takes permissions from a principal on a vault; with none, all.
func (e *Emulator) Revoke(vaultName, principal string, permissions ...string) error {
	v, err := e.vault(vaultName)
	if err != nil {
		return err
	}
	v.Revoke(principal, permissions...)
	return nil
}

// CertificateDER returns the DER of the current version of a vault certificate.
func (e *Emulator) CertificateDER(vaultName, certName string) ([]byte, error) {
	v, err := e.vault(vaultName)
	if err != nil {
		return nil, err
	}
	return v.CertificateDER(certName)
}

// Certificate returns the current version of a vault certificate.
func (e *Emulator) Certificate(vaultName, certName string) (*x509.Certificate, error) {
	der, err := e.CertificateDER(vaultName, certName)
	if err != nil {
		return nil, err
	}
	return x509.ParseCertificate(der)
}

// RegisterCertificate adds a certificate credential to an app registration
// (as uploading it in the portal does).
func (e *Emulator) RegisterCertificate(clientID string, cert *x509.Certificate) error {
	return e.entra.RegisterCertificate(clientID, cert)
}

// RemoveCertificate removes a certificate credential from an app.
func (e *Emulator) RemoveCertificate(clientID string, cert *x509.Certificate) error {
	return e.entra.RemoveCertificate(clientID, cert)
}

// RevokeCertificate marks an app's certificate credential as revoked.
func (e *Emulator) RevokeCertificate(clientID string, cert *x509.Certificate) error {
	return e.entra.RevokeCertificate(clientID, cert)
}

// SetConsent adds or removes the app's service principal in a tenant.
func (e *Emulator) SetConsent(clientID, tenant string, consented bool) error {
	return e.entra.SetConsent(clientID, tenant, consented)
}

// Cloud is the cloud configuration that points azidentity at the emulator's
// login host (the public cloud's; traffic reaches the emulator through Client).
func (e *Emulator) Cloud() cloud.Configuration {
	c := cloud.AzurePublic
	c.ActiveDirectoryAuthorityHost = e.AuthorityHost()
	return c
}

// ClientOptions returns azcore client options that send traffic to the
// emulator: for azkeys, azcertificates, azsecrets and azidentity clients.
func (e *Emulator) ClientOptions() policy.ClientOptions {
	return policy.ClientOptions{Cloud: e.Cloud(), Transport: e.client}
}

// ClientSecretCredential returns an azidentity ClientSecretCredential for a
// scenario app that has a client secret, in its home tenant, talking to the
// emulator. Use it as the identity that calls the vaults.
func (e *Emulator) ClientSecretCredential(clientID string) (azcore.TokenCredential, error) {
	for _, a := range e.scenario.Apps {
		if !strings.EqualFold(a.ClientID, clientID) {
			continue
		}
		if len(a.Secrets) == 0 {
			return nil, fmt.Errorf("kvasserttest: app %s has no client secret in the scenario", clientID)
		}
		return azidentity.NewClientSecretCredential(a.HomeTenant, a.ClientID, a.Secrets[0], &azidentity.ClientSecretCredentialOptions{
			ClientOptions:            e.ClientOptions(),
			DisableInstanceDiscovery: true,
		})
	}
	return nil, errors.New("kvasserttest: no app " + clientID + " in the scenario")
}

func discardLogger() *log.Logger { return log.New(io.Discard, "", 0) }

// CertificateVersionSpec shapes a version AddCertificateVersion publishes:
// a validity window (e.g. starting in the future), an EC key, disabled,
// exportable, tags. Zero values take the certificate's policy.
type CertificateVersionSpec = vault.VersionSpec

// CertificateVersionInfo is the vault's ground truth about one version of a
// certificate: its certificate, enabled attribute, whether its key was
// published exportable or came from an import, its key type and tags.
type CertificateVersionInfo = vault.VersionInfo

// AddCertificateVersion publishes a new latest version of an existing vault
// certificate with a key generated in the vault, shaped by spec, without
// changing the certificate's policy (a test hook: the service makes such
// versions by merging a CA-signed certificate, or with another policy). It
// returns the version ID.
func (e *Emulator) AddCertificateVersion(vaultName, certName string, spec CertificateVersionSpec) (string, error) {
	v, err := e.vault(vaultName)
	if err != nil {
		return "", err
	}
	return v.AddVersion(certName, spec)
}

// CertificateVersions returns every version of a vault certificate, oldest
// first, as the vault holds it (for test oracles; no request is counted).
func (e *Emulator) CertificateVersions(vaultName, certName string) ([]CertificateVersionInfo, error) {
	v, err := e.vault(vaultName)
	if err != nil {
		return nil, err
	}
	return v.Versions(certName)
}
