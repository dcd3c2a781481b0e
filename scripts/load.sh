#!/usr/bin/env bash
# Runs a command (default: the whole suite, scripts/test_all.sh) while two
# busy processes keep both cores loaded, as a shared CI machine is: tests
# that guess at wall-clock bounds fail here first.
#
# Usage: scripts/load.sh [COMMAND ARGS...]   (default: bash scripts/test_all.sh)
#        LOAD_PROCESSES=N changes the number of busy processes (default 2).
set -euo pipefail
cd "$(dirname "$0")/.."
count="${LOAD_PROCESSES:-2}"
busy=()
stop() { ((${#busy[@]})) && kill "${busy[@]}" 2>/dev/null; wait 2>/dev/null || true; }
trap stop EXIT
for _ in $(seq "$count"); do
  # A plain shell loop: one process, one core, no I/O; nice 0 like the tests.
  sh -c 'while :; do :; done' &
  busy+=("$!")
done
echo "load.sh: ${count} busy processes (${busy[*]}) while running: ${*:-bash scripts/test_all.sh}"
started=$SECONDS
status=0
if (($#)); then "$@" || status=$?; else bash scripts/test_all.sh || status=$?; fi
echo "load.sh: finished with status ${status} after $((SECONDS - started)) s"
exit "$status"
