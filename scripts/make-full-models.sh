#!/usr/bin/env bash
# Exports full-size models with RANDOM weights (built from their libraries' own constructors;
# nothing is downloaded from a model hub) to target/full-models/{small,full}/NAME.onnx, via
# tests/fixtures/onnx/make_full_models.py: torchvision resnet50, transformers BertModel and
# GPT2LMHeadModel (configs written in code) and a 3-D UNet written with torch.nn.
#
# Usage: scripts/make-full-models.sh [--small] [--full] [--layers N] [--force] [NAME...]
#   --small / --full pick the size (default: --small; both may be given), NAME is one or more of
#   resnet50 bert gpt2 unet3d (default: all); --layers N: bert and gpt2 at full width with N
#   layers, into target/full-models/full-layersN. Models already written are skipped unless --force.
#   The result of every export (OK, size, or why it failed) goes to
#   target/full-models/{small,full}/NAME.log.
#
# torch comes from target/torch-venv (as scripts/python-tests.sh makes it: torch 2.9.1 + onnx);
# target/models-venv sees it through a .pth file and adds torchvision and transformers, pinned to
# versions that match torch 2.9.1.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
TORCH_VENV="$ROOT/target/torch-venv"
VENV="$ROOT/target/models-venv"
TORCHVISION_VERSION=0.24.1    # the torchvision release paired with torch 2.9.1
TRANSFORMERS_VERSION=4.57.6   # last 4.x: its models still trace with the TorchScript exporter
pip_opts=(--disable-pip-version-check --quiet --no-cache-dir)

if ! "$TORCH_VENV/bin/python" -c "import torch, onnx" >/dev/null 2>&1; then
    rm -rf "$TORCH_VENV"
    python3 -m venv "$TORCH_VENV"
    "$TORCH_VENV/bin/python" -m pip "${pip_opts[@]}" install torch==2.9.1 onnx==1.22.0
fi
purelib() { "$1/bin/python" -c "import sysconfig; print(sysconfig.get_paths()['purelib'])"; }
if ! "$VENV/bin/python" -c "import torch, onnx, torchvision, transformers" >/dev/null 2>&1; then
    [[ -x "$VENV/bin/python" ]] || python3 -m venv "$VENV"
    # The .pth goes in first, so pip sees torch as installed and does not fetch a second copy.
    purelib "$TORCH_VENV" > "$(purelib "$VENV")/mpcflow-models-torch.pth"
    "$VENV/bin/python" -m pip "${pip_opts[@]}" install \
        "torchvision==$TORCHVISION_VERSION" "transformers==$TRANSFORMERS_VERSION"
fi
exec "$VENV/bin/python" "$ROOT/tests/fixtures/onnx/make_full_models.py" --out "$ROOT/target/full-models" "$@"
