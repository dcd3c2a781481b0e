#!/usr/bin/env bash
# Runs the project's Deno binary. deno.json's tasks call this instead of
# `deno`: `deno task` puts node_modules/.bin first on PATH and runs what it
# finds there as a JavaScript shim, but the npm `deno` package's entry there
# is the native binary itself.
exec "$(dirname "$0")/../node_modules/deno/deno" "$@"
