#!/usr/bin/env bash
# The online phase alone of BERT-base and GPT-2 at full width (issue 17), by depth. At 12 layers
# their dealer material (37 and 49 GiB for the two parties) does not fit in this machine's
# memory, so the online phase alone (all material dealt first and held in memory, `run
# --deal-first`, what the papers report) is timed at 1 and 2 layers and extrapolated linearly:
# T(12) = T(1) + 11·(T(2) − T(1)). The end-to-end time is extrapolated the same way and printed
# beside the one measured at 12 layers by scripts/bench-full-models.sh, which checks the
# extrapolation.
#
# On the 2-core, 24 GiB development machine (medians of 5): BERT-base 1 and 2 layers end to end
# 3.70 and 5.11 s, online alone 2.76 and 4.84 s; GPT-2 13.32 and 14.04 s, online alone 12.55
# and 14.74 s. The end-to-end extrapolations (19.2 s and 21.3 s) miss the measured 12-layer
# times (19.1 s and 29.6-34.1 s) by up to a third, and the online phase alone is no faster
# than end to end there: with all material held in memory the parties' buffers fault in fresh
# pages (2.6 million page faults against 1.4 million streaming, at 2 layers of BERT; system
# time is 28% of the CPU time even streaming). So these are not online figures to quote; the
# script stays for a machine with the memory to time the online phase at full depth. On the
# 2-core Intel VM at 1306174 (medians of 3): BERT-base end to end 3.33 and 4.99 s, online alone
# 3.06 and 5.55 s; a deal-first run at 2 layers spent 9.1 s of CPU in the kernel (page faults)
# against 7.7 s in mpcflow.
#
#   scripts/bench-online-by-layers.sh [MODEL...]      (default: bert gpt2; REPEAT=3 runs each)
#
# Models come from scripts/make-full-models.sh --layers N (random weights, cached under
# target/full-models/full-layersN); uses target/release/mpcflow (MPCFLOW picks another binary).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
models=("$@")
[ ${#models[@]} -gt 0 ] || models=(bert gpt2)
bin=${MPCFLOW:-$ROOT/target/release/mpcflow}
[ -x "$bin" ] || cargo build --release --locked -p mpcflow
repeat=${REPEAT:-3}
py=$ROOT/target/models-venv/bin/python

source scripts/full-models-lib.sh

# median FIELD of REPEAT runs of: mpcflow run ARGS... --report FILE
median() {
    local field=$1 tmp
    shift
    tmp=$(mktemp -d)
    for i in $(seq "$repeat"); do
        "$bin" run "$@" --report "$tmp/r$i.json" --timeout 1200 >/dev/null
    done
    "$py" -c "import json,sys,statistics; print(statistics.median(json.load(open(f))[sys.argv[1]] for f in sys.argv[2:]))" \
        "$field" "$tmp"/r*.json
    rm -rf "$tmp"
}

for m in "${models[@]}"; do
    declare -A e2e=() online=()
    for layers in 1 2; do
        scripts/make-full-models.sh --layers "$layers" "$m" >/dev/null
        onnx=$ROOT/target/full-models/full-layers$layers/$m.onnx
        dir=$ROOT/target/full-models/run-layers$layers/$m
        import_model "$bin" "$py" "$m" "$onnx" "$dir"
        args=("$dir/model.yaml" --input-dir "$dir/inputs" --input-dir "$dir/weights")
        e2e[$layers]=$(median wall_s "${args[@]}")
        online[$layers]=$(median online_wall_s "${args[@]}" --deal-first)
        printf '%s, %d layer(s): end to end %.2f s, online alone %.2f s (medians of %d)\n' \
            "$m" "$layers" "${e2e[$layers]}" "${online[$layers]}" "$repeat"
    done
    "$py" -c "import sys; e1, e2, o1, o2 = map(float, sys.argv[1:]); \
print(f'$m, 12 layers extrapolated: end to end {e1 + 11 * (e2 - e1):.1f} s, online alone {o1 + 11 * (o2 - o1):.1f} s')" \
        "${e2e[1]}" "${e2e[2]}" "${online[1]}" "${online[2]}"
done
