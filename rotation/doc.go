// Package rotation registers renewed Key Vault certificates on the app
// registration and retires old ones, through Microsoft Graph's addKey and
// removeKey, with the proof of possession signed in Key Vault: a certificate
// can renew, be registered, take over and retire with no human step and no
// exportable key.
//
// Microsoft Graph lets an application roll its own keys without any admin
// permission: POST /applications/{object id}/addKey and /removeKey accept a
// proof, a JWT signed with the private key of one of the app's current,
// valid certificates (a Roller signs it in Key Vault). An app with no valid certificate left
// cannot use addKey, so rotation must happen while the old certificate is
// still valid.
//
// The one promise: a roll never leaves the app without a key Entra accepts,
// whatever the vault, Graph or a second roller do. To keep it, a roll
//   - identifies keys by certificate thumbprint, never by vault version, and
//     never removes a key whose thumbprint is the active version's, a newer
//     version's or a not-yet-valid version's; it probes the active version
//     before and after each removal and stops if Entra refuses it;
//   - treats its tags in the vault as hints bound to a thumbprint: the truth
//     is a probe (a token request signed with the version) and Graph's list
//     of keys; a version refused after the wait, or that Graph does not list,
//     is registered again;
//   - registers only RSA keys generated in the vault under a non-exportable
//     policy (imported or exportable keys only with RegisterImportedKeys),
//     and reports every version it skips;
//   - reads tags again before writing them, reports a key it added before
//     recording it, and ends every pass within PassTimeout with a report.
//
// Use: New(vaultURL, certificate, vaultCredential, Application{...}, opts)
// and call Roll from a cron job, or Run in one replica of a service; Status
// says per version what a roll does and why, and changes nothing. A roll's
// state lives in three tags on each version (see VersionStatus.Tags).
//
// Logging: every step is in the Report. The roll logs steps that need a
// person (Action "attention") and a failed roll in Run at Warn. Routine
// steps go to Options.Logger at Info when one is given, and otherwise to
// slog.Default() at Debug: by default the library writes nothing routine to
// a program's log.
package rotation
