//! Plaintext semantics of every op: exact computation, rounded once to the output encoding.
//!
//! This is the definition that every secure protocol is compared against. Clarity wins over
//! speed here (secure protocols have their own optimised kernels), but every kernel is O(n) in
//! its output and inputs (O(n·k) for matmul and convolution), so million-element tensors are
//! fine, and no kernel panics on any input: bad inputs are [`Error`]s.
//!
//! # Reading words
//!
//! Every tensor is `u64` words of Z(2^64) ([`mpcflow_sdk::fixed`]): a `fixed` word is
//! `round(x·2^f)` in two's complement, an `int` word an `i64`, a `bit` word is read through its
//! low bit (0/1). When an op mixes dtypes, an int or bit operand meeting a fixed one is the
//! real number it denotes: fixed × int is the word product (already at scale `2^f`), and an int
//! entering a real function or a mean is scaled by `2^f` exactly.
//!
//! # Exact ring ops and rounding
//!
//! `add`, `sub`, `neg`, `sum`, left `shift`, products with an int or bit operand, and everything
//! that only moves or compares words are exact and wrap modulo 2^64. Where fixed point forces a
//! rounding (fixed × fixed products and sums of products, right shifts, fixed-point factors,
//! means, average pools, `div`, `reciprocal`, `sqrt`), the exact value is computed in `i128`
//! (or an integer square root) and rounded **once** to nearest, ties away from zero (the rule
//! of [`FixedPoint::mul`]). Products and means wrap like the ring; the functions in the last
//! group saturate like [`FixedPoint::encode`]. Transcendental functions, `rsqrt`, `softmax`
//! and `layernorm` are computed in `f64` from the decoded reals and encoded once.
//!
//! # Error bounds against the real-number result
//!
//! "ulp" is `2^-f`, and the bound assumes the true result is inside the fixed range (outside
//! it, ring ops wrap and functions saturate, as defined per op).
//!
//! | op | bound |
//! |---|---|
//! | `add` `sub` `neg` `sum` `count` `shift` (left) | exact (wrapping) |
//! | `reshape` `transpose` `concat` `slice` `broadcast` `select` | exact (words moved) |
//! | `gt` `ge` `lt` `le` `eq` `relu` `max` `min` `maxpool` `argmax` | exact |
//! | `mul`, `matmul`, `conv2d` with an int or bit operand | exact (wrapping) |
//! | `mul`, `matmul`, `conv2d` fixed × fixed | ≤ 1/2 ulp (exact sum, one rounding) |
//! | `shift` (right) | ≤ 1/2 ulp |
//! | `scale`, fixed input | ≤ 1/2 ulp from `x · encode(factor)`; the factor itself is first rounded to the nearest ulp, adding ≤ `|x|`/2 ulp |
//! | `scale`, int input, integral factor | exact (wrapping) |
//! | `scale`, int input, fractional factor | ≤ 1/2 ulp + one `f64` rounding of `x · factor` |
//! | `mean`, `avgpool` | ≤ 1/2 ulp (exact sum, one rounding) |
//! | `div`, `reciprocal`, `sqrt` | ≤ 1/2 ulp (exact integer arithmetic), saturating |
//! | `exp` `sigmoid` `tanh` `gelu` `rsqrt` | ≤ 1/2 ulp + `f64` error (a few 1e-16 relative; `erf` < 1e-15) |
//! | `softmax`, `layernorm` | ≤ 1/2 ulp + `f64` error of the lane computation (~ lane length · 1e-16 relative) |
//!
//! Inputs whose words exceed 2^53 lose their lowest bits when decoded to `f64`, which adds a
//! relative 1.1e-16 to the `f64` rows.
//!
//! # Edge cases (each is documented and tested in its module)
//!
//! - `x / 0`, `reciprocal(0)`: largest magnitude with the numerator's sign (`0 / 0` is `+max`).
//! - `sqrt(x < 0)` is 0; `rsqrt(x <= 0)` is the largest value; `exp` saturates.
//! - `layernorm` with `var + epsilon <= 0` normalises to 0 (the output is `beta`).
//! - `argmax` picks the first maximum; the one-hot mask has exactly one 1 per lane.
//! - `maxpool` never selects padding; `avgpool` counts padding as 0 and divides by the area.
//! - `matmul`/`conv2d` of two bit tensors is the product over GF(2) (sum modulo 2).
//! - `shift` by 64 or more bits gives 0 (and `i64::MIN >> 64` rounds to -1).

mod broadcast;
mod compare;
mod division;
pub mod domains;
mod elementwise;
mod erf;
mod extrema;
pub mod histogram;
mod layout;
mod linalg;
mod nonlinear;
mod normalize;
mod pool;
pub mod products;
mod reduce;
#[cfg(test)]
mod testutil;
mod words;

use mpcflow_sdk::fixed::MAX_FRAC_BITS;
use mpcflow_sdk::shape::{TensorInfo, Visibility, infer};
use mpcflow_sdk::{DType, Error, FixedPoint, Op, Result, Tensor};

/// Evaluates `op` on plaintext `inputs`, producing a tensor with the shape and dtype of `out`
/// (which the planner inferred with [`mpcflow_sdk::shape::infer`]).
///
/// The inputs are checked first (word counts against shapes, and the op's shape rules, which
/// must give exactly `out`), so the kernels only ever see consistent shapes. `Op::Custom` is an
/// internal error: the planner expands custom ops before anything is evaluated.
pub fn eval_op(op: &Op, inputs: &[&Tensor], out: &TensorInfo, fp: FixedPoint) -> Result<Tensor> {
    if let Op::Custom { name, .. } = op {
        return Err(Error::internal(format!(
            "custom op `{name}` reached the ref kernels; the planner expands custom ops before evaluation"
        )));
    }
    if fp.frac_bits > MAX_FRAC_BITS {
        return Err(Error::invalid(format!("frac_bits {} is above the maximum of {MAX_FRAC_BITS}", fp.frac_bits)));
    }
    let mut infos = Vec::with_capacity(inputs.len());
    for (i, t) in inputs.iter().enumerate() {
        if words::numel(&t.shape)? != t.data.len() {
            return Err(Error::invalid(format!(
                "input {i} of `{}` has {} words but shape {:?}",
                op.name(),
                t.data.len(),
                t.shape
            )));
        }
        infos.push(TensorInfo { shape: t.shape.clone(), dtype: t.dtype, vis: Visibility::Secret });
    }
    let want = infer(op, &infos).map_err(|e| Error::invalid(format!("`{}`: {e}", op.name())))?;
    if want.shape != out.shape || want.dtype != out.dtype {
        return Err(Error::internal(format!(
            "`{}` was planned to give {} {:?}, but its inputs give {} {:?}",
            op.name(),
            out.dtype,
            out.shape,
            want.dtype,
            want.shape
        )));
    }
    let mut data = dispatch(op, inputs, out, fp)?;
    if data.len() != words::numel(&out.shape)? {
        return Err(Error::internal(format!(
            "`{}` produced {} words for shape {:?}",
            op.name(),
            data.len(),
            out.shape
        )));
    }
    if out.dtype == DType::Bit {
        // Bits are stored canonically (0/1) even when moved from non-canonical input words.
        data.iter_mut().for_each(|w| *w &= 1);
    }
    Ok(Tensor { dtype: out.dtype, shape: out.shape.clone(), data })
}

/// The inputs as an array of exactly `N` tensors.
fn args<'a, const N: usize>(op: &Op, inputs: &[&'a Tensor]) -> Result<[&'a Tensor; N]> {
    inputs.try_into().map_err(|_| Error::internal(format!("`{}` got {} inputs, expected {N}", op.name(), inputs.len())))
}

/// The ranges that secure protocols need and `ref` enforces, checked on plaintext inputs
/// before `op` is evaluated: the graph's `compare_bits` on the ops built from comparisons (see
/// `compare::Width`), the ranges of fixed-point products and truncations (see
/// [`products`]) and the domains of functions (see [`domains`]). The kernels themselves ([`eval_op`]) compute on the whole ring, as secure
/// protocols' ring arithmetic needs.
pub fn check_contracts(op: &Op, inputs: &[&Tensor], out: &TensorInfo, fp: FixedPoint) -> Result<()> {
    check_comparison_width(op, inputs, out, fp)?;
    products::check_inputs(op, inputs, &out.shape, fp)?;
    domains::check_inputs(op, inputs, fp)
}

/// The contracts checked on the exact result of `op` (dot products and means, whose range is
/// that of their result; see [`products`]).
pub fn check_result(op: &Op, inputs: &[&Tensor], result: &Tensor, fp: FixedPoint) -> Result<()> {
    products::check_result(op, inputs, result, fp)
}

/// `op` evaluated as `ref` evaluates it, with every contract a secure protocol relies on
/// enforced: [`check_contracts`] on the inputs, [`check_result`] and the node's declared
/// `range` (`[lo, hi]` in real units, itself a contract) on the result.
pub fn eval_checked(
    op: &Op,
    inputs: &[&Tensor],
    out: &TensorInfo,
    fp: FixedPoint,
    range: Option<[f64; 2]>,
) -> Result<Tensor> {
    check_contracts(op, inputs, out, fp)?;
    let t = eval_op(op, inputs, out, fp)?;
    check_result(op, inputs, &t, fp)?;
    if let Some(r) = range {
        t.check_range(r, fp).map_err(|m| Error::invalid(format!("{m} (the node's `range:` is a contract)")))?;
    }
    Ok(t)
}

/// Enforces the graph's `compare_bits` on the ops that secure protocols build from comparisons
/// (see [`compare::Width`]).
fn check_comparison_width(op: &Op, inputs: &[&Tensor], out: &TensorInfo, fp: FixedPoint) -> Result<()> {
    let Some(first) = inputs.first() else { return Ok(()) };
    let w = compare::Width { fp, dtype: first.dtype };
    match op {
        Op::Gt | Op::Ge | Op::Lt | Op::Le | Op::Eq | Op::Max { axis: None } | Op::Min { axis: None } => {
            args(op, inputs).and_then(|[a, b]| compare::check_width(w, a, Some(b), out))
        }
        Op::Relu => compare::check_width(w, first, None, out),
        Op::Histogram { edges } => histogram::check_width(w, first, edges),
        // Softmax subtracts its lane's maximum, which secure protocols find by comparisons,
        // then looks up exp of the difference in fixed point: an int lane counts as `x·2^f`.
        Op::Softmax { axis } if first.dtype == DType::Int => {
            let data = first.data.iter().map(|&x| words::saturate(words::fixed_scaled(first.dtype, x, fp))).collect();
            let scaled = Tensor { dtype: DType::Fixed, shape: first.shape.clone(), data };
            extrema::check_lanes(&scaled, *axis, compare::Width { fp, dtype: DType::Fixed }, op.name())
        }
        Op::Max { axis: Some(axis) }
        | Op::Min { axis: Some(axis) }
        | Op::Argmax { axis, .. }
        | Op::Softmax { axis } => extrema::check_lanes(first, *axis, w, op.name()),
        Op::Maxpool(p) => pool::check_windows(first, p, out, w),
        _ => Ok(()),
    }
}

/// Routes `op` to its kernel.
fn dispatch(op: &Op, inputs: &[&Tensor], out: &TensorInfo, fp: FixedPoint) -> Result<Vec<u64>> {
    match op {
        Op::Add => args(op, inputs).and_then(|[a, b]| elementwise::add(a, b, out)),
        Op::Sub => args(op, inputs).and_then(|[a, b]| elementwise::sub(a, b, out)),
        Op::Neg => args(op, inputs).and_then(|[a]| elementwise::neg(a)),
        Op::Mul => args(op, inputs).and_then(|[a, b]| elementwise::mul(a, b, out, fp)),
        Op::Scale { factor } => args(op, inputs).and_then(|[a]| elementwise::scale(a, *factor, out, fp)),
        Op::Shift { bits } => args(op, inputs).and_then(|[a]| elementwise::shift(a, *bits)),
        Op::Matmul => args(op, inputs).and_then(|[a, b]| linalg::matmul(a, b, out, fp)),
        Op::Conv2d { stride, padding } => {
            args(op, inputs).and_then(|[x, w]| linalg::conv2d(x, w, *stride, *padding, out, fp))
        }
        Op::Sum { axes, .. } => args(op, inputs).and_then(|[a]| reduce::sum(a, axes, out)),
        Op::Mean { axes, .. } => args(op, inputs).and_then(|[a]| reduce::mean(a, axes, out, fp)),
        Op::Count { axes } => args(op, inputs).and_then(|[a]| reduce::count(a, axes)),
        Op::Histogram { edges } => args(op, inputs).and_then(|[a]| histogram::histogram(a, edges, fp)),
        Op::Reshape { .. } => args(op, inputs).and_then(|[a]| layout::reshape(a, out)),
        Op::Transpose { perm } => args(op, inputs).and_then(|[a]| layout::transpose(a, perm)),
        Op::Concat { axis } => layout::concat(inputs, *axis, out),
        Op::Slice { starts, ends, axes, steps } => {
            let spec = layout::SliceSpec { starts, ends, axes, steps };
            args(op, inputs).and_then(|[a]| layout::slice(a, &spec, out))
        }
        Op::Broadcast { .. } => args(op, inputs).and_then(|[a]| layout::broadcast(a, out)),
        Op::Gt | Op::Ge | Op::Lt | Op::Le | Op::Eq => args(op, inputs).and_then(|[a, b]| {
            compare::compare(op, a, b, out).unwrap_or_else(|| Err(Error::internal("not a comparison")))
        }),
        Op::Relu => args(op, inputs).and_then(|[a]| compare::relu(a)),
        Op::Max { axis: None } => args(op, inputs).and_then(|[a, b]| compare::max_min(a, b, out, true)),
        Op::Min { axis: None } => args(op, inputs).and_then(|[a, b]| compare::max_min(a, b, out, false)),
        Op::Max { axis: Some(axis) } => args(op, inputs).and_then(|[a]| extrema::max_min_axis(a, *axis, true, out)),
        Op::Min { axis: Some(axis) } => args(op, inputs).and_then(|[a]| extrema::max_min_axis(a, *axis, false, out)),
        Op::Maxpool(p) => args(op, inputs).and_then(|[a]| pool::maxpool(a, p, out)),
        Op::Avgpool(p) => args(op, inputs).and_then(|[a]| pool::avgpool(a, p, out, fp)),
        Op::Argmax { axis, one_hot } => args(op, inputs).and_then(|[a]| extrema::argmax(a, *axis, *one_hot, out)),
        Op::OneHot { depth } => args(op, inputs).and_then(|[a]| compare::one_hot(a, *depth, fp)),
        Op::Select => args(op, inputs).and_then(|[c, a, b]| compare::select(c, a, b, out)),
        Op::Reciprocal => args(op, inputs).and_then(|[a]| division::reciprocal(a, fp)),
        Op::Div => args(op, inputs).and_then(|[a, b]| division::div(a, b, out, fp)),
        Op::Sqrt => args(op, inputs).and_then(|[a]| division::sqrt(a, fp)),
        Op::Rsqrt => args(op, inputs).and_then(|[a]| nonlinear::rsqrt(a, fp)),
        Op::Exp => args(op, inputs).and_then(|[a]| nonlinear::exp(a, fp)),
        Op::Sigmoid => args(op, inputs).and_then(|[a]| nonlinear::sigmoid(a, fp)),
        Op::Tanh => args(op, inputs).and_then(|[a]| nonlinear::tanh(a, fp)),
        Op::Gelu => args(op, inputs).and_then(|[a]| nonlinear::gelu(a, fp)),
        Op::Softmax { axis } => args(op, inputs).and_then(|[a]| normalize::softmax(a, *axis, fp)),
        Op::Layernorm { axis, epsilon } => {
            let (x, affine) = inputs.split_first().ok_or_else(|| Error::internal("`layernorm` without input"))?;
            let ln = normalize::LayerNorm {
                axis: *axis,
                epsilon: *epsilon,
                gamma: affine.first().copied(),
                beta: affine.get(1).copied(),
            };
            normalize::layernorm(x, &ln, out, fp)
        }
        Op::Custom { name, .. } => Err(Error::internal(format!("custom op `{name}` must be expanded first"))),
        _ => Err(Error::Unsupported { what: format!("op `{}`", op.name()), plugin: "ref".into() }),
    }
}

#[cfg(test)]
mod tests {
    use super::testutil::*;
    use super::*;

    #[test]
    fn custom_ops_are_internal_errors() {
        let op = Op::Custom { name: "foo".into(), attrs: Default::default() };
        let out = TensorInfo { shape: vec![], dtype: DType::Fixed, vis: Visibility::Secret };
        let e = eval_op(&op, &[], &out, fp()).unwrap_err();
        assert!(matches!(e, Error::Internal(_)), "{e}");
    }

    #[test]
    fn inconsistent_inputs_are_errors_not_panics() {
        let bad = Tensor { dtype: DType::Fixed, shape: vec![2, 2], data: vec![1, 2, 3] };
        let out = TensorInfo { shape: vec![2, 2], dtype: DType::Fixed, vis: Visibility::Secret };
        assert!(matches!(eval_op(&Op::Neg, &[&bad], &out, fp()), Err(Error::Invalid(_))));
        let huge = Tensor { dtype: DType::Fixed, shape: vec![usize::MAX, 3], data: vec![] };
        assert!(eval_op(&Op::Neg, &[&huge], &out, fp()).is_err());
        // Wrong arity, wrong planned output, bad axis, too many fractional bits.
        let a = fx(&[2], &[1.0, 2.0]);
        let out2 = TensorInfo { shape: vec![2], dtype: DType::Fixed, vis: Visibility::Secret };
        assert!(matches!(eval_op(&Op::Add, &[&a], &out2, fp()), Err(Error::Invalid(_))));
        assert!(matches!(eval_op(&Op::Neg, &[&a], &out, fp()), Err(Error::Internal(_))));
        let int_out = TensorInfo { dtype: DType::Int, ..out2.clone() };
        assert!(matches!(eval_op(&Op::Neg, &[&a], &int_out, fp()), Err(Error::Internal(_))));
        assert!(eval_op(&Op::Softmax { axis: 3 }, &[&a], &out2, fp()).is_err());
        assert!(eval_op(&Op::Neg, &[&a], &out2, FixedPoint::new(64)).is_err());
        let s = Op::Slice { starts: vec![0], ends: vec![1], axes: vec![], steps: vec![0] };
        assert!(try_run(&s, &[&a]).is_err());
        // Sizes whose product overflows are refused; empty tensors with huge sizes are fine.
        assert!(try_run(&Op::Reshape { shape: vec![1 << 62, 1 << 62] }, &[&fx(&[4], &[0.0; 4])]).is_err());
        let e = run(&Op::Reshape { shape: vec![1 << 62, 1 << 62, 0] }, &[&fx(&[0], &[])]);
        assert_eq!((e.shape.clone(), e.data.len()), (vec![1 << 62, 1 << 62, 0], 0));
        let t = run(&Op::Transpose { perm: vec![] }, &[&e]);
        assert_eq!((t.shape.clone(), t.data.len()), (vec![0, 1 << 62, 1 << 62], 0));
        let s = Op::Slice { starts: vec![-1], ends: vec![i64::MIN], axes: vec![1], steps: vec![-3] };
        assert_eq!(run(&s, &[&e]).data.len(), 0);
        // Summing away the empty axis would give 2^124 zeros: an error, not a crash.
        assert!(try_run(&Op::Sum { axes: vec![0], keepdims: false }, &[&t]).is_err());
    }

    #[test]
    fn other_fractional_bits() {
        for f in [0, 8, 30] {
            let fp = FixedPoint::new(f);
            let t = |v: &[f64]| Tensor::from_f64(DType::Fixed, vec![v.len()], v, fp).unwrap();
            let eval = |op: &Op, ins: &[&Tensor]| {
                let out = out_info(op, ins).unwrap();
                eval_op(op, ins, &out, fp).unwrap().to_f64(fp)
            };
            // Expected values from the decoded inputs (at f = 0, 1.5 is stored as 2).
            let (a, b) = (t(&[1.5, -3.0, 12.0]), t(&[2.0, 0.5, -4.0]));
            let (da, db) = (a.to_f64(fp), b.to_f64(fp));
            let zipped = |g: fn(f64, f64) -> f64| da.iter().zip(&db).map(|(&x, &y)| g(x, y)).collect::<Vec<_>>();
            let half = fp.ulp() / 2.0;
            assert_close(&eval(&Op::Mul, &[&a, &b]), &zipped(|x, y| x * y), half);
            assert_close(&eval(&Op::Div, &[&a, &b]), &zipped(|x, y| x / y), half);
            assert_close(&eval(&Op::Reciprocal, &[&b]), &db.iter().map(|y| 1.0 / y).collect::<Vec<_>>(), half);
            let r = t(&[2.25, 16.0]);
            let roots: Vec<f64> = r.to_f64(fp).iter().map(|x| x.sqrt()).collect();
            assert_close(&eval(&Op::Sqrt, &[&r]), &roots, half);
            assert_close(
                &eval(&Op::Mean { axes: vec![], keepdims: false }, &[&a]),
                &[da.iter().sum::<f64>() / 3.0],
                half,
            );
            assert_close(&eval(&Op::Exp, &[&t(&[0.0, 1.0])]), &[1.0, 1f64.exp()], half + 1e-12);
        }
    }

    #[test]
    fn bit_outputs_are_canonical() {
        let b = Tensor { dtype: DType::Bit, shape: vec![3], data: vec![3, 2, 1] };
        let r = run(&Op::Reshape { shape: vec![3] }, &[&b]);
        assert_eq!(r.data, vec![1, 0, 1]);
    }

    #[test]
    fn every_op_runs_on_a_large_input() {
        // 1e6 elements through a few representative kernels: all O(n).
        let n = 1_000_000;
        let v: Vec<f64> = (0..n).map(|i| (i % 1000) as f64 / 100.0 - 5.0).collect();
        let x = fx(&[1000, 1000], &v);
        let y = run(&Op::Add, &[&x, &fx(&[1000], &[0.5; 1000])]);
        assert_eq!(y.data.len(), n);
        let t = run(&Op::Transpose { perm: vec![] }, &[&y]);
        let s = run(&Op::Sum { axes: vec![0], keepdims: false }, &[&t]);
        assert_eq!(s.shape, vec![1000]);
        let sm = run(&Op::Softmax { axis: -1 }, &[&x]);
        assert_eq!(sm.data.len(), n);
    }
}
