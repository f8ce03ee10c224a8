//! Elementwise real functions evaluated in `f64`: `exp`, `sigmoid`, `tanh`, `gelu`, `rsqrt`.
//!
//! Why a module of its own: these have no exact finite definition in the ring, so the reference
//! decodes each element to the real number it denotes (an int input is read as that integer),
//! applies the function in `f64`, and encodes the result with [`FixedPoint::encode`] (round to
//! nearest, saturate at the ends of the range). The error against the real function is half an
//! ulp plus the `f64` error of the function (a few 1e-16 relative), plus the `f64` rounding of
//! the input for words above 2^53.
//!
//! Edge cases: `exp` of a large input saturates to the largest value, of a very negative one it
//! gives 0; `sigmoid` saturates to 0 and 1 (it is evaluated in the form that never overflows);
//! `rsqrt(x)` for `x <= 0` is the largest representable value (as for `1/+0`).

use super::erf::normal_cdf;
use super::words::map1;
use mpcflow_sdk::tensor::decode_value;
use mpcflow_sdk::{FixedPoint, Result, Tensor};

/// `encode(f(decode(x)))` for every element.
fn map_real(a: &Tensor, fp: FixedPoint, f: impl Fn(f64) -> f64) -> Result<Vec<u64>> {
    map1(a, |w| fp.encode(f(decode_value(a.dtype, w, fp))))
}

/// `e^x`.
pub fn exp(a: &Tensor, fp: FixedPoint) -> Result<Vec<u64>> {
    map_real(a, fp, f64::exp)
}

/// `1 / (1 + e^-x)`, computed as `e^x / (1 + e^x)` for negative `x` so nothing overflows.
pub fn sigmoid(a: &Tensor, fp: FixedPoint) -> Result<Vec<u64>> {
    map_real(a, fp, |x| {
        if x >= 0.0 {
            1.0 / (1.0 + (-x).exp())
        } else {
            let e = x.exp();
            e / (1.0 + e)
        }
    })
}

/// `tanh(x)`.
pub fn tanh(a: &Tensor, fp: FixedPoint) -> Result<Vec<u64>> {
    map_real(a, fp, f64::tanh)
}

/// `x · Φ(x) = x · (1 + erf(x/√2)) / 2`, the exact (not tanh-approximated) GELU.
pub fn gelu(a: &Tensor, fp: FixedPoint) -> Result<Vec<u64>> {
    map_real(a, fp, |x| x * normal_cdf(x))
}

/// `1 / sqrt(x)`; the largest representable value for `x <= 0`.
pub fn rsqrt(a: &Tensor, fp: FixedPoint) -> Result<Vec<u64>> {
    map_real(a, fp, |x| if x > 0.0 { 1.0 / x.sqrt() } else { f64::INFINITY })
}

#[cfg(test)]
mod tests {
    use super::super::testutil::*;
    use mpcflow_sdk::Op;

    /// Runs a one-input op on fixed values and checks each result within half an ulp (plus a
    /// little for `f64`) of `want`.
    fn check(op: Op, xs: &[f64], want: &[f64]) {
        let r = run(&op, &[&fx(&[xs.len()], xs)]);
        assert_close(&reals(&r), want, ulp() / 2.0 + 1e-12);
    }

    #[test]
    fn exp_values_and_saturation() {
        check(Op::Exp, &[0.0, 1.0, -1.0, 2.5, -20.0], &[1.0, 1.0f64.exp(), (-1.0f64).exp(), 2.5f64.exp(), 0.0]);
        let r = run(&Op::Exp, &[&fx(&[2], &[100.0, -1e6])]);
        assert_eq!(ints(&r), vec![i64::MAX, 0]);
        assert_close(&reals(&run(&Op::Exp, &[&int(&[1], &[2])])), &[2.0f64.exp()], ulp() / 2.0);
    }

    #[test]
    fn sigmoid_and_tanh_values() {
        check(Op::Sigmoid, &[0.0, 2.0, -2.0, 50.0, -50.0], &[0.5, 0.8807970779778823, 0.11920292202211755, 1.0, 0.0]);
        check(Op::Tanh, &[0.0, 0.5, -0.5, 30.0], &[0.0, 0.46211715726000974, -0.46211715726000974, 1.0]);
        let r = run(&Op::Sigmoid, &[&int(&[1], &[i64::MIN])]);
        assert_eq!(ints(&r), vec![0]);
    }

    #[test]
    fn gelu_uses_exact_erf() {
        // x·Φ(x) with Φ(1) = 0.841344746068543, Φ(3) = 0.998650101968370.
        check(
            Op::Gelu,
            &[0.0, 1.0, -1.0, 3.0, -3.0, -10.0],
            &[0.0, 0.841344746068543, -0.158655253931457, 2.99595030590511, -0.00404969409489, 0.0],
        );
    }

    #[test]
    fn rsqrt_values_and_edges() {
        check(Op::Rsqrt, &[4.0, 0.25, 2.0], &[0.5, 2.0, 1.0 / 2.0f64.sqrt()]);
        let r = run(&Op::Rsqrt, &[&fx(&[2], &[0.0, -4.0])]);
        assert_eq!(ints(&r), vec![i64::MAX, i64::MAX]);
        assert_close(&reals(&run(&Op::Rsqrt, &[&int(&[1], &[16])])), &[0.25], 0.0);
    }
}
