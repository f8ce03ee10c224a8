//! Gates without interaction: public computation (the `public` gate) and linear maps of masked
//! wires (the `linear` gate), and what the dealer knows of every wire ([`Known`]). The
//! public-scale gate, which adds a truncation, is [`super::scale`].

use crate::ring;
use crate::wire::{Masked, MaskedRef};
use mpcflow_ring::kernels::eval_op;
use mpcflow_sdk::protocol::{Cost, NodeDesc};
use mpcflow_sdk::shape::Visibility;
use mpcflow_sdk::{Op, Result, Tensor};

/// The cost of the public and linear gates: nothing.
pub fn cost(node: &NodeDesc) -> Cost {
    Cost::zero(node.parties)
}

/// What the dealer knows about a wire.
#[derive(Clone)]
pub enum Known {
    /// A public value.
    Public(Tensor),
    /// The mask of a secret wire.
    Mask(Vec<u64>),
}

/// Shows the kind and length only: masks must never reach a log.
impl std::fmt::Debug for Known {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Known::Public(t) => write!(f, "Public({} {:?})", t.dtype, t.shape),
            Known::Mask(m) => write!(f, "Mask({} elements)", m.len()),
        }
    }
}

impl Known {
    /// The mask (zeros for public values), borrowed where there is one: a slice or reshape of
    /// a large tensor reads its input's mask in place instead of copying all of it.
    pub fn mask(&self) -> std::borrow::Cow<'_, [u64]> {
        match self {
            Known::Public(t) => std::borrow::Cow::Owned(vec![0; t.data.len()]),
            Known::Mask(m) => std::borrow::Cow::Borrowed(m),
        }
    }
}

/// Evaluates an op on public values with its real semantics.
pub fn public(node: &NodeDesc, op: &Op, inputs: &[Tensor]) -> Result<Tensor> {
    let refs: Vec<&Tensor> = inputs.iter().collect();
    eval_op(op, &refs, &node.output, node.fixed_point)
}

/// Whether `op` multiplies its two inputs (bilinear in them).
pub fn is_bilinear(op: &Op) -> bool {
    matches!(op, Op::Mul | Op::Matmul | Op::Conv2d { .. })
}

/// The linear map of `op` applied to per-input planes `planes` (masked values, mask shares or
/// masks), where public inputs contribute `public_values` to bilinear ops.
pub(super) fn map(node: &NodeDesc, op: &Op, planes: &[&[u64]], public_values: &[Option<&[u64]>]) -> Result<Vec<u64>> {
    let shapes: Vec<&[usize]> = node.inputs.iter().map(|t| t.shape.as_slice()).collect();
    if is_bilinear(op) {
        // x·c: the mask of the product is (mask of x)·c, so public operands enter by value.
        let ins: Vec<&[u64]> = planes.iter().zip(public_values).map(|(p, v)| v.unwrap_or(p)).collect();
        return ring::apply(op, &ins, &shapes, &node.output.shape);
    }
    // Public inputs have zero masks and mask shares, and their values are in the masked plane.
    ring::apply(op, planes, &shapes, &node.output.shape)
}

/// Party: a linear gate.
pub fn eval_linear(node: &NodeDesc, op: &Op, inputs: &[MaskedRef]) -> Result<Masked> {
    let values: Vec<&[u64]> = inputs.iter().map(|m| m.value).collect();
    let shares: Vec<&[u64]> = inputs.iter().map(|m| m.share).collect();
    let publics = party_publics(node, inputs);
    let value = map(node, op, &values, &publics)?;
    let share = map(node, op, &shares, &publics)?;
    Ok(Masked { shape: node.output.shape.clone(), dtype: node.output.dtype, value, share })
}

/// A mask as the dealer reads it: borrowed, or zeros made for a public value.
pub(super) type Mask<'a> = std::borrow::Cow<'a, [u64]>;

/// The dealer's view of a gate's inputs: masks (zeros for public values) and public values.
pub(super) fn dealer_inputs<'a>(inputs: &[&'a Known]) -> (Vec<Mask<'a>>, Vec<Option<&'a [u64]>>) {
    let masks = inputs.iter().map(|k| k.mask()).collect();
    let publics = inputs
        .iter()
        .map(|k| match k {
            Known::Public(t) => Some(t.data.as_slice()),
            Known::Mask(_) => None,
        })
        .collect();
    (masks, publics)
}

/// A party's public input values (for products with a public operand).
pub(super) fn party_publics<'a>(node: &NodeDesc, inputs: &[MaskedRef<'a>]) -> Vec<Option<&'a [u64]>> {
    node.inputs.iter().zip(inputs).map(|(t, m)| (t.vis == Visibility::Public).then_some(m.value)).collect()
}

/// Slices of planes.
pub(super) fn views<T: AsRef<[u64]>>(v: &[T]) -> Vec<&[u64]> {
    v.iter().map(AsRef::as_ref).collect()
}

/// Dealer: the output mask of a linear gate.
pub fn deal_linear(node: &NodeDesc, op: &Op, inputs: &[&Known]) -> Result<Vec<u64>> {
    let (masks, publics) = dealer_inputs(inputs);
    map(node, op, &views(&masks), &publics)
}
