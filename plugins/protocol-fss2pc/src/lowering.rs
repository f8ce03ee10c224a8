//! How fss2pc lowers ops it has no gate for into ones it has.
//!
//! | op | lowered to | rounds |
//! |---|---|---|
//! | `mean` | `sum`, `scale` by `2^K/n`, `shift` by `−K` (K = 14) | 2 |
//! | `scale` of an int by a real factor | `mul` by the factor as a fixed constant | 0 |
//! | `eq` | `ge(a, b) · ge(b, a)` | 2 |
//! | `max(a, b)`, `min(a, b)` | `b + [a ≥ b]·(a − b)`, `a + [a ≥ b]·(b − a)` | 2 |
//! | `select(c, a, b)` | `b + c·(a − b)` | 1 |
//!
//! Not yet supported (the planner refuses them with a clear error): reductions of max/min over
//! an axis, maxpool, avgpool, argmax, and the lookup-table functions (exp, reciprocal, div,
//! sqrt, rsqrt, sigmoid, tanh, gelu) with softmax and layernorm built from them.

use mpcflow_sdk::protocol::{LRef, LoweredNode, Lowering};
use mpcflow_sdk::shape::{TensorInfo, norm_axes};
use mpcflow_sdk::{DType, FixedPoint, Op, Tensor};

/// Extra bits of `1/n` in `mean`: the factor `2^K/n` is encoded with the graph's `f` bits, so
/// the mean is off by at most `|sum|·2^-(K+1)` ulp plus 1 ulp of rounding (for the hospital
/// example, 413 values summing to 53,900: under 3 ulp). The product before the shift must stay
/// below 2^63, which bounds `|mean| < 2^(63 − 2f − K)` (2^17 at f = 16).
pub const MEAN_EXTRA_BITS: u32 = 14;

/// Whether fss2pc can evaluate `op` directly or after [`lower`].
pub fn supported(op: &Op) -> bool {
    !matches!(
        op,
        Op::Max { axis: Some(_) }
            | Op::Min { axis: Some(_) }
            | Op::Maxpool(_)
            | Op::Avgpool(_)
            | Op::Argmax { .. }
            | Op::Reciprocal
            | Op::Div
            | Op::Sqrt
            | Op::Rsqrt
            | Op::Exp
            | Op::Sigmoid
            | Op::Tanh
            | Op::Gelu
            | Op::Softmax { .. }
            | Op::Layernorm { .. }
    )
}

fn node(op: Op, inputs: Vec<LRef>) -> LoweredNode {
    LoweredNode { op, inputs }
}

/// The lowering of `op`, if fss2pc lowers it.
pub fn lower(op: &Op, inputs: &[TensorInfo], fp: FixedPoint) -> Option<Lowering> {
    use LRef::{Input, Node};
    let nodes = match op {
        Op::Mean { axes, keepdims } => {
            let x = inputs.first()?;
            let ax = norm_axes(axes, x.shape.len()).ok()?;
            let count: usize = ax.iter().map(|&i| x.shape[i]).product();
            if count == 0 {
                return None;
            }
            let k = MEAN_EXTRA_BITS;
            vec![
                node(Op::Sum { axes: axes.clone(), keepdims: *keepdims }, vec![Input(0)]),
                node(Op::Scale { factor: (1u64 << k) as f64 / count as f64 }, vec![Node(0)]),
                node(Op::Shift { bits: -(k as i32) }, vec![Node(1)]),
            ]
        }
        Op::Scale { factor } if inputs.first()?.dtype != DType::Fixed && factor.fract() != 0.0 => {
            vec![node(Op::Mul, vec![Input(0), LRef::Const(Tensor::scalar(DType::Fixed, *factor, fp))])]
        }
        Op::Eq => vec![
            node(Op::Ge, vec![Input(0), Input(1)]),
            node(Op::Ge, vec![Input(1), Input(0)]),
            node(Op::Mul, vec![Node(0), Node(1)]),
        ],
        Op::Max { axis: None } => vec![
            node(Op::Ge, vec![Input(0), Input(1)]),
            node(Op::Sub, vec![Input(0), Input(1)]),
            node(Op::Mul, vec![Node(0), Node(1)]),
            node(Op::Add, vec![Input(1), Node(2)]),
        ],
        Op::Min { axis: None } => vec![
            node(Op::Ge, vec![Input(0), Input(1)]),
            node(Op::Sub, vec![Input(1), Input(0)]),
            node(Op::Mul, vec![Node(0), Node(1)]),
            node(Op::Add, vec![Input(0), Node(2)]),
        ],
        Op::Select => vec![
            node(Op::Sub, vec![Input(1), Input(2)]),
            node(Op::Mul, vec![Input(0), Node(0)]),
            node(Op::Add, vec![Input(2), Node(1)]),
        ],
        _ => return None,
    };
    Some(Lowering { nodes })
}
