//! Gates without interaction: public computation and linear maps of masked wires, plus the
//! public-scale gate (a linear map, a public integer factor, then exact truncation).

use super::open;
use super::trunc;
use crate::fss::SeedRng;
use crate::material::{Shares, Split, Tag};
use crate::ring;
use crate::wire::{Masked, MaskedRef};
use mpcflow_ring::kernels::eval_op;
use mpcflow_sdk::protocol::{Message, NodeDesc, NodeEval, NodeValue, Step};
use mpcflow_sdk::shape::Visibility;
use mpcflow_sdk::{Op, PartyId, Result, Tensor};

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
    /// The mask (zeros for public values).
    pub fn mask(&self) -> Vec<u64> {
        match self {
            Known::Public(t) => vec![0; t.data.len()],
            Known::Mask(m) => m.clone(),
        }
    }
}

/// Evaluates an op on public values with its real semantics.
pub fn public(node: &NodeDesc, op: &Op, inputs: &[Tensor]) -> Result<Tensor> {
    let refs: Vec<&Tensor> = inputs.iter().collect();
    eval_op(op, &refs, &node.output, node.fixed_point)
}

fn is_bilinear(op: &Op) -> bool {
    matches!(op, Op::Mul | Op::Matmul | Op::Conv2d { .. })
}

/// The linear map of `op` applied to per-input planes `planes` (masked values, mask shares or
/// masks), where public inputs contribute `public_values` to bilinear ops.
fn map(node: &NodeDesc, op: &Op, planes: &[&[u64]], public_values: &[Option<&[u64]>]) -> Result<Vec<u64>> {
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

/// The dealer's view of a gate's inputs: masks (zeros for public values) and public values.
fn dealer_inputs(inputs: &[&Known]) -> (Vec<Vec<u64>>, Vec<Option<Vec<u64>>>) {
    let masks = inputs.iter().map(|k| k.mask()).collect();
    let publics = inputs
        .iter()
        .map(|k| match k {
            Known::Public(t) => Some(t.data.clone()),
            Known::Mask(_) => None,
        })
        .collect();
    (masks, publics)
}

/// A party's public input values (for products with a public operand).
fn party_publics<'a>(node: &NodeDesc, inputs: &[MaskedRef<'a>]) -> Vec<Option<&'a [u64]>> {
    node.inputs.iter().zip(inputs).map(|(t, m)| (t.vis == Visibility::Public).then_some(m.value)).collect()
}

/// Slices of owned planes.
fn views(v: &[Vec<u64>]) -> Vec<&[u64]> {
    v.iter().map(Vec::as_slice).collect()
}

/// Dealer: the output mask of a linear gate.
pub fn deal_linear(node: &NodeDesc, op: &Op, inputs: &[&Known]) -> Result<Vec<u64>> {
    let (masks, publics) = dealer_inputs(inputs);
    let publics: Vec<Option<&[u64]>> = publics.iter().map(Option::as_deref).collect();
    map(node, op, &views(&masks), &publics)
}

/// The pre-truncation linear step of a scale gate: `op` (identity for scale and shift) then `·c`.
fn pre_scale(node: &NodeDesc, op: &Op, planes: &[&[u64]], publics: &[Option<&[u64]>], c: u64) -> Result<Vec<u64>> {
    let z = if is_bilinear(op) { map(node, op, planes, publics)? } else { planes[0].to_vec() };
    Ok(z.into_iter().map(|v| v.wrapping_mul(c)).collect())
}

/// Dealer: a scale gate's material and output mask.
pub fn deal_scale(
    node: &NodeDesc,
    op: &Op,
    inputs: &[&Known],
    c: u64,
    bits: u32,
    rng: &mut SeedRng,
) -> Result<(Vec<Vec<u8>>, Vec<u64>)> {
    let (masks, publics) = dealer_inputs(inputs);
    let publics: Vec<Option<&[u64]>> = publics.iter().map(Option::as_deref).collect();
    let r = pre_scale(node, op, &views(&masks), &publics, c)?;
    let mut split = Split::new(Tag::Trunc, rng, crate::protocol::material_sizes(node));
    let r_out = trunc::deal(&mut split, &r, bits, trunc::PRODUCTS, rng)?;
    Ok((split.finish(), r_out))
}

/// Party: a scale gate (one round).
pub struct ScaleEval {
    me: PartyId,
    node: NodeDesc,
    bits: u32,
    zhat: Vec<u64>,
    material: Option<trunc::TruncShares>,
    mine: Vec<u64>,
    sent: bool,
}

impl ScaleEval {
    /// Computes the pre-truncation value and reads the material.
    #[allow(clippy::too_many_arguments)] // the node, its inputs, this party, material and kernel
    pub fn new(
        node: &NodeDesc,
        op: &Op,
        inputs: &[MaskedRef],
        c: u64,
        bits: u32,
        me: PartyId,
        material: Vec<u8>,
        accel: crate::accel::Accel,
    ) -> Result<Self> {
        let values: Vec<&[u64]> = inputs.iter().map(|m| m.value).collect();
        let publics = party_publics(node, inputs);
        let zhat = pre_scale(node, op, &values, &publics, c)?;
        let n = zhat.len();
        let material = std::sync::Arc::new(crate::pool::Recycled::new(material));
        let mut m = Shares::shared(&material, Tag::Trunc, me.0)?.with_accel(accel);
        let t = trunc::read(&mut m, n, bits, trunc::PRODUCTS)?;
        m.finish()?;
        Ok(ScaleEval { me, node: node.clone(), bits, zhat, material: Some(t), mine: vec![], sent: false })
    }
}

impl NodeEval for ScaleEval {
    fn step(&mut self, inbox: Vec<Message>) -> Result<Step> {
        let t = self.material.as_ref().ok_or_else(|| mpcflow_sdk::Error::internal("scale stepped after done"))?;
        if !self.sent {
            self.sent = true;
            self.mine = trunc::share(self.me.0, &self.zhat, self.bits, t)?;
            return Ok(open::exchange(self.me, &self.mine));
        }
        let value = open::reconstruct(inbox, &self.mine, "truncated value")?;
        let t = self.material.take().ok_or_else(|| mpcflow_sdk::Error::internal("scale material taken"))?;
        let m = Masked { shape: self.node.output.shape.clone(), dtype: self.node.output.dtype, value, share: t.r_out };
        Ok(Step::Done(NodeValue::Wire(m.into_wire())))
    }
}
