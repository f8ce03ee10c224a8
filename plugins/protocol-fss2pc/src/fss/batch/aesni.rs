//! AES-NI kernel of [`super::eval_range`] (x86-64 only; used when the CPU has AES-NI and
//! SSE4.1, else the portable tiled path runs).
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
//! The PRG is exactly the one of [`crate::fss::prg`]: the same fixed keys, expanded here with
//! `AESKEYGENASSIST` into the standard AES-128 key schedule, and the same MMO feed-forward; the
//! tests check the kernel against the `aes` crate block by block and against the portable path
//! key by key.
//!
//! # Unsafe code
//!
//! The module allows `unsafe_code` in two places only: the call into the `#[target_feature]`
//! functions after run-time feature detection ([`eval_range`]), and the cache hint
//! `_mm_prefetch` ([`prefetch`]), which takes an address (of a live slice) but never
//! dereferences it. Everything else is safe Rust: the other intrinsics take no pointers, and key
//! bytes are read through bounds-checked slices.

use core::arch::x86_64::{
    __m128i, _MM_HINT_T0, _mm_add_epi64, _mm_aesenc_si128, _mm_aesenclast_si128, _mm_aeskeygenassist_si128,
    _mm_and_si128, _mm_andnot_si128, _mm_cvtsi128_si64, _mm_extract_epi64, _mm_prefetch, _mm_set_epi64x,
    _mm_set1_epi64x, _mm_setzero_si128, _mm_shuffle_epi32, _mm_slli_si128, _mm_xor_si128,
};

use std::marker::PhantomData;

use super::{KeyBatch, Layout, Payload, SEEDS, split_ctrl};
use crate::fss::prg::FIXED_KEYS;

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
    if !available() {
        return false;
    }
    // SAFETY: the CPU supports AES-NI and SSE4.1 (checked just above), the only target
    // features the callee enables.
    unsafe { eval_range_ni(party, b, first, xs, out) };
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

/// The AES-128 key schedules of the three fixed keys, indexed by [`crate::fss::prg::PrgKey`].
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
fn key_schedule(key: [u8; 16]) -> [__m128i; 11] {
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

/// Evaluates keys `first..first + xs.len()` of `b` at `xs` into `out`, [`G`] keys at a time.
#[target_feature(enable = "aes,sse4.1")]
fn eval_range_ni<P: Payload>(party: u8, b: &KeyBatch<'_, P>, first: usize, xs: &[u64], out: &mut [P]) {
    let rk = round_keys();
    let lay = b.lay;
    let n = b.n_bits;
    // Lanes past the end of a short last group evaluate an all-zero key (results dropped).
    let zero = vec![0u8; lay.len];
    let Some(bytes) = b.bytes.get(first * lay.len..(first + xs.len()) * lay.len) else { return };
    // Two groups of G keys at a time (the second may be empty), see [`pair`].
    let groups = xs.chunks(2 * G).zip(out.chunks_mut(2 * G)).zip(bytes.chunks(2 * G * lay.len));
    for (i, ((xg, og), kg)) in groups.enumerate() {
        // The next pair's keys are fetched while this one computes: the lanes read 4G
        // interleaved streams, too many for the hardware prefetchers to follow.
        let ahead = bytes.get((i + 1) * 2 * G * lay.len..).unwrap_or_default();
        let ahead = ahead.get(..2 * G * lay.len).unwrap_or(ahead);
        let lanes = |h: usize| {
            let mut keys: [&[u8]; G] = [&zero; G];
            let key_bytes = kg.chunks_exact(lay.len).skip(h * G);
            for (k, c) in keys.iter_mut().zip(key_bytes) {
                *k = c;
            }
            let mut path = [0u64; G];
            for (p, x) in path.iter_mut().zip(xg.iter().skip(h * G)) {
                // Bit `l` = the path bit of level `l` (bit `n − 1 − l` of `x`).
                *p = x.reverse_bits() >> (64 - n);
            }
            (keys, path)
        };
        let (ka, pa) = lanes(0);
        let (kb, pb) = lanes(1);
        let mut a = Lanes::<P>::new(party, &lay, &ka, &pa);
        let mut b = Lanes::<P>::new(party, &lay, &kb, &pb);
        pair(&rk, &lay, &mut a, &mut b, ahead);
        let (oa, ob) = og.split_at_mut(og.len().min(G));
        a.finish(&rk, party, oa);
        b.finish(&rk, party, ob);
    }
}

/// Walks two groups down their trees together, alternating so the AES of one group runs while
/// the out-of-order core does the other group's CW arithmetic of the level before:
/// `AES(a, 0) · [AES(b, l) · CW(a, l) · AES(a, l + 1) · CW(b, l)] for each level l`.
///
/// `ahead` (the next pair's keys) is prefetched a slice per level: issued all at once, most of
/// the prefetches would find the miss queues full and be dropped.
#[target_feature(enable = "aes,sse4.1")]
fn pair<P: Payload>(rk: &RoundKeys, lay: &Layout, a: &mut Lanes<'_, P>, b: &mut Lanes<'_, P>, ahead: &[u8]) {
    let per_level = ahead.len().div_ceil(64 * lay.n) * 64;
    let mut slices = ahead.chunks(per_level.max(64));
    a.aes(rk, 0);
    for level in 0..lay.n {
        if let Some(slice) = slices.next() {
            prefetch(slice);
        }
        b.aes(rk, level);
        a.apply(level);
        if level + 1 < lay.n {
            a.aes(rk, level + 1);
        }
        b.apply(level);
    }
}

/// The value block's input for a seed `s` (bit 0 clear) going in direction `bit`: the seed itself
/// (DCF), or the seed with bit 0 set to the direction (DCF2).
#[inline]
#[target_feature(enable = "aes,sse4.1")]
fn value_input<P: Payload>(s: __m128i, bit: usize) -> __m128i {
    if P::VALUE_BLOCKS == 2 { _mm_xor_si128(s, _mm_set_epi64x(0, bit as i64)) } else { s }
}

/// AES of one level of a group: lane `j`'s child block `c[j] = AES_kL/kR(x[j])` (`kL` or `kR`
/// for `bit[j]` = 0 or 1) and its value block `v[j] = AES_kV(value_input(x[j], bit[j]))`.
///
/// Not inlined on purpose: on its own the function is a couple of hundred instructions, so all
/// `2G` independent AES chains fit in the out-of-order window together whatever order the
/// compiler emits them in; inlined into the lane loop they were scheduled lane by lane between
/// the CW arithmetic, and only two or three chains overlapped.
#[inline(never)]
#[target_feature(enable = "aes,sse4.1")]
fn aes_lanes<P: Payload>(
    rk: &RoundKeys,
    bit: &[usize; G],
    x: &[__m128i; G],
    c: &mut [__m128i; G],
    v: &mut [__m128i; G],
) {
    let [_, _, rkv] = &rk.0;
    let ck: [&[__m128i; 11]; G] = core::array::from_fn(|j| &rk.0[bit[j] & 1]);
    for j in 0..G {
        c[j] = _mm_xor_si128(x[j], ck[j][0]);
        v[j] = _mm_xor_si128(value_input::<P>(x[j], bit[j]), rkv[0]);
    }
    for r in 1..10 {
        for j in 0..G {
            c[j] = _mm_aesenc_si128(c[j], ck[j][r]);
            v[j] = _mm_aesenc_si128(v[j], rkv[r]);
        }
    }
    for j in 0..G {
        c[j] = _mm_aesenclast_si128(c[j], ck[j][10]);
        v[j] = _mm_aesenclast_si128(v[j], rkv[10]);
    }
}

/// The state of [`G`] keys walking their trees (lanes past the real keys walk an all-zero key).
struct Lanes<'k, P> {
    /// Current seed of each lane (bit 0 clear), as an SSE value.
    s: [__m128i; G],
    /// Current control bit of each lane (0 or 1).
    t: [u64; G],
    /// Running output share of each lane.
    ///
    /// In SSE registers: DCF2's two words as they are; for DCF the value word of the direction
    /// taken is masked into its own half of the 128-bit value block (low = left, high = right),
    /// so no per-level select or extraction is needed, and the two halves are summed at the leaf.
    acc: [__m128i; G],
    /// Tree path of each lane: bit `l` = direction at level `l`.
    path: [u64; G],
    /// The control-bit CW on each lane's path: bit `l` = `t_L` or `t_R` of level `l`.
    tcw: [u64; G],
    /// Each lane's seed CWs, one 16-byte row per level.
    seed_cws: [&'k [[u8; 16]]; G],
    /// Each lane's value CWs as 8-byte words (DCF: one word per level).
    value_cws: [&'k [[u8; 8]]; G],
    /// The same bytes as 16-byte rows (DCF2: one row per level).
    value_cws2: [&'k [[u8; 16]]; G],
    /// Each lane's final CW and the rest of its key.
    tails: [&'k [u8]; G],
    /// The current level's direction and AES outputs of each lane.
    bit: [usize; G],
    c: [__m128i; G],
    v: [__m128i; G],
    _payload: PhantomData<P>,
}

impl<'k, P: Payload> Lanes<'k, P> {
    #[inline]
    #[target_feature(enable = "aes,sse4.1")]
    fn new(party: u8, lay: &Layout, keys: &[&'k [u8]; G], path: &[u64; G]) -> Self {
        let zero = _mm_setzero_si128();
        let mut l = Lanes {
            s: [zero; G],
            t: [u64::from(party & 1); G],
            acc: [zero; G],
            path: *path,
            tcw: [0; G],
            seed_cws: [&[]; G],
            value_cws: [&[]; G],
            value_cws2: [&[]; G],
            tails: [&[]; G],
            bit: [0; G],
            c: [zero; G],
            v: [zero; G],
            _payload: PhantomData,
        };
        for j in 0..G {
            let key = keys[j];
            l.s[j] = to_m(lay.root(key));
            let [cl, cr] = split_ctrl(lay.ctrl_word(key));
            l.tcw[j] = (cl & !path[j]) | (cr & path[j]);
            l.seed_cws[j] = key.get(SEEDS..lay.values).unwrap_or_default().as_chunks::<16>().0;
            let values = key.get(lay.values..lay.ctrl).unwrap_or_default();
            l.value_cws[j] = values.as_chunks::<8>().0;
            l.value_cws2[j] = values.as_chunks::<16>().0;
            l.tails[j] = key.get(lay.fin..).unwrap_or_default();
        }
        l
    }

    /// The AES blocks of level `level` (child and value block of every lane).
    #[inline]
    #[target_feature(enable = "aes,sse4.1")]
    fn aes(&mut self, rk: &RoundKeys, level: usize) {
        for j in 0..G {
            self.bit[j] = ((self.path[j] >> level) & 1) as usize;
        }
        aes_lanes::<P>(rk, &self.bit, &self.s, &mut self.c, &mut self.v);
    }

    /// Finishes level `level` after [`Lanes::aes`]: MMO feed-forward, CWs, next seed and bit.
    #[inline]
    #[target_feature(enable = "aes,sse4.1")]
    fn apply(&mut self, level: usize) {
        let zero = _mm_setzero_si128();
        let one = _mm_set_epi64x(0, 1);
        for j in 0..G {
            let cx = _mm_xor_si128(self.c[j], self.s[j]);
            let vx = _mm_xor_si128(self.v[j], value_input::<P>(self.s[j], self.bit[j]));
            let bit = self.bit[j] as i64;
            let tv = self.t[j];
            let tm = 0u64.wrapping_sub(tv);
            let word = |i: usize| self.value_cws[j].get(i).map_or(0, |b| u64::from_le_bytes(*b)) & tm;
            let (v_taken, cv) = if P::WORDS == 2 {
                // Converted inside the closure, so the row goes straight into an SSE register.
                let row = self.value_cws2[j].get(level).map_or(zero, |b| to_m(u128::from_le_bytes(*b)));
                (vx, _mm_and_si128(row, _mm_set1_epi64x(tm as i64)))
            } else {
                // Low half for left (bit 0), high half for right (bit 1).
                (_mm_and_si128(vx, _mm_set_epi64x(-bit, bit - 1)), _mm_set_epi64x(0, word(level) as i64))
            };
            self.acc[j] = _mm_add_epi64(self.acc[j], _mm_add_epi64(v_taken, cv));
            let cs = self.seed_cws[j].get(level).map_or(zero, |b| to_m(u128::from_le_bytes(*b)));
            self.s[j] = _mm_xor_si128(_mm_andnot_si128(one, cx), _mm_and_si128(_mm_set1_epi64x(tm as i64), cs));
            self.t[j] = (_mm_cvtsi128_si64(cx) as u64 & 1) ^ (tv & (self.tcw[j] >> level));
        }
    }

    /// The leaves: `Convert` (one more value block per lane for DCF2), the final CW and the
    /// party's sign, into `out` (the first `out.len()` lanes).
    #[inline]
    #[target_feature(enable = "aes,sse4.1")]
    fn finish(&self, rk: &RoundKeys, party: u8, out: &mut [P]) {
        let [_, _, rkv] = &rk.0;
        let s: [u128; G] = self.s.map(|m| from_m(m));
        let mut conv = [0u128; G];
        if P::CONVERT_BY_PRG {
            let mut v = [_mm_setzero_si128(); G];
            for (vj, sj) in v.iter_mut().zip(&self.s) {
                *vj = _mm_xor_si128(*sj, rkv[0]);
            }
            for k in &rkv[1..10] {
                for vj in v.iter_mut() {
                    *vj = _mm_aesenc_si128(*vj, *k);
                }
            }
            for j in 0..G {
                conv[j] = from_m(_mm_aesenclast_si128(v[j], rkv[10])) ^ s[j];
            }
        }
        for (j, o) in out.iter_mut().enumerate().take(G) {
            let tm = 0u64.wrapping_sub(self.t[j]);
            let fin = P::read(self.tails[j]);
            let a = from_m(self.acc[j]);
            let acc = if P::WORDS == 2 {
                P::value(a, 0)
            } else {
                P::value(u128::from((a as u64).wrapping_add((a >> 64) as u64)), 0)
            };
            *o = acc.add(P::convert(s[j], conv[j])).add(fin.and(tm)).signed(party);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fss::prg::{Prg, PrgKey, SeedRng};

    #[test]
    #[allow(unsafe_code)]
    fn key_schedule_matches_aes_crate() {
        if !available() {
            return;
        }
        let prg = Prg::global();
        let mut r = SeedRng::from_seed([3; 32]);
        // SAFETY: AES-NI and SSE4.1 are available (checked above).
        let rk = unsafe { round_keys() };
        for (i, key) in [PrgKey::Left, PrgKey::Right, PrgKey::Value].into_iter().enumerate() {
            for _ in 0..100 {
                let s = r.next_u128();
                // SAFETY: as above.
                let got = unsafe { mmo_ni(&rk.0[i], s) };
                assert_eq!(got, prg.mmo(key, s));
            }
        }
    }

    /// `AES(s) ⊕ s` with the kernel's key schedule.
    #[target_feature(enable = "aes,sse4.1")]
    fn mmo_ni(rk: &[__m128i; 11], s: u128) -> u128 {
        let mut b = _mm_xor_si128(to_m(s), rk[0]);
        for k in &rk[1..10] {
            b = _mm_aesenc_si128(b, *k);
        }
        from_m(_mm_aesenclast_si128(b, rk[10])) ^ s
    }
}
