//! Fixed-point semantics, defined once.
//!
//! A real number `x` is stored as the ring element `round(x * 2^f) mod 2^64`, read back as a
//! two's-complement `i64` divided by `2^f`, where `f` is the graph's `frac_bits`.
//!
//! **Default `f = 16`.** It gives a resolution of 2^-16 ≈ 1.5e-5 and leaves 47 integer bits,
//! so values up to ±1.4e14 are representable. The binding constraint is multiplication: the
//! exact product of two fixed-point values carries `2f` fractional bits before truncation, so
//! secure protocols that multiply in the ring need `|a·b| < 2^(63-2f) = 2^31` for the product to
//! be truncated correctly (`fss2pc` trades one more bit for a cheaper truncation:
//! `2^(62-2f) = 2^30`). With `f = 16` that admits products up to about 10^9, which covers
//! statistics over millions of records and normalised ML activations; CrypTen uses the same
//! default. Raise `f` for precision on small values, lower it for headroom (Sigma uses 12).
//!
//! **Rounding.** Encoding rounds to nearest (ties away from zero). The plaintext `ref` protocol
//! computes every op exactly (in `i128` or `f64`) and rounds the result to nearest, so its
//! error against the real-number result is at most half an ulp (2^-(f+1)) per op for linear ops
//! and products, and at most one ulp plus the `f64` error for elementwise functions. Secure
//! protocols state their bound relative to `ref` (for example, probabilistic truncation is off
//! by at most one ulp). Encoding saturates values outside the representable range.

use serde::{Deserialize, Serialize};

/// Default number of fractional bits. See the module docs for why.
pub const DEFAULT_FRAC_BITS: u32 = 16;

/// The largest accepted `frac_bits`: the product of two values must still fit in 64 bits.
pub const MAX_FRAC_BITS: u32 = 30;

/// A fixed-point encoding: `frac_bits` fractional bits in Z(2^64).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct FixedPoint {
    /// Number of fractional bits.
    pub frac_bits: u32,
    /// Bits that differences of compared values are known to fit in, as two's complement
    /// (`|x − y| < 2^(compare_bits − 1)`). Protocols may compare over fewer bits when this is
    /// below 64, as Sigma does; 64 (the default) assumes nothing.
    #[serde(default = "full_width")]
    pub compare_bits: u32,
}

fn full_width() -> u32 {
    64
}

impl Default for FixedPoint {
    fn default() -> Self {
        FixedPoint::new(DEFAULT_FRAC_BITS)
    }
}

impl FixedPoint {
    /// An encoding with `frac_bits` fractional bits.
    pub fn new(frac_bits: u32) -> Self {
        FixedPoint { frac_bits, compare_bits: 64 }
    }

    /// The same encoding with comparisons over `bits` bits.
    pub fn with_compare_bits(self, bits: u32) -> Self {
        FixedPoint { compare_bits: bits, ..self }
    }

    /// What is wrong with `frac_bits` as a setting, if anything (the one place this rule lives).
    pub fn frac_bits_problem(frac_bits: u32) -> Option<String> {
        (frac_bits > MAX_FRAC_BITS)
            .then(|| format!("frac_bits {frac_bits} is too large, expected 0 to {MAX_FRAC_BITS}"))
    }

    /// What is wrong with `compare_bits` as a setting, if anything.
    pub fn compare_bits_problem(compare_bits: u32) -> Option<String> {
        (!(2..=64).contains(&compare_bits))
            .then(|| format!("compare_bits {compare_bits} is out of range, expected 2 to 64"))
    }

    /// `2^frac_bits` as a float.
    pub fn scale(self) -> f64 {
        (1u64 << self.frac_bits) as f64
    }

    /// One unit in the last place, as a real number.
    pub fn ulp(self) -> f64 {
        1.0 / self.scale()
    }

    /// Encodes a real number, rounding to nearest and saturating at the ring's limits.
    /// NaN encodes as 0.
    pub fn encode(self, x: f64) -> u64 {
        let scaled = (x * self.scale()).round();
        if scaled.is_nan() {
            0
        } else if scaled >= i64::MAX as f64 {
            i64::MAX as u64
        } else if scaled <= i64::MIN as f64 {
            i64::MIN as u64
        } else {
            scaled as i64 as u64
        }
    }

    /// Decodes a ring element to a real number.
    pub fn decode(self, v: u64) -> f64 {
        v as i64 as f64 / self.scale()
    }

    /// The largest representable real number.
    pub fn max_value(self) -> f64 {
        self.decode(i64::MAX as u64)
    }

    /// The smallest (most negative) representable real number.
    pub fn min_value(self) -> f64 {
        self.decode(i64::MIN as u64)
    }

    /// Exact product of two fixed-point ring elements, rounded to nearest.
    /// The result wraps modulo 2^64 like every ring operation.
    pub fn mul(self, a: u64, b: u64) -> u64 {
        let p = (a as i64 as i128) * (b as i64 as i128);
        round_shift_i128(p, self.frac_bits) as u64
    }
}

/// `round(v / 2^shift)` with ties away from zero, truncated to 64 bits (wrapping).
///
/// `shift` must be below 128. The arithmetic wraps modulo 2^128; for `shift <= 64` that still
/// leaves the low 64 bits of the result exact, so accumulators near the ends of `i128` (long
/// sums of large products) are fine too.
pub fn round_shift_i128(v: i128, shift: u32) -> i64 {
    if shift == 0 {
        return v as i64;
    }
    let half = 1i128 << (shift - 1);
    let r = if v >= 0 {
        v.wrapping_add(half) >> shift
    } else {
        (v.wrapping_neg().wrapping_add(half) >> shift).wrapping_neg()
    };
    r as i64
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn encode_decode_examples() {
        let fp = FixedPoint::default();
        assert_eq!(fp.encode(1.0), 1 << 16);
        assert_eq!(fp.decode(fp.encode(-2.5)), -2.5);
        assert_eq!(fp.encode(f64::INFINITY), i64::MAX as u64);
        assert_eq!(fp.encode(f64::NEG_INFINITY), i64::MIN as u64);
        assert_eq!(fp.encode(f64::NAN), 0);
        assert_eq!(fp.mul(fp.encode(1.5), fp.encode(-2.0)), fp.encode(-3.0));
    }

    #[test]
    fn round_shift_ties_and_extremes() {
        assert_eq!(round_shift_i128(3, 1), 2);
        assert_eq!(round_shift_i128(-3, 1), -2);
        assert_eq!(round_shift_i128(-5, 2), -1);
        // Near the ends of i128 the result is still exact modulo 2^64, and nothing panics.
        assert_eq!(round_shift_i128(i128::MAX, 16), (i128::MAX >> 16) as i64 + 1);
        assert_eq!(round_shift_i128(i128::MIN, 16), (i128::MIN >> 16) as i64);
        assert_eq!(round_shift_i128(i128::MIN + 1, 1), 0);
        assert_eq!(round_shift_i128(-(1 << 64), 64), -1);
    }

    proptest! {
        #[test]
        fn roundtrip_within_half_ulp(x in -1e9f64..1e9) {
            let fp = FixedPoint::default();
            prop_assert!((fp.decode(fp.encode(x)) - x).abs() <= fp.ulp() / 2.0 + 1e-12);
        }

        #[test]
        fn mul_within_half_ulp(a in -3e4f64..3e4, b in -3e4f64..3e4) {
            let fp = FixedPoint::default();
            let (ea, eb) = (fp.encode(a), fp.encode(b));
            let exact = fp.decode(ea) * fp.decode(eb);
            prop_assert!((fp.decode(fp.mul(ea, eb)) - exact).abs() <= fp.ulp() / 2.0 + 1e-9);
        }
    }
}
