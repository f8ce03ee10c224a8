//! The gates of rep3: how each plan node is computed on replicated shares, and costed.
//!
//! | gate | ops | online rounds | online bytes |
//! |---|---|---|---|
//! | input | input | 1 | owner: 8n + 96 |
//! | output | output | 1 | 8n from each party whose predecessor learns the value |
//! | public | constants, ops on public values | 0 | 0 |
//! | linear | add, sub, neg, shift left, sum, reshape, transpose, concat, slice, broadcast, integer scale, products with a public integer operand | 0 | 0 |
//! | product | mul, matmul, conv2d of two secrets (then a dealt truncation for fixed × fixed) | 1 (+ the truncation's) | 8n + 32 per party (+ the truncation's) |
//! | circuit | comparisons and relu (but for the `wan` network profile) | `⌈log₂(w − 1)⌉ + 4` (10 at `w` = 64 bits) | about `3w/8 + 16` bytes per element per party |
//! | assisted | everything else fss2pc computes: comparisons and relu for `wan`, truncations of scales, shifts and products with a public fixed operand, lookup tables, reciprocal, rsqrt, sqrt | fss2pc's gate + 1 | the dealing party `16·(secret input elements) + 8n + 32` + both evaluators' material; the evaluators what fss2pc's parties send |
//!
//! `n` is the number of output elements; composite ops are lowered as for fss2pc (see
//! `mpcflow_fss_gates::lowering`). Which gate a node gets follows fss2pc's classification
//! ([`mpcflow_fss_gates::gates::classify`]) of the same node: its linear and public gates are
//! linear and public here, its product of two secrets is rep3's own product, and every other
//! gate runs as an assisted gate (see [`assisted`]).

pub mod assisted;
pub mod bits;
pub mod circuit;
pub mod io;
pub mod local;
pub mod product;

use crate::share::Operand;
use mpcflow_fss_gates::accel::Accel;
use mpcflow_fss_gates::gates::{self as fss, Gate};
use mpcflow_sdk::protocol::{Cost, EvalInput, Immediate, NodeDesc, NodeEval, NodeKind, NodeValue, Wire};
use mpcflow_sdk::{Error, Network, Op, PartyId, Result, Tensor};
use product::Trunc;

/// How rep3 computes a node.
#[derive(Clone, Debug)]
pub enum Rep3Gate {
    /// A private input shared by its owner.
    Input {
        /// Owner.
        owner: PartyId,
    },
    /// Revealed to some parties.
    Output {
        /// Who learns it.
        reveal_to: Vec<PartyId>,
    },
    /// Everything public: computed in the clear.
    Public,
    /// A linear map of the shares; no communication.
    Linear,
    /// A product of two secrets, resharing, then optionally a truncation.
    Product {
        /// The truncation afterwards.
        trunc: Option<Trunc>,
    },
    /// A comparison or ReLU as a bit circuit on the shares (see [`circuit`]).
    Circuit {
        /// What it computes.
        kind: circuit::Kind,
    },
    /// A gate of fss2pc, dealt by one party to the other two.
    Assisted {
        /// The node as the evaluators' gate sees it.
        inner: NodeDesc,
        /// The gate.
        gate: Gate,
    },
}

/// Classifies a node, or `None` if rep3 cannot compute it (the planner should have lowered it).
pub fn classify(node: &NodeDesc) -> Option<Rep3Gate> {
    let op = match &node.kind {
        NodeKind::Input { owner } => return Some(Rep3Gate::Input { owner: *owner }),
        NodeKind::Output { reveal_to } => return Some(Rep3Gate::Output { reveal_to: reveal_to.clone() }),
        NodeKind::Constant { .. } => return Some(Rep3Gate::Public),
        NodeKind::Op(op) => op,
    };
    let inner = assisted::for_evaluators(node);
    Some(match fss::classify(&inner)? {
        Gate::Public => Rep3Gate::Public,
        Gate::Linear => Rep3Gate::Linear,
        Gate::Bilinear { trunc: None } if fss::linear::is_bilinear(op) => Rep3Gate::Product { trunc: None },
        Gate::Bilinear { trunc: Some(t) } if fss::linear::is_bilinear(op) => {
            Rep3Gate::Product { trunc: Some(truncation(node, t.bits)?) }
        }
        Gate::Input { .. } | Gate::Output { .. } | Gate::Bilinear { .. } => return None,
        // Rounds are cheap but for a WAN: there the dealt gate's fewer rounds win.
        Gate::Sign { swap, a, sigma, .. } if node.network != Network::Wan => {
            Rep3Gate::Circuit { kind: circuit::Kind::Sign { swap, a, sigma } }
        }
        Gate::Relu { .. } if node.network != Network::Wan => Rep3Gate::Circuit { kind: circuit::Kind::Relu },
        gate => Rep3Gate::Assisted { inner, gate },
    })
}

/// The truncation of a product's `bits` low bits: fss2pc's gate for a right shift of it.
fn truncation(node: &NodeDesc, bits: u32) -> Option<Trunc> {
    let inner = NodeDesc {
        kind: NodeKind::Op(Op::Shift { bits: -i32::try_from(bits).ok()? }),
        inputs: vec![product::truncated_input(node)],
        ..assisted::for_evaluators(node)
    };
    let gate = fss::classify(&inner)?;
    matches!(gate, Gate::Scale { .. }).then_some((inner, gate))
}

impl Rep3Gate {
    /// Rounds and online bytes of this gate on `node` (rep3 has no dealer).
    pub fn cost(&self, node: &NodeDesc) -> Cost {
        match self {
            Rep3Gate::Input { owner } => io::input_cost(node, *owner),
            Rep3Gate::Output { reveal_to } => io::output_cost(node, reveal_to),
            Rep3Gate::Public | Rep3Gate::Linear => Cost::zero(node.parties),
            Rep3Gate::Product { trunc } => product::cost(node, trunc.as_ref()),
            Rep3Gate::Circuit { kind } => circuit::cost(node, *kind),
            Rep3Gate::Assisted { inner, gate } => assisted::cost(node.id, inner, gate),
        }
    }

    /// A party's evaluation of `node`.
    pub fn begin(&self, node: &NodeDesc, input: EvalInput, threads: usize) -> Result<Box<dyn NodeEval>> {
        let me = input.party;
        let ops: Vec<Operand<'_>> =
            input.inputs.iter().zip(&node.inputs).map(|(w, t)| Operand::from_wire(w, t)).collect::<Result<_>>()?;
        let operand = |i: usize| {
            ops.get(i).copied().ok_or_else(|| Error::internal(format!("{} without input {i}", node.kind.label())))
        };
        let wire = |w: Wire| Immediate::boxed(Ok(NodeValue::Wire(w)));
        Ok(match (self, &node.kind) {
            (Rep3Gate::Input { owner }, _) => Box::new(io::ShareInput::new(node, me, *owner, input.private)?),
            (Rep3Gate::Output { reveal_to }, _) => Box::new(io::Reveal::new(node, me, reveal_to.clone(), operand(0)?)),
            (Rep3Gate::Public, NodeKind::Constant { value }) => {
                wire(Wire { shape: value.shape.clone(), dtype: value.dtype, planes: vec![value.data.clone()] })
            }
            (Rep3Gate::Public, NodeKind::Op(op)) => {
                // A public output of secret inputs (a count) depends on their shapes only.
                let vals: Vec<Tensor> = ops
                    .iter()
                    .zip(&node.inputs)
                    .map(|(x, t)| match x.public() {
                        Some(v) => Tensor { dtype: t.dtype, shape: t.shape.clone(), data: v.to_vec() },
                        None => Tensor::zeros(t.dtype, t.shape.clone()),
                    })
                    .collect();
                wire(local::public(node, op, &vals)?)
            }
            (Rep3Gate::Linear, NodeKind::Op(op)) => {
                let accel = Accel::new(input.kernel.clone(), threads);
                wire(local::linear(node, op, me, &ops, &accel)?)
            }
            (Rep3Gate::Product { trunc }, NodeKind::Op(op)) => Box::new(product::Product::new(
                node,
                op,
                me,
                input.inputs.clone(),
                trunc.clone(),
                threads,
                input.kernel.clone(),
            )),
            (Rep3Gate::Circuit { kind }, _) => Box::new(circuit::Circuit::new(node, me, *kind, input.inputs.clone())),
            (Rep3Gate::Assisted { inner, gate }, _) => Box::new(assisted::Assisted::new(
                node.id,
                me,
                gate.clone(),
                inner.clone(),
                input.inputs.clone(),
                threads,
                input.kernel.clone(),
            )),
            (g, k) => return Err(Error::internal(format!("rep3 gate {g:?} for node kind {}", k.label()))),
        })
    }
}
