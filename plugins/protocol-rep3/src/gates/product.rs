//! Products of two secrets: elementwise, matrix products and convolutions, with one round of
//! resharing, then (for fixed × fixed) a truncation dealt by one of the parties.
//!
//! **Local product** (Araki, Furukawa, Lindell, Nof, Ohara: "High-Throughput Semi-Honest Secure
//! Three-Party Computation with an Honest Majority", CCS 2016, Section 2.2, over `Z(2^64)` as in
//! ABY3): for a bilinear op `⊗`, party `i` computes
//! `zᵢ = xᵢ⊗yᵢ + xᵢ⊗yᵢ₊₁ + xᵢ₊₁⊗yᵢ = xᵢ⊗(yᵢ + yᵢ₊₁) + xᵢ₊₁⊗yᵢ` (two products), and the `zᵢ`
//! are an additive sharing of `x⊗y`.
//!
//! **Resharing** (one round, no setup): party `i` draws a seed `σᵢ`, splits
//! `zᵢ = aᵢ + bᵢ` with `bᵢ = PRG(σᵢ)`, and sends `aᵢ` to party `i − 1` and `σᵢ` to party
//! `i + 1`. The new shares are `z'ⱼ₊₁ = aⱼ₊₁ + bⱼ`, held by `j` (its `bⱼ`, and `aⱼ₊₁` received)
//! and `j + 1` (its `aⱼ₊₁`, and `bⱼ` from the seed received); they sum to `Σ zᵢ`. What party `i`
//! receives, `aᵢ₊₁` (masked by `bᵢ₊₁`, whose seed goes to party `i + 2` only) and a seed of its
//! own, is uniformly random. The seed replaces the pairwise PRG keys of Araki et al.'s zero
//! sharing, so no session setup is needed; it costs one seed per message.
//!
//! **Truncation** of a fixed × fixed product (`2f` fractional bits down to `f`): the exact
//! truncation gate of fss2pc on `z`, dealt by one party to the other two (see
//! [`super::assisted`]): within one ulp of `ref`, with no failure probability, for
//! `|x·y| < 2^(62−2f)` as in fss2pc.

use super::assisted::Assisted;
use super::bits::Kept;
use crate::share::{self, Operand, SEED, ahead};
use mpcflow_fss_gates::accel::Accel;
use mpcflow_fss_gates::gates::Gate;
use mpcflow_fss_gates::{ring, wire};
use mpcflow_sdk::kernel::Kernel;
use mpcflow_sdk::protocol::{Cost, Message, NodeDesc, NodeEval, NodeValue, Step, Wire};
use mpcflow_sdk::{Error, Op, PartyId, Result};
use std::sync::Arc;

/// The truncation after a fixed × fixed product: the evaluators' node and its gate.
pub type Trunc = (NodeDesc, Gate);

/// The cost: the resharing round, then the truncation's.
pub fn cost(node: &NodeDesc, trunc: Option<&Trunc>) -> Cost {
    let mut c = match trunc {
        Some((inner, gate)) => super::assisted::cost(node.id, inner, gate),
        None => Cost::zero(share::PARTIES),
    };
    c.rounds += 1;
    for b in &mut c.online_bytes {
        *b += 8 * node.output.numel() as u64 + SEED as u64;
    }
    c
}

/// This party's additive share `zᵢ` of the product.
fn local_product(node: &NodeDesc, op: &Op, x: [&[u64]; 2], y: [&[u64]; 2], accel: &Accel) -> Result<Vec<u64>> {
    let shapes: Vec<&[usize]> = node.inputs.iter().map(|t| t.shape.as_slice()).collect();
    let out = &node.output.shape;
    let y_sum = wire::add(y[0], y[1]);
    let first = ring::apply_with(accel, op, &[x[0], &y_sum], &shapes, out)?;
    let second = ring::apply_with(accel, op, &[x[1], y[0]], &shapes, out)?;
    Ok(wire::add(&first, &second))
}

/// One party's product gate.
pub struct Product {
    me: PartyId,
    node: NodeDesc,
    op: Op,
    inputs: Vec<Arc<Wire>>,
    /// `(aᵢ, bᵢ)` once sent.
    split: Option<(Vec<u64>, Vec<u64>)>,
    sent: bool,
    trunc: Option<Trunc>,
    threads: usize,
    kernel: Option<Arc<dyn Kernel>>,
    then: Option<Assisted>,
}

impl Product {
    /// Computes this party's share of the product.
    #[allow(clippy::too_many_arguments)] // the node, its operands, this party, the truncation and the kernel
    pub fn new(
        node: &NodeDesc,
        op: &Op,
        me: PartyId,
        inputs: Vec<Arc<Wire>>,
        trunc: Option<Trunc>,
        threads: usize,
        kernel: Option<Arc<dyn Kernel>>,
    ) -> Product {
        Product {
            me,
            node: node.clone(),
            op: op.clone(),
            inputs,
            split: None,
            sent: false,
            trunc,
            threads,
            kernel,
            then: None,
        }
    }

    /// This party's share `zᵢ`, computed in the first step: the runtime steps a large node on
    /// a blocking thread, while `begin` runs on its async workers.
    fn share(&self) -> Result<Vec<u64>> {
        let operand = |i: usize| {
            let (w, t) = self
                .inputs
                .get(i)
                .zip(self.node.inputs.get(i))
                .ok_or_else(|| Error::internal(format!("a rep3 product without input {i}")))?;
            Operand::from_wire(w, t)
        };
        let (Operand::Secret(x), Operand::Secret(y)) = (operand(0)?, operand(1)?) else {
            return Err(Error::internal("a rep3 product of two secrets got a public operand"));
        };
        local_product(&self.node, &self.op, x, y, &Accel::new(self.kernel.clone(), self.threads))
    }
}

impl NodeEval for Product {
    fn step(&mut self, mut inbox: Vec<Message>) -> Result<Step> {
        if let Some(then) = &mut self.then {
            return then.step(inbox);
        }
        if !self.sent {
            self.sent = true;
            let (send, split) = reshare_send(self.me, self.share()?)?;
            self.split = Some(split);
            return Ok(Step::Exchange { send, expect: vec![ahead(self.me, 1), ahead(self.me, 2)] });
        }
        let split = self.split.take().ok_or_else(|| Error::internal("rep3 product stepped out of order"))?;
        let planes = reshare_receive(self.me, split, &mut inbox)?;
        let w = share::secret(&self.node.output.shape, self.node.output.dtype, planes);
        let Some((inner, gate)) = self.trunc.take() else {
            return Ok(Step::Done(NodeValue::Wire(w)));
        };
        let then =
            Assisted::new(self.node.id, self.me, gate, inner, vec![Arc::new(w)], self.threads, self.kernel.clone());
        self.then.insert(then).step(vec![])
    }
}

/// The first half of a resharing: this party's additive share `zᵢ` split as `aᵢ + PRG(σᵢ)`,
/// the messages (`aᵢ` to party `i − 1`, `σᵢ` to `i + 1`) and what it keeps, `(aᵢ, PRG(σᵢ))`.
pub fn reshare_send(me: PartyId, z: Vec<u64>) -> Result<(Vec<Message>, Kept)> {
    let sigma = share::fresh_seed()?;
    let b = share::expand(&sigma, z.len());
    let a = wire::sub(&z, &b);
    let send = vec![
        Message { peer: ahead(me, 2), payload: wire::to_bytes(&a) },
        Message { peer: ahead(me, 1), payload: sigma.to_vec() },
    ];
    Ok((send, (a, b)))
}

/// The second half: this party's replicated shares `(aᵢ + PRG(σᵢ₋₁), aᵢ₊₁ + PRG(σᵢ))` from what
/// it kept and the two messages it received.
pub fn reshare_receive(me: PartyId, kept: Kept, inbox: &mut Vec<Message>) -> Result<[Vec<u64>; 2]> {
    let (a, b) = kept;
    let n = a.len();
    let a_next = wire::from_bytes(&share::from(inbox, ahead(me, 1), "product share")?, n, "product share")?;
    let from_before = share::from(inbox, ahead(me, 2), "product seed")?;
    let (sigma, rest) = share::take_seed(&from_before, "product seed")?;
    share::expect_empty(rest, "product seed")?;
    Ok([wire::add(&a, &share::expand(&sigma, n)), wire::add(&a_next, &b)])
}

/// A product's output as the input of its truncation.
pub fn truncated_input(node: &NodeDesc) -> mpcflow_sdk::shape::TensorInfo {
    mpcflow_sdk::shape::TensorInfo { vis: mpcflow_sdk::shape::Visibility::Secret, ..node.output.clone() }
}
