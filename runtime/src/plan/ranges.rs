//! Value ranges through a plan, and the comparison widths they allow.
//!
//! An input may declare `range: [lo, hi]` (checked by its owner on its own data before sharing,
//! in every protocol), and so may a node (`range:` on the node, or written by `mpcflow import
//! --calibrate`: a contract `ref` enforces, which bounds the node whatever the rules below
//! derive). From those ranges and the constants this pass bounds every node's values
//! by an interval of ring words (interval arithmetic, rounded outward, with a margin for the
//! fixed-point rounding of products, scales and means), and gives each comparison and ReLU the
//! narrowest `compare_bits` its operands' difference fits in, with one bit to spare (a table
//! lookup: its input's magnitude, which its clip compares with the table's ends): fewer tree
//! levels, smaller keys (what Sigma chooses by hand and CrypTFlow's Athos does for scales). A
//! node whose range is not known (an op without a rule here, an input without a declared range)
//! keeps the graph's `compare_bits`. The rules only ever widen, so a narrowed comparison is
//! exact for every value the declared ranges admit, and `ref` enforces each node's width as the
//! contract it is, so testing under `ref` would show an unsound rule.

use super::PlanNode;
use mpcflow_sdk::graph::GraphSpec;
use mpcflow_sdk::protocol::NodeKind;
use mpcflow_sdk::{DType, FixedPoint, Op};

/// An inclusive interval of signed ring words.
type Range = (i128, i128);

/// Bounds beyond this many words are not tracked (the ring holds `±2^63`).
const LIMIT: i128 = 1 << 63;

fn known(lo: i128, hi: i128) -> Option<Range> {
    (lo > -LIMIT && hi < LIMIT && lo <= hi).then_some((lo, hi))
}

fn hull(a: Range, b: Range) -> Range {
    (a.0.min(b.0), a.1.max(b.1))
}

/// The interval of `x·y` over both intervals.
fn product(a: Range, b: Range) -> Range {
    let p = [a.0 * b.0, a.0 * b.1, a.1 * b.0, a.1 * b.1];
    (p.iter().copied().min().unwrap_or(0), p.iter().copied().max().unwrap_or(0))
}

/// `r / 2^bits`, rounded outward (truncation rounds to nearest; one word of slack each side);
/// `None` where the value before truncation may pass the truncation's exact range (`2^62`), past
/// which a secure product is wrong anyway (and `ref` refuses it).
fn truncated(r: Range, bits: u32) -> Option<Range> {
    let exact = 1i128 << 62;
    (r.0 > -exact && r.1 < exact).then(|| ((r.0 >> bits) - 1, (r.1 >> bits) + 1))
}

/// Narrows each comparison's and ReLU's `compare_bits` to what the declared ranges allow.
pub(super) fn narrow_comparisons(nodes: &mut [PlanNode], spec: &GraphSpec) {
    let mut ranges: Vec<Option<Range>> = Vec::with_capacity(nodes.len());
    for node in nodes.iter_mut() {
        let r = range_of(node, &ranges, spec);
        let at = |k: usize| node.inputs.get(k).and_then(|&id| ranges.get(id as usize).copied().flatten());
        let difference = match &node.desc.kind {
            NodeKind::Op(Op::Relu) => at(0),
            // A lookup compares its input with the ends of its table, within `2^(f+4)` words:
            // its magnitude bounds the width (see `kernels::domains::lookup_bits`), in
            // fixed-point words (an int input is made fixed first).
            NodeKind::Op(Op::Exp | Op::Sigmoid | Op::Tanh | Op::Gelu) => {
                let int = node.desc.inputs.first().is_some_and(|t| t.dtype != DType::Fixed);
                let f = spec.fixed_point.frac_bits;
                at(0).and_then(|(lo, hi)| if int { known(lo << f, hi << f) } else { Some((lo, hi)) })
            }
            NodeKind::Op(Op::Gt | Op::Ge | Op::Lt | Op::Le) => {
                at(0).zip(at(1)).and_then(|(a, b)| known(a.0 - b.1, a.1 - b.0))
            }
            _ => None,
        };
        if let Some((lo, hi)) = difference {
            let widest = lo.unsigned_abs().max(hi.unsigned_abs());
            // |d| < 2^(bits − 1), with one bit to spare.
            let bits = (128 - widest.leading_zeros()) + 2;
            let fp = &mut node.desc.fixed_point;
            fp.compare_bits = fp.compare_bits.min(bits.max(2));
        }
        ranges.push(r);
    }
}

/// The interval of node `node`'s values, from those of the nodes before it.
fn range_of(node: &PlanNode, ranges: &[Option<Range>], spec: &GraphSpec) -> Option<Range> {
    let fp: FixedPoint = spec.fixed_point;
    let desc = &node.desc;
    let at = |k: usize| node.inputs.get(k).and_then(|&id| ranges.get(id as usize).copied().flatten());
    let scale = |dtype: DType| if dtype == DType::Fixed { fp.scale() } else { 1.0 };
    match &desc.kind {
        // A local value's input gate: the value's range.
        NodeKind::Input { .. } if !node.inputs.is_empty() => at(0),
        NodeKind::Input { .. } => {
            let decl = spec.inputs.iter().find(|i| i.name == desc.name)?;
            let [lo, hi] = decl.range?;
            let s = scale(decl.dtype);
            known((lo * s).floor() as i128, (hi * s).ceil() as i128)
        }
        NodeKind::Constant { value } => {
            let words = value.data.iter().map(|&w| i128::from(w as i64));
            known(words.clone().min()?, words.max()?)
        }
        NodeKind::Output { .. } => None,
        NodeKind::Op(op) => {
            let derived = op_range(op, node, &at, fp);
            // A declared range is a contract (`ref` enforces it): it bounds the node whatever the
            // rules above could derive, and narrows what they did.
            let declared = desc.range.and_then(|[lo, hi]| {
                let s = scale(desc.output.dtype);
                known((lo * s).floor() as i128, (hi * s).ceil() as i128)
            });
            match (derived, declared) {
                (Some(d), Some(c)) => known(d.0.max(c.0), d.1.min(c.1)).or(Some(c)),
                (d, c) => c.or(d),
            }
        }
    }
}

fn op_range(op: &Op, node: &PlanNode, at: &dyn Fn(usize) -> Option<Range>, fp: FixedPoint) -> Option<Range> {
    let desc = &node.desc;
    let f = fp.frac_bits;
    let fixed = |k: usize| desc.inputs.get(k).is_some_and(|t| t.dtype == DType::Fixed);
    let rescaled = fixed(0) && fixed(1) && f > 0;
    let numel = |k: usize| desc.inputs.get(k).map_or(0, |t| t.numel());
    let r = match op {
        Op::Add => {
            let (a, b) = (at(0)?, at(1)?);
            (a.0 + b.0, a.1 + b.1)
        }
        Op::Sub => {
            let (a, b) = (at(0)?, at(1)?);
            (a.0 - b.1, a.1 - b.0)
        }
        Op::Neg => {
            let a = at(0)?;
            (-a.1, -a.0)
        }
        Op::Mul => {
            let p = product(at(0)?, at(1)?);
            if rescaled { truncated(p, f)? } else { p }
        }
        Op::Matmul | Op::Conv2d { .. } => {
            // A sum of k products; a convolution's padding adds zeros.
            let k = match op {
                Op::Matmul => *desc.inputs.first()?.shape.last()? as i128,
                _ => (numel(1) / (*desc.inputs.get(1)?.shape.first()?).max(1)) as i128,
            };
            let p = product(at(0)?, at(1)?);
            let s = (p.0.min(0).saturating_mul(k), p.1.max(0).saturating_mul(k));
            if rescaled { truncated(s, f)? } else { s }
        }
        Op::Scale { factor } if fixed(0) => {
            let c = i128::from(fp.encode(*factor) as i64);
            truncated(product(at(0)?, (c, c)), f)?
        }
        Op::Scale { factor } if factor.fract() == 0.0 && factor.abs() < 1e15 => {
            let c = *factor as i128;
            product(at(0)?, (c, c))
        }
        Op::Shift { bits } if *bits >= 0 && *bits < 63 => {
            let a = at(0)?;
            (a.0 << bits, a.1 << bits)
        }
        Op::Shift { bits } if *bits < 0 => truncated(at(0)?, bits.unsigned_abs().min(127))?,
        Op::Sum { .. } => {
            let k = (numel(0) / desc.output.numel().max(1)) as i128;
            let a = at(0)?;
            (a.0.saturating_mul(k), a.1.saturating_mul(k))
        }
        // A mean stays within its inputs, up to its stated rounding (1 + |mean|/256 ulp); its
        // output is fixed point even for int inputs; padding adds zeros to a pooling window.
        Op::Mean { .. } | Op::Avgpool(_) => {
            let mut a = at(0)?;
            if !fixed(0) {
                a = (a.0 << f, a.1 << f);
            }
            if let Op::Avgpool(p) = op
                && p.padding != [0, 0]
            {
                a = hull(a, (0, 0));
            }
            (a.0 - a.0.abs() / 128 - 4, a.1 + a.1.abs() / 128 + 4)
        }
        Op::Reshape { .. }
        | Op::Transpose { .. }
        | Op::Slice { .. }
        | Op::Broadcast { .. }
        | Op::Maxpool(_)
        | Op::Max { axis: Some(_) }
        | Op::Min { axis: Some(_) } => at(0)?,
        Op::Concat { .. } | Op::Max { axis: None } | Op::Min { axis: None } => {
            (0..node.inputs.len()).map(at).collect::<Option<Vec<_>>>()?.into_iter().reduce(hull)?
        }
        Op::Select => hull(at(1)?, at(2)?),
        Op::Relu => {
            let a = at(0)?;
            (a.0.max(0), a.1.max(0))
        }
        Op::Gt | Op::Ge | Op::Lt | Op::Le | Op::Eq => (0, 1),
        Op::Sigmoid if fixed(0) => (-2, (1i128 << f) + 2),
        Op::Tanh if fixed(0) => (-(1i128 << f) - 2, (1i128 << f) + 2),
        _ => return None,
    };
    known(r.0, r.1)
}
