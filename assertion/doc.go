// Package assertion builds and inspects the client-assertion JWTs that
// Microsoft Entra ID accepts as certificate credentials (RFC 7521/7523).
//
// A Builder holds one certificate and a signer for its private key. The
// signer may be local (an *rsa.PrivateKey) or remote: a Key Vault or Managed
// HSM key whose private half never leaves the service. Build makes the header
// and claims, hashes them with SHA-256 and asks the signer for exactly one
// signature:
//
//	header: {"alg":"PS256","typ":"JWT","x5t#S256":"<b64url SHA-256 of the DER>"}
//	claims: {"aud":"<token endpoint>","iss":"<client id>","sub":"<client id>",
//	         "jti":"<random UUID>","nbf":now,"iat":now,"exp":now+10m}
//
// PS256 with x5t#S256 is the current Entra guidance and the default; RS256
// with the SHA-1 x5t is the older form (ADFS and older setups). Everything is
// base64url without padding. The package has no Azure dependencies.
package assertion
