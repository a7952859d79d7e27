// Package rotation registers renewed Key Vault certificates on the app
// registration and retires old ones, through Microsoft Graph's addKey and
// removeKey, with the proof of possession signed in Key Vault: a certificate
// can renew, be registered, take over and retire with no human step and no
// exportable key.
//
// Microsoft Graph lets an application roll its own keys without any admin
// permission: POST /applications/{object id}/addKey and /removeKey accept a
// proof, a JWT signed with the private key of one of the app's current,
// valid certificates (Proof builds it). An app with no valid certificate left
// cannot use addKey, so rotation must happen while the old certificate is
// still valid.
package rotation
