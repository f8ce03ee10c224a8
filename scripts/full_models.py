"""Helper of scripts/bench-full-models.sh: random inputs for a model, and the comparison of a
secure run's output with `ref`'s and with onnxruntime's float32 inference of the same file.

    full_models.py inputs MODEL.onnx DIR       # DIR/NAME.npy for each model input (seeded)
    full_models.py samples MODEL.onnx DIR      # the same for calibration: 4 batches, another seed,
                                               # masks padding 5 to 40% of the sequence
    full_models.py compare MODEL.onnx INPUTS_DIR REF.npy SECURE.npy [ref-only]
"""
import sys
from pathlib import Path

import numpy as np
import onnx


def model_inputs(path):
    m = onnx.load(str(path), load_external_data=False)
    weights = {i.name for i in m.graph.initializer}
    out = []
    for i in m.graph.input:
        if i.name in weights:
            continue
        t = i.type.tensor_type
        shape = [d.dim_value if d.dim_value > 0 else 1 for d in t.shape.dim]
        out.append((i.name, t.elem_type, shape))
    return out


def inputs(path, out_dir, batches=1, seed=7, padded=(0.2,)):
    rng = np.random.default_rng(seed)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    for name, elem, shape in model_inputs(path):
        shape = [shape[0] * batches] + shape[1:]
        if "mask" in name:
            v = np.ones(shape, np.int64)
            per = shape[0] // batches
            for b in range(batches):
                v[b * per:(b + 1) * per, ..., int(shape[-1] * (1 - padded[b % len(padded)])):] = 0
        elif elem in (onnx.TensorProto.INT64, onnx.TensorProto.INT32):
            # Token ids: every vocabulary here has at least 1000 entries.
            v = rng.integers(0, 1000, shape).astype(np.int64)
        else:
            v = rng.standard_normal(shape).astype(np.float32)
        np.save(out_dir / f"{name}.npy", v)
        print(f"{name} {list(v.shape)} {v.dtype}")


def stats(want, got):
    err = np.abs(want.astype(np.float64) - got.astype(np.float64)).max()
    scale = np.abs(want).max()
    # Class scores: the last axis, or for a segmentation ([N, C, D, H, W]) each voxel's channels.
    axis = 1 if want.ndim >= 4 else -1
    agree = (want.argmax(axis) == got.argmax(axis)).mean()
    return err, scale, agree


def compare(path, in_dir, ref_npy, secure_npy, only=None):
    ref, sec = np.load(ref_npy), np.load(secure_npy)
    err, scale, agree = stats(ref, sec)
    print(f"vs ref:         max abs error {err:.3g} (output scale {scale:.3g}, relative {err / scale:.2g}), argmax agreement {agree:.4f}")
    if only == "ref-only":
        return
    try:
        import onnxruntime as ort
    except ImportError:
        print("vs onnxruntime: not installed")
        return
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    feeds = {i.name: np.load(Path(in_dir) / f"{i.name}.npy") for i in sess.get_inputs()}
    want = sess.run(None, feeds)[0].reshape(sec.shape)
    err, scale, agree = stats(want, sec)
    print(f"vs onnxruntime: max abs error {err:.3g} (output scale {scale:.3g}, relative {err / scale:.2g}), argmax agreement {agree:.4f}")
    err, _, agree = stats(want, ref)
    print(f"ref vs onnxruntime: max abs error {err:.3g}, argmax agreement {agree:.4f}")


if __name__ == "__main__":
    if sys.argv[1] == "inputs":
        inputs(sys.argv[2], sys.argv[3])
    elif sys.argv[1] == "samples":
        inputs(sys.argv[2], sys.argv[3], batches=4, seed=23, padded=(0.05, 0.1, 0.2, 0.4))
    else:
        compare(*sys.argv[2:7])
