//! Comparisons of one masked value with several public thresholds, from one half-tree key.
//!
//! For `x` with mask `r` (`x̂ = x + r` public) the bits `b_k = [x ≥ c_k]` for public `c_k` differ
//! only in a public offset of the same masked value: `v_k = x − c_k + 2^63` is masked by the same
//! `r`, and `b_k` is its top bit. As in [`super::sign`], `b_k = p_k ⊕ s ⊕ [v̂_k mod 2^63 < r mod
//! 2^63]` with `p_k` the top bit of `v̂_k` and `s` that of `r`, so **one** 63-bit half-tree key
//! for `α = r mod 2^63` ([`crate::fss::halftree`], Guo et al., Eurocrypt 2023) gives every bit:
//! each party evaluates its key at the `K` points. That is as private as one point: a party's
//! key alone is pseudorandom whatever it is evaluated at, and the XOR shares it yields are never
//! sent as they are. Each bit is opened under its own random bit `ρ_k` (the dealer shares
//! `s ⊕ ρ_k` as bits), so the opened `b̂_k = b_k ⊕ ρ_k` is a uniform bit; with additive shares
//! of `ρ_k` and of `ρ_k·m` for each mask `m` the gate multiplies by,
//! `b_k = b̂_k + (1 − 2b̂_k)·ρ_k` and `b_k·m = b̂_k·m + (1 − 2b̂_k)·ρ_k·m` are linear in the shares
//! (the two-round select of [`super::select`], Boyle et al.'s and Sigma's form).
//!
//! Over fewer bits `w` (a narrowed width, see [`crate::gates::lut`]) the same holds for
//! `v_k = x − c_k + 2^(w−1)` modulo `2^w`, with a `(w − 1)`-bit key: exact for
//! `|x − c_k| < 2^(w−1)`. Costs for `K` comparisons of `n` elements at `w = 64`: one 928-byte
//! key per element; per comparison `K` evaluations of `w − 7 = 57` AES blocks, one opened bit,
//! and material of one word `ρ_k`, one word per product mask and one bit (party 1's part;
//! party 0's words come from its seed).

use crate::material::{Shares, Split, bits_len, draw_bits, halftree_len, split_len};
use mpcflow_sdk::Result;

/// Material bytes of `count` comparisons over `bits` bits of `n` elements with `products`
/// product masks each: `[party 0, party 1]`, without the material header and seed.
pub fn material_len(n: usize, count: usize, products: usize, bits: u32) -> [u64; 2] {
    let [h0, h1] = split_len(n, 0, 0);
    let [w0, w1] = split_len(n, count * (1 + products), 0);
    let key = halftree_len(n, bits - 1);
    [w0 - h0 + key, w1 - h1 + key + count as u64 * bits_len(n)]
}

/// Online bytes each party sends for `count` comparisons of `n` elements.
pub fn online_len(n: usize, count: usize) -> u64 {
    bits_len(count * n)
}

/// Dealer: the material of `count` comparisons over `bits` bits (2 to 64) of the value with
/// mask `r`, each with shares of `ρ_k·m` for every `m` of `products`; returns the `ρ_k` (0 or
/// 1 each, a row per comparison) for products dealt later ([`deal_products`]).
pub fn deal(
    split: &mut Split,
    r: &[u64],
    count: usize,
    products: &[&[u64]],
    bits: u32,
    rng: &mut crate::fss::SeedRng,
) -> Result<Vec<Vec<u64>>> {
    let top = bits - 1;
    let mut rhos = Vec::with_capacity(count);
    for _ in 0..count {
        let rho = draw_bits(rng, r.len());
        split.share(&rho);
        for m in products {
            split.share(&rho.iter().zip(*m).map(|(b, m)| b.wrapping_mul(*m)).collect::<Vec<_>>());
        }
        split.share_bits(&r.iter().zip(&rho).map(|(r, b)| (((r >> top) ^ b) & 1) as u8).collect::<Vec<_>>());
        rhos.push(rho);
    }
    let low = (1u64 << top) - 1;
    split.halftree_keys(&r.iter().map(|r| r & low).collect::<Vec<_>>(), top, rng)?;
    Ok(rhos)
}

/// Dealer: shares of `ρ_k·m` for every comparison, one row each.
pub fn deal_products(split: &mut Split, rhos: &[Vec<u64>], m: &[u64]) {
    for rho in rhos {
        split.share(&rho.iter().zip(m).map(|(b, m)| b.wrapping_mul(*m)).collect::<Vec<_>>());
    }
}

/// One party's shares of `ρ_k` and of the products `ρ_k·m`.
pub struct Masks {
    rho: Vec<Vec<u64>>,
    /// Per product mask, a row per comparison.
    products: Vec<Vec<Vec<u64>>>,
}

/// Party: reads the material [`deal`] wrote and evaluates the key at `x̂ − c_k` for every
/// threshold `c_k` of `thresholds` (encoded words), over `bits` bits; returns the masks and this
/// party's shares of the masked bits `b_k ⊕ ρ_k`, a row of `n` per threshold, to open.
pub fn evaluate(
    sh: &mut Shares<'_>,
    party: u16,
    xhat: &[u64],
    thresholds: &[u64],
    products: usize,
    bits: u32,
) -> Result<(Masks, Vec<u8>)> {
    let top = bits - 1;
    let n = xhat.len();
    let mut masks = Masks { rho: Vec::with_capacity(thresholds.len()), products: vec![vec![]; products] };
    let mut flips = Vec::with_capacity(thresholds.len());
    for _ in thresholds {
        masks.rho.push(sh.share(n, "comparison mask bit")?);
        for p in masks.products.iter_mut() {
            p.push(sh.share(n, "comparison mask product")?);
        }
        flips.push(sh.bits(n, "comparison mask bits")?);
    }
    let keys = sh.halftree_keys(n, top, "comparison keys")?;
    let own = u8::from(party == 0);
    let low = (1u64 << top) - 1;
    // One pass over the key for every threshold: the points share their high levels.
    let shifted = |offset: u64| xhat.iter().map(move |x| x.wrapping_sub(offset).wrapping_add(1 << top));
    let points: Vec<Vec<u64>> = thresholds.iter().map(|&c| shifted(c).map(|v| v & low).collect()).collect();
    let rows: Vec<&[u64]> = points.iter().map(Vec::as_slice).collect();
    let mut c = vec![0u8; thresholds.len() * n];
    sh.accel().halftree_points(&keys, &rows, &mut c)?;
    let mut masked = Vec::with_capacity(thresholds.len() * n);
    for (k, (&offset, flip)) in thresholds.iter().zip(&flips).enumerate() {
        let c = &c[k * n..(k + 1) * n];
        masked.extend(shifted(offset).zip(c.iter().zip(flip)).map(|(v, (c, f))| c ^ f ^ (own & (v >> top) as u8 & 1)));
    }
    Ok((masks, masked))
}

impl Masks {
    /// Reads shares of `ρ_k·m` dealt by [`deal_products`], as product mask number
    /// `products()` (the next).
    pub fn read_products(&mut self, sh: &mut Shares<'_>, n: usize) -> Result<()> {
        let rows = (0..self.rho.len()).map(|_| sh.share(n, "comparison mask product")).collect::<Result<Vec<_>>>()?;
        self.products.push(rows);
        Ok(())
    }

    /// This party's shares of the bits `b_k` from the opened `b̂_k` (rows of `n`, as opened).
    pub fn bits(&self, party: u16, bhat: &[u8]) -> Vec<u64> {
        let own = u64::from(party == 0);
        let n = self.rho.first().map_or(0, Vec::len);
        let mut out = Vec::with_capacity(bhat.len());
        for (k, rho) in self.rho.iter().enumerate() {
            out.extend(rho.iter().zip(&bhat[k * n..(k + 1) * n]).map(|(r, b)| {
                let b = u64::from(*b);
                (own & b).wrapping_add(1u64.wrapping_sub(2 * b).wrapping_mul(*r))
            }));
        }
        out
    }

    /// This party's shares of `b_k·m` for product mask `which` (its own share of `m` given).
    pub fn products(&self, which: usize, bhat: &[u8], m: &[u64]) -> Vec<u64> {
        let n = m.len();
        let rows = self.products.get(which).map_or(&[][..], Vec::as_slice);
        let mut out = Vec::with_capacity(bhat.len());
        for (k, row) in rows.iter().enumerate() {
            out.extend(row.iter().zip(m).zip(&bhat[k * n..(k + 1) * n]).map(|((rm, m), b)| {
                let b = u64::from(*b);
                b.wrapping_mul(*m).wrapping_add(1u64.wrapping_sub(2 * b).wrapping_mul(*rm))
            }));
        }
        out
    }

    /// This party's shares of `ρ_k` and `ρ_k·m` for product `which`, comparison `k`.
    pub fn row(&self, k: usize, which: usize) -> (&[u64], &[u64]) {
        let rho = self.rho.get(k).map_or(&[][..], Vec::as_slice);
        let prod = self.products.get(which).and_then(|p| p.get(k)).map_or(&[][..], Vec::as_slice);
        (rho, prod)
    }
}
