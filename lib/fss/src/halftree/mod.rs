//! One-bit distributed comparison function on a half tree: XOR shares of `[x < α]`, the
//! comparison bit of DReLU, from a key of one 128-bit word per level and one AES block per level.
//!
//! # Construction
//!
//! The DPF tree of Guo, Yang, Wang, Zhang, Xie, Liu and Zhao, "Half-Tree: Halving the Cost of
//! Tree Expansion in COT and DPF" (Eurocrypt 2023: its DPF for a trusted dealer), with
//! the correlation-robust hash `H(x) = π(σ(x)) ⊕ σ(x)`: `π` is AES-128 under the fixed public
//! key [`HASH_KEY`], `σ(x_hi ‖ x_lo) = (x_hi ⊕ x_lo ‖ x_hi)` the linear orthomorphism of
//! Guo–Katz–Wang–Yu (S&P 2020), so `H` is circular correlation robust in the
//! random-permutation model.
//!
//! * **Keys.** The dealer draws `Δ` with lowest bit 1 and a root seed `s₀`; party 1's root is
//!   `s₁ = s₀ ⊕ Δ`. A node's control bit is its seed's lowest bit, so the roots' control bits
//!   differ. Every level `i` gets one public correction word
//!   `CW_i = H(s₀) ⊕ H(s₁) ⊕ (1 − α_i)·Δ` for the two on-path seeds `s₀`, `s₁` of level `i − 1`.
//! * **Expansion** (each party, at a node with seed `s` and control bit `t`): the left child is
//!   `L = H(s) ⊕ t·CW_i`, the right child `R = L ⊕ s`. One AES block per node, for the dealer as
//!   for the parties (the dealer walks both roots: two per level). On the path of `α` the two
//!   parties' seeds differ by `Δ` and their control bits differ; the child that leaves the path
//!   gets equal seeds in both keys (`L₀ ⊕ L₁ = (1 − α_i)Δ`, `R₀ ⊕ R₁ = α_i·Δ`), and equal seeds
//!   stay equal below. So `t₀ ⊕ t₁` at a node is 1 exactly on the path of `α`.
//! * **The comparison bit from control bits alone** (our addition; no value correction words):
//!   `x < α` exactly when, at the first level `i` where they differ, `x_i = 0` and `α_i = 1`.
//!   At a level where `x_i = 0`, the on-path indicator `t₀ ⊕ t₁` goes from 1 to 0 exactly then
//!   (from on-path it stays on-path when `α_i = 0`; off the path it stays 0). So each party
//!   outputs the XOR, over the levels where `x_i = 0`, of its control bit before and after the
//!   level, and the two outputs XOR to `[x_hi < α_hi]` on the walked levels.
//! * **Early termination** (Boyle–Gilboa–Ishai, CCS 2016, Section 3.2.1): the last
//!   `ν = min(n, 7)` levels are one leaf block. At the node reached after `n − ν` levels each
//!   party computes `H(s) ⊕ t·CW_leaf` and takes bit `x_lo` (the low `ν` bits of `x`);
//!   `CW_leaf = H(s₀) ⊕ H(s₁) ⊕ T` where bit `y` of `T` is `[y < α_lo]`. On the path the two
//!   blocks XOR to `T`, off it to 0, so the leaf adds `[x_hi = α_hi ∧ x_lo < α_lo]`.
//!
//! Each party's output is one bit; the two XOR to `[x < α]` for every `x` of the domain.
//!
//! # Security
//!
//! A key is a DPF key of the half-tree scheme (root seed and correction words; the control-bit
//! outputs are a function of the key and the public `x`, so they reveal nothing a key does not).
//! From one party's view its root seed is uniform and every correction word
//! `H(s_b) ⊕ H(s_b ⊕ Δ) ⊕ (1 − α_i)Δ` is pseudorandom when `H` is circular correlation robust
//! and `Δ` is secret (the argument of Guo et al. 2023 for their DPF; the leaf word has the
//! same form, a hash difference of the two on-path seeds plus a constant), so
//! the key is simulatable without `α`. The assumption is that fixed-key AES is an ideal
//! permutation; as in [`super::prg`] the bound degrades with the number of hashed seeds.
//! Semi-honest, trusted dealer; keys are not authenticated.
//!
//! # Costs and sizes
//!
//! For an `n`-bit domain with `m = n − ν` walked levels: evaluation `m + 1` AES blocks, key
//! generation `2(m + 1)` (both keys; the DCF of [`super::dcf`] takes `2n` and `6n`). A key is
//! `16·(m + 2)` bytes (root seed, `m` correction words, leaf correction word): 928 B at
//! `n = 63`, where a DCF key is 1554 B. Both keys carry the same correction words; they differ
//! in the root only.
//!
//! # Serialised batch
//!
//! `tag 'H' (1) ‖ n (1) ‖ tiles`, little-endian, [`batch_len`] bytes. The keys come in tiles of
//! [`TILE`] (the last may be shorter, `k` keys); a tile is its `k` root seeds, then the `k`
//! correction words of level 0, of level 1, …, and the `k` leaf correction words. This is the
//! order evaluation reads them in (one row of 16·`k` bytes per level), so a batch streams
//! through the cache once, front to back, and the dealer writes it the same way. One key is a
//! batch of one.

use std::sync::LazyLock;

use aes::Aes128;
use aes::cipher::{Array, BlockCipherEncrypt, KeyInit};

use super::batch::{grow, par_threads, run_parts};
use super::prg::{Block, Prg, SeedRng, block_from_u128, u128_from_block};
use super::{FssError, check_all_in_domain, check_bits, check_in_domain, domain_mask, mask128};

/// Type tag (first byte) of a serialised half-tree batch, format version 1.
pub const HALF_TREE_TAG: u8 = b'H';

/// The fixed public AES-128 key of the hash `H` (16 ASCII bytes, nothing up the sleeve).
pub const HASH_KEY: [u8; 16] = *b"mpcflow/fss/half";

/// Levels resolved by the leaf block's truth table (`2^7 = 128` bits).
pub const LEAF_BITS: u32 = 7;

/// Keys per tile of the serialised batch, and per step of evaluation and key generation: a
/// tile's seeds and AES buffer stay in L1, its rows of correction words in L2.
pub const TILE: usize = 128;

/// Keys per seed of the parallel key generation: the keys do not depend on the thread count.
const GEN_CHUNK: usize = 32 * TILE;

const HEADER: usize = 2;

static HASH: LazyLock<Aes128> = LazyLock::new(|| Aes128::new(&Array::from(HASH_KEY)));

/// Levels of an `n`-bit key walked one by one (the rest are the leaf's).
pub const fn levels(n_bits: u32) -> usize {
    n_bits.saturating_sub(LEAF_BITS) as usize
}

/// Bytes per key in a batch: root seed, one correction word per walked level, leaf word.
pub const fn key_bytes(n_bits: u32) -> usize {
    16 * (levels(n_bits) + 2)
}

/// Bytes of a serialised batch of `count` keys of `n_bits` bits (header and keys).
pub const fn batch_len(count: usize, n_bits: u32) -> usize {
    HEADER + count * key_bytes(n_bits)
}

/// `σ(x_hi ‖ x_lo) = (x_hi ⊕ x_lo ‖ x_hi)`.
#[inline(always)]
fn sigma(x: u128) -> u128 {
    let hi = (x >> 64) as u64;
    let lo = x as u64;
    (u128::from(hi ^ lo) << 64) | u128::from(hi)
}

/// `buf[i] = π(σ(s[i]))`; the caller adds `σ(s[i])` back (fused into its own pass).
#[inline]
fn permute(s: &[u128], buf: &mut [Block]) {
    for (b, x) in buf.iter_mut().zip(s) {
        *b = block_from_u128(sigma(*x));
    }
    let n = Prg::global().padded_len(s.len()).min(buf.len());
    if let Some(blocks) = buf.get_mut(..n) {
        HASH.encrypt_blocks(blocks);
    }
}

/// `H(s[i])` from the block [`permute`] left for it.
#[inline(always)]
fn hashed(b: &Block, s: u128) -> u128 {
    u128_from_block(b) ^ sigma(s)
}

/// The rows of a 16-byte words from `bytes` into `out` (as many as both hold).
#[inline]
fn read_row(bytes: &[u8], out: &mut [u128]) {
    for (o, w) in out.iter_mut().zip(bytes.chunks_exact(16)) {
        *o = u128::from_le_bytes(w.try_into().unwrap_or_default());
    }
}

#[inline]
fn write_row(words: &[u128], out: &mut [u8]) {
    for (w, o) in words.iter().zip(out.chunks_exact_mut(16)) {
        o.copy_from_slice(&w.to_le_bytes());
    }
}

/// The leaf's truth table: bit `y` is `[y < α_lo]`.
#[inline(always)]
fn truth_table(alpha_lo: u64) -> u128 {
    if alpha_lo == 0 { 0 } else { u128::MAX >> (128 - alpha_lo.min(128)) }
}

/// Where the tile starting at key `first` lies in a batch's key bytes, and how many keys it has.
fn tile_span(first: usize, count: usize, n_bits: u32) -> (std::ops::Range<usize>, usize) {
    let k = (count - first).min(TILE);
    let at = first * key_bytes(n_bits);
    (at..at + k * key_bytes(n_bits), k)
}

/// One party's serialised batch of keys of one domain size, checked once and read in place.
/// `Debug` prints only sizes.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct HalfTreeKeys<'a> {
    /// The keys, after the header.
    keys: &'a [u8],
    count: usize,
    n_bits: u32,
}

impl std::fmt::Debug for HalfTreeKeys<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HalfTreeKeys").field("n_bits", &self.n_bits).field("len", &self.count).finish()
    }
}

impl<'a> HalfTreeKeys<'a> {
    /// Checks a batch of `count` keys of `n_bits` bits ([`batch_len`] bytes, type tag and domain
    /// size in the header) and borrows it. Every 128-bit word is a valid seed or correction
    /// word, so nothing else can be malformed.
    pub fn from_bytes(bytes: &'a [u8], count: usize, n_bits: u32) -> Result<HalfTreeKeys<'a>, FssError> {
        check_bits(n_bits)?;
        let malformed = |reason: String| FssError::MalformedKey { kind: "half-tree DCF", reason };
        let want = count.checked_mul(key_bytes(n_bits)).and_then(|b| b.checked_add(HEADER));
        if Some(bytes.len()) != want {
            return Err(malformed(format!("{} bytes for {count} keys of {} bytes", bytes.len(), key_bytes(n_bits))));
        }
        match bytes {
            [HALF_TREE_TAG, n, keys @ ..] if u32::from(*n) == n_bits => Ok(HalfTreeKeys { keys, count, n_bits }),
            [HALF_TREE_TAG, n, ..] => Err(malformed(format!("{n}-bit keys where {n_bits}-bit keys belong"))),
            _ => Err(malformed("wrong type tag".into())),
        }
    }

    /// Number of keys.
    pub fn len(&self) -> usize {
        self.count
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The domain size in bits.
    pub fn n_bits(&self) -> u32 {
        self.n_bits
    }
}

/// This party's share bit (0 or 1) of `[x < α]` from a serialised batch of one key (tests and
/// stragglers; batches use [`eval_many`]).
pub fn eval(key: &[u8], x: u64) -> Result<u8, FssError> {
    let n_bits = u32::from(key.get(1).copied().unwrap_or(0));
    let keys = HalfTreeKeys::from_bytes(key, 1, n_bits)?;
    check_in_domain("evaluation point", x, n_bits)?;
    let mut out = [0u8];
    eval_range(&keys, 0, &[x], &mut out);
    Ok(out[0])
}

/// Evaluates key `i` at `xs[i]` into `out[i]` (0 or 1) for every `i`.
pub fn eval_many(keys: &HalfTreeKeys<'_>, xs: &[u64], out: &mut [u8]) -> Result<(), FssError> {
    check_many(keys, xs, out)?;
    eval_range(keys, 0, xs, out);
    Ok(())
}

/// [`eval_many`] on up to `max_threads` scoped threads, in contiguous parts of whole tiles
/// (batches of at most [`crate::PAR_MIN_BATCH`] keys run on the calling thread).
pub fn eval_many_par(keys: &HalfTreeKeys<'_>, xs: &[u64], out: &mut [u8], max_threads: usize) -> Result<(), FssError> {
    eval_points_par(keys, &[xs], out, max_threads)
}

/// Rows of points one pass of [`eval_points_par`] walks together; more rows take more passes.
pub const MAX_POINTS: usize = 8;

/// Evaluates every key at several points: key `i` at `points[p][i]` into `out[p·len + i]`, for
/// every row `p` (`len` keys), on up to `max_threads` threads as [`eval_many_par`] does.
///
/// A gate comparing one masked value with several public thresholds (a clip's two ends and
/// zero, a histogram's edges) evaluates one key at points `x̂ − c_p` that, for thresholds
/// close together against a uniform mask, agree on most of their high bits. The levels above
/// the highest bit in which any two of a key's points differ take the same path, so the AVX-512
/// kernel walks them once per tile of 128 keys and forks below: at 63 bits and thresholds
/// within `2^20`, about 34 of the 56 walked levels are shared, and three points cost about
/// 104 hashes instead of 171. The outputs are those of one [`eval_many_par`] per row.
pub fn eval_points_par(
    keys: &HalfTreeKeys<'_>,
    points: &[&[u64]],
    out: &mut [u8],
    max_threads: usize,
) -> Result<(), FssError> {
    let len = keys.len();
    for row in points {
        if row.len() != len {
            return Err(FssError::LengthMismatch { what: "evaluation points", expected: len, got: row.len() });
        }
        check_all_in_domain(row, keys.n_bits)?;
    }
    if out.len() != points.len() * len {
        return Err(FssError::LengthMismatch { what: "outputs", expected: points.len() * len, got: out.len() });
    }
    if len == 0 {
        return Ok(());
    }
    let threads = par_threads(len, max_threads);
    let per = len.div_ceil(threads).div_ceil(TILE) * TILE;
    for (rows, outs) in points.chunks(MAX_POINTS).zip(out.chunks_mut(MAX_POINTS * len)) {
        let parts_count = len.div_ceil(per);
        let mut part_outs: Vec<Vec<&mut [u8]>> = (0..parts_count).map(|_| Vec::with_capacity(rows.len())).collect();
        for row_out in outs.chunks_mut(len) {
            for (part, o) in part_outs.iter_mut().zip(row_out.chunks_mut(per)) {
                part.push(o);
            }
        }
        let parts: Vec<_> = part_outs
            .into_iter()
            .enumerate()
            .map(|(j, o)| {
                let at = j * per;
                let xs: Vec<&[u64]> = rows.iter().map(|r| r.get(at..(at + per).min(len)).unwrap_or_default()).collect();
                (at, (xs, o))
            })
            .collect();
        if parts.len() == 1 {
            for (at, (xs, mut o)) in parts {
                points_range(keys, at, &xs, &mut o, false);
            }
        } else {
            run_parts(parts, |at, (xs, mut o)| points_range(keys, at, &xs, &mut o, false));
        }
    }
    Ok(())
}

fn check_many(keys: &HalfTreeKeys<'_>, xs: &[u64], out: &[u8]) -> Result<(), FssError> {
    for (what, got) in [("evaluation points", xs.len()), ("outputs", out.len())] {
        if got != keys.len() {
            return Err(FssError::LengthMismatch { what, expected: keys.len(), got });
        }
    }
    check_all_in_domain(xs, keys.n_bits)
}

/// Keys `first..first + xs.len()` (`first` a multiple of [`TILE`]) at `xs`, tile by tile, level
/// by level, reading each tile's rows in order.
fn eval_range(keys: &HalfTreeKeys<'_>, first: usize, xs: &[u64], out: &mut [u8]) {
    points_range(keys, first, &[xs], &mut [out], false)
}

/// Keys `first..` (`first` a multiple of [`TILE`]) at every row of `points` into the matching
/// row of `outs` (rows of equal length), tile by tile; on the portable path if `portable` (else
/// on [`avx512`] where the CPU has it, which shares the points' common levels).
fn points_range(keys: &HalfTreeKeys<'_>, first: usize, points: &[&[u64]], outs: &mut [&mut [u8]], portable: bool) {
    let n = keys.n_bits;
    let count = points.first().map_or(0, |p| p.len());
    let mut scratch = PortableTile::new();
    for start in (0..count).step_by(TILE) {
        let end = (start + TILE).min(count);
        let (span, k) = tile_span(first + start, keys.count, n);
        let next = keys.keys.get(span.end..).unwrap_or_default();
        let bytes = keys.keys.get(span).unwrap_or_default();
        let xs: Vec<&[u64]> = points.iter().map(|p| p.get(start..end).unwrap_or_default()).collect();
        let mut os: Vec<&mut [u8]> = outs.iter_mut().map(|o| o.get_mut(start..end).unwrap_or_default()).collect();
        #[cfg(target_arch = "x86_64")]
        if !portable && avx512::eval_tile(bytes, next, k, n, &xs, &mut os) {
            continue;
        }
        let _ = (portable, next);
        for (x, o) in xs.iter().zip(os.iter_mut()) {
            scratch.eval(bytes, k, n, x, o);
        }
    }
}

/// The portable path's buffers for one tile.
struct PortableTile {
    s: [u128; TILE],
    row: [u128; TILE],
    acc: [u8; TILE],
    buf: Vec<Block>,
}

impl PortableTile {
    fn new() -> PortableTile {
        PortableTile { s: [0; TILE], row: [0; TILE], acc: [0; TILE], buf: vec![Block::default(); TILE + 64] }
    }

    /// One tile (`k` keys, `bytes` its rows) at `xc` into `oc`, level by level.
    fn eval(&mut self, bytes: &[u8], k: usize, n: u32, xc: &[u64], oc: &mut [u8]) {
        let walked = levels(n);
        let low = domain_mask(n - walked as u32);
        let mut rows = bytes.chunks_exact(16 * k);
        let (s, row, acc) = (&mut self.s[..k], &mut self.row[..k], &mut self.acc[..k]);
        read_row(rows.next().unwrap_or_default(), s);
        acc.fill(0);
        for level in 0..=walked {
            read_row(rows.next().unwrap_or_default(), row);
            permute(s, &mut self.buf);
            let hs = self.buf.iter().zip(s.iter_mut()).map(|(b, si)| (hashed(b, *si), si));
            if level == walked {
                for (((h, si), (x, a)), (cw, o)) in hs.zip(xc.iter().zip(acc.iter())).zip(row.iter().zip(oc.iter_mut()))
                {
                    let leaf = h ^ (cw & mask128(*si as u8));
                    *o = a ^ ((leaf >> (x & low)) as u8 & 1);
                }
                break;
            }
            let pos = n - 1 - level as u32;
            for (((h, si), (x, a)), cw) in hs.zip(xc.iter().zip(acc.iter_mut())).zip(row.iter()) {
                let t = *si as u8 & 1;
                let left = h ^ (cw & mask128(t));
                let bit = (x >> pos) as u8 & 1;
                let child = left ^ (*si & mask128(bit));
                *a ^= (bit ^ 1) & (t ^ (child as u8 & 1));
                *si = child;
            }
        }
    }
}

/// Generates one key pair per `α` of `alphas` (an `n_bits`-bit domain) and appends party 0's
/// batch to `out0`, party 1's to `out1` ([`batch_len`] bytes each).
pub fn keygen_into(
    alphas: &[u64],
    n_bits: u32,
    rng: &mut SeedRng,
    out0: &mut Vec<u8>,
    out1: &mut Vec<u8>,
) -> Result<(), FssError> {
    keygen_into_par(alphas, n_bits, rng, out0, out1, 1)
}

/// [`keygen_into`] on up to `max_threads` scoped threads. Each run of 32 tiles of keys draws
/// its own 32-byte seed from `rng` in order, so the keys do not depend on the thread count.
pub fn keygen_into_par(
    alphas: &[u64],
    n_bits: u32,
    rng: &mut SeedRng,
    out0: &mut Vec<u8>,
    out1: &mut Vec<u8>,
    max_threads: usize,
) -> Result<(), FssError> {
    keygen_with(alphas, n_bits, rng, (out0, out1), max_threads, false)
}

/// [`keygen_into_par`], on the portable path if `portable`.
fn keygen_with(
    alphas: &[u64],
    n_bits: u32,
    rng: &mut SeedRng,
    (out0, out1): (&mut Vec<u8>, &mut Vec<u8>),
    max_threads: usize,
    portable: bool,
) -> Result<(), FssError> {
    check_bits(n_bits)?;
    let len = batch_len(alphas.len(), n_bits);
    let (at0, at1) = (out0.len(), out1.len());
    let mut fresh0 = grow(out0, len);
    let mut fresh1 = grow(out1, len);
    let res = slices_with(alphas, n_bits, rng, (&mut fresh0[at0..], &mut fresh1[at1..]), max_threads, portable);
    fresh0.truncate(at0 + if res.is_ok() { len } else { 0 });
    fresh1.truncate(at1 + if res.is_ok() { len } else { 0 });
    *out0 = fresh0;
    *out1 = fresh1;
    res
}

/// Generates one key pair per `α` of `alphas` into `out0` and `out1`, each exactly
/// [`batch_len`]`(alphas.len(), n_bits)` bytes (whatever they held is overwritten: a dealer
/// hands in regions of recycled buffers, which need no zero-filling first), on up to
/// `max_threads` threads as [`keygen_into_par`] does.
pub fn keygen_into_slices(
    alphas: &[u64],
    n_bits: u32,
    rng: &mut SeedRng,
    out0: &mut [u8],
    out1: &mut [u8],
    max_threads: usize,
) -> Result<(), FssError> {
    slices_with(alphas, n_bits, rng, (out0, out1), max_threads, false)
}

fn slices_with(
    alphas: &[u64],
    n_bits: u32,
    rng: &mut SeedRng,
    (out0, out1): (&mut [u8], &mut [u8]),
    max_threads: usize,
    portable: bool,
) -> Result<(), FssError> {
    check_bits(n_bits)?;
    for a in alphas {
        check_in_domain("alpha", *a, n_bits)?;
    }
    let want = batch_len(alphas.len(), n_bits);
    for (what, got) in [("party 0's key bytes", out0.len()), ("party 1's key bytes", out1.len())] {
        if got != want {
            return Err(FssError::LengthMismatch { what, expected: want, got });
        }
    }
    let per_key = key_bytes(n_bits);
    let seeds: Vec<[u8; 32]> = alphas
        .chunks(GEN_CHUNK)
        .map(|_| {
            let mut seed = [0u8; 32];
            rng.fill_bytes(&mut seed);
            seed
        })
        .collect();
    let (head0, keys0) = out0.split_at_mut(HEADER);
    let (head1, keys1) = out1.split_at_mut(HEADER);
    head0.copy_from_slice(&[HALF_TREE_TAG, n_bits as u8]);
    head1.copy_from_slice(&[HALF_TREE_TAG, n_bits as u8]);
    let threads = par_threads(alphas.len(), max_threads);
    let per = alphas.len().div_ceil(threads.max(1)).div_ceil(GEN_CHUNK).max(1) * GEN_CHUNK;
    let parts: Vec<_> = alphas
        .chunks(per)
        .zip(seeds.chunks(per / GEN_CHUNK))
        .zip(keys0.chunks_mut(per * per_key).zip(keys1.chunks_mut(per * per_key)))
        .map(|p| (0, p))
        .collect();
    run_parts(parts, |_, ((a, sd), (d0, d1))| {
        let mut scratch = GenScratch::new(portable);
        let step = GEN_CHUNK * per_key;
        for ((ac, seed), (c0, c1)) in a.chunks(GEN_CHUNK).zip(sd).zip(d0.chunks_mut(step).zip(d1.chunks_mut(step))) {
            let mut rng = SeedRng::from_seed(*seed);
            let tiles = ac.chunks(TILE).zip(c0.chunks_mut(TILE * per_key).zip(c1.chunks_mut(TILE * per_key)));
            for (at, (t0, t1)) in tiles {
                scratch.tile(at, n_bits, &mut rng, t0, t1);
            }
        }
    });
    Ok(())
}

/// A key generator's state for one tile: both parties' seeds, `Δ`, the roots, the hashes.
struct GenScratch {
    /// Stay off the [`avx512`] kernel.
    portable: bool,
    buf: Vec<Block>,
    s: [u128; 2 * TILE],
    roots: [u128; TILE],
    delta: [u128; TILE],
    row: [u128; TILE],
}

impl GenScratch {
    fn new(portable: bool) -> GenScratch {
        GenScratch {
            portable,
            buf: vec![Block::default(); 2 * TILE + 64],
            s: [0; 2 * TILE],
            roots: [0; TILE],
            delta: [0; TILE],
            row: [0; TILE],
        }
    }

    /// One tile of key pairs into `d0`, `d1` (`alphas.len()` keys each, rows in batch order).
    fn tile(&mut self, alphas: &[u64], n: u32, rng: &mut SeedRng, d0: &mut [u8], d1: &mut [u8]) {
        let walked = levels(n);
        let k = alphas.len();
        // Every byte of both regions is written below (they may hold a recycled buffer's stale
        // bytes): the caller hands exactly one tile of keys.
        debug_assert!(d0.len() == k * key_bytes(n) && d1.len() == d0.len(), "a tile's regions have its size");
        let (s, roots, delta, row) =
            (&mut self.s[..2 * k], &mut self.roots[..k], &mut self.delta[..k], &mut self.row[..k]);
        for ((pair, r), d) in s.chunks_exact_mut(2).zip(roots.iter_mut()).zip(delta.iter_mut()) {
            *r = rng.next_u128();
            *d = rng.next_u128() | 1;
            pair[0] = *r;
            pair[1] = *r ^ *d;
        }
        #[cfg(target_arch = "x86_64")]
        if !self.portable && avx512::keygen_tile(alphas, n, roots, delta, d0, d1) {
            return;
        }
        let mut rows0 = d0.chunks_exact_mut(16 * k);
        let mut rows1 = d1.chunks_exact_mut(16 * k);
        write_row(roots, rows0.next().unwrap_or_default());
        let roots1: Vec<u128> = roots.iter().zip(delta.iter()).map(|(r, d)| r ^ d).collect();
        write_row(&roots1, rows1.next().unwrap_or_default());
        let low = domain_mask(n - walked as u32);
        for level in 0..=walked {
            permute(s, &mut self.buf);
            let pos = n.saturating_sub(1 + level as u32);
            for (((pair, b), (a, d)), cw) in s
                .chunks_exact_mut(2)
                .zip(self.buf.chunks_exact(2))
                .zip(alphas.iter().zip(delta.iter()))
                .zip(row.iter_mut())
            {
                let (h0, h1) = (hashed(&b[0], pair[0]), hashed(&b[1], pair[1]));
                if level == walked {
                    *cw = h0 ^ h1 ^ truth_table(a & low);
                    continue;
                }
                let bit = (a >> pos) as u8 & 1;
                *cw = h0 ^ h1 ^ (d & mask128(bit ^ 1));
                for (si, h) in pair.iter_mut().zip([h0, h1]) {
                    let left = h ^ (*cw & mask128(*si as u8));
                    *si = left ^ (*si & mask128(bit));
                }
            }
            let (r0, r1) = (rows0.next().unwrap_or_default(), rows1.next().unwrap_or_default());
            write_row(row, r0);
            r1.copy_from_slice(r0);
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod avx512;
#[cfg(test)]
mod tests;
