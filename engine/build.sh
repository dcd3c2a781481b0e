#!/usr/bin/env bash
# Rebuilds engine/valkeyrie_engine.wasm from the Rust source, reproducibly:
# Debian's rustc 1.63 (a rustup toolchain earlier on PATH is bypassed), fixed
# flags, no debug info, and source paths remapped so the build directory
# leaves no trace in the output.
#
#   bash engine/build.sh           rebuild the committed .wasm
#   bash engine/build.sh --check   rebuild into a temporary directory and fail
#                                if it differs from the committed file
#   bash engine/build.sh --test    also run the engine's native unit tests
set -euo pipefail
cd "$(dirname "$0")"
here="$PWD"
export RUSTC=/usr/bin/rustc
cargo=/usr/bin/cargo
target_dir="$here/target"
mode="${1:-}"
if [ "$mode" = "--check" ]; then
  target_dir="$(mktemp -d)"
  trap 'rm -rf "$target_dir"' EXIT
fi
export CARGO_TARGET_DIR="$target_dir"
export CARGO_INCREMENTAL=0
export SOURCE_DATE_EPOCH=0
export RUSTFLAGS="--remap-path-prefix=$here=/valkeyrie/wasm --remap-path-prefix=$target_dir=/valkeyrie/target --remap-path-prefix=${CARGO_HOME:-$HOME/.cargo}=/cargo -C debuginfo=0 -C strip=symbols -C target-feature=+bulk-memory,+mutable-globals,+nontrapping-fptoint"
if [ "$mode" = "--test" ]; then
  RUSTFLAGS="" "$cargo" test --release --quiet
fi
"$cargo" build --release --quiet --offline --locked --target wasm32-unknown-unknown
built="$target_dir/wasm32-unknown-unknown/release/valkeyrie_engine.wasm"
if [ "$mode" = "--check" ]; then
  if cmp -s "$built" valkeyrie_engine.wasm; then
    echo "engine/valkeyrie_engine.wasm is what the source builds to"
  else
    echo "engine/valkeyrie_engine.wasm differs from what the source builds to: run bash engine/build.sh and commit it" >&2
    exit 1
  fi
else
  cp "$built" valkeyrie_engine.wasm
  echo "built engine/valkeyrie_engine.wasm ($(wc -c <valkeyrie_engine.wasm) bytes)"
fi
