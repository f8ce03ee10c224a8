//! The ranges that fixed-point products, truncations and means must stay in, as contracts that
//! `ref` enforces.
//!
//! Why: a secure protocol truncates a product `z = x·y` (with `2f` fractional bits) back to `f`
//! bits without seeing it, and that is only exact while `z` stays in a stated range. fss2pc's
//! truncation (one `f`-bit DCF, see its `gates::trunc`) needs `|z| < 2^62 − 2^(f−1)` words; a
//! product outside it comes out wrong, with a wrong sign or off by `2^(64−f)`, and nothing at
//! run time can tell. `ref` computes exactly, so without a check it would agree with nobody: the
//! hospital statistics with blood pressures of `2e7` gave `ref`'s right mean and fss2pc's
//! negative one. So `ref` refuses such a value, naming it, and a pipeline tested under `ref`
//! shows the problem before it runs on private data.
//!
//! The contracts (words are `value · 2^f`):
//! - `mul` of two fixed operands: every `|x·y| < 2^62 − 2^(f−1)` (the exact product, in words
//!   of `2f` fractional bits); `scale` of a fixed operand: `|x · encode(factor)|` likewise;
//! - `matmul` and `conv2d` of two fixed operands: every output below `2^(62−2f)` in value (the
//!   exact dot product before rounding, checked on `ref`'s exactly rounded result);
//! - `shift` by `−t` (a truncation): `|x| < 2^62 − 2^(t−1)` words;
//! - `mean` and `avgpool`: a result below `2^(62−2f−7)` in value (`2^23` at `f = 16`): secure
//!   protocols divide by the count with a product carrying 7 extra bits.

use super::broadcast::zip2;
use super::words::signed;
use mpcflow_sdk::{DType, Error, FixedPoint, Op, Result, Tensor};
use std::cell::Cell;

/// Extra bits of the division by a count in `mean` and `avgpool` (see the module docs).
pub const DIVIDE_EXTRA_BITS: u32 = 7;

/// `2^62 − 2^(t−1)`: the magnitudes a truncation by `t` bits is exact for.
fn trunc_limit(t: u32) -> i128 {
    (1i128 << 62) - if t == 0 { 0 } else { 1i128 << (t - 1) }
}

/// `w` words with `f + extra` fractional bits, as a real number.
fn real(w: i128, fp: FixedPoint, extra: u32) -> f64 {
    w as f64 / (fp.scale() * (1u64 << extra) as f64)
}

/// Checks the inputs of `op` against its contract (products and truncations).
pub fn check_inputs(op: &Op, inputs: &[&Tensor], out_shape: &[usize], fp: FixedPoint) -> Result<()> {
    let f = fp.frac_bits;
    match (op, inputs) {
        (Op::Mul, &[a, b]) if f > 0 && a.dtype == DType::Fixed && b.dtype == DType::Fixed => {
            let limit = trunc_limit(f);
            let bad: Cell<Option<(u64, u64)>> = Cell::new(None);
            zip2(a, b, out_shape, |x, y| {
                let z = i128::from(x as i64) * i128::from(y as i64);
                if bad.get().is_none() && z.abs() >= limit {
                    bad.set(Some((x, y)));
                }
                0
            })?;
            match bad.get() {
                Some((x, y)) => Err(product_error("the product", fp.decode(x), fp.decode(y), fp)),
                None => Ok(()),
            }
        }
        (Op::Scale { factor }, &[a]) if f > 0 && a.dtype == DType::Fixed => {
            let c = i128::from(fp.encode(*factor) as i64);
            let limit = trunc_limit(f);
            match a.data.iter().find(|&&x| (i128::from(x as i64) * c).abs() >= limit) {
                Some(&x) => Err(product_error("the scaled value", fp.decode(x), *factor, fp)),
                None => Ok(()),
            }
        }
        (Op::Shift { bits }, &[a]) if *bits < 0 => {
            let t = bits.unsigned_abs().min(63);
            let limit = trunc_limit(t);
            match a.data.iter().map(|&x| signed(a.dtype, x)).find(|&x| i128::from(x).abs() >= limit) {
                Some(x) => Err(Error::invalid(format!(
                    "value {} (in words) is too large to shift right by {t} bits exactly in a secure protocol \
                     (magnitude below 2^62 − 2^{} words): keep the values smaller",
                    x,
                    t.saturating_sub(1)
                ))),
                None => Ok(()),
            }
        }
        _ => Ok(()),
    }
}

fn product_error(what: &str, x: f64, y: f64, fp: FixedPoint) -> Error {
    let f = fp.frac_bits;
    Error::invalid(format!(
        "{what} of {x} and {y} is {}, beyond what secure protocols truncate exactly at frac_bits = {f} \
         (magnitude below 2^{} ≈ {:.3e}): scale the data down, or lower frac_bits",
        x * y,
        62 - 2 * f,
        real(trunc_limit(f), fp, f)
    ))
}

/// Checks the exactly rounded result of `op` against its contract (dot products and means).
pub fn check_result(op: &Op, inputs: &[&Tensor], result: &Tensor, fp: FixedPoint) -> Result<()> {
    let f = fp.frac_bits;
    let fixed = |i: usize| inputs.get(i).is_some_and(|t| t.dtype == DType::Fixed);
    let (limit, what) = match op {
        Op::Matmul | Op::Conv2d { .. } if f > 0 && fixed(0) && fixed(1) => {
            // |z| < 2^62 − 2^(f−1) before rounding ⇔ |round(z / 2^f)| ≤ 2^(62−f) − 1.
            ((1i128 << (62 - f)) - 1, "a dot product")
        }
        Op::Mean { .. } | Op::Avgpool(_) if result.dtype == DType::Fixed && 2 * f + DIVIDE_EXTRA_BITS < 62 => {
            ((1i128 << (62 - f - DIVIDE_EXTRA_BITS)) - 1, "a mean")
        }
        _ => return Ok(()),
    };
    match result.data.iter().map(|&w| i128::from(w as i64)).find(|w| w.abs() > limit) {
        Some(w) => Err(Error::invalid(format!(
            "{what} is {}, beyond what secure protocols compute exactly at frac_bits = {f} (magnitude below \
             {:.3e}): scale the data down, or lower frac_bits",
            real(w, fp, 0),
            real(limit + 1, fp, 0)
        ))),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::super::testutil::*;
    use super::super::{check_contracts, check_result, eval_op};
    use mpcflow_sdk::{Op, Tensor};

    /// `op` under the contracts, as the `ref` protocol runs it.
    fn checked(op: Op, ins: &[&Tensor]) -> mpcflow_sdk::Result<Tensor> {
        let out = out_info(&op, ins).unwrap();
        check_contracts(&op, ins, &out, fp())?;
        let t = eval_op(&op, ins, &out, fp())?;
        check_result(&op, ins, &t, fp()).map(|()| t)
    }

    #[test]
    fn products_beyond_the_truncation_range_are_refused() {
        // 2^30 ≈ 1.07e9 is the limit at f = 16.
        assert!(checked(Op::Mul, &[&fx(&[2], &[30000.0, -2.0]), &fx(&[], &[30000.0])]).is_ok());
        let e = checked(Op::Mul, &[&fx(&[2], &[1.0, 1e6]), &fx(&[2], &[2.0, -1e6])]).unwrap_err().to_string();
        assert!(e.contains("the product of 1000000 and -1000000 is -1000000000000"), "{e}");
        assert!(e.contains("2^30"), "{e}");
        let e = checked(Op::Scale { factor: 1e5 }, &[&fx(&[1], &[2e4])]).unwrap_err().to_string();
        assert!(e.contains("the scaled value of 20000 and 100000"), "{e}");
        // A dot product: each term fits, the sum does not.
        let a = fx(&[1, 4], &[30000.0; 4]);
        let b = fx(&[4, 1], &[30000.0; 4]);
        let e = checked(Op::Matmul, &[&a, &b]).unwrap_err().to_string();
        assert!(e.contains("a dot product is 3600000000"), "{e}");
        assert!(checked(Op::Matmul, &[&fx(&[1, 4], &[100.0; 4]), &b]).is_ok());
        // Integers multiply exactly in the ring: no truncation, no contract.
        assert!(checked(Op::Mul, &[&int(&[1], &[1 << 40]), &int(&[1], &[1 << 20])]).is_ok());
    }

    #[test]
    fn means_beyond_their_range_are_refused() {
        // |mean| < 2^23 ≈ 8.4e6 at f = 16: the hospital statistics with blood pressures of 2e7.
        let mean = Op::Mean { axes: vec![0], keepdims: false };
        let e = checked(mean.clone(), &[&fx(&[3], &[2e7, 2e7, 2e7])]).unwrap_err().to_string();
        assert!(e.contains("a mean is 20000000"), "{e}");
        assert!(checked(mean, &[&fx(&[3], &[8e6, 8e6, 8e6])]).is_ok());
    }

    #[test]
    fn truncating_shifts_beyond_their_range_are_refused() {
        let big = int(&[1], &[1 << 62]);
        let e = checked(Op::Shift { bits: -3 }, &[&big]).unwrap_err().to_string();
        assert!(e.contains("too large to shift right by 3 bits"), "{e}");
        assert!(checked(Op::Shift { bits: -3 }, &[&int(&[1], &[(1 << 62) - 5])]).is_ok());
        assert!(checked(Op::Shift { bits: 3 }, &[&big]).is_ok(), "left shifts wrap like the ring");
    }
}
