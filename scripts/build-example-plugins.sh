#!/usr/bin/env bash
# Builds the example plugins into target/plugins, with the commands their READMEs give:
#   target/plugins/release/libmpcflow_example_leaky_relu.so                         (native)
#   target/plugins/wasm32-unknown-unknown/release/mpcflow_example_{normalize,tiny_importer}.wasm
#   target/plugins/debug/libstale_plugin.so    (the test fixture built against a pretend sdk 0.2.0)
# The plugin tests and the plugin benchmark run it; cargo makes repeated runs cheap.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/ensure-wasm-target.sh
cargo="${CARGO:-cargo}"
dir=target/plugins
"$cargo" build --locked --release -p mpcflow-example-leaky-relu --target-dir "$dir"
"$cargo" build --locked --release --target wasm32-unknown-unknown \
  -p mpcflow-example-normalize -p mpcflow-example-tiny-importer --target-dir "$dir"
if [ "${1:-}" != "--examples-only" ]; then
  "$cargo" build --locked --manifest-path tests/plugins/stale/Cargo.toml --target-dir "$dir"
fi
