package emu

// Key wrapping operations of the Key Vault emulator.
const (
	OpKeyWrap   Op = "keys/wrapKey"   // POST /keys/{n}[/{v}]/wrapkey
	OpKeyUnwrap Op = "keys/unwrapKey" // POST /keys/{n}[/{v}]/unwrapkey
)
