//! How fss2pc lowers ops it has no gate for into ones it has.
//!
//! | op | lowered to | rounds |
//! |---|---|---|
//! | `mean` | `sum`, then an exact division (below) | 3 |
//! | `scale` of an int by a real factor | `mul` by the factor as a fixed constant | 0 |
//! | `eq` | `ge(a, b) · ge(b, a)` | 2 |
//! | `max(a, b)`, `min(a, b)` | `b + [a ≥ b]·(a − b)`, `a + [a ≥ b]·(b − a)` | 2 |
//! | `select(c, a, b)` | `b + c·(a − b)` | 1 |
//! | `max`/`min` over an axis | a tree of halves: `slice`, pairwise `max`, `reshape` | 2·⌈log₂ n⌉ |
//! | `maxpool` | one strided `slice` per kernel position (padding: copies of the edge, which never change a maximum), a `max` tree | 2·⌈log₂ kh·kw⌉ |
//! | `avgpool` | the same slices summed (padding: zeros), then an exact division by the area | 3 |
//! | `histogram(x, edges)` | `ge` of `x` as a column with the edges' thresholds (one comparison per element and edge, see [`mpcflow_ring::kernels::histogram`]) in chunks of about `CHUNK` comparisons, `sum` over the elements, the difference of adjacent counts | 1 |
//!
//! **Division by a public count `n`** (mean, avgpool): `s' = round(s / 2^g)` with
//! `g = ⌊log₂ n⌋`, then `scale` by `2^(g+K)/n ∈ [2^K, 2^(K+1))` and `shift` by `−K` (K = 7).
//! Error at most `1 + |mean|·2^-(K+1)` ulp, for `|mean| < 2^(62−2f−K)` (2^23 at f = 16), for
//! any `n`. An int input is first made fixed (a product with the constant 1.0).
//!
//! | `argmax` | a tree over adjacent pairs keeping `(value, index)`, `gt` then two products per level (first maximum wins, as in `ref`); one-hot: `eq` with the indices | 2·⌈log₂ n⌉ (+2) |
//!
//! | `exp`, `sigmoid`, `tanh`, `gelu` of an int | `mul` by 1.0 (to fixed), then the lookup gate | 5 (7 with bit borrows; one more with one-hot shares) |
//!
//! | `reciprocal`, `rsqrt`, `sqrt` of an int | `mul` by 1.0 (to fixed), then the root gate ([`crate::gates::root`]) | 8 |
//! | `div(a, b)` | `a · reciprocal(b)`: a fixed × fixed product with exact truncation (int `a`: an exact int × fixed product) | 9 (8) |
//! | `softmax(x, axis)` | `e = exp(x − max(x, axis))` (max over the axis, reshaped to keep the axis), `e · reciprocal(sum(e, axis, keepdims))` | 2·⌈log₂ n⌉ + 14 (+ 2 when the lookup opens its borrows, + 1 when it reads one-hot shares) |
//! | `layernorm(x, axis, ε[, γ, β])` | `c = x − mean(x)`, `c · rsqrt(mean(c·c) + ε)`, then `· γ` and `+ β` (each made fixed first) | 17 (+2 with γ) |
//!
//! **Accuracy** (f = 16; `ε_r = 2^-20` the root gate's relative error, see [`crate::gates::root`]):
//! - `div`: `|Δ| ≤ ε_r·|a/b| + (|a| + 2)` ulp, for `|a/b| < 2^(62−2f)`; `div(a, 0)` is not
//!   `ref`'s saturated value (it is `a · i64::MAX` truncated: undefined).
//! - `softmax`: `|Δ| ≤ (7 + 4.1·n·y)` ulp for output `y` and lane length `n` (the exps are within
//!   `4.1` ulp each, their sum `≥ 1`); `exp` is held at `exp(-16) ≈ 0` below −16 as in the lookup gate.
//! - `layernorm`: with `Δc = 1.5 + |mean|/256` ulp (one `mean`), `Δvar = 2·max|c|·Δc + 1.5 +
//!   var/256` ulp and `inv = 1/√(var + ε)`:
//!   `|Δ| ≤ 2·(Δc·inv + |y|·(2^-20 + Δvar/(2(var + ε))) + (|c| + 2) ulp)·|γ| + 2` ulp (the
//!   `|c|` ulp: rsqrt's output is rounded to one ulp, where `ref` does not round it), for
//!   `|c| < 2^(31.5−f)` so the squares fit. An `ε` that encodes below one ulp (BERT's `1e-12`,
//!   or 0) is computed as `ε' = 1` ulp, so that a constant lane gives `β` plus the bound above
//!   rather than `rsqrt(0)`'s saturation: the bound then takes `ε'` for `ε`, plus
//!   `|c|·|γ|·(1/√(var + ε) − 1/√(var + ε'))` for the change (0 where `c = 0`; relative
//!   `2^-f/(2·var)` for a lane of variance `var`, `7.6e-6` at `var = 1`, `f = 16`).

use mpcflow_sdk::protocol::{LRef, LoweredNode, Lowering};
use mpcflow_sdk::shape::{TensorInfo, norm_axes};
use mpcflow_sdk::{DType, FixedPoint, Op, Tensor};

/// Extra bits of the factor in a division by a public count (see the module docs).
pub const DIVIDE_EXTRA_BITS: u32 = 7;

/// The largest pooling window fss2pc lowers (its slices are separate plan nodes).
pub const MAX_WINDOW: usize = 1024;

/// Whether fss2pc can evaluate `op` directly or after [`lower`].
pub fn supported(op: &Op) -> bool {
    !matches!(op, Op::Div | Op::Softmax { .. } | Op::Layernorm { .. })
}

/// Elements per chunk of a large elementwise gate (see `chunked`).
pub const CHUNK: usize = 1 << 15;

/// Splits a large elementwise gate into chunks of [`CHUNK`] elements, so that the dealer's
/// material streams chunk by chunk: the parties start on the first chunk while the dealer makes
/// the next, and no party holds a whole large node's material at once.
fn chunked(op: &Op, inputs: &[TensorInfo]) -> Option<Lowering> {
    let elementwise = matches!(
        op,
        Op::Relu
            | Op::Gt
            | Op::Ge
            | Op::Lt
            | Op::Le
            | Op::Eq
            | Op::Mul
            | Op::Max { axis: None }
            | Op::Min { axis: None }
            | Op::Exp
            | Op::Sigmoid
            | Op::Tanh
            | Op::Gelu
            | Op::Reciprocal
            | Op::Rsqrt
            | Op::Sqrt
    );
    // The largest input gives the shape; the others must have it too or be scalars, which
    // broadcast to every chunk as they did to the whole.
    let first = inputs.iter().max_by_key(|t| t.numel())?;
    let n = first.numel();
    let same_shapes =
        inputs.iter().all(|t| t.shape == first.shape || (t.numel() == 1 && t.shape.len() <= first.shape.len()));
    let secret = inputs.iter().any(|t| t.vis != mpcflow_sdk::shape::Visibility::Public);
    if !elementwise || !same_shapes || !secret || n <= CHUNK {
        return None;
    }
    let mut b = Builder::default();
    // A reshape copies its planes (on each party and the dealer): none where the shape is flat
    // already, the common case of a column of a table or a flattened activation.
    let flat_already = first.shape.len() == 1;
    let flat: Vec<(LRef, bool)> = inputs
        .iter()
        .enumerate()
        .map(|(i, t)| {
            if t.shape == first.shape && flat_already {
                (LRef::Input(i), true)
            } else if t.shape == first.shape {
                (b.push(Op::Reshape { shape: vec![-1] }, vec![LRef::Input(i)]), true)
            } else if t.shape.len() > 1 {
                // A one-element operand of higher rank would broadcast each flat chunk up to
                // `[1, chunk]`, and chunks of unequal length would not concatenate: one element
                // of rank 1 broadcasts to the chunk's own shape.
                (b.push(Op::Reshape { shape: vec![1] }, vec![LRef::Input(i)]), false)
            } else {
                (LRef::Input(i), false)
            }
        })
        .collect();
    let mut parts = vec![];
    for start in (0..n).step_by(CHUNK) {
        let end = (start + CHUNK).min(n);
        let slice = Op::Slice { starts: vec![start as i64], ends: vec![end as i64], axes: vec![0], steps: vec![] };
        let ins: Vec<LRef> = flat
            .iter()
            .map(|(f, sliced)| if *sliced { b.push(slice.clone(), vec![f.clone()]) } else { f.clone() })
            .collect();
        parts.push(b.push(op.clone(), ins));
    }
    let all = b.push(Op::Concat { axis: 0 }, parts);
    if !flat_already {
        b.push(Op::Reshape { shape: first.shape.iter().map(|&d| d as i64).collect() }, vec![all]);
    }
    Some(Lowering { nodes: b.nodes })
}

fn node(op: Op, inputs: Vec<LRef>) -> LoweredNode {
    LoweredNode { op, inputs }
}

/// The lowering of `op`, if fss2pc lowers it.
pub fn lower(op: &Op, inputs: &[TensorInfo], fp: FixedPoint) -> Option<Lowering> {
    use LRef::{Input, Node};
    if let Some(l) = chunked(op, inputs) {
        return Some(l);
    }
    if let Some(l) = matmul_in_column_blocks(op, inputs) {
        return Some(l);
    }
    if let Some(l) = conv2d_in_channel_blocks(op, inputs) {
        return Some(l);
    }
    let nodes = match op {
        Op::Mean { axes, keepdims } => {
            let x = inputs.first()?;
            let ax = norm_axes(axes, x.shape.len()).ok()?;
            let count: usize = ax.iter().map(|&i| x.shape[i]).product();
            if count == 0 {
                return None;
            }
            let mut b = Builder::default();
            let xf = b.as_fixed(LRef::Input(0), x.dtype, fp);
            let sum = b.push(Op::Sum { axes: axes.clone(), keepdims: *keepdims }, vec![xf]);
            b.divide(sum, count);
            b.nodes
        }
        Op::Histogram { edges } => {
            // c_i = #{x ≥ T_i} from one comparison per element and threshold (every element or
            // none for a threshold beyond every word), then c_i − c_{i+1}.
            use mpcflow_ring::kernels::histogram::{Threshold, thresholds};
            let x = inputs.first()?;
            let t: Vec<Threshold> = thresholds(edges, x.dtype, fp).into_iter().map(Threshold::of).collect();
            let k = t.len().checked_sub(1)? as i64;
            let words: Vec<u64> =
                t.iter().filter_map(|t| if let Threshold::Compare(v) = t { Some(*v as u64) } else { None }).collect();
            let always = t.iter().take_while(|t| **t == Threshold::Always).count();
            let never = t.len() - always - words.len();
            let ints = |len: usize, v: u64| Tensor { dtype: DType::Int, shape: vec![len], data: vec![v; len] };
            let slice =
                |from: i64, to: i64| Op::Slice { starts: vec![from], ends: vec![to], axes: vec![0], steps: vec![] };
            let mut b = Builder::default();
            let mut parts = vec![];
            if always > 0 {
                parts.push(LRef::Const(ints(always, x.numel() as u64)));
            }
            if !words.is_empty() {
                // In chunks of about CHUNK comparisons, so the material streams (see `chunked`).
                let n = x.numel();
                let rows = (CHUNK / words.len()).max(1);
                let column = b.push(Op::Reshape { shape: vec![-1, 1] }, vec![Input(0)]);
                let t = Tensor { dtype: x.dtype, shape: vec![words.len()], data: words };
                let mut total: Option<LRef> = None;
                for start in (0..n.max(1)).step_by(rows) {
                    let end = (start + rows).min(n);
                    let part = if rows >= n {
                        column.clone()
                    } else {
                        b.push(slice(start as i64, end as i64), vec![column.clone()])
                    };
                    let above = b.push(Op::Ge, vec![part, LRef::Const(t.clone())]);
                    let count = b.push(Op::Sum { axes: vec![0], keepdims: false }, vec![above]);
                    total = Some(match total {
                        None => count,
                        Some(sum) => b.push(Op::Add, vec![sum, count]),
                    });
                }
                parts.push(total?);
            }
            if never > 0 {
                parts.push(LRef::Const(ints(never, 0)));
            }
            let counts = if parts.len() == 1 { parts.pop()? } else { b.push(Op::Concat { axis: 0 }, parts) };
            let lower = b.push(slice(0, k), vec![counts.clone()]);
            let upper = b.push(slice(1, k + 1), vec![counts]);
            b.push(Op::Sub, vec![lower, upper]);
            b.nodes
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
        Op::Max { axis: Some(axis) } | Op::Min { axis: Some(axis) } => {
            let x = inputs.first()?;
            let pairwise = if matches!(op, Op::Max { .. }) { Op::Max { axis: None } } else { Op::Min { axis: None } };
            let mut b = Builder::default();
            let a = mpcflow_sdk::shape::norm_axis(*axis, x.shape.len()).ok()?;
            let top = b.tree(LRef::Input(0), &x.shape, a, &pairwise);
            let mut out: Vec<i64> = x.shape.iter().map(|&d| d as i64).collect();
            out.remove(a);
            b.push(Op::Reshape { shape: out }, vec![top]);
            b.nodes
        }
        Op::Maxpool(p) | Op::Avgpool(p) => pool(inputs.first()?, p, matches!(op, Op::Maxpool(_)), fp)?,
        Op::Exp | Op::Sigmoid | Op::Tanh | Op::Gelu | Op::Reciprocal | Op::Rsqrt | Op::Sqrt
            if inputs.first()?.dtype != DType::Fixed =>
        {
            let one = LRef::Const(Tensor::scalar(DType::Fixed, 1.0, fp));
            vec![node(Op::Mul, vec![Input(0), one]), node(op.clone(), vec![Node(0)])]
        }
        Op::Div => vec![node(Op::Reciprocal, vec![Input(1)]), node(Op::Mul, vec![Input(0), Node(0)])],
        Op::Softmax { axis } => softmax(inputs.first()?, *axis, fp)?,
        Op::Layernorm { axis, epsilon } => layernorm(inputs, *axis, *epsilon, fp)?,
        Op::Argmax { axis, one_hot } => {
            let x = inputs.first()?;
            let a = mpcflow_sdk::shape::norm_axis(*axis, x.shape.len()).ok()?;
            let mut b = Builder::default();
            b.argmax(x, a, *one_hot)?;
            b.nodes
        }
        _ => return None,
    };
    Some(Lowering { nodes })
}

/// Output elements per block of a large matrix product (see `matmul_in_column_blocks`).
pub const MATMUL_BLOCK: usize = 1 << 20;

/// A matrix product of a secret with more than [`MATMUL_BLOCK`] outputs (GPT-2's logits, 6.4M:
/// 1.1 GB of truncation keys for one party) as products of column blocks of the right operand,
/// concatenated: each block's material is then its own frame, streamed as the others are (a
/// frame between processes holds at most 1 GiB), and no party holds the whole product's at once.
/// The same products and truncations, so the same values.
fn matmul_in_column_blocks(op: &Op, inputs: &[TensorInfo]) -> Option<Lowering> {
    let (Op::Matmul, [_, b]) = (op, inputs) else { return None };
    let axis = b.shape.len().checked_sub(1).filter(|&a| a >= 1)?;
    let out = mpcflow_sdk::shape::infer(op, inputs).ok()?;
    in_blocks(op, inputs, b.shape[axis], axis, out.shape.len() - 1, out.numel())
}

/// A 2-D convolution of a secret with more than [`MATMUL_BLOCK`] outputs (a 3-D UNet's layers at
/// 64³: 4.2M outputs, 0.7 GB of truncation keys per party) as convolutions with blocks of the
/// output channels, concatenated, for the same reason as [`matmul_in_column_blocks`].
fn conv2d_in_channel_blocks(op: &Op, inputs: &[TensorInfo]) -> Option<Lowering> {
    let (Op::Conv2d { .. }, [_, w]) = (op, inputs) else { return None };
    let out = mpcflow_sdk::shape::infer(op, inputs).ok()?;
    in_blocks(op, inputs, *w.shape.first()?, 0, 1, out.numel())
}

/// `op` of a secret with `numel` outputs, when more than [`MATMUL_BLOCK`], as `op` on blocks of
/// its second input along `axis` (of size `n`), concatenated along the output's `out_axis`; each
/// block has at most [`MATMUL_BLOCK`] outputs where a single index of `axis` allows.
fn in_blocks(op: &Op, inputs: &[TensorInfo], n: usize, axis: usize, out_axis: usize, numel: usize) -> Option<Lowering> {
    let secret = inputs.iter().any(|t| t.vis != mpcflow_sdk::shape::Visibility::Public);
    if !secret || numel <= MATMUL_BLOCK || n < 2 {
        return None;
    }
    let per = (MATMUL_BLOCK / (numel / n)).clamp(1, n - 1);
    let mut b = Builder::default();
    let mut parts = vec![];
    for start in (0..n).step_by(per) {
        let end = (start + per).min(n);
        let slice =
            Op::Slice { starts: vec![start as i64], ends: vec![end as i64], axes: vec![axis as i64], steps: vec![] };
        let block = b.push(slice, vec![LRef::Input(1)]);
        parts.push(b.push(op.clone(), vec![LRef::Input(0), block]));
    }
    b.push(Op::Concat { axis: out_axis as i64 }, parts);
    Some(Lowering { nodes: b.nodes })
}

/// `onehot(x, depth)` as equality tests with the classes: `reshape(x, [.., 1]) == [0, …,
/// depth − 1]`, each equality two comparisons and a product. For protocols without a point
/// function (rep3); fss2pc computes the op directly ([`crate::gates::onehot`]).
pub fn onehot_by_equalities(depth: usize, inputs: &[TensorInfo], fp: FixedPoint) -> Option<Lowering> {
    let x = inputs.first()?;
    let mut column: Vec<i64> = x.shape.iter().map(|&d| d as i64).collect();
    column.push(1);
    let classes: Vec<f64> = (0..depth).map(|k| k as f64).collect();
    let classes = Tensor::from_f64(x.dtype, vec![depth], &classes, fp)?;
    let mut b = Builder::default();
    let col = b.push(Op::Reshape { shape: column }, vec![LRef::Input(0)]);
    b.push(Op::Eq, vec![col, LRef::Const(classes)]);
    Some(Lowering { nodes: b.nodes })
}

/// Max or average pooling: the padded input sliced once per kernel position (a strided slice
/// of every window's element at that position), then a tree of pairwise maxima or a sum.
fn pool(x: &TensorInfo, p: &mpcflow_sdk::op::Pool, is_max: bool, fp: FixedPoint) -> Option<Vec<LoweredNode>> {
    let area = p.kernel[0].checked_mul(p.kernel[1])?;
    if area > MAX_WINDOW || x.shape.len() != 4 {
        return None;
    }
    let mut b = Builder::default();
    let input = if is_max { LRef::Input(0) } else { b.as_fixed(LRef::Input(0), x.dtype, fp) };
    let dtype = if is_max { x.dtype } else { DType::Fixed };
    let padded = b.pad(input, &x.shape, dtype, p.padding, is_max);
    let (oh, ow) = (
        mpcflow_sdk::shape::window_out(x.shape[2], p.kernel[0], p.stride[0], p.padding[0])?,
        mpcflow_sdk::shape::window_out(x.shape[3], p.kernel[1], p.stride[1], p.padding[1])?,
    );
    let mut windows = vec![];
    for i in 0..p.kernel[0] {
        for j in 0..p.kernel[1] {
            let ends = [(i + p.stride[0] * (oh - 1) + 1) as i64, (j + p.stride[1] * (ow - 1) + 1) as i64];
            windows.push(b.push(
                Op::Slice {
                    starts: vec![i as i64, j as i64],
                    ends: ends.to_vec(),
                    axes: vec![2, 3],
                    steps: vec![p.stride[0] as i64, p.stride[1] as i64],
                },
                vec![padded.clone()],
            ));
        }
    }
    if is_max {
        b.reduce(windows, &Op::Max { axis: None });
    } else {
        let sum = b.reduce(windows, &Op::Add);
        b.divide(sum, area);
    }
    Some(b.nodes)
}

/// `softmax(x) = exp(x − max) / Σ exp(x − max)` along `axis`.
fn softmax(x: &TensorInfo, axis: i64, fp: FixedPoint) -> Option<Vec<LoweredNode>> {
    let a = mpcflow_sdk::shape::norm_axis(axis, x.shape.len()).ok()?;
    let mut b = Builder::default();
    let xf = b.as_fixed(LRef::Input(0), x.dtype, fp);
    let max = b.push(Op::Max { axis: Some(a as i64) }, vec![xf.clone()]);
    let max = b.push(Op::Reshape { shape: b.keep(&x.shape, a) }, vec![max]);
    let d = b.push(Op::Sub, vec![xf, max]);
    let e = b.push(Op::Exp, vec![d]);
    let s = b.push(Op::Sum { axes: vec![a as i64], keepdims: true }, vec![e.clone()]);
    let r = b.push(Op::Reciprocal, vec![s]);
    b.push(Op::Mul, vec![e, r]);
    Some(b.nodes)
}

/// `(x − mean) · rsqrt(var + ε)` along `axis`, times the scale and plus the shift if given.
fn layernorm(inputs: &[TensorInfo], axis: i64, epsilon: f64, fp: FixedPoint) -> Option<Vec<LoweredNode>> {
    let x = inputs.first()?;
    let a = mpcflow_sdk::shape::norm_axis(axis, x.shape.len()).ok()?;
    // ε below one ulp (BERT's 1e-12 at f = 16) is raised to one ulp, so that a constant lane
    // meets rsqrt at a positive value, not its saturation; the module docs bound the change.
    if epsilon < 0.0 {
        return None;
    }
    let mut eps = Tensor::scalar(DType::Fixed, epsilon, fp);
    if (eps.data[0] as i64) < 1 {
        eps.data[0] = 1;
    }
    let mut b = Builder::default();
    let xf = b.as_fixed(LRef::Input(0), x.dtype, fp);
    let mean = |b: &mut Builder, v: LRef| b.push(Op::Mean { axes: vec![a as i64], keepdims: true }, vec![v]);
    let mu = mean(&mut b, xf.clone());
    let c = b.push(Op::Sub, vec![xf, mu]);
    let sq = b.push(Op::Mul, vec![c.clone(), c.clone()]);
    let var = mean(&mut b, sq);
    let ve = b.push(Op::Add, vec![var, LRef::Const(eps)]);
    let inv = b.push(Op::Rsqrt, vec![ve]);
    let mut y = b.push(Op::Mul, vec![c, inv]);
    if let Some(g) = inputs.get(1) {
        let g = b.as_fixed(LRef::Input(1), g.dtype, fp);
        y = b.push(Op::Mul, vec![y, g]);
    }
    if let Some(beta) = inputs.get(2) {
        let beta = b.as_fixed(LRef::Input(2), beta.dtype, fp);
        b.push(Op::Add, vec![y, beta]);
    }
    Some(b.nodes)
}

/// Builds a lowering node by node.
#[derive(Default)]
struct Builder {
    nodes: Vec<LoweredNode>,
}

impl Builder {
    fn push(&mut self, op: Op, inputs: Vec<LRef>) -> LRef {
        self.nodes.push(LoweredNode { op, inputs });
        LRef::Node(self.nodes.len() - 1)
    }

    /// `shape` with axis `a` of size 1, as a reshape target.
    fn keep(&self, shape: &[usize], a: usize) -> Vec<i64> {
        shape.iter().enumerate().map(|(i, &d)| if i == a { 1 } else { d as i64 }).collect()
    }

    /// Combines values pairwise with `op` until one is left (a balanced tree).
    fn reduce(&mut self, mut items: Vec<LRef>, op: &Op) -> LRef {
        while items.len() > 1 {
            let mut next = vec![];
            for pair in items.chunks(2) {
                next.push(match pair {
                    [a, b] => self.push(op.clone(), vec![a.clone(), b.clone()]),
                    _ => pair[0].clone(),
                });
            }
            items = next;
        }
        items.pop().unwrap_or(LRef::Input(0))
    }

    /// Reduces axis `a` of `x` (shape `shape`) to size 1 by halving with `op`.
    fn tree(&mut self, x: LRef, shape: &[usize], a: usize, op: &Op) -> LRef {
        let (mut cur, mut len) = (x, shape[a]);
        let slice = |s: usize, e: usize| Op::Slice {
            starts: vec![s as i64],
            ends: vec![e as i64],
            axes: vec![a as i64],
            steps: vec![],
        };
        while len > 1 {
            let h = len / 2;
            let lo = self.push(slice(0, h), vec![cur.clone()]);
            let hi = self.push(slice(h, 2 * h), vec![cur.clone()]);
            let mut m = self.push(op.clone(), vec![lo, hi]);
            if len % 2 == 1 {
                let rest = self.push(slice(2 * h, len), vec![cur.clone()]);
                m = self.push(Op::Concat { axis: a as i64 }, vec![m, rest]);
            }
            cur = m;
            len = h + len % 2;
        }
        cur
    }

    /// Argmax along axis `a`: pairs adjacent elements so that the left one always has the
    /// smaller index, and keeps the right one only when it is strictly greater.
    fn argmax(&mut self, x: &TensorInfo, a: usize, one_hot: bool) -> Option<()> {
        let n = x.shape[a];
        let stride: usize = x.shape[a + 1..].iter().product();
        let data: Vec<u64> = (0..x.shape.iter().product::<usize>()).map(|i| ((i / stride) % n) as u64).collect();
        let arange = LRef::Const(Tensor { dtype: DType::Int, shape: x.shape.clone(), data });
        let (mut v, mut idx, mut len) = (LRef::Input(0), arange.clone(), n);
        let slice = |start: usize, end: usize, step: usize| Op::Slice {
            starts: vec![start as i64],
            ends: vec![end as i64],
            axes: vec![a as i64],
            steps: vec![step as i64],
        };
        while len > 1 {
            let h = len / 2;
            let va = self.push(slice(0, 2 * h, 2), vec![v.clone()]);
            let vb = self.push(slice(1, 2 * h, 2), vec![v.clone()]);
            let ia = self.push(slice(0, 2 * h, 2), vec![idx.clone()]);
            let ib = self.push(slice(1, 2 * h, 2), vec![idx.clone()]);
            let c = self.push(Op::Gt, vec![vb.clone(), va.clone()]);
            let dv = self.push(Op::Sub, vec![vb, va.clone()]);
            let di = self.push(Op::Sub, vec![ib, ia.clone()]);
            let mv = self.push(Op::Mul, vec![c.clone(), dv]);
            let mi = self.push(Op::Mul, vec![c, di]);
            let mut nv = self.push(Op::Add, vec![va, mv]);
            let mut ni = self.push(Op::Add, vec![ia, mi]);
            if len % 2 == 1 {
                let rv = self.push(slice(2 * h, len, 1), vec![v.clone()]);
                let ri = self.push(slice(2 * h, len, 1), vec![idx.clone()]);
                nv = self.push(Op::Concat { axis: a as i64 }, vec![nv, rv]);
                ni = self.push(Op::Concat { axis: a as i64 }, vec![ni, ri]);
            }
            v = nv;
            idx = ni;
            len = h + len % 2;
        }
        if one_hot {
            // idx keeps the axis with size 1: compare it with every position.
            self.push(Op::Eq, vec![arange, idx]);
        } else {
            let mut out: Vec<i64> = x.shape.iter().map(|&d| d as i64).collect();
            out.remove(a);
            self.push(Op::Reshape { shape: out }, vec![idx]);
        }
        Some(())
    }

    /// An int or bit value as fixed point (a product with the constant 1.0); fixed unchanged.
    fn as_fixed(&mut self, x: LRef, dtype: DType, fp: FixedPoint) -> LRef {
        if dtype == DType::Fixed {
            return x;
        }
        self.push(Op::Mul, vec![x, LRef::Const(Tensor::scalar(DType::Fixed, 1.0, fp))])
    }

    /// `s / count` for a fixed-point `s` (see the module docs).
    fn divide(&mut self, s: LRef, count: usize) -> LRef {
        if count == 1 {
            return s;
        }
        let g = count.ilog2();
        let k = DIVIDE_EXTRA_BITS;
        let shifted = if g > 0 { self.push(Op::Shift { bits: -(g as i32) }, vec![s]) } else { s };
        let factor = (1u64 << (g + k)) as f64 / count as f64;
        let scaled = self.push(Op::Scale { factor }, vec![shifted]);
        self.push(Op::Shift { bits: -(k as i32) }, vec![scaled])
    }

    /// Pads axes 2 and 3 of an `[N, C, H, W]` tensor: with copies of the edge rows and columns
    /// (`edge`, for max pooling) or with zeros.
    fn pad(&mut self, x: LRef, shape: &[usize], dtype: DType, padding: [usize; 2], edge: bool) -> LRef {
        let mut shape = shape.to_vec();
        let mut cur = x;
        for (axis, p) in [(2usize, padding[0]), (3usize, padding[1])] {
            if p == 0 {
                continue;
            }
            let (first, last) = if edge {
                let at = |i: usize| Op::Slice {
                    starts: vec![i as i64],
                    ends: vec![i as i64 + 1],
                    axes: vec![axis as i64],
                    steps: vec![],
                };
                (self.push(at(0), vec![cur.clone()]), self.push(at(shape[axis] - 1), vec![cur.clone()]))
            } else {
                let mut side = shape.clone();
                side[axis] = 1;
                let zeros = LRef::Const(Tensor::zeros(dtype, side));
                (zeros.clone(), zeros)
            };
            let mut parts = vec![first; p];
            parts.push(cur);
            parts.extend(std::iter::repeat_n(last, p));
            cur = self.push(Op::Concat { axis: axis as i64 }, parts);
            shape[axis] += 2 * p;
        }
        cur
    }
}
