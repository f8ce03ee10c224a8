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

/// The group loop of [`eval_range_ni`] and [`eval_range_vaes`], with `walk` taking a pair of
/// groups down their trees. A macro, not a function: it calls `#[target_feature]` functions,
/// which only a function with those features may call without `unsafe`, so it is expanded in
/// each of the two.
macro_rules! eval_range_groups {
    ($party:expr, $b:expr, $first:expr, $xs:expr, $out:expr, $walk:expr) => {{
        let (party, b, first, xs, out) = ($party, $b, $first, $xs, $out);
        let rk = round_keys();
        let lay = b.lay;
        let n = b.n_bits;
        // Lanes past the end of a short last group evaluate an all-zero key (results dropped).
        let zero = vec![0u8; lay.len];
        let Some(bytes) = b.bytes().get(first * lay.len..(first + xs.len()) * lay.len) else { return };
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
            let walk = $walk;
            walk(&rk, &lay, &mut a, &mut b, ahead);
            let (oa, ob) = og.split_at_mut(og.len().min(G));
            a.finish(&rk, party, oa);
            b.finish(&rk, party, ob);
        }
    }};
}

/// Evaluates keys `first..first + xs.len()` of `b` at `xs` into `out`, [`G`] keys at a time.
#[target_feature(enable = "aes,sse4.1")]
fn eval_range_ni<P: Payload>(party: u8, b: &KeyBatch<'_, P>, first: usize, xs: &[u64], out: &mut [P]) {
    eval_range_groups!(party, b, first, xs, out, |rk: &RoundKeys,
                                                  lay: &Layout,
                                                  a: &mut Lanes<'_, P>,
                                                  b: &mut Lanes<'_, P>,
                                                  ahead: &[u8]| pair(
        rk, lay, a, b, ahead
    ));
}

/// [`eval_range_ni`] with the AES of both groups of a pair as 256-bit VAES instructions
/// ([`pair_vaes`]).
#[target_feature(enable = "aes,sse4.1,avx,avx2,vaes")]
fn eval_range_vaes<P: Payload>(party: u8, b: &KeyBatch<'_, P>, first: usize, xs: &[u64], out: &mut [P]) {
    let paired = PairedKeys::new(&round_keys());
    eval_range_groups!(party, b, first, xs, out, |_: &RoundKeys,
                                                  lay: &Layout,
                                                  a: &mut Lanes<'_, P>,
                                                  b: &mut Lanes<'_, P>,
                                                  ahead: &[u8]| {
        pair_vaes(&paired, lay, a, b, ahead)
    });
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

/// The child-seed round keys of two lanes side by side, for each pair of directions:
/// `child[d_lo + 2·d_hi][round]` holds the round key of `kL`/`kR` for the low lane's direction
/// `d_lo` in the low 128 bits and for `d_hi` in the high ones; `value` is `kV`'s, broadcast.
struct PairedKeys {
    child: [[__m256i; 11]; 4],
    value: [__m256i; 11],
}

impl PairedKeys {
    #[target_feature(enable = "aes,sse4.1,avx,avx2,vaes")]
    fn new(rk: &RoundKeys) -> PairedKeys {
        let [l, r, v] = &rk.0;
        let dir = [l, r];
        PairedKeys {
            child: core::array::from_fn(|combo| {
                core::array::from_fn(|round| _mm256_set_m128i(dir[combo >> 1][round], dir[combo & 1][round]))
            }),
            value: core::array::from_fn(|round| _mm256_broadcastsi128_si256(v[round])),
        }
    }
}

/// [`pair`] with one VAES call ([`aes_lanes_vaes`]) for both groups' AES of a level, then both
/// groups' CW arithmetic.
#[target_feature(enable = "aes,sse4.1,avx,avx2,vaes")]
fn pair_vaes<P: Payload>(pk: &PairedKeys, lay: &Layout, a: &mut Lanes<'_, P>, b: &mut Lanes<'_, P>, ahead: &[u8]) {
    let per_level = ahead.len().div_ceil(64 * lay.n) * 64;
    let mut slices = ahead.chunks(per_level.max(64));
    for level in 0..lay.n {
        if let Some(slice) = slices.next() {
            prefetch(slice);
        }
        for j in 0..G {
            a.bit[j] = ((a.path[j] >> level) & 1) as usize;
            b.bit[j] = ((b.path[j] >> level) & 1) as usize;
        }
        aes_lanes_vaes::<P>(pk, a, b);
        a.apply(level);
        b.apply(level);
    }
}

/// [`aes_lanes`] for the `2G` lanes of two groups, two lanes per 256-bit register: `G` child
/// chains (each register's round keys chosen by its two lanes' directions) and `G` value chains.
#[inline(never)]
#[target_feature(enable = "aes,sse4.1,avx,avx2,vaes")]
fn aes_lanes_vaes<P: Payload>(pk: &PairedKeys, a: &mut Lanes<'_, P>, b: &mut Lanes<'_, P>) {
    // Lane i of the 2G: group a's lanes, then group b's.
    let lane = |i: usize| if i < G { (a.s[i], a.bit[i]) } else { (b.s[i - G], b.bit[i - G]) };
    let mut c = [_mm256_setzero_si256(); G];
    let mut v = [_mm256_setzero_si256(); G];
    let mut combo = [0usize; G];
    for p in 0..G {
        let ((s0, b0), (s1, b1)) = (lane(2 * p), lane(2 * p + 1));
        combo[p] = (b0 & 1) | ((b1 & 1) << 1);
        let x = _mm256_set_m128i(s1, s0);
        let vin = _mm256_set_m128i(value_input::<P>(s1, b1), value_input::<P>(s0, b0));
        c[p] = _mm256_xor_si256(x, pk.child[combo[p]][0]);
        v[p] = _mm256_xor_si256(vin, pk.value[0]);
    }
    for r in 1..10 {
        for p in 0..G {
            c[p] = _mm256_aesenc_epi128(c[p], pk.child[combo[p]][r]);
            v[p] = _mm256_aesenc_epi128(v[p], pk.value[r]);
        }
    }
    for p in 0..G {
        c[p] = _mm256_aesenclast_epi128(c[p], pk.child[combo[p]][10]);
        v[p] = _mm256_aesenclast_epi128(v[p], pk.value[10]);
    }
    for p in 0..G {
        let lo = (_mm256_castsi256_si128(c[p]), _mm256_castsi256_si128(v[p]));
        let hi = (_mm256_extracti128_si256::<1>(c[p]), _mm256_extracti128_si256::<1>(v[p]));
        for (i, (cc, vv)) in [(2 * p, lo), (2 * p + 1, hi)] {
            if i < G {
                (a.c[i], a.v[i]) = (cc, vv);
            } else {
                (b.c[i - G], b.v[i - G]) = (cc, vv);
            }
        }
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
            // The CW's lowest bit is ignored: cleared with the child's control bit.
            self.s[j] = _mm_andnot_si128(one, _mm_xor_si128(cx, _mm_and_si128(_mm_set1_epi64x(tm as i64), cs)));
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

// ---------------------------------------------------------------------------------------------
// Key generation
// ---------------------------------------------------------------------------------------------

/// Keys per group in key generation: each key has two seeds (one per party) and needs three (DCF)
/// or four (DCF2) PRG blocks per seed and level, so one key already has 6 or 8 independent AES
/// blocks per level, and two alternating groups 12 or 16 (1 measured best of 1…3: 2 about 5 %
/// slower for DCF2, 3 about 10 % slower for both).
const GG: usize = 1;

/// Keys per call of [`Keygen::run`]: their serialised keys (about 25 KiB for DCF, 33 KiB for DCF2
/// at `n = 63`) are still in L1 or L2 when the caller copies them into both parties' buffers.
pub(super) const GEN_CHUNK: usize = 16;

/// The AES-NI key-generation kernel: only constructed where the CPU has AES-NI, SSE4.1 and AVX
/// (AVX for the three-operand VEX encodings, which saved a few per cent of register moves).
pub(super) struct Keygen {
    rk: RoundKeys,
    /// Run the AES of both groups as 256-bit VAES instructions (two blocks each).
    vaes: bool,
}

/// Whether this CPU has VAES (and AVX2) besides what [`Keygen`] needs.
fn vaes_available() -> bool {
    std::arch::is_x86_feature_detected!("vaes") && std::arch::is_x86_feature_detected!("avx2")
}

impl Keygen {
    /// The kernel, or `None` if this CPU cannot run it.
    #[allow(unsafe_code)]
    pub(super) fn new() -> Option<Keygen> {
        Keygen::with_vaes(true)
    }

    /// [`Keygen::new`], using VAES only if `vaes` and the CPU has it (tests run both paths).
    #[allow(unsafe_code)]
    pub(super) fn with_vaes(vaes: bool) -> Option<Keygen> {
        if !(available() && std::arch::is_x86_feature_detected!("avx")) {
            return None;
        }
        // SAFETY: the CPU supports AES-NI and SSE4.1 (checked just above), the only target
        // features the callee enables.
        Some(Keygen { rk: unsafe { round_keys() }, vaes: vaes && vaes_available() })
    }

    /// Generates the key pairs of `at`, `bt` (root seeds `roots[2k + b]` for party `b` of key
    /// `k`, low bits clear) and writes party 0's serialised keys into `out` (`lay.len` bytes per
    /// key; extra keys or bytes are left alone). Equal byte for byte to `TileGen::run`.
    #[allow(unsafe_code)]
    pub(super) fn run<P: Payload>(
        &self,
        lay: &Layout,
        n_bits: u32,
        at: &[u64],
        bt: &[P],
        roots: &[u128],
        out: &mut [u8],
    ) {
        if self.vaes {
            // SAFETY: `vaes` is set only where the CPU also has VAES and AVX2 (checked in
            // [`Keygen::with_vaes`]), the callee's further target features.
            unsafe { keygen_vaes(&self.rk, lay, n_bits, at, bt, roots, out) }
        } else {
            // SAFETY: a `Keygen` exists only where the CPU supports AES-NI, SSE4.1 and AVX
            // (checked in [`Keygen::with_vaes`]), the only target features the callee enables.
            unsafe { keygen_ni(&self.rk, lay, n_bits, at, bt, roots, out) }
        }
    }
}

/// The pair loop of [`keygen_ni`] and [`keygen_vaes`]: two groups of [`GG`] keys at a time,
/// `walk` taking both down their trees. A short last pair's missing group walks an all-zero pair
/// and writes nothing (it has no key slice). A macro so that it is expanded inside each
/// `#[target_feature]` function (see [`eval_range_groups`]).
macro_rules! keygen_pairs {
    ($rk:expr, $lay:expr, $n_bits:expr, $at:expr, $bt:expr, $roots:expr, $out:expr, $walk:expr) => {{
        let (rk, lay, n_bits, at, bt, roots, out) = ($rk, $lay, $n_bits, $at, $bt, $roots, $out);
        let count = at.len().min(bt.len()).min(roots.len() / 2).min(out.len() / lay.len);
        let chunks = at[..count].chunks(2 * GG).zip(bt.chunks(2 * GG)).zip(roots.chunks(4 * GG));
        for (((ac, bc), rc), oc) in chunks.zip(out.chunks_mut(2 * GG * lay.len)) {
            let split = ac.len().min(GG);
            let (oa, ob) = oc.split_at_mut((split * lay.len).min(oc.len()));
            let mut a = GenLanes::<P>::new(lay, n_bits, ac, bc, rc, oa);
            let (ac, bc, rc) = (
                ac.get(GG..).unwrap_or_default(),
                bc.get(GG..).unwrap_or_default(),
                rc.get(2 * GG..).unwrap_or_default(),
            );
            let mut b = GenLanes::<P>::new(lay, n_bits, ac, bc, rc, ob);
            let walk = $walk;
            walk(&mut a, &mut b);
            b.finish(rk, lay, n_bits);
            a.finish(rk, lay, n_bits);
        }
    }};
}

/// [`Keygen::run`], two groups of [`GG`] keys at a time (see [`gen_pair`]).
#[target_feature(enable = "aes,sse4.1,avx")]
fn keygen_ni<P: Payload>(
    rk: &RoundKeys,
    lay: &Layout,
    n_bits: u32,
    at: &[u64],
    bt: &[P],
    roots: &[u128],
    out: &mut [u8],
) {
    keygen_pairs!(rk, lay, n_bits, at, bt, roots, out, |a: &mut GenLanes<'_, P>, b: &mut GenLanes<'_, P>| {
        gen_pair(rk, lay.n, a, b)
    });
}

/// [`keygen_ni`] with the AES of both groups of a pair in one call of 256-bit VAES instructions
/// ([`aes_gen_vaes`]): two blocks per instruction, twice AES-NI's blocks per cycle on CPUs
/// whose VAES units are as wide (AMD Zen 3 and later, Intel Ice Lake and later).
#[target_feature(enable = "aes,sse4.1,avx,avx2,vaes")]
fn keygen_vaes<P: Payload>(
    rk: &RoundKeys,
    lay: &Layout,
    n_bits: u32,
    at: &[u64],
    bt: &[P],
    roots: &[u128],
    out: &mut [u8],
) {
    keygen_pairs!(rk, lay, n_bits, at, bt, roots, out, |a: &mut GenLanes<'_, P>, b: &mut GenLanes<'_, P>| {
        for level in 0..lay.n {
            aes_gen_vaes::<P>(rk, &a.s, &b.s, &mut a.aes, &mut b.aes);
            a.apply(level);
            b.apply(level);
        }
    });
}

/// [`aes_gen`] for two groups at once, party 0's and party 1's seed of a group in the two
/// 128-bit lanes of one register: 6 (DCF) or 8 (DCF2) independent 256-bit chains, enough to
/// keep two VAES units busy. Not inlined, for the reason given at [`aes_lanes`].
#[inline(never)]
#[target_feature(enable = "aes,sse4.1,avx,avx2,vaes")]
fn aes_gen_vaes<P: Payload>(
    rk: &RoundKeys,
    xa: &[__m128i; 2 * GG],
    xb: &[__m128i; 2 * GG],
    oa: &mut GenAes,
    ob: &mut GenAes,
) {
    const { assert!(GG == 1, "two seeds per group fill one 256-bit register") };
    let two = P::VALUE_BLOCKS == 2;
    let [rkl, rkr, rkv] = &rk.0;
    let b = |k: __m128i| _mm256_broadcastsi128_si256(k);
    let one = _mm256_set_epi64x(0, 1, 0, 1);
    let x = [_mm256_set_m128i(xa[1], xa[0]), _mm256_set_m128i(xb[1], xb[0])];
    let zero = _mm256_xor_si256(x[0], x[0]);
    // Chains: [L, R, V0, V1] of group a, then of group b.
    let mut c = [zero; 8];
    for g in 0..2 {
        c[4 * g] = _mm256_xor_si256(x[g], b(rkl[0]));
        c[4 * g + 1] = _mm256_xor_si256(x[g], b(rkr[0]));
        c[4 * g + 2] = _mm256_xor_si256(x[g], b(rkv[0]));
        c[4 * g + 3] = _mm256_xor_si256(_mm256_xor_si256(x[g], one), b(rkv[0]));
    }
    for r in 1..10 {
        let (kl, kr, kv) = (b(rkl[r]), b(rkr[r]), b(rkv[r]));
        for g in 0..2 {
            c[4 * g] = _mm256_aesenc_epi128(c[4 * g], kl);
            c[4 * g + 1] = _mm256_aesenc_epi128(c[4 * g + 1], kr);
            c[4 * g + 2] = _mm256_aesenc_epi128(c[4 * g + 2], kv);
            if two {
                c[4 * g + 3] = _mm256_aesenc_epi128(c[4 * g + 3], kv);
            }
        }
    }
    let (kl, kr, kv) = (b(rkl[10]), b(rkr[10]), b(rkv[10]));
    for g in 0..2 {
        c[4 * g] = _mm256_aesenclast_epi128(c[4 * g], kl);
        c[4 * g + 1] = _mm256_aesenclast_epi128(c[4 * g + 1], kr);
        c[4 * g + 2] = _mm256_aesenclast_epi128(c[4 * g + 2], kv);
        if two {
            c[4 * g + 3] = _mm256_aesenclast_epi128(c[4 * g + 3], kv);
        }
    }
    let lanes = |v: __m256i| [_mm256_castsi256_si128(v), _mm256_extracti128_si256::<1>(v)];
    for (g, out) in [oa, ob].into_iter().enumerate() {
        out.cl = lanes(c[4 * g]);
        out.cr = lanes(c[4 * g + 1]);
        out.cv0 = lanes(c[4 * g + 2]);
        if two {
            out.cv1 = lanes(c[4 * g + 3]);
        }
    }
}

/// Walks two groups down their trees together, as [`pair`] does for evaluation: the AES of one
/// group runs while the out-of-order core does the other group's CW arithmetic.
#[target_feature(enable = "aes,sse4.1,avx")]
fn gen_pair<P: Payload>(rk: &RoundKeys, n: usize, a: &mut GenLanes<'_, P>, b: &mut GenLanes<'_, P>) {
    a.aes(rk);
    for level in 0..n {
        b.aes(rk);
        a.apply(level);
        if level + 1 < n {
            a.aes(rk);
        }
        b.apply(level);
    }
}

/// AES of one level of a key-generation group: for every seed `x[j]`, `cl[j] = AES_kL(x[j])`,
/// `cr[j] = AES_kR(x[j])`, `cv0[j] = AES_kV(x[j])` and (DCF2 only) `cv1[j] = AES_kV(x[j] ∥ 1)`.
/// Not inlined, for the reason given at [`aes_lanes`].
#[inline(never)]
#[target_feature(enable = "aes,sse4.1,avx")]
fn aes_gen<P: Payload>(rk: &RoundKeys, x: &[__m128i; 2 * GG], out: &mut GenAes) {
    let [rkl, rkr, rkv] = &rk.0;
    let two = P::VALUE_BLOCKS == 2;
    let one = _mm_set_epi64x(0, 1);
    let GenAes { cl, cr, cv0, cv1 } = out;
    for j in 0..2 * GG {
        cl[j] = _mm_xor_si128(x[j], rkl[0]);
        cr[j] = _mm_xor_si128(x[j], rkr[0]);
        cv0[j] = _mm_xor_si128(x[j], rkv[0]);
        if two {
            cv1[j] = _mm_xor_si128(_mm_xor_si128(x[j], one), rkv[0]);
        }
    }
    for r in 1..10 {
        for j in 0..2 * GG {
            cl[j] = _mm_aesenc_si128(cl[j], rkl[r]);
            cr[j] = _mm_aesenc_si128(cr[j], rkr[r]);
            cv0[j] = _mm_aesenc_si128(cv0[j], rkv[r]);
            if two {
                cv1[j] = _mm_aesenc_si128(cv1[j], rkv[r]);
            }
        }
    }
    for j in 0..2 * GG {
        cl[j] = _mm_aesenclast_si128(cl[j], rkl[10]);
        cr[j] = _mm_aesenclast_si128(cr[j], rkr[10]);
        cv0[j] = _mm_aesenclast_si128(cv0[j], rkv[10]);
        if two {
            cv1[j] = _mm_aesenclast_si128(cv1[j], rkv[10]);
        }
    }
}

/// The raw AES outputs of one level of a group (before the MMO feed-forward), index `2k + b`
/// for party `b`'s seed of key `k`.
struct GenAes {
    cl: [__m128i; 2 * GG],
    cr: [__m128i; 2 * GG],
    cv0: [__m128i; 2 * GG],
    cv1: [__m128i; 2 * GG],
}

/// The state of [`GG`] key pairs being generated (lanes past the real keys compute on zeros and
/// write nothing).
struct GenLanes<'k, P> {
    /// Current seeds (bit 0 clear), index `2k + b` for party `b` of key `k`.
    s: [__m128i; 2 * GG],
    /// Current control bits (0 or 1), same index.
    t: [u64; 2 * GG],
    /// `V_α` of each key: DCF in `va1`, DCF2 (both words) in `va2`.
    va1: [u64; GG],
    va2: [__m128i; GG],
    /// `β` of each key, in the same two forms.
    beta1: [u64; GG],
    beta2: [__m128i; GG],
    /// Tree path of each `α`: bit `l` = direction at level `l`.
    path: [u64; GG],
    /// Control-bit CWs of each key: `[t_L, t_R]`, bit `l` = level `l`.
    ctrl: [[u64; 2]; GG],
    /// Party 0's root seed of each key.
    root: [u128; GG],
    /// Offset of the value CWs in a serialised key.
    values: usize,
    /// Party 0's serialised key of each lane (empty past the real keys).
    keys: [&'k mut [u8]; GG],
    aes: GenAes,
    _payload: PhantomData<P>,
}

impl<'k, P: Payload> GenLanes<'k, P> {
    #[inline]
    #[target_feature(enable = "aes,sse4.1,avx")]
    fn new(lay: &Layout, n_bits: u32, at: &[u64], bt: &[P], roots: &[u128], out: &'k mut [u8]) -> Self {
        let zero = _mm_setzero_si128();
        let mut key_slices = out.chunks_exact_mut(lay.len);
        let mut l = GenLanes {
            s: [zero; 2 * GG],
            t: core::array::from_fn(|j| (j & 1) as u64),
            va1: [0; GG],
            va2: [zero; GG],
            beta1: [0; GG],
            beta2: [zero; GG],
            path: [0; GG],
            ctrl: [[0; 2]; GG],
            root: [0; GG],
            values: lay.values,
            keys: core::array::from_fn(|_| key_slices.next().unwrap_or_default()),
            aes: GenAes { cl: [zero; 2 * GG], cr: [zero; 2 * GG], cv0: [zero; 2 * GG], cv1: [zero; 2 * GG] },
            _payload: PhantomData,
        };
        for (j, r) in roots.iter().enumerate().take(2 * GG.min(at.len())) {
            l.s[j] = to_m(*r);
        }
        for (k, ((alpha, beta), rp)) in at.iter().zip(bt).zip(roots.chunks_exact(2)).enumerate().take(GG) {
            // Bit `l` = bit `n − 1 − l` of α.
            l.path[k] = alpha.reverse_bits() >> (64 - n_bits);
            let mut b = [0u8; 16];
            beta.write(&mut b);
            let b = u128::from_le_bytes(b);
            l.beta1[k] = b as u64;
            l.beta2[k] = to_m(b);
            l.root[k] = rp.first().copied().unwrap_or_default();
        }
        l
    }

    /// The AES blocks of one level (every seed's left, right and value blocks).
    #[inline]
    #[target_feature(enable = "aes,sse4.1,avx")]
    fn aes(&mut self, rk: &RoundKeys) {
        aes_gen::<P>(rk, &self.s, &mut self.aes);
    }

    /// Finishes level `level` after [`GenLanes::aes`]: MMO feed-forward, the level's CWs (written
    /// into the keys), next seeds and control bits. The same arithmetic as `TileGen::run`, in SSE
    /// registers where it is 128 bits wide.
    #[inline]
    #[target_feature(enable = "aes,sse4.1,avx")]
    fn apply(&mut self, level: usize) {
        let one = _mm_set_epi64x(0, 1);
        let GenAes { cl, cr, cv0, cv1 } = &self.aes;
        for k in 0..GG {
            let (j0, j1) = (2 * k, 2 * k + 1);
            let a = (self.path[k] >> level) & 1;
            let am64 = 0u64.wrapping_sub(a);
            let am = _mm_set1_epi64x(am64 as i64);
            let (s0, s1) = (self.s[j0], self.s[j1]);
            // Children with their control bits in bit 0.
            let l0 = _mm_xor_si128(cl[j0], s0);
            let l1 = _mm_xor_si128(cl[j1], s1);
            let r0 = _mm_xor_si128(cr[j0], s0);
            let r1 = _mm_xor_si128(cr[j1], s1);
            // α_i = 0: keep L, lose R; α_i = 1: keep R, lose L.
            let keep0 = _mm_xor_si128(l0, _mm_and_si128(_mm_xor_si128(l0, r0), am));
            let keep1 = _mm_xor_si128(l1, _mm_and_si128(_mm_xor_si128(l1, r1), am));
            let (dl, dr) = (_mm_xor_si128(l0, l1), _mm_xor_si128(r0, r1));
            let dk = _mm_xor_si128(keep0, keep1);
            // Seed CW = s_0^Lose ⊕ s_1^Lose; the control-bit CWs from bit 0 of the XORs.
            let seed = _mm_andnot_si128(one, _mm_xor_si128(dk, _mm_xor_si128(dl, dr)));
            let cw_tl = (_mm_cvtsi128_si64(dl) as u64 & 1) ^ a ^ 1;
            let cw_tr = (_mm_cvtsi128_si64(dr) as u64 & 1) ^ a;
            let cw_keep = (_mm_cvtsi128_si64(dk) as u64 & 1) ^ 1;
            let (t0, t1) = (self.t[j0], self.t[j1]);
            let tm1 = 0u64.wrapping_sub(t1);
            let key = &mut *self.keys[k];
            if P::WORDS == 2 {
                // Value of direction d: AES_kV(s ∥ d) ⊕ (s ∥ d); differences party 1 − party 0.
                let dv_l = _mm_sub_epi64(_mm_xor_si128(cv0[j1], s1), _mm_xor_si128(cv0[j0], s0));
                let dv_r = _mm_sub_epi64(
                    _mm_xor_si128(cv1[j1], _mm_xor_si128(s1, one)),
                    _mm_xor_si128(cv1[j0], _mm_xor_si128(s0, one)),
                );
                let lose = _mm_xor_si128(dv_r, _mm_and_si128(_mm_xor_si128(dv_r, dv_l), am));
                let keep = _mm_xor_si128(_mm_xor_si128(dv_l, dv_r), lose);
                let bam = _mm_and_si128(self.beta2[k], am);
                // V_CW = (-1)^{t_1} · (v_1^Lose − v_0^Lose − V_α [+ β if Lose = L]).
                let pre = _mm_add_epi64(_mm_sub_epi64(lose, self.va2[k]), bam);
                let tm = _mm_set1_epi64x(tm1 as i64);
                let value = _mm_sub_epi64(_mm_xor_si128(pre, tm), tm);
                // V_α ← V_α − (v_1^Keep − v_0^Keep) + (-1)^{t_1} · V_CW, which simplifies to this.
                self.va2[k] = _mm_add_epi64(_mm_sub_epi64(lose, keep), bam);
                super::put(key, self.values + 16 * level, &from_m(value).to_le_bytes());
            } else {
                // One value block: low half = left, high half = right.
                let dv = _mm_sub_epi64(_mm_xor_si128(cv0[j1], s1), _mm_xor_si128(cv0[j0], s0));
                let (dlo, dhi) = (_mm_cvtsi128_si64(dv) as u64, _mm_extract_epi64::<1>(dv) as u64);
                let lose = dhi ^ ((dhi ^ dlo) & am64);
                let keep = dlo ^ dhi ^ lose;
                let bam = self.beta1[k] & am64;
                let pre = lose.wrapping_sub(self.va1[k]).wrapping_add(bam);
                let value = (pre ^ tm1).wrapping_sub(tm1);
                self.va1[k] = lose.wrapping_sub(keep).wrapping_add(bam);
                super::put(key, self.values + 8 * level, &value.to_le_bytes());
            }
            super::put(key, SEEDS + 16 * level, &from_m(seed).to_le_bytes());
            let tm0 = _mm_set1_epi64x(0i64.wrapping_sub(t0 as i64));
            let tm1v = _mm_set1_epi64x(tm1 as i64);
            self.s[j0] = _mm_xor_si128(_mm_andnot_si128(one, keep0), _mm_and_si128(seed, tm0));
            self.s[j1] = _mm_xor_si128(_mm_andnot_si128(one, keep1), _mm_and_si128(seed, tm1v));
            self.t[j0] = (_mm_cvtsi128_si64(keep0) as u64 & 1) ^ (t0 & cw_keep);
            self.t[j1] = (_mm_cvtsi128_si64(keep1) as u64 & 1) ^ (t1 & cw_keep);
            let c = &mut self.ctrl[k];
            c[0] |= cw_tl << level;
            c[1] |= cw_tr << level;
        }
    }

    /// The leaves: `CW_{n+1} = (-1)^{t_1} · (Convert(s_1) − Convert(s_0) − V_α)` (one more value
    /// block per seed for DCF2), then each key's header, control bits and final CW.
    #[inline]
    #[target_feature(enable = "aes,sse4.1,avx")]
    fn finish(&mut self, rk: &RoundKeys, lay: &Layout, n_bits: u32) {
        let [_, _, rkv] = &rk.0;
        let mut conv = [_mm_setzero_si128(); 2 * GG];
        if P::CONVERT_BY_PRG {
            for (c, s) in conv.iter_mut().zip(&self.s) {
                *c = _mm_xor_si128(*s, rkv[0]);
            }
            for k in &rkv[1..10] {
                for c in conv.iter_mut() {
                    *c = _mm_aesenc_si128(*c, *k);
                }
            }
            for (c, s) in conv.iter_mut().zip(&self.s) {
                *c = _mm_xor_si128(_mm_aesenclast_si128(*c, rkv[10]), *s);
            }
        }
        for k in 0..GG {
            let (j0, j1) = (2 * k, 2 * k + 1);
            let tm1 = 0u64.wrapping_sub(self.t[j1]);
            let fin = if P::WORDS == 2 {
                let d = _mm_sub_epi64(_mm_sub_epi64(conv[j1], conv[j0]), self.va2[k]);
                let tm = _mm_set1_epi64x(tm1 as i64);
                from_m(_mm_sub_epi64(_mm_xor_si128(d, tm), tm))
            } else {
                // Convert = the high 64 bits of the seed.
                let c0 = _mm_extract_epi64::<1>(self.s[j0]) as u64;
                let c1 = _mm_extract_epi64::<1>(self.s[j1]) as u64;
                let d = c1.wrapping_sub(c0).wrapping_sub(self.va1[k]);
                u128::from((d ^ tm1).wrapping_sub(tm1))
            };
            let mut fb = [0u8; 16];
            fb.copy_from_slice(&fin.to_le_bytes());
            let key = &mut *self.keys[k];
            super::write_key_head(key, n_bits, P::TAG, self.root[k]);
            super::write_key_tail(key, lay, self.ctrl[k], P::read(&fb));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::prg::{Prg, PrgKey, SeedRng};

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

    /// Both parties' keys of `count` random pairs from the kernel, with or without VAES.
    fn keys_with<P: Payload>(vaes: bool, n_bits: u32, count: usize, beta: impl Fn(u64) -> P) -> Option<Vec<u8>> {
        let kernel = Keygen::with_vaes(vaes)?;
        let lay = Layout::new(n_bits, P::WORDS);
        let mut r = SeedRng::from_seed([n_bits as u8; 32]);
        let mask = if n_bits == 64 { u64::MAX } else { (1 << n_bits) - 1 };
        let at: Vec<u64> = (0..count).map(|i| if i % 3 == 0 { mask } else { r.next_u64() & mask }).collect();
        let bt: Vec<P> = (0..count).map(|_| beta(r.next_u64())).collect();
        let roots: Vec<u128> = (0..2 * count).map(|_| r.next_u128() & !1).collect();
        let mut out = vec![0u8; count * lay.len];
        kernel.run(&lay, n_bits, &at, &bt, &roots, &mut out);
        Some(out)
    }

    #[test]
    fn vaes_key_generation_equals_aes_ni_byte_for_byte() {
        if !(available() && vaes_available()) {
            eprintln!("SKIPPED: this CPU has no VAES; the AES-NI path is what runs here");
            return;
        }
        for n_bits in [1u32, 2, 7, 16, 33, 63, 64] {
            // Odd counts leave a pair with one group (the VAES path walks an empty second one).
            for count in [1usize, 2, 3, 15, 16] {
                let plain = keys_with(false, n_bits, count, |b| b);
                assert_eq!(keys_with(true, n_bits, count, |b| b), plain, "DCF n={n_bits} count={count}");
                let plain2 = keys_with(false, n_bits, count, |b| [b, !b]);
                assert_eq!(keys_with(true, n_bits, count, |b| [b, !b]), plain2, "DCF2 n={n_bits} count={count}");
            }
        }
    }

    #[test]
    fn vaes_evaluation_equals_aes_ni() {
        if !(available() && vaes_available()) {
            eprintln!("SKIPPED: this CPU has no VAES; the AES-NI path is what runs here");
            return;
        }
        fn check<P: Payload + std::fmt::Debug>(beta: impl Fn(u64) -> P + Copy) {
            for n_bits in [1u32, 5, 16, 63, 64] {
                // Counts around the pair size 2G, so pairs with an empty or short second group occur.
                for count in [1usize, 6, 7, 8, 13, 14, 15, 29, 100] {
                    let keys = keys_with(false, n_bits, count, beta).unwrap_or_default();
                    let batch = KeyBatch::<P>::parse(std::borrow::Cow::Owned(keys), count, n_bits, true).unwrap();
                    let mut r = SeedRng::from_seed([count as u8; 32]);
                    let mask = if n_bits == 64 { u64::MAX } else { (1 << n_bits) - 1 };
                    let xs: Vec<u64> = (0..count).map(|_| r.next_u64() & mask).collect();
                    for party in [0u8, 1] {
                        let run = |vaes: bool| {
                            let mut out = vec![P::default(); count];
                            assert!(eval_range_with(party, &batch, 0, &xs, &mut out, vaes));
                            out
                        };
                        assert_eq!(run(true), run(false), "n={n_bits} count={count} party {party}");
                    }
                }
            }
        }
        check::<u64>(|b| b);
        check::<[u64; 2]>(|b| [b, b.rotate_left(9)]);
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
