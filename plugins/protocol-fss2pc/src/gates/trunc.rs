//! Exact truncation of a masked value by `t` bits, rounding to nearest (ties up), in one round.
//!
//! With `ẑ = z + r` public and `r` known to the dealer, shift to a non-negative `v = z + o +
//! 2^(t−1)` (public offset `o`, same mask). Then, writing `r_h = r >> t`,
//! `floor(v / 2^t) = (v̂ >> t) − r_h − c + 2^(64−t)·w (mod 2^64)` where the borrow
//! `c = [v̂ mod 2^t < r mod 2^t]` and the wrap `w = [v̂ < r]` (did `v + r` pass `2^64`?). The
//! borrow is a comparison of the public `v̂` with a secret constant: a `t`-bit DCF with payload
//! `−1`. For the wrap there are two [`Range`]s:
//!
//! * [`Range::Full`] (`o = 2^63`): `w` is a 64-bit DCF with payload `2^(64−t)`. Exact whenever
//!   `|z| < 2^63 − 2^(t−1)`.
//! * [`Range::Half`] (`o = 2^62`): when `|z| < 2^62 − 2^(t−1)`, `v < 2^63`, and then
//!   `w = r₆₃ · (1 − v̂₆₃)` (bit 63 of the mask and of the public `v̂`): writing
//!   `r = r₆₃·2^63 + r'`, the sum `s = v + r'` stays below `2^64`, it wraps only if `r₆₃ = 1`
//!   and `s ≥ 2^63`, and then `v̂₆₃ = 0`. So the dealer deals shares of `r₆₃·2^(64−t)` and the
//!   parties multiply them by the public `1 − v̂₆₃`: **no 64-bit DCF**. That removes about
//!   four fifths of the truncation's AES work and key bytes at `t = 16` (one 16-bit DCF instead
//!   of a 16-bit and a 64-bit one), for one bit less range. Cheetah uses the same observation
//!   ("the MSB of a value known to be small").
//!
//! Products and scales use [`PRODUCTS`] (the half range); the lookup and root gates, whose
//! intermediates may use the whole ring, the full one. Outside its range a truncation is wrong,
//! as any fixed-point overflow is, and whether it is depends on the mask's top bit, so an
//! opened wrong value can hint at that bit: keep values in range (`lib.rs` states the bounds).
//!
//! Both are exact: no probabilistic error (compare SecureML/CrypTen local truncation, which
//! fails with probability about `|z|/2^64` per element). This is the truncation of Boyle et
//! al. 2021 (and LLAMA/Sigma) in masked-wire form.

use crate::accel::Accel;
use crate::fss::{DcfKeyBatch, SeedRng};
use crate::material::{Shares, Split, dcf_len};
use mpcflow_sdk::Result;

/// The range of products (mul, matmul, conv2d) and scales (scale, mean, shift).
pub const PRODUCTS: Range = Range::Half;

/// The values a truncation is exact for (see the module docs).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Range {
    /// `|z| < 2^63 − 2^(t−1)`: a `t`-bit and a 64-bit DCF.
    Full,
    /// `|z| < 2^62 − 2^(t−1)`: one `t`-bit DCF and a shared word.
    Half,
}

impl Range {
    /// The range used for a truncation by `bits`: [`Range::Half`] needs its offset `2^62` to be
    /// a multiple of `2^bits` (so `bits ≤ 62`); wider shifts use [`Range::Full`].
    pub fn for_bits(self, bits: u32) -> Range {
        if bits <= 62 { self } else { Range::Full }
    }

    /// The public offset that makes the value non-negative (before the rounding half).
    fn offset(self) -> u64 {
        match self {
            Range::Full => 1 << 63,
            Range::Half => 1 << 62,
        }
    }
}

/// Key bytes per element of a truncation by `bits`.
pub fn key_len(bits: u32, range: Range) -> u64 {
    match range.for_bits(bits) {
        Range::Full => dcf_len(bits) + dcf_len(64),
        Range::Half => dcf_len(bits),
    }
}

/// Shared words per element of a truncation (party 1 receives them; party 0 expands a seed).
pub fn words(bits: u32, range: Range) -> usize {
    match range.for_bits(bits) {
        Range::Full => 2,
        Range::Half => 3,
    }
}

/// Deals a truncation of a value with mask `r` by `bits`: shares `r_out − (r >> t)`, `r_out`
/// (and for [`Range::Half`] `r₆₃·2^(64−t)`), then the keys (so nothing may be shared after it).
/// Returns `r_out`.
pub fn deal(split: &mut Split, r: &[u64], bits: u32, range: Range, rng: &mut SeedRng) -> Result<Vec<u64>> {
    let range = range.for_bits(bits);
    let n = r.len();
    let r_out: Vec<u64> = crate::material::draw(rng, n);
    let a: Vec<u64> = r.iter().zip(&r_out).map(|(r, o)| o.wrapping_sub(r >> bits)).collect();
    split.share(&a);
    split.share(&r_out);
    if range == Range::Half {
        let top: Vec<u64> = r.iter().map(|r| (r >> 63) << (64 - bits)).collect();
        split.share(&top);
    }
    let low = (1u64 << bits) - 1;
    let alphas_low: Vec<u64> = r.iter().map(|r| r & low).collect();
    split.dcf_keys(&alphas_low, &vec![u64::MAX; n], bits, rng)?;
    if range == Range::Full {
        split.dcf_keys(r, &vec![1u64 << (64 - bits); n], 64, rng)?;
    }
    Ok(r_out)
}

/// How a party learns the wrap.
enum Wrap {
    /// Keys of the 64-bit comparison.
    Keys(DcfKeyBatch<'static>),
    /// Its share of `r₆₃·2^(64−t)`.
    Top(Vec<u64>),
}

/// A party's material for one truncation.
pub struct TruncShares {
    a: Vec<u64>,
    /// This party's share of the output mask.
    pub r_out: Vec<u64>,
    borrow: DcfKeyBatch<'static>,
    wrap: Wrap,
    range: Range,
    accel: Accel,
}

/// Reads the material of [`deal`].
pub fn read(m: &mut Shares<'_>, n: usize, bits: u32, range: Range) -> Result<TruncShares> {
    let range = range.for_bits(bits);
    let a = m.share(n, "truncation offset")?;
    let r_out = m.share(n, "truncation mask")?;
    let top = match range {
        Range::Half => Some(m.share(n, "truncation wrap")?),
        Range::Full => None,
    };
    let borrow = m.kept_keys(n, bits, "truncation borrow keys")?;
    let wrap = match top {
        Some(top) => Wrap::Top(top),
        None => Wrap::Keys(m.kept_keys(n, 64, "truncation wrap keys")?),
    };
    Ok(TruncShares { a, r_out, borrow, wrap, range, accel: m.accel().clone() })
}

fn eval(party: u16, keys: &DcfKeyBatch<'_>, xs: &[u64], accel: &Accel) -> Result<Vec<u64>> {
    let mut out = vec![0u64; xs.len()];
    accel.dcf(party, keys, xs, &mut out)?;
    Ok(out)
}

/// This party's share of `round(z / 2^t) + r_out`, from the public `ẑ`.
pub fn share(party: u16, zhat: &[u64], bits: u32, m: &TruncShares) -> Result<Vec<u64>> {
    share_with(party, zhat, bits, m, true)
}

/// [`share`], rounding to nearest or (with `round` false) down: `floor(z / 2^t) + r_out`.
pub fn share_with(party: u16, zhat: &[u64], bits: u32, m: &TruncShares, round: bool) -> Result<Vec<u64>> {
    let half = if round { 1u64 << (bits - 1) } else { 0 };
    let offset = m.range.offset();
    let low = (1u64 << bits) - 1;
    let v: Vec<u64> = zhat.iter().map(|z| z.wrapping_add(offset).wrapping_add(half)).collect();
    let v_low: Vec<u64> = v.iter().map(|v| v & low).collect();
    let c = eval(party, &m.borrow, &v_low, &m.accel)?;
    let w = match &m.wrap {
        Wrap::Keys(keys) => eval(party, keys, &v, &m.accel)?,
        Wrap::Top(top) => v.iter().zip(top).map(|(v, t)| if v >> 63 == 0 { *t } else { 0 }).collect(),
    };
    // `v >> t` counts the offset `o / 2^t`: subtract it (party 0 only).
    let unshift = offset >> bits;
    let own = |h: u64| if party == 0 { h } else { 0 };
    Ok((0..v.len())
        .map(|i| {
            let h = (v[i] >> bits).wrapping_sub(unshift);
            own(h).wrapping_add(m.a[i]).wrapping_add(c[i]).wrapping_add(w[i])
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::material::Tag;

    /// Truncates `zs` by `bits` with random masks (dealer and both parties in one place) and
    /// returns the opened results.
    fn truncate(zs: &[u64], bits: u32, range: Range, seed: u8) -> Vec<u64> {
        let mut rng = SeedRng::from_seed([seed; 32]);
        let mut r: Vec<u64> = crate::material::draw(&mut rng, zs.len());
        // Both values of the mask's top bit, whatever the draw.
        for (i, r) in r.iter_mut().enumerate() {
            *r = (*r & !(1 << 63)) | ((i as u64 & 1) << 63);
        }
        let mut split = Split::new(Tag::Trunc, &mut rng, [0, 0], 1);
        let r_out = deal(&mut split, &r, bits, range, &mut rng).unwrap();
        let mats = split.finish();
        let zhat: Vec<u64> = zs.iter().zip(&r).map(|(z, r)| z.wrapping_add(*r)).collect();
        let shares: Vec<Vec<u64>> = (0..2u16)
            .map(|p| {
                let mut m = Shares::new(&mats[p as usize], Tag::Trunc, p).unwrap();
                let t = read(&mut m, zs.len(), bits, range).unwrap();
                m.finish().unwrap();
                share(p, &zhat, bits, &t).unwrap()
            })
            .collect();
        (0..zs.len()).map(|i| shares[0][i].wrapping_add(shares[1][i]).wrapping_sub(r_out[i])).collect()
    }

    /// `round(z / 2^t)`, ties up, as a ring word.
    fn expect(z: i64, bits: u32) -> u64 {
        ((i128::from(z) + (1i128 << (bits - 1))) >> bits) as i64 as u64
    }

    #[test]
    fn both_ranges_are_exact_up_to_their_bounds() {
        for (range, limit) in [(Range::Full, 63u32), (Range::Half, 62)] {
            for bits in [1u32, 12, 16, 32, 61] {
                // The bound: |z| < 2^limit − 2^(t−1).
                let edge = ((1i128 << limit) - (1i128 << (bits - 1))) as i64;
                let mut zs: Vec<i64> = vec![0, 1, -1, 2, -2, edge - 1, -edge + 1, -edge + 2, edge - 2, 12345, -98765];
                zs.extend((1..=64i64).map(|i| i.wrapping_mul(0x9e37_79b9_7f4a_7c15u64 as i64) % edge));
                let words: Vec<u64> = zs.iter().map(|&z| z as u64).collect();
                for seed in 0..4 {
                    let got = truncate(&words, bits, range, seed);
                    for (i, &z) in zs.iter().enumerate() {
                        assert_eq!(got[i], expect(z, bits), "{range:?} t={bits} z={z}");
                    }
                }
            }
        }
    }

    #[test]
    fn the_half_range_needs_one_short_dcf_and_one_word() {
        assert_eq!(key_len(16, Range::Half), dcf_len(16));
        assert_eq!(key_len(16, Range::Full), dcf_len(16) + dcf_len(64));
        assert_eq!((words(16, Range::Half), words(16, Range::Full)), (3, 2));
        // Shifts too wide for the half range's offset fall back to the full range.
        assert_eq!(key_len(62, Range::Half), dcf_len(62));
        assert_eq!(key_len(63, Range::Half), key_len(63, Range::Full));
    }

    #[test]
    fn outside_the_half_range_the_result_is_wrong_so_the_bound_is_real() {
        // z near 2^63: v = z + 2^62 + 2^(t−1) is far above 2^63, and the wrap formula fails for
        // about half of the masks; the full range is still exact there.
        let z = (1u64 << 63) - (1 << 20);
        let zs = vec![z; 64];
        let want = expect(z as i64, 16);
        assert!(truncate(&zs, 16, Range::Half, 9).iter().any(|&g| g != want));
        assert!(truncate(&zs, 16, Range::Full, 9).iter().all(|&g| g == want));
    }
}
