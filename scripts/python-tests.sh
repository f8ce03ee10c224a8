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
pip=("$venv/bin/python" -m pip --disable-pip-version-check --quiet)
MATURIN_PEP517_ARGS="--profile ${MPCFLOW_PY_PROFILE:-dev}" "${pip[@]}" install ./python
# pytest for the tests, matplotlib for examples/python/hospitals.py, which a test runs.
"${pip[@]}" install pytest matplotlib
exec "$venv/bin/python" -m pytest -q python/tests "$@"
