//! Running the op set's plaintext kernels in "ring mode": every tensor read as 64-bit integers,
//! so ops are the exact wrapping ring maps that masked values and mask shares need.

use mpcflow_protocol_ref::kernels::eval_op;
use mpcflow_sdk::shape::{TensorInfo, Visibility};
use mpcflow_sdk::{DType, FixedPoint, Op, Result, Tensor};

/// `op` applied to ring words, with the output shape `shape`.
pub fn apply(op: &Op, inputs: &[&[u64]], shapes: &[&[usize]], shape: &[usize]) -> Result<Vec<u64>> {
    let tensors: Vec<Tensor> = inputs
        .iter()
        .zip(shapes)
        .map(|(d, s)| Tensor { dtype: DType::Int, shape: s.to_vec(), data: d.to_vec() })
        .collect();
    let refs: Vec<&Tensor> = tensors.iter().collect();
    let out = TensorInfo { shape: shape.to_vec(), dtype: DType::Int, vis: Visibility::Secret };
    Ok(eval_op(op, &refs, &out, FixedPoint::new(0))?.data)
}
