package kvasserttest

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/kvassert/kvassert/kvasserttest/internal/graph"
)

// cloudHosts maps the host suffixes of emulated services to their kind.
var vaultSuffixes = []string{
	".vault.azure.net", ".vault.azure.cn", ".vault.usgovcloudapi.net",
}

var hsmSuffixes = []string{
	".managedhsm.azure.net", ".managedhsm.azure.cn", ".managedhsm.usgovcloudapi.net",
}

var loginHosts = []string{"login.microsoftonline.com", "login.chinacloudapi.cn", "login.microsoftonline.us"}

// vaultLabel returns the vault name of a vault or Managed HSM host, and
// whether the host is a Managed HSM one.
func vaultLabel(host string) (name string, hsm, ok bool) {
	host = strings.ToLower(host)
	for _, s := range vaultSuffixes {
		if n, found := strings.CutSuffix(host, s); found && n != "" && !strings.Contains(n, ".") {
			return n, false, true
		}
	}
	for _, s := range hsmSuffixes {
		if n, found := strings.CutSuffix(host, s); found && n != "" && !strings.Contains(n, ".") {
			return n, true, true
		}
	}
	return "", false, false
}

func isLoginHost(host string) bool {
	for _, h := range loginHosts {
		if strings.EqualFold(host, h) {
			return true
		}
	}
	return false
}

func isLoopbackHost(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// NewTransport returns an HTTP transport for talking to an emulator at addr
// (host:port) from any process: it trusts the emulator's CA (caPEM) and dials
// addr for every Azure vault, Managed HSM, login and Microsoft Graph host, so that client code
// keeps using real Azure URLs (and the SDK's challenge-resource verification
// stays on). Loopback URLs are dialled as they are. Any other host is refused,
// so a test can never reach the real cloud by accident. knownVault, when not
// nil, makes unknown vault names fail as DNS would ("no such host").
func NewTransport(addr string, caPEM []byte, knownVault func(name string, hsm bool) bool) (*http.Transport, error) {
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		return nil, errors.New("kvasserttest: the CA PEM holds no certificate")
	}
	if _, _, err := net.SplitHostPort(addr); err != nil {
		return nil, fmt.Errorf("kvasserttest: emulator address %q is not host:port: %w", addr, err)
	}
	dialer := &net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}
	return &http.Transport{
		DialContext: func(ctx context.Context, network, target string) (net.Conn, error) {
			host, _, err := net.SplitHostPort(target)
			if err != nil {
				return nil, err
			}
			switch name, hsm, isVault := vaultLabel(host); {
			case isVault:
				if knownVault != nil && !knownVault(name, hsm) {
					return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
				}
				return dialer.DialContext(ctx, network, addr)
			case isLoginHost(host), graph.IsGraphHost(host):
				return dialer.DialContext(ctx, network, addr)
			case isLoopbackHost(host):
				return dialer.DialContext(ctx, network, target)
			}
			return nil, fmt.Errorf("kvasserttest: refusing to dial %q: not an emulated Azure host", host)
		},
		TLSClientConfig:     &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12},
		MaxIdleConns:        256,
		MaxIdleConnsPerHost: 256,
		IdleConnTimeout:     90 * time.Second,
		TLSHandshakeTimeout: 5 * time.Second,
	}, nil
}
