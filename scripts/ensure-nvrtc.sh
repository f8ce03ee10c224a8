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
    mkdir -p "$DEST/wheel"
    if ! python3 -m pip download --quiet --no-deps --only-binary=:all: \
        --dest "$DEST/wheel" "nvidia-cuda-nvrtc-cu12==$VERSION" >&2; then
        # No pip here: fetch the wheel for this platform from PyPI's JSON API, checking its SHA-256.
        echo "ensure-nvrtc.sh: pip unavailable, downloading the wheel directly" >&2
        python3 - "$DEST/wheel" "$VERSION" <<'PY'
import hashlib, json, platform, sys, urllib.parse, urllib.request
dest, version = sys.argv[1], sys.argv[2]
index = "https://pypi.org/pypi/nvidia-cuda-nvrtc-cu12/json"
meta = json.load(urllib.request.urlopen(index))
arch = platform.machine()
files = [f for f in meta["releases"].get(version, []) if f["filename"].endswith(".whl") and "manylinux" in f["filename"] and arch in f["filename"]]
if not files:
    sys.exit(f"ensure-nvrtc.sh: no manylinux {arch} wheel of nvidia-cuda-nvrtc-cu12 {version}")
f = files[0]
# Mirrors may answer with URLs relative to the index.
data = urllib.request.urlopen(urllib.parse.urljoin(index, f["url"])).read()
if hashlib.sha256(data).hexdigest() != f["digests"]["sha256"]:
    sys.exit("ensure-nvrtc.sh: the downloaded wheel does not match PyPI's SHA-256")
open(f"{dest}/{f['filename']}", "wb").write(data)
PY
    fi
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
