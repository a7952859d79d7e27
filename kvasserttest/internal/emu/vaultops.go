package emu

// More operations of the Key Vault emulator (beyond those in faults.go).
const (
	OpKeyUpdate          Op = "keys/update"          // PATCH /keys/{n}/{v}
	OpCertificateDelete  Op = "certificates/delete"  // DELETE /certificates/{n}, pending and deleted certificates
	OpCertificateMerge   Op = "certificates/merge"   // POST /certificates/{n}/pending/merge
	OpCertificateDeleted Op = "certificates/deleted" // GET /deletedcertificates/{n}
)
