//! One-key-per-point evaluation on AES-NI (and VAES): groups of keys walked key-major, two
//! groups alternating (see the parent module).

use super::*;

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
pub(super) fn eval_range_ni<P: Payload>(party: u8, b: &KeyBatch<'_, P>, first: usize, xs: &[u64], out: &mut [P]) {
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
pub(super) fn eval_range_vaes<P: Payload>(party: u8, b: &KeyBatch<'_, P>, first: usize, xs: &[u64], out: &mut [P]) {
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
pub(super) fn pair<P: Payload>(rk: &RoundKeys, lay: &Layout, a: &mut Lanes<'_, P>, b: &mut Lanes<'_, P>, ahead: &[u8]) {
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
pub(super) struct PairedKeys {
    pub(super) child: [[__m256i; 11]; 4],
    pub(super) value: [__m256i; 11],
}

impl PairedKeys {
    #[target_feature(enable = "aes,sse4.1,avx,avx2,vaes")]
    pub(super) fn new(rk: &RoundKeys) -> PairedKeys {
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
pub(super) fn pair_vaes<P: Payload>(
    pk: &PairedKeys,
    lay: &Layout,
    a: &mut Lanes<'_, P>,
    b: &mut Lanes<'_, P>,
    ahead: &[u8],
) {
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
pub(super) fn aes_lanes_vaes<P: Payload>(pk: &PairedKeys, a: &mut Lanes<'_, P>, b: &mut Lanes<'_, P>) {
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
pub(super) fn value_input<P: Payload>(s: __m128i, bit: usize) -> __m128i {
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
pub(super) fn aes_lanes<P: Payload>(
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
pub(super) struct Lanes<'k, P> {
    /// Current seed of each lane (bit 0 clear), as an SSE value.
    pub(super) s: [__m128i; G],
    /// Current control bit of each lane (0 or 1).
    pub(super) t: [u64; G],
    /// Running output share of each lane.
    ///
    /// In SSE registers: DCF2's two words as they are; for DCF the value word of the direction
    /// taken is masked into its own half of the 128-bit value block (low = left, high = right),
    /// so no per-level select or extraction is needed, and the two halves are summed at the leaf.
    pub(super) acc: [__m128i; G],
    /// Tree path of each lane: bit `l` = direction at level `l`.
    pub(super) path: [u64; G],
    /// The control-bit CW on each lane's path: bit `l` = `t_L` or `t_R` of level `l`.
    pub(super) tcw: [u64; G],
    /// Each lane's seed CWs, one 16-byte row per level.
    pub(super) seed_cws: [&'k [[u8; 16]]; G],
    /// Each lane's value CWs as 8-byte words (DCF: one word per level).
    pub(super) value_cws: [&'k [[u8; 8]]; G],
    /// The same bytes as 16-byte rows (DCF2: one row per level).
    pub(super) value_cws2: [&'k [[u8; 16]]; G],
    /// Each lane's final CW and the rest of its key.
    pub(super) tails: [&'k [u8]; G],
    /// The current level's direction and AES outputs of each lane.
    pub(super) bit: [usize; G],
    pub(super) c: [__m128i; G],
    pub(super) v: [__m128i; G],
    pub(super) _payload: PhantomData<P>,
}

impl<'k, P: Payload> Lanes<'k, P> {
    #[inline]
    #[target_feature(enable = "aes,sse4.1")]
    pub(super) fn new(party: u8, lay: &Layout, keys: &[&'k [u8]; G], path: &[u64; G]) -> Self {
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
    pub(super) fn aes(&mut self, rk: &RoundKeys, level: usize) {
        for j in 0..G {
            self.bit[j] = ((self.path[j] >> level) & 1) as usize;
        }
        aes_lanes::<P>(rk, &self.bit, &self.s, &mut self.c, &mut self.v);
    }

    /// Finishes level `level` after [`Lanes::aes`]: MMO feed-forward, CWs, next seed and bit.
    #[inline]
    #[target_feature(enable = "aes,sse4.1")]
    pub(super) fn apply(&mut self, level: usize) {
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
    pub(super) fn finish(&self, rk: &RoundKeys, party: u8, out: &mut [P]) {
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
