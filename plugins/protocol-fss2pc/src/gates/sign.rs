//! Comparisons and ReLU from the sign of a masked value, one DCF per element, one round.
//!
//! For `v = d + 2^63` the bit `b = [d ≥ 0]` is the top bit of `v`. With `v̂ = v + r` public:
//! `b = p ⊕ s ⊕ c` where `p` is the top bit of `v̂`, `s` the top bit of `r` (the dealer knows
//! it) and `c = [v̂ mod 2^63 < r mod 2^63]`. The dealer deals a 63-bit DCF with payload
//! `1 − 2s` and shares of `s`, so the parties hold shares of `e = s ⊕ c = s + (1 − 2s)c` and
//! then of `b = p + (1 − 2p)e` locally. For ReLU a second DCF with payload `(1 − 2s)·r` gives
//! shares of `b·r`, so `relu(x) = b·x̂ − b·r` needs no multiplication round.
//! Exact whenever `|d| < 2^63` (for comparisons: both operands within ±2^62).

use crate::fss::{DcfKey, SeedRng, dcf};
use crate::material::{Shares, Split};
use mpcflow_sdk::{Error, Result};

const LOW63: u64 = (1u64 << 63) - 1;

fn fss(e: crate::fss::FssError) -> Error {
    Error::internal(format!("fss2pc dealer: {e}"))
}

/// Dealer: material of a sign gate on a value with mask `r`; returns the output mask.
pub fn deal_sign(split: &mut Split, r: &[u64], rng: &mut SeedRng) -> Result<Vec<u64>> {
    let n = r.len();
    let s: Vec<u64> = r.iter().map(|r| r >> 63).collect();
    let r_out: Vec<u64> = (0..n).map(|_| rng.next_u64()).collect();
    split.share(&s);
    split.share(&r_out);
    let alphas: Vec<u64> = r.iter().map(|r| r & LOW63).collect();
    let betas: Vec<u64> = s.iter().map(|s| 1u64.wrapping_sub(2 * s)).collect();
    split.keys(&dcf::keygen_batch(&alphas, &betas, 63, rng).map_err(fss)?);
    Ok(r_out)
}

/// Dealer: material of a ReLU gate on a value with mask `r`; returns the output mask.
pub fn deal_relu(split: &mut Split, r: &[u64], rng: &mut SeedRng) -> Result<Vec<u64>> {
    let n = r.len();
    let s: Vec<u64> = r.iter().map(|r| r >> 63).collect();
    let sr: Vec<u64> = s.iter().zip(r).map(|(s, r)| s.wrapping_mul(*r)).collect();
    let r_out: Vec<u64> = (0..n).map(|_| rng.next_u64()).collect();
    split.share(&s);
    split.share(&sr);
    split.share(&r_out);
    let alphas: Vec<u64> = r.iter().map(|r| r & LOW63).collect();
    let b1: Vec<u64> = s.iter().map(|s| 1u64.wrapping_sub(2 * s)).collect();
    let b2: Vec<u64> = b1.iter().zip(r).map(|(b, r)| b.wrapping_mul(*r)).collect();
    split.keys(&dcf::keygen_batch(&alphas, &b1, 63, rng).map_err(fss)?);
    split.keys(&dcf::keygen_batch(&alphas, &b2, 63, rng).map_err(fss)?);
    Ok(r_out)
}

fn eval(party: u16, key: &DcfKey, x: u64) -> Result<u64> {
    dcf::eval(party as u8, key, x).map_err(|e| Error::Material(e.to_string()))
}

/// Party: shares of `a + σ·[d ≥ 0] + r_out` from the public `d̂`.
pub fn sign_share(party: u16, dhat: &[u64], a: u64, sigma: u64, m: &mut Shares<'_>) -> Result<(Vec<u64>, Vec<u64>)> {
    let n = dhat.len();
    let s = m.share(n, "sign mask bit")?;
    let r_out = m.share(n, "output mask")?;
    let keys = m.keys(n, 63, "sign keys")?;
    let own = u64::from(party == 0);
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        let v = dhat[i].wrapping_add(1 << 63);
        let p = v >> 63;
        let e = s[i].wrapping_add(eval(party, &keys[i], v & LOW63)?);
        let b = (own * p).wrapping_add(1u64.wrapping_sub(2 * p).wrapping_mul(e));
        out.push((own * a).wrapping_add(sigma.wrapping_mul(b)).wrapping_add(r_out[i]));
    }
    Ok((out, r_out))
}

/// Party: shares of `relu(x) + r_out` from the public `x̂` and this party's mask share.
pub fn relu_share(party: u16, xhat: &[u64], rshare: &[u64], m: &mut Shares<'_>) -> Result<(Vec<u64>, Vec<u64>)> {
    let n = xhat.len();
    let s = m.share(n, "relu mask bit")?;
    let sr = m.share(n, "relu mask product")?;
    let r_out = m.share(n, "output mask")?;
    let k1 = m.keys(n, 63, "relu bit keys")?;
    let k2 = m.keys(n, 63, "relu product keys")?;
    let own = u64::from(party == 0);
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        let v = xhat[i].wrapping_add(1 << 63);
        let p = v >> 63;
        let q = 1u64.wrapping_sub(2 * p);
        let e = s[i].wrapping_add(eval(party, &k1[i], v & LOW63)?);
        let er = sr[i].wrapping_add(eval(party, &k2[i], v & LOW63)?);
        let b = (own * p).wrapping_add(q.wrapping_mul(e));
        let br = p.wrapping_mul(rshare[i]).wrapping_add(q.wrapping_mul(er));
        out.push(xhat[i].wrapping_mul(b).wrapping_sub(br).wrapping_add(r_out[i]));
    }
    Ok((out, r_out))
}
