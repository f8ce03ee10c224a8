#!/usr/bin/env bash
# Prepares a fresh machine for mpcflow: checks the toolchain and builds the release binary.
# Everything the tests need comes from crates.io through cargo, plus the wasm32-unknown-unknown
# target (scripts/ensure-wasm-target.sh, which the plugin tests also run) and NVRTC from PyPI
# (scripts/ensure-nvrtc.sh, which the CUDA compile test also runs); fixtures are committed
# with the scripts that made them (graphs/data/make_hospital_data.py).
set -euo pipefail
cd "$(dirname "$0")"

need_minor=95
if ! command -v cargo >/dev/null 2>&1; then
  echo "setup.sh: cargo not found. Install Rust 1.${need_minor} or newer (https://rustup.rs), then rerun." >&2
  exit 1
fi
minor=$(rustc --version | sed -E 's/^rustc 1\.([0-9]+).*/\1/')
if [ "${minor:-0}" -lt "$need_minor" ]; then
  echo "setup.sh: rustc $(rustc --version) is too old; mpcflow needs 1.${need_minor} or newer." >&2
  exit 1
fi
for tool in rustfmt clippy-driver; do
  command -v "$tool" >/dev/null 2>&1 || echo "setup.sh: note: $tool is missing (needed only to lint: rustup component add ${tool%-driver})" >&2
done
# WASM plugins (examples/wasm-*) build for wasm32-unknown-unknown; the plugin tests need it too.
scripts/ensure-wasm-target.sh
# The CUDA kernels' compile check (a test) uses NVIDIA's runtime compiler from a PyPI wheel
# (python3 with pip); fetched once into target/nvrtc. No GPU or CUDA toolkit is needed.
scripts/ensure-nvrtc.sh >/dev/null
cargo build --release --locked -p mpcflow
echo "setup.sh: ready. Try: cargo run --release -- run graphs/millionaires.yaml --input alice_wealth=5000000 --input bob_wealth=3000000"
