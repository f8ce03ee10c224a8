//! Gates without interaction: ops on public values, computed in the clear, and linear maps of
//! replicated shares, applied to each of a party's two shares.
//!
//! A linear map `L` of the ring takes the sharing `(x₀, x₁, x₂)` to `(L(x₀), L(x₁), L(x₂))`, so
//! each party applies it to its two planes. A public operand of a sum enters as the sharing
//! `(c, 0, 0)`; a public factor of a product (`x·c`, `x @ W`, a convolution with public weights)
//! enters by value in both planes.

use crate::share::Operand;
use mpcflow_fss_gates::accel::Accel;
use mpcflow_fss_gates::gates::linear::is_bilinear;
use mpcflow_fss_gates::ring;
use mpcflow_ring::kernels::eval_op;
use mpcflow_sdk::protocol::{NodeDesc, Wire};
use mpcflow_sdk::{Op, PartyId, Result, Tensor};

/// Evaluates an op on public values with its real semantics.
pub fn public(node: &NodeDesc, op: &Op, inputs: &[Tensor]) -> Result<Wire> {
    let refs: Vec<&Tensor> = inputs.iter().collect();
    let t = eval_op(op, &refs, &node.output, node.fixed_point)?;
    Ok(Wire { shape: t.shape, dtype: t.dtype, planes: vec![t.data] })
}

/// A party's two planes of the linear map `op` of its inputs.
pub fn linear(node: &NodeDesc, op: &Op, me: PartyId, inputs: &[Operand<'_>], accel: &Accel) -> Result<Wire> {
    let shapes: Vec<&[usize]> = node.inputs.iter().map(|t| t.shape.as_slice()).collect();
    let mut planes = Vec::with_capacity(2);
    for k in 0..2 {
        let ins: Vec<std::borrow::Cow<'_, [u64]>> = inputs
            .iter()
            .map(|x| match (is_bilinear(op), x.public()) {
                (true, Some(v)) => std::borrow::Cow::Borrowed(v),
                _ => x.plane(me, k),
            })
            .collect();
        let refs: Vec<&[u64]> = ins.iter().map(AsRef::as_ref).collect();
        planes.push(ring::apply_with(accel, op, &refs, &shapes, &node.output.shape)?);
    }
    Ok(Wire { shape: node.output.shape.clone(), dtype: node.output.dtype, planes })
}
