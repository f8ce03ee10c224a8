//! Input sharing and output reveal.
//!
//! Input: the dealer gives the owner a seed that expands to the mask `r`; the owner sends
//! `x̂ = x + r` (one round) and holds the whole mask as its share, the other party holds 0.
//! Output: each party sends its mask share to every other party that learns the value; a
//! receiving party computes `x = x̂ − r₀ − r₁`.

use super::open::peer;
use crate::fss::SeedRng;
use crate::material::{Reader, Tag, Writer, draw};
use crate::wire::{self, Masked};
use mpcflow_sdk::protocol::{Cost, Message, NodeDesc, NodeEval, NodeValue, Step};
use mpcflow_sdk::shape::Visibility;
use mpcflow_sdk::{Error, PartyId, Result, Tensor};

/// The cost of sharing an input: the owner sends the masked value; material is the header, and
/// the owner's seed.
pub fn input_cost(node: &NodeDesc, owner: PartyId) -> Cost {
    let mut c = Cost::zero(node.parties);
    c.rounds = 1;
    c.online_bytes[owner.index()] = 8 * node.output.numel() as u64;
    c.dealer_bytes = vec![crate::material::HEADER as u64; 2];
    c.dealer_bytes[owner.index()] += crate::material::SEED_LEN as u64;
    c
}

/// The cost of revealing an output: each party sends its mask share to every other party that
/// learns it; nothing for a public value.
pub fn output_cost(node: &NodeDesc, reveal_to: &[PartyId]) -> Cost {
    let mut c = Cost::zero(node.parties);
    if node.inputs.first().is_some_and(|t| t.vis == Visibility::Public) {
        return c;
    }
    c.rounds = 1;
    for p in 0..2u16 {
        let others = reveal_to.iter().filter(|q| q.0 != p).count() as u64;
        c.online_bytes[p as usize] = 8 * node.output.numel() as u64 * others;
    }
    c
}

/// Dealer: the owner's seed, and the mask it expands to.
pub fn deal_input(owner: PartyId, n: usize, rng: &mut SeedRng) -> (Vec<Vec<u8>>, Vec<u64>) {
    let mut seed = [0u8; crate::material::SEED_LEN];
    rng.fill_bytes(&mut seed);
    let r = draw(&mut SeedRng::from_seed(seed), n);
    let mut out = vec![Writer::new(Tag::Input).finish(), Writer::new(Tag::Input).finish()];
    let mut w = Writer::new(Tag::Input);
    w.bytes(&seed);
    out[owner.index()] = w.finish();
    (out, r)
}

/// Party side of input sharing.
pub struct ShareInput {
    me: PartyId,
    owner: PartyId,
    node: NodeDesc,
    mask: Option<Vec<u64>>,
    value: Option<Tensor>,
    sent: bool,
}

impl ShareInput {
    /// Reads the material and prepares the round.
    pub fn new(node: &NodeDesc, me: PartyId, owner: PartyId, material: &[u8], value: Option<Tensor>) -> Result<Self> {
        let mut r = Reader::new(material, Tag::Input)?;
        let mask = if me == owner { Some(draw(&mut r.seed()?, node.output.numel())) } else { None };
        r.finish()?;
        if me == owner {
            let v = value.as_ref().ok_or_else(|| Error::invalid("the owner brought no value"))?;
            if v.shape != node.output.shape || v.dtype != node.output.dtype {
                return Err(Error::invalid(format!(
                    "value is {} {:?} but the plan expects {} {:?}",
                    v.dtype, v.shape, node.output.dtype, node.output.shape
                )));
            }
        }
        Ok(ShareInput { me, owner, node: node.clone(), mask, value, sent: false })
    }
}

impl NodeEval for ShareInput {
    fn step(&mut self, inbox: Vec<Message>) -> Result<Step> {
        let n = self.node.output.numel();
        if !self.sent {
            self.sent = true;
            if self.me == self.owner {
                let (v, r) = match (&self.value, &self.mask) {
                    (Some(v), Some(r)) => (v, r),
                    _ => return Err(Error::internal("owner without value or mask")),
                };
                let masked = wire::add(&v.data, r);
                let msg = Message { peer: peer(self.me), payload: wire::to_bytes(&masked) };
                self.value = Some(Tensor { dtype: v.dtype, shape: v.shape.clone(), data: masked });
                return Ok(Step::Exchange { send: vec![msg], expect: vec![] });
            }
            return Ok(Step::Exchange { send: vec![], expect: vec![self.owner] });
        }
        let (value, share) = if self.me == self.owner {
            let v = self.value.take().ok_or_else(|| Error::internal("input value taken twice"))?;
            (v.data, self.mask.take().ok_or_else(|| Error::internal("input mask taken twice"))?)
        } else {
            let msg = inbox.into_iter().next().ok_or_else(|| Error::protocol("no masked input from its owner"))?;
            (wire::from_bytes(&msg.payload, n, "masked input")?, vec![0; n])
        };
        let m = Masked { shape: self.node.output.shape.clone(), dtype: self.node.output.dtype, value, share };
        Ok(Step::Done(NodeValue::Wire(m.into_wire())))
    }
}

/// Party side of an output reveal.
pub struct Reveal {
    me: PartyId,
    reveal_to: Vec<PartyId>,
    input: Masked,
    public: bool,
    sent: bool,
}

impl Reveal {
    /// Prepares the round; `public` values are revealed without one.
    pub fn new(me: PartyId, reveal_to: Vec<PartyId>, input: Masked, public: bool) -> Self {
        Reveal { me, reveal_to, input, public, sent: false }
    }
}

impl NodeEval for Reveal {
    fn step(&mut self, inbox: Vec<Message>) -> Result<Step> {
        let other = peer(self.me);
        if self.public {
            // A public value (a count): every party already knows it; nothing to send.
            let t = Tensor { dtype: self.input.dtype, shape: self.input.shape.clone(), data: self.input.value.clone() };
            return Ok(Step::Done(NodeValue::Revealed(self.reveal_to.contains(&self.me).then_some(t))));
        }
        if !self.sent {
            self.sent = true;
            let send = if self.reveal_to.contains(&other) {
                vec![Message { peer: other, payload: wire::to_bytes(&self.input.share) }]
            } else {
                vec![]
            };
            let expect = if self.reveal_to.contains(&self.me) { vec![other] } else { vec![] };
            return Ok(Step::Exchange { send, expect });
        }
        if !self.reveal_to.contains(&self.me) {
            return Ok(Step::Done(NodeValue::Revealed(None)));
        }
        let msg = inbox.into_iter().next().ok_or_else(|| Error::protocol("no mask share for the output"))?;
        let theirs = wire::from_bytes(&msg.payload, self.input.value.len(), "output mask share")?;
        let mask = wire::add(&self.input.share, &theirs);
        let data = wire::sub(&self.input.value, &mask);
        let t = Tensor { dtype: self.input.dtype, shape: self.input.shape.clone(), data };
        Ok(Step::Done(NodeValue::Revealed(Some(t))))
    }
}
