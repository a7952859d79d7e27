package proxy

import (
	"net/url"
	"strings"
)

// Target names what a managed identity route hands out tokens for: the app
// ClientID in Tenant with a Key Vault certificate (Vault, a vault name in the
// configured cloud, and Certificate) or a certificate configured at start
// (File, a name in Options.Files), or the developer's own identity
// (Forward).
type Target struct {
	Tenant, ClientID   string
	Vault, Certificate string
	File               string
	Forward            bool
}

// targetPath is the route path of t after /msi or /cloudshell/{secret},
// and the name of its identity (identityKey).
func (s *Server) targetPath(t Target) (path, id string, err error) {
	if t.Forward {
		if !s.cfg.AllowForward {
			return "", "", optionError("Target.Forward", "Target.Forward: forwarding is off; set Options.AllowForward (kvassert proxy --allow-forward)")
		}
		return "/forward", identityKey(targetForward, "", "", "", "", ""), nil
	}
	var errs fieldErrors
	checkTenant("Target.Tenant", t.Tenant, &errs)
	checkClientID("Target.ClientID", t.ClientID, &errs)
	var tail string
	switch {
	case t.File != "":
		if s.files.named[t.File] == nil {
			errs.add("Target.File", "no certificate of this name is configured")
		}
		tail = "/file/" + url.PathEscape(t.File)
		id = identityKey(targetFile, t.Tenant, t.ClientID, "", "", t.File)
	case t.Vault != "" || t.Certificate != "":
		checkVaultName("Target.Vault", t.Vault, &errs)
		checkCertificateName("Target.Certificate", t.Certificate, &errs)
		tail = "/kv/" + t.Vault + "/" + t.Certificate
		id = identityKey(targetKV, t.Tenant, t.ClientID, t.Vault, t.Certificate, "")
	default:
		errs.add("Target", "name a vault and certificate, a configured file, or Forward")
	}
	if err := errs.err(); err != nil {
		return "", "", err
	}
	return "/" + t.Tenant + "/" + t.ClientID + tail, id, nil
}

// AppServiceEnv returns the environment variables that make an app's
// ManagedIdentityCredential (any Azure SDK) use the App Service protocol
// route of t: IDENTITY_ENDPOINT and IDENTITY_HEADER, the secret of this
// identity alone (it opens no other identity, no forwarding, not the token
// API). baseURL is the proxy's base URL, e.g. "http://127.0.0.1:5616".
// Forward targets need Options.AllowForward.
func (s *Server) AppServiceEnv(baseURL string, t Target) ([]string, error) {
	p, id, err := s.targetPath(t)
	if err != nil {
		return nil, err
	}
	return []string{
		"IDENTITY_ENDPOINT=" + strings.TrimSuffix(baseURL, "/") + "/msi" + p,
		"IDENTITY_HEADER=" + s.identitySecret(appService, id),
	}, nil
}

// CloudShellEnv returns the environment variable that selects the Cloud
// Shell protocol route of t: MSI_ENDPOINT, whose path holds the secret of
// this identity on this protocol (the protocol has no secret header). Use it
// for SDKs or tools that do not speak the App Service protocol; unset
// IDENTITY_ENDPOINT, which takes precedence.
func (s *Server) CloudShellEnv(baseURL string, t Target) ([]string, error) {
	p, id, err := s.targetPath(t)
	if err != nil {
		return nil, err
	}
	return []string{"MSI_ENDPOINT=" + strings.TrimSuffix(baseURL, "/") + "/cloudshell/" + s.identitySecret(cloudShell, id) + p}, nil
}
