// Package kvid parses and checks Key Vault and Managed HSM URLs, object
// identifiers and names: the one set of rules the library, the proxy, the
// CLI and rotation use. Its errors are *kvassert.InputError.
package kvid

import (
	"net"
	"net/url"
	"regexp"
	"strings"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/cloud"

	"github.com/kvassert/kvassert/internal/inputerr"
	"github.com/kvassert/kvassert/internal/textutil"
)

// vaultDomains are the DNS suffixes of Key Vault and Managed HSM in the
// public, China and US Government clouds.
var vaultDomains = []struct {
	suffix string
	hsm    bool
}{
	{".vault.azure.net", false},
	{".vault.azure.cn", false},
	{".vault.usgovcloudapi.net", false},
	{".managedhsm.azure.net", true},
	{".managedhsm.azure.cn", true},
	{".managedhsm.usgovcloudapi.net", true},
}

var (
	vaultLabelRE = regexp.MustCompile(`^[a-z][a-z0-9-]{1,22}[a-z0-9]$`)
	objectNameRE = regexp.MustCompile(`^[a-zA-Z0-9-]{1,127}$`)
	versionRE    = regexp.MustCompile(`^[a-zA-Z0-9]{1,64}$`)
)

// Vault is a parsed vault URL.
type Vault struct {
	// URL is the normalised vault URL: "https://{host}/" (with port when given).
	URL string
	// Host is the host name (and port, when given).
	Host string
	// ManagedHSM is true for *.managedhsm.* hosts.
	ManagedHSM bool
	// Loopback is true for an emulator on this machine.
	Loopback bool
}

// ParseVaultURL checks a vault URL and normalises it. It accepts only https,
// no user info, query or fragment, no path other than "/", and a host that is
// a Key Vault or Managed HSM host of an Azure cloud, or a loopback address
// (reported in Vault.Loopback; the signer and certificate source refuse it
// unless their options' AllowLoopback is set). Its errors, like those of every
// check in this file, are *kvassert.InputError (read them with errors.As).
func ParseVaultURL(raw string) (Vault, error) {
	u, err := parseHTTPS("vault URL", raw)
	if err != nil {
		return Vault{}, err
	}
	if p := strings.Trim(u.Path, "/"); p != "" {
		return Vault{}, inputErr("vault URL", "vault URL %q has a path (%q); give only https://{vault}.vault.azure.net/", redact(raw), textutil.Truncate(u.Path, 200))
	}
	return checkHost(raw, u)
}

func parseHTTPS(what, raw string) (*url.URL, error) {
	if raw == "" {
		return nil, inputErr(what, "empty %s", what)
	}
	if len(raw) > 2048 {
		return nil, inputErr(what, "%s is longer than 2048 bytes", what)
	}
	u, err := url.Parse(raw)
	if err != nil {
		return nil, inputErr(what, "%s %q is not a URL", what, redact(raw))
	}
	switch {
	case u.Scheme == "http":
		return nil, inputErr(what, "%s %q uses http; Key Vault is reached over https only", what, redact(raw))
	case u.Scheme != "https":
		return nil, inputErr(what, "%s %q is not an https URL", what, redact(raw))
	case u.User != nil:
		return nil, inputErr(what, "%s must not contain user info (user:password@)", what)
	case u.RawQuery != "" || u.Fragment != "" || u.ForceQuery:
		return nil, inputErr(what, "%s %q must not have a query or fragment", what, redact(raw))
	case u.Host == "":
		return nil, inputErr(what, "%s %q has no host", what, redact(raw))
	}
	return u, nil
}

func checkHost(raw string, u *url.URL) (Vault, error) {
	host := strings.ToLower(u.Hostname())
	if ip := net.ParseIP(host); (ip != nil && ip.IsLoopback()) || host == "localhost" {
		return Vault{URL: "https://" + strings.ToLower(u.Host) + "/", Host: strings.ToLower(u.Host), Loopback: true}, nil
	}
	if u.Port() != "" && u.Port() != "443" {
		return Vault{}, inputErr("vault URL", "vault URL %q names port %s; Azure vaults listen on 443", redact(raw), textutil.Truncate(u.Port(), 16))
	}
	for _, d := range vaultDomains {
		label, ok := strings.CutSuffix(host, d.suffix)
		if !ok {
			continue
		}
		if err := CheckVaultName(label); err != nil {
			return Vault{}, err
		}
		return Vault{URL: "https://" + host + "/", Host: host, ManagedHSM: d.hsm}, nil
	}
	return Vault{}, inputErr("vault URL", "vault URL host %q is not a Key Vault or Managed HSM host (*.vault.azure.net, *.managedhsm.azure.net or a sovereign cloud's)", textutil.Truncate(host, 200))
}

// ValidVersion reports whether v has the form of a Key Vault object version.
func ValidVersion(v string) bool { return versionRE.MatchString(v) }

// CheckLoopback refuses a loopback vault unless allowed (the options'
// AllowLoopback, for emulators).
func (v Vault) CheckLoopback(allowed bool) error {
	if v.Loopback && !allowed {
		return inputErr("vault URL", "%s is an address on this machine, and kvassert sends its Key Vault token only to Azure vault hosts; "+
			"for kvassert's emulators keep the real vault URL (https://NAME.vault.azure.net/) and give the emulator's ClientOptions "+
			"(kvasserttest's emu.ClientOptions()), which route it to the emulator and trust its certificate; "+
			"another emulator needs the AllowLoopback option and its CA in ClientOptions.Transport", v.Host)
	}
	return nil
}

// ObjectID is a parsed key or certificate identifier,
// "https://{vault}/{keys|certificates}/{name}[/{version}]".
type ObjectID struct {
	Vault   Vault
	Kind    string // "keys", "certificates" or "secrets"
	Name    string
	Version string // "" for the latest version
}

// String returns the identifier URL.
func (id ObjectID) String() string {
	s := id.Vault.URL + id.Kind + "/" + id.Name
	if id.Version != "" {
		s += "/" + id.Version
	}
	return s
}

// ParseKeyID parses a key identifier such as a certificate's kid,
// "https://myvault.vault.azure.net/keys/app-cert/0123abcd...". The version is
// optional (latest).
func ParseKeyID(raw string) (ObjectID, error) { return parseObjectID(raw, "keys") }

// ParseCertificateID parses a certificate identifier.
func ParseCertificateID(raw string) (ObjectID, error) { return parseObjectID(raw, "certificates") }

func parseObjectID(raw, kind string) (ObjectID, error) {
	what := strings.TrimSuffix(kind, "s") + " ID"
	u, err := parseHTTPS(what, raw)
	if err != nil {
		return ObjectID{}, err
	}
	v, err := checkHost(raw, u)
	if err != nil {
		return ObjectID{}, err
	}
	if u.RawPath != "" || strings.Contains(u.Path, "..") || strings.Contains(u.Path, "//") {
		return ObjectID{}, inputErr(what, "%s %q is not a %s identifier (escaped or '..' segments)", what, redact(raw), kind)
	}
	parts := strings.Split(strings.Trim(u.Path, "/"), "/")
	if len(parts) < 2 || len(parts) > 3 || parts[0] != kind {
		return ObjectID{}, inputErr(what, "%s %q is not a %s identifier; expected https://{vault}/%s/{name}[/{version}]", what, redact(raw), kind, kind)
	}
	id := ObjectID{Vault: v, Kind: kind, Name: parts[1]}
	if err := CheckName(id.Name); err != nil {
		return ObjectID{}, err
	}
	if len(parts) == 3 {
		if !versionRE.MatchString(parts[2]) {
			return ObjectID{}, inputErr(what, "version %q in %s %q is not a Key Vault version", textutil.Truncate(parts[2], 64), what, redact(raw))
		}
		id.Version = parts[2]
	}
	return id, nil
}

// CheckName checks a key, certificate or secret name (1-127 letters, digits
// and '-').
func CheckName(name string) error {
	if !objectNameRE.MatchString(name) {
		return inputErr("name", "%q is not a valid name: use 1-127 letters, digits and '-'", textutil.Truncate(name, 64))
	}
	return nil
}

// CheckVaultName checks the name of a Key Vault or Managed HSM, the first
// label of its host: 3-24 lower-case letters, digits and single '-',
// starting with a letter and not ending with '-'. Vault host names are
// case-insensitive: callers lower-case a name taken from user input.
func CheckVaultName(name string) error {
	if !vaultLabelRE.MatchString(name) || strings.Contains(name, "--") {
		return inputErr("vault name", "%q is not a valid vault name (3-24 letters, digits and single '-', starting with a letter)", textutil.Truncate(name, 64))
	}
	return nil
}

// IsVaultHost reports whether host (with or without a port) is the host of
// a Key Vault or Managed HSM in an Azure cloud.
func IsVaultHost(host string) bool {
	h := strings.ToLower(host)
	if hn, _, err := net.SplitHostPort(h); err == nil {
		h = hn
	}
	for _, d := range vaultDomains {
		if label, ok := strings.CutSuffix(h, d.suffix); ok && CheckVaultName(label) == nil {
			return true
		}
	}
	return false
}

// VaultDomain is the DNS domain of the Key Vaults of cloud ("vault.azure.net",
// "vault.azure.cn" or "vault.usgovcloudapi.net"), told by its authority
// host; the public cloud's for any other.
func VaultDomain(c cloud.Configuration) string {
	host := strings.ToLower(c.ActiveDirectoryAuthorityHost)
	switch {
	case strings.Contains(host, "login.chinacloudapi.cn"):
		return "vault.azure.cn"
	case strings.Contains(host, "login.microsoftonline.us"):
		return "vault.usgovcloudapi.net"
	}
	return "vault.azure.net"
}

// inputErr is the error for input this package refuses (a
// kvassert.InputError).
func inputErr(input, format string, args ...any) error {
	return inputerr.New("keyvault", input, format, args...)
}

// redact drops anything after the path of a URL-ish string and truncates it,
// so an error never repeats a query string, fragment or user info verbatim.
func redact(raw string) string {
	if i := strings.IndexAny(raw, "?#"); i >= 0 {
		raw = raw[:i] + "…"
	}
	if i := strings.Index(raw, "@"); i >= 0 {
		if j := strings.Index(raw, "://"); j >= 0 && j < i {
			raw = raw[:j+3] + "…@" + raw[i+1:]
		}
	}
	return textutil.Truncate(raw, 200)
}
