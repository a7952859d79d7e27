package obs_test

import (
	"math"
	"runtime"
	"testing"
	"time"

	"github.com/kvassert/kvassert/internal/integration/obstest"
	"github.com/kvassert/kvassert/internal/obs"
)

// source stands in for a certificate source: what ObserveCertificate watches.
type source struct {
	state obs.CertificateState
	read  bool
}

func (s *source) observed() (obs.CertificateState, bool) { return s.state, s.read }

// credential stands in for a kvassert.Credential.
type credential struct {
	n   int
	pad [64]byte
}

const vaultHost = "kvassert-demo.vault.azure.net"

func TestExpiringCertificateGauge(t *testing.T) {
	r := obstest.New(t)
	k := obs.NewKeyVault(r.Options, vaultHost)
	src := &source{}
	unregister := obs.ObserveCertificate(k, "app-auth", src, (*source).observed)

	// Nothing reported before the first read.
	if ps := obstest.Points(r.Collect(t), obs.MetricCertificateTimeLeft); len(ps) != 0 {
		t.Fatalf("time_left before any read: %v", ps)
	}

	notAfter := time.Now().Add(10 * 24 * time.Hour)
	src.state, src.read = obs.CertificateState{Version: "v1", NotAfter: notAfter, NewestVersion: "v1"}, true
	rm := r.Collect(t)
	base := "kvassert.certificate.name=app-auth,kvassert.certificate.version=v1,server.address=" + vaultHost
	left, ok := sumOf(rm, obs.MetricCertificateTimeLeft, base)
	if !ok {
		t.Fatalf("no time_left {%s}; points:%s", base, dump(rm, obs.MetricCertificateTimeLeft))
	}
	// Measured against the clock at collection: within a minute of 10 days.
	if want := (10 * 24 * time.Hour).Seconds(); left > want || left < want-60 {
		t.Errorf("time_left = %v s, want about %v s (10 days)", left, want)
	}
	m, _ := obstest.Metric(rm, obs.MetricCertificateTimeLeft)
	if m.Unit != "s" {
		t.Errorf("time_left unit %q, want s", m.Unit)
	}
	if v, ok := sumOf(rm, obs.MetricCertificateRotationPending, "kvassert.certificate.name=app-auth,kvassert.certificate.newest_version=v1,kvassert.certificate.version=v1,server.address="+vaultHost); !ok || v != 0 {
		t.Errorf("rotation_pending = %v (found %v), want 0; points:%s", v, ok, dump(rm, obs.MetricCertificateRotationPending))
	}

	// The vault renewed the certificate (v2) while v1 is still in use; v1
	// has expired: time_left goes negative.
	src.state = obs.CertificateState{Version: "v1", NotAfter: time.Now().Add(-time.Hour), NewestVersion: "v2"}
	rm = r.Collect(t)
	if left, _ := sumOf(rm, obs.MetricCertificateTimeLeft, base); left > -3600 || math.IsNaN(left) {
		t.Errorf("expired time_left = %v, want <= -3600", left)
	}
	if v, ok := sumOf(rm, obs.MetricCertificateRotationPending, "kvassert.certificate.name=app-auth,kvassert.certificate.newest_version=v2,kvassert.certificate.version=v1,server.address="+vaultHost); !ok || v != 1 {
		t.Errorf("rotation_pending = %v (found %v), want 1; points:%s", v, ok, dump(rm, obs.MetricCertificateRotationPending))
	}

	unregister()
	if ps := obstest.Points(r.Collect(t), obs.MetricCertificateTimeLeft); len(ps) != 0 {
		t.Errorf("time_left after unregister: %d points", len(ps))
	}
}

// TestObservedOwnerIsNotKeptAlive: registering a gauge must not keep a
// certificate source or a credential alive; once collected, it reports
// nothing.
func TestObservedOwnerIsNotKeptAlive(t *testing.T) {
	r := obstest.New(t)
	k := obs.NewKeyVault(r.Options, vaultHost)
	c := obs.NewCredential(r.Options)
	func() {
		src := &source{state: obs.CertificateState{Version: "v1", NotAfter: time.Now().Add(time.Hour)}, read: true}
		obs.ObserveCertificate(k, "app-auth", src, (*source).observed)
		owner := &credential{n: 7} // not a tiny allocation: those may share a block and outlive their last use
		obs.ObserveCachedTokens(c, owner, func(o *credential) int { return o.n })
		rm := r.Collect(t)
		if len(obstest.Points(rm, obs.MetricCertificateTimeLeft)) != 1 {
			t.Fatal("time_left not reported while the source lives")
		}
		if v, ok := sumOf(rm, obs.MetricTokenCachedCount, ""); !ok || v != 7 {
			t.Fatalf("cached tokens = %v (found %v), want 7", v, ok)
		}
		runtime.KeepAlive(src)
		runtime.KeepAlive(owner)
	}()
	runtime.GC()
	rm := r.Collect(t)
	if n := len(obstest.Points(rm, obs.MetricCertificateTimeLeft)) + len(obstest.Points(rm, obs.MetricTokenCachedCount)); n != 0 {
		t.Errorf("%d points still reported for collected owners: time_left%s cached%s", n, dump(rm, obs.MetricCertificateTimeLeft), dump(rm, obs.MetricTokenCachedCount))
	}
}
