//! AVX-512 kernel of the rotated dot products: one key's walk, leaf expansion and sums in
//! registers.
//!
//! # Why a kernel of its own
//!
//! The portable path walks a group of keys level by level through buffers (the children's AES
//! batched by the `aes` crate, the seed and control-bit arithmetic one 128-bit word at a time),
//! writes every leaf's AES inputs `s ⊕ i` to a buffer, encrypts it, writes the `W·8` payload
//! words out (the blocks with `s ⊕ i` added back, the correction added under the control bit,
//! party 1's sign), then reads them again once per (table, word) pair. Here, key by key:
//!
//! - **The walk** holds four nodes in a register (one per 128-bit lane, the control bit as an
//!   all-ones or all-zeros lane): per level and register, ten VAES rounds under `kL` and under
//!   `kR`, the feed-forward, the control bits read off bit 0, the corrections under the parent's
//!   control bit, and the children interleaved into path order by two permutes.
//! - **The leaves**: a leaf's payload words are `W` registers of four blocks (eight points each:
//!   lane `p` of word `b` is leaf word `8b + p`, from block `4b + p/2`): the inputs `s ⊕ i` by one
//!   XOR, ten VAES rounds under `kV`, the feed-forward, the correction under the control bit.
//! - **The sums**: per pair and leaf a table load, a `vpmullq` and a `vpaddq`; nothing is written
//!   out. Party 1's sign is applied once to each sum (the dot products are linear). The gates'
//!   two shapes (lookups, roots) have instances with the words, pairs and pairs' words constant,
//!   so words and sums stay in registers: 10% faster than the general instance, which then
//!   spills them and bounds-checks each pair. The leaves' AES is then most of the time; running
//!   the four leaves of a quad through it in lockstep measured no faster (the out-of-order core
//!   already overlaps them).
//!
//! The arithmetic is that of the portable path in `super` (the tests compare both, for both
//! parties, every payload width, domains of 3 to 10 bits and up to eight pairs).
//!
//! # Unsafe code
//!
//! `unsafe` appears in three places: the calls into the `#[target_feature]` functions, made
//! only through a [`Kernel`], which exists only where the CPU has the features; and the 64-byte
//! unaligned loads and stores of [`crate::simd`] and [`load_words`], which take arrays of exactly
//! 64 bytes.

use core::arch::x86_64::{
    __m512i, _MM_PERM_BABA, _mm512_add_epi64, _mm512_and_si512, _mm512_andnot_si512, _mm512_broadcast_i32x4,
    _mm512_loadu_si512, _mm512_mullo_epi64, _mm512_permutex2var_epi64, _mm512_reduce_add_epi64, _mm512_set_epi64,
    _mm512_set1_epi64, _mm512_setzero_si512, _mm512_shuffle_epi32, _mm512_shuffle_i64x2, _mm512_sub_epi64,
    _mm512_xor_si512,
};

use super::{MAX_PAIRS, MAX_WORDS};
use crate::mask64;
use crate::prg::{FIXED_KEYS, PrgKey};
use crate::simd::{aes4, load, store};

/// Points per leaf: one register of words.
const POINTS: usize = 8;

/// Four tree nodes: their seeds, and their control bits as all-ones or all-zeros lanes.
type Quad = ([u8; 64], [u8; 64]);

/// The kernel, with the three fixed keys' round keys; exists only where the CPU runs it.
pub(super) struct Kernel {
    /// `kL`, `kR`, `kV`, each round key broadcast to the four lanes.
    rk: [[__m512i; 11]; 3],
}

/// The levels of one key's tree, reused from key to key.
pub(super) struct Scratch {
    nodes: Vec<Quad>,
    next: Vec<Quad>,
}

impl Scratch {
    pub(super) fn new() -> Scratch {
        Scratch { nodes: Vec::new(), next: Vec::new() }
    }
}

/// What one key's sums need: the tables, the pairs, and where its rotated run starts.
pub(super) struct KeyDots<'a> {
    /// Party 0 or 1.
    pub party: u8,
    /// The key's bytes.
    pub key: &'a [u8],
    /// Levels walked (`n − 3`).
    pub walked: usize,
    /// Payload words `W`.
    pub words: usize,
    /// The tables (see [`super::Dots`]).
    pub tables: &'a [&'a [u64]],
    /// `(table, payload word)` per sum.
    pub pairs: &'a [(usize, usize)],
    /// The start of the key's rotated run in every table.
    pub offset: usize,
}

impl Kernel {
    /// The kernel, where this CPU runs it: AVX-512 F and DQ (`vpmullq`), VAES, and AES-NI with
    /// SSE4.1 for the key schedule.
    #[allow(unsafe_code)]
    pub(super) fn new() -> Option<Kernel> {
        let available = std::arch::is_x86_feature_detected!("avx512f")
            && std::arch::is_x86_feature_detected!("avx512dq")
            && std::arch::is_x86_feature_detected!("vaes")
            && std::arch::is_x86_feature_detected!("aes")
            && std::arch::is_x86_feature_detected!("sse4.1");
        // SAFETY: the CPU has the features `round_keys` enables (checked just above).
        available.then(|| Kernel { rk: unsafe { round_keys() } })
    }

    /// One key's rotated dot products into `out` (one per pair). The caller has checked the
    /// shapes: the key's length, `W ≤ 4`, at most [`MAX_PAIRS`] pairs, every table holding
    /// `offset + 2^n` entries.
    #[allow(unsafe_code)]
    pub(super) fn key_dots(&self, job: &KeyDots<'_>, scratch: &mut Scratch, out: &mut [u64]) {
        // SAFETY: a `Kernel` exists only where the CPU has AVX-512 F and DQ, VAES, AES-NI and
        // SSE4.1 (see [`Kernel::new`]), the only target features the callee enables.
        unsafe { key_dots_avx512(&self.rk, job, scratch, out) }
    }
}

/// The three fixed keys' round keys, each broadcast to the four lanes.
#[target_feature(enable = "avx512f,vaes,aes,sse4.1")]
fn round_keys() -> [[__m512i; 11]; 3] {
    [PrgKey::Left, PrgKey::Right, PrgKey::Value].map(|k| {
        let rk = crate::batch::aesni::key_schedule(FIXED_KEYS[k as usize]);
        core::array::from_fn(|i| _mm512_broadcast_i32x4(rk[i]))
    })
}

/// Eight words as a register.
#[allow(unsafe_code)]
#[inline]
#[target_feature(enable = "avx512f")]
fn load_words(words: &[u64; POINTS]) -> __m512i {
    // SAFETY: reads the 64 bytes the array reference covers; no alignment requirement.
    unsafe { _mm512_loadu_si512(words.as_ptr().cast()) }
}

/// The sum of a register's eight lanes.
#[inline]
#[target_feature(enable = "avx512f")]
fn lane_sum(v: __m512i) -> u64 {
    // Wrapping, as the ring's addition is.
    _mm512_reduce_add_epi64(v) as u64
}

/// `AES_k(x) ⊕ x` on four 128-bit lanes.
#[inline]
#[target_feature(enable = "avx512f,vaes")]
fn mmo(rk: &[__m512i; 11], x: __m512i) -> __m512i {
    _mm512_xor_si512(aes4(rk, x), x)
}

/// All ones in the lanes whose bit 0 is set: a control-bit mask.
#[inline]
#[target_feature(enable = "avx512f")]
fn control_bits(s: __m512i) -> __m512i {
    // The low half of each lane in both halves, bit 0 of each, negated.
    let bit = _mm512_and_si512(_mm512_shuffle_epi32::<_MM_PERM_BABA>(s), _mm512_set1_epi64(1));
    _mm512_sub_epi64(_mm512_setzero_si512(), bit)
}

/// Lane `k` of `v` in all four lanes.
#[inline]
#[target_feature(enable = "avx512f")]
fn lane(v: __m512i, k: usize) -> __m512i {
    match k {
        0 => _mm512_shuffle_i64x2::<0x00>(v, v),
        1 => _mm512_shuffle_i64x2::<0x55>(v, v),
        2 => _mm512_shuffle_i64x2::<0xAA>(v, v),
        _ => _mm512_shuffle_i64x2::<0xFF>(v, v),
    }
}

/// A 128-bit word in all four lanes.
#[inline]
#[target_feature(enable = "avx512f")]
fn broadcast(w: u128) -> __m512i {
    let (lo, hi) = (w as u64 as i64, (w >> 64) as u64 as i64);
    _mm512_set_epi64(hi, lo, hi, lo, hi, lo, hi, lo)
}

/// One side's children of four nodes (seeds `s`, control masks `t`): the seed and control-bit
/// halves of `AES_k(s) ⊕ s`, corrected under the parent's control bit.
#[inline]
#[target_feature(enable = "avx512f,vaes")]
fn child(
    key: &[__m512i; 11],
    s: __m512i,
    t: __m512i,
    correction: __m512i,
    t_cw: __m512i,
    bit0: __m512i,
) -> (__m512i, __m512i) {
    let o = mmo(key, s);
    let seed = _mm512_xor_si512(_mm512_andnot_si512(bit0, o), correction);
    let control = _mm512_xor_si512(control_bits(o), _mm512_and_si512(t, t_cw));
    (seed, control)
}

/// Walks the key to its leaves: `scratch.nodes` then holds the `2^walked` leaves in path order,
/// four to a [`Quad`].
#[inline]
#[target_feature(enable = "avx512f,avx512dq,vaes")]
fn walk(rk: &[[__m512i; 11]; 3], job: &KeyDots<'_>, scratch: &mut Scratch) {
    // Bit 0 of each lane: the control bit, cleared from the child seeds.
    let one = _mm512_set_epi64(0, 1, 0, 1, 0, 1, 0, 1);
    let root = u128::from_le_bytes(job.key.get(..16).and_then(|b| b.try_into().ok()).unwrap_or_default());
    let mut seeds = [0u8; 64];
    seeds[..16].copy_from_slice(&root.to_le_bytes());
    let mut controls = [0u8; 64];
    if job.party == 1 {
        controls[..16].fill(0xFF);
    }
    scratch.nodes.clear();
    scratch.nodes.push((seeds, controls));
    // Children 2j, 2j + 1 of node j: lanes (L0, R0, L1, R1) and (L2, R2, L3, R3).
    let low_half = _mm512_set_epi64(11, 10, 3, 2, 9, 8, 1, 0);
    let high_half = _mm512_set_epi64(15, 14, 7, 6, 13, 12, 5, 4);
    for level in 0..job.walked {
        let at = 16 + 17 * level;
        let Some(cw) = job.key.get(at..at + 17) else { return };
        let s_cw = broadcast(u128::from_le_bytes(cw[..16].try_into().unwrap_or_default()));
        let t_l = _mm512_set1_epi64(mask64(cw[16] & 1) as i64);
        let t_r = _mm512_set1_epi64(mask64((cw[16] >> 1) & 1) as i64);
        let nodes = 1usize << level;
        scratch.next.clear();
        for (s, t) in scratch.nodes.iter().take(nodes.div_ceil(4)) {
            let (s, t) = (load(s), load(t));
            let correction = _mm512_and_si512(t, s_cw);
            let (ls, lt) = child(&rk[0], s, t, correction, t_l, one);
            let (rs, rt) = child(&rk[1], s, t, correction, t_r, one);
            for idx in [low_half, high_half] {
                let (mut s2, mut t2) = ([0u8; 64], [0u8; 64]);
                store(_mm512_permutex2var_epi64(ls, idx, rs), &mut s2);
                store(_mm512_permutex2var_epi64(lt, idx, rt), &mut t2);
                scratch.next.push((s2, t2));
            }
        }
        std::mem::swap(&mut scratch.nodes, &mut scratch.next);
    }
}

/// The leaves' payload words and their products with the tables.
struct Leaves<'a> {
    /// `kV`'s round keys.
    rk: &'a [__m512i; 11],
    /// Word `b`'s block indices, XORed into the seed.
    tweaks: &'a [__m512i; MAX_WORDS as usize],
    /// Word `b`'s correction, added under the control bit.
    cws: &'a [__m512i; MAX_WORDS as usize],
    /// Each pair's table run (empty past the pairs in use).
    runs: &'a [&'a [u64]; MAX_PAIRS],
    /// Each pair's payload word.
    word: &'a [usize; MAX_PAIRS],
    /// Leaves of the walked tree.
    leaves: usize,
}

/// Pairs' payload words, four bits each, pair 0 lowest.
fn packed_words(word: &[usize]) -> u32 {
    word.iter().enumerate().fold(0, |acc, (p, &b)| acc | ((b as u32 & 0xF) << (4 * p)))
}

/// A lookup's pairs' words (see `mpcflow_fss_gates`' lookup gate): 0, 0, 0, 1, 1, 2.
const LOOKUP_WORDS: u32 = 0x21_1000;

/// A root's pairs' words: 0, 0, 1.
const ROOT_WORDS: u32 = 0x100;

impl Leaves<'_> {
    /// A leaf's `W` payload words: `AES_kV(s ⊕ i) ⊕ (s ⊕ i)` for its blocks `i`, plus the
    /// correction under the control bit.
    #[inline]
    #[target_feature(enable = "avx512f,vaes")]
    fn leaf_words<const W: usize>(&self, seed: __m512i, control: __m512i) -> [__m512i; W] {
        core::array::from_fn(|b| {
            let v = mmo(self.rk, _mm512_xor_si512(seed, self.tweaks[b]));
            _mm512_add_epi64(v, _mm512_and_si512(control, self.cws[b]))
        })
    }

    /// Adds every leaf's products into the first `P` sums, pair `p` from payload word
    /// `(WORDS >> 4p) & 0xF`. With `W`, `P` and the words constant the sums and words stay in
    /// registers. Pairs whose table runs are short are left at zero (the caller checked them).
    #[inline]
    #[target_feature(enable = "avx512f,avx512dq,vaes")]
    fn sums_fixed<const W: usize, const P: usize, const WORDS: u32>(
        &self,
        nodes: &[Quad],
        out: &mut [__m512i; MAX_PAIRS],
    ) {
        let need = self.leaves * POINTS;
        let runs: [&[[u64; POINTS]]; P] =
            core::array::from_fn(|p| self.runs[p].get(..need).map_or(&[][..], |r| r.as_chunks::<POINTS>().0));
        if runs.iter().any(|r| r.len() < self.leaves) {
            return;
        }
        let mut sums = [_mm512_setzero_si512(); P];
        self.each_leaf(nodes, |leaf, seed, control| {
            let y = self.leaf_words::<W>(seed, control);
            for (p, sum) in sums.iter_mut().enumerate() {
                let b = ((WORDS >> (4 * p)) & 0xF) as usize;
                if let (Some(run), Some(y)) = (runs[p].get(leaf), y.get(b)) {
                    *sum = _mm512_add_epi64(*sum, _mm512_mullo_epi64(load_words(run), *y));
                }
            }
        });
        out[..P].copy_from_slice(&sums);
    }

    /// Calls `f(leaf, seed, control)` for every leaf of the walked tree, in path order.
    #[inline]
    #[target_feature(enable = "avx512f")]
    fn each_leaf(&self, nodes: &[Quad], mut f: impl FnMut(usize, __m512i, __m512i)) {
        for (q, (s, t)) in nodes.iter().enumerate() {
            let (s, t) = (load(s), load(t));
            for k in 0..4 {
                let leaf = 4 * q + k;
                if leaf >= self.leaves {
                    return;
                }
                f(leaf, lane(s, k), lane(t, k));
            }
        }
    }

    /// [`Leaves::sums_fixed`] for any shape: `np` pairs, `MAX_WORDS` words computed whatever
    /// the key's width (those past it are never read).
    #[inline]
    #[target_feature(enable = "avx512f,avx512dq,vaes")]
    fn sums_any(&self, nodes: &[Quad], np: usize, sums: &mut [__m512i; MAX_PAIRS]) {
        self.each_leaf(nodes, |leaf, seed, control| {
            let y = self.leaf_words::<{ MAX_WORDS as usize }>(seed, control);
            let at = leaf * POINTS;
            for p in 0..np {
                let Some(Ok(run)) = self.runs[p].get(at..at + POINTS).map(<&[u64; POINTS]>::try_from) else {
                    continue;
                };
                if let (Some(sum), Some(y)) = (sums.get_mut(p), y.get(self.word[p])) {
                    *sum = _mm512_add_epi64(*sum, _mm512_mullo_epi64(load_words(run), *y));
                }
            }
        });
    }
}

#[target_feature(enable = "avx512f,avx512dq,vaes,aes,sse4.1")]
fn key_dots_avx512(rk: &[[__m512i; 11]; 3], job: &KeyDots<'_>, scratch: &mut Scratch, out: &mut [u64]) {
    walk(rk, job, scratch);
    let w = job.words.min(MAX_WORDS as usize);
    let leaves = 1usize << job.walked;
    let zero = _mm512_setzero_si512();
    // Lane p of word b: block 4b + p/2, its low half (tweaked by the block index) for even p.
    let at = 16 + 17 * job.walked;
    let mut tweaks = [zero; MAX_WORDS as usize];
    let mut cws = [zero; MAX_WORDS as usize];
    for b in 0..w {
        let i = 4 * b as i64;
        tweaks[b] = _mm512_set_epi64(0, i + 3, 0, i + 2, 0, i + 1, 0, i);
        if let Some(Ok(cw)) = job.key.get(at + 64 * b..at + 64 * (b + 1)).map(<&[u8; 64]>::try_from) {
            cws[b] = load(cw);
        }
    }
    // Each pair's table run and payload word, resolved once.
    let np = job.pairs.len().min(MAX_PAIRS);
    let size = leaves * POINTS;
    let mut runs: [&[u64]; MAX_PAIRS] = [&[]; MAX_PAIRS];
    let mut word = [0usize; MAX_PAIRS];
    for k in 0..np {
        let (a, b) = job.pairs[k];
        if let Some(run) = job.tables.get(a).and_then(|t| t.get(job.offset..job.offset + size)) {
            runs[k] = run;
        }
        word[k] = b.min(w.max(1) - 1);
    }
    let mut sums = [zero; MAX_PAIRS];
    let leaves_of = Leaves { rk: &rk[2], tweaks: &tweaks, cws: &cws, runs: &runs, word: &word, leaves };
    let nodes = &scratch.nodes;
    // The gates' shapes get instances whose sums and words live in registers: lookups (three
    // words, six pairs on words 0, 0, 0, 1, 1, 2) and roots (two words, three pairs on 0, 0, 1).
    // Any other goes through the general one.
    let words = packed_words(&word[..np]);
    match (w, np, words) {
        (3, 6, LOOKUP_WORDS) => leaves_of.sums_fixed::<3, 6, LOOKUP_WORDS>(nodes, &mut sums),
        (2, 3, ROOT_WORDS) => leaves_of.sums_fixed::<2, 3, ROOT_WORDS>(nodes, &mut sums),
        _ => leaves_of.sums_any(nodes, np, &mut sums),
    }
    let pm = mask64(job.party);
    for (o, sum) in out.iter_mut().zip(&sums[..np]) {
        *o = (lane_sum(*sum) ^ pm).wrapping_sub(pm);
    }
}
