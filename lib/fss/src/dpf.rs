//! Distributed point function (Boyle–Gilboa–Ishai, CCS 2016, Fig. 1) over an `n`-bit domain
//! with output group `Z(2^64)`.
//!
//! `f_{α,β}(x) = β` if `x = α`, else `0`. [`keygen`] returns keys `(k0, k1)` with
//! `eval(0, k0, x) + eval(1, k1, x) = f_{α,β}(x)` (wrapping) for every `x < 2^n`.
//!
//! # Construction
//!
//! A binary tree of depth `n`, walked from the most significant bit. Each party holds a seed `s`
//! and a control bit `t` per node (`t = party` at the root). Per level the PRG gives
//! `s_L‖t_L = AES_kL(s) ⊕ s` and `s_R‖t_R = AES_kR(s) ⊕ s` (control bit = low bit, see
//! [`super::prg`]); the correction word `CW_i = (s_CW, t_CW^L, t_CW^R)` is XORed in where the
//! control bit is set, which makes both parties' states equal off the path to `α` and keeps them
//! independent on it. At the leaf, `y_b = (-1)^b · (Convert(s) + t · CW_{n+1})`.
//!
//! Evaluation only needs the child on `x`'s path, so one point costs **`n` AES calls**
//! (one per level, key `kL` or `kR`) and no key schedule; [`eval_batch`] performs them level by
//! level for many points (one `encrypt_blocks` per key per level over a tile of [`EVAL_TILE`]
//! points).
//! Key generation costs `4n` AES calls (both children for both parties). Full-domain evaluation
//! ([`eval_all`]) costs `2·(2^n − 1)`.
//!
//! # Key size
//!
//! [`DpfKey::serialized_len`]`(n) = 2 + 16 + 16·n + ⌈2n/8⌉ + 8` bytes: a 2-byte header (type tag,
//! `n`), the root seed, one 16-byte seed correction word per level, the two control-bit
//! correction words of each level packed into bits, and the 8-byte output correction word.
//! `n = 64` → 1066 B, `n = 32` → 546 B, `n = 16` → 286 B. That is the textbook
//! `λ + n(λ + 2) + 64` bits (λ = 128) plus the header, slightly under the `16 + 17n + 8` estimate
//! that spends a whole byte per level on the two control bits. EzPC's GPU-MPC DPF (≈ 951 B at
//! n = 64) and BGI16's `(n − v)(λ + 2) + 2λ` bits (≈ 958 B at n = 64, v = 7) are smaller because
//! they stop the tree `v` levels early and pack a 128-bit leaf of 1-bit outputs (early
//! termination); with 64-bit outputs early termination could save only one level (two outputs
//! per leaf block), which is not implemented.

use std::fmt;

use super::prg::{Block, Prg, PrgKey, SeedRng, block_from_u128, u128_from_block};
use super::{
    EVAL_TILE, EvalScratch, FssError, REGION, Reader, check_all_in_domain, check_bits, check_in_domain, check_party,
    control_bytes, convert, mask64, mask128, pack_control_bits, path_bit, select, signed, split_seed,
    unpack_control_bits,
};

/// Type tag (first byte) of a serialised DPF key, format version 1.
pub const DPF_TAG: u8 = b'P';

/// Largest domain [`eval_all`] accepts (2^20 outputs; the seeds of one level take 16 MiB).
pub const EVAL_ALL_MAX_BITS: u32 = 20;

/// Nodes per tile in [`eval_all`].
const TILE: usize = 960;

/// Keys per tile in [`keygen_batch`] (two seeds each).
const GEN_TILE: usize = 128;

/// The correction word of one tree level.
#[derive(Clone, Copy, PartialEq, Eq)]
struct LevelCw {
    seed: u128,
    t_l: u8,
    t_r: u8,
}

/// One party's DPF key.
///
/// Both parties' keys share the correction words and differ only in the root seed. `Debug`
/// prints only the domain size, never key material.
#[derive(Clone, PartialEq, Eq)]
pub struct DpfKey {
    n_bits: u32,
    root: u128,
    cws: Vec<LevelCw>,
    final_cw: u64,
}

impl fmt::Debug for DpfKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DpfKey").field("n_bits", &self.n_bits).finish_non_exhaustive()
    }
}

impl DpfKey {
    /// The domain size `n` in bits.
    pub fn n_bits(&self) -> u32 {
        self.n_bits
    }

    /// Serialised size of an `n`-bit key: `2 + 16 + 16·n + ⌈2n/8⌉ + 8` bytes
    /// (header, root seed, seed CWs, packed control-bit CWs, output CW).
    pub const fn serialized_len(n_bits: u32) -> usize {
        let n = n_bits as usize;
        2 + 16 + 16 * n + control_bytes(n) + 8
    }

    /// Serialises the key:
    /// `tag 'P' (1) ‖ n (1) ‖ root seed (16) ‖ n × seed CW (16 each) ‖ control-bit CWs ‖ output CW (8)`,
    /// all little-endian; control bits are packed LSB first, bit `2i` = `t_L` and bit `2i+1` =
    /// `t_R` of level `i`, unused bits zero.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(Self::serialized_len(self.n_bits));
        out.push(DPF_TAG);
        out.push(self.n_bits as u8);
        out.extend_from_slice(&self.root.to_le_bytes());
        for cw in &self.cws {
            out.extend_from_slice(&cw.seed.to_le_bytes());
        }
        pack_control_bits(self.cws.iter().map(|cw| (cw.t_l, cw.t_r)), &mut out, self.cws.len());
        out.extend_from_slice(&self.final_cw.to_le_bytes());
        out
    }

    /// Parses [`DpfKey::to_bytes`] output. Rejects (never panics on) wrong tag, domain size
    /// outside `1..=64`, wrong length, and non-canonical encodings (seed low bits or padding bits
    /// set), so every accepted byte string re-serialises to itself.
    pub fn from_bytes(bytes: &[u8]) -> Result<DpfKey, FssError> {
        let mut r = Reader::new(bytes, "DPF");
        let n_bits = r.header(DPF_TAG, DpfKey::serialized_len)?;
        let n = n_bits as usize;
        let root = r.seed("root seed", None)?;
        let mut seeds = Vec::with_capacity(n);
        for i in 0..n {
            seeds.push(r.seed("seed correction word", Some(i))?);
        }
        let ctrl = r.control_bits(n)?;
        let final_cw = r.u64()?;
        r.finish()?;
        let cws = seeds
            .into_iter()
            .enumerate()
            .map(|(i, seed)| {
                let (t_l, t_r) = unpack_control_bits(ctrl, i);
                LevelCw { seed, t_l, t_r }
            })
            .collect();
        Ok(DpfKey { n_bits, root, cws, final_cw })
    }
}

/// Generates the two keys of `f_{α,β}` over an `n_bits`-bit domain.
///
/// Errors if `n_bits` is not in `1..=64` or `alpha ≥ 2^n_bits`.
pub fn keygen(alpha: u64, beta: u64, n_bits: u32, rng: &mut SeedRng) -> Result<(DpfKey, DpfKey), FssError> {
    let mut keys = keygen_batch(&[alpha], &[beta], n_bits, rng)?;
    keys.pop().ok_or(FssError::LengthMismatch { what: "generated keys", expected: 1, got: 0 })
}

/// Generates one key pair per `(alphas[i], betas[i])`, level by level across up to 128 keys at a
/// time so the dealer's AES calls are batched. Draws randomness in the same order as calling
/// [`keygen`] for each pair in turn, so both give identical keys from identical RNG states.
pub fn keygen_batch(
    alphas: &[u64],
    betas: &[u64],
    n_bits: u32,
    rng: &mut SeedRng,
) -> Result<Vec<(DpfKey, DpfKey)>, FssError> {
    check_bits(n_bits)?;
    if betas.len() != alphas.len() {
        return Err(FssError::LengthMismatch { what: "betas", expected: alphas.len(), got: betas.len() });
    }
    for a in alphas {
        check_in_domain("alpha", *a, n_bits)?;
    }
    let prg = Prg::global();
    let cap = 2 * GEN_TILE + prg.parallel_blocks();
    let mut bl = vec![Block::default(); cap];
    let mut br = vec![Block::default(); cap];
    let mut s = vec![0u128; 2 * GEN_TILE];
    let mut t = vec![0u8; 2 * GEN_TILE];
    let mut keys = Vec::with_capacity(alphas.len());
    let mut flat: Vec<LevelCw> = Vec::with_capacity(GEN_TILE * n_bits as usize);

    for (at, bt) in alphas.chunks(GEN_TILE).zip(betas.chunks(GEN_TILE)) {
        let m = 2 * at.len();
        let (s, t) = (&mut s[..m], &mut t[..m]);
        // Index 2k + b holds party b's state for key k.
        for (sp, tp) in s.chunks_exact_mut(2).zip(t.chunks_exact_mut(2)) {
            for (b, (sb, tb)) in sp.iter_mut().zip(tp.iter_mut()).enumerate() {
                *sb = rng.next_u128() & !1;
                *tb = b as u8;
            }
        }
        let roots: Vec<u128> = s.to_vec();
        // Correction words of this tile, level-major (index level · k + key).
        flat.clear();

        for level in 0..n_bits {
            for ((l, r), sj) in bl.iter_mut().zip(br.iter_mut()).zip(s.iter()) {
                let b = block_from_u128(*sj);
                *l = b;
                *r = b;
            }
            prg.encrypt_padded(PrgKey::Left, &mut bl, m);
            prg.encrypt_padded(PrgKey::Right, &mut br, m);

            for (((alpha, (sp, tp)), lp), rp) in at
                .iter()
                .zip(s.chunks_exact_mut(2).zip(t.chunks_exact_mut(2)))
                .zip(bl.chunks_exact(2))
                .zip(br.chunks_exact(2))
            {
                let a = path_bit(*alpha, n_bits, level) as u8;
                let am = mask128(a);
                let mut keep_s = [0u128; 2];
                let mut keep_t = [0u8; 2];
                let mut lose_s = [0u128; 2];
                let mut t_l = [0u8; 2];
                let mut t_r = [0u8; 2];
                for b in 0..2 {
                    let (sl, tl) = split_seed(u128_from_block(&lp[b]) ^ sp[b]);
                    let (sr, tr) = split_seed(u128_from_block(&rp[b]) ^ sp[b]);
                    // α_i = 0: keep L, lose R; α_i = 1: keep R, lose L.
                    keep_s[b] = (sr & am) | (sl & !am);
                    lose_s[b] = (sl & am) | (sr & !am);
                    keep_t[b] = (tr & a) | (tl & (a ^ 1));
                    t_l[b] = tl;
                    t_r[b] = tr;
                }
                let seed = lose_s[0] ^ lose_s[1];
                let cw_tl = t_l[0] ^ t_l[1] ^ a ^ 1;
                let cw_tr = t_r[0] ^ t_r[1] ^ a;
                let cw_keep = (cw_tr & a) | (cw_tl & (a ^ 1));
                for b in 0..2 {
                    let tb = tp[b];
                    sp[b] = keep_s[b] ^ (mask128(tb) & seed);
                    tp[b] = keep_t[b] ^ (tb & cw_keep);
                }
                flat.push(LevelCw { seed, t_l: cw_tl, t_r: cw_tr });
            }
        }

        for (kk, (((beta, sp), tp), rp)) in
            bt.iter().zip(s.chunks_exact(2)).zip(t.chunks_exact(2)).zip(roots.chunks_exact(2)).enumerate()
        {
            let cw: Vec<LevelCw> = flat.iter().skip(kk).step_by(at.len()).copied().collect();
            // CW_{n+1} = (-1)^{t_1} · (β − Convert(s_0) + Convert(s_1)).
            let final_cw = signed(tp[1], beta.wrapping_sub(convert(sp[0])).wrapping_add(convert(sp[1])));
            let k0 = DpfKey { n_bits, root: rp[0], cws: cw.clone(), final_cw };
            let k1 = DpfKey { n_bits, root: rp[1], cws: cw, final_cw };
            keys.push((k0, k1));
        }
    }
    Ok(keys)
}

/// Party `party`'s share of `f_{α,β}(x)`: `n` dependent AES calls (latency bound; use
/// [`eval_batch`] for many points).
pub fn eval(party: u8, key: &DpfKey, x: u64) -> Result<u64, FssError> {
    check_party(party)?;
    check_in_domain("evaluation point", x, key.n_bits)?;
    let prg = Prg::global();
    let mut s = key.root;
    let mut t = party;
    for (level, cw) in key.cws.iter().enumerate() {
        let bit = path_bit(x, key.n_bits, level as u32);
        let (sc, tc) = split_seed(prg.mmo(PrgKey::child(bit), s));
        let t_cw = if bit == 0 { cw.t_l } else { cw.t_r };
        s = sc ^ (mask128(t) & cw.seed);
        t = tc ^ (t & t_cw);
    }
    Ok(signed(party, convert(s).wrapping_add(mask64(t) & key.final_cw)))
}

/// Evaluates party `party`'s key at every point of `xs` into `out` (same length), level by level
/// over tiles of [`EVAL_TILE`] points: per level and tile one `encrypt_blocks` call with `kL` on the
/// points going left and one with `kR` on those going right, `n` AES blocks per point in all.
pub fn eval_batch(party: u8, key: &DpfKey, xs: &[u64], out: &mut [u64]) -> Result<(), FssError> {
    check_party(party)?;
    if out.len() != xs.len() {
        return Err(FssError::LengthMismatch { what: "output buffer", expected: xs.len(), got: out.len() });
    }
    check_all_in_domain(xs, key.n_bits)?;
    if xs.is_empty() {
        return Ok(());
    }
    let prg = Prg::global();
    let mut scratch = EvalScratch::new();
    let EvalScratch { buf_a, buf_b, s, t, .. } = &mut *scratch;
    const MASK: usize = 2 * REGION - 1;
    let n = key.n_bits;
    let root = block_from_u128(key.root);

    for (xt, ot) in xs.chunks(EVAL_TILE).zip(out.chunks_mut(EVAL_TILE)) {
        let m = xt.len();
        s.fill(key.root);
        t.fill(party);
        // Level i reads `cur` and writes level i+1's seed blocks into `next`. A point going left
        // sits at the number of left-goers before it; one going right at REGION + the number of
        // right-goers before it (j − left-goers).
        let (mut cur, mut next) = (&mut *buf_a, &mut *buf_b);
        let mut cl = 0usize;
        for (j, x) in xt.iter().enumerate() {
            let bit = ((x >> (n - 1)) & 1) as usize;
            cur[select(bit, REGION + j - cl, cl) & MASK] = root;
            cl += 1 - bit;
        }
        for (level, cw) in key.cws.iter().enumerate() {
            let shift = n - 1 - level as u32;
            let next_shift = shift.saturating_sub(1); // after the last level: harmless scratch writes
            {
                let (left, right) = cur.split_at_mut(REGION);
                prg.encrypt_padded(PrgKey::Left, left, cl);
                prg.encrypt_padded(PrgKey::Right, right, m - cl);
            }
            let (mut rl, mut wl) = (0usize, 0usize);
            let t_cw = [cw.t_l, cw.t_r];
            for (j, ((x, sj), tj)) in xt.iter().zip(s.iter_mut()).zip(t.iter_mut()).enumerate() {
                let bit = ((x >> shift) & 1) as usize;
                let e = u128_from_block(&cur[select(bit, REGION + j - rl, rl) & MASK]);
                rl += 1 - bit;
                let (sc, tc) = split_seed(e ^ *sj);
                let s_new = sc ^ (mask128(*tj) & cw.seed);
                *sj = s_new;
                *tj = tc ^ (*tj & t_cw[bit]);
                // Gather for the next level.
                let nbit = ((x >> next_shift) & 1) as usize;
                next[select(nbit, REGION + j - wl, wl) & MASK] = block_from_u128(s_new);
                wl += 1 - nbit;
            }
            std::mem::swap(&mut cur, &mut next);
            cl = wl;
        }
        for ((o, sj), tj) in ot.iter_mut().zip(s.iter()).zip(t.iter()) {
            *o = signed(party, convert(*sj).wrapping_add(mask64(*tj) & key.final_cw));
        }
    }
    Ok(())
}

/// Full-domain evaluation: party `party`'s shares at `x = 0, 1, …, 2^n − 1` (index = `x`).
/// Expands the whole tree level by level, `2·(2^n − 1)` AES calls. Limited to
/// [`EVAL_ALL_MAX_BITS`] bits.
pub fn eval_all(party: u8, key: &DpfKey) -> Result<Vec<u64>, FssError> {
    check_party(party)?;
    if key.n_bits > EVAL_ALL_MAX_BITS {
        return Err(FssError::DomainTooLarge { n_bits: key.n_bits, max: EVAL_ALL_MAX_BITS });
    }
    let prg = Prg::global();
    let size = 1usize << key.n_bits;
    let cap = TILE + prg.parallel_blocks();
    let mut bl = vec![Block::default(); cap];
    let mut br = vec![Block::default(); cap];
    let mut s = Vec::with_capacity(size);
    let mut t = Vec::with_capacity(size);
    let mut ns = Vec::with_capacity(size);
    let mut nt = Vec::with_capacity(size);
    s.push(key.root);
    t.push(party);
    for cw in &key.cws {
        ns.clear();
        nt.clear();
        for (st, tt) in s.chunks(TILE).zip(t.chunks(TILE)) {
            for ((l, r), sj) in bl.iter_mut().zip(br.iter_mut()).zip(st.iter()) {
                let b = block_from_u128(*sj);
                *l = b;
                *r = b;
            }
            prg.encrypt_padded(PrgKey::Left, &mut bl, st.len());
            prg.encrypt_padded(PrgKey::Right, &mut br, st.len());
            for (((l, r), sj), tj) in bl.iter().zip(br.iter()).zip(st.iter()).zip(tt.iter()) {
                let tm = mask128(*tj);
                let (sl, tl) = split_seed(u128_from_block(l) ^ sj);
                let (sr, tr) = split_seed(u128_from_block(r) ^ sj);
                ns.push(sl ^ (tm & cw.seed));
                nt.push(tl ^ (tj & cw.t_l));
                ns.push(sr ^ (tm & cw.seed));
                nt.push(tr ^ (tj & cw.t_r));
            }
        }
        std::mem::swap(&mut s, &mut ns);
        std::mem::swap(&mut t, &mut nt);
    }
    Ok(s.iter()
        .zip(t.iter())
        .map(|(sj, tj)| signed(party, convert(*sj).wrapping_add(mask64(*tj) & key.final_cw)))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain_mask;
    use proptest::prelude::*;

    const NS: [u32; 7] = [1, 2, 8, 16, 32, 63, 64];

    fn rng(tag: u8) -> SeedRng {
        SeedRng::from_seed([tag; 32])
    }

    fn reconstruct(k0: &DpfKey, k1: &DpfKey, x: u64) -> u64 {
        let y0 = eval(0, k0, x).unwrap_or_else(|e| panic!("eval 0: {e}"));
        let y1 = eval(1, k1, x).unwrap_or_else(|e| panic!("eval 1: {e}"));
        y0.wrapping_add(y1)
    }

    /// Interesting points for `alpha` in an `n`-bit domain.
    fn edge_points(alpha: u64, n: u32) -> Vec<u64> {
        let max = domain_mask(n);
        let mut v = vec![0, max, alpha, alpha.wrapping_add(1) & max, alpha.wrapping_sub(1) & max, max / 2, max / 2 + 1];
        v.sort_unstable();
        v.dedup();
        v
    }

    #[test]
    fn edge_cases_all_domain_sizes() {
        let mut r = rng(1);
        for n in NS {
            let max = domain_mask(n);
            for alpha in [0, max, r.next_u64() & max, max / 2] {
                let beta = r.next_u64();
                let (k0, k1) = keygen(alpha, beta, n, &mut r).unwrap_or_else(|e| panic!("{e}"));
                assert_eq!(k0.n_bits(), n);
                let xs = edge_points(alpha, n);
                let mut y0 = vec![0; xs.len()];
                let mut y1 = vec![0; xs.len()];
                eval_batch(0, &k0, &xs, &mut y0).unwrap_or_else(|e| panic!("{e}"));
                eval_batch(1, &k1, &xs, &mut y1).unwrap_or_else(|e| panic!("{e}"));
                for (i, x) in xs.iter().enumerate() {
                    let want = if *x == alpha { beta } else { 0 };
                    assert_eq!(reconstruct(&k0, &k1, *x), want, "n={n} alpha={alpha:#x} x={x:#x}");
                    assert_eq!(y0[i].wrapping_add(y1[i]), want);
                }
            }
        }
    }

    #[test]
    fn full_domain_matches_point_function() {
        let mut r = rng(2);
        for n in [1u32, 2, 3, 5, 8, 11] {
            for alpha in [0, domain_mask(n), r.next_u64() & domain_mask(n)] {
                let beta = r.next_u64() | 1;
                let (k0, k1) = keygen(alpha, beta, n, &mut r).unwrap_or_else(|e| panic!("{e}"));
                let a0 = eval_all(0, &k0).unwrap_or_else(|e| panic!("{e}"));
                let a1 = eval_all(1, &k1).unwrap_or_else(|e| panic!("{e}"));
                assert_eq!(a0.len(), 1 << n);
                for (x, (y0, y1)) in a0.iter().zip(&a1).enumerate() {
                    let want = if x as u64 == alpha { beta } else { 0 };
                    assert_eq!(y0.wrapping_add(*y1), want, "n={n} alpha={alpha} x={x}");
                    assert_eq!(*y0, eval(0, &k0, x as u64).unwrap_or_default());
                }
            }
        }
    }

    #[test]
    fn batch_spanning_several_tiles_matches_single() {
        let mut r = rng(3);
        for n in [7u32, 20, 64] {
            let alpha = r.next_u64() & domain_mask(n);
            let (k0, k1) = keygen(alpha, 42, n, &mut r).unwrap_or_else(|e| panic!("{e}"));
            let mut xs: Vec<u64> = (0..2 * EVAL_TILE + 37).map(|_| r.next_u64() & domain_mask(n)).collect();
            xs[5] = alpha;
            xs[EVAL_TILE + 1] = alpha;
            for (party, key) in [(0u8, &k0), (1, &k1)] {
                let mut out = vec![0; xs.len()];
                eval_batch(party, key, &xs, &mut out).unwrap_or_else(|e| panic!("{e}"));
                for (x, y) in xs.iter().zip(&out) {
                    assert_eq!(*y, eval(party, key, *x).unwrap_or_default());
                }
            }
        }
    }

    #[test]
    fn skewed_batches_fill_one_side() {
        // Every point going the same way fills one region of the scratch buffers completely.
        let mut r = rng(40);
        for n in [1u32, 9, 64] {
            let max = domain_mask(n);
            let alpha = max / 2 + 1;
            let beta = r.next_u64();
            let (k0, k1) = keygen(alpha, beta, n, &mut r).unwrap_or_else(|e| panic!("{e}"));
            let len = 2 * EVAL_TILE + 3;
            let patterns: [Vec<u64>; 4] = [
                vec![0; len],
                vec![max; len],
                vec![alpha; len],
                (0..len as u64).map(|i| if i % 2 == 0 { 0 } else { max }).collect(),
            ];
            for xs in patterns {
                let mut y0 = vec![0; len];
                let mut y1 = vec![0; len];
                eval_batch(0, &k0, &xs, &mut y0).unwrap_or_else(|e| panic!("{e}"));
                eval_batch(1, &k1, &xs, &mut y1).unwrap_or_else(|e| panic!("{e}"));
                for (i, x) in xs.iter().enumerate() {
                    assert_eq!(y0[i].wrapping_add(y1[i]), if *x == alpha { beta } else { 0 }, "n={n} x={x:#x}");
                }
            }
        }
    }

    #[test]
    fn keygen_batch_equals_repeated_keygen() {
        let n = 16;
        let alphas: Vec<u64> = (0..GEN_TILE as u64 + 3).map(|i| (i * 7919) & domain_mask(n)).collect();
        let betas: Vec<u64> = (0..alphas.len() as u64).map(|i| i * 3 + 1).collect();
        let batch = keygen_batch(&alphas, &betas, n, &mut rng(4)).unwrap_or_else(|e| panic!("{e}"));
        let mut r = rng(4);
        for ((a, b), pair) in alphas.iter().zip(&betas).zip(&batch) {
            let single = keygen(*a, *b, n, &mut r).unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(&single, pair);
        }
    }

    #[test]
    fn invalid_arguments_are_errors() {
        let mut r = rng(5);
        assert_eq!(keygen(0, 1, 0, &mut r), Err(FssError::InvalidDomainBits(0)));
        assert_eq!(keygen(0, 1, 65, &mut r), Err(FssError::InvalidDomainBits(65)));
        assert!(matches!(keygen(256, 1, 8, &mut r), Err(FssError::OutOfDomain { .. })));
        assert!(matches!(keygen_batch(&[1, 2], &[1], 8, &mut r), Err(FssError::LengthMismatch { .. })));
        let (k0, _) = keygen(3, 1, 8, &mut r).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(eval(2, &k0, 1), Err(FssError::InvalidParty(2)));
        assert!(matches!(eval(0, &k0, 256), Err(FssError::OutOfDomain { .. })));
        let mut out = [0u64; 2];
        assert!(matches!(eval_batch(0, &k0, &[1, 2, 3], &mut out), Err(FssError::LengthMismatch { .. })));
        assert!(matches!(eval_batch(0, &k0, &[1, 300], &mut out), Err(FssError::OutOfDomain { value: 300, .. })));
        assert_eq!(eval_batch(9, &k0, &[1, 2], &mut out), Err(FssError::InvalidParty(9)));
        assert!(eval_batch(0, &k0, &[], &mut []).is_ok());
        let (big, _) = keygen(3, 1, 21, &mut r).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(eval_all(0, &big), Err(FssError::DomainTooLarge { n_bits: 21, max: EVAL_ALL_MAX_BITS }));
        assert_eq!(eval_all(3, &k0), Err(FssError::InvalidParty(3)));
    }

    #[test]
    fn serialisation_round_trip_and_sizes() {
        let mut r = rng(6);
        for n in NS {
            let (k0, k1) =
                keygen(r.next_u64() & domain_mask(n), r.next_u64(), n, &mut r).unwrap_or_else(|e| panic!("{e}"));
            for k in [&k0, &k1] {
                let bytes = k.to_bytes();
                assert_eq!(bytes.len(), DpfKey::serialized_len(n));
                assert_eq!(DpfKey::from_bytes(&bytes).as_ref(), Ok(k));
            }
        }
        assert_eq!(DpfKey::serialized_len(64), 1066);
        assert_eq!(DpfKey::serialized_len(32), 546);
        assert_eq!(DpfKey::serialized_len(1), 43);
    }

    #[test]
    fn malformed_bytes_are_errors() {
        let mut r = rng(7);
        for n in [1u32, 3, 8, 64] {
            let (k0, _) = keygen(1, 5, n, &mut r).unwrap_or_else(|e| panic!("{e}"));
            let bytes = k0.to_bytes();
            for len in 0..bytes.len() {
                assert!(DpfKey::from_bytes(&bytes[..len]).is_err(), "n={n} truncated to {len}");
            }
            let mut longer = bytes.clone();
            longer.push(0);
            assert!(DpfKey::from_bytes(&longer).is_err());
            let mut wrong_tag = bytes.clone();
            wrong_tag[0] = b'C';
            assert!(DpfKey::from_bytes(&wrong_tag).is_err());
            for bad_n in [0u8, 65, 255] {
                let mut b = bytes.clone();
                b[1] = bad_n;
                assert!(DpfKey::from_bytes(&b).is_err());
            }
            let mut low_bit = bytes.clone();
            low_bit[2] |= 1; // root seed control-bit position
            assert!(DpfKey::from_bytes(&low_bit).is_err());
            if !(2 * n).is_multiple_of(8) {
                let mut pad = bytes.clone();
                let last_ctrl = 2 + 16 + 16 * n as usize + control_bytes(n as usize) - 1;
                pad[last_ctrl] |= 0x80;
                assert!(DpfKey::from_bytes(&pad).is_err());
            }
        }
    }

    #[test]
    fn keys_look_random() {
        let mut r = rng(8);
        let n = 32;
        let mut ones = 0u32;
        let mut total = 0u32;
        let mut ctrl_ones = 0u32;
        let mut len = None;
        for alpha in [0u64, 1, 0xdead_beef, u32::MAX as u64] {
            let (k0, k1) = keygen(alpha, 1, n, &mut r).unwrap_or_else(|e| panic!("{e}"));
            let (b0, b1) = (k0.to_bytes(), k1.to_bytes());
            // Same length whatever alpha is.
            assert_eq!(*len.get_or_insert(b0.len()), b0.len());
            assert_eq!(b0.len(), b1.len());
            // Not constant, and the keys differ.
            assert!(b0[2..].windows(2).any(|w| w[0] != w[1]));
            assert_ne!(b0, b1);
            for cw in &k0.cws {
                ones += (cw.seed >> 1).count_ones();
                total += 127;
                ctrl_ones += u32::from(cw.t_l + cw.t_r);
            }
            ones += (k0.root >> 1).count_ones() + (k1.root >> 1).count_ones();
            total += 254;
        }
        assert!(ones * 100 > total * 45 && ones * 100 < total * 55, "{ones}/{total}");
        // 4 keys × 32 levels × 2 control bits: expect about 128 ones.
        assert!((90..=166).contains(&ctrl_ones), "{ctrl_ones}");
    }

    fn n_strategy() -> impl Strategy<Value = u32> {
        prop::sample::select(NS.to_vec())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(128))]

        #[test]
        fn prop_matches_definition(
            n in n_strategy(),
            a in any::<u64>(),
            beta in any::<u64>(),
            xs in prop::collection::vec(any::<u64>(), 1..8),
            seed in any::<[u8; 32]>(),
        ) {
            let alpha = a & domain_mask(n);
            let mut r = SeedRng::from_seed(seed);
            let (k0, k1) = keygen(alpha, beta, n, &mut r).map_err(|e| TestCaseError::fail(e.to_string()))?;
            let mut pts: Vec<u64> = xs.iter().map(|x| x & domain_mask(n)).collect();
            pts.extend(edge_points(alpha, n));
            let mut y0 = vec![0; pts.len()];
            let mut y1 = vec![0; pts.len()];
            eval_batch(0, &k0, &pts, &mut y0).map_err(|e| TestCaseError::fail(e.to_string()))?;
            eval_batch(1, &k1, &pts, &mut y1).map_err(|e| TestCaseError::fail(e.to_string()))?;
            for (i, x) in pts.iter().enumerate() {
                let want = if *x == alpha { beta } else { 0 };
                prop_assert_eq!(y0[i].wrapping_add(y1[i]), want);
                prop_assert_eq!(Ok(y0[i]), eval(0, &k0, *x));
                prop_assert_eq!(Ok(y1[i]), eval(1, &k1, *x));
            }
        }

        #[test]
        fn prop_round_trip(n in n_strategy(), a in any::<u64>(), beta in any::<u64>(), seed in any::<[u8; 32]>()) {
            let mut r = SeedRng::from_seed(seed);
            let (k0, k1) = keygen(a & domain_mask(n), beta, n, &mut r).map_err(|e| TestCaseError::fail(e.to_string()))?;
            for k in [k0, k1] {
                let bytes = k.to_bytes();
                prop_assert_eq!(bytes.len(), DpfKey::serialized_len(n));
                prop_assert_eq!(DpfKey::from_bytes(&bytes), Ok(k));
            }
        }

        #[test]
        fn prop_arbitrary_bytes_never_panic(
            mut bytes in prop::collection::vec(any::<u8>(), 0..1200),
            n in 1u8..=64,
            fix_header in any::<bool>(),
        ) {
            if fix_header && bytes.len() >= 2 {
                bytes[0] = DPF_TAG;
                bytes[1] = n;
                bytes.resize(DpfKey::serialized_len(u32::from(n)), 0);
            }
            if let Ok(k) = DpfKey::from_bytes(&bytes) {
                // Accepted encodings are canonical and evaluate without panicking.
                prop_assert_eq!(k.to_bytes(), bytes);
                let _ = eval(0, &k, 0);
            }
        }
    }
}
