#!/usr/bin/env bash
# The whole test suite: static checks, then every test file under Deno, Bun
# and Node 20 (on the npm build), each backend against its real server
# started by the tests themselves on loopback.
#
# Usage: scripts/test_all.sh [deno|bun|node|static ...]   (default: all)
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/node_modules/.bin:$PATH"
# This run's servers leave their pid files here, so the reaper at the end
# kills exactly them, not another run's.
VALKEYRIE_SERVICES_DIR="$(mktemp -d "${TMPDIR:-/tmp}/valkeyrie-services-run.XXXXXX")"
export VALKEYRIE_SERVICES_DIR
trap 'bash scripts/stop_services.sh; rm -rf "$VALKEYRIE_SERVICES_DIR"' EXIT

# Test files run in parallel: they mostly wait on servers and timers, and
# each starts its own servers on free ports.
jobs="${TEST_JOBS:-4}"

# Each phase runs under a budget. A test that never ends (a hook waiting on a
# dead server, a process that does not exit) must fail the run, naming what
# was still running, instead of holding CI past its limit. Unloaded on
# 2 cores a runtime's phase takes 5-7 min; the budget is about four times that.
budget="${TEST_PHASE_BUDGET:-1500}"

# Runs "$@" with its output teed to $log, killing it after $budget s. On a
# timeout prints what was still running and which test files had reported
# nothing, then exits 1.
bounded() {
  local status
  set +e
  timeout --signal=TERM --kill-after=30 "$budget" "$@" 2>&1 | tee "$log"
  status=${PIPESTATUS[0]}
  set -e
  if [ "$status" -eq 124 ] || [ "$status" -eq 137 ]; then
    section "$step ran over its budget of ${budget}s and was stopped"
    echo "test files that printed nothing:"
    for f in $(find tests -name "*_test.ts" | sort); do
      grep -q "${f#tests/}" "$log" || echo "  $f"
    done
    echo "the last lines before the stop:"
    tail -n 30 "$log"
    echo "processes still running:"
    ps -eo pid,etimes,args --forest | grep -v -e "ps -eo" -e "\[" | cut -c1-200 | tail -n 60
    return 1
  fi
  return "$status"
}

steps=("$@")
[ ${#steps[@]} -gt 0 ] || steps=(static deno bun node)
started=$SECONDS
section() { printf '\n=== %s (at %ss)\n' "$1" $((SECONDS - started)); }

entry_points() { node -e 'for (const f of Object.values(require("./jsr.json").exports)) console.log(f)'; }

for step in "${steps[@]}"; do
  case "$step" in
  static)
    section "the npm build (Node children of the multi-process tests run it too)"
    node scripts/build_npm.mjs
    section "deno fmt, lint, check, doc lint, publish dry run"
    deno fmt --check
    deno lint
    deno check mod.ts core/ backends/ adapters/ leadership/ coordination/ otel/ cli/ examples/ testing/ tests/ bench/ scripts/
    # shellcheck disable=SC2046
    deno doc --lint $(entry_points)
    deno publish --dry-run --allow-dirty --quiet
    section "options interfaces and docs tables match the settings schemas"
    deno run --allow-read --allow-write=/dev/null --allow-run --allow-env scripts/settings.ts --check
    if [ -x engine/build.sh ]; then
      section "the committed engine .wasm is what the source builds to"
      bash engine/build.sh --check
    fi
    ;;
  deno)
    section "deno test"
    log="$VALKEYRIE_SERVICES_DIR/deno.log"
    DENO_JOBS="$jobs" bounded deno test -A --parallel tests/
    ;;
  bun)
    section "bun test"
    # Bun prints a failure's error above its "(fail)" line, far up a long
    # log: on failure, print each again at the end, where a CI tail shows.
    log="$VALKEYRIE_SERVICES_DIR/bun.log"
    if ! bounded bun test --timeout 300000 --parallel="$jobs" tests/; then
      section "bun test failures, with the output before each"
      awk '/^\(pass\)|^tests\/.*:$/ { n = 0; next }
           { block[n++ % 40] = $0 }
           /^\(fail\)/ { for (i = (n > 40 ? n - 40 : 0); i < n; i++) print block[i % 40]; print "---"; n = 0 }' "$log" | head -400
      exit 1
    fi
    ;;
  node)
    section "node --test on the npm build"
    node scripts/build_npm.mjs
    node scripts/build_node_tests.mjs
    # The TAP output gives a failure's details inline; repeat them at the end.
    log="$VALKEYRIE_SERVICES_DIR/node.log"
    if ! bounded node --test --test-concurrency="$jobs" dist-test/; then
      section "node --test failures"
      awk '/^ *not ok / { on = 1 } on { print } on && /^ *\.\.\.$/ { on = 0; print "---" }' "$log" |
        grep -v "subtestsFailed" | head -400
      exit 1
    fi
    section "the npm tarball in an empty Node project"
    node scripts/check_npm_package.mjs
    ;;
  *)
    echo "unknown step $step (static, deno, bun, node)" >&2
    exit 2
    ;;
  esac
done
section "all passed"
