#!/usr/bin/env bash
# Full-size models under fss2pc on this machine (issue 17): for each model, end to end in one
# process and as three processes over TLS on loopback (two parties and the dealer), and the
# online phase alone (`run --deal-first`: the material dealt ahead, in phases of at most half the
# available memory, since no model's fits), the wall time, peak memory, online bytes, rounds and
# material, and the output's largest error and argmax agreement against `ref` and against
# onnxruntime's float32 inference of the same file on the same inputs.
#
#   scripts/bench-full-models.sh [MODEL...]      (default: resnet50 bert gpt2 unet3d)
#   CALIBRATE=1 scripts/bench-full-models.sh bert  (ranges calibrated on a sample: `import
#                                                   --calibrate`, into run/MODEL-calibrated)
#
# Models come from scripts/make-full-models.sh --full (random weights, cached under
# target/full-models/full); each is imported once into target/full-models/run/MODEL. Needs about
# 7 GB of memory per model end to end, half the available memory for the online-only run, and no
# disk beyond the imports (the material is never written).
# onnxruntime (CPU wheel from PyPI) is added to target/models-venv for the plaintext reference.
# Uses target/release/mpcflow (built if missing; MPCFLOW picks another binary).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
models=("$@")
[ ${#models[@]} -gt 0 ] || models=(resnet50 bert gpt2 unet3d)
bin=${MPCFLOW:-$ROOT/target/release/mpcflow}
[ -x "$bin" ] || cargo build --release --locked -p mpcflow
scripts/make-full-models.sh --full "${models[@]}" >/dev/null
py=$ROOT/target/models-venv/bin/python
"$py" -c "import onnxruntime" 2>/dev/null ||
    "$py" -m pip --disable-pip-version-check --quiet --no-cache-dir install onnxruntime==1.23.2

source scripts/full-models-lib.sh
peak() { awk '/Maximum resident/ { printf "%.2f GiB", $NF / 1048576 }' "$1"; }
field() { "$py" -c "import json,sys; r=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))" "$@"; }

for m in "${models[@]}"; do
    onnx=$ROOT/target/full-models/full/$m.onnx
    dir=$ROOT/target/full-models/run/$m how=plain
    [ "${CALIBRATE:-0}" = 1 ] && dir=$dir-calibrated how=calibrated
    import_model "$bin" "$py" "$m" "$onnx" "$dir" "$how"
    ins=(--input-dir "$dir/inputs")
    out=$(grep -m1 -o '^  [A-Za-z0-9_]*: { reveal_to' "$dir/model.yaml" | awk '{print $1}' | tr -d ':')
    echo "== $m ($(du -sh "$onnx" | cut -f1) ONNX$([ "$how" = calibrated ] && echo ', ranges calibrated'))"
    "$bin" plan "$dir/model.yaml" 2>/dev/null | grep -E '^TOTAL|online latency|expected peak' | sed 's/^/   plan: /'

    rm -rf "$dir/ref" "$dir/one" "$dir/online" "$dir/three"
    "$bin" run "$dir/model.yaml" --protocol ref "${ins[@]}" --input-dir "$dir/weights" --output-dir "$dir/ref" \
        --timeout 1200 >/dev/null 2>"$dir/ref.log" || { tail -5 "$dir/ref.log" >&2; exit 1; }
    /usr/bin/time -v "$bin" run "$dir/model.yaml" "${ins[@]}" --input-dir "$dir/weights" --output-dir "$dir/one" \
        --report "$dir/one.json" --timeout 1200 >/dev/null 2>"$dir/one.time"
    echo "   one process:     $(field "$dir/one.json" "round(r['wall_s'], 1)") s, peak $(peak "$dir/one.time"), online bytes $(field "$dir/one.json" "r['totals']['bytes_sent']"), material $(field "$dir/one.json" "[round(b / 2**30, 2) for b in r['totals']['dealer_bytes']]") GiB, rounds $(field "$dir/one.json" "r['totals']['critical_rounds']") on the critical path"
    /usr/bin/time -v "$bin" run "$dir/model.yaml" "${ins[@]}" --input-dir "$dir/weights" --output-dir "$dir/online" \
        --deal-first --report "$dir/online.json" --timeout 1200 >/dev/null 2>"$dir/online.time"
    same=no
    cmp -s "$dir/one/$out.npy" "$dir/online/$out.npy" && same=yes
    echo "   online alone:    $(field "$dir/online.json" "round(r['online_wall_s'], 1)") s (material dealt first in $(field "$dir/online.json" "r['online_phases']") phases; the run $(field "$dir/online.json" "round(r['wall_s'], 1)") s), peak $(peak "$dir/online.time"), output bit for bit as end to end: $same"

    certs=$dir/certs
    rm -rf "$certs"
    base=$((27000 + RANDOM % 5000))
    "$bin" certs new "$certs" --parties client,server,dealer --base-port "$base" --deployment "$certs/deploy.yaml" >/dev/null 2>&1
    t0=$(date +%s.%N)
    /usr/bin/time -v "$bin" dealer --deployment "$certs/deploy.yaml" "$dir/model.yaml" --timeout 1200 >/dev/null 2>"$dir/dealer.time" &
    d=$!
    /usr/bin/time -v "$bin" party --as server --deployment "$certs/deploy.yaml" "$dir/model.yaml" --input-dir "$dir/weights" \
        --timeout 1200 >/dev/null 2>"$dir/server.time" &
    s=$!
    /usr/bin/time -v "$bin" party --as client --deployment "$certs/deploy.yaml" "$dir/model.yaml" "${ins[@]}" \
        --output-dir "$dir/three" --timeout 1200 >/dev/null 2>"$dir/client.time"
    wait "$s" || { tail -3 "$dir/server.time" >&2; exit 1; }
    wait "$d" || { tail -3 "$dir/dealer.time" >&2; exit 1; }
    t=$(echo "$(date +%s.%N) - $t0" | bc)
    echo "   three processes: $(printf '%.1f' "$t") s, peak client $(peak "$dir/client.time"), server $(peak "$dir/server.time"), dealer $(peak "$dir/dealer.time")"
    "$py" scripts/full_models.py compare "$onnx" "$dir/inputs" "$dir/ref/$out.npy" "$dir/one/$out.npy" | sed 's/^/   /'
    "$py" scripts/full_models.py compare "$onnx" "$dir/inputs" "$dir/ref/$out.npy" "$dir/three/$out.npy" ref-only | sed 's/^/   three processes /'
done
