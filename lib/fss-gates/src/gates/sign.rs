//! The sign gate (gt, ge, lt, le) from the sign of a masked difference, one DCF per element,
//! one round; [`super::relu`] uses the same construction with a two-word payload.
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

use super::open::{self, OneRound};
use crate::accel::Accel;
use crate::fss::SeedRng;
use crate::material::{Shares, Split, Tag, dcf_len, split_len};
use crate::wire::MaskedRef;
use mpcflow_sdk::protocol::{Cost, NodeDesc, NodeEval};
use mpcflow_sdk::{PartyId, Result};

/// The cost: one opening, the mask bit and output mask shared, one `(n−1)`-bit DCF key.
pub fn cost(node: &NodeDesc) -> Cost {
    let n = node.output.numel();
    open::cost(node, 1, split_len(n, 2, dcf_len(node.fixed_point.compare_bits - 1)))
}

/// Dealer: the material and output mask of `a + σ·[d ≥ 0]` for inputs with masks `rx`, `ry`.
pub fn deal(
    node: &NodeDesc,
    rx: &[u64],
    ry: &[u64],
    swap: bool,
    rng: &mut SeedRng,
    threads: usize,
) -> Result<(Vec<Vec<u8>>, Vec<u64>)> {
    let d = difference(node, rx, ry, swap)?;
    let mut split = Split::new(Tag::Sign, rng, open::sizes(&cost(node)), threads);
    let r = deal_sign(&mut split, &d, node.fixed_point.compare_bits, rng)?;
    Ok((split.finish(), r))
}

/// Party: the gate's one round.
#[allow(clippy::too_many_arguments)] // the node, the gate's three constants, its inputs, party, material, kernel
pub fn begin(
    node: &NodeDesc,
    (swap, a, sigma): (bool, u64, u64),
    ins: &[MaskedRef],
    me: PartyId,
    material: Vec<u8>,
    accel: Accel,
) -> Result<Box<dyn NodeEval>> {
    let dhat = difference(node, ins[0].value, ins[1].value, swap)?;
    let mut m = Shares::new(&material, Tag::Sign, me.0)?.with_accel(accel);
    let (mine, r_out) = sign_share(me.0, &dhat, a, sigma, node.fixed_point.compare_bits, &mut m)?;
    m.finish()?;
    crate::pool::give(material);
    Ok(Box::new(OneRound::new(me, node, mine, r_out)))
}

/// `x − y` (or `y − x`), broadcast to the comparison's output shape.
pub fn difference(node: &NodeDesc, x: &[u64], y: &[u64], swap: bool) -> Result<Vec<u64>> {
    let (sx, sy) = (node.inputs[0].shape.as_slice(), node.inputs[1].shape.as_slice());
    let (a, b, sa, sb) = if swap { (y, x, sy, sx) } else { (x, y, sx, sy) };
    crate::ring::apply(&mpcflow_sdk::Op::Sub, &[a, b], &[sa, sb], &node.output.shape)
}

/// `(mask of the low n−1 bits, position n−1)`.
pub(super) fn split_bits(bits: u32) -> (u64, u32) {
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
