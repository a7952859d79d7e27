package certcache

import "github.com/kvassert/kvassert/internal/obs"

// observe registers the cache's certificate gauges (time left on the active
// certificate, rotation pending) for as long as the cache lives.
func (s *Cache) observe() {
	obs.ObserveCertificate(s.tel, s.name, s, (*Cache).telemetryState)
}

// telemetryState is what the certificate gauges report: the version in use
// and its notAfter, and the newest version read from the vault. False
// while no certificate has been read.
func (s *Cache) telemetryState() (obs.CertificateState, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.active == nil {
		return obs.CertificateState{}, false
	}
	st := obs.CertificateState{Version: s.active.Version, NotAfter: s.active.Certificate.NotAfter}
	if s.newest != nil {
		st.NewestVersion = s.newest.Version
	}
	return st, true
}
