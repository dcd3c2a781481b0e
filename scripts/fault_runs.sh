#!/usr/bin/env bash
# The long fault matrix, outside CI: every recorded workload of
# tests/faults/backends_test.ts with FAULT_SCALE times its operations (default
# 20: 8,000–16,000 operations a run, a fault every 500 of them; a network
# backend's run goes on for at least FAULT_MIN_SECONDS, default 30), checked
# for linearizability, then one summary line per run. CI runs the same file at
# scale 1 (about 2 minutes); this takes 20–40 minutes on 2 cores.
#
#   bash scripts/fault_runs.sh             # scale 20, Deno
#   FAULT_SCALE=5 bash scripts/fault_runs.sh
#   bash scripts/fault_runs.sh bun         # the same under Bun
#
# The log is kept in .tmp/fault_runs-<time>.log; the exit code is the
# test run's.
set -uo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/node_modules/.bin:$PATH"
export FAULT_SCALE="${FAULT_SCALE:-20}"
# Each network backend's run goes on (in more segments) for at least this.
export FAULT_MIN_SECONDS="${FAULT_MIN_SECONDS:-30}"
runtime="${1:-deno}"
mkdir -p .tmp
log=".tmp/fault_runs-$(date +%Y%m%d-%H%M%S).log"
echo "fault runs: scale $FAULT_SCALE, at least $FAULT_MIN_SECONDS s a run, under $runtime; log $log"
start=$(date +%s)
case "$runtime" in
  deno) deno test -A --no-check tests/faults/backends_test.ts ;;
  bun) bun test --timeout 3600000 tests/faults/backends_test.ts ;;
  *)
    echo "usage: $0 [deno|bun]" >&2
    exit 2
    ;;
esac >"$log" 2>&1
status=$?
echo
echo "run: operations (ok / failed / unknown), key partitions, checker"
grep -aE '^[^ ].*: [0-9]+ ops \(' "$log" | sed 's/^/  /'
grep -aE 'not linearizable|FAILED|^\(fail\)' "$log" | head -20
echo "exit $status after $(($(date +%s) - start)) s"
exit $status
