#!/usr/bin/env bash
# The checks every commit passes before its tests: formatting and clippy with warnings denied.
# Installs rustfmt and clippy through rustup when they are missing (a minimal toolchain).
set -euo pipefail
cd "$(dirname "$0")/.."
for component in rustfmt clippy; do
  tool=$component; [ "$component" = clippy ] && tool=cargo-clippy
  if ! command -v "$tool" >/dev/null 2>&1; then
    if command -v rustup >/dev/null 2>&1; then
      rustup component add "$component"
    else
      echo "lint.sh: $tool is missing and rustup is not here to add it" >&2
      exit 1
    fi
  fi
done
cargo fmt --all --check
cargo clippy --workspace --all-targets --locked -- -D warnings
