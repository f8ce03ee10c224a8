//! AES-NI kernels of [`super::eval_range`] and of key generation ([`Keygen`], behind
//! [`super::keygen_into`] and [`super::keygen_into_par`]) (x86-64 only; used when the CPU has
//! AES-NI and SSE4.1, and AVX for key generation, else the portable tiled paths run).
//!
//! # Why a kernel of its own
//!
//! The portable path walks tiles of keys level by level and hands each level's blocks to the
//! `aes` crate's `encrypt_blocks`, one call per fixed key. That needs the blocks grouped by key:
//! per level every seed is scattered into a "left" or "right" buffer, the value blocks into a
//! third, and the tile's state and correction words (CWs) live in arrays that are written and
//! re-read every level. Measured on a 2-core AMD EPYC VM, that bookkeeping took about twice the
//! time of the AES itself.
//!
//! Here a group of [`G`] keys walks its trees *key-major*, its state in a few fixed-size arrays
//! (seeds and running sums in SSE registers): per level each lane computes its child block (the
//! round keys of `kL` or `kR` picked per lane by its path bit, a table lookup per round instead
//! of a scatter) and its value block (`kV`), round by round across the lanes, so `2G`
//! independent AES blocks are in flight. Two groups alternate ([`pair`]): the AES of one group
//! runs on the AES units while the out-of-order core does the other group's CW arithmetic, which
//! otherwise ran after the AES rather than beside it. The CWs are read straight from each key's
//! serialised bytes (no decode copy), and the next pair's keys are prefetched a slice per level:
//! `4G` interleaved forward streams are more than the hardware prefetchers follow, and without
//! it a million-key batch ran about 40 % slower than one that fits in the caches.
//!
//! Measured on that VM (AES-NI, about 1.9 ns per block in `encrypt_blocks`), one-key-per-point
//! evaluation of a million keys at `n = 63` went from about 800 to about 425 ns per key for DCF
//! (29 % → 56 % of the raw-AES bound of `2n` blocks per key) and from about 830 to about 465 ns
//! for DCF2 (29 % → 51 %); `G` = 7 measured best of 4…12.
//!
//! The PRG is exactly the one of [`crate::prg`]: the same fixed keys, expanded here with
//! `AESKEYGENASSIST` into the standard AES-128 key schedule, and the same MMO feed-forward; the
//! tests check the kernel against the `aes` crate block by block and against the portable path
//! key by key.
//!
//! # Key generation
//!
//! The dealer's side had the same problem: per level the portable `TileGen` copies every seed
//! into three or four AES buffers (one per fixed key), hands them to `encrypt_blocks`, reads them
//! back, gathers the CWs into level-major arrays and transposes them into the keys at the end;
//! about 0.33 of the raw-AES bound (`6n` blocks per DCF pair, `8n + 2` per DCF2 pair).
//! [`Keygen`] walks one key pair per group instead (both parties' seeds in SSE registers, every
//! seed's left, right and value blocks with their fixed keys, 6 or 8 independent blocks), two
//! groups alternating as in evaluation, and writes each level's seed and value CWs straight into
//! party 0's serialised key (a chunk of [`GEN_CHUNK`] keys, still cached when the caller copies it into
//! both parties' buffers and patches with party 1's root seeds). The arithmetic is that of
//! `TileGen`, with `V_α ← V_α − Δv^Keep + (−1)^{t_1}·V_CW` simplified to
//! `Δv^Lose − Δv^Keep [+ β]` (the two signs cancel); the tests compare the bytes with the
//! portable path's for random seeds. Measured on the VM above at `n = 63` with the keys cached,
//! about 0.65 of the bound for DCF and 0.68 for DCF2; a million keys into reused buffers (the
//! summary bench) 0.55 and 0.57 (1.31 and 1.68 µs per pair, from 2.12 and 2.73), the rest being
//! the writes of both parties' keys (3 to 4 KiB per pair) to memory.
//!
//! # Unsafe code
//!
//! The module allows `unsafe_code` in three places only: the calls into the `#[target_feature]`
//! functions after run-time feature detection ([`eval_range`], [`Keygen::with_vaes`] and
//! [`Keygen::run`], where a `Keygen` exists only after the detection), and the cache hint
//! `_mm_prefetch` ([`prefetch`]), which takes an address (of a live slice) but never
//! dereferences it. Everything else is safe Rust: the other intrinsics take no pointers, and key
//! bytes are read through bounds-checked slices.

use core::arch::x86_64::{
    __m128i, __m256i, _MM_HINT_T0, _mm_add_epi64, _mm_aesenc_si128, _mm_aesenclast_si128, _mm_aeskeygenassist_si128,
    _mm_and_si128, _mm_andnot_si128, _mm_cvtsi128_si64, _mm_extract_epi64, _mm_prefetch, _mm_set_epi64x,
    _mm_set1_epi64x, _mm_setzero_si128, _mm_shuffle_epi32, _mm_slli_si128, _mm_sub_epi64, _mm_xor_si128,
    _mm256_aesenc_epi128, _mm256_aesenclast_epi128, _mm256_broadcastsi128_si256, _mm256_castsi256_si128,
    _mm256_extracti128_si256, _mm256_set_epi64x, _mm256_set_m128i, _mm256_setzero_si256, _mm256_xor_si256,
};

use std::marker::PhantomData;

use super::{KeyBatch, Layout, Payload, SEEDS, split_ctrl};
use crate::prg::FIXED_KEYS;

mod eval;
mod keygen;
#[cfg(test)]
mod tests;

use eval::*;
use keygen::vaes_available;
pub(super) use keygen::{GEN_CHUNK, Keygen};

/// Keys per group: `2G` independent AES blocks per call of [`aes_lanes`] (AES-NI needs about 8
/// in flight to hide its latency); two groups alternate. 7 measured best (6 and 8 within a few
/// per cent, 12 much slower: the state no longer fits the registers).
const G: usize = 7;

/// Whether this CPU can run the kernel.
pub(super) fn available() -> bool {
    std::arch::is_x86_feature_detected!("aes") && std::arch::is_x86_feature_detected!("sse4.1")
}

/// Runs [`super::eval_range`] on the AES-NI kernel if the CPU supports it; returns `false` (and
/// does nothing) if not.
#[allow(unsafe_code)]
pub(super) fn eval_range<P: Payload>(party: u8, b: &KeyBatch<'_, P>, first: usize, xs: &[u64], out: &mut [P]) -> bool {
    eval_range_with(party, b, first, xs, out, true)
}

/// [`eval_range`], with VAES only if `vaes` and the CPU has it (tests run both paths).
#[allow(unsafe_code)]
pub(super) fn eval_range_with<P: Payload>(
    party: u8,
    b: &KeyBatch<'_, P>,
    first: usize,
    xs: &[u64],
    out: &mut [P],
    vaes: bool,
) -> bool {
    if !available() {
        return false;
    }
    if vaes && vaes_available() && std::arch::is_x86_feature_detected!("avx") {
        // SAFETY: the CPU supports AES-NI, SSE4.1, AVX, AVX2 and VAES (checked just above), the
        // only target features the callee enables.
        unsafe { eval_range_vaes(party, b, first, xs, out) };
    } else {
        // SAFETY: the CPU supports AES-NI and SSE4.1 (checked just above), the only target
        // features the callee enables.
        unsafe { eval_range_ni(party, b, first, xs, out) };
    }
    true
}

/// Asks the CPU to bring every cache line of `bytes` into L1 (a hint: no loads, no faults).
#[allow(unsafe_code)]
#[inline]
fn prefetch(bytes: &[u8]) {
    for line in bytes.chunks(64) {
        // SAFETY: `_mm_prefetch` only hints the cache about an address (here inside a live
        // slice); it never dereferences it architecturally and cannot fault.
        unsafe { _mm_prefetch::<_MM_HINT_T0>(line.as_ptr().cast::<i8>()) };
    }
}

/// The AES-128 key schedules of the three fixed keys, indexed by [`crate::prg::PrgKey`].
struct RoundKeys([[__m128i; 11]; 3]);

/// `u128` (little-endian block) → SSE register.
#[inline]
#[target_feature(enable = "aes,sse4.1")]
fn to_m(v: u128) -> __m128i {
    _mm_set_epi64x((v >> 64) as i64, v as i64)
}

/// SSE register → `u128` (little-endian block).
#[inline]
#[target_feature(enable = "aes,sse4.1")]
fn from_m(m: __m128i) -> u128 {
    u128::from(_mm_cvtsi128_si64(m) as u64) | (u128::from(_mm_extract_epi64::<1>(m) as u64) << 64)
}

/// One step of the AES-128 key expansion (FIPS 197 §5.2) given `AESKEYGENASSIST`'s output.
#[inline]
#[target_feature(enable = "aes,sse4.1")]
fn expand_step(k: __m128i, assist: __m128i) -> __m128i {
    let a = _mm_shuffle_epi32::<0xff>(assist);
    let k = _mm_xor_si128(k, _mm_slli_si128::<4>(k));
    let k = _mm_xor_si128(k, _mm_slli_si128::<4>(k));
    let k = _mm_xor_si128(k, _mm_slli_si128::<4>(k));
    _mm_xor_si128(k, a)
}

/// The AES-128 encryption key schedule of `key`.
#[target_feature(enable = "aes,sse4.1")]
pub(crate) fn key_schedule(key: [u8; 16]) -> [__m128i; 11] {
    let mut rk = [_mm_setzero_si128(); 11];
    let mut k = to_m(u128::from_le_bytes(key));
    rk[0] = k;
    macro_rules! step {
        ($i:expr, $rcon:expr) => {
            k = expand_step(k, _mm_aeskeygenassist_si128::<$rcon>(k));
            rk[$i] = k;
        };
    }
    step!(1, 0x01);
    step!(2, 0x02);
    step!(3, 0x04);
    step!(4, 0x08);
    step!(5, 0x10);
    step!(6, 0x20);
    step!(7, 0x40);
    step!(8, 0x80);
    step!(9, 0x1b);
    step!(10, 0x36);
    rk
}

#[target_feature(enable = "aes,sse4.1")]
fn round_keys() -> RoundKeys {
    let [l, r, v] = FIXED_KEYS;
    RoundKeys([key_schedule(l), key_schedule(r), key_schedule(v)])
}
