//! Ring-word helpers shared by every kernel: reading words per dtype, exact rounded division,
//! saturation, and panic-free sizes and allocation.
//!
//! Why a module of its own: every kernel must read a `bit` word the same way (its low bit), turn
//! an `int` into a fixed-point value the same way (exactly, times `2^f`), round the same way (to
//! nearest, ties away from zero, like [`mpcflow_sdk::FixedPoint::mul`]) and report impossible
//! sizes as errors instead of panicking, so these few functions are written and tested once.

use mpcflow_sdk::{DType, Error, FixedPoint, Result, Tensor};

/// The ring element an element stands for: `bit` words are reduced to their low bit (the same
/// reading as [`mpcflow_sdk::tensor::decode_value`]); other words are taken as they are.
pub fn word(dtype: DType, w: u64) -> u64 {
    if dtype == DType::Bit { w & 1 } else { w }
}

/// The element as a signed 64-bit integer (two's complement of its word).
pub fn signed(dtype: DType, w: u64) -> i64 {
    word(dtype, w) as i64
}

/// The element as an exact multiple of `2^-f`: a fixed word as it is, an int or bit times `2^f`.
/// Fits in 94 bits (`|int| <= 2^63`, `f <= 30`).
pub fn fixed_scaled(dtype: DType, w: u64, fp: FixedPoint) -> i128 {
    let v = i128::from(signed(dtype, w));
    if dtype == DType::Fixed { v } else { v << fp.frac_bits }
}

/// `round(n / d)` to nearest, ties away from zero, computed exactly; `None` when `d == 0`.
/// Never panics; the one unrepresentable quotient (`i128::MIN / -1`) saturates.
pub fn div_round(n: i128, d: i128) -> Option<i128> {
    if d == 0 {
        return None;
    }
    let (na, da) = (n.unsigned_abs(), d.unsigned_abs());
    let (q, r) = (na / da, na % da);
    // 2r >= d, written so it cannot overflow.
    let q = if r >= da - r { q + 1 } else { q };
    let negative = (n < 0) != (d < 0);
    Some(if negative {
        // q <= 2^127, so its negation is representable.
        0i128.wrapping_sub_unsigned(q)
    } else {
        i128::try_from(q).unwrap_or(i128::MAX)
    })
}

/// `f` applied to every word of `t`, read with [`word`].
pub fn map1(t: &Tensor, f: impl Fn(u64) -> u64) -> Result<Vec<u64>> {
    let mut out = alloc(t.data.len())?;
    out.extend(t.data.iter().map(|&w| f(word(t.dtype, w))));
    Ok(out)
}

/// Clamps an exact value (in units of the output encoding) to the `i64` range: what
/// [`FixedPoint::encode`] does to reals that do not fit.
pub fn saturate(v: i128) -> u64 {
    v.clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64 as u64
}

/// Number of elements of `shape` (0 when any size is 0), or an error when the product overflows.
pub fn numel(shape: &[usize]) -> Result<usize> {
    if shape.contains(&0) {
        return Ok(0);
    }
    shape
        .iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d))
        .ok_or_else(|| Error::invalid(format!("shape {shape:?} has too many elements")))
}

/// An empty vector with room for `n` words; allocation failure is an error, not an abort.
pub fn alloc(n: usize) -> Result<Vec<u64>> {
    let mut v = Vec::new();
    v.try_reserve_exact(n)
        .map_err(|_| Error::ResourcesExhausted(format!("cannot allocate a tensor of {n} elements")))?;
    Ok(v)
}

/// `data[i]`, or an internal error: kernels index only inside shapes checked by `eval_op`, so a
/// miss is a bug in this crate, reported instead of panicking.
pub fn at(data: &[u64], i: usize) -> Result<u64> {
    data.get(i)
        .copied()
        .ok_or_else(|| Error::internal(format!("index {i} outside a tensor of {} elements", data.len())))
}

/// `data[start..start + len]`, or an internal error (see [`at`]).
pub fn range(data: &[u64], start: usize, len: usize) -> Result<&[u64]> {
    start
        .checked_add(len)
        .and_then(|end| data.get(start..end))
        .ok_or_else(|| Error::internal(format!("range {start}+{len} outside a tensor of {} elements", data.len())))
}

/// Sizes around `axis` of a row-major shape: (product before, size of, product after).
pub fn split_at_axis(shape: &[usize], axis: usize) -> Result<(usize, usize, usize)> {
    let len = *shape.get(axis).ok_or_else(|| Error::internal(format!("axis {axis} outside shape {shape:?}")))?;
    Ok((numel(&shape[..axis])?, len, numel(&shape[axis + 1..])?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bit_words_read_their_low_bit() {
        assert_eq!(word(DType::Bit, 3), 1);
        assert_eq!(word(DType::Bit, 2), 0);
        assert_eq!(word(DType::Int, 3), 3);
        assert_eq!(signed(DType::Int, u64::MAX), -1);
    }

    #[test]
    fn ints_scale_to_fixed_exactly() {
        let fp = FixedPoint::default();
        assert_eq!(fixed_scaled(DType::Int, 3, fp), 3 << 16);
        assert_eq!(fixed_scaled(DType::Int, i64::MIN as u64, fp), -(1i128 << 79));
        assert_eq!(fixed_scaled(DType::Fixed, (-5i64) as u64, fp), -5);
        assert_eq!(fixed_scaled(DType::Bit, 1, fp), 1 << 16);
    }

    #[test]
    fn division_rounds_to_nearest_ties_away() {
        assert_eq!(div_round(7, 2), Some(4));
        assert_eq!(div_round(-7, 2), Some(-4));
        assert_eq!(div_round(7, -2), Some(-4));
        assert_eq!(div_round(5, 3), Some(2));
        assert_eq!(div_round(4, 3), Some(1));
        assert_eq!(div_round(-4, 3), Some(-1));
        assert_eq!(div_round(1, 0), None);
        assert_eq!(div_round(i128::MIN, 1), Some(i128::MIN));
        assert_eq!(div_round(i128::MIN, -1), Some(i128::MAX));
        assert_eq!(div_round(i128::MAX, i128::MIN), Some(-1));
    }

    #[test]
    fn saturation_and_sizes() {
        assert_eq!(saturate(i128::MAX), i64::MAX as u64);
        assert_eq!(saturate(-(1i128 << 70)), i64::MIN as u64);
        assert_eq!(saturate(-3), (-3i64) as u64);
        assert!(numel(&[usize::MAX, 2]).is_err());
        assert_eq!(numel(&[]).unwrap(), 1);
        assert_eq!(numel(&[usize::MAX, 2, 0]).unwrap(), 0);
        assert!(at(&[1, 2], 2).is_err());
        assert!(range(&[1, 2], usize::MAX, 2).is_err());
        assert_eq!(split_at_axis(&[2, 3, 4], 1).unwrap(), (2, 3, 4));
        assert!(split_at_axis(&[2], 1).is_err());
    }
}
