#!/usr/bin/env bash
# Writes graphs/digits_inference.yaml, graphs/digits_accuracy.yaml and the model owner's weights
# in graphs/data/digits_cnn.weights/ from the digits CNN fixture, with `mpcflow import`.
# (The model itself is made by tests/fixtures/onnx/make_fixtures.sh.)
set -euo pipefail
cd "$(dirname "$0")/../.."
MODEL=tests/fixtures/onnx/digits_cnn.onnx
if [[ -n "${MPCFLOW_BIN:-}" ]]; then
    run() { "$MPCFLOW_BIN" "$@"; }
else
    run() { cargo run -q --release -- "$@"; }
fi
run import "$MODEL" --owner clinic --input-owner patient -o graphs/digits_inference.yaml \
    --weights graphs/data/digits_cnn.weights --sample-input tests/fixtures/onnx/digits_sample_image.npy
run import "$MODEL" --owner clinic --input-owner lab --reveal accuracy --batch 300 -o graphs/digits_accuracy.yaml \
    --weights graphs/data/digits_cnn.weights --sample-input tests/fixtures/onnx/digits_test_images.npy \
    --sample-labels tests/fixtures/onnx/digits_test_labels.npy
