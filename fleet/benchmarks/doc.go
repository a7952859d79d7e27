// Package fleet benchmarks the fleet on Redis with real OS processes: the
// benchmark binary starts the emulator and a redis-server, then re-executes
// itself as replica processes (fleet/internal/replica) that get tokens
// through the emulator. It is in the fleet module, next to the replica it
// runs. See BENCHMARKS.md ("Fleet on Redis") for the commands and the
// results.
package fleet
