#!/usr/bin/env bash
# Everything the `cuda` kernel needs measured on a machine with an NVIDIA GPU (Hopper: the PTX
# is compute_90), in one go:
#   1. the GPU against the CPU, bit for bit: DCF, DCF2, DPF, matmul, conv2d, packing;
#   2. the kernel benchmark: DCF2 evaluations per second and u64 GEMM throughput, GPU/CPU ratios
#      and the share of the GPU's copy bandwidth;
#   3. end to end under fss2pc, --kernel cpu then --kernel cuda in the same run: the digits CNN
#      (300 images, batched), a 1024³ fixed-point matmul and 1M ReLUs.
#
# With cargo and the crates at hand:   scripts/gpu-check.sh
# On a GPU machine that cannot build (no network): build here, copy the binaries, run there:
#   scripts/gpu-check.sh --build-only DIR     # puts the three programs in DIR
#   scripts/gpu-check.sh --prebuilt DIR       # on the GPU machine, from the repository root
# Needs only the NVIDIA driver there (no CUDA toolkit). Prints what it runs; stops at the first
# failure.
set -euo pipefail
cd "$(dirname "$0")/.."

mode=${1:-}
dir=${2:-}

test_binary() {
    cargo test --release --locked -p mpcflow --test gpu --no-run --message-format=json 2>/dev/null |
        python3 -c 'import json,sys
for l in sys.stdin:
    m = json.loads(l)
    if m.get("reason") == "compiler-artifact" and m.get("executable") and m["target"]["name"] == "gpu":
        print(m["executable"])'
}
bench_binary() {
    cargo bench --locked -p mpcflow --bench gpu --no-run --message-format=json 2>/dev/null |
        python3 -c 'import json,sys
for l in sys.stdin:
    m = json.loads(l)
    if m.get("reason") == "compiler-artifact" and m.get("executable") and m["target"]["name"] == "gpu":
        print(m["executable"])'
}

if [[ $mode == --build-only ]]; then
    [[ -n $dir ]] || { echo "usage: $0 --build-only DIR" >&2; exit 2; }
    mkdir -p "$dir"
    cargo build --release --locked -p mpcflow
    cp target/release/mpcflow "$dir/mpcflow"
    cp "$(test_binary)" "$dir/gpu-tests"
    cp "$(bench_binary)" "$dir/gpu-bench"
    ls -la "$dir"
    exit 0
fi

if [[ $mode == --prebuilt ]]; then
    [[ -n $dir ]] || { echo "usage: $0 --prebuilt DIR" >&2; exit 2; }
    mpcflow="$dir/mpcflow"; tests="$dir/gpu-tests"; bench="$dir/gpu-bench"
else
    cargo build --release --locked -p mpcflow
    mpcflow=target/release/mpcflow; tests=$(test_binary); bench=$(bench_binary)
fi

command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv
set -x
"$tests" --ignored --nocapture --test-threads 1
"$bench" --bench summary
for kernel in cpu cuda; do
    "$mpcflow" bench --protocol fss2pc --kernel "$kernel" --repeat 3 \
        onnx:tests/fixtures/onnx/digits_cnn.onnx:300 matmul:1024 relu:1000000
done
