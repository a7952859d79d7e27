package kvasserttest_test

// Tests of the simulation hooks: versions added past the REST API
// (AddCertificateVersion), the vault's ground truth (CertificateVersions),
// Graph faults that strike after the change was made, and OnGraphAddKey.

import (
	"context"
	"crypto"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azcertificates"

	"github.com/kvassert/kvassert/internal/emuhook"
	"github.com/kvassert/kvassert/internal/testfixture"
	"github.com/kvassert/kvassert/kvasserttest"
	"github.com/kvassert/kvassert/kvasserttest/scenario"
)

func TestAddCertificateVersionAndGroundTruth(t *testing.T) {
	e := kvasserttest.NewTB(t, scenario.Demo(), nil)
	before, err := emuhook.Of(e).CertificateVersions(scenario.DemoVault, scenario.DemoCertificate)
	if err != nil || len(before) != 1 {
		t.Fatalf("versions before: %d, %v", len(before), err)
	}
	if v := before[0]; !v.Enabled || v.Imported || v.Exportable || !strings.HasPrefix(v.KeyType, "RSA") {
		t.Fatalf("scenario version: %+v", v)
	}
	start := time.Now().Add(48 * time.Hour).Truncate(time.Second)
	future, err := emuhook.Of(e).AddCertificateVersion(scenario.DemoVault, scenario.DemoCertificate, emuhook.VersionSpec{NotBefore: start, Tags: map[string]string{"a": "b"}})
	if err != nil {
		t.Fatal(err)
	}
	ec, err := emuhook.Of(e).AddCertificateVersion(scenario.DemoVault, scenario.DemoCertificate, emuhook.VersionSpec{EC: true, Disabled: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := emuhook.Of(e).AddCertificateVersion(scenario.DemoVault, "no-such-certificate", emuhook.VersionSpec{}); err == nil {
		t.Fatal("a version of a certificate that does not exist")
	}
	vs, err := emuhook.Of(e).CertificateVersions(scenario.DemoVault, scenario.DemoCertificate)
	if err != nil || len(vs) != 3 {
		t.Fatalf("versions after: %d, %v", len(vs), err)
	}
	if v := vs[1]; v.Version != future || !v.Certificate.NotBefore.Equal(start) || !v.Enabled || v.Imported || v.Exportable || v.Tags["a"] != "b" {
		t.Fatalf("pre-staged version: %+v", v)
	}
	if v := vs[2]; v.Version != ec || v.Enabled || v.KeyType != "EC" {
		t.Fatalf("EC version: %+v", v)
	}

	// Through the REST API: the pre-staged version as the service shows it,
	// and an import is marked as such.
	c := testfixture.Certificates(t, e, scenario.DemoVault)
	got, err := c.GetCertificate(context.Background(), scenario.DemoCertificate, future, nil)
	if err != nil || got.Attributes == nil || got.Attributes.NotBefore == nil || !got.Attributes.NotBefore.Equal(start) {
		t.Fatalf("GET of the pre-staged version: %+v %v", got.Attributes, err)
	}
	// The added version is the certificate's latest operation, with its key
	// in the CSR (the latest one added here is the EC version).
	op, err := c.GetCertificateOperation(context.Background(), scenario.DemoCertificate, nil)
	if err != nil || op.Status == nil || *op.Status != "completed" || len(op.CSR) == 0 {
		t.Fatalf("latest operation: %+v %v", op.Status, err)
	}
	csr, err := x509.ParseCertificateRequest(op.CSR)
	if err != nil {
		t.Fatal(err)
	}
	if k, ok := csr.PublicKey.(interface{ Equal(crypto.PublicKey) bool }); !ok || !k.Equal(vs[2].Certificate.PublicKey) {
		t.Fatal("the operation's CSR does not hold the added version's key")
	}
	key, cert := entraLocalCert(t, time.Now().Add(-time.Hour), time.Now().Add(24*time.Hour))
	pemText := pemCert(cert) + pemKey(t, key)
	if _, err := c.ImportCertificate(context.Background(), scenario.DemoCertificate, azcertificates.ImportCertificateParameters{Base64EncodedCertificate: &pemText}, nil); err != nil {
		t.Fatal(err)
	}
	vs, _ = emuhook.Of(e).CertificateVersions(scenario.DemoVault, scenario.DemoCertificate)
	if v := vs[len(vs)-1]; !v.Imported || !v.Exportable || !v.Certificate.Equal(cert) {
		t.Fatalf("imported version: imported=%v exportable=%v", v.Imported, v.Exportable)
	}
}

func TestGraphFaultAfterCommitAndOnAddKey(t *testing.T) {
	r := newRollEnv(t)
	tok := r.graphToken()
	var added []kvasserttest.KeyCredential
	emuhook.Of(r.e).OnGraphAddKey(func(kc kvasserttest.KeyCredential) { added = append(added, kc) })
	emuhook.Of(r.e).InjectGraphFaultAfterCommit(kvasserttest.OpGraphAddKey, kvasserttest.Fault{Status: http.StatusGatewayTimeout, Times: 1})

	// A request that fails on its own passes through and does not consume it.
	status, _, ge, _ := r.call("POST", r.appURL("/addKey"), tok, addKeyBody(r.cert, proof(t, r.key, r.cert, r.now(), nil)))
	if status != http.StatusBadRequest || len(added) != 0 {
		t.Fatalf("duplicate addKey under an after-commit fault: %d %+v, hook calls %d", status, ge, len(added))
	}
	_, newCert := entraLocalCert(t, time.Now().Add(-time.Hour), time.Now().Add(24*time.Hour))
	status, _, ge, _ = r.call("POST", r.appURL("/addKey"), tok, addKeyBody(newCert, proof(t, r.key, r.cert, r.now(), nil)))
	if status != http.StatusGatewayTimeout || ge.Error.Code != "Service_ServiceUnavailable" {
		t.Fatalf("addKey with its answer lost: %d %+v", status, ge)
	}
	creds, err := r.e.AppKeyCredentials(rollClientID)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, k := range creds {
		found = found || k.Certificate.Equal(newCert)
	}
	if !found || len(added) != 1 || !added[0].Certificate.Equal(newCert) {
		t.Fatalf("the key was not added behind the lost answer (found %v, hook calls %d)", found, len(added))
	}
	// Times: 1 is used up; the next addKey is answered normally.
	_, third := entraLocalCert(t, time.Now().Add(-time.Hour), time.Now().Add(24*time.Hour))
	if status, _, ge, _ = r.call("POST", r.appURL("/addKey"), tok, addKeyBody(third, proof(t, r.key, r.cert, r.now(), nil))); status != http.StatusOK {
		t.Fatalf("addKey after the fault was used: %d %+v", status, ge)
	}
	// Dropped after commit; then cleared.
	emuhook.Of(r.e).InjectGraphFaultAfterCommit(kvasserttest.OpGraphRemoveKey, kvasserttest.Fault{Drop: true})
	req, _ := http.NewRequest("POST", r.appURL("/removeKey"), strings.NewReader(`{"keyId":"`+added[0].KeyID+`","proof":"`+proof(t, r.key, r.cert, r.now(), nil)+`"}`))
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("Content-Type", "application/json")
	if resp, err := r.e.Client().Do(req); err == nil {
		resp.Body.Close()
		t.Fatalf("removeKey under a drop-after-commit fault answered %d", resp.StatusCode)
	}
	creds, _ = r.e.AppKeyCredentials(rollClientID)
	for _, k := range creds {
		if k.KeyID == added[0].KeyID {
			t.Fatal("the key is still there behind the dropped answer")
		}
	}
	emuhook.Of(r.e).ClearGraphFaultsAfterCommit()
	emuhook.Of(r.e).OnGraphAddKey(nil)
	_, fourth := entraLocalCert(t, time.Now().Add(-time.Hour), time.Now().Add(24*time.Hour))
	if status, _, ge, _ = r.call("POST", r.appURL("/addKey"), tok, addKeyBody(fourth, proof(t, r.key, r.cert, r.now(), nil))); status != http.StatusOK || len(added) != 2 {
		t.Fatalf("addKey after clearing: %d %+v, hook calls %d (want 2: the hook was removed)", status, ge, len(added))
	}
}

func pemKey(t *testing.T, key *rsa.PrivateKey) string {
	t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
}
