//! The gates of fss2pc: how each plan node is computed on masked wires, dealt, and costed.
//!
//! | gate | ops | online rounds | online bytes per party |
//! |---|---|---|---|
//! | input | input | 1 | owner: 8n |
//! | output | output | 1 | 8n per other receiving party |
//! | public | constants, ops on public values | 0 | 0 |
//! | linear | add, sub, neg, shift left, sum, reshape, transpose, concat, slice, broadcast, integer scale, mul/matmul/conv2d by a public operand | 0 | 0 |
//! | scale | scale by a real factor (then exact truncation), shift right | 1, or 2 | 8n, or 8n + n/8 |
//! | bilinear | mul, matmul, conv2d of two secrets (+1 or 2 rounds of truncation for fixed × fixed) | 1 (2, or 3) | 8n (16n, or 16n + n/8) |
//! | sign | gt, ge, lt, le | 1, or 2 (see below) | 8n, or 8n + n/8 |
//! | relu | relu | 1, or 2 | 8n, or 8n + n/8 |
//! | lookup | exp, sigmoid, tanh, gelu (clip, then quadratic pieces from a 256-point table, see [`lut`]) | 5, or 7 with the truncations' borrows opened as bits; 3 or 5 without a clip (a declared range inside the table); one more where the table is read by one-hot shares instead of a key (the planner's choice from about a hundred elements on `local`) | n/4 + 32n (gelu 3n/8 + 40n); +8n where the split takes two truncations (f > 18 for exp, > 22 for sigmoid, > 23 for tanh and gelu); with bit borrows + n/8 per truncation; with one-hot shares +24n |
//! | onehot | onehot (a table key per index, its expansion read at the masked index, see [`onehot`]) | 1 | 8n |
//! | root | reciprocal, rsqrt, sqrt (leading bit, normalisation, mantissa table, rescaling, see [`root`]) | 7 | 64n + one bit per leading-bit comparison (at f = 16: reciprocal 73n, rsqrt 71n, sqrt 72n) |
//!
//! `n` is the number of output elements. Composite ops are lowered (see [`crate::lowering`]).
//!
//! Comparisons and ReLU have two forms: one round with a DCF whose payload does the select
//! ([`sign`], [`relu`]), or two rounds with a half-tree DReLU key about half the size and a third
//! of the AES work, then a select ([`select`]). [`select::choose`] picks per node from its size
//! and the plan's network profile; `plan` shows the choice. Truncations of products and scales
//! likewise learn their borrow from a DCF in one round or from a half-tree bit in two
//! ([`trunc::choose`]).

//!
//! Each gate's module owns its cost (rounds, online bytes, material), its dealing and its
//! evaluation; this module is the table: [`classify`] picks a node's gate, and [`Gate`]'s
//! methods route the cost, the dealing and the evaluation to that module.

pub mod bilinear;
pub mod io;
pub mod linear;
pub mod lut;
pub mod onehot;
pub mod open;
pub mod relu;
pub mod root;
pub mod scale;
pub mod select;
pub mod sign;
pub mod tables;
pub mod thresholds;
pub mod trunc;

use crate::accel::Accel;
use crate::fss::SeedRng;
use crate::wire::{Masked, MaskedRef};
use linear::Known;
use mpcflow_sdk::protocol::{Cost, EvalInput, Immediate, NodeDesc, NodeEval, NodeKind, NodeValue};
use mpcflow_sdk::shape::Visibility;
use mpcflow_sdk::{DType, Error, Op, PartyId, Result, Tensor};
use select::{Form, Select};
use trunc::Truncation;

/// How a node is computed.
#[derive(Clone, Debug, PartialEq)]
pub enum Gate {
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
    /// Everything public: computed in the clear, mask 0.
    Public,
    /// A linear map of masked values and mask shares; no communication.
    Linear,
    /// Multiply by the public integer `c`, then truncate exactly.
    Scale {
        /// Public multiplier.
        c: u64,
        /// The truncation.
        trunc: Truncation,
    },
    /// A bilinear op of two secrets, then optionally exact truncation of `f` bits.
    Bilinear {
        /// The truncation afterwards.
        trunc: Option<Truncation>,
    },
    /// `a + σ·[d ≥ 0]` with `d = x − y` (or `y − x` when `swap`).
    Sign {
        /// Compute `y − x` instead of `x − y`.
        swap: bool,
        /// Constant term (0 or 1).
        a: u64,
        /// +1 or −1 (as a ring element).
        sigma: u64,
        /// One round or two (see [`select`]).
        form: select::Form,
    },
    /// `max(x, 0)`.
    Relu {
        /// One round or two (see [`select`]).
        form: select::Form,
    },
    /// A smooth function by table lookup.
    Lut(lut::Func),
    /// Reciprocal, rsqrt or sqrt.
    Root(root::Func),
    /// One-hot bits of an index, from a table key.
    OneHot,
}

/// What the dealer deals for one node: each party's material, and what it now knows of the
/// node's output (`None` for an output node, which nothing reads).
pub type Dealt = (Vec<Vec<u8>>, Option<Known>);

impl Gate {
    /// Rounds, online bytes and material of this gate on `node`.
    pub fn cost(&self, node: &NodeDesc) -> Cost {
        match self {
            Gate::Input { owner } => io::input_cost(node, *owner),
            Gate::Output { reveal_to } => io::output_cost(node, reveal_to),
            Gate::Public | Gate::Linear => linear::cost(node),
            Gate::Scale { trunc, .. } => scale::cost(node, *trunc),
            Gate::Bilinear { trunc } => bilinear::cost(node, *trunc),
            Gate::Sign { form: Form::OneRound, .. } => with_form(sign::cost(node), node, "one round (DCF)"),
            Gate::Sign { a, sigma, form: Form::TwoRound, .. } => {
                select::cost(node, Select::Sign { a: *a, sigma: *sigma })
            }
            Gate::Relu { form: Form::OneRound } => with_form(relu::cost(node), node, "one round (two-word DCF)"),
            Gate::Relu { form: Form::TwoRound } => select::cost(node, Select::Relu),
            Gate::Lut(func) => lut::cost(node, *func),
            Gate::Root(func) => root::cost(node, *func),
            Gate::OneHot => onehot::cost(node),
        }
    }

    /// Whether the dealer sends this gate material.
    pub fn needs_material(&self) -> bool {
        !matches!(self, Gate::Output { .. } | Gate::Public | Gate::Linear)
    }

    /// The dealer's side: material for `node` from what it knows of the inputs `ins`.
    pub fn deal(&self, node: &NodeDesc, ins: &[&Known], rng: &mut SeedRng, threads: usize) -> Result<Dealt> {
        let mask = |m: (Vec<Vec<u8>>, Vec<u64>)| (m.0, Some(Known::Mask(m.1)));
        let none = || vec![Vec::new(), Vec::new()];
        let input = |i: usize| ins.get(i).copied().ok_or_else(|| Error::internal("the dealer misses an input"));
        Ok(match (self, &node.kind) {
            (Gate::Input { owner }, _) => mask(io::deal_input(*owner, node.output.numel(), rng)),
            (Gate::Output { .. }, _) => (none(), None),
            (Gate::Public, NodeKind::Constant { value }) => (none(), Some(Known::Public(value.clone()))),
            (Gate::Public, NodeKind::Op(op)) => {
                // A public output of secret inputs (a count) depends on their shapes only.
                let vals: Vec<Tensor> = ins
                    .iter()
                    .zip(&node.inputs)
                    .map(|(k, info)| match k {
                        Known::Public(t) => t.clone(),
                        Known::Mask(_) => Tensor::zeros(info.dtype, info.shape.clone()),
                    })
                    .collect();
                (none(), Some(Known::Public(linear::public(node, op, &vals)?)))
            }
            (Gate::Linear, NodeKind::Op(op)) => (none(), Some(Known::Mask(linear::deal_linear(node, op, ins)?))),
            (Gate::Scale { c, trunc }, NodeKind::Op(op)) => {
                mask(scale::deal_scale(node, op, ins, *c, *trunc, rng, threads)?)
            }
            (Gate::Bilinear { trunc }, NodeKind::Op(op)) => {
                mask(bilinear::deal(node, op, &input(0)?.mask(), &input(1)?.mask(), *trunc, rng, threads)?)
            }
            (Gate::Sign { swap, form: Form::OneRound, .. }, _) => {
                mask(sign::deal(node, &input(0)?.mask(), &input(1)?.mask(), *swap, rng, threads)?)
            }
            (Gate::Sign { swap, a, sigma, form: Form::TwoRound }, _) => {
                let d = sign::difference(node, &input(0)?.mask(), &input(1)?.mask(), *swap)?;
                mask(select::deal(node, Select::Sign { a: *a, sigma: *sigma }, &d, rng, threads)?)
            }
            (Gate::Relu { form: Form::OneRound }, _) => mask(relu::deal(node, &input(0)?.mask(), rng, threads)?),
            (Gate::Relu { form: Form::TwoRound }, _) => {
                mask(select::deal(node, Select::Relu, &input(0)?.mask(), rng, threads)?)
            }
            (Gate::Lut(func), _) => mask(lut::deal(*func, node, &input(0)?.mask(), rng, threads)?),
            (Gate::Root(func), _) => mask(root::deal(*func, node, &input(0)?.mask(), rng, threads)?),
            (Gate::OneHot, _) => mask(onehot::deal(node, &input(0)?.mask(), rng, threads)?),
            (g, k) => return Err(Error::internal(format!("gate {g:?} for node kind {}", k.label()))),
        })
    }

    /// A party's side: the evaluation of `node` from its inputs and material.
    pub fn begin(&self, node: &NodeDesc, input: EvalInput, threads: usize) -> Result<Box<dyn NodeEval>> {
        let me = input.party;
        let accel = Accel::new(input.kernel.clone(), threads);
        let ins: Vec<MaskedRef> = input.inputs.iter().map(|w| MaskedRef::from_wire(w)).collect::<Result<_>>()?;
        let first = || ins.first().ok_or_else(|| Error::internal(format!("{} without input", node.kind.label())));
        let wire = |m: Masked| Immediate::boxed(Ok(NodeValue::Wire(m.into_wire())));
        Ok(match (self, &node.kind) {
            (Gate::Input { owner }, _) => {
                Box::new(io::ShareInput::new(node, me, *owner, &input.material, input.private)?)
            }
            (Gate::Output { reveal_to }, _) => {
                let public = node.inputs.first().is_some_and(|t| t.vis == Visibility::Public);
                Box::new(io::Reveal::new(me, reveal_to.clone(), first()?.to_masked(), public))
            }
            (Gate::Public, NodeKind::Constant { value }) => wire(Masked::public(value.clone())),
            (Gate::Public, NodeKind::Op(op)) => {
                let vals: Vec<Tensor> = ins
                    .iter()
                    .map(|m| Tensor { dtype: m.dtype, shape: m.shape.to_vec(), data: m.value.to_vec() })
                    .collect();
                wire(Masked::public(linear::public(node, op, &vals)?))
            }
            (Gate::Linear, NodeKind::Op(op)) => wire(linear::eval_linear(node, op, &ins)?),
            (Gate::Scale { c, trunc }, NodeKind::Op(op)) => {
                Box::new(scale::ScaleEval::new(node, op, &ins, *c, *trunc, me, input.material, accel)?)
            }
            (Gate::Bilinear { trunc }, NodeKind::Op(op)) => {
                Box::new(bilinear::BilinearEval::new(node, op, &ins[0], &ins[1], *trunc, me, input.material, accel)?)
            }
            (Gate::Sign { swap, a, sigma, form: Form::OneRound }, _) => {
                sign::begin(node, (*swap, *a, *sigma), &ins, me, input.material, accel)?
            }
            (Gate::Sign { swap, a, sigma, form: Form::TwoRound }, _) => {
                let (x, y) = (ins.first(), ins.get(1));
                let (x, y) = x.zip(y).ok_or_else(|| Error::internal("a comparison without two inputs"))?;
                let dhat = sign::difference(node, x.value, y.value, *swap)?;
                select::begin(node, Select::Sign { a: *a, sigma: *sigma }, &dhat, None, me, input.material, accel)?
            }
            (Gate::Relu { form: Form::OneRound }, _) => relu::begin(node, first()?, me, input.material, accel)?,
            (Gate::Relu { form: Form::TwoRound }, _) => {
                let x = first()?;
                select::begin(node, Select::Relu, x.value, Some((x.value, x.share)), me, input.material, accel)?
            }
            (Gate::Lut(func), _) => {
                let x = first()?;
                Box::new(lut::LutEval::new(*func, node, me, x.value.to_vec(), x.share.to_vec(), input.material, accel))
            }
            (Gate::Root(func), _) => {
                let x = first()?;
                Box::new(root::RootEval::new(
                    *func,
                    node,
                    me,
                    x.value.to_vec(),
                    x.share.to_vec(),
                    input.material,
                    accel,
                )?)
            }
            (Gate::OneHot, _) => onehot::begin(node, first()?, me, input.material, accel)?,
            (g, k) => return Err(Error::internal(format!("gate {g:?} for node kind {}", k.label()))),
        })
    }
}

/// `cost` labelled with the form it describes and its comparison width.
fn with_form(mut cost: Cost, node: &NodeDesc, form: &str) -> Cost {
    cost.form = format!("{form}, {} bits", node.fixed_point.compare_bits);
    cost
}

/// Whether an op is a linear map of the ring (valid on masked values and shares alike).
fn is_linear(op: &Op) -> bool {
    matches!(
        op,
        Op::Add
            | Op::Sub
            | Op::Neg
            | Op::Sum { .. }
            | Op::Reshape { .. }
            | Op::Transpose { .. }
            | Op::Concat { .. }
            | Op::Slice { .. }
            | Op::Broadcast { .. }
    )
}

/// Whether `protocol` (fss2pc, or rep3 with these gates) can compute a planned node; the message
/// says why not, in the words of the plan.
pub fn check(node: &NodeDesc, protocol: &str) -> std::result::Result<(), String> {
    match classify(node) {
        Some(_) => Ok(()),
        None => Err(match &node.kind {
            NodeKind::Op(Op::Scale { .. }) => format!("{protocol} scales fixed-point values only with frac_bits ≥ 1"),
            NodeKind::Op(op) if lut::Func::of(op).is_some() => {
                format!(
                    "{protocol} computes {} on fixed-point values with {} ≤ frac_bits ≤ {}",
                    op.name(),
                    lut::MIN_FRAC_BITS,
                    lut::MAX_FRAC_BITS
                )
            }
            NodeKind::Op(op) if root::Func::of(op).is_some() => {
                format!(
                    "{protocol} computes {} on fixed-point values with 1 ≤ frac_bits ≤ {}",
                    op.name(),
                    if matches!(op, Op::Reciprocal) { 22 } else { 24 }
                )
            }
            NodeKind::Op(Op::OneHot { depth }) => {
                format!("{protocol} computes onehot with up to {} classes, not {depth}", onehot::MAX_DEPTH)
            }
            k => format!("{protocol} has no gate for {} on these inputs", k.label()),
        }),
    }
}

/// Classifies a node, or `None` if fss2pc cannot compute it (the planner should have lowered it).
pub fn classify(node: &NodeDesc) -> Option<Gate> {
    // Ops whose output is public (everything public, or a count that depends on shapes only).
    let all_public = node.output.vis == Visibility::Public;
    match &node.kind {
        NodeKind::Input { owner } => Some(Gate::Input { owner: *owner }),
        NodeKind::Output { reveal_to } => Some(Gate::Output { reveal_to: reveal_to.clone() }),
        NodeKind::Constant { .. } => Some(Gate::Public),
        NodeKind::Op(_) if all_public => Some(Gate::Public),
        NodeKind::Op(op) => classify_op(op, node),
    }
}

fn classify_op(op: &Op, node: &NodeDesc) -> Option<Gate> {
    let f = node.fixed_point.frac_bits;
    let fixed_in = |i: usize| node.inputs.get(i).is_some_and(|t| t.dtype == DType::Fixed);
    match op {
        op if is_linear(op) => Some(Gate::Linear),
        Op::Shift { bits } if *bits >= 0 => Some(Gate::Linear),
        Op::Shift { bits } => Some(Gate::Scale { c: 1, trunc: Truncation::for_node(node, bits.unsigned_abs()) }),
        Op::Scale { .. } if node.output.dtype == DType::Int => Some(Gate::Linear),
        // A real factor on a fixed input: multiply by the factor encoded like any fixed-point
        // value (as `ref` does), then truncate. Int inputs with real factors are lowered to a
        // product with a constant (see `crate::lowering`).
        Op::Scale { factor } if fixed_in(0) && f > 0 => {
            Some(Gate::Scale { c: node.fixed_point.encode(*factor), trunc: Truncation::for_node(node, f) })
        }
        Op::Mul | Op::Matmul | Op::Conv2d { .. } => {
            let trunc = (fixed_in(0) && fixed_in(1) && f > 0).then_some(f);
            let public_operand = node.inputs.iter().any(|t| t.vis == Visibility::Public);
            match (public_operand, trunc) {
                (true, None) => Some(Gate::Linear),
                (true, Some(bits)) => Some(Gate::Scale { c: 1, trunc: Truncation::for_node(node, bits) }),
                (false, trunc) => Some(Gate::Bilinear { trunc: trunc.map(|bits| Truncation::for_node(node, bits)) }),
            }
        }
        Op::Ge => Some(Gate::Sign { swap: false, a: 0, sigma: 1, form: select::choose(node, false) }),
        Op::Le => Some(Gate::Sign { swap: true, a: 0, sigma: 1, form: select::choose(node, false) }),
        Op::Gt => Some(Gate::Sign { swap: true, a: 1, sigma: u64::MAX, form: select::choose(node, false) }),
        Op::Lt => Some(Gate::Sign { swap: false, a: 1, sigma: u64::MAX, form: select::choose(node, false) }),
        Op::Relu => Some(Gate::Relu { form: select::choose(node, true) }),
        Op::OneHot { depth } if *depth <= onehot::MAX_DEPTH => Some(Gate::OneHot),
        // The pieces' midpoints need f > 4; the interpolated value (f + 2q fractional bits)
        // stays in the truncation's half range by the choice of q (`lut::split_bits`).
        op if fixed_in(0) && (lut::MIN_FRAC_BITS..=lut::MAX_FRAC_BITS).contains(&f) && lut::Func::of(op).is_some() => {
            lut::Func::of(op).map(Gate::Lut)
        }
        op if fixed_in(0) => root::Func::of(op).filter(|g| root::params(*g, f).is_some()).map(Gate::Root),
        _ => None,
    }
}
