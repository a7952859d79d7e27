package kvasserttest

import (
	"context"
	"crypto"
	"crypto/x509"
	"sync/atomic"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azcertificates"

	"github.com/kvassert/kvassert/internal/emuhook"
	"github.com/kvassert/kvassert/kvasserttest/scenario"
)

// listVersions lists a certificate's versions with the real pager.
func (k *kvEnv) listVersions(name string) ([]*azcertificates.CertificateProperties, error) {
	var out []*azcertificates.CertificateProperties
	pager := k.certs().NewListCertificatePropertiesVersionsPager(name, nil)
	for pager.More() {
		p, err := pager.NextPage(context.Background())
		if err != nil {
			return nil, err
		}
		out = append(out, p.Value...)
	}
	return out, nil
}

func (k *kvEnv) certAt(version string) *x509.Certificate {
	k.t.Helper()
	got, err := k.certs().GetCertificate(context.Background(), scenario.DemoCertificate, version, nil)
	if err != nil {
		k.t.Fatal(err)
	}
	c, err := x509.ParseCertificate(got.CER)
	if err != nil {
		k.t.Fatal(err)
	}
	return c
}

// TestAutoRenewOnEmulatorClock: the scenario certificate's default policy
// (AutoRenew at 80 %) renews it, with a new key, once the emulator's clock
// passes 80 % of its lifetime; days_before_expiry with reuse_key renews with
// the same key; EmailContacts does nothing; the versions are listed through
// the real pager across pages.
func TestAutoRenewOnEmulatorClock(t *testing.T) {
	k := newKVEnv(t)
	var offset atomic.Int64
	k.e.SetClock(func() time.Time { return time.Now().Add(time.Duration(offset.Load())) })
	setOffset := func(d time.Duration) {
		offset.Store(int64(d))
		var err error // tokens cached on the process clock are stale now: a fresh credential
		if k.cred, err = k.e.ClientSecretCredential(emuhook.DemoWorkloadClientID); err != nil {
			t.Fatal(err)
		}
	}
	ctx := context.Background()
	first := k.certAt("")
	life := first.NotAfter.Sub(first.NotBefore)

	pol, err := k.certs().GetCertificatePolicy(ctx, scenario.DemoCertificate, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(pol.LifetimeActions) != 1 || *pol.LifetimeActions[0].Trigger.LifetimePercentage != 80 ||
		*pol.LifetimeActions[0].Action.ActionType != azcertificates.CertificatePolicyActionAutoRenew {
		t.Fatalf("scenario certificate policy lifetime actions: %+v", pol.LifetimeActions)
	}

	// Just before 80 %: one version.
	setOffset(first.NotBefore.Add(life * 79 / 100).Sub(time.Now()))
	if vs, err := k.listVersions(scenario.DemoCertificate); err != nil || len(vs) != 1 {
		t.Fatalf("at 79 %%: %d versions, %v", len(vs), err)
	}
	// Past 80 %: a new version, issued now on the emulator clock, new key.
	setOffset(first.NotBefore.Add(life * 81 / 100).Sub(time.Now()))
	emuhook.Of(k.e).SetListPageSize(scenario.DemoVault, 1) // the pager must follow nextLink
	vs, err := k.listVersions(scenario.DemoCertificate)
	if err != nil || len(vs) != 2 {
		t.Fatalf("at 81 %%: %d versions, %v", len(vs), err)
	}
	second := k.certAt("")
	emuNow := time.Now().Add(time.Duration(offset.Load()))
	if second.Equal(first) || second.NotBefore.Before(emuNow.Add(-time.Hour)) || second.NotBefore.After(emuNow) ||
		second.NotAfter.Sub(second.NotBefore) < life-48*time.Hour {
		t.Fatalf("renewed version: valid %v - %v, emulator now %v", second.NotBefore, second.NotAfter, emuNow)
	}
	if second.PublicKey.(interface{ Equal(crypto.PublicKey) bool }).Equal(first.PublicKey) {
		t.Fatal("AutoRenew without reuse_key kept the key")
	}
	if vs2, _ := k.listVersions(scenario.DemoCertificate); len(vs2) != 2 {
		t.Fatalf("a second look renewed again: %d versions", len(vs2))
	}
	// The old version is still readable, its validity unchanged.
	if old := k.certAt(vs[0].ID.Version()); !old.Equal(first) && !old.Equal(second) {
		t.Fatal("listed version does not resolve")
	}

	// Now days_before_expiry 30 with reuse_key, and EmailContacts at 10 %.
	_, err = k.certs().UpdateCertificatePolicy(ctx, scenario.DemoCertificate, azcertificates.CertificatePolicy{
		KeyProperties: &azcertificates.KeyProperties{ReuseKey: to.Ptr(true)},
		LifetimeActions: []*azcertificates.LifetimeAction{
			{Trigger: &azcertificates.LifetimeActionTrigger{LifetimePercentage: to.Ptr[int32](10)}, Action: &azcertificates.LifetimeActionType{ActionType: to.Ptr(azcertificates.CertificatePolicyActionEmailContacts)}},
			{Trigger: &azcertificates.LifetimeActionTrigger{DaysBeforeExpiry: to.Ptr[int32](30)}, Action: &azcertificates.LifetimeActionType{ActionType: to.Ptr(azcertificates.CertificatePolicyActionAutoRenew)}},
		},
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	pol, _ = k.certs().GetCertificatePolicy(ctx, scenario.DemoCertificate, nil)
	if len(pol.LifetimeActions) != 2 || *pol.LifetimeActions[0].Action.ActionType != azcertificates.CertificatePolicyActionEmailContacts {
		t.Fatalf("policy does not report EmailContacts: %+v", pol.LifetimeActions)
	}
	// Past the EmailContacts trigger (and past 80 %, no longer a trigger): nothing.
	setOffset(second.NotAfter.AddDate(0, 0, -31).Sub(time.Now()))
	if vs, _ := k.listVersions(scenario.DemoCertificate); len(vs) != 2 {
		t.Fatalf("EmailContacts created a version: %d versions", len(vs))
	}
	setOffset(second.NotAfter.AddDate(0, 0, -29).Sub(time.Now()))
	if vs, _ := k.listVersions(scenario.DemoCertificate); len(vs) != 3 {
		t.Fatalf("30 days before expiry: %d versions, want 3", len(vs))
	}
	third := k.certAt("")
	if third.Equal(second) || !third.PublicKey.(interface{ Equal(crypto.PublicKey) bool }).Equal(second.PublicKey) {
		t.Fatal("AutoRenew with reuse_key did not keep the key")
	}
	// The control API sees the renewed version too.
	if der, _ := k.e.certificateDER(scenario.DemoVault, scenario.DemoCertificate); string(der) != string(third.Raw) {
		t.Fatal("CertificateDER is not the latest version")
	}

	// Listing versions needs certificates/list: 403 ForbiddenByRbac.
	k.e.Revoke(scenario.DemoVault, emuhook.DemoWorkloadClientID, "certificates/*")
	k.e.Grant(scenario.DemoVault, emuhook.DemoWorkloadClientID, "certificates/get")
	_, err = k.listVersions(scenario.DemoCertificate)
	if re := asResponseError(t, err); re.StatusCode != 403 || innerCode(t, re) != "ForbiddenByRbac" {
		t.Fatalf("list versions without certificates/list: %v", err)
	}
}

// TestAutoRenewDaysBeforeExpiryRange: the service refuses days_before_expiry
// beyond validity_months * 27.
func TestAutoRenewDaysBeforeExpiryRange(t *testing.T) {
	k := newKVEnv(t)
	_, err := k.certs().UpdateCertificatePolicy(context.Background(), scenario.DemoCertificate, azcertificates.CertificatePolicy{
		LifetimeActions: []*azcertificates.LifetimeAction{
			{Trigger: &azcertificates.LifetimeActionTrigger{DaysBeforeExpiry: to.Ptr[int32](12*27 + 1)}, Action: &azcertificates.LifetimeActionType{ActionType: to.Ptr(azcertificates.CertificatePolicyActionAutoRenew)}},
		},
	}, nil)
	if re := asResponseError(t, err); re.StatusCode != 400 || re.ErrorCode != "BadParameter" {
		t.Fatalf("days_before_expiry 325 on a 12-month policy: %v", err)
	}
}
