//! The ReLU gate: `relu(x) = b·x̂ − b·r` with `b = [x ≥ 0]`, one round: the sign construction of
//! [`super::sign`] with a DCF carrying a second payload word `(1 − 2s)·r`, so the parties get
//! shares of `b·r` too and need no multiplication round.

use super::open::{self, OneRound};
use super::sign::split_bits;
use crate::accel::Accel;
use crate::fss::SeedRng;
use crate::material::{Shares, Split, Tag, dcf2_len, split_len};
use crate::wire::MaskedRef;
use mpcflow_sdk::protocol::{Cost, NodeDesc, NodeEval};
use mpcflow_sdk::{PartyId, Result};

/// The cost: one opening, three shared words, one two-word `(n−1)`-bit DCF key.
pub fn cost(node: &NodeDesc) -> Cost {
    let n = node.output.numel();
    open::cost(node, 1, split_len(n, 3, dcf2_len(node.fixed_point.compare_bits - 1)))
}

/// Dealer: the material and output mask for an input with mask `r`.
pub fn deal(node: &NodeDesc, r: &[u64], rng: &mut SeedRng, threads: usize) -> Result<(Vec<Vec<u8>>, Vec<u64>)> {
    let mut split = Split::new(Tag::Relu, rng, open::sizes(&cost(node)), threads);
    let r = deal_relu(&mut split, r, node.fixed_point.compare_bits, rng)?;
    Ok((split.finish(), r))
}

/// Party: the gate's one round.
pub fn begin(
    node: &NodeDesc,
    x: &MaskedRef,
    me: PartyId,
    material: Vec<u8>,
    accel: Accel,
) -> Result<Box<dyn NodeEval>> {
    let mut m = Shares::new(&material, Tag::Relu, me.0)?.with_accel(accel);
    let (mine, r_out) = relu_share(me.0, x.value, x.share, node.fixed_point.compare_bits, &mut m)?;
    m.finish()?;
    crate::pool::give(material);
    Ok(Box::new(OneRound::new(me, node, mine, r_out)))
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
