//! Exact truncation of a masked value by `t` bits, rounding to nearest (ties up), in one round.
//!
//! With `ẑ = z + r` public and `r` known to the dealer, shift to a non-negative `v = z + 2^63 +
//! 2^(t−1)` (public offsets, same mask). Then, writing `r_h = r >> t`,
//! `floor(v / 2^t) = (v̂ >> t) − r_h − c + 2^(64−t)·w (mod 2^64)` where the borrow
//! `c = [v̂ mod 2^t < r mod 2^t]` and the wrap `w = [v̂ < r]` are comparisons of the public `v̂`
//! with secret constants: two DCFs, over `t` and 64 bits, whose keys the dealer makes with
//! payloads `−1` and `2^(64−t)`. The result is `round(z / 2^t)` exactly whenever
//! `|z| < 2^63 − 2^(t−1)`: no probabilistic error (compare SecureML/CrypTen local truncation,
//! which fails with probability about `|z|/2^64` per element). This is the truncation of
//! Boyle et al. 2021 (and LLAMA/Sigma) in masked-wire form.

use crate::accel::Accel;
use crate::fss::{DcfKeyBatch, SeedRng};
use crate::material::{Shares, Split, dcf_len};
use mpcflow_sdk::Result;

/// Key bytes per element of a truncation by `bits`.
pub fn key_len(bits: u32) -> u64 {
    dcf_len(bits) + dcf_len(64)
}

/// Deals a truncation of a value with mask `r` by `bits`: shares `r_out − (r >> t)` and
/// `r_out`, then the keys (so nothing may be shared after it). Returns `r_out`.
pub fn deal(split: &mut Split, r: &[u64], bits: u32, rng: &mut SeedRng) -> Result<Vec<u64>> {
    let n = r.len();
    let r_out: Vec<u64> = crate::material::draw(rng, n);
    let a: Vec<u64> = r.iter().zip(&r_out).map(|(r, o)| o.wrapping_sub(r >> bits)).collect();
    split.share(&a);
    split.share(&r_out);
    let low = (1u64 << bits) - 1;
    let alphas_low: Vec<u64> = r.iter().map(|r| r & low).collect();
    split.dcf_keys(&alphas_low, &vec![u64::MAX; n], bits, rng)?;
    split.dcf_keys(r, &vec![1u64 << (64 - bits); n], 64, rng)?;
    Ok(r_out)
}

/// A party's material for one truncation.
pub struct TruncShares {
    a: Vec<u64>,
    /// This party's share of the output mask.
    pub r_out: Vec<u64>,
    borrow: DcfKeyBatch<'static>,
    wrap: DcfKeyBatch<'static>,
    accel: Accel,
}

/// Reads the material of [`deal`].
pub fn read(m: &mut Shares<'_>, n: usize, bits: u32) -> Result<TruncShares> {
    let a = m.share(n, "truncation offset")?;
    let r_out = m.share(n, "truncation mask")?;
    let borrow = m.keys(n, bits, "truncation borrow keys")?.into_owned();
    let wrap = m.keys(n, 64, "truncation wrap keys")?.into_owned();
    Ok(TruncShares { a, r_out, borrow, wrap, accel: m.accel().clone() })
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
    let offset = (1u64 << 63).wrapping_add(half);
    let low = (1u64 << bits) - 1;
    let v: Vec<u64> = zhat.iter().map(|z| z.wrapping_add(offset)).collect();
    let v_low: Vec<u64> = v.iter().map(|v| v & low).collect();
    let c = eval(party, &m.borrow, &v_low, &m.accel)?;
    let w = eval(party, &m.wrap, &v, &m.accel)?;
    let own = |h: u64| if party == 0 { h } else { 0 };
    Ok((0..v.len())
        .map(|i| {
            let h = (v[i] >> bits).wrapping_sub(1u64 << (63 - bits));
            own(h).wrapping_add(m.a[i]).wrapping_add(c[i]).wrapping_add(w[i])
        })
        .collect())
}
