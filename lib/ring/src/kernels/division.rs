//! Exactly rounded division and square root: `div`, `reciprocal`, `sqrt`.
//!
//! Why a module of its own: these three have an exact rational (or integer-square-root)
//! definition, so the reference computes them in integers, never through `f64`: the result is
//! the real quotient or root rounded to the nearest ulp (ties away from zero), then saturated to
//! the fixed range like [`mpcflow_sdk::FixedPoint::encode`]. This is at least as tight as the
//! "`f64` then encode" bound, and does not lose bits for operands above 2^53 ulps.
//!
//! Edge cases, defined here once:
//! - `x / 0` and `reciprocal(0)`: the largest representable magnitude with the sign of the
//!   numerator (`i64::MAX` words for `x >= 0`, including `0 / 0`; `i64::MIN` for `x < 0`).
//! - `sqrt(x)` for `x < 0`: 0.

use super::broadcast::zip2;
use super::words::{div_round, fixed_scaled, map1, saturate};
use mpcflow_sdk::shape::TensorInfo;
use mpcflow_sdk::{FixedPoint, Result, Tensor};

/// `round(n / d)` saturated to a fixed word; division by 0 saturates with the sign of `n`.
fn quotient(n: i128, d: i128) -> u64 {
    match div_round(n, d) {
        Some(q) => saturate(q),
        None if n < 0 => i64::MIN as u64,
        None => i64::MAX as u64,
    }
}

/// `a / b` (broadcasting): with `A`, `B` the operands in ulps (ints times `2^f`), the result is
/// `round(A · 2^f / B)` ulps. `|A · 2^f| < 2^124`, so the numerator is exact in `i128`.
pub fn div(a: &Tensor, b: &Tensor, out: &TensorInfo, fp: FixedPoint) -> Result<Vec<u64>> {
    let f = fp.frac_bits;
    zip2(a, b, &out.shape, |x, y| quotient(fixed_scaled(a.dtype, x, fp) << f, fixed_scaled(b.dtype, y, fp)))
}

/// `1 / a`: `round(2^(2f) / A)` ulps.
pub fn reciprocal(a: &Tensor, fp: FixedPoint) -> Result<Vec<u64>> {
    let one = 1i128 << (2 * fp.frac_bits);
    map1(a, |x| quotient(one, fixed_scaled(a.dtype, x, fp)))
}

/// `sqrt(a)` rounded to nearest: `round(sqrt(A · 2^f))` ulps; 0 for negative input.
pub fn sqrt(a: &Tensor, fp: FixedPoint) -> Result<Vec<u64>> {
    map1(a, |x| {
        let v = fixed_scaled(a.dtype, x, fp);
        if v <= 0 {
            return 0;
        }
        let n = v.unsigned_abs() << fp.frac_bits;
        let r = n.isqrt();
        // sqrt(n) >= r + 1/2  <=>  n >= r^2 + r + 1/4  <=>  n - r^2 > r (integers).
        let r = if n - r * r > r { r + 1 } else { r };
        saturate(i128::try_from(r).unwrap_or(i128::MAX))
    })
}

#[cfg(test)]
mod tests {
    use super::super::testutil::*;
    use mpcflow_sdk::{DType, Op, Tensor};

    #[test]
    fn div_rounds_exact_quotient() {
        let a = fx(&[5], &[1.0, 2.0, -1.0, 7.5, 0.0]);
        let b = fx(&[5], &[3.0, 3.0, 3.0, -2.5, 5.0]);
        let r = run(&Op::Div, &[&a, &b]);
        assert_eq!(ints(&r), vec![21845, 43691, -21845, -3 << 16, 0]);
        let r = run(&Op::Div, &[&int(&[2], &[7, -9]), &int(&[], &[2])]);
        assert_eq!((r.dtype, reals(&r)), (DType::Fixed, vec![3.5, -4.5]));
        let r = run(&Op::Div, &[&fx(&[1], &[1.5]), &int(&[1], &[-3])]);
        assert_eq!(reals(&r), vec![-0.5]);
        // Half an ulp rounds away from zero: 2^-16 / 2 and its negation.
        let w = Tensor::from_words(DType::Fixed, vec![2], vec![1, (-1i64) as u64]).unwrap();
        assert_eq!(ints(&run(&Op::Div, &[&w, &fx(&[], &[2.0])])), vec![1, -1]);
    }

    #[test]
    fn div_edges_saturate() {
        let a = fx(&[3], &[1.0, -1.0, 0.0]);
        let r = run(&Op::Div, &[&a, &fx(&[], &[0.0])]);
        assert_eq!(ints(&r), vec![i64::MAX, i64::MIN, i64::MAX]);
        // 1e10 / 2^-16 is about 6.6e14, above the largest value (1.4e14).
        let ulp_word = Tensor::from_words(DType::Fixed, vec![], vec![1]).unwrap();
        let r = run(&Op::Div, &[&fx(&[2], &[1e10, -1e10]), &ulp_word]);
        assert_eq!(ints(&r), vec![i64::MAX, i64::MIN]);
        let r = run(&Op::Div, &[&int(&[1], &[i64::MIN]), &int(&[1], &[-1])]);
        assert_eq!(ints(&r), vec![i64::MAX], "the quotient does not fit: saturates");
        let m = Tensor::from_words(DType::Fixed, vec![1], vec![i64::MIN as u64]).unwrap();
        let e = Tensor::from_words(DType::Fixed, vec![1], vec![1]).unwrap();
        assert_eq!(ints(&run(&Op::Div, &[&m, &e])), vec![i64::MIN]);
    }

    #[test]
    fn reciprocal_cases() {
        let r = run(&Op::Reciprocal, &[&fx(&[5], &[4.0, 3.0, -0.5, 0.0, 1.0 / 65536.0])]);
        assert_eq!(ints(&r), vec![1 << 14, 21845, -(2 << 16), i64::MAX, 1 << 32]);
        assert_eq!(reals(&run(&Op::Reciprocal, &[&int(&[2], &[2, -8])])), vec![0.5, -0.125]);
    }

    #[test]
    fn sqrt_cases() {
        let r = run(&Op::Sqrt, &[&fx(&[5], &[4.0, 2.0, -1.0, 0.0, 0.25])]);
        assert_eq!(ints(&r), vec![2 << 16, 92682, 0, 0, 1 << 15]);
        assert_eq!(reals(&run(&Op::Sqrt, &[&int(&[2], &[9, -9])])), vec![3.0, 0.0]);
        let m = Tensor::from_words(DType::Fixed, vec![1], vec![i64::MAX as u64]).unwrap();
        // sqrt((2^63 - 1) / 2^16) · 2^16 = sqrt(2^79 - 2^16) ≈ 2^39.5.
        assert_eq!(ints(&run(&Op::Sqrt, &[&m])), vec![((2f64.powi(79) - 65536.0).sqrt()).round() as i64]);
        let r = run(&Op::Sqrt, &[&int(&[1], &[i64::MAX])]);
        assert_eq!(ints(&r), vec![(((i64::MAX as f64) * 2f64.powi(32)).sqrt()).round() as i64]);
    }

    mod props {
        use super::super::super::testutil::*;
        use mpcflow_sdk::Op;
        use proptest::prelude::*;

        proptest! {
            #[test]
            fn div_within_half_ulp(a in -1e4f64..1e4, b in prop_oneof![-1e3f64..-1e-2, 1e-2f64..1e3]) {
                let (x, y) = (fx(&[], &[a]), fx(&[], &[b]));
                let exact = reals(&x)[0] / reals(&y)[0];
                let got = reals(&run(&Op::Div, &[&x, &y]))[0];
                prop_assert!((got - exact).abs() <= ulp() / 2.0 + 1e-9, "{} vs {}", got, exact);
            }

            #[test]
            fn sqrt_within_half_ulp(a in 0f64..1e9) {
                let x = fx(&[], &[a]);
                let exact = reals(&x)[0].sqrt();
                let got = reals(&run(&Op::Sqrt, &[&x]))[0];
                prop_assert!((got - exact).abs() <= ulp() / 2.0 + 1e-9);
            }
        }
    }
}
