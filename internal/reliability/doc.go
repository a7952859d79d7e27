// Package reliability holds kvassert's fault, load, refresh-ahead, bad-input
// and secret-leak tests (in package reliability_test) and, in fixture, the
// emulator set-ups they share with the comparison benchmarks. `go test
// -short` runs the short forms; without -short the load and fault runs are
// longer.
package reliability
