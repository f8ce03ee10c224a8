//! Comparisons and ReLU from the sign of a masked value, one DCF per element, one round.
//!
//! Over `n` bits (the graph's `compare_bits`, 64 by default): for `v = d + 2^(n−1)` the bit
//! `b = [d ≥ 0]` is bit `n−1` of `v`. With `v̂ = v + r` public, bit `n−1` of
//! `(v̂ − r) mod 2^n` is `b = p ⊕ s ⊕ c` where `p` is bit `n−1` of `v̂`, `s` bit `n−1` of `r`
//! (the dealer knows it) and `c = [v̂ mod 2^(n−1) < r mod 2^(n−1)]`. The dealer deals an
//! `(n−1)`-bit DCF with payload
//! `1 − 2s` and shares of `s`, so the parties hold shares of `e = s ⊕ c = s + (1 − 2s)c` and
//! then of `b = p + (1 − 2p)e` locally. For ReLU the DCF carries a second payload word
//! `(1 − 2s)·r`, giving shares of `b·r` too, so `relu(x) = b·x̂ − b·r` needs no multiplication
//! round. Exact whenever `|d| < 2^(n−1)` (at n = 64: both operands within ±2^62). Fewer bits
//! mean a shallower DCF tree: keys of `26 + 24(n−1) + …` bytes instead of 1554 at n = 64.

use crate::fss::SeedRng;
use crate::material::{Shares, Split};
use mpcflow_sdk::Result;

/// `(mask of the low n−1 bits, position n−1)`.
fn split_bits(bits: u32) -> (u64, u32) {
    (((1u128 << (bits - 1)) - 1) as u64, bits - 1)
}

/// Dealer: material of a sign gate on a value with mask `r`; returns the output mask.
pub fn deal_sign(split: &mut Split, r: &[u64], bits: u32, rng: &mut SeedRng) -> Result<Vec<u64>> {
    let n = r.len();
    let (low, top) = split_bits(bits);
    let s: Vec<u64> = r.iter().map(|r| (r >> top) & 1).collect();
    let r_out: Vec<u64> = crate::material::draw(rng, n);
    split.share(&s);
    split.share(&r_out);
    let alphas: Vec<u64> = r.iter().map(|r| r & low).collect();
    let betas: Vec<u64> = s.iter().map(|s| 1u64.wrapping_sub(2 * s)).collect();
    split.dcf_keys(&alphas, &betas, top, rng)?;
    Ok(r_out)
}

/// Dealer: material of a ReLU gate on a value with mask `r`; returns the output mask.
pub fn deal_relu(split: &mut Split, r: &[u64], bits: u32, rng: &mut SeedRng) -> Result<Vec<u64>> {
    let n = r.len();
    let (low, top) = split_bits(bits);
    let s: Vec<u64> = r.iter().map(|r| (r >> top) & 1).collect();
    let sr: Vec<u64> = s.iter().zip(r).map(|(s, r)| s.wrapping_mul(*r)).collect();
    let r_out: Vec<u64> = crate::material::draw(rng, n);
    split.share(&s);
    split.share(&sr);
    split.share(&r_out);
    let alphas: Vec<u64> = r.iter().map(|r| r & low).collect();
    let betas: Vec<[u64; 2]> = s
        .iter()
        .zip(r)
        .map(|(s, r)| {
            let b = 1u64.wrapping_sub(2 * s);
            [b, b.wrapping_mul(*r)]
        })
        .collect();
    split.dcf2_keys(&alphas, &betas, top, rng)?;
    Ok(r_out)
}

/// Party: shares of `a + σ·[d ≥ 0] + r_out` from the public `d̂`.
pub fn sign_share(
    party: u16,
    dhat: &[u64],
    a: u64,
    sigma: u64,
    bits: u32,
    m: &mut Shares<'_>,
) -> Result<(Vec<u64>, Vec<u64>)> {
    let (lowmask, top) = split_bits(bits);
    let n = dhat.len();
    let s = m.share(n, "sign mask bit")?;
    let r_out = m.share(n, "output mask")?;
    let keys = m.keys(n, top, "sign keys")?;
    let v: Vec<u64> = dhat.iter().map(|d| d.wrapping_add(1 << top)).collect();
    let low: Vec<u64> = v.iter().map(|v| v & lowmask).collect();
    let mut c = vec![0u64; n];
    m.accel().dcf(party, &keys, &low, &mut c)?;
    let own = u64::from(party == 0);
    Ok((
        (0..n)
            .map(|i| {
                let p = (v[i] >> top) & 1;
                let e = s[i].wrapping_add(c[i]);
                let b = (own * p).wrapping_add(1u64.wrapping_sub(2 * p).wrapping_mul(e));
                (own * a).wrapping_add(sigma.wrapping_mul(b)).wrapping_add(r_out[i])
            })
            .collect(),
        r_out,
    ))
}

/// Party: shares of `relu(x) + r_out` from the public `x̂` and this party's mask share.
pub fn relu_share(
    party: u16,
    xhat: &[u64],
    rshare: &[u64],
    bits: u32,
    m: &mut Shares<'_>,
) -> Result<(Vec<u64>, Vec<u64>)> {
    let (lowmask, top) = split_bits(bits);
    let n = xhat.len();
    let s = m.share(n, "relu mask bit")?;
    let sr = m.share(n, "relu mask product")?;
    let r_out = m.share(n, "output mask")?;
    let keys = m.keys2(n, top, "relu keys")?;
    let v: Vec<u64> = xhat.iter().map(|x| x.wrapping_add(1 << top)).collect();
    let low: Vec<u64> = v.iter().map(|v| v & lowmask).collect();
    let mut c = vec![[0u64; 2]; n];
    m.accel().dcf2(party, &keys, &low, &mut c)?;
    let own = u64::from(party == 0);
    Ok((
        (0..n)
            .map(|i| {
                let p = (v[i] >> top) & 1;
                let q = 1u64.wrapping_sub(2 * p);
                let e = s[i].wrapping_add(c[i][0]);
                let er = sr[i].wrapping_add(c[i][1]);
                let b = (own * p).wrapping_add(q.wrapping_mul(e));
                let br = p.wrapping_mul(rshare[i]).wrapping_add(q.wrapping_mul(er));
                xhat[i].wrapping_mul(b).wrapping_sub(br).wrapping_add(r_out[i])
            })
            .collect(),
        r_out,
    ))
}
