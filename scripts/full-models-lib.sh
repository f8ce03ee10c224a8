# Sourced by scripts/bench-full-models.sh (not run on its own).
#
# import_model BIN PY MODEL ONNX DIR [calibrated]: imports MODEL.onnx into DIR/model.yaml with
# its weights in DIR/weights (the server's) and seeded inputs in DIR/inputs (the client's),
# unless DIR holds an import newer than the file. BERT's second output (the pooled one) is left
# out. With `calibrated`, the import records every node's range from a plaintext run on a
# sample of 4 batches per input (DIR/samples, another seed; masks padding 5 to 40%): give such a
# DIR a name of its own.
import_model() {
    local bin=$1 py=$2 m=$3 onnx=$4 dir=$5 how=${6:-plain}
    local pick=() calibrate=()
    [ "$m" = bert ] && pick=(--output last_hidden_state)
    mkdir -p "$dir"
    if [ ! -f "$dir/model.yaml" ] || [ "$onnx" -nt "$dir/model.yaml" ]; then
        rm -rf "$dir/weights" "$dir/samples"
        if [ "$how" = calibrated ]; then
            "$py" "$(dirname "${BASH_SOURCE[0]}")/full_models.py" samples "$onnx" "$dir/samples" >/dev/null
            for f in "$dir"/samples/*.npy; do
                calibrate+=(--calibrate "$(basename "$f" .npy)=$f")
            done
        fi
        "$bin" import "$onnx" --owner server --input-owner client --reveal logits "${pick[@]}" "${calibrate[@]}" \
            -o "$dir/model.yaml" --weights "$dir/weights" >/dev/null
        "$py" "$(dirname "${BASH_SOURCE[0]}")/full_models.py" inputs "$onnx" "$dir/inputs" >/dev/null
    fi
}
