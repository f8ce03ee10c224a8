//! Products of two secrets (mul, matmul, conv2d): one round with a Beaver-style correlation on
//! masked wires, then, for fixed × fixed, exact truncation (one round, or two with a bit
//! borrow: see [`trunc`]).
//!
//! For a bilinear `B` and `z = B(x, y)` with masks `r_x`, `r_y`, the dealer shares
//! `C = B(r_x, r_y) + r_z`; party `i` sends `[ẑ]ᵢ = δᵢ·B(x̂, ŷ) − B(x̂, [r_y]ᵢ) − B([r_x]ᵢ, ŷ) + [C]ᵢ`
//! and both add the two shares to get `ẑ = z + r_z`. `δᵢ` is 1 for one designated party and 0
//! for the other, so each party computes two products, `B(x̂, δᵢ·ŷ − [r_y]ᵢ)` and `B([r_x]ᵢ, ŷ)`.
//!
//! **A value one party holds** ([`Visibility::Private`] in the plan: its input, such as a model's
//! weights, or anything computed from its inputs and public values) is the designated party's
//! `y` when it is `y`. An input, and any linear function of inputs of one party, is masked by
//! that party alone: it holds the whole mask as its share and the other party holds zeros
//! ([`super::io`]). So the other party's first product is `B(x̂, 0)`, and a party whose share of
//! `r_x` is zero has a zero second product. Such products are skipped, which saves the non-holder
//! one of its two products in every product with a weight: four ring products per secure one
//! instead of five, the dealer's included. The skip is decided from the mask shares alone (a
//! scan for zeros), never from a value in the clear, so its timing tells nothing about the data;
//! a value a party holds after a non-linear gate has dealt mask shares and is multiplied as
//! usual. What is sent is unchanged: each share is still masked by a fresh share of `C`.

use super::open;
use super::trunc::{self, Borrow, Truncation};
use crate::accel::Accel;
use crate::fss::SeedRng;
use crate::material::{Shares, Split, Tag, split_len};
use crate::ring;
use crate::wire::{self, Masked, MaskedRef};
use mpcflow_sdk::protocol::{Cost, Message, NodeDesc, NodeEval, NodeValue, Step};
use mpcflow_sdk::shape::Visibility;
use mpcflow_sdk::{Error, Op, PartyId, Result};

/// The cost: one opening of the product (and the truncation's for fixed × fixed).
pub fn cost(node: &NodeDesc, trunc: Option<Truncation>) -> Cost {
    let n = node.output.numel();
    match trunc {
        None => open::cost(node, 1, split_len(n, 2, 0)),
        Some(t) => {
            let mut c = open::cost(node, 1 + t.rounds(), t.material(n, 1));
            c.online_bytes = vec![8 * n as u64 + t.online_bytes(n); 2];
            if t.borrow == Borrow::Bit {
                c.form = "truncation's borrow as a bit (one more round, smaller keys)".into();
            }
            c
        }
    }
}

fn b_with(accel: &Accel, node: &NodeDesc, op: &Op, x: &[u64], y: &[u64]) -> Result<Vec<u64>> {
    let shapes = [node.inputs[0].shape.as_slice(), node.inputs[1].shape.as_slice()];
    ring::apply_with(accel, op, &[x, y], &shapes, &node.output.shape)
}

/// The party that adds `B(x̂, ŷ)`: `y`'s holder when one party holds `y`, else party 0. Both
/// parties read it from the plan.
fn designated(node: &NodeDesc) -> u16 {
    match node.inputs.get(1).map(|t| &t.vis) {
        Some(&Visibility::Private(p)) if usize::from(p.0) < 2 => p.0,
        _ => 0,
    }
}

/// `B(x, y)`, or zeros without multiplying when `zero_share`, this party's share of a mask that
/// stands for one operand, is all zeros (its share of the mask of a value the other party
/// holds). Only mask shares are scanned, never a value in the clear. Operands whose lengths do
/// not fit their shapes go to the product, which reports them.
fn product(accel: &Accel, node: &NodeDesc, op: &Op, [x, y]: [&[u64]; 2], zero_share: &[u64]) -> Result<Vec<u64>> {
    let fits = |i: usize, v: &[u64]| node.inputs.get(i).is_some_and(|t| t.numel() == v.len());
    if fits(0, x) && fits(1, y) && zero_share.iter().all(|&w| w == 0) {
        return Ok(vec![0; node.output.numel()]);
    }
    b_with(accel, node, op, x, y)
}

/// Dealer: material and output mask of a bilinear gate.
pub fn deal(
    node: &NodeDesc,
    op: &Op,
    rx: &[u64],
    ry: &[u64],
    trunc: Option<Truncation>,
    rng: &mut SeedRng,
    threads: usize,
) -> Result<(Vec<Vec<u8>>, Vec<u64>)> {
    let n = node.output.numel();
    let r_z: Vec<u64> = crate::material::draw(rng, n);
    // The dealer's product of the masks, on the CPU with the session's threads.
    let c = wire::add(&b_with(&Accel::new(None, threads), node, op, rx, ry)?, &r_z);
    match trunc {
        None => {
            let mut split = Split::new(Tag::Bilinear, rng, open::sizes(&cost(node, trunc)), threads);
            split.share(&c);
            split.share(&r_z);
            Ok((split.finish(), r_z))
        }
        Some(t) => {
            let mut split = Split::new(Tag::BilinearTrunc, rng, open::sizes(&cost(node, trunc)), threads);
            split.share(&c);
            let r_out = trunc::deal_product(&mut split, &r_z, t, rng)?;
            Ok((split.finish(), r_out))
        }
    }
}

enum State {
    Start,
    Product,
    /// The truncation's borrow bits were sent; the masked product is kept.
    Borrow {
        zhat: Vec<u64>,
        bits: Vec<u8>,
    },
    Truncated,
}

/// Party side of a bilinear gate.
pub struct BilinearEval {
    me: PartyId,
    node: NodeDesc,
    mine: Vec<u64>,
    trunc: Option<(u32, trunc::TruncShares)>,
    r_z: Vec<u64>,
    state: State,
}

impl BilinearEval {
    /// Computes this party's share of `ẑ` and reads the material.
    #[allow(clippy::too_many_arguments)] // the node, its inputs, this party, material and kernel
    pub fn new(
        node: &NodeDesc,
        op: &Op,
        x: &MaskedRef,
        y: &MaskedRef,
        trunc: Option<Truncation>,
        me: PartyId,
        material: Vec<u8>,
        accel: Accel,
    ) -> Result<Self> {
        let n = node.output.numel();
        let tag = if trunc.is_some() { Tag::BilinearTrunc } else { Tag::Bilinear };
        let material = std::sync::Arc::new(crate::pool::Recycled::new(material));
        let mut m = Shares::shared(&material, tag, me.0)?.with_accel(accel.clone());
        let c = m.share(n, "product correlation")?;
        let (trunc, r_z) = match trunc {
            None => (None, m.share(n, "output mask")?),
            Some(t) => (Some((t.bits, trunc::read_product(&mut m, n, t)?)), vec![]),
        };
        m.finish()?;
        // δᵢ·B(x̂, ŷ) − B(x̂, [r_y]ᵢ) = B(x̂, δᵢ·ŷ − [r_y]ᵢ): two products per party, not three,
        // and one of them zero for a party that does not hold a held operand.
        // The designated party's `ŷ − [r_y]ᵢ` is `y` in the clear when it holds `y`: it is never
        // scanned. The other party subtracts `B(x̂, [r_y]ᵢ)`, skipped when its share is zero.
        let with_first = if me.0 == designated(node) {
            wire::add(&c, &b_with(&accel, node, op, x.value, &wire::sub(y.value, y.share))?)
        } else {
            wire::sub(&c, &product(&accel, node, op, [x.value, y.share], y.share)?)
        };
        let mine = wire::sub(&with_first, &product(&accel, node, op, [x.share, y.value], x.share)?);
        Ok(BilinearEval { me, node: node.clone(), mine, trunc, r_z, state: State::Start })
    }

    fn done(&self, value: Vec<u64>, share: Vec<u64>) -> Step {
        let m = Masked { shape: self.node.output.shape.clone(), dtype: self.node.output.dtype, value, share };
        Step::Done(NodeValue::Wire(m.into_wire()))
    }
}

impl NodeEval for BilinearEval {
    fn step(&mut self, inbox: Vec<Message>) -> Result<Step> {
        match std::mem::replace(&mut self.state, State::Truncated) {
            State::Start => {
                self.state = State::Product;
                Ok(open::exchange(self.me, &self.mine))
            }
            State::Product => {
                let zhat = open::reconstruct(inbox, &self.mine, "masked product")?;
                match &self.trunc {
                    None => {
                        let r_z = std::mem::take(&mut self.r_z);
                        Ok(self.done(zhat, r_z))
                    }
                    Some((bits, t)) if t.borrows_a_bit() => {
                        let mine = trunc::borrow_bits(&zhat, *bits, t)?;
                        let step = open::exchange_bits(self.me, &mine);
                        self.state = State::Borrow { zhat, bits: mine };
                        Ok(step)
                    }
                    Some((bits, t)) => {
                        self.mine = trunc::share(self.me.0, &zhat, *bits, t)?;
                        Ok(open::exchange(self.me, &self.mine))
                    }
                }
            }
            State::Borrow { zhat, bits: mine } => {
                let (bits, t) = self.trunc.as_ref().ok_or_else(|| Error::internal("truncation material taken"))?;
                let theirs = open::receive_bits(inbox, mine.len(), "truncation borrow bits")?;
                self.mine = trunc::share_after_bits(self.me.0, &zhat, *bits, t, &mine, &theirs)?;
                Ok(open::exchange(self.me, &self.mine))
            }
            State::Truncated => {
                let value = open::reconstruct(inbox, &self.mine, "truncated product")?;
                let (_, t) = self.trunc.take().ok_or_else(|| Error::internal("truncation material taken"))?;
                Ok(self.done(value, t.r_out))
            }
        }
    }
}
