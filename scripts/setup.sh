#!/usr/bin/env bash
# Installs everything the whole test suite needs on a fresh Debian 12 machine
# (run as root, Node 20 present): the real servers, Java for ZooKeeper and
# DynamoDB Local, Rust 1.63 with the wasm32 std and its linker for the engine,
# openssl for TLS tests, and the npm packages (Deno, Bun, esbuild, the
# clients). It ends by running every tool once, and fails naming the one that
# is missing or broken, so a fresh machine fails here and not half-way
# through the suite.
set -euo pipefail
cd "$(dirname "$0")/.."

# Installed with --no-install-recommends, so every package whose program the
# suite runs is named here, also those Debian only recommends.
packages=(
  redis-server            # Redis 7.0, redis-cli, Sentinel (redis-server --sentinel)
  etcd-server etcd-client # etcd 3.4 and etcdctl
  zookeeper               # ZooKeeper 3.8 and zkCli.sh
  openjdk-17-jre-headless # ZooKeeper, DynamoDB Local
  rustc cargo libstd-rust-dev-wasm32 # the engine's reproducible build
  lld-14                  # /usr/bin/rust-lld, the wasm linker: libstd-rust-dev-wasm32 only recommends it
  openssl                 # certificates for the TLS tests
  procps                  # pkill, used to reap leftover servers
)
missing=()
for package in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "ok installed" ||
    missing+=("$package")
done
if ((${#missing[@]})); then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# Debian starts packaged servers as system services where it can; the tests
# start their own on free ports, so stop any that came up.
for service in redis-server etcd zookeeper; do
  (command -v service >/dev/null && service "$service" stop >/dev/null 2>&1) || true
done

# npm ci cannot be used: the registry here lacks the non-Linux builds of deno,
# so no lock file can list them and npm ci refuses it; npm install respects
# the lock file for everything it lists.
npm install --no-audit --no-fund

bash scripts/check_tools.sh
