// Command kvassert gets app-only Microsoft Entra ID access tokens for a
// multi-tenant app whose certificate key never leaves Azure Key Vault, and
// helps set that certificate up: create, show, export and audit it, decode
// and check client assertions, and run the Key Vault and Entra ID emulators
// (demo, emulate).
//
// Run "kvassert --help" for the commands, or "kvassert demo" for a tour that
// needs no Azure subscription.
//
// Exit codes: 0 success, 1 the service refused or a check fell short
// (problems found by decode and cert audit), 2 usage error (bad, missing or
// conflicting flags and values, before any network call), 3 a service could
// not be reached (dial, DNS, TLS, timeout), 130 interrupted.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr, os.Getenv)
	stop()
	os.Exit(code)
}
