//! The public-scale gate: a linear map, a public integer factor `c`, then exact truncation of
//! `bits` bits (scale by a real factor, shift right, products with a public fixed operand), one
//! round (two with a bit borrow: see [`trunc`]).

use super::linear::{Known, dealer_inputs, is_bilinear, map, party_publics, views};
use super::open;
use super::trunc::{self, Borrow, Truncation};
use crate::fss::SeedRng;
use crate::material::{Shares, Split, Tag};
use crate::wire::{Masked, MaskedRef};
use mpcflow_sdk::protocol::{Cost, Message, NodeDesc, NodeEval, NodeValue, Step};
use mpcflow_sdk::{Op, PartyId, Result};

/// The cost: the truncation's rounds, bytes and material.
pub fn cost(node: &NodeDesc, t: Truncation) -> Cost {
    let n = node.output.numel();
    let mut c = open::cost(node, t.rounds(), t.material(n, 0));
    c.online_bytes = vec![t.online_bytes(n); 2];
    if t.borrow == Borrow::Bit {
        c.form = "truncation's borrow as a bit (one more round, smaller keys)".into();
    }
    c
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
    t: Truncation,
    rng: &mut SeedRng,
    threads: usize,
) -> Result<(Vec<Vec<u8>>, Vec<u64>)> {
    let (masks, publics) = dealer_inputs(inputs);
    let r = pre_scale(node, op, &views(&masks), &publics, c)?;
    let mut split = Split::new(Tag::Trunc, rng, open::sizes(&cost(node, t)), threads);
    let r_out = trunc::deal_product(&mut split, &r, t, rng)?;
    Ok((split.finish(), r_out))
}

/// Party: a scale gate (one round, or two with a bit borrow).
pub struct ScaleEval {
    me: PartyId,
    node: NodeDesc,
    bits: u32,
    zhat: Vec<u64>,
    material: Option<trunc::TruncShares>,
    mine: Vec<u64>,
    /// This party's borrow bits, once sent.
    borrow: Option<Vec<u8>>,
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
        t: Truncation,
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
        let shares = trunc::read_product(&mut m, n, t)?;
        m.finish()?;
        Ok(ScaleEval {
            me,
            node: node.clone(),
            bits: t.bits,
            zhat,
            material: Some(shares),
            mine: vec![],
            borrow: None,
            sent: false,
        })
    }
}

impl NodeEval for ScaleEval {
    fn step(&mut self, inbox: Vec<Message>) -> Result<Step> {
        let t = self.material.as_ref().ok_or_else(|| mpcflow_sdk::Error::internal("scale stepped after done"))?;
        if t.borrows_a_bit() && self.borrow.is_none() {
            let mine = trunc::borrow_bits(&self.zhat, self.bits, t)?;
            let step = open::exchange_bits(self.me, &mine);
            self.borrow = Some(mine);
            return Ok(step);
        }
        if !self.sent {
            self.sent = true;
            self.mine = match &self.borrow {
                Some(mine) => {
                    let theirs = open::receive_bits(inbox, mine.len(), "truncation borrow bits")?;
                    trunc::share_after_bits(self.me.0, &self.zhat, self.bits, t, mine, &theirs)?
                }
                None => trunc::share(self.me.0, &self.zhat, self.bits, t)?,
            };
            return Ok(open::exchange(self.me, &self.mine));
        }
        let value = open::reconstruct(inbox, &self.mine, "truncated value")?;
        let t = self.material.take().ok_or_else(|| mpcflow_sdk::Error::internal("scale material taken"))?;
        let m = Masked { shape: self.node.output.shape.clone(), dtype: self.node.output.dtype, value, share: t.r_out };
        Ok(Step::Done(NodeValue::Wire(m.into_wire())))
    }
}
