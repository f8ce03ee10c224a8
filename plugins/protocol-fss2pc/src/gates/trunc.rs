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

use crate::fss::{DcfKey, SeedRng, dcf};
use crate::material::{Shares, Split};
use mpcflow_sdk::{Error, Result};

/// The dealer's side of one truncation: the new mask and the key pairs, dealt after the shares.
pub struct TruncKeys {
    /// `r mod 2^t` comparison keys.
    pub borrow: Vec<(DcfKey, DcfKey)>,
    /// `r` comparison keys.
    pub wrap: Vec<(DcfKey, DcfKey)>,
}

fn fss(e: crate::fss::FssError) -> Error {
    Error::internal(format!("fss2pc dealer: {e}"))
}

/// Deals a truncation of a value with mask `r` by `bits`: shares `r_out − (r >> t)` and
/// `r_out`, and returns `r_out` and the keys (to hand out with [`Split::keys`] after all shares).
pub fn deal(split: &mut Split, r: &[u64], bits: u32, rng: &mut SeedRng) -> Result<(Vec<u64>, TruncKeys)> {
    let n = r.len();
    let r_out: Vec<u64> = (0..n).map(|_| rng.next_u64()).collect();
    let a: Vec<u64> = r.iter().zip(&r_out).map(|(r, o)| o.wrapping_sub(r >> bits)).collect();
    split.share(&a);
    split.share(&r_out);
    let low = (1u64 << bits) - 1;
    let alphas_low: Vec<u64> = r.iter().map(|r| r & low).collect();
    let borrow = dcf::keygen_batch(&alphas_low, &vec![u64::MAX; n], bits, rng).map_err(fss)?;
    let wrap = dcf::keygen_batch(r, &vec![1u64 << (64 - bits); n], 64, rng).map_err(fss)?;
    Ok((r_out, TruncKeys { borrow, wrap }))
}

/// Hands out the keys of [`deal`].
pub fn deal_keys(split: &mut Split, keys: &TruncKeys) {
    split.keys(&keys.borrow);
    split.keys(&keys.wrap);
}

/// A party's material for one truncation.
pub struct TruncShares {
    a: Vec<u64>,
    /// This party's share of the output mask.
    pub r_out: Vec<u64>,
    borrow: Vec<DcfKey>,
    wrap: Vec<DcfKey>,
}

/// Reads the shares of [`deal`] (call before reading later shares' keys; see [`read_keys`]).
pub fn read_shares(m: &mut Shares<'_>, n: usize) -> Result<(Vec<u64>, Vec<u64>)> {
    Ok((m.share(n, "truncation offset")?, m.share(n, "truncation mask")?))
}

/// Reads the keys of [`deal_keys`].
pub fn read_keys(m: &mut Shares<'_>, n: usize, bits: u32, a: Vec<u64>, r_out: Vec<u64>) -> Result<TruncShares> {
    let borrow = m.keys(n, bits, "truncation borrow keys")?;
    let wrap = m.keys(n, 64, "truncation wrap keys")?;
    Ok(TruncShares { a, r_out, borrow, wrap })
}

/// This party's share of `round(z / 2^t) + r_out`, from the public `ẑ`.
pub fn share(party: u16, zhat: &[u64], bits: u32, m: &TruncShares) -> Result<Vec<u64>> {
    let offset = (1u64 << 63).wrapping_add(1u64 << (bits - 1));
    let low = (1u64 << bits) - 1;
    let p = party as u8;
    let mut out = Vec::with_capacity(zhat.len());
    for (i, &z) in zhat.iter().enumerate() {
        let v = z.wrapping_add(offset);
        let h = (v >> bits).wrapping_sub(1u64 << (63 - bits));
        let c = dcf::eval(p, &m.borrow[i], v & low).map_err(|e| Error::Material(e.to_string()))?;
        let w = dcf::eval(p, &m.wrap[i], v).map_err(|e| Error::Material(e.to_string()))?;
        let own = if party == 0 { h } else { 0 };
        out.push(own.wrapping_add(m.a[i]).wrapping_add(c).wrapping_add(w));
    }
    Ok(out)
}
