//! Ring arithmetic, elementwise: `add`, `sub`, `neg`, `mul`, `scale`, `shift`.
//!
//! Why a module of its own: these are the ops a secure protocol computes locally or with one
//! multiplication, so their reference must be exactly the ring arithmetic (wrapping `u64`),
//! with rounding only where fixed point forces it (a fixed × fixed product, a right shift, a
//! fixed-point factor), and then once, to nearest.

use super::broadcast::zip2;
use super::words::{map1, signed};
use mpcflow_sdk::shape::TensorInfo;
use mpcflow_sdk::{DType, Error, FixedPoint, Result, Tensor};

/// `a + b`, wrapping (bit operands count as 0/1 integers).
pub fn add(a: &Tensor, b: &Tensor, out: &TensorInfo) -> Result<Vec<u64>> {
    zip2(a, b, &out.shape, u64::wrapping_add)
}

/// `a - b`, wrapping.
pub fn sub(a: &Tensor, b: &Tensor, out: &TensorInfo) -> Result<Vec<u64>> {
    zip2(a, b, &out.shape, u64::wrapping_sub)
}

/// `-a`, wrapping (`-i64::MIN` is `i64::MIN`; a bit becomes the int 0 or -1).
pub fn neg(a: &Tensor) -> Result<Vec<u64>> {
    map1(a, u64::wrapping_neg)
}

/// `a * b`: fixed × fixed is the exact product rounded once ([`FixedPoint::mul`]); any product
/// with an int or bit operand is the wrapping product of the words (no rescaling is needed, the
/// int is the real number it denotes); bit × bit is `and`.
pub fn mul(a: &Tensor, b: &Tensor, out: &TensorInfo, fp: FixedPoint) -> Result<Vec<u64>> {
    if a.dtype == DType::Fixed && b.dtype == DType::Fixed {
        zip2(a, b, &out.shape, |x, y| fp.mul(x, y))
    } else {
        zip2(a, b, &out.shape, u64::wrapping_mul)
    }
}

/// `a * factor`.
///
/// - fixed input: `factor` is first encoded in fixed point (`fp.encode(factor)`, which rounds
///   it to the nearest ulp and saturates), then multiplied exactly and rounded once:
///   `FixedPoint::mul(x, fp.encode(factor))`.
/// - int or bit input, integral factor (int output): wrapping integer product, with the factor
///   taken modulo 2^64.
/// - int or bit input, fractional factor (fixed output): `fp.encode(x * factor)` in `f64`.
pub fn scale(a: &Tensor, factor: f64, out: &TensorInfo, fp: FixedPoint) -> Result<Vec<u64>> {
    match (a.dtype, out.dtype) {
        (DType::Fixed, _) => {
            let f = fp.encode(factor);
            map1(a, |x| fp.mul(x, f))
        }
        (_, DType::Int) => {
            let f = integral_word(factor);
            map1(a, |x| x.wrapping_mul(f))
        }
        (_, DType::Fixed) => map1(a, |x| fp.encode(x as i64 as f64 * factor)),
        (_, DType::Bit) => Err(Error::internal("`scale` cannot produce bits")),
    }
}

/// An integral `f64` as a ring word (its value modulo 2^64). Values of magnitude 2^127 or more
/// are multiples of 2^75 and so 0 modulo 2^64; below that `as i128` is exact.
fn integral_word(f: f64) -> u64 {
    if f.abs() >= 2f64.powi(127) { 0 } else { f as i128 as u64 }
}

/// `a * 2^bits`: a wrapping left shift for `bits > 0`; for `bits < 0` an arithmetic right shift
/// rounded to nearest, ties away from zero (`round_shift_i128`). Shifts of 64 bits or more
/// give 0 to the left; to the right they give 0, except `i64::MIN >> 64` which rounds to -1.
pub fn shift(a: &Tensor, bits: i32) -> Result<Vec<u64>> {
    if bits >= 0 {
        let b = bits.unsigned_abs();
        map1(a, |x| x.checked_shl(b).unwrap_or(0))
    } else {
        // |v| <= 2^63, so v / 2^65 rounds to 0 and every longer shift is the same as 65.
        let k = bits.unsigned_abs().min(65);
        map1(a, |x| mpcflow_sdk::fixed::round_shift_i128(i128::from(signed(DType::Int, x)), k) as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::super::testutil::*;
    use mpcflow_sdk::{DType, Op};

    #[test]
    fn add_sub_broadcast_and_wrap() {
        let a = int(&[2, 2], &[1, 2, 3, i64::MAX]);
        let b = int(&[2], &[10, 1]);
        assert_eq!(ints(&run(&Op::Add, &[&a, &b])), vec![11, 3, 13, i64::MIN]);
        assert_eq!(ints(&run(&Op::Sub, &[&b, &a])), vec![9, -1, 7, i64::MIN + 2]);
        let m = int(&[], &[i64::MIN]);
        assert_eq!(ints(&run(&Op::Sub, &[&m, &int(&[], &[1])])), vec![i64::MAX]);
        let x = fx(&[3], &[1.5, -2.25, 0.0]);
        assert_eq!(reals(&run(&Op::Add, &[&x, &fx(&[], &[0.5])])), vec![2.0, -1.75, 0.5]);
    }

    #[test]
    fn bits_add_as_integers() {
        let r = run(&Op::Add, &[&bit(&[3], &[1, 1, 0]), &bit(&[3], &[1, 0, 0])]);
        assert_eq!((r.dtype, ints(&r)), (DType::Int, vec![2, 1, 0]));
        let r = run(&Op::Sub, &[&int(&[2], &[5, 5]), &bit(&[2], &[1, 0])]);
        assert_eq!(ints(&r), vec![4, 5]);
    }

    #[test]
    fn neg_wraps_at_min() {
        assert_eq!(ints(&run(&Op::Neg, &[&int(&[3], &[i64::MIN, i64::MAX, 0])])), vec![i64::MIN, -i64::MAX, 0]);
        let r = run(&Op::Neg, &[&bit(&[2], &[1, 0])]);
        assert_eq!((r.dtype, ints(&r)), (DType::Int, vec![-1, 0]));
        assert_eq!(reals(&run(&Op::Neg, &[&fx(&[1], &[2.5])])), vec![-2.5]);
    }

    #[test]
    fn mul_by_dtype() {
        let (a, b) = (fx(&[2], &[1.5, -0.5]), fx(&[2], &[-2.0, 0.25]));
        assert_eq!(reals(&run(&Op::Mul, &[&a, &b])), vec![-3.0, -0.125]);
        // Round to nearest: 2^-16 * 0.5 = 2^-17 is a tie and rounds away from zero.
        let tiny = mpcflow_sdk::Tensor::from_words(DType::Fixed, vec![2], vec![1, (-1i64) as u64]).unwrap();
        assert_eq!(ints(&run(&Op::Mul, &[&tiny, &fx(&[], &[0.5])])), vec![1, -1]);
        // fixed × int: word product, no rescale.
        let r = run(&Op::Mul, &[&a, &int(&[], &[-3])]);
        assert_eq!((r.dtype, reals(&r)), (DType::Fixed, vec![-4.5, 1.5]));
        let r = run(&Op::Mul, &[&bit(&[2], &[1, 0]), &a]);
        assert_eq!((r.dtype, reals(&r)), (DType::Fixed, vec![1.5, 0.0]));
        let r = run(&Op::Mul, &[&bit(&[4], &[1, 1, 0, 0]), &bit(&[4], &[1, 0, 1, 0])]);
        assert_eq!((r.dtype, r.data), (DType::Bit, vec![1, 0, 0, 0]));
        let r = run(&Op::Mul, &[&int(&[2], &[i64::MAX, i64::MIN]), &int(&[], &[2])]);
        assert_eq!(ints(&r), vec![-2, 0]);
        let r = run(&Op::Mul, &[&int(&[1], &[i64::MIN]), &int(&[1], &[-1])]);
        assert_eq!(ints(&r), vec![i64::MIN]);
    }

    #[test]
    fn scale_cases() {
        let x = fx(&[3], &[1.0, -3.0, 0.5]);
        assert_eq!(reals(&run(&Op::Scale { factor: 0.25 }, &[&x])), vec![0.25, -0.75, 0.125]);
        // The factor is encoded first: 1e-6 encodes to 0 with 16 fractional bits.
        assert_eq!(reals(&run(&Op::Scale { factor: 1e-6 }, &[&x])), vec![0.0, 0.0, 0.0]);
        let i = int(&[3], &[3, -4, i64::MAX]);
        let r = run(&Op::Scale { factor: 3.0 }, &[&i]);
        assert_eq!((r.dtype, ints(&r)), (DType::Int, vec![9, -12, i64::MAX.wrapping_mul(3)]));
        let r = run(&Op::Scale { factor: 2f64.powi(64) + 2f64.powi(12) }, &[&int(&[1], &[1])]);
        assert_eq!(ints(&r), vec![1 << 12], "integral factors are taken modulo 2^64");
        assert_eq!(ints(&run(&Op::Scale { factor: 1e300 }, &[&int(&[1], &[5])])), vec![0]);
        let r = run(&Op::Scale { factor: -1.5 }, &[&i]);
        assert_eq!(r.dtype, DType::Fixed);
        assert_eq!(reals(&r)[..2], [-4.5, 6.0]);
        assert_eq!(r.data[2], i64::MIN as u64, "saturates");
        let r = run(&Op::Scale { factor: 0.5 }, &[&bit(&[2], &[1, 0])]);
        assert_eq!(reals(&r), vec![0.5, 0.0]);
        let r = run(&Op::Scale { factor: 2.0 }, &[&bit(&[2], &[1, 0])]);
        assert_eq!((r.dtype, ints(&r)), (DType::Int, vec![2, 0]));
    }

    #[test]
    fn shift_left_wraps_and_right_rounds() {
        let r = run(&Op::Shift { bits: 2 }, &[&int(&[3], &[3, -1, 1 << 62])]);
        assert_eq!(ints(&r), vec![12, -4, 0]);
        let r = run(&Op::Shift { bits: -1 }, &[&int(&[6], &[3, -3, 2, 5, -5, 1])]);
        assert_eq!(ints(&r), vec![2, -2, 1, 3, -3, 1]);
        let r = run(&Op::Shift { bits: -2 }, &[&fx(&[2], &[1.0, -3.0])]);
        assert_eq!(reals(&r), vec![0.25, -0.75]);
        let r = run(&Op::Shift { bits: 1 }, &[&bit(&[2], &[1, 0])]);
        assert_eq!((r.dtype, ints(&r)), (DType::Int, vec![2, 0]));
        let m = int(&[3], &[i64::MIN, i64::MAX, -1]);
        assert_eq!(ints(&run(&Op::Shift { bits: -63 }, &[&m])), vec![-1, 1, 0]);
        assert_eq!(ints(&run(&Op::Shift { bits: -64 }, &[&m])), vec![-1, 0, 0]);
        assert_eq!(ints(&run(&Op::Shift { bits: -200 }, &[&m])), vec![0, 0, 0]);
        assert_eq!(ints(&run(&Op::Shift { bits: 64 }, &[&m])), vec![0, 0, 0]);
        assert_eq!(ints(&run(&Op::Shift { bits: 63 }, &[&m])), vec![0, i64::MIN, i64::MIN]);
    }

    mod props {
        use super::super::super::testutil::*;
        use mpcflow_sdk::{DType, Op, Tensor};
        use proptest::prelude::*;

        proptest! {
            #[test]
            fn add_then_sub_is_identity(a in prop::collection::vec(any::<u64>(), 1..20), b in any::<u64>()) {
                let x = Tensor::from_words(DType::Int, vec![a.len()], a.clone()).unwrap();
                let y = Tensor::from_words(DType::Int, vec![], vec![b]).unwrap();
                let s = run(&Op::Add, &[&x, &y]);
                prop_assert_eq!(run(&Op::Sub, &[&s, &y]).data, a);
            }

            #[test]
            fn fixed_mul_within_half_ulp(a in -3e4f64..3e4, b in -3e4f64..3e4) {
                let (x, y) = (fx(&[], &[a]), fx(&[], &[b]));
                let exact = reals(&x)[0] * reals(&y)[0];
                let got = reals(&run(&Op::Mul, &[&x, &y]))[0];
                prop_assert!((got - exact).abs() <= ulp() / 2.0 + 1e-9);
            }

            #[test]
            fn shift_left_then_right_is_identity(v in -(1i64 << 40)..(1i64 << 40), bits in 1i32..20) {
                let x = int(&[], &[v]);
                let up = run(&Op::Shift { bits }, &[&x]);
                prop_assert_eq!(ints(&run(&Op::Shift { bits: -bits }, &[&up])), vec![v]);
            }
        }
    }
}
