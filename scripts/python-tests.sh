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
# torch (with onnx, for its exporter) for secure_inference: PyPI's wheel pulls the CUDA
# libraries (about 7 GB installed, a minute to install), so it lives in a venv of its own that
# later runs reuse, and the test venv sees it through a .pth file added after everything else
# is installed (so `pip install ./python` above still ran in an empty environment).
torch_venv=target/torch-venv
if ! "$torch_venv/bin/python" -c "import torch, onnx" >/dev/null 2>&1; then
    rm -rf "$torch_venv"
    python3 -m venv "$torch_venv"
    "$torch_venv/bin/python" -m pip --disable-pip-version-check --quiet --no-cache-dir install torch==2.9.1 onnx==1.22.0
fi
purelib() { "$1/bin/python" -c "import sysconfig; print(sysconfig.get_paths()['purelib'])"; }
purelib "$torch_venv" > "$(purelib "$venv")/mpcflow-tests-torch.pth"
export MPCFLOW_REQUIRE_TORCH=1
exec "$venv/bin/python" -m pytest -q python/tests "$@"
