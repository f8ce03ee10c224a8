//! AVX-512 kernels of half-tree evaluation and key generation: four keys per 512-bit register,
//! the hash's AES as 512-bit VAES instructions, the tree arithmetic in the same registers.
//!
//! # Why a kernel of its own
//!
//! The portable path hands each level's seeds to the `aes` crate and does the rest of a level
//! (`σ`, the feed-forward, the correction by the control bit, the child by the path bit, the
//! comparison bit) one 128-bit word at a time: about 25 scalar instructions per key and level
//! around one AES block, measured at 3.6 ns per key and level on the 2-core Sapphire Rapids VM
//! where a batched AES block costs about 1 ns. Here four keys share a register: per level the
//! AES is ten VAES rounds on four blocks at once, and the rest a handful of vector
//! instructions for the four (see "Mask registers in the evaluation" for their count).
//!
//! # Level by level over a tile
//!
//! Both kernels walk a whole tile (128 keys, 32 registers, their seeds in L1) one level at a
//! time: each level reads (or writes) one contiguous row of correction words, and the 32
//! registers are independent AES chains, which the core overlaps. They first walked a group
//! of 16 keys (four registers) to its leaves before the next: four chains could not hide the
//! ten rounds' latency, and a group's reads and writes jumped from row to row. Measured on 1M
//! keys of 63 bits, one thread: evaluation 86 → 51 ms, key generation (into written buffers,
//! both keys) 230 → 101 ms; batched AES alone runs at 0.30 ns a block.
//!
//! # Mask registers in the evaluation
//!
//! On Intel's server cores 512-bit instructions issue on two ports only (0 and 5), and the
//! VAES rounds take port 0. Evaluation first spent 17 vector instructions per register and
//! level around its 10 AES rounds (σ, the two control-bit masks made as vectors, the path bit
//! by shift, AND and subtraction, the comparison bit in a vector), so those two ports, not the
//! AES, bounded it. The walk now makes the control bits, the path bit and the comparison bits
//! as bit masks (`vptestmq` makes them, masked XORs apply them; between uses the compiler
//! keeps them where it likes, mask or general registers, at the cost of a few mask moves) and
//! gathers σ and both corrections off the AES output's path: 8 vector instructions per
//! register and level.
//! Criterion medians on the Emerald Rapids VM, same session: 1M evaluations from cache
//! 87.6 → 74.0 ms, `eval_many` (one thread, 1M keys from memory) 108 → 95 ms, on two threads
//! 65.5 → 54 ms. The same rewrite of key generation (25 → 18 such instructions around 20 AES
//! rounds) measured no faster (196 against 193–198 ms), so key generation keeps its form.
//!
//! # Prefetching the correction words
//!
//! A million keys of 63 bits are 912 MB per party, read (or written) once, a 2 KB row per tile
//! and level. The hardware prefetchers do not keep up with that stream: on a 2-core Emerald
//! Rapids VM, evaluation of 1M keys on one thread took 147 ms, against 90 ms for as many
//! evaluations of 8192 keys that stay in cache. So evaluation prefetches each row
//! [`PREFETCH_LEVELS`] levels ahead (a line per register; the next tile's first rows during
//! the last levels and the leaves). Same machine, criterion medians: evaluation 147 → 94 ms on
//! one thread, 81 → 49 ms on two; 2 and 8 levels ahead were 3 to 5% slower than 4 then. End
//! to end, `bench relu:1000000` went from 0.42–0.43 to 0.30–0.32 s in interleaved runs. Once
//! the walk took mask registers (above), 8 levels ahead beat 4 on one thread (96–100 against
//! 104–105 ms in interleaved criterion runs; 10 and 12 no better than 8), but not with both
//! parties evaluating at once: `bench` online, ReLU 0.161–0.165 s against 0.153–0.158, the
//! hospital statistics 0.51–0.52 against 0.46–0.47. So it stays at 4.
//!
//! # Streaming the keys out
//!
//! Key generation writes both keys, 2 × 928 MB for a million, that nobody reads for a while.
//! Ordinary stores read each line before writing it (for ownership): on that VM writing
//! 2 × 928 MB took 249 ms with ordinary 64-byte stores and 85 ms with non-temporal ones. So a
//! tile's keys go out through [`RowStream`]s, one per party's key bytes and tile (the rows are
//! contiguous, so only the tile's two ends are partial lines), whatever their alignment.
//! Criterion medians, one thread, into buffers written before: 216 → 203 ms (keys at the
//! offset a `Vec` gives), 171 ms where the keys start on a line. A tile whose key count is not
//! a multiple of four (rows not whole registers: a batch's last tile at most) is stored
//! register by register after a read prefetch [`PREFETCH_LEVELS`] rows ahead (244 → 213 ms
//! when every tile was written so).
//!
//! The arithmetic is that of the portable path in `super` (the tests compare both, key bytes
//! and outputs, on random inputs); the hash key's schedule is the standard AES-128 expansion
//! ([`crate::batch::aesni::key_schedule`]), checked against the `aes` crate by the tests.
//!
//! # Unsafe code
//!
//! `unsafe` appears in two places: the calls into the `#[target_feature]` functions after
//! run-time detection ([`eval_tile`], [`keygen_tile`]), and [`crate::simd`]: the 64-byte
//! unaligned loads and stores and the byte-masked stores, which take array references of
//! exactly 64 bytes, the non-temporal stores, which also check the line's alignment, and the
//! `sfence` a [`RowStream`] runs when it is dropped.

use core::arch::x86_64::{
    __m512i, _MM_PERM_BABA, _MM_PERM_BADC, _mm_set_epi64x, _mm512_and_si512, _mm512_broadcast_i32x4,
    _mm512_mask_xor_epi64, _mm512_maskz_mov_epi64, _mm512_set_epi64, _mm512_set1_epi64, _mm512_setzero_si512,
    _mm512_shuffle_epi32, _mm512_srl_epi64, _mm512_sub_epi64, _mm512_ternarylogic_epi64, _mm512_test_epi64_mask,
    _mm512_xor_si512,
};

use super::{HASH_KEY, levels, truth_table};
use crate::domain_mask;
use crate::simd::{RowStream, aes4, load, prefetch, prefetch_at, store};

/// `a ^ (b & c)` as a `vpternlogq` truth table.
const XOR_AND: i32 = 0x78;
/// `a ^ (b & !c)`.
const XOR_AND_NOT_C: i32 = 0xB4;

/// Whether this CPU runs the kernels: AVX-512 F and VAES (and AES-NI for the key schedule).
pub(super) fn available() -> bool {
    std::arch::is_x86_feature_detected!("avx512f")
        && std::arch::is_x86_feature_detected!("vaes")
        && std::arch::is_x86_feature_detected!("aes")
        && std::arch::is_x86_feature_detected!("sse4.1")
}

/// Whether key generation runs here: [`available`], and the byte-masked stores and byte
/// permutation of [`RowStream`] (every CPU with AVX-512 and VAES so far).
pub(super) fn keygen_available() -> bool {
    available() && crate::simd::streams()
}

/// Evaluates one tile (`k` keys, `bytes` its rows; `next` the bytes after it, whose first rows
/// are prefetched during its last levels) at every row of `points` (each `k` points) into the
/// matching row of `outs`; `false` (and nothing done) where the CPU lacks the features. The
/// levels above the highest bit in which any two of the tile's points differ are walked once
/// and the walk forks below them (see [`super::eval_points_par`]).
#[allow(unsafe_code)]
pub(super) fn eval_tile(
    bytes: &[u8],
    next: &[u8],
    k: usize,
    n: u32,
    points: &[&[u64]],
    outs: &mut [&mut [u8]],
) -> bool {
    if !available() {
        return false;
    }
    // SAFETY: the CPU has AVX-512 F, VAES, AES-NI and SSE4.1 (checked just above), the only
    // target features the callee enables.
    unsafe { eval_tile_avx512(bytes, next, k, n, points, outs) };
    true
}

/// Generates one tile of key pairs (`roots` and `deltas` drawn by the caller) into the rows of
/// `d0` and `d1`; `false` (and nothing done) where the CPU lacks the features.
#[allow(unsafe_code)]
pub(super) fn keygen_tile(
    alphas: &[u64],
    n: u32,
    roots: &[u128],
    deltas: &[u128],
    d0: &mut [u8],
    d1: &mut [u8],
) -> bool {
    if !keygen_available() {
        return false;
    }
    // SAFETY: the CPU has AVX-512 F, BW and VBMI, VAES, AES-NI and SSE4.1 (checked just
    // above), the only target features the callee enables.
    unsafe { keygen_tile_avx512(alphas, n, roots, deltas, d0, d1) };
    true
}

/// Keys `at..at + 4` of a row of 16-byte words (zeros past its end).
#[inline]
#[target_feature(enable = "avx512f")]
fn load_lanes(row: &[u8], at: usize) -> __m512i {
    let from = (16 * at).min(row.len());
    match row.get(from..from + 64).and_then(|b| <&[u8; 64]>::try_from(b).ok()) {
        Some(full) => load(full),
        None => {
            let mut pad = [0u8; 64];
            let rest = row.get(from..).unwrap_or_default();
            pad[..rest.len().min(64)].copy_from_slice(&rest[..rest.len().min(64)]);
            load(&pad)
        }
    }
}

/// Keys `at..at + 4` of a row into it (as many as fit).
#[inline]
#[target_feature(enable = "avx512f")]
fn store_lanes(v: __m512i, row: &mut [u8], at: usize) {
    let from = (16 * at).min(row.len());
    let len = row.len();
    match row.get_mut(from..from + 64).and_then(|b| <&mut [u8; 64]>::try_from(b).ok()) {
        Some(full) => store(v, full),
        None => {
            let mut pad = [0u8; 64];
            store(v, &mut pad);
            let rest = (len - from).min(64);
            if let Some(dst) = row.get_mut(from..from + rest) {
                dst.copy_from_slice(&pad[..rest]);
            }
        }
    }
}

/// The hash's round keys, each broadcast to the four lanes.
#[target_feature(enable = "avx512f,vaes,aes,sse4.1")]
fn round_keys() -> [__m512i; 11] {
    let rk = crate::batch::aesni::key_schedule(HASH_KEY);
    core::array::from_fn(|i| _mm512_broadcast_i32x4(rk[i]))
}

/// `H(s) = π(σ(s)) ⊕ σ(s)` on four 128-bit lanes; `σ(hi ‖ lo) = (hi ⊕ lo ‖ hi)`.
#[inline]
#[target_feature(enable = "avx512f,vaes")]
fn hash(rk: &[__m512i; 11], s: __m512i) -> __m512i {
    let sig = sigma4(s);
    _mm512_xor_si512(aes4(rk, sig), sig)
}

/// All ones in the lanes whose low bit (of the low 64-bit half) is set: a control-bit mask.
#[inline]
#[target_feature(enable = "avx512f")]
fn low_bit(s: __m512i, one: __m512i) -> __m512i {
    _mm512_and_si512(_mm512_shuffle_epi32::<_MM_PERM_BABA>(s), one)
}

#[inline]
#[target_feature(enable = "avx512f")]
fn all_ones_if(bit: __m512i) -> __m512i {
    _mm512_sub_epi64(_mm512_setzero_si512(), bit)
}

/// Four 64-bit values, each in both halves of its lane.
#[inline]
#[target_feature(enable = "avx512f")]
fn spread(v: &[u64], at: usize) -> __m512i {
    let x = |i: usize| v.get(at + i).copied().unwrap_or(0) as i64;
    _mm512_set_epi64(x(3), x(3), x(2), x(2), x(1), x(1), x(0), x(0))
}

/// How many levels ahead evaluation prefetches a tile's rows of correction words.
const PREFETCH_LEVELS: usize = 4;

/// Registers of a whole tile: four keys each.
const TILE_REGS: usize = super::TILE / 4;

/// The walked levels every point of the tile's keys agrees on: those whose bit lies above the
/// highest bit in which any point differs from the first row's.
fn shared_levels(points: &[&[u64]], n: u32, walked: usize) -> usize {
    let first = points.first().copied().unwrap_or_default();
    let mut differ = 0u64;
    for row in points.iter().skip(1) {
        for (a, b) in first.iter().zip(row.iter()) {
            differ |= a ^ b;
        }
    }
    if differ == 0 {
        return walked;
    }
    let highest = 63 - differ.leading_zeros();
    (n.saturating_sub(1).saturating_sub(highest) as usize).min(walked)
}

/// Levels `levels` of a tile's keys (`rows` its rows, `ahead` those and the next tile's first
/// rows, prefetched [`PREFETCH_LEVELS`] levels ahead; `s` and `acc` a register of seeds and of
/// comparison bits per four keys) along the points `xs`. Level by level over the whole
/// tile: each level reads one contiguous row of correction words, and the tile's registers are
/// independent AES chains the core overlaps (a group of four registers walked to the leaves
/// before the next left the AES units waiting on each level's latency).
#[inline]
#[target_feature(enable = "avx512f,vaes")]
#[allow(clippy::too_many_arguments)]
fn walk(
    rk: &[__m512i; 11],
    rows: &[&[u8]],
    ahead: &[&[u8]],
    s: &mut [__m512i],
    acc: &mut [__m512i],
    xs: &[u64],
    n: u32,
    levels: std::ops::Range<usize>,
) {
    let one = _mm512_set1_epi64(1);
    // The low half of each 128-bit lane (a seed's control bit is bit 0 of it).
    let low_half = _mm512_set_epi64(0, 1, 0, 1, 0, 1, 0, 1);
    let mut xv = [_mm512_setzero_si512(); TILE_REGS];
    // Per register, a mask bit per 64-bit half: the control bits `t`, the comparison bits.
    let mut t = [0u8; TILE_REGS];
    let mut ka = [0u8; TILE_REGS];
    for q in 0..s.len() {
        xv[q] = spread(xs, 4 * q);
        t[q] = both_halves(_mm512_test_epi64_mask(s[q], low_half));
        ka[q] = both_halves(_mm512_test_epi64_mask(acc[q], low_half));
    }
    for level in levels {
        // The bit of `x` this level reads, in both halves of each lane.
        let pick = _mm512_set1_epi64((1u64 << (n - 1 - level as u32)) as i64);
        let r = rows.get(level + 1).copied().unwrap_or_default();
        let later = ahead.get(level + 1 + PREFETCH_LEVELS).copied().unwrap_or_default();
        for (q, ((s, xv), (t, ka))) in s.iter_mut().zip(&xv).zip(t.iter_mut().zip(ka.iter_mut())).enumerate() {
            if let Some(b) = later.get(64 * q) {
                prefetch(b);
            }
            let bit = _mm512_test_epi64_mask(*xv, pick);
            // H(s) ⊕ t·CW ⊕ x_i·s, with everything but the AES output gathered off its path:
            // σ(s), then the corrections by masked XORs.
            let sig = sigma4(*s);
            let cw = load_lanes(r, 4 * q);
            let fix = _mm512_mask_xor_epi64(sig, *t, sig, cw);
            let fix = _mm512_mask_xor_epi64(fix, bit, fix, *s);
            let child = _mm512_xor_si512(aes4(rk, sig), fix);
            let t_child = both_halves(_mm512_test_epi64_mask(child, low_half));
            // Where `x_i = 0`, the comparison bit flips with the on-path indicator.
            *ka ^= (*t ^ t_child) & !bit;
            *t = t_child;
            *s = child;
        }
    }
    for q in 0..s.len() {
        acc[q] = _mm512_maskz_mov_epi64(ka[q], one);
    }
}

/// A mask bit of the low 64-bit half of each 128-bit lane copied to the high half.
#[inline(always)]
fn both_halves(low: u8) -> u8 {
    let low = low & 0x55;
    low | (low << 1)
}

/// `σ(hi ‖ lo) = (hi ⊕ lo ‖ hi)` on four lanes: a swap of the halves and a masked XOR.
#[inline]
#[target_feature(enable = "avx512f")]
fn sigma4(s: __m512i) -> __m512i {
    // Per lane [lo, hi] → [hi, lo], then the high half XORs `hi` back in: [hi, lo ⊕ hi].
    let swapped = _mm512_shuffle_epi32::<_MM_PERM_BADC>(s);
    _mm512_mask_xor_epi64(swapped, 0xAA, swapped, s)
}

#[target_feature(enable = "avx512f,vaes,aes,sse4.1")]
fn eval_tile_avx512(bytes: &[u8], next: &[u8], k: usize, n: u32, points: &[&[u64]], outs: &mut [&mut [u8]]) {
    let rk = round_keys();
    let walked = levels(n);
    let low = domain_mask(n - walked as u32);
    let one = _mm512_set1_epi64(1);
    let rows: Vec<&[u8]> = bytes.chunks(16 * k).collect();
    // The rows in reading order, this tile's then the next tile's first (of the same row length
    // but for the last tile): the walk prefetches `ahead[level + 1 + PREFETCH_LEVELS]`, up to
    // the next tile's row `PREFETCH_LEVELS − 2`; the leaves step prefetches the two after it.
    let ahead: Vec<&[u8]> = rows.iter().copied().chain(next.chunks(16 * k).take(PREFETCH_LEVELS + 1)).collect();
    let unfetched = ahead.get(walked + PREFETCH_LEVELS + 1..).unwrap_or_default();
    let row = |r: usize| rows.get(r).copied().unwrap_or_default();
    let Some(first) = points.first() else { return };
    let regs = k.div_ceil(4).min(TILE_REGS);
    let mut s = [_mm512_setzero_si512(); TILE_REGS];
    for (q, s) in s.iter_mut().enumerate().take(regs) {
        *s = load_lanes(row(0), 4 * q);
    }
    let mut acc = [_mm512_setzero_si512(); TILE_REGS];
    let shared = shared_levels(points, n, walked);
    walk(&rk, &rows, &ahead, &mut s[..regs], &mut acc[..regs], first, n, 0..shared);
    for (xs, out) in points.iter().zip(outs.iter_mut()) {
        let (mut s, mut acc) = (s, acc);
        walk(&rk, &rows, &ahead, &mut s[..regs], &mut acc[..regs], xs, n, shared..walked);
        let r = row(walked + 1);
        for q in 0..regs {
            for later in unfetched {
                if let Some(b) = later.get(64 * q) {
                    prefetch(b);
                }
            }
            let h = hash(&rk, s[q]);
            let cw = load_lanes(r, 4 * q);
            let leaf = _mm512_ternarylogic_epi64::<XOR_AND>(h, cw, all_ones_if(low_bit(s[q], one)));
            let (mut leaves, mut accs) = ([0u8; 64], [0u8; 64]);
            store(leaf, &mut leaves);
            store(acc[q], &mut accs);
            for lane in 0..4 {
                let i = 4 * q + lane;
                let (Some(x), Some(o)) = (xs.get(i), out.get_mut(i)) else { break };
                let word =
                    |b: &[u8; 64]| u128::from_le_bytes(b[16 * lane..16 * lane + 16].try_into().unwrap_or_default());
                *o = (word(&accs) as u8 & 1) ^ ((word(&leaves) >> (x & low)) as u8 & 1);
            }
        }
    }
}

/// Where key generation writes a tile: where its rows are whole registers (a key count that is
/// a multiple of four: every tile but perhaps a batch's last), one [`RowStream`] per party's
/// key bytes through the whole tile, pushed in order (the rows are contiguous, so only the
/// tile's two ends are partial cache lines, written by ordinary stores: at a partial line per
/// row, their reads for ownership made key generation half again slower than without
/// streaming); else stored register by register after a prefetch.
// One per tile, on the stack: the registers the streams carry are the point.
#[allow(clippy::large_enum_variant)]
enum TileOut<'a> {
    Streamed(RowStream<'a>, RowStream<'a>),
    Stored { d0: &'a mut [u8], d1: &'a mut [u8], row_len: usize },
}

impl<'a> TileOut<'a> {
    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,avx512vbmi")]
    fn new(d0: &'a mut [u8], d1: &'a mut [u8], row_len: usize) -> TileOut<'a> {
        if !row_len.is_multiple_of(64) {
            return TileOut::Stored { d0, d1, row_len };
        }
        match RowStream::new(d0) {
            Err(d0) => TileOut::Stored { d0, d1, row_len },
            Ok(s0) => match RowStream::new(d1) {
                Ok(s1) => TileOut::Streamed(s0, s1),
                // Both regions have one length, so this is unreachable; written plainly all
                // the same.
                Err(d1) => TileOut::Stored { d0: s0.into_row(), d1, row_len },
            },
        }
    }

    /// The words of keys `4q..4q + 4` on row `row`, `v0` into party 0's key and `v1` into party
    /// 1's (streamed: in order, row by row).
    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,avx512vbmi")]
    fn put_pair(&mut self, v0: __m512i, v1: __m512i, row: usize, q: usize) {
        match self {
            TileOut::Streamed(s0, s1) => {
                s0.push(v0);
                s1.push(v1);
            }
            TileOut::Stored { d0, d1, row_len } => {
                let at = row * *row_len..(row + 1) * *row_len;
                if let (Some(r0), Some(r1)) = (d0.get_mut(at.clone()), d1.get_mut(at)) {
                    store_lanes(v0, r0, 4 * q);
                    store_lanes(v1, r1, 4 * q);
                }
            }
        }
    }

    /// A correction word: the same in both keys.
    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,avx512vbmi")]
    fn put(&mut self, v: __m512i, row: usize, q: usize) {
        self.put_pair(v, v, row, q);
    }

    /// Stored: prefetches the line of row `row` that register `q` will write.
    #[inline]
    fn prefetch(&self, row: usize, q: usize) {
        if let TileOut::Stored { d0, d1, row_len } = self {
            prefetch_at(d0.as_ptr(), d0.len(), row * row_len + 64 * q);
            prefetch_at(d1.as_ptr(), d1.len(), row * row_len + 64 * q);
        }
    }

    /// Writes the streams' last partial lines; each stream then fences its stores, so they
    /// are in memory before whatever the thread does next (the material is handed on after).
    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,avx512vbmi")]
    fn finish(self) {
        if let TileOut::Streamed(s0, s1) = self {
            s0.finish();
            s1.finish();
        }
    }
}

#[target_feature(enable = "avx512f,avx512bw,avx512vbmi,vaes,aes,sse4.1")]
fn keygen_tile_avx512(alphas: &[u64], n: u32, roots: &[u128], deltas: &[u128], d0: &mut [u8], d1: &mut [u8]) {
    let rk = round_keys();
    let k = alphas.len();
    let walked = levels(n);
    let low = domain_mask(n - walked as u32);
    let one = _mm512_set1_epi64(1);
    let words = |v: &[u128]| -> Vec<u8> { v.iter().flat_map(|w| w.to_le_bytes()).collect() };
    let root0 = words(roots);
    let root1 = words(&roots.iter().zip(deltas).map(|(r, d)| r ^ d).collect::<Vec<_>>());
    let delta_bytes = words(deltas);
    let tables = words(&alphas.iter().map(|a| truth_table(a & low)).collect::<Vec<_>>());
    // Every byte of both regions is written below (they may hold a recycled buffer's stale
    // bytes): the caller hands exactly one tile of keys.
    debug_assert!(d0.len() == k * super::key_bytes(n) && d1.len() == d0.len(), "a tile's regions have its size");
    if k == 0 {
        return;
    }
    let regs = k.div_ceil(4).min(TILE_REGS);
    let mut out = TileOut::new(d0, d1, 16 * k);
    // Level by level over the whole tile, as in evaluation: each level writes one contiguous
    // row per party, and the tile's registers are independent AES chains.
    let mut s0 = [_mm512_setzero_si512(); TILE_REGS];
    let mut s1 = [_mm512_setzero_si512(); TILE_REGS];
    let mut delta = [_mm512_setzero_si512(); TILE_REGS];
    let mut av = [_mm512_setzero_si512(); TILE_REGS];
    for q in 0..regs {
        s0[q] = load_lanes(&root0, 4 * q);
        s1[q] = load_lanes(&root1, 4 * q);
        delta[q] = load_lanes(&delta_bytes, 4 * q);
        av[q] = spread(alphas, 4 * q);
        // Row 0: the roots (the keys' only difference).
        out.put_pair(s0[q], s1[q], 0, q);
    }
    for level in 0..=walked {
        let row = level + 1;
        if level == walked {
            for q in 0..regs {
                let (h0, h1) = (hash(&rk, s0[q]), hash(&rk, s1[q]));
                let table = load_lanes(&tables, 4 * q);
                out.put(_mm512_ternarylogic_epi64::<0x96>(h0, h1, table), row, q);
            }
            break;
        }
        let count = _mm_set_epi64x(0, i64::from(n - 1 - level as u32));
        for q in 0..regs {
            out.prefetch(row + PREFETCH_LEVELS, q);
            let (h0, h1) = (hash(&rk, s0[q]), hash(&rk, s1[q]));
            let bit = all_ones_if(_mm512_and_si512(_mm512_srl_epi64(av[q], count), one));
            let cw = _mm512_ternarylogic_epi64::<XOR_AND_NOT_C>(_mm512_xor_si512(h0, h1), delta[q], bit);
            out.put(cw, row, q);
            let left0 = _mm512_ternarylogic_epi64::<XOR_AND>(h0, cw, all_ones_if(low_bit(s0[q], one)));
            let left1 = _mm512_ternarylogic_epi64::<XOR_AND>(h1, cw, all_ones_if(low_bit(s1[q], one)));
            s0[q] = _mm512_ternarylogic_epi64::<XOR_AND>(left0, s0[q], bit);
            s1[q] = _mm512_ternarylogic_epi64::<XOR_AND>(left1, s1[q], bit);
        }
    }
    out.finish();
}
