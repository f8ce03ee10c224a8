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
//!
//! # The borrow in two rounds
//!
//! Products and scales may learn the borrow another way ([`Borrow::Bit`]): the dealer deals a
//! `t`-bit half-tree key ([`crate::fss::halftree`]), which gives XOR shares of `c`, with XOR
//! and `Z(2^64)` shares of a fresh random bit `ρ`. The parties open `c ⊕ ρ` (one bit each, an
//! extra round; uniform whatever `c` is) and take `c = ĉ + (1 − 2ĉ)·ρ`, linear in the shares of
//! `ρ`. Still exact. At `t = 16` the key is 176 bytes instead of a 414-byte DCF key, and the
//! AES work a third; [`choose`] weighs the extra round with the plan's network profile.

use crate::accel::Accel;
use crate::fss::{DcfKeyBatch, SeedRng, halftree};
use crate::material::{KeptHalfTree, Shares, Split, bits_len, dcf_len, halftree_len, split_len};
use mpcflow_sdk::protocol::{Cost, NodeDesc};
use mpcflow_sdk::{Error, Result};

/// How a truncation learns its borrow (see the module docs).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Borrow {
    /// A `t`-bit DCF with payload `−1`: the truncation takes one round.
    Dcf,
    /// A `t`-bit half-tree key and `c ⊕ ρ` opened: one round more, smaller keys, less AES.
    Bit,
}

/// A product's or scale's truncation: bits and borrow.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Truncation {
    /// Bits truncated.
    pub bits: u32,
    /// How the borrow is learnt.
    pub borrow: Borrow,
}

impl Truncation {
    /// A truncation of `bits` bits for `node` (a product or a scale), its borrow chosen by
    /// [`choose`].
    pub fn for_node(node: &NodeDesc, bits: u32) -> Truncation {
        Truncation { bits, borrow: choose(node, bits) }
    }

    /// Rounds the truncation adds to its gate.
    pub fn rounds(self) -> u32 {
        match self.borrow {
            Borrow::Dcf => 1,
            Borrow::Bit => 2,
        }
    }

    /// Online bytes per party the truncation sends for `n` elements.
    pub fn online_bytes(self, n: usize) -> u64 {
        8 * n as u64
            + match self.borrow {
                Borrow::Dcf => 0,
                Borrow::Bit => bits_len(n),
            }
    }

    /// Each party's material for `n` elements with `extra_words` more shared vectors of the
    /// gate (the material's header and party 0's seed included).
    pub fn material(self, n: usize, extra_words: usize) -> [u64; 2] {
        match self.borrow {
            Borrow::Dcf => split_len(n, extra_words + words(self.bits, PRODUCTS), key_len(self.bits, PRODUCTS)),
            Borrow::Bit => {
                let [p0, p1] = split_len(n, extra_words + 4, 0);
                let keys = halftree_len(n, self.bits);
                [p0 + keys, p1 + keys + bits_len(n)]
            }
        }
    }

    /// AES blocks per element, dealer and one party together (for [`choose`]).
    fn aes_blocks(self) -> u32 {
        match self.borrow {
            Borrow::Dcf => 8 * self.bits,
            Borrow::Bit => 3 * (halftree::levels(self.bits) as u32 + 1),
        }
    }
}

/// The borrow of a product's or scale's truncation of `bits` bits on `node` that takes least
/// estimated time end to end under the plan's network profile (see
/// [`super::select::seconds`]); [`Borrow::Dcf`] where the products' range does not apply.
pub fn choose(node: &NodeDesc, bits: u32) -> Borrow {
    if PRODUCTS.for_bits(bits) != Range::Half {
        return Borrow::Dcf;
    }
    let n = node.output.numel();
    let cost = |t: Truncation| {
        let mut c = Cost::zero(2);
        c.rounds = t.rounds();
        c.online_bytes = vec![t.online_bytes(n); 2];
        c.dealer_bytes = t.material(n, 0).to_vec();
        (c, t.aes_blocks())
    };
    let (dcf, dcf_aes) = cost(Truncation { bits, borrow: Borrow::Dcf });
    let (bit, bit_aes) = cost(Truncation { bits, borrow: Borrow::Bit });
    if super::select::seconds(node, &bit, bit_aes) < super::select::seconds(node, &dcf, dcf_aes) {
        Borrow::Bit
    } else {
        Borrow::Dcf
    }
}

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

/// Deals a product's or scale's truncation (the products' range, `borrow` as chosen); see
/// [`deal`]. With [`Borrow::Bit`]: shares `r_out − (r >> t)`, `r_out`, `r₆₃·2^(64−t)`, `ρ`, the
/// XOR shares of `ρ`, then the half-tree keys.
pub fn deal_product(split: &mut Split, r: &[u64], t: Truncation, rng: &mut SeedRng) -> Result<Vec<u64>> {
    let bits = t.bits;
    if t.borrow == Borrow::Dcf {
        return deal(split, r, bits, PRODUCTS, rng);
    }
    if PRODUCTS.for_bits(bits) != Range::Half {
        return Err(Error::internal(format!("a {bits}-bit truncation cannot learn its borrow as a bit")));
    }
    let n = r.len();
    let r_out: Vec<u64> = crate::material::draw(rng, n);
    let a: Vec<u64> = r.iter().zip(&r_out).map(|(r, o)| o.wrapping_sub(r >> bits)).collect();
    split.share(&a);
    split.share(&r_out);
    let top: Vec<u64> = r.iter().map(|r| (r >> 63) << (64 - bits)).collect();
    split.share(&top);
    let rho = crate::material::draw_bits(rng, n);
    split.share(&rho);
    split.share_bits(&rho.iter().map(|b| *b as u8).collect::<Vec<_>>());
    let low = (1u64 << bits) - 1;
    let alphas_low: Vec<u64> = r.iter().map(|r| r & low).collect();
    split.halftree_keys(&alphas_low, bits, rng)?;
    Ok(r_out)
}

/// How a party learns the borrow.
enum BorrowShares {
    /// Keys of the `t`-bit DCF (payload `−1`).
    Dcf(DcfKeyBatch<'static>),
    /// Its shares of `ρ` (in `Z(2^64)` and XOR) and the half-tree keys.
    Bit { rho: Vec<u64>, rho_xor: Vec<u8>, keys: KeptHalfTree },
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
    borrow: BorrowShares,
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
    Ok(TruncShares { a, r_out, borrow: BorrowShares::Dcf(borrow), wrap, range, accel: m.accel().clone() })
}

/// Reads the material of [`deal_product`].
pub fn read_product(m: &mut Shares<'_>, n: usize, t: Truncation) -> Result<TruncShares> {
    if t.borrow == Borrow::Dcf {
        return read(m, n, t.bits, PRODUCTS);
    }
    let a = m.share(n, "truncation offset")?;
    let r_out = m.share(n, "truncation mask")?;
    let top = m.share(n, "truncation wrap")?;
    let rho = m.share(n, "borrow mask")?;
    let rho_xor = m.bits(n, "borrow mask bits")?;
    let keys = m.kept_halftree_keys(n, t.bits, "truncation borrow keys")?;
    Ok(TruncShares {
        a,
        r_out,
        borrow: BorrowShares::Bit { rho, rho_xor, keys },
        wrap: Wrap::Top(top),
        range: Range::Half,
        accel: m.accel().clone(),
    })
}

impl TruncShares {
    /// Whether the borrow is opened as a bit first ([`borrow_bits`], then [`share_after_bits`]).
    pub fn borrows_a_bit(&self) -> bool {
        matches!(self.borrow, BorrowShares::Bit { .. })
    }
}

/// The shifted value `v = ẑ + offset + half`, and this party's share of the truncation without
/// its borrow: `(v >> t) − offset/2^t` (party 0) `+ a + w`.
fn without_borrow(party: u16, zhat: &[u64], bits: u32, m: &TruncShares, round: bool) -> (Vec<u64>, Vec<u64>) {
    let half = if round { 1u64 << (bits - 1) } else { 0 };
    let offset = m.range.offset();
    let v: Vec<u64> = zhat.iter().map(|z| z.wrapping_add(offset).wrapping_add(half)).collect();
    // `v >> t` counts the offset `o / 2^t`: subtract it (party 0 only).
    let unshift = offset >> bits;
    let own = |h: u64| if party == 0 { h } else { 0 };
    let base = (0..v.len()).map(|i| own((v[i] >> bits).wrapping_sub(unshift)).wrapping_add(m.a[i])).collect();
    (v, base)
}

/// Round one of a [`Borrow::Bit`] truncation (rounding to nearest): this party's XOR share of
/// `c ⊕ ρ`, to send.
pub fn borrow_bits(zhat: &[u64], bits: u32, m: &TruncShares) -> Result<Vec<u8>> {
    borrow_bits_with(zhat, bits, m, true)
}

/// [`borrow_bits`], rounding to nearest or (with `round` false) down.
pub fn borrow_bits_with(zhat: &[u64], bits: u32, m: &TruncShares, round: bool) -> Result<Vec<u8>> {
    let BorrowShares::Bit { rho_xor, keys, .. } = &m.borrow else {
        return Err(Error::internal("a truncation without a bit borrow asked for its bits"));
    };
    let low = (1u64 << bits) - 1;
    let (v, _) = without_borrow(0, zhat, bits, m, round);
    let v_low: Vec<u64> = v.iter().map(|v| v & low).collect();
    let mut c = vec![0u8; v.len()];
    m.accel.halftree(&keys.keys()?, &v_low, &mut c)?;
    Ok(c.iter().zip(rho_xor).map(|(c, r)| c ^ r).collect())
}

/// Round two: this party's share of `round(z / 2^t) + r_out` once both shares of `c ⊕ ρ` are
/// known (`mine` from [`borrow_bits`], `theirs` from the peer).
pub fn share_after_bits(
    party: u16,
    zhat: &[u64],
    bits: u32,
    m: &TruncShares,
    mine: &[u8],
    theirs: &[u8],
) -> Result<Vec<u64>> {
    share_after_bits_with(party, zhat, bits, m, (mine, theirs), true)
}

/// [`share_after_bits`], rounding to nearest or (with `round` false) down (as the bits were).
pub fn share_after_bits_with(
    party: u16,
    zhat: &[u64],
    bits: u32,
    m: &TruncShares,
    (mine, theirs): (&[u8], &[u8]),
    round: bool,
) -> Result<Vec<u64>> {
    let BorrowShares::Bit { rho, .. } = &m.borrow else {
        return Err(Error::internal("a truncation without a bit borrow got borrow bits"));
    };
    let (v, base) = without_borrow(party, zhat, bits, m, round);
    let own = u64::from(party == 0);
    let w = wrap_share(party, &v, m)?;
    Ok((0..v.len())
        .map(|i| {
            let chat = u64::from(mine[i] ^ theirs[i]);
            let c = (own * chat).wrapping_add(1u64.wrapping_sub(2 * chat).wrapping_mul(rho[i]));
            base[i].wrapping_add(w[i]).wrapping_sub(c)
        })
        .collect())
}

/// This party's share of the wrap term `2^(64−t)·w`.
fn wrap_share(party: u16, v: &[u64], m: &TruncShares) -> Result<Vec<u64>> {
    Ok(match &m.wrap {
        Wrap::Keys(keys) => eval(party, keys, v, &m.accel)?,
        Wrap::Top(top) => v.iter().zip(top).map(|(v, t)| if v >> 63 == 0 { *t } else { 0 }).collect(),
    })
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
    let BorrowShares::Dcf(borrow) = &m.borrow else {
        return Err(Error::internal("a bit-borrow truncation takes two steps"));
    };
    let low = (1u64 << bits) - 1;
    let (v, base) = without_borrow(party, zhat, bits, m, round);
    let v_low: Vec<u64> = v.iter().map(|v| v & low).collect();
    let c = eval(party, borrow, &v_low, &m.accel)?;
    let w = wrap_share(party, &v, m)?;
    Ok((0..v.len()).map(|i| base[i].wrapping_add(c[i]).wrapping_add(w[i])).collect())
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

    /// [`truncate`] for products with `borrow`, both steps of the bit borrow included, rounding
    /// to nearest or (with `round` false) down.
    fn truncate_product(zs: &[u64], bits: u32, borrow: Borrow, seed: u8, round: bool) -> Vec<u64> {
        let mut rng = SeedRng::from_seed([seed; 32]);
        let mut r: Vec<u64> = crate::material::draw(&mut rng, zs.len());
        for (i, r) in r.iter_mut().enumerate() {
            *r = (*r & !(1 << 63)) | ((i as u64 & 1) << 63);
        }
        let t = Truncation { bits, borrow };
        let mut split = Split::new(Tag::Trunc, &mut rng, [0, 0], 1);
        let r_out = deal_product(&mut split, &r, t, &mut rng).unwrap();
        let mats = split.finish();
        let zhat: Vec<u64> = zs.iter().zip(&r).map(|(z, r)| z.wrapping_add(*r)).collect();
        let material: Vec<TruncShares> = (0..2u16)
            .map(|p| {
                let mut m = Shares::new(&mats[p as usize], Tag::Trunc, p).unwrap();
                let t = read_product(&mut m, zs.len(), t).unwrap();
                m.finish().unwrap();
                t
            })
            .collect();
        let shares: Vec<Vec<u64>> = if borrow == Borrow::Bit {
            let bits0 = borrow_bits_with(&zhat, bits, &material[0], round).unwrap();
            let bits1 = borrow_bits_with(&zhat, bits, &material[1], round).unwrap();
            assert!(share(0, &zhat, bits, &material[0]).is_err(), "one step is refused");
            vec![
                share_after_bits_with(0, &zhat, bits, &material[0], (&bits0, &bits1), round).unwrap(),
                share_after_bits_with(1, &zhat, bits, &material[1], (&bits1, &bits0), round).unwrap(),
            ]
        } else {
            (0..2u16).map(|p| share_with(p, &zhat, bits, &material[p as usize], round).unwrap()).collect()
        };
        (0..zs.len()).map(|i| shares[0][i].wrapping_add(shares[1][i]).wrapping_sub(r_out[i])).collect()
    }

    #[test]
    fn the_bit_borrow_is_exact_like_the_dcf_rounding_either_way() {
        for bits in [1u32, 7, 8, 12, 16, 40, 62] {
            let edge = ((1i128 << 62) - (1i128 << (bits - 1))) as i64;
            let mut zs: Vec<i64> = vec![0, 1, -1, 2, -2, edge - 1, -edge + 1];
            zs.extend([(1i64 << bits) - 1, -(1i64 << bits)].into_iter().filter(|z| z.abs() < edge));
            zs.extend((1..=300i64).map(|i| i.wrapping_mul(0x9e37_79b9_7f4a_7c15u64 as i64) % edge));
            let words: Vec<u64> = zs.iter().map(|&z| z as u64).collect();
            for seed in 0..3 {
                for borrow in [Borrow::Bit, Borrow::Dcf] {
                    for round in [true, false] {
                        let got = truncate_product(&words, bits, borrow, seed, round);
                        for (i, &z) in zs.iter().enumerate() {
                            let want = if round { expect(z, bits) } else { (z >> bits) as u64 };
                            assert_eq!(got[i], want, "{borrow:?} t={bits} z={z} round {round}");
                        }
                    }
                }
            }
        }
        let t = Truncation { bits: 16, borrow: Borrow::Bit };
        let [p0, p1] = t.material(1000, 0);
        assert!(p0 / 1000 < 200 && p1 / 1000 < 220, "{p0} and {p1} bytes for 1000 elements");
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
