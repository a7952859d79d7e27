#!/usr/bin/env bash
# Runs the comparison benchmarks exactly as BENCHMARKS.md reports them and
# writes raw output to benchmarks/results/, then benchstat tables
# (go install golang.org/x/perf/cmd/benchstat@latest). Waits (up to
# MAX_WAIT seconds, default 1800) for the 1-minute load average to drop
# below 1.0 before each run and records the load it started at.
set -euo pipefail
cd "$(dirname "$0")/.."
out=benchmarks/results
mkdir -p "$out"
max_wait="${MAX_WAIT:-1800}"

quiet() {
  local waited=0
  while awk '{exit !($1 >= 1.0)}' /proc/loadavg && [ "$waited" -lt "$max_wait" ]; do
    sleep 15; waited=$((waited + 15))
  done
  echo "# load at start: $(cut -d' ' -f1-3 /proc/loadavg) (waited ${waited}s)"
}

run() { # name, then the go test arguments
  local name=$1; shift
  { echo "# $(date -u +%FT%TZ) go test $*"; quiet; go test "$@"; } 2>&1 | tee "$out/$name.txt"
}

{
  echo "date: $(date -u +%FT%TZ)"
  echo "go: $(go version)"
  echo "nproc: $(nproc)"
  echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //')"
  echo "mem: $(free -g | awk '/Mem:/ {print $2 " GiB"}')"
} | tee "$out/machine.txt"

run assertion   -run '^$' -bench 'NoSign' -benchmem -count 8 ./assertion
run cold        -run '^$' -bench 'BenchmarkColdToken' -benchtime 20x -count 6 ./benchmarks
run cached      -run '^$' -bench 'BenchmarkCachedGetToken' -benchmem -count 6 -timeout 60m ./benchmarks
run many        -run '^$' -bench 'BenchmarkManyTenantsCold|BenchmarkMemoryPerTenant' -benchtime 1x -count 1 -timeout 60m ./benchmarks
run churn       -run '^$' -bench 'BenchmarkTenantChurn' -benchtime 1x -count 1 -v -timeout 60m ./benchmarks
run refresh     -run 'TestRefreshAhead' -count 3 -v ./internal/reliability

if command -v benchstat >/dev/null 2>&1 || [ -x "$(go env GOPATH)/bin/benchstat" ]; then
  bs=$(command -v benchstat || echo "$(go env GOPATH)/bin/benchstat")
  for n in assertion cold cached many; do
    (cd "$out" && "$bs" "$n.txt" > "$n.benchstat.txt") || true
  done
fi
