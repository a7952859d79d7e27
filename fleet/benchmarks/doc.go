// Package fleet benchmarks the fleet on Redis with real OS processes: the
// benchmark binary starts the emulator and a redis-server, then re-executes
// itself as replica processes (internal/replica) that get tokens through the
// emulator. See BENCHMARKS.md ("Fleet on Redis") for the commands and the
// results.
package fleet
