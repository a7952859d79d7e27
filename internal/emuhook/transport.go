package emuhook

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"slices"
	"strings"
	"time"
)

// vaultSuffixes and hsmSuffixes are the host suffixes of emulated vaults.
var vaultSuffixes = []string{
	".vault.azure.net", ".vault.azure.cn", ".vault.usgovcloudapi.net",
}

var hsmSuffixes = []string{
	".managedhsm.azure.net", ".managedhsm.azure.cn", ".managedhsm.usgovcloudapi.net",
}

var loginHosts = []string{"login.microsoftonline.com", "login.chinacloudapi.cn", "login.microsoftonline.us"}

// graphHosts are the Microsoft Graph hosts of the clouds.
var graphHosts = []string{"graph.microsoft.com", "graph.microsoft.us", "dod-graph.microsoft.us", "microsoftgraph.chinacloudapi.cn"}

// IsGraphHost reports whether host (without port) is a Microsoft Graph host.
func IsGraphHost(host string) bool {
	return slices.ContainsFunc(graphHosts, func(h string) bool { return strings.EqualFold(h, host) })
}

// VaultLabel returns the vault name of a vault or Managed HSM host, and
// whether the host is a Managed HSM one.
func VaultLabel(host string) (name string, hsm, ok bool) {
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

// IsLoginHost reports whether host is an Entra ID login host of a cloud.
func IsLoginHost(host string) bool {
	for _, h := range loginHosts {
		if strings.EqualFold(host, h) {
			return true
		}
	}
	return false
}

// IsLoopbackHost reports whether host is "localhost" or a loopback IP.
func IsLoopbackHost(host string) bool {
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
			switch name, hsm, isVault := VaultLabel(host); {
			case isVault:
				if knownVault != nil && !knownVault(name, hsm) {
					return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
				}
				return dialer.DialContext(ctx, network, addr)
			case IsLoginHost(host), IsGraphHost(host):
				return dialer.DialContext(ctx, network, addr)
			case IsLoopbackHost(host):
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
