//! Normalisations along one axis: `softmax` and `layernorm`, evaluated in `f64`.
//!
//! Why a module of its own: unlike the elementwise functions, each output depends on a whole
//! lane (all elements along the axis), so these walk lanes `(outer, inner)` of the input, decode
//! the lane to reals, compute in `f64` and encode each result once (round to nearest, saturate).
//!
//! - `softmax`: `e^(x_i - max) / Σ_j e^(x_j - max)`; subtracting the lane maximum first keeps
//!   every exponent `<= 0`, so nothing overflows and the denominator is at least 1.
//! - `layernorm`: `(x - mean) / sqrt(var + epsilon) · gamma + beta` with the population variance
//!   (divide by the lane length, as PyTorch and ONNX do), over the single axis `axis`; `gamma`
//!   and `beta` (inputs 2 and 3, optional) broadcast to the input's shape. Edge case: when
//!   `var + epsilon <= 0` (a constant lane with `epsilon <= 0`, or a NaN epsilon) the normalised
//!   value is defined as 0, so the output is `beta` (or 0).

use super::broadcast::expand;
use super::words::{numel, split_at_axis};
use mpcflow_sdk::shape::{TensorInfo, norm_axis};
use mpcflow_sdk::tensor::decode_value;
use mpcflow_sdk::{Error, FixedPoint, Result, Tensor};
use std::borrow::Cow;

/// Lanes along `axis` of `x`: calls `f(lane values, write)` once per lane, where `write(i, y)`
/// stores the real `y` at lane position `i` of the output.
fn per_lane(
    x: &Tensor,
    axis: i64,
    fp: FixedPoint,
    mut f: impl FnMut(usize, &[f64], &mut dyn FnMut(usize, f64)),
) -> Result<Vec<u64>> {
    let ax = norm_axis(axis, x.shape.len()).map_err(|e| Error::invalid(e.to_string()))?;
    let (outer, len, inner) = split_at_axis(&x.shape, ax)?;
    let n = numel(&x.shape)?;
    if x.data.len() != n {
        return Err(Error::internal("tensor length does not match its shape"));
    }
    let mut out = super::words::alloc(n)?;
    out.resize(n, 0);
    let mut lane = vec![0.0; len];
    for o in 0..outer {
        for j in 0..inner {
            let base = o * len * inner + j;
            for (i, v) in lane.iter_mut().enumerate() {
                *v = decode_value(x.dtype, x.data[base + i * inner], fp);
            }
            f(base, &lane, &mut |i, y| out[base + i * inner] = fp.encode(y));
        }
    }
    Ok(out)
}

/// Softmax along `axis`.
pub fn softmax(x: &Tensor, axis: i64, fp: FixedPoint) -> Result<Vec<u64>> {
    let mut exps = Vec::new();
    per_lane(x, axis, fp, |_, lane, write| {
        let max = lane.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        exps.clear();
        exps.extend(lane.iter().map(|&v| (v - max).exp()));
        let total: f64 = exps.iter().sum();
        for (i, e) in exps.iter().enumerate() {
            write(i, e / total);
        }
    })
}

/// The attributes and optional affine inputs of a `layernorm` node.
pub struct LayerNorm<'a> {
    /// Axis normalised.
    pub axis: i64,
    /// Added to the variance.
    pub epsilon: f64,
    /// Scale, broadcast to the input shape.
    pub gamma: Option<&'a Tensor>,
    /// Shift, broadcast to the input shape.
    pub beta: Option<&'a Tensor>,
}

/// An optional affine operand decoded to reals over the input's shape.
fn affine(t: Option<&Tensor>, shape: &[usize], fp: FixedPoint) -> Result<Option<Vec<f64>>> {
    let Some(t) = t else { return Ok(None) };
    let words: Cow<'_, [u64]> = expand(&t.data, &t.shape, shape)?;
    Ok(Some(words.iter().map(|&w| decode_value(t.dtype, w, fp)).collect()))
}

/// Layer normalisation along one axis (see the module docs for the exact definition).
pub fn layernorm(x: &Tensor, ln: &LayerNorm<'_>, out: &TensorInfo, fp: FixedPoint) -> Result<Vec<u64>> {
    let gamma = affine(ln.gamma, &out.shape, fp)?;
    let beta = affine(ln.beta, &out.shape, fp)?;
    let ax = norm_axis(ln.axis, x.shape.len()).map_err(|e| Error::invalid(e.to_string()))?;
    let inner = numel(&x.shape[ax + 1..])?;
    let pick =
        |v: &Option<Vec<f64>>, k: usize, default: f64| v.as_ref().and_then(|v| v.get(k).copied()).unwrap_or(default);
    per_lane(x, ln.axis, fp, |base, lane, write| {
        let n = lane.len() as f64;
        let mean = lane.iter().sum::<f64>() / n;
        let var = lane.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / n;
        let d = var + ln.epsilon;
        let inv = if d > 0.0 { 1.0 / d.sqrt() } else { 0.0 };
        for (i, v) in lane.iter().enumerate() {
            let k = base + i * inner;
            write(i, (v - mean) * inv * pick(&gamma, k, 1.0) + pick(&beta, k, 0.0));
        }
    })
}

#[cfg(test)]
mod tests {
    use super::super::testutil::*;
    use mpcflow_sdk::Op;

    #[test]
    fn softmax_rows() {
        let x = fx(&[2, 3], &[1.0, 2.0, 3.0, 1000.0, 1000.0, -1000.0]);
        let r = run(&Op::Softmax { axis: -1 }, &[&x]);
        let got = reals(&r);
        assert_close(&got[..3], &[0.09003057317038046, 0.24472847105479764, 0.6652409557748218], ulp() / 2.0 + 1e-12);
        assert_close(&got[3..], &[0.5, 0.5, 0.0], 0.0);
        for row in got.chunks(3) {
            assert!((row.iter().sum::<f64>() - 1.0).abs() <= 1e-4);
        }
    }

    #[test]
    fn softmax_along_first_axis_and_ints() {
        let r = run(&Op::Softmax { axis: 0 }, &[&int(&[2, 2], &[0, 5, 0, 5])]);
        assert_close(&reals(&r), &[0.5, 0.5, 0.5, 0.5], 0.0);
        let r = run(&Op::Softmax { axis: 0 }, &[&fx(&[2, 1], &[0.0, 2f64.ln()])]);
        // ln 2 itself is rounded on input, hence a full ulp.
        assert_close(&reals(&r), &[1.0 / 3.0, 2.0 / 3.0], ulp());
    }

    #[test]
    fn layernorm_with_gamma_and_beta() {
        let x = fx(&[2, 4], &[1.0, 2.0, 3.0, 4.0, 5.0, 5.0, 5.0, 5.0]);
        let s = 1.0 / 1.25f64.sqrt();
        let plain = run(&Op::Layernorm { axis: -1, epsilon: 0.0 }, &[&x]);
        // A constant lane with epsilon 0 normalises to 0 by definition.
        assert_close(&reals(&plain), &[-1.5 * s, -0.5 * s, 0.5 * s, 1.5 * s, 0.0, 0.0, 0.0, 0.0], ulp() / 2.0 + 1e-12);
        let gamma = fx(&[4], &[1.0, 2.0, 1.0, 0.5]);
        let beta = fx(&[4], &[0.0, 0.0, 1.0, -1.0]);
        let r = run(&Op::Layernorm { axis: 1, epsilon: 0.0 }, &[&x, &gamma, &beta]);
        assert_close(
            &reals(&r),
            &[-1.5 * s, -s, 0.5 * s + 1.0, 0.75 * s - 1.0, 0.0, 0.0, 1.0, -1.0],
            ulp() / 2.0 + 1e-12,
        );
        // Epsilon enters under the root; gamma alone, as an int scalar.
        let r = run(&Op::Layernorm { axis: -1, epsilon: 0.75 }, &[&x, &int(&[], &[2])]);
        let s2 = 2.0 / 2.0f64.sqrt();
        let want = [-1.5 * s2, -0.5 * s2, 0.5 * s2, 1.5 * s2, 0.0, 0.0, 0.0, 0.0];
        assert_close(&reals(&r), &want, ulp() / 2.0 + 1e-12);
    }

    #[test]
    fn layernorm_along_first_axis() {
        // Lanes are columns: (1, 3) and (2, 6).
        let x = fx(&[2, 2], &[1.0, 2.0, 3.0, 6.0]);
        let beta = fx(&[2, 1], &[10.0, 20.0]);
        let r = run(&Op::Layernorm { axis: 0, epsilon: 0.0 }, &[&x, &fx(&[], &[1.0]), &beta]);
        assert_close(&reals(&r), &[9.0, 9.0, 21.0, 21.0], ulp() / 2.0 + 1e-12);
    }

    mod props {
        use super::super::super::testutil::*;
        use mpcflow_sdk::Op;
        use proptest::prelude::*;

        proptest! {
            #[test]
            fn softmax_lanes_sum_to_one(v in prop::collection::vec(-50.0f64..50.0, 1..40)) {
                let r = reals(&run(&Op::Softmax { axis: 0 }, &[&fx(&[v.len()], &v)]));
                prop_assert!(r.iter().all(|&p| (0.0..=1.0).contains(&p)));
                prop_assert!((r.iter().sum::<f64>() - 1.0).abs() <= v.len() as f64 * ulp() / 2.0 + 1e-12);
            }
        }
    }
}
