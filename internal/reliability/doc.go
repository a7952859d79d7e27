// Package reliability holds kvassert's fault, load, refresh-ahead, bad-input
// and secret-leak tests (in package reliability_test); the emulator set-ups
// they share with the comparison benchmarks are in internal/testfixture. Plain `go
// test` runs the short forms (the load for 2 s, under a minute with -race);
// KVASSERT_LONG=1 without -short runs the long forms (the load for 30 s, 100
// tenants through the refresh, a vault that always answers 429 with
// Retry-After).
package reliability
