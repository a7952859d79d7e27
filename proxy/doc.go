// Package proxy is kvassert's developer proxy (`kvassert proxy`): a loopback
// HTTP server that hands out app-only Entra ID tokens signed in Azure Key
// Vault to local tools, and emulates the managed identity endpoint so that
// an app written with any Azure SDK runs locally unchanged. It is the Go
// counterpart of the .NET proxy az-kv-proxy.
//
// Routes (the OpenAPI 3.1 document at /openapi.json describes each one):
//
//	POST /api/token/kv-certificate      {clientId, tenantId, scopes, keyVaultUri, certificateName}
//	POST /api/token/kv-key              {clientId, tenantId, scopes, keyUri, keyThumbprint}
//	POST /api/token/kv-key-info         {keyVaultUri, certificateName, skipCache}
//	POST /api/token/local-certificate   {clientId, tenantId, scopes, certFile, keyFile}
//	GET  /msi/{tenant}/{clientId}/kv/{vault}/{certificate}       App Service protocol
//	GET  /msi/{tenant}/{clientId}/file/{name}
//	GET  /msi/forward                                            with AllowForward only
//	POST /cloudshell/{secret}/{tenant}/{clientId}/kv/{vault}/{certificate}   Cloud Shell protocol
//	POST /cloudshell/{secret}/{tenant}/{clientId}/file/{name}
//	POST /cloudshell/{secret}/forward
//	GET  /openapi.json
//	GET  /api/config                     the page's defaults (Options.Default*) and start lines
//	GET  /healthz                        liveness: 200 "ok", no secret
//	GET  /                               web page (holds no data)
//
// Open the web page as BASE/#secret=SECRET (BASE the proxy's base URL,
// SECRET Server.Secret): its script reads the API secret from the
// fragment, which browsers never send to a server.
//
// Tokens come from one kvassert.Credential per (client ID, certificate),
// which serves every tenant ("*") and caches tokens per tenant and scope;
// Key Vault certificates are read once and shared by all routes.
//
// # Security
//
// The proxy hands out tokens, so it is locked down even though it is a
// development tool:
//
//   - It listens on loopback addresses only, unless Options.AllowRemote;
//     then it speaks TLS only, with a self-signed ECDSA P-256 certificate
//     made at start for the listen address (Server.Fingerprint,
//     Server.PublicKeyPin: clients pin it).
//   - Every request presents a secret, compared in constant time. The API
//     secret (Options.Secret, random by default) opens the token API,
//     /api/config and /openapi.json, as "Authorization: Bearer" or
//     X-Kvassert-Secret. Each emulated identity has a secret of its own
//     (Server.AppServiceEnv, Server.CloudShellEnv): X-IDENTITY-HEADER
//     (IDENTITY_HEADER) on its App Service route, the path segment after
//     /cloudshell/ (inside MSI_ENDPOINT) on its Cloud Shell route. A secret
//     opens only the route it was given for: not another identity, not the
//     token API, not forwarding. Only the page and its script and style
//     sheet, which hold no data, are served without one.
//   - Forwarding the developer's own credential (/msi/forward) is off
//     unless Options.AllowForward, and then has its own secret.
//   - Options.SharedCache serves only the configured source
//     (Options.DefaultVault's DefaultCertificate): a source a request picks never
//     gets a token another credential stored.
//   - Problems are worded by the proxy from typed errors; no text of a
//     token response, a vault answer or a panic reaches them. A panicking
//     credential or source costs its request a 500, not the process.
//   - The Host header must be 127.0.0.1, [::1] or localhost (any loopback or,
//     with AllowRemote, any IP literal, but never another name): a DNS
//     rebinding attack cannot reach it.
//   - Cross-site browser requests (Sec-Fetch-Site other than same-origin or
//     none, or an Origin other than the proxy's) are refused; no CORS
//     headers are ever sent.
//   - Request bodies are capped at 64 KiB; JSON members must be exactly the
//     documented ones.
//   - The local-certificate route reads only certificates configured at
//     start (Options.Files) or regular files under Options.FileRoot, through
//     os.Root so that neither ".." nor symbolic links can leave it.
//   - Logs carry one line per request (route pattern, tenant, client ID,
//     status, duration), never a token, an assertion, a secret or a path.
package proxy
