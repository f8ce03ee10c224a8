//! Shape and dtype rules of every op: what the planner checks before anything runs.

use crate::op::{Op, Pool};
use crate::{DType, PartyId};
use serde::{Deserialize, Serialize};

/// Who may see a tensor's value.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Visibility {
    /// Known to every party (constants, counts, anything computed from them alone).
    Public,
    /// Secret-shared between the parties.
    Secret,
    /// Known to one party: its private input, or anything computed from that party's private
    /// inputs and public values alone, which it could have computed itself. Protocols still
    /// share it as a secret; knowing who holds it lets them skip work (fss2pc's products skip a
    /// party's multiplication by its share of the mask, which is zero).
    Private(PartyId),
}

/// The public facts about a tensor: shape, dtype and visibility.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct TensorInfo {
    /// Dimensions.
    pub shape: Vec<usize>,
    /// Element type.
    pub dtype: DType,
    /// Who may see it.
    pub vis: Visibility,
}

impl TensorInfo {
    /// Number of elements.
    pub fn numel(&self) -> usize {
        crate::tensor::numel(&self.shape)
    }
}

/// Why a node's inputs do not fit its op.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ShapeError(pub String);

fn err<T>(msg: impl Into<String>) -> Result<T, ShapeError> {
    Err(ShapeError(msg.into()))
}

/// Formats a shape as `[2, 3]`.
pub fn fmt_shape(s: &[usize]) -> String {
    format!("{s:?}")
}

/// NumPy broadcasting of two shapes.
pub fn broadcast_shapes(a: &[usize], b: &[usize]) -> Result<Vec<usize>, ShapeError> {
    let n = a.len().max(b.len());
    let mut out = vec![0; n];
    for i in 0..n {
        let da = if i < n - a.len() { 1 } else { a[i - (n - a.len())] };
        let db = if i < n - b.len() { 1 } else { b[i - (n - b.len())] };
        out[i] = match (da, db) {
            (x, y) if x == y => x,
            (1, y) => y,
            (x, 1) => x,
            _ => return err(format!("shapes {} and {} do not broadcast", fmt_shape(a), fmt_shape(b))),
        };
    }
    Ok(out)
}

/// Resolves a possibly negative axis against a rank.
pub fn norm_axis(axis: i64, rank: usize) -> Result<usize, ShapeError> {
    let r = rank as i64;
    let a = if axis < 0 { axis + r } else { axis };
    if a < 0 || a >= r {
        return err(format!("axis {axis} is out of range for a tensor of rank {rank}"));
    }
    Ok(a as usize)
}

/// Resolves reduction axes (empty means all), sorted and deduplicated.
pub fn norm_axes(axes: &[i64], rank: usize) -> Result<Vec<usize>, ShapeError> {
    if axes.is_empty() {
        return Ok((0..rank).collect());
    }
    let mut v = axes.iter().map(|&a| norm_axis(a, rank)).collect::<Result<Vec<_>, _>>()?;
    v.sort_unstable();
    v.dedup();
    Ok(v)
}

fn reduced(shape: &[usize], axes: &[usize], keepdims: bool) -> Vec<usize> {
    shape
        .iter()
        .enumerate()
        .filter_map(|(i, &d)| match (axes.contains(&i), keepdims) {
            (false, _) => Some(d),
            (true, true) => Some(1),
            (true, false) => None,
        })
        .collect()
}

/// Output spatial size of a window op.
pub fn window_out(input: usize, kernel: usize, stride: usize, pad: usize) -> Option<usize> {
    let padded = input.checked_add(pad.checked_mul(2)?)?;
    (padded >= kernel && stride > 0).then(|| (padded - kernel) / stride + 1)
}

/// Resolved `(start, step, len)` of one slice axis, NumPy semantics with clamping.
pub fn slice_range(dim: usize, start: i64, end: i64, step: i64) -> (i64, i64, usize) {
    // Sizes above i64::MAX only occur in empty tensors; capping them keeps `d - 1` in range.
    let d = i64::try_from(dim).unwrap_or(i64::MAX);
    let clamp = |v: i64, lo: i64, hi: i64| v.max(lo).min(hi);
    if step > 0 {
        let s = clamp(if start < 0 { start + d } else { start }, 0, d);
        let e = clamp(if end < 0 { end + d } else { end }, 0, d);
        // `(e - s - 1) / step + 1` is `ceil((e - s) / step)` without overflowing for huge steps.
        let len = if e > s { ((e - s - 1) / step + 1) as usize } else { 0 };
        (s, step, len)
    } else {
        let s = clamp(if start < 0 { start + d } else { start }, -1, d - 1);
        let e = clamp(if end < 0 { end + d } else { end }, -1, d - 1);
        let len = if s > e { ((s - e - 1) as u64 / step.unsigned_abs() + 1) as usize } else { 0 };
        (s, step, len)
    }
}

fn arith(op: &str, a: DType, b: DType) -> Result<DType, ShapeError> {
    use DType::*;
    match (a, b) {
        (Fixed, Fixed) => Ok(Fixed),
        (Int | Bit, Int | Bit) => Ok(Int),
        _ => err(format!(
            "`{op}` needs operands of one dtype, got {a} and {b} (declare the constant or input with `dtype: {a}` or use `scale`)"
        )),
    }
}

fn product(a: DType, b: DType) -> DType {
    use DType::*;
    match (a, b) {
        (Bit, Bit) => Bit,
        (Fixed, _) | (_, Fixed) => Fixed,
        _ => Int,
    }
}

fn real(op: &str, d: DType) -> Result<DType, ShapeError> {
    match d {
        DType::Fixed | DType::Int => Ok(DType::Fixed),
        DType::Bit => err(format!("`{op}` needs a fixed or int input, got bit")),
    }
}

fn arity(op: &Op, n: usize) -> Result<(), ShapeError> {
    let (lo, hi) = match op {
        Op::Add
        | Op::Sub
        | Op::Mul
        | Op::Matmul
        | Op::Conv2d { .. }
        | Op::Gt
        | Op::Ge
        | Op::Lt
        | Op::Le
        | Op::Eq
        | Op::Div => (2, 2),
        Op::Max { axis } | Op::Min { axis } => {
            if axis.is_some() {
                (1, 1)
            } else {
                (2, 2)
            }
        }
        Op::Select => (3, 3),
        Op::Concat { .. } => (1, usize::MAX),
        Op::Layernorm { .. } => (1, 3),
        Op::Custom { .. } => (0, usize::MAX),
        _ => (1, 1),
    };
    if n < lo || n > hi {
        let want = if lo == hi {
            format!("{lo}")
        } else if hi == usize::MAX {
            format!("at least {lo}")
        } else {
            format!("{lo} to {hi}")
        };
        return err(format!("`{}` takes {want} input(s), got {n}", op.name()));
    }
    Ok(())
}

/// Who may see the output of `op` on `inputs`: public when every input is (a count always is),
/// one party's when every input is public or that party's, secret otherwise.
fn visibility(op: &Op, inputs: &[TensorInfo]) -> Visibility {
    if matches!(op, Op::Count { .. }) {
        return Visibility::Public;
    }
    let mut vis = Visibility::Public;
    for t in inputs {
        vis = match (vis, &t.vis) {
            (v, Visibility::Public) => v,
            (Visibility::Public, &Visibility::Private(p)) => Visibility::Private(p),
            (Visibility::Private(p), &Visibility::Private(q)) if p == q => Visibility::Private(p),
            _ => return Visibility::Secret,
        };
    }
    vis
}

/// Infers the output of `op` applied to `inputs`.
pub fn infer(op: &Op, inputs: &[TensorInfo]) -> Result<TensorInfo, ShapeError> {
    arity(op, inputs.len())?;
    let vis = visibility(op, inputs);
    let (shape, dtype) = match op {
        Op::Add | Op::Sub => {
            let (a, b) = (&inputs[0], &inputs[1]);
            (broadcast_shapes(&a.shape, &b.shape)?, arith(op.name(), a.dtype, b.dtype)?)
        }
        Op::Mul => {
            let (a, b) = (&inputs[0], &inputs[1]);
            (broadcast_shapes(&a.shape, &b.shape)?, product(a.dtype, b.dtype))
        }
        Op::Neg | Op::Shift { .. } => {
            let a = &inputs[0];
            (a.shape.clone(), if a.dtype == DType::Bit { DType::Int } else { a.dtype })
        }
        Op::Scale { factor } => {
            let a = &inputs[0];
            let dt = if a.dtype == DType::Fixed || factor.fract() != 0.0 { DType::Fixed } else { DType::Int };
            (a.shape.clone(), dt)
        }
        Op::Matmul => matmul_shape(&inputs[0], &inputs[1])?,
        Op::Conv2d { stride, padding } => conv_shape(&inputs[0], &inputs[1], *stride, *padding)?,
        Op::Sum { axes, keepdims } => {
            let a = &inputs[0];
            let ax = norm_axes(axes, a.shape.len())?;
            (reduced(&a.shape, &ax, *keepdims), if a.dtype == DType::Bit { DType::Int } else { a.dtype })
        }
        Op::Mean { axes, keepdims } => {
            let a = &inputs[0];
            let ax = norm_axes(axes, a.shape.len())?;
            if ax.iter().any(|&i| a.shape[i] == 0) {
                return err("`mean` over an empty axis");
            }
            (reduced(&a.shape, &ax, *keepdims), real("mean", a.dtype)?)
        }
        Op::Count { axes } => {
            norm_axes(axes, inputs[0].shape.len())?;
            (vec![], DType::Int)
        }
        Op::Histogram { edges } => {
            if inputs[0].dtype == DType::Bit {
                return err("`histogram` counts fixed or int values, not bits (sum them to count the ones)");
            }
            (vec![edges.len().saturating_sub(1)], DType::Int)
        }
        Op::Reshape { shape } => (reshape_shape(&inputs[0].shape, shape)?, inputs[0].dtype),
        Op::Transpose { perm } => transpose_shape(&inputs[0], perm)?,
        Op::Concat { axis } => concat_shape(inputs, *axis)?,
        Op::Slice { starts, ends, axes, steps } => slice_shape(&inputs[0], starts, ends, axes, steps)?,
        Op::Broadcast { shape } => {
            let a = &inputs[0];
            let b = broadcast_shapes(&a.shape, shape)?;
            if &b != shape {
                return err(format!("cannot broadcast {} to {}", fmt_shape(&a.shape), fmt_shape(shape)));
            }
            (b, a.dtype)
        }
        Op::Gt | Op::Ge | Op::Lt | Op::Le | Op::Eq => {
            let (a, b) = (&inputs[0], &inputs[1]);
            arith(op.name(), a.dtype, b.dtype)?;
            (broadcast_shapes(&a.shape, &b.shape)?, DType::Bit)
        }
        Op::Relu => {
            let a = &inputs[0];
            (a.shape.clone(), a.dtype)
        }
        Op::Max { axis } | Op::Min { axis } => match axis {
            Some(ax) => {
                let a = &inputs[0];
                let i = norm_axis(*ax, a.shape.len())?;
                if a.shape[i] == 0 {
                    return err(format!("`{}` over an empty axis", op.name()));
                }
                (reduced(&a.shape, &[i], false), a.dtype)
            }
            None => {
                let (a, b) = (&inputs[0], &inputs[1]);
                let dt = arith(op.name(), a.dtype, b.dtype)?;
                let dt = if a.dtype == DType::Bit && b.dtype == DType::Bit { DType::Bit } else { dt };
                (broadcast_shapes(&a.shape, &b.shape)?, dt)
            }
        },
        Op::Maxpool(p) => (pool_shape("maxpool", &inputs[0], p)?, inputs[0].dtype),
        Op::Avgpool(p) => (pool_shape("avgpool", &inputs[0], p)?, real("avgpool", inputs[0].dtype)?),
        Op::Argmax { axis, one_hot } => {
            let a = &inputs[0];
            let i = norm_axis(*axis, a.shape.len())?;
            if a.shape[i] == 0 {
                return err("`argmax` over an empty axis");
            }
            if *one_hot { (a.shape.clone(), DType::Bit) } else { (reduced(&a.shape, &[i], false), DType::Int) }
        }
        Op::OneHot { depth } => {
            let a = &inputs[0];
            if a.dtype == DType::Bit {
                return err("`onehot` reads int or fixed indices, not bits");
            }
            let mut shape = a.shape.clone();
            shape.push(*depth);
            (shape, DType::Bit)
        }
        Op::Select => {
            let (c, a, b) = (&inputs[0], &inputs[1], &inputs[2]);
            if c.dtype != DType::Bit {
                return err(format!("`select` needs a bit condition as its first input, got {}", c.dtype));
            }
            let dt = if a.dtype == b.dtype { a.dtype } else { arith("select", a.dtype, b.dtype)? };
            (broadcast_shapes(&broadcast_shapes(&c.shape, &a.shape)?, &b.shape)?, dt)
        }
        Op::Div => {
            let (a, b) = (&inputs[0], &inputs[1]);
            real("div", a.dtype)?;
            real("div", b.dtype)?;
            (broadcast_shapes(&a.shape, &b.shape)?, DType::Fixed)
        }
        Op::Reciprocal | Op::Sqrt | Op::Rsqrt | Op::Exp | Op::Sigmoid | Op::Tanh | Op::Gelu => {
            let a = &inputs[0];
            (a.shape.clone(), real(op.name(), a.dtype)?)
        }
        Op::Softmax { axis } => {
            let a = &inputs[0];
            norm_axis(*axis, a.shape.len())?;
            (a.shape.clone(), real("softmax", a.dtype)?)
        }
        Op::Layernorm { axis, .. } => layernorm_shape(inputs, *axis)?,
        Op::Custom { name, .. } => return err(format!("custom op `{name}` must be expanded before shape inference")),
    };
    Ok(TensorInfo { shape, dtype, vis })
}

fn transpose_shape(a: &TensorInfo, perm: &[usize]) -> Result<(Vec<usize>, DType), ShapeError> {
    let r = a.shape.len();
    let perm: Vec<usize> = if perm.is_empty() { (0..r).rev().collect() } else { perm.to_vec() };
    let mut seen = perm.clone();
    seen.sort_unstable();
    if seen != (0..r).collect::<Vec<_>>() {
        return err(format!("`perm` {perm:?} is not a permutation of the {r} axes of {}", fmt_shape(&a.shape)));
    }
    Ok((perm.iter().map(|&p| a.shape[p]).collect(), a.dtype))
}

fn concat_shape(inputs: &[TensorInfo], axis: i64) -> Result<(Vec<usize>, DType), ShapeError> {
    let a = &inputs[0];
    let ax = norm_axis(axis, a.shape.len())?;
    let mut out = a.shape.clone();
    for (i, t) in inputs.iter().enumerate().skip(1) {
        if t.dtype != a.dtype {
            return err(format!("`concat` input {i} is {} but input 0 is {}", t.dtype, a.dtype));
        }
        let same_rest = t.shape.len() == a.shape.len()
            && t.shape.iter().zip(&a.shape).enumerate().all(|(d, (x, y))| d == ax || x == y);
        if !same_rest {
            return err(format!(
                "`concat` along axis {ax}: input {i} has shape {} but input 0 has {}",
                fmt_shape(&t.shape),
                fmt_shape(&a.shape)
            ));
        }
        out[ax] += t.shape[ax];
    }
    Ok((out, a.dtype))
}

fn layernorm_shape(inputs: &[TensorInfo], axis: i64) -> Result<(Vec<usize>, DType), ShapeError> {
    let a = &inputs[0];
    norm_axis(axis, a.shape.len())?;
    for (i, t) in inputs.iter().enumerate().skip(1) {
        real("layernorm", t.dtype)?;
        if broadcast_shapes(&a.shape, &t.shape)? != a.shape {
            return err(format!(
                "`layernorm` input {i} ({}) must broadcast to the input shape {}",
                fmt_shape(&t.shape),
                fmt_shape(&a.shape)
            ));
        }
    }
    Ok((a.shape.clone(), real("layernorm", a.dtype)?))
}

fn matmul_shape(a: &TensorInfo, b: &TensorInfo) -> Result<(Vec<usize>, DType), ShapeError> {
    if a.shape.len() < 2 || b.shape.len() < 2 {
        return err(format!(
            "`matmul` needs operands of rank 2 or more, got {} and {}",
            fmt_shape(&a.shape),
            fmt_shape(&b.shape)
        ));
    }
    let (m, k) = (a.shape[a.shape.len() - 2], a.shape[a.shape.len() - 1]);
    let (k2, n) = (b.shape[b.shape.len() - 2], b.shape[b.shape.len() - 1]);
    if k != k2 {
        return err(format!(
            "`matmul` inner dimensions differ: {} x {} ({k} vs {k2})",
            fmt_shape(&a.shape),
            fmt_shape(&b.shape)
        ));
    }
    let batch = broadcast_shapes(&a.shape[..a.shape.len() - 2], &b.shape[..b.shape.len() - 2])?;
    let mut out = batch;
    out.extend([m, n]);
    Ok((out, product(a.dtype, b.dtype)))
}

fn conv_shape(
    x: &TensorInfo,
    w: &TensorInfo,
    stride: [usize; 2],
    pad: [usize; 2],
) -> Result<(Vec<usize>, DType), ShapeError> {
    if x.shape.len() != 4 || w.shape.len() != 4 {
        return err(format!(
            "`conv2d` needs input [N, C, H, W] and weight [O, C, kh, kw], got {} and {}",
            fmt_shape(&x.shape),
            fmt_shape(&w.shape)
        ));
    }
    if x.shape[1] != w.shape[1] {
        return err(format!(
            "`conv2d` channels differ: input {} has {} channels, weight {} expects {}",
            fmt_shape(&x.shape),
            x.shape[1],
            fmt_shape(&w.shape),
            w.shape[1]
        ));
    }
    let oh = window_out(x.shape[2], w.shape[2], stride[0], pad[0]);
    let ow = window_out(x.shape[3], w.shape[3], stride[1], pad[1]);
    match (oh, ow) {
        (Some(oh), Some(ow)) => Ok((vec![x.shape[0], w.shape[0], oh, ow], product(x.dtype, w.dtype))),
        _ => err(format!(
            "`conv2d` kernel {} is larger than the padded input {}",
            fmt_shape(&w.shape),
            fmt_shape(&x.shape)
        )),
    }
}

fn pool_shape(name: &str, x: &TensorInfo, p: &Pool) -> Result<Vec<usize>, ShapeError> {
    if x.shape.len() != 4 {
        return err(format!("`{name}` needs an input of shape [N, C, H, W], got {}", fmt_shape(&x.shape)));
    }
    if p.padding[0] >= p.kernel[0] || p.padding[1] >= p.kernel[1] {
        return err(format!("`{name}` padding must be smaller than the kernel"));
    }
    match (
        window_out(x.shape[2], p.kernel[0], p.stride[0], p.padding[0]),
        window_out(x.shape[3], p.kernel[1], p.stride[1], p.padding[1]),
    ) {
        (Some(h), Some(w)) => Ok(vec![x.shape[0], x.shape[1], h, w]),
        _ => err(format!("`{name}` kernel {:?} is larger than the input {}", p.kernel, fmt_shape(&x.shape))),
    }
}

/// Number of elements of a shape (0 when any size is 0), `None` if the product overflows.
pub fn checked_numel(shape: &[usize]) -> Option<usize> {
    if shape.contains(&0) {
        return Some(0);
    }
    shape.iter().try_fold(1usize, |acc, &d| acc.checked_mul(d))
}

fn reshape_shape(from: &[usize], to: &[i64]) -> Result<Vec<usize>, ShapeError> {
    let Some(n) = checked_numel(from) else {
        return err(format!("`reshape` input {} has too many elements", fmt_shape(from)));
    };
    let unknown: Vec<usize> = to.iter().enumerate().filter(|(_, d)| **d == -1).map(|(i, _)| i).collect();
    if unknown.len() > 1 || to.iter().any(|&d| d < -1) {
        return err(format!("`reshape` target {to:?} may hold at most one -1 and no other negative size"));
    }
    let mut out: Vec<usize> = to.iter().map(|&d| d.max(0) as usize).collect();
    let known_sizes: Vec<usize> = to.iter().zip(&out).filter(|(d, _)| **d >= 0).map(|(_, &s)| s).collect();
    let Some(known) = checked_numel(&known_sizes) else {
        return err(format!("cannot reshape {} ({n} elements) to {to:?}", fmt_shape(from)));
    };
    if let Some(&i) = unknown.first() {
        if known == 0 || n % known != 0 {
            return err(format!("cannot reshape {} ({n} elements) to {to:?}", fmt_shape(from)));
        }
        out[i] = n / known;
    }
    if checked_numel(&out) != Some(n) {
        return err(format!("cannot reshape {} ({n} elements) to {to:?}", fmt_shape(from)));
    }
    Ok(out)
}

fn slice_shape(
    a: &TensorInfo,
    starts: &[i64],
    ends: &[i64],
    axes: &[i64],
    steps: &[i64],
) -> Result<(Vec<usize>, DType), ShapeError> {
    if starts.len() != ends.len()
        || (!axes.is_empty() && axes.len() != starts.len())
        || (!steps.is_empty() && steps.len() != starts.len())
    {
        return err("`slice` needs `starts`, `ends` (and `axes`, `steps` when given) of the same length");
    }
    let mut out = a.shape.clone();
    for (i, (&s, &e)) in starts.iter().zip(ends).enumerate() {
        let ax = if axes.is_empty() { i } else { norm_axis(axes[i], a.shape.len())? };
        if ax >= a.shape.len() {
            return err(format!("`slice` has more ranges than {} has axes", fmt_shape(&a.shape)));
        }
        let step = steps.get(i).copied().unwrap_or(1);
        if step == 0 {
            return err("`slice` step must not be 0");
        }
        out[ax] = slice_range(a.shape[ax], s, e, step).2;
    }
    Ok((out, a.dtype))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(shape: &[usize], dtype: DType) -> TensorInfo {
        TensorInfo { shape: shape.to_vec(), dtype, vis: Visibility::Secret }
    }

    #[test]
    fn visibility_follows_who_could_compute_the_value() {
        let (f, p0, p1) = (DType::Fixed, Visibility::Private(PartyId(0)), Visibility::Private(PartyId(1)));
        let v = |vis: &[&Visibility]| {
            let ins: Vec<TensorInfo> = vis.iter().map(|&v| TensorInfo { vis: v.clone(), ..t(&[2], f) }).collect();
            infer(&Op::Add, &ins).unwrap().vis
        };
        let public = Visibility::Public;
        assert_eq!(v(&[&public, &public]), public);
        assert_eq!(v(&[&p1, &public]), p1);
        assert_eq!(v(&[&public, &p0]), p0);
        assert_eq!(v(&[&p0, &p0]), p0);
        assert_eq!(v(&[&p0, &p1]), Visibility::Secret);
        assert_eq!(v(&[&p0, &Visibility::Secret]), Visibility::Secret);
        assert_eq!(v(&[&Visibility::Secret, &public]), Visibility::Secret);
        // One party's value through a non-linear op is still that party's; a count is public.
        let private = TensorInfo { vis: p1.clone(), ..t(&[2], f) };
        assert_eq!(infer(&Op::Relu, std::slice::from_ref(&private)).unwrap().vis, p1);
        assert_eq!(infer(&Op::Count { axes: vec![] }, &[private]).unwrap().vis, public);
    }

    #[test]
    fn broadcasting() {
        assert_eq!(broadcast_shapes(&[2, 1, 3], &[4, 1]).unwrap(), vec![2, 4, 3]);
        assert!(broadcast_shapes(&[2, 3], &[4]).is_err());
    }

    #[test]
    fn op_shapes() {
        let f = DType::Fixed;
        assert_eq!(infer(&Op::Matmul, &[t(&[5, 2, 3], f), t(&[3, 4], f)]).unwrap().shape, vec![5, 2, 4]);
        let conv = Op::Conv2d { stride: [1, 1], padding: [1, 1] };
        assert_eq!(infer(&conv, &[t(&[1, 3, 8, 8], f), t(&[4, 3, 3, 3], f)]).unwrap().shape, vec![1, 4, 8, 8]);
        let e = infer(&Op::Add, &[t(&[2, 3], f), t(&[4], f)]).unwrap_err();
        assert_eq!(e.to_string(), "shapes [2, 3] and [4] do not broadcast");
        let s = Op::Sum { axes: vec![0], keepdims: false };
        let o = infer(&s, &[t(&[7, 2], DType::Bit)]).unwrap();
        assert_eq!((o.shape, o.dtype), (vec![2], DType::Int));
        let r = Op::Reshape { shape: vec![-1, 2] };
        assert_eq!(infer(&r, &[t(&[3, 4], f)]).unwrap().shape, vec![6, 2]);
        let sl = Op::Slice { starts: vec![1], ends: vec![-1], axes: vec![1], steps: vec![] };
        assert_eq!(infer(&sl, &[t(&[3, 10], f)]).unwrap().shape, vec![3, 8]);
        let sl = Op::Slice { starts: vec![-1], ends: vec![-100], axes: vec![], steps: vec![-2] };
        assert_eq!(infer(&sl, &[t(&[5], f)]).unwrap().shape, vec![3]);
        assert!(infer(&Op::Gt, &[t(&[], f), t(&[], DType::Int)]).is_err());
    }

    #[test]
    fn extreme_attributes_are_errors_not_overflows() {
        assert_eq!(slice_range(5, 0, 5, i64::MAX), (0, i64::MAX, 1));
        assert_eq!(slice_range(5, 4, -6, i64::MIN), (4, i64::MIN, 1));
        assert_eq!(slice_range(5, i64::MAX, i64::MIN, -1), (4, -1, 5));
        assert_eq!(slice_range(5, i64::MIN, i64::MAX, 2), (0, 2, 3));
        assert_eq!(window_out(3, 2, 1, usize::MAX), None);
        assert_eq!(slice_range(usize::MAX, -1, 0, -1), (i64::MAX - 1, -1, (i64::MAX - 1) as usize));
        let f = DType::Fixed;
        let r = |to: Vec<i64>, from: &[usize]| infer(&Op::Reshape { shape: to }, &[t(from, f)]);
        assert!(r(vec![1 << 62, 1 << 62], &[4]).is_err());
        assert!(r(vec![1 << 62, 1 << 62, -1], &[4]).is_err());
        assert_eq!(r(vec![1 << 62, 1 << 62, 0], &[0]).unwrap().shape, vec![1 << 62, 1 << 62, 0]);
        assert!(r(vec![2, -1], &[usize::MAX, 2]).is_err());
    }
}
