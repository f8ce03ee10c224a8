//! Running the op set's plaintext kernels in "ring mode": every tensor read as 64-bit integers,
//! so ops are the exact wrapping ring maps that masked values and mask shares need.
//!
//! Products (`matmul`, `conv2d`, and `mul` without a general broadcast) run on the fast
//! wrapping kernels of [`crate::linalg`]; every other op runs on the `ref` kernels in `Int`
//! mode. Both give the same words, and the same errors for inputs that do not fit the op.

use crate::linalg;
use mpcflow_protocol_ref::kernels::eval_op;
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
