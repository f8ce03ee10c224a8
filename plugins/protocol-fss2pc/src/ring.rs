//! Running the op set's plaintext kernels in "ring mode": every tensor read as 64-bit integers,
//! so ops are the exact wrapping ring maps that masked values and mask shares need.
//!
//! Products (`matmul`, `conv2d`, and `mul` without a general broadcast) run on the fast
//! wrapping kernels of [`crate::linalg`]; every other op runs on the `ref` kernels in `Int`
//! mode. Both give the same words, and the same errors for inputs that do not fit the op.

use crate::accel::Accel;
use crate::linalg;
use mpcflow_protocol_ref::kernels::eval_op;
use mpcflow_sdk::kernel::Conv2dGeometry;
use mpcflow_sdk::shape::{TensorInfo, Visibility};
use mpcflow_sdk::{DType, FixedPoint, Op, Result, Tensor};

/// `op` applied to ring words, with the output shape `shape`.
pub fn apply(op: &Op, inputs: &[&[u64]], shapes: &[&[usize]], shape: &[usize]) -> Result<Vec<u64>> {
    let cfg = linalg::Config::default();
    match (op, inputs, shapes) {
        (Op::Matmul, &[a, b], &[sa, sb]) => linalg::matmul([a, b], [sa, sb], shape, &cfg),
        (Op::Conv2d { stride, padding }, &[x, w], &[sx, sw]) => {
            linalg::conv2d([x, w], [sx, sw], *stride, *padding, shape, &cfg)
        }
        (Op::Mul, &[a, b], &[sa, sb]) => match linalg::mul([a, b], [sa, sb], shape)? {
            Some(v) => Ok(v),
            None => via_ref(op, inputs, shapes, shape),
        },
        _ => via_ref(op, inputs, shapes, shape),
    }
}

/// [`apply`], with plain (unbatched) matrix products and convolutions offered to the session's
/// kernel first.
pub fn apply_with(accel: &Accel, op: &Op, inputs: &[&[u64]], shapes: &[&[usize]], shape: &[usize]) -> Result<Vec<u64>> {
    match (op, inputs, shapes) {
        (Op::Matmul, &[a, b], &[&[m, k], &[k2, n]])
            if k == k2 && shape == [m, n] && a.len() == m * k && b.len() == k * n =>
        {
            if let Some(c) = accel.matmul(a, b, [m, k, n])? {
                return Ok(c);
            }
        }
        (Op::Conv2d { stride, padding }, &[x, w], &[&[nb, c, h, wd], &[o, c2, kh, kw]])
            if c == c2
                && shape.len() == 4
                && shape[..2] == [nb, o]
                && x.len() == nb * c * h * wd
                && w.len() == o * c * kh * kw =>
        {
            let g = Conv2dGeometry {
                batch: nb,
                channels: c,
                input: [h, wd],
                out_channels: o,
                kernel: [kh, kw],
                stride: *stride,
                padding: *padding,
                output: [shape[2], shape[3]],
            };
            let fits = mpcflow_sdk::shape::window_out(h, kh, stride[0], padding[0]) == Some(shape[2])
                && mpcflow_sdk::shape::window_out(wd, kw, stride[1], padding[1]) == Some(shape[3]);
            if fits && let Some(y) = accel.conv2d(x, w, &g)? {
                return Ok(y);
            }
        }
        _ => {}
    }
    apply(op, inputs, shapes, shape)
}

/// `op` applied to ring words by the `ref` kernels in `Int` mode (exact `i128` sums).
pub(crate) fn via_ref(op: &Op, inputs: &[&[u64]], shapes: &[&[usize]], shape: &[usize]) -> Result<Vec<u64>> {
    let tensors: Vec<Tensor> = inputs
        .iter()
        .zip(shapes)
        .map(|(d, s)| Tensor { dtype: DType::Int, shape: s.to_vec(), data: d.to_vec() })
        .collect();
    let refs: Vec<&Tensor> = tensors.iter().collect();
    let out = TensorInfo { shape: shape.to_vec(), dtype: DType::Int, vis: Visibility::Secret };
    Ok(eval_op(op, &refs, &out, FixedPoint::new(0))?.data)
}
