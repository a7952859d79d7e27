package obs

import (
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
)

// CertificateState is what a certificate source reports at each collection.
type CertificateState struct {
	// Version in use (the accepted version, once rotation tracks one).
	Version string
	// NotAfter of the version in use.
	NotAfter time.Time
	// NewestVersion in the vault; empty when unknown (then no
	// rotation_pending point is reported).
	NewestVersion string
}

// ObserveCertificate reports, at each collection and for as long as owner
// (the certificate source) lives, kvassert.keyvault.certificate.time_left
// and rotation_pending for certificate name, from state(owner). state
// returns false while no certificate has been read (nothing is reported).
// state must not capture owner and must not block (it runs in the
// exporter's collection).
//
// Call site: the certificate source's constructor.
func ObserveCertificate[T any](k *KeyVault, name string, owner *T, state func(*T) (CertificateState, bool)) (unregister func()) {
	if k == nil || k.timeLeft == nil || k.pending == nil {
		return func() {}
	}
	nameKV := attribute.String(AttrCertificateName, name)
	return observe(k.meter, owner, func(p *T, o metric.Observer) {
		s, ok := state(p)
		if !ok {
			return
		}
		version := attribute.String(AttrCertificateVersion, s.Version)
		o.ObserveFloat64(k.timeLeft, time.Until(s.NotAfter).Seconds(), metric.WithAttributes(k.host, nameKV, version))
		if s.NewestVersion != "" {
			var v int64
			if s.NewestVersion != s.Version {
				v = 1
			}
			o.ObserveInt64(k.pending, v, metric.WithAttributes(k.host, nameKV, version, attribute.String(AttrCertificateNewestVersion, s.NewestVersion)))
		}
	}, k.timeLeft, k.pending)
}
