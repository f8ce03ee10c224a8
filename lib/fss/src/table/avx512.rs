//! AVX-512 kernel of the rotated dot products: a key's leaf pass fused into the sums.
//!
//! # Why a kernel of its own
//!
//! The portable path writes every leaf's AES inputs `s ⊕ i` to a buffer, encrypts it, writes the
//! `W·8` payload words out (the blocks with `s ⊕ i` added back, the correction added under the
//! control bit, party 1's sign), then reads them again once per (table, word) pair. The
//! compiler vectorises those loops only in part (it turned the sums into gathers or scalar code
//! when they were fused). Here one leaf's payload words are made in `W` registers (four blocks,
//! eight points each: lane `p` of word `b` is leaf word `8b + p`, from block `4b + p/2`): the
//! inputs `s ⊕ i` by one XOR, ten VAES rounds under `kV`, the feed-forward and the correction,
//! and multiplied straight into one running sum per pair, so nothing is written out: per pair
//! and leaf a table load, a `vpmullq` and a `vpaddq`. Party 1's sign is applied once to each
//! sum (the dot products are linear).
//!
//! The arithmetic is that of the portable path in `super` (the tests compare both, for both
//! parties, every payload width and up to eight pairs).
//!
//! # Unsafe code
//!
//! `unsafe` appears in three places: the call into the `#[target_feature]` function after
//! run-time detection ([`key_dots`]), and the 64-byte unaligned loads and stores of
//! [`load_words`] and [`lane_sum`], which take arrays of exactly eight words.

use core::arch::x86_64::{
    __m512i, _mm512_add_epi64, _mm512_aesenc_epi128, _mm512_aesenclast_epi128, _mm512_and_si512,
    _mm512_broadcast_i32x4, _mm512_loadu_si512, _mm512_mullo_epi64, _mm512_set_epi64, _mm512_set1_epi64,
    _mm512_setzero_si512, _mm512_storeu_si512, _mm512_xor_si512,
};

use super::{MAX_PAIRS, MAX_WORDS};
use crate::mask64;
use crate::prg::{FIXED_KEYS, PrgKey};

/// Points per leaf: one register of words.
const POINTS: usize = 8;

/// Whether this CPU runs the kernel: AVX-512 F and DQ (`vpmullq`), VAES, and AES-NI with
/// SSE4.1 for the key schedule.
pub(super) fn available() -> bool {
    std::arch::is_x86_feature_detected!("avx512f")
        && std::arch::is_x86_feature_detected!("avx512dq")
        && std::arch::is_x86_feature_detected!("vaes")
        && std::arch::is_x86_feature_detected!("aes")
        && std::arch::is_x86_feature_detected!("sse4.1")
}

/// One key's leaves, as the walk left them.
pub(super) struct Leaves<'a> {
    /// Each leaf's seed.
    pub seeds: &'a [u128],
    /// Each leaf's control bit.
    pub controls: &'a [u8],
    /// The key's leaf correction words (`W·8`).
    pub cws: &'a [u64],
    /// Payload words `W`.
    pub words: usize,
}

/// The rotated dot products of one key: `out[k] = Σ_x tables[a][c + x]·y_b(x)` for pair
/// `k = (a, b)`, `y_b` party `party`'s share of payload word `b`; `false` (and nothing done)
/// where the CPU lacks the features. The caller has checked the shapes: `W ≤ 4`, at most
/// [`MAX_PAIRS`] pairs, every table holding `c + 8·leaves` entries.
#[allow(unsafe_code)]
pub(super) fn key_dots(
    party: u8,
    leaves: &Leaves<'_>,
    tables: &[&[u64]],
    pairs: &[(usize, usize)],
    c: usize,
    out: &mut [u64],
) -> bool {
    if !available() {
        return false;
    }
    // SAFETY: the CPU has AVX-512 F and DQ, VAES, AES-NI and SSE4.1 (checked just above), the
    // only target features the callee enables.
    unsafe { key_dots_avx512(party, leaves, tables, pairs, c, out) };
    true
}

/// Eight words as a register.
#[allow(unsafe_code)]
#[inline]
#[target_feature(enable = "avx512f")]
fn load_words(words: &[u64; POINTS]) -> __m512i {
    // SAFETY: reads the 64 bytes the array reference covers; the load has no alignment
    // requirement.
    unsafe { _mm512_loadu_si512(words.as_ptr().cast()) }
}

/// The sum of a register's eight lanes.
#[allow(unsafe_code)]
#[inline]
#[target_feature(enable = "avx512f")]
fn lane_sum(v: __m512i) -> u64 {
    let mut words = [0u64; POINTS];
    // SAFETY: writes the 64 bytes of `words`; the store has no alignment requirement.
    unsafe { _mm512_storeu_si512(words.as_mut_ptr().cast(), v) };
    let mut sum = 0u64;
    for w in words {
        sum = sum.wrapping_add(w);
    }
    sum
}

/// The leaf key `kV`'s round keys, each broadcast to the four lanes.
#[target_feature(enable = "avx512f,vaes,aes,sse4.1")]
fn round_keys() -> [__m512i; 11] {
    let rk = crate::batch::aesni::key_schedule(FIXED_KEYS[PrgKey::Value as usize]);
    core::array::from_fn(|i| _mm512_broadcast_i32x4(rk[i]))
}

/// `AES_kV(x) ⊕ x` on four 128-bit lanes.
#[inline]
#[target_feature(enable = "avx512f,vaes")]
fn mmo(rk: &[__m512i; 11], x: __m512i) -> __m512i {
    let mut y = _mm512_xor_si512(x, rk[0]);
    for key in &rk[1..10] {
        y = _mm512_aesenc_epi128(y, *key);
    }
    _mm512_xor_si512(_mm512_aesenclast_epi128(y, rk[10]), x)
}

#[target_feature(enable = "avx512f,avx512dq,vaes,aes,sse4.1")]
fn key_dots_avx512(
    party: u8,
    leaves: &Leaves<'_>,
    tables: &[&[u64]],
    pairs: &[(usize, usize)],
    c: usize,
    out: &mut [u64],
) {
    let w = leaves.words.min(MAX_WORDS as usize);
    let rk = round_keys();
    let zero = _mm512_setzero_si512();
    // Lane p of word b: block 4b + p/2, its low half (tweaked by the block index) for even p.
    let mut tweaks = [zero; MAX_WORDS as usize];
    let mut cws = [zero; MAX_WORDS as usize];
    for b in 0..w {
        let i = 4 * b as i64;
        tweaks[b] = _mm512_set_epi64(0, i + 3, 0, i + 2, 0, i + 1, 0, i);
        if let Some(Ok(cw)) = leaves.cws.get(b * POINTS..(b + 1) * POINTS).map(<&[u64; POINTS]>::try_from) {
            cws[b] = load_words(cw);
        }
    }
    // Each pair's table run and payload word, resolved once.
    let np = pairs.len().min(MAX_PAIRS);
    let size = leaves.seeds.len() * POINTS;
    let mut runs: [&[u64]; MAX_PAIRS] = [&[]; MAX_PAIRS];
    let mut word = [0usize; MAX_PAIRS];
    for k in 0..np {
        let (a, b) = pairs[k];
        if let Some(run) = tables.get(a).and_then(|t| t.get(c..c + size)) {
            runs[k] = run;
        }
        word[k] = b.min(w.max(1) - 1);
    }
    let mut sums = [zero; MAX_PAIRS];
    for (leaf, (&s, &t)) in leaves.seeds.iter().zip(leaves.controls).enumerate() {
        let (lo, hi) = (s as u64 as i64, (s >> 64) as u64 as i64);
        let seed = _mm512_set_epi64(hi, lo, hi, lo, hi, lo, hi, lo);
        let control = _mm512_set1_epi64(mask64(t) as i64);
        let mut y = [zero; MAX_WORDS as usize];
        for b in 0..w {
            let v = mmo(&rk, _mm512_xor_si512(seed, tweaks[b]));
            y[b] = _mm512_add_epi64(v, _mm512_and_si512(control, cws[b]));
        }
        let at = leaf * POINTS;
        for k in 0..np {
            let Some(Ok(run)) = runs[k].get(at..at + POINTS).map(<&[u64; POINTS]>::try_from) else { continue };
            sums[k] = _mm512_add_epi64(sums[k], _mm512_mullo_epi64(load_words(run), y[word[k]]));
        }
    }
    let pm = mask64(party);
    for (o, sum) in out.iter_mut().zip(&sums[..np]) {
        *o = (lane_sum(*sum) ^ pm).wrapping_sub(pm);
    }
}
