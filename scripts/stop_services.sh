#!/usr/bin/env bash
# Kills every server the tests started and left behind (a crashed test run):
# each one wrote a pid file, and runs in its own process group.
dir="${VALKEYRIE_SERVICES_DIR:-${TMPDIR:-/tmp}/valkeyrie-services}"
[ -d "$dir" ] || exit 0
for file in "$dir"/*.pid; do
  [ -e "$file" ] || continue
  pid=$(cat "$file")
  kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
  rm -f "$file"
done
