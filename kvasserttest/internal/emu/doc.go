// Package emu holds what the Key Vault and Entra ID emulators share: the
// token authority that signs and verifies emulated access tokens, fault
// injection and per-operation counters, and a per-vault rate limiter.
package emu
