#!/usr/bin/env bash
# Generates the benchmark models into target/bench-models (not committed, regenerated on demand):
# the transformer block of tests/fixtures/onnx/make_transformer.py at the size issue 16 measures
# (sequence 32, width 128, 2 heads, FFN 512, GELU). Installs numpy and onnx into
# target/fixture-venv, so nothing is installed by hand. Then for example:
#   mpcflow bench onnx:target/bench-models/transformer_32x128x2x512.onnx
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
VENV="$ROOT/target/fixture-venv"
OUT="$ROOT/target/bench-models"
mkdir -p "$OUT"
[[ -x "$VENV/bin/python" ]] || python3 -m venv "$VENV"
"$VENV/bin/pip" install -q numpy onnx==1.22.0
"$VENV/bin/python" "$ROOT/tests/fixtures/onnx/make_transformer.py" --size 32,128,2,512 --out "$OUT"
ls -l "$OUT"
