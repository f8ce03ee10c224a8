#!/usr/bin/env bash
# The Python package's tests, as a user would meet the package: `pip install ./python` into a
# fresh virtual environment (target/python-venv, nothing installed beforehand; pip fetches
# maturin and NumPy from PyPI), then pytest (from PyPI too) on python/tests. `cargo test` runs
# this script (tests/it/python.rs) with MPCFLOW_BIN set to the command-line binary whose answers
# the tests compare with; extra arguments go to pytest.
#
# MPCFLOW_PY_PROFILE is the Cargo profile of the native module: `dev` by default, which shares
# the test build's compiled crates; `release` is what a plain `pip install ./python` builds.
set -euo pipefail
cd "$(dirname "$0")/.."
venv=target/python-venv
rm -rf "$venv"
if ! python3 -m venv "$venv" >/dev/null 2>&1; then
    # Debian and Ubuntu ship venv's pip bootstrap apart from python3.
    echo "python-tests.sh: python3 -m venv failed; installing python3-venv" >&2
    rm -rf "$venv"
    if [ "$(id -u)" = 0 ]; then
        apt-get install -y -q python3-venv >&2
    elif command -v sudo >/dev/null 2>&1; then
        sudo -n apt-get install -y -q python3-venv >&2
    else
        echo "python-tests.sh: cannot install python3-venv without root: install it, then rerun" >&2
        exit 1
    fi
    python3 -m venv "$venv"
fi
# --no-cache-dir: pip's wheel cache would keep a second copy of everything on disk.
pip=("$venv/bin/python" -m pip --disable-pip-version-check --quiet --no-cache-dir)
MATURIN_PEP517_ARGS="--profile ${MPCFLOW_PY_PROFILE:-dev}" "${pip[@]}" install ./python
# pytest for the tests, matplotlib for examples/python/hospitals.py, which a test runs, tqdm for
# the progress bar.
"${pip[@]}" install pytest matplotlib tqdm
# torch (with onnx, for its exporter) for secure_inference. PyPI's Linux wheel pulls the CUDA
# libraries (about 6.3 GB installed), so it lives in a venv of its own that later runs reuse, and
# the test venv sees it through a .pth file added after the package and its test tools are
# installed (so `pip install ./python` above still ran in an empty environment). It is installed one wheel at a
# time (--no-deps, the pins below are torch 2.9.1's own), so the disk never holds more than the
# venv plus one downloaded wheel (pip would otherwise download all 3.5 GB of wheels first), and
# without triton, torch's kernel compiler, which neither the exporter nor CPU inference loads.
# Where the disk cannot hold it (with room to spare for the tests running beside it: 9 GiB
# free for a 7.3 GB peak) the torch test is skipped, visibly (SKIPPED on stderr and in
# pytest's summary), like a GPU test on a machine without one; everything else still runs.
torch_venv=target/torch-venv
torch_wheels=(
    nvidia-cuda-runtime-cu12==12.8.90 nvidia-cuda-nvrtc-cu12==12.8.93 nvidia-cuda-cupti-cu12==12.8.90
    nvidia-cublas-cu12==12.8.4.1 nvidia-cudnn-cu12==9.10.2.21 nvidia-cufft-cu12==11.3.3.83
    nvidia-curand-cu12==10.3.9.90 nvidia-cusolver-cu12==11.7.3.90 nvidia-cusparse-cu12==12.5.8.93
    nvidia-cusparselt-cu12==0.7.1 nvidia-nccl-cu12==2.27.5 nvidia-nvshmem-cu12==3.3.20
    nvidia-nvtx-cu12==12.8.90 nvidia-nvjitlink-cu12==12.8.93 nvidia-cufile-cu12==1.13.1.3 torch==2.9.1
)
torch_need_gib=${MPCFLOW_TORCH_NEED_GIB:-9}
free_gib() { df -Pk "$1" | awk 'NR == 2 { print int($4 / 1048576) }'; }
export MPCFLOW_REQUIRE_TORCH=1
if ! "$torch_venv/bin/python" -c "import torch, onnx" >/dev/null 2>&1; then
    rm -rf "$torch_venv"
    if [ "$(free_gib target)" -lt "$torch_need_gib" ]; then
        export MPCFLOW_TORCH_SKIPPED="$(free_gib target) GiB free under target/, torch needs $torch_need_gib GiB"
        echo "SKIPPED: the torch test: $MPCFLOW_TORCH_SKIPPED" >&2
        MPCFLOW_REQUIRE_TORCH=0
    else
        python3 -m venv "$torch_venv"
        tpip=("$torch_venv/bin/python" -m pip --disable-pip-version-check --quiet --no-cache-dir)
        # pip's downloads go beside the venv, not to a /tmp that may be small.
        export TMPDIR="$PWD/target/pip-tmp"
        mkdir -p "$TMPDIR"
        "${tpip[@]}" install onnx==1.22.0 filelock "typing-extensions>=4.10.0" "sympy>=1.13.3" \
            "networkx>=2.5.1" jinja2 "fsspec>=0.8.5"
        for wheel in "${torch_wheels[@]}"; do
            "${tpip[@]}" install --no-deps "$wheel"
        done
        rm -rf "$TMPDIR"
        unset TMPDIR
    fi
fi
if [ "$MPCFLOW_REQUIRE_TORCH" = 1 ]; then
    purelib() { "$1/bin/python" -c "import sysconfig; print(sysconfig.get_paths()['purelib'])"; }
    purelib "$torch_venv" > "$(purelib "$venv")/mpcflow-tests-torch.pth"
    # The full-size models' libraries, for their scaled-down architectures (tests/
    # test_full_models.py): torchvision without its torch pin (torch is seen through the .pth),
    # transformers with its own small dependencies. The versions are those of
    # scripts/make-full-models.sh, which pairs them with torch 2.9.1.
    "${pip[@]}" install --no-deps torchvision==0.24.1
    "${pip[@]}" install pillow transformers==4.57.6
fi
exec "$venv/bin/python" -m pytest -q -rs python/tests "$@"
