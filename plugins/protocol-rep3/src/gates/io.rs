//! Input sharing and output reveal.
//!
//! **Input** (owner `o`, one round): the owner draws two seeds `σ_A`, `σ_C` and sets
//! `x_o = PRG(σ_A)`, `x_{o+2} = PRG(σ_C)` and `x_{o+1} = x − x_o − x_{o+2}`. It sends
//! `σ_A ‖ σ_C` to party `o − 1` (which holds `(x_{o+2}, x_o)`: two pseudorandom words, nothing
//! of `x`) and `σ_C ‖ x_{o+1}` to party `o + 1` (which holds `(x_{o+1}, x_{o+2})`: `x_{o+1}` is
//! masked by `x_o`, which it never sees). Bytes: `8n + 3·32` from the owner.
//!
//! **Output** (one round): party `p` misses share `x_{p+2}`, which party `p + 1` holds as its
//! plane 1; each party sends that plane to the party before it when that party learns the
//! value. A public value is revealed without a round.

use crate::share::{self, Operand, SEED, ahead};
use mpcflow_fss_gates::wire;
use mpcflow_sdk::protocol::{Cost, Message, NodeDesc, NodeEval, NodeValue, Step};
use mpcflow_sdk::shape::Visibility;
use mpcflow_sdk::{Error, PartyId, Result, Tensor};

/// The cost of sharing an input.
pub fn input_cost(node: &NodeDesc, owner: PartyId) -> Cost {
    let mut c = Cost::zero(node.parties);
    c.rounds = 1;
    c.online_bytes[owner.index()] = 8 * node.output.numel() as u64 + 3 * SEED as u64;
    c
}

/// The cost of revealing an output.
pub fn output_cost(node: &NodeDesc, reveal_to: &[PartyId]) -> Cost {
    let mut c = Cost::zero(node.parties);
    if node.inputs.first().is_some_and(|t| t.vis == Visibility::Public) {
        return c;
    }
    c.rounds = 1;
    for q in 0..share::PARTIES {
        if reveal_to.contains(&ahead(PartyId(q as u16), 2)) {
            c.online_bytes[q] = 8 * node.output.numel() as u64;
        }
    }
    c
}

/// Party side of input sharing.
pub struct ShareInput {
    me: PartyId,
    owner: PartyId,
    node: NodeDesc,
    value: Option<Tensor>,
    planes: Option<[Vec<u64>; 2]>,
    /// A receiving party: its first step asked for the owner's message.
    waiting: bool,
}

impl ShareInput {
    /// Checks the owner's value against the plan.
    pub fn new(node: &NodeDesc, me: PartyId, owner: PartyId, value: Option<Tensor>) -> Result<Self> {
        if me == owner {
            let v = value.as_ref().ok_or_else(|| Error::invalid("the owner brought no value"))?;
            if v.shape != node.output.shape || v.dtype != node.output.dtype || v.data.len() != node.output.numel() {
                return Err(Error::invalid(format!(
                    "value is {} {:?} but the plan expects {} {:?}",
                    v.dtype, v.shape, node.output.dtype, node.output.shape
                )));
            }
        }
        Ok(ShareInput { me, owner, node: node.clone(), value, planes: None, waiting: false })
    }
}

impl NodeEval for ShareInput {
    fn step(&mut self, mut inbox: Vec<Message>) -> Result<Step> {
        let n = self.node.output.numel();
        let (before, after) = (ahead(self.owner, 2), ahead(self.owner, 1));
        if self.me == self.owner {
            if let Some(planes) = self.planes.take() {
                return Ok(Step::Done(NodeValue::Wire(share::secret(
                    &self.node.output.shape,
                    self.node.output.dtype,
                    planes,
                ))));
            }
            let x = self.value.take().ok_or_else(|| Error::internal("input value taken twice"))?;
            let (sa, sc) = (share::fresh_seed()?, share::fresh_seed()?);
            let (xo, xc) = (share::expand(&sa, n), share::expand(&sc, n));
            let xb: Vec<u64> =
                x.data.iter().zip(&xo).zip(&xc).map(|((x, a), c)| x.wrapping_sub(*a).wrapping_sub(*c)).collect();
            let to_before = [sa, sc].concat();
            let mut to_after = sc.to_vec();
            to_after.extend_from_slice(&wire::to_bytes(&xb));
            self.planes = Some([xo, xb]);
            let send = vec![Message { peer: before, payload: to_before }, Message { peer: after, payload: to_after }];
            return Ok(Step::Exchange { send, expect: vec![] });
        }
        if !self.waiting {
            self.waiting = true;
            return Ok(Step::Exchange { send: vec![], expect: vec![self.owner] });
        }
        let msg = share::from(&mut inbox, self.owner, "input shares")?;
        let planes = if self.me == before {
            let (sa, rest) = share::take_seed(&msg, "input seeds")?;
            let (sc, rest) = share::take_seed(rest, "input seeds")?;
            share::expect_empty(rest, "input seeds")?;
            [share::expand(&sc, n), share::expand(&sa, n)]
        } else {
            let (sc, rest) = share::take_seed(&msg, "input share")?;
            let (xb, rest) = share::take_words(rest, n, "input share")?;
            share::expect_empty(rest, "input share")?;
            [xb, share::expand(&sc, n)]
        };
        Ok(Step::Done(NodeValue::Wire(share::secret(&self.node.output.shape, self.node.output.dtype, planes))))
    }
}

/// Party side of an output reveal.
pub struct Reveal {
    me: PartyId,
    reveal_to: Vec<PartyId>,
    shape: Vec<usize>,
    dtype: mpcflow_sdk::DType,
    planes: [Vec<u64>; 2],
    public: Option<Vec<u64>>,
    sent: bool,
}

impl Reveal {
    /// Prepares the round (none for a public value).
    pub fn new(node: &NodeDesc, me: PartyId, reveal_to: Vec<PartyId>, input: Operand<'_>) -> Self {
        let (planes, public) = match input {
            Operand::Secret([a, b]) => ([a.to_vec(), b.to_vec()], None),
            Operand::Public(v) => ([vec![], vec![]], Some(v.to_vec())),
        };
        let (shape, dtype) = (node.output.shape.clone(), node.output.dtype);
        Reveal { me, reveal_to, shape, dtype, planes, public, sent: false }
    }

    fn tensor(&self, data: Vec<u64>) -> Option<Tensor> {
        self.reveal_to.contains(&self.me).then(|| Tensor { dtype: self.dtype, shape: self.shape.clone(), data })
    }
}

impl NodeEval for Reveal {
    fn step(&mut self, mut inbox: Vec<Message>) -> Result<Step> {
        if let Some(v) = self.public.take() {
            return Ok(Step::Done(NodeValue::Revealed(self.tensor(v))));
        }
        let (before, after) = (ahead(self.me, 2), ahead(self.me, 1));
        if !self.sent {
            self.sent = true;
            let send = if self.reveal_to.contains(&before) {
                vec![Message { peer: before, payload: wire::to_bytes(&self.planes[1]) }]
            } else {
                vec![]
            };
            let expect = if self.reveal_to.contains(&self.me) { vec![after] } else { vec![] };
            return Ok(Step::Exchange { send, expect });
        }
        if !self.reveal_to.contains(&self.me) {
            return Ok(Step::Done(NodeValue::Revealed(None)));
        }
        let msg = share::from(&mut inbox, after, "output share")?;
        let third = wire::from_bytes(&msg, self.planes[0].len(), "output share")?;
        let data = self.planes[0]
            .iter()
            .zip(&self.planes[1])
            .zip(&third)
            .map(|((a, b), c)| a.wrapping_add(*b).wrapping_add(*c))
            .collect();
        Ok(Step::Done(NodeValue::Revealed(self.tensor(data))))
    }
}
