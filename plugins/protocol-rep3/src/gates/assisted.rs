//! Non-linear gates dealt by one computing party to the other two.
//!
//! rep3 computes comparisons, ReLU, truncations and lookup tables with the masked-wire gates of
//! `mpcflow-fss-gates` (the gates of fss2pc). For node `id` the party `d = id mod 3` plays
//! fss2pc's dealer for that node only, and the other two, `a = d + 1` and `b = d + 2`, evaluate.
//! The honest-majority trust model allows it: `d` learns nothing (it only sends), and `a` and
//! `b` see exactly what fss2pc's parties see. Rotating `d` with the node spreads the key
//! generation over the three parties.
//!
//! **In** (to a masked wire, no round of its own): party `i` holds `(xᵢ, xᵢ₊₁)`. The dealing
//! party draws a fresh mask `r` and sends `c = x_d + x_{d+1} + r` to `a` and `b`; both hold
//! `x_{d+2}`, so both compute `x̂ = c + x_{d+2} = x + r`. The additive shares of `r` that the
//! gates need come for free: `a` takes `c − x_{d+1} = x_d + r` and `b` takes `−x_d`, which
//! sum to `r`. The pair has the distribution of a fresh split by fss2pc's dealer (`r` is fresh
//! and uniform, and `x_d` is a uniform share independent of `x`). Beyond an fss2pc party's view
//! (`x̂`, its mask share, its keys, the gate's messages), `a` also holds `x_{d+1}` (then `c` and
//! `x_{d+2}` follow from `x̂` and its mask share) and `b` also holds `x_{d+2}`: shares
//! independent of everything else either sees, so the views are simulated as in fss2pc. A wire
//! read by several gates gets a fresh `r` in each, so nothing carries from one gate to the next.
//!
//! **The gate**: `d` deals the material for the two evaluators (as fss2pc's dealer would with
//! the input masks `r`), and sends it followed by `c`; `a` and `b` run the gate and end with the
//! output's masked value `ŷ = y + r_y`, whose mask `r_y` the dealing party chose.
//!
//! **Out** (no round of its own): the replicated shares `(y_d, y_{d+1}, y_{d+2})` are
//! `y_{d+2} = ŷ` (held by `a` and `b`, never by `d`), `y_{d+1} = PRG(σ)` for a fresh seed `σ`
//! that `d` sends `a`, and `y_d = −r_y − y_{d+1}`, which `d` sends `b` (masked by `y_{d+1}`,
//! which `b` never sees). All of `d`'s messages go out in one round, before the gate's own.
//!
//! Costs: the gate's rounds plus one; `d` sends `16` bytes per secret input element, `8` per
//! output element, a seed and both evaluators' material; `a` and `b` send what the fss2pc
//! gate's parties send.

use crate::share::{self, SEED, ahead};
use mpcflow_fss_gates::fss::SeedRng;
use mpcflow_fss_gates::gates::Gate;
use mpcflow_fss_gates::gates::linear::Known;
use mpcflow_fss_gates::wire::{self, Masked};
use mpcflow_sdk::kernel::Kernel;
use mpcflow_sdk::protocol::{Cost, EvalInput, Message, NodeDesc, NodeEval, NodeValue, Step, Wire};
use mpcflow_sdk::shape::Visibility;
use mpcflow_sdk::{Error, PartyId, Result, Tensor};
use std::sync::Arc;

/// Gates with more output elements than this are dealt one at a time per process (see
/// [`crate::throttle`]). The runtime steps a node with more than 2^14 elements in its output or
/// any input on a blocking thread (`BLOCKING_NUMEL` in runtime/src/schedule/party.rs), so such a
/// gate may wait for the permit; a smaller one may be stepped on an async worker, which must
/// not wait, and is dealt without one.
const DEAL_ALONE: usize = 1 << 14;

/// The dealing party of node `id`, and the two evaluators (fss2pc's parties 0 and 1).
pub fn roles(id: u32) -> [PartyId; 3] {
    let d = PartyId((id % 3) as u16);
    [d, ahead(d, 1), ahead(d, 2)]
}

/// `node` as the two evaluators' gate sees it.
pub fn for_evaluators(node: &NodeDesc) -> NodeDesc {
    NodeDesc { parties: 2, ..node.clone() }
}

/// Elements of the secret inputs of `inner`.
fn secret_elements(inner: &NodeDesc) -> u64 {
    inner.inputs.iter().filter(|t| t.vis != Visibility::Public).map(|t| t.numel() as u64).sum()
}

/// The cost, for three parties, of `gate` on `inner` dealt by node `id`'s dealing party.
pub fn cost(id: u32, inner: &NodeDesc, gate: &Gate) -> Cost {
    let g = gate.cost(inner);
    let [d, a, b] = roles(id);
    let material: u64 = g.dealer_bytes.iter().sum();
    let mut c = Cost::zero(share::PARTIES);
    c.rounds = g.rounds + 1;
    c.online_bytes[d.index()] = 16 * secret_elements(inner) + SEED as u64 + 8 * inner.output.numel() as u64 + material;
    c.online_bytes[a.index()] = g.online_bytes.first().copied().unwrap_or(0);
    c.online_bytes[b.index()] = g.online_bytes.get(1).copied().unwrap_or(0);
    c.form = if g.form.is_empty() {
        format!("dealt by party {}", d.0)
    } else {
        format!("{}; dealt by party {}", g.form, d.0)
    };
    c
}

/// Which side of the gate this party is on, and what it has heard.
enum State {
    /// Nothing done yet.
    Start,
    /// The dealing party, its messages sent; its output shares.
    Dealt(Wire),
    /// An evaluator waiting for the dealing party's message.
    Waiting,
    /// An evaluator running the gate; what it needs to turn `ŷ` into its shares.
    Running { gate: Box<dyn NodeEval>, out: Out },
    /// Finished.
    Finished,
}

/// An evaluator's part of the output sharing besides `ŷ`.
enum Out {
    /// `a`: the seed of `y_{d+1}`.
    A([u8; SEED]),
    /// `b`: `y_d`.
    B(Vec<u64>),
}

/// One party's evaluation of an assisted gate on replicated inputs.
pub struct Assisted {
    me: PartyId,
    roles: [PartyId; 3],
    gate: Gate,
    inner: NodeDesc,
    inputs: Vec<Arc<Wire>>,
    threads: usize,
    kernel: Option<Arc<dyn Kernel>>,
    state: State,
}

impl Assisted {
    /// The gate on `inputs` (rep3 wires, as `inner.inputs` describes them) for node `id`.
    pub fn new(
        id: u32,
        me: PartyId,
        gate: Gate,
        inner: NodeDesc,
        inputs: Vec<Arc<Wire>>,
        threads: usize,
        kernel: Option<Arc<dyn Kernel>>,
    ) -> Assisted {
        Assisted { me, roles: roles(id), gate, inner, inputs, threads, kernel, state: State::Start }
    }

    fn operands(&self) -> Result<Vec<share::Operand<'_>>> {
        self.inputs.iter().zip(&self.inner.inputs).map(|(w, t)| share::Operand::from_wire(w, t)).collect()
    }

    /// The dealing party: masks, material and the output's shares; the round's messages.
    fn deal(&mut self) -> Result<Step> {
        let [_, a, b] = self.roles;
        let _dealing = (self.inner.output.numel() > DEAL_ALONE).then(crate::throttle::acquire);
        let mut rng = SeedRng::from_os_entropy().map_err(mpcflow_fss_gates::errors::fss_error)?;
        let mut known = Vec::with_capacity(self.inputs.len());
        let mut masked_inputs = Vec::new();
        for (x, t) in self.operands()?.iter().zip(&self.inner.inputs) {
            match x {
                share::Operand::Public(v) => {
                    known.push(Known::Public(Tensor { dtype: t.dtype, shape: t.shape.clone(), data: v.to_vec() }))
                }
                share::Operand::Secret([own, next]) => {
                    let r = mpcflow_fss_gates::material::draw(&mut rng, own.len());
                    let c: Vec<u64> =
                        own.iter().zip(*next).zip(&r).map(|((x, y), r)| x.wrapping_add(*y).wrapping_add(*r)).collect();
                    masked_inputs.extend_from_slice(&wire::to_bytes(&c));
                    known.push(Known::Mask(r));
                }
            }
        }
        let refs: Vec<&Known> = known.iter().collect();
        let (material, out) = self.gate.deal(&self.inner, &refs, &mut rng, self.threads)?;
        drop(known);
        let r_out = match out {
            Some(Known::Mask(r)) => r,
            _ => return Err(Error::internal("an assisted gate without an output mask")),
        };
        let [m0, m1]: [Vec<u8>; 2] =
            material.try_into().map_err(|_| Error::internal("an assisted gate's material is not for two parties"))?;
        let sigma = share::fresh_seed()?;
        let next = share::expand(&sigma, r_out.len());
        let own: Vec<u64> = r_out.iter().zip(&next).map(|(r, y)| 0u64.wrapping_sub(*r).wrapping_sub(*y)).collect();
        // The material first and the rest after it: the evaluator cuts the rest off and hands
        // the material to the gate in place (material is most of the bytes).
        let mut to_a = m0;
        to_a.extend_from_slice(&masked_inputs);
        to_a.extend_from_slice(&sigma);
        let mut to_b = m1;
        to_b.extend_from_slice(&masked_inputs);
        to_b.extend_from_slice(&wire::to_bytes(&own));
        let out = share::secret(&self.inner.output.shape, self.inner.output.dtype, [own, next]);
        self.state = State::Dealt(out);
        Ok(Step::Exchange {
            send: vec![Message { peer: a, payload: to_a }, Message { peer: b, payload: to_b }],
            expect: vec![],
        })
    }

    /// An evaluator: the masked inputs from the dealing party's message, then the gate's first step.
    fn start_gate(&mut self, mut inbox: Vec<Message>) -> Result<Step> {
        let [d, a, _] = self.roles;
        let is_a = self.me == a;
        let mut material = share::from(&mut inbox, d, "assisted gate")?;
        let n = self.inner.output.numel();
        let tail = 8 * secret_elements(&self.inner) as usize + if is_a { SEED } else { 8 * n };
        let at = material.len().checked_sub(tail).ok_or_else(|| {
            Error::protocol(format!("assisted gate: {} bytes, expected at least {tail}", material.len()))
        })?;
        let rest = material.split_off(at);
        let mut rest: &[u8] = &rest;
        let mut masked = Vec::with_capacity(self.inputs.len());
        for (x, t) in self.operands()?.iter().zip(&self.inner.inputs) {
            let m = match x {
                share::Operand::Public(v) => {
                    Masked::public(Tensor { dtype: t.dtype, shape: t.shape.clone(), data: v.to_vec() })
                }
                share::Operand::Secret([own, next]) => {
                    let (c, tail) = share::take_words(rest, own.len(), "masked input")?;
                    rest = tail;
                    // a holds (x_{d+1}, x_{d+2}); b holds (x_{d+2}, x_d).
                    let (common, other) = if is_a { (*next, *own) } else { (*own, *next) };
                    let value: Vec<u64> = c.iter().zip(common).map(|(c, x)| c.wrapping_add(*x)).collect();
                    let share: Vec<u64> = if is_a {
                        c.iter().zip(other).map(|(c, x)| c.wrapping_sub(*x)).collect()
                    } else {
                        other.iter().map(|x| 0u64.wrapping_sub(*x)).collect()
                    };
                    Masked { shape: t.shape.clone(), dtype: t.dtype, value, share }
                }
            };
            masked.push(Arc::new(m.into_wire()));
        }
        let out = if is_a {
            let (sigma, tail) = share::take_seed(rest, "output seed")?;
            share::expect_empty(tail, "output seed")?;
            Out::A(sigma)
        } else {
            let (own, tail) = share::take_words(rest, n, "output share")?;
            share::expect_empty(tail, "output share")?;
            Out::B(own)
        };
        let input = EvalInput {
            party: PartyId(u16::from(!is_a)),
            inputs: masked,
            material,
            private: None,
            kernel: self.kernel.clone(),
        };
        let gate = self.gate.begin(&self.inner, input, self.threads)?;
        self.state = State::Running { gate, out };
        self.run_gate(vec![])
    }

    /// One step of the gate, with messages between the outer and the gate's party numbers.
    fn run_gate(&mut self, inbox: Vec<Message>) -> Result<Step> {
        let [_, a, b] = self.roles;
        let outer = |p: PartyId| if p.0 == 0 { a } else { b };
        let inner = |p: PartyId| PartyId(u16::from(p == b));
        let State::Running { gate, .. } = &mut self.state else {
            return Err(Error::internal("assisted gate stepped out of order"));
        };
        let inbox = inbox.into_iter().map(|m| Message { peer: inner(m.peer), payload: m.payload }).collect();
        match gate.step(inbox)? {
            Step::Exchange { send, expect } => Ok(Step::Exchange {
                send: send.into_iter().map(|m| Message { peer: outer(m.peer), payload: m.payload }).collect(),
                expect: expect.into_iter().map(outer).collect(),
            }),
            Step::Done(NodeValue::Wire(w)) => {
                let State::Running { out, .. } = std::mem::replace(&mut self.state, State::Finished) else {
                    return Err(Error::internal("assisted gate finished twice"));
                };
                let yhat = w.planes.into_iter().next().ok_or_else(|| Error::internal("gate output without planes"))?;
                let planes = match out {
                    Out::A(sigma) => [share::expand(&sigma, yhat.len()), yhat],
                    Out::B(own) => [yhat, own],
                };
                Ok(Step::Done(NodeValue::Wire(share::secret(&w.shape, w.dtype, planes))))
            }
            Step::Done(NodeValue::Revealed(_)) => Err(Error::internal("an assisted gate revealed a value")),
        }
    }
}

impl NodeEval for Assisted {
    fn step(&mut self, inbox: Vec<Message>) -> Result<Step> {
        let [d, ..] = self.roles;
        match std::mem::replace(&mut self.state, State::Finished) {
            State::Start if self.me == d => self.deal(),
            State::Start => {
                self.state = State::Waiting;
                Ok(Step::Exchange { send: vec![], expect: vec![d] })
            }
            State::Dealt(w) => Ok(Step::Done(NodeValue::Wire(w))),
            State::Waiting => self.start_gate(inbox),
            running @ State::Running { .. } => {
                self.state = running;
                self.run_gate(inbox)
            }
            State::Finished => Err(Error::internal("assisted gate stepped after it finished")),
        }
    }
}
