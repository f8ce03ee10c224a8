//! Table keys: a distributed point function over a small domain whose payload is a vector of
//! ring words, evaluated over its whole domain at once. This is the key of a secret-index table
//! lookup (Sigma's LUT protocol: Gupta et al., "SIGMA: Secure GPT Inference with Function Secret
//! Sharing", PETS 2024, Section 4): the parties expand shares of the one-hot vector
//! `[x = α]·β` for every `x` of the `n`-bit domain and take dot products with a public table
//! rotated by the public masked index.
//!
//! # Construction
//!
//! The DPF tree of Boyle–Gilboa–Ishai (CCS 2016, Fig. 1) with the fixed-key MMO PRG of
//! [`super::prg`] (`kL`, `kR` give the children and their control bits), stopped
//! [`LEAF_LEVELS`] levels early (BGI16 Section 3.2.1, early termination): the seed `s` of a node
//! after `n − e` levels is expanded into the `W·2^e` output words of the `2^e` points below it,
//! block `i` being `AES_kV(s ⊕ i) ⊕ s ⊕ i` (two words per block). With `v_b` the expansion of
//! party `b`'s on-path seed, the leaf correction is
//! `CW = (−1)^{t₁}·(β·e_{α_lo} − v₀ + v₁)` (word `w` of point `p` at index `w·2^e + p`), and party
//! `b` outputs `(−1)^b·(v + t·CW)` at every leaf. Off the path the two parties' seeds and control
//! bits agree, so their outputs cancel; on it the control bits differ and the outputs add up
//! to `β` at `α_lo` and to 0 at the other points of the leaf.
//!
//! # Security
//!
//! Each key alone is a BGI16 DPF key: the root seed is uniform, and every correction word is
//! masked by the expansion of a seed that party never holds (the other party's on-path seed),
//! which is pseudorandom when fixed-key AES is a random permutation. The leaf words use a
//! distinct fixed key (`kV`) and counter tweaks below 16, so no two expansions of a seed share
//! an AES input. Semi-honest, trusted dealer, keys not authenticated.
//!
//! # Costs and sizes
//!
//! With `e = min(n, 3)`: key generation `4(n − e) + W·2^e` AES blocks per key (both parties'),
//! full-domain evaluation `2(2^(n−e) − 1) + W·2^n / 2` per key and party. A key is
//! [`key_bytes`] `= 16 + 17(n − e) + 8·W·2^e` bytes: 293 B for `n = 8`, `W = 3`.
//!
//! # Serialised batch
//!
//! `tag 'T' (1) ‖ n (1) ‖ W (1) ‖ keys`, each key its root seed (16, little-endian), then per
//! walked level the seed correction word (16) and a byte holding the two control-bit
//! corrections (bit 0 left, bit 1 right), then the `W·2^e` leaf correction words (8 each).
//! The root's control bit is the party index.

use std::ops::Range;

use super::batch::{par_threads, run_parts};
use super::prg::{Block, Prg, PrgKey, SeedRng, block_from_u128, u128_from_block};
use super::{FssError, check_in_domain, check_party, mask64, mask128, signed, split_seed};

/// Type tag (first byte) of a serialised table-key batch, format version 1.
pub const TABLE_TAG: u8 = b'T';

/// The largest domain a table key may have: the evaluation materialises `W·2^n` words (8 MiB
/// per key at 20 bits; the lookups use 8 to 12 bits, a one-hot over a vocabulary up to 17).
pub const MAX_TABLE_BITS: u32 = 20;

/// The most payload words per point.
pub const MAX_WORDS: u32 = 4;

/// Levels resolved by expanding the leaf seed (early termination).
pub const LEAF_LEVELS: u32 = 3;

const HEADER: usize = 3;

/// Keys per step of key generation and of evaluation: a step's seeds and outputs stay in L2.
const GROUP: usize = 8;

/// Keys per seed of the parallel key generation: the keys do not depend on the thread count.
const GEN_CHUNK: usize = 4096;

/// Levels resolved by the leaf expansion of an `n_bits`-bit key.
pub const fn leaf_levels(n_bits: u32) -> u32 {
    if n_bits < LEAF_LEVELS { n_bits } else { LEAF_LEVELS }
}

/// Words of one leaf: `W` words for each of the `2^e` points under it.
const fn leaf_words(n_bits: u32, words: u32) -> usize {
    (words as usize) << leaf_levels(n_bits)
}

/// Bytes per key: root seed, a seed and a control byte per walked level, leaf corrections.
pub const fn key_bytes(n_bits: u32, words: u32) -> usize {
    16 + 17 * (n_bits - leaf_levels(n_bits)) as usize + 8 * leaf_words(n_bits, words)
}

/// Bytes of a serialised batch of `count` keys (header and keys).
pub const fn batch_len(count: usize, n_bits: u32, words: u32) -> usize {
    HEADER + count * key_bytes(n_bits, words)
}

/// Words one key's full-domain evaluation writes: `W` rows of `2^n`.
pub const fn eval_len(n_bits: u32, words: u32) -> usize {
    (words as usize) << n_bits
}

fn check_shape(n_bits: u32, words: u32) -> Result<(), FssError> {
    if n_bits == 0 || n_bits > MAX_TABLE_BITS {
        return Err(FssError::DomainTooLarge { n_bits, max: MAX_TABLE_BITS });
    }
    if words == 0 || words > MAX_WORDS {
        return Err(FssError::MalformedKey {
            kind: "table",
            reason: format!("{words} payload words (1 to {MAX_WORDS})"),
        });
    }
    Ok(())
}

/// One party's serialised batch of table keys, checked once and read in place.
#[derive(Clone, Copy)]
pub struct TableKeys<'a> {
    keys: &'a [u8],
    count: usize,
    n_bits: u32,
    words: u32,
}

impl std::fmt::Debug for TableKeys<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TableKeys").field("count", &self.count).field("n_bits", &self.n_bits).finish()
    }
}

impl<'a> TableKeys<'a> {
    /// Reads a batch of `count` keys of `n_bits` bits and `words` payload words.
    pub fn from_bytes(bytes: &'a [u8], count: usize, n_bits: u32, words: u32) -> Result<TableKeys<'a>, FssError> {
        let bad = |reason: String| FssError::MalformedKey { kind: "table", reason };
        check_shape(n_bits, words)?;
        if bytes.len() != batch_len(count, n_bits, words) {
            return Err(bad(format!("{} bytes, expected {}", bytes.len(), batch_len(count, n_bits, words))));
        }
        if bytes[..HEADER] != [TABLE_TAG, n_bits as u8, words as u8] {
            return Err(bad(format!(
                "header {:?} is not that of {n_bits}-bit keys of {words} words",
                &bytes[..HEADER]
            )));
        }
        Ok(TableKeys { keys: &bytes[HEADER..], count, n_bits, words })
    }

    /// Keys in the batch.
    pub fn len(&self) -> usize {
        self.count
    }

    /// Whether the batch is empty.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Domain bits.
    pub fn n_bits(&self) -> u32 {
        self.n_bits
    }

    /// Payload words per point.
    pub fn words(&self) -> u32 {
        self.words
    }

    fn key(&self, i: usize) -> &'a [u8] {
        let len = key_bytes(self.n_bits, self.words);
        &self.keys[i * len..(i + 1) * len]
    }
}

fn u128_at(b: &[u8], at: usize) -> u128 {
    u128::from_le_bytes(b[at..at + 16].try_into().unwrap_or_default())
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().unwrap_or_default())
}

/// `AES_kL(s)` and `AES_kR(s)` for every seed, into `left` and `right`; the caller adds `s`.
fn children(seeds: &[u128], left: &mut Vec<Block>, right: &mut Vec<Block>) {
    let prg = Prg::global();
    let padded = prg.padded_len(seeds.len());
    for buf in [&mut *left, &mut *right] {
        buf.resize(padded.max(seeds.len()), Block::default());
        for (b, s) in buf.iter_mut().zip(seeds) {
            *b = block_from_u128(*s);
        }
    }
    prg.encrypt_blocks(PrgKey::Left, &mut left[..padded]);
    prg.encrypt_blocks(PrgKey::Right, &mut right[..padded]);
}

/// The `per_seed` leaf blocks of every seed, encrypted in `buf` (seed-major): block `i` of seed
/// `s` is `AES_kV(s ⊕ i)`; the caller adds `s ⊕ i` back (fused into its own pass).
fn leaf_inputs(seeds: &[u128], per_seed: usize, buf: &mut Vec<Block>) {
    let prg = Prg::global();
    let len = seeds.len() * per_seed;
    buf.resize(prg.padded_len(len), Block::default());
    for (blocks, s) in buf.chunks_exact_mut(per_seed).zip(seeds) {
        for (i, b) in blocks.iter_mut().enumerate() {
            *b = block_from_u128(s ^ i as u128);
        }
    }
    prg.encrypt_blocks(PrgKey::Value, buf);
}

/// Word `j` of a leaf expanded into blocks `leaf`.
#[inline(always)]
fn leaf_word(leaf: &[u128], j: usize) -> u64 {
    (leaf[j / 2] >> (64 * (j % 2))) as u64
}

/// Generates one key pair per `α` of `alphas` (an `n_bits`-bit domain) with payload
/// `betas[i·W..(i+1)·W]` into `out0` and `out1`, each exactly [`batch_len`] bytes (whatever they
/// held is overwritten), on up to `max_threads` threads. Each run of 4096 keys draws
/// its own seed from `rng` in order, so the keys do not depend on the thread count.
#[allow(clippy::too_many_arguments)]
pub fn keygen_into_slices(
    alphas: &[u64],
    betas: &[u64],
    n_bits: u32,
    words: u32,
    rng: &mut SeedRng,
    out0: &mut [u8],
    out1: &mut [u8],
    max_threads: usize,
) -> Result<(), FssError> {
    check_shape(n_bits, words)?;
    let w = words as usize;
    if betas.len() != alphas.len() * w {
        return Err(FssError::LengthMismatch { what: "payload words", expected: alphas.len() * w, got: betas.len() });
    }
    for a in alphas {
        check_in_domain("alpha", *a, n_bits)?;
    }
    let want = batch_len(alphas.len(), n_bits, words);
    for (what, got) in [("party 0's key bytes", out0.len()), ("party 1's key bytes", out1.len())] {
        if got != want {
            return Err(FssError::LengthMismatch { what, expected: want, got });
        }
    }
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
    head0.copy_from_slice(&[TABLE_TAG, n_bits as u8, words as u8]);
    head1.copy_from_slice(&[TABLE_TAG, n_bits as u8, words as u8]);
    let per_key = key_bytes(n_bits, words);
    let threads = par_threads(alphas.len(), max_threads);
    let per = alphas.len().div_ceil(threads.max(1)).div_ceil(GEN_CHUNK).max(1) * GEN_CHUNK;
    let parts: Vec<_> = alphas
        .chunks(per)
        .zip(betas.chunks(per * w))
        .zip(seeds.chunks(per / GEN_CHUNK))
        .zip(keys0.chunks_mut(per * per_key).zip(keys1.chunks_mut(per * per_key)))
        .map(|p| (0, p))
        .collect();
    run_parts(parts, |_, (((a, b), sd), (d0, d1))| {
        let mut generator = Generator::default();
        let step = GEN_CHUNK * per_key;
        let chunks = a.chunks(GEN_CHUNK).zip(b.chunks(GEN_CHUNK * w)).zip(sd);
        for (((ac, bc), seed), (c0, c1)) in chunks.zip(d0.chunks_mut(step).zip(d1.chunks_mut(step))) {
            let mut rng = SeedRng::from_seed(*seed);
            let groups = ac.chunks(GROUP).zip(bc.chunks(GROUP * w));
            for ((ag, bg), (g0, g1)) in groups.zip(c0.chunks_mut(GROUP * per_key).zip(c1.chunks_mut(GROUP * per_key))) {
                generator.group(ag, bg, n_bits, words, &mut rng, g0, g1);
            }
        }
    });
    Ok(())
}

/// Scratch of key generation, reused across groups.
#[derive(Default)]
struct Generator {
    /// On-path seeds, `[key][party]` flattened.
    s: Vec<u128>,
    t: Vec<u8>,
    left: Vec<Block>,
    right: Vec<Block>,
    leaf_buf: Vec<Block>,
    leaves: Vec<u128>,
}

impl Generator {
    /// Key pairs for the `alphas.len()` keys of a group into `o0`, `o1` (their key bytes).
    #[allow(clippy::too_many_arguments)]
    fn group(
        &mut self,
        alphas: &[u64],
        betas: &[u64],
        n_bits: u32,
        words: u32,
        rng: &mut SeedRng,
        o0: &mut [u8],
        o1: &mut [u8],
    ) {
        let k = alphas.len();
        let e = leaf_levels(n_bits);
        let walked = (n_bits - e) as usize;
        let per_key = key_bytes(n_bits, words);
        self.s.clear();
        self.t.clear();
        for i in 0..k {
            for (b, o) in [&mut *o0, &mut *o1].into_iter().enumerate() {
                let root = rng.next_u128() & !1;
                o[i * per_key..i * per_key + 16].copy_from_slice(&root.to_le_bytes());
                self.s.push(root);
                self.t.push(b as u8);
            }
        }
        for level in 0..walked {
            children(&self.s, &mut self.left, &mut self.right);
            let at = 16 + 17 * level;
            for i in 0..k {
                let a = (alphas[i] >> (n_bits as usize - 1 - level)) & 1;
                let mut kids = [[(0u128, 0u8); 2]; 2];
                for (b, kid) in kids.iter_mut().enumerate() {
                    let s = self.s[2 * i + b];
                    kid[0] = split_seed(u128_from_block(&self.left[2 * i + b]) ^ s);
                    kid[1] = split_seed(u128_from_block(&self.right[2 * i + b]) ^ s);
                }
                let (keep, lose) = (a as usize, 1 - a as usize);
                let s_cw = kids[0][lose].0 ^ kids[1][lose].0;
                let t_l = kids[0][0].1 ^ kids[1][0].1 ^ (a as u8) ^ 1;
                let t_r = kids[0][1].1 ^ kids[1][1].1 ^ (a as u8);
                let t_keep = if keep == 0 { t_l } else { t_r };
                for (b, o) in [&mut *o0, &mut *o1].into_iter().enumerate() {
                    let cw = &mut o[i * per_key + at..i * per_key + at + 17];
                    cw[..16].copy_from_slice(&s_cw.to_le_bytes());
                    cw[16] = t_l | (t_r << 1);
                    let t = self.t[2 * i + b];
                    self.s[2 * i + b] = kids[b][keep].0 ^ (mask128(t) & s_cw);
                    self.t[2 * i + b] = kids[b][keep].1 ^ (t & t_keep);
                }
            }
        }
        let lw = leaf_words(n_bits, words);
        let per_seed = lw.div_ceil(2);
        leaf_inputs(&self.s, per_seed, &mut self.leaf_buf);
        self.leaves.clear();
        for (blocks, s) in self.leaf_buf.chunks_exact(per_seed).zip(&self.s) {
            self.leaves.extend(blocks.iter().enumerate().map(|(i, b)| u128_from_block(b) ^ s ^ i as u128));
        }
        let at = 16 + 17 * walked;
        let points = 1usize << e;
        for i in 0..k {
            let p = (alphas[i] as usize) & (points - 1);
            let v0 = &self.leaves[(2 * i) * per_seed..(2 * i + 1) * per_seed];
            let v1 = &self.leaves[(2 * i + 1) * per_seed..(2 * i + 2) * per_seed];
            let t1 = self.t[2 * i + 1];
            for j in 0..lw {
                let target = if j % points == p { betas[i * words as usize + j / points] } else { 0 };
                let cw = signed(t1, target.wrapping_sub(leaf_word(v0, j)).wrapping_add(leaf_word(v1, j)));
                let bytes = cw.to_le_bytes();
                o0[i * per_key + at + 8 * j..i * per_key + at + 8 * j + 8].copy_from_slice(&bytes);
                o1[i * per_key + at + 8 * j..i * per_key + at + 8 * j + 8].copy_from_slice(&bytes);
            }
        }
    }
}

/// Scratch of full-domain evaluation, reused across calls on one thread.
#[derive(Default)]
pub struct Expander {
    s: Vec<u128>,
    t: Vec<u8>,
    next_s: Vec<u128>,
    next_t: Vec<u8>,
    left: Vec<Block>,
    right: Vec<Block>,
    leaf_buf: Vec<Block>,
    /// The leaf correction words of the group's keys, key-major.
    cws: Vec<u64>,
    /// The group's outputs: per key, per leaf, the leaf's words (see [`Expander::for_each_leaf`]).
    ys: Vec<u64>,
    /// The AVX-512 kernel's levels of one key's tree.
    #[cfg(target_arch = "x86_64")]
    kernel_scratch: Option<avx512::Scratch>,
}

/// The most words of one leaf.
const LEAF_MAX: usize = (MAX_WORDS as usize) << LEAF_LEVELS;

/// The most (table, word) pairs of [`Expander::rotated_dots`].
pub const MAX_PAIRS: usize = 8;

/// What [`Expander::rotated_dots`] computes: the public tables, the `(table, payload word)`
/// pairs to dot, and each key's offset into the tables.
#[derive(Clone, Copy, Debug)]
pub struct Dots<'a> {
    /// The tables, each stored reversed and doubled by the caller.
    pub tables: &'a [&'a [u64]],
    /// `(table index, payload word)` per output word.
    pub pairs: &'a [(usize, usize)],
    /// Per key of the range: where its rotated run starts in the tables.
    pub offsets: &'a [usize],
}

impl Expander {
    /// Party `party`'s shares of keys `range` of `keys` at every point of the domain, into
    /// `out`: [`eval_len`] words per key, word `w` of point `x` of key `i` at
    /// `(i − range.start)·eval_len + w·2^n + x`.
    pub fn eval_all(
        &mut self,
        party: u8,
        keys: &TableKeys<'_>,
        range: Range<usize>,
        out: &mut [u64],
    ) -> Result<(), FssError> {
        let (n_bits, words) = (keys.n_bits, keys.words);
        let per = eval_len(n_bits, words);
        if out.len() != range.len() * per {
            return Err(FssError::LengthMismatch { what: "output words", expected: range.len() * per, got: out.len() });
        }
        let points = 1usize << leaf_levels(n_bits);
        let size = 1usize << n_bits;
        let first = range.start;
        self.for_each_leaf(party, keys, range, |i, leaf, ys| {
            let o = &mut out[(i - first) * per..(i - first + 1) * per];
            for (w, row) in ys.chunks_exact(points).enumerate() {
                let at = w * size + leaf * points;
                o[at..at + points].copy_from_slice(row);
            }
        })
    }

    /// Expands keys `range` of `keys` for party `party` and calls `visit(key index, leaf, ys)`
    /// for every leaf of every key, in order: `ys` holds the leaf's block of outputs, word `w`
    /// of point `leaf·2^e + p` at `ys[w·2^e + p]` (`e` = [`leaf_levels`]).
    pub fn for_each_leaf(
        &mut self,
        party: u8,
        keys: &TableKeys<'_>,
        range: Range<usize>,
        mut visit: impl FnMut(usize, usize, &[u64]),
    ) -> Result<(), FssError> {
        check_range(party, keys, &range)?;
        let lw = leaf_words(keys.n_bits, keys.words);
        let leaves = 1usize << (keys.n_bits - leaf_levels(keys.n_bits));
        for start in range.clone().step_by(GROUP) {
            let end = (start + GROUP).min(range.end);
            self.expand(party, keys, start..end);
            for (node, ys) in self.ys.chunks_exact(lw).enumerate() {
                visit(start + node / leaves, node % leaves, ys);
            }
        }
        Ok(())
    }

    /// Party `party`'s shares of the rotated dot products of Sigma's table lookup, for keys
    /// `range` of `keys`: `out[(i − start)·P + k] = Σ_x tables[a][offsets[i − start] + x]·y_b(x)`
    /// over the `2^n` points `x`, for pair `k = (a, b)` of `pairs` (`P` of them; see [`Dots`]),
    /// `y_b(x)` this party's share of payload word `b` at `x`. A table read at offset `c` needs
    /// `c + 2^n` entries (a lookup stores its table reversed and doubled, so the rotation by the
    /// public masked index is a contiguous run). The expansion is folded into the sums group by
    /// group, never written out whole; on CPUs with AVX-512 and VAES a kernel (`avx512`)
    /// walks each key, makes its leaves' words in registers and multiplies them into the sums
    /// at once (2.2× faster: 0.39 µs per 8-bit, three-word key and party for six pairs, against
    /// 0.84 on one thread of the 2-core development machine).
    pub fn rotated_dots(
        &mut self,
        party: u8,
        keys: &TableKeys<'_>,
        range: Range<usize>,
        dots: &Dots<'_>,
        out: &mut [u64],
    ) -> Result<(), FssError> {
        check_range(party, keys, &range)?;
        let Dots { tables, pairs, offsets } = *dots;
        let size = 1usize << keys.n_bits;
        let bad = |what: &'static str, expected: usize, got: usize| FssError::LengthMismatch { what, expected, got };
        if pairs.is_empty() || pairs.len() > MAX_PAIRS {
            return Err(bad("table pairs", MAX_PAIRS, pairs.len()));
        }
        if let Some(&(a, b)) = pairs.iter().find(|(a, b)| *a >= tables.len() || *b >= keys.words as usize) {
            return Err(bad("table pair index", tables.len(), a.max(b)));
        }
        if offsets.len() != range.len() {
            return Err(bad("table offsets", range.len(), offsets.len()));
        }
        if out.len() != range.len() * pairs.len() {
            return Err(bad("dot product outputs", range.len() * pairs.len(), out.len()));
        }
        let shortest = tables.iter().map(|t| t.len()).min().unwrap_or(0);
        if let Some(&c) = offsets.iter().find(|&&c| c + size > shortest) {
            return Err(bad("table entries", c + size, shortest));
        }
        #[cfg(target_arch = "x86_64")]
        if keys.n_bits >= LEAF_LEVELS && self.kernel_dots(party, keys, range.clone(), dots, out) {
            return Ok(());
        }
        self.rotated_dots_body(party, keys, range, dots, out);
        Ok(())
    }

    /// [`Expander::rotated_dots`] with the AVX-512 kernel ([`avx512`]), key by key; `false`
    /// (and nothing done) where the CPU lacks its features.
    #[cfg(target_arch = "x86_64")]
    fn kernel_dots(
        &mut self,
        party: u8,
        keys: &TableKeys<'_>,
        range: Range<usize>,
        dots: &Dots<'_>,
        out: &mut [u64],
    ) -> bool {
        let Some(kernel) = avx512::Kernel::new() else { return false };
        let Dots { tables, pairs, offsets } = *dots;
        let np = pairs.len();
        let scratch = self.kernel_scratch.get_or_insert_with(avx512::Scratch::new);
        for (k, i) in range.clone().enumerate() {
            let job = avx512::KeyDots {
                party,
                key: keys.key(i),
                walked: (keys.n_bits - LEAF_LEVELS) as usize,
                words: keys.words as usize,
                tables,
                pairs,
                offset: offsets[k],
            };
            kernel.key_dots(&job, scratch, &mut out[k * np..(k + 1) * np]);
        }
        true
    }

    /// The checked arguments of [`Expander::rotated_dots`].
    #[inline(always)]
    fn rotated_dots_body(
        &mut self,
        party: u8,
        keys: &TableKeys<'_>,
        range: Range<usize>,
        dots: &Dots<'_>,
        out: &mut [u64],
    ) {
        let Dots { tables, pairs, offsets } = *dots;
        const POINTS: usize = 1 << LEAF_LEVELS;
        let points = 1usize << leaf_levels(keys.n_bits);
        let lw = leaf_words(keys.n_bits, keys.words);
        let leaves = 1usize << (keys.n_bits - leaf_levels(keys.n_bits));
        let np = pairs.len();
        let first = range.start;
        for start in range.clone().step_by(GROUP) {
            let end = (start + GROUP).min(range.end);
            self.expand(party, keys, start..end);
            for (g, ys) in self.ys.chunks_exact(lw * leaves).enumerate() {
                let i = start + g - first;
                let c = offsets[i];
                for (o, &(a, b)) in out[i * np..(i + 1) * np].iter_mut().zip(pairs) {
                    let table = &tables[a][c..c + (leaves << leaf_levels(keys.n_bits))];
                    *o = if points == POINTS {
                        // One sum per point of a leaf (a register's eight lanes), added up at the end.
                        let mut lanes = [0u64; POINTS];
                        for (t, y) in table.chunks_exact(POINTS).zip(ys.chunks_exact(lw)) {
                            let (Ok(t), Ok(y)) = (
                                <&[u64; POINTS]>::try_from(t),
                                <&[u64; POINTS]>::try_from(&y[b * POINTS..(b + 1) * POINTS]),
                            ) else {
                                continue;
                            };
                            for p in 0..POINTS {
                                lanes[p] = lanes[p].wrapping_add(t[p].wrapping_mul(y[p]));
                            }
                        }
                        lanes.iter().fold(0u64, |a, b| a.wrapping_add(*b))
                    } else {
                        table
                            .chunks_exact(points)
                            .zip(ys.chunks_exact(lw))
                            .flat_map(|(t, y)| t.iter().zip(&y[b * points..(b + 1) * points]))
                            .fold(0u64, |acc, (t, y)| acc.wrapping_add(t.wrapping_mul(*y)))
                    };
                }
            }
        }
    }

    /// Expands the keys `range` (at most [`GROUP`]) into `self.ys`: per key, per leaf, the
    /// leaf's words.
    #[inline(always)]
    fn expand(&mut self, party: u8, keys: &TableKeys<'_>, range: Range<usize>) {
        self.walk(party, keys, range.clone());
        let (n_bits, words) = (keys.n_bits, keys.words);
        let lw = leaf_words(n_bits, words);
        leaf_inputs(&self.s, lw / 2, &mut self.leaf_buf);
        let leaves = 1usize << (n_bits - leaf_levels(n_bits));
        let pm = mask64(party);
        self.ys.resize(range.len() * leaves * lw, 0);
        let bytes = Block::slice_as_flattened(&self.leaf_buf);
        let mut xors = [0u64; LEAF_MAX];
        for (node, (ys, words)) in self.ys.chunks_exact_mut(lw).zip(bytes.chunks_exact(8 * lw)).enumerate() {
            let cws = &self.cws[(node / leaves) * lw..(node / leaves + 1) * lw];
            let s = self.s[node];
            // Word 2i of a leaf is the low half of block i plus `s ⊕ i`'s low half, 2i + 1 the high.
            for (i, x) in xors[..lw].chunks_exact_mut(2).enumerate() {
                x[0] = (s as u64) ^ i as u64;
                x[1] = (s >> 64) as u64;
            }
            let tm = mask64(self.t[node]);
            for (((y, w), x), cw) in ys.iter_mut().zip(words.chunks_exact(8)).zip(&xors[..lw]).zip(cws) {
                let v = u64::from_le_bytes(w.try_into().unwrap_or_default()) ^ x;
                *y = (v.wrapping_add(tm & cw) ^ pm).wrapping_sub(pm);
            }
        }
    }

    /// Walks the keys `range` (at most [`GROUP`]) down to their leaves: `self.s` and `self.t`
    /// hold every leaf's seed and control bit (key-major, leaves in order) and `self.cws` the
    /// keys' leaf corrections.
    #[inline(always)]
    fn walk(&mut self, party: u8, keys: &TableKeys<'_>, range: Range<usize>) {
        let (n_bits, words) = (keys.n_bits, keys.words);
        let e = leaf_levels(n_bits);
        let walked = (n_bits - e) as usize;
        self.s.clear();
        self.t.clear();
        for i in range.clone() {
            self.s.push(u128_at(keys.key(i), 0));
            self.t.push(party);
        }
        // Level by level, the nodes of every key of the group: key-major, each key's nodes in
        // path order (children `2j`, `2j + 1` of node `j`).
        for level in 0..walked {
            let nodes = 1usize << level;
            children(&self.s, &mut self.left, &mut self.right);
            self.next_s.clear();
            self.next_t.clear();
            for (g, i) in range.clone().enumerate() {
                let cw = &keys.key(i)[16 + 17 * level..16 + 17 * (level + 1)];
                let s_cw = u128_at(cw, 0);
                let (t_l, t_r) = (cw[16] & 1, (cw[16] >> 1) & 1);
                for j in g * nodes..(g + 1) * nodes {
                    let (s, t) = (self.s[j], self.t[j]);
                    let (sl, tl) = split_seed(u128_from_block(&self.left[j]) ^ s);
                    let (sr, tr) = split_seed(u128_from_block(&self.right[j]) ^ s);
                    self.next_s.push(sl ^ (mask128(t) & s_cw));
                    self.next_t.push(tl ^ (t & t_l));
                    self.next_s.push(sr ^ (mask128(t) & s_cw));
                    self.next_t.push(tr ^ (t & t_r));
                }
            }
            std::mem::swap(&mut self.s, &mut self.next_s);
            std::mem::swap(&mut self.t, &mut self.next_t);
        }
        // The leaves: `lw` words each (even: a leaf covers at least two points), two per block.
        let lw = leaf_words(n_bits, words);
        let at = 16 + 17 * walked;
        self.cws.clear();
        for i in range {
            let key = keys.key(i);
            self.cws.extend((0..lw).map(|j| u64_at(key, at + 8 * j)));
        }
    }
}

fn check_range(party: u8, keys: &TableKeys<'_>, range: &Range<usize>) -> Result<(), FssError> {
    check_party(party)?;
    if range.end > keys.len() || range.start > range.end {
        return Err(FssError::LengthMismatch { what: "key range", expected: keys.len(), got: range.end });
    }
    Ok(())
}

/// [`Expander::eval_all`] on a fresh expander (tests and one-off use).
pub fn eval_all(party: u8, keys: &TableKeys<'_>, range: Range<usize>, out: &mut [u64]) -> Result<(), FssError> {
    Expander::default().eval_all(party, keys, range, out)
}

#[cfg(target_arch = "x86_64")]
mod avx512;

pub mod onehot;

#[cfg(test)]
mod tests;
