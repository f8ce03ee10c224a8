#!/usr/bin/env bash
# Installs the rustup target the WASM plugin examples build for, if it is missing. Idempotent;
# setup.sh and the plugin tests (tests/it/plugins.rs) run it.
set -euo pipefail
target=wasm32-unknown-unknown
if rustc --print sysroot >/dev/null 2>&1 && [ -d "$(rustc --print sysroot)/lib/rustlib/$target" ]; then
  exit 0
fi
if ! command -v rustup >/dev/null 2>&1; then
  echo "ensure-wasm-target.sh: the $target standard library is missing and rustup is not installed;" >&2
  echo "install the target for your toolchain to build WASM plugins." >&2
  exit 1
fi
rustup target add "$target"
