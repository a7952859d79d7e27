package kvasserttest

import (
	"crypto/x509"
	"fmt"
	"io"
	"log"
	"slices"
	"strings"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/cloud"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"

	"github.com/kvassert/kvassert/internal/inputerr"
	"github.com/kvassert/kvassert/internal/textutil"
	"github.com/kvassert/kvassert/kvasserttest/internal/emu"
	"github.com/kvassert/kvassert/kvasserttest/internal/names"
)

// Op names an emulated operation for fault injection (InjectFault) and
// counters (Count). The constants below are the ones tests commonly use;
// every operation is an Op of its name, e.g. Op("certificates/merge"):
//
//	Key Vault, keys:         "keys/create", "keys/import", "keys/get", "keys/list",
//	                         "keys/sign", "keys/verify", "keys/update",
//	                         "keys/wrapKey", "keys/unwrapKey"
//	Key Vault, certificates: "certificates/create", "certificates/pending",
//	                         "certificates/get", "certificates/list", "certificates/import",
//	                         "certificates/policy", "certificates/update",
//	                         "certificates/delete", "certificates/merge",
//	                         "certificates/deleted"
//	Key Vault, other:        "secrets/get", "keyvault/challenge" (an
//	                         unauthenticated request answered 401)
//	Entra ID:                "entra/discovery" (openid-configuration), "entra/jwks",
//	                         "entra/instance" (instance discovery), "entra/token",
//	                         "entra/managed-identity" (App Service, Cloud Shell and IMDS),
//	                         "entra/adminconsent" (the v2 admin-consent page and its form)
//	Microsoft Graph:         "graph/applications/get", "graph/applications/addKey",
//	                         "graph/applications/removeKey", "graph/organization/get"
type Op = emu.Op

// Operations tests commonly count and fault (see Op for all of them).
const (
	OpKeySign         = emu.OpKeySign         // POST /keys/{n}[/{v}]/sign
	OpKeyGet          = emu.OpKeyGet          // GET /keys/{n}[/{v}]
	OpCertificateGet  = emu.OpCertificateGet  // GET /certificates/{n}[/{v}]
	OpCertificateList = emu.OpCertificateList // GET /certificates/{n}/versions (and other certificate lists)
	OpToken           = emu.OpToken           // POST {tenant}/oauth2/v2.0/token
	OpManagedIdentity = emu.OpManagedIdentity // the managed identity endpoints
	OpGraphAddKey     = emu.OpGraphAddKey     // POST /v1.0/applications/{objectId}/addKey
	OpGraphRemoveKey  = emu.OpGraphRemoveKey  // POST /v1.0/applications/{objectId}/removeKey
)

// Fault describes an injected failure: latency, an error status (with or
// without Retry-After), a held or dropped connection; for the next Times
// requests or until cleared.
type Fault = emu.Fault

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

// SetSignLimit simulates a vault's sign rate limit of requests per window
// (Key Vault: 4,000 RSA-2048 signs per 10 s); zero removes it. Over the
// limit the vault answers 429 Throttled without Retry-After, as the real
// service does.
func (e *Emulator) SetSignLimit(vaultName string, requests int, window time.Duration) error {
	if requests < 0 || window < 0 {
		return inputerr.New("kvasserttest", "requests", "sign limit of %d requests per %v: requests and window must not be negative", requests, window)
	}
	v, err := e.vault(vaultName)
	if err != nil {
		return err
	}
	v.SetSignLimit(emu.RateLimit{Requests: requests, Window: window})
	return nil
}

// Grant gives a principal (client ID or object ID) permissions on a vault,
// e.g. "keys/sign" (see scenario.Access for the names and wildcards).
func (e *Emulator) Grant(vaultName, principal string, permissions ...string) error {
	v, err := e.vault(vaultName)
	if err != nil {
		return err
	}
	if err := checkAccess(principal, permissions); err != nil {
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
	if err := checkAccess(principal, permissions); err != nil {
		return err
	}
	v.Revoke(principal, permissions...)
	return nil
}

// checkAccess refuses an empty principal and unknown permissions.
func checkAccess(principal string, permissions []string) error {
	if principal == "" {
		return inputerr.New("kvasserttest", "principal", "empty principal: give a client ID or object ID")
	}
	for _, p := range permissions {
		if p != "*" && !strings.HasSuffix(p, "/*") && !slices.Contains(names.Permissions, p) {
			return inputerr.New("kvasserttest", "permissions", "unknown permission %q in permissions (known: %s)", textutil.Truncate(p, 64), strings.Join(names.Permissions, ", "))
		}
	}
	return nil
}

// certificateDER returns the DER of the current version of a vault certificate.
func (e *Emulator) certificateDER(vaultName, certName string) ([]byte, error) {
	v, err := e.vault(vaultName)
	if err != nil {
		return nil, err
	}
	der, err := v.CertificateDER(certName)
	if err != nil {
		return nil, &inputerr.Error{Package: "kvasserttest", Input: "certName", Reason: fmt.Sprintf("no certificate %q (certName) in vault %s", textutil.Truncate(certName, 64), vaultName), Err: err}
	}
	return der, nil
}

// Certificate returns the current version of a vault certificate.
func (e *Emulator) Certificate(vaultName, certName string) (*x509.Certificate, error) {
	der, err := e.certificateDER(vaultName, certName)
	if err != nil {
		return nil, err
	}
	return x509.ParseCertificate(der)
}

// RegisterCertificate adds a certificate credential to an app registration
// (as uploading it in the portal does).
func (e *Emulator) RegisterCertificate(clientID string, cert *x509.Certificate) error {
	if err := e.checkAppCert(clientID, cert); err != nil {
		return err
	}
	return e.entra.RegisterCertificate(clientID, cert)
}

// RemoveCertificate removes a certificate credential from an app.
func (e *Emulator) RemoveCertificate(clientID string, cert *x509.Certificate) error {
	if err := e.checkAppCert(clientID, cert); err != nil {
		return err
	}
	return certErr(e.entra.RemoveCertificate(clientID, cert))
}

// RevokeCertificate marks an app's certificate credential as revoked.
func (e *Emulator) RevokeCertificate(clientID string, cert *x509.Certificate) error {
	if err := e.checkAppCert(clientID, cert); err != nil {
		return err
	}
	return certErr(e.entra.RevokeCertificate(clientID, cert))
}

// checkApp refuses a client ID that is not an app of the scenario.
func (e *Emulator) checkApp(clientID string) error {
	if a, ok := e.entra.AppByID(clientID); !ok || a.ClientID != strings.ToLower(clientID) {
		return errNoApp(clientID)
	}
	return nil
}

func (e *Emulator) checkAppCert(clientID string, cert *x509.Certificate) error {
	if cert == nil {
		return inputerr.New("kvasserttest", "cert", "nil cert")
	}
	return e.checkApp(clientID)
}

// certErr words entra's "no such certificate" as an input error.
func certErr(err error) error {
	if err == nil {
		return nil
	}
	return &inputerr.Error{Package: "kvasserttest", Input: "cert", Reason: "the app has no such certificate (cert)", Err: err}
}

// ClientOptions returns azcore client options that send traffic to the
// emulator (Transport: Client) in the public cloud (Cloud:
// cloud.AzurePublic, whose hosts the emulator serves): for azkeys,
// azcertificates, azsecrets, azidentity and kvassert. It is the one value a
// program needs to run against the emulator instead of Azure, e.g.
//
//	cred, err := azidentity.NewDefaultAzureCredential(&azidentity.DefaultAzureCredentialOptions{ClientOptions: emu.ClientOptions()})
//
// gets tokens from the emulated IMDS as the scenario's only managed
// identity (in the demo, the identity that may sign with the demo
// certificate) when no AZURE_* environment selects another credential.
func (e *Emulator) ClientOptions() policy.ClientOptions {
	return policy.ClientOptions{Cloud: cloud.AzurePublic, Transport: e.client}
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
			return nil, inputerr.New("kvasserttest", "clientID", "app %s (clientID) has no client secret in the scenario", textutil.Truncate(clientID, 64))
		}
		return azidentity.NewClientSecretCredential(a.HomeTenant, a.ClientID, a.Secrets[0], &azidentity.ClientSecretCredentialOptions{
			ClientOptions:            e.ClientOptions(),
			DisableInstanceDiscovery: true,
		})
	}
	return nil, errNoApp(clientID)
}

func discardLogger() *log.Logger { return log.New(io.Discard, "", 0) }
