#!/usr/bin/env bash
# Makes NVIDIA's runtime compiler (NVRTC) available without a CUDA toolkit: downloads the
# `nvidia-cuda-nvrtc-cu12` wheel from PyPI into target/nvrtc/ (once) and unpacks it there.
# Prints the directory that holds libnvrtc.so.12 on its last line.
#
# The kernel-cuda tests use it to compile the CUDA sources to PTX on machines with no GPU, so a
# kernel that does not compile fails CI. Nothing is installed system-wide.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
VERSION=12.8.93
DEST="$ROOT/target/nvrtc/$VERSION"
LIB="$DEST/nvidia/cuda_nvrtc/lib"
if [[ ! -e "$LIB/libnvrtc.so.12" ]]; then
    mkdir -p "$DEST"
    python3 -m pip download --quiet --no-deps --only-binary=:all: \
        --dest "$DEST/wheel" "nvidia-cuda-nvrtc-cu12==$VERSION" >&2
    python3 - "$DEST" <<'PY'
import glob, sys, zipfile
dest = sys.argv[1]
(wheel,) = glob.glob(dest + "/wheel/*.whl")
with zipfile.ZipFile(wheel) as z:
    z.extractall(dest)
PY
    rm -rf "$DEST/wheel"
fi
echo "$LIB"
