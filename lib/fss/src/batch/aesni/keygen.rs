//! Key generation on AES-NI (and VAES): one key pair per group, both parties' seeds walked
//! together, CWs written straight into party 0's key (see the parent module).

use super::*;

/// Keys per group in key generation: each key has two seeds (one per party) and needs three (DCF)
/// or four (DCF2) PRG blocks per seed and level, so one key already has 6 or 8 independent AES
/// blocks per level, and two alternating groups 12 or 16 (1 measured best of 1…3: 2 about 5 %
/// slower for DCF2, 3 about 10 % slower for both).
pub(super) const GG: usize = 1;

/// Keys per call of [`Keygen::run`]: their serialised keys (about 25 KiB for DCF, 33 KiB for DCF2
/// at `n = 63`) are still in L1 or L2 when the caller copies them into both parties' buffers.
pub(in crate::batch) const GEN_CHUNK: usize = 16;

/// The AES-NI key-generation kernel: only constructed where the CPU has AES-NI, SSE4.1 and AVX
/// (AVX for the three-operand VEX encodings, which saved a few per cent of register moves).
pub(in crate::batch) struct Keygen {
    pub(super) rk: RoundKeys,
    /// Run the AES of both groups as 256-bit VAES instructions (two blocks each).
    pub(super) vaes: bool,
}

/// Whether this CPU has VAES (and AVX2) besides what [`Keygen`] needs.
pub(super) fn vaes_available() -> bool {
    std::arch::is_x86_feature_detected!("vaes") && std::arch::is_x86_feature_detected!("avx2")
}

impl Keygen {
    /// The kernel, or `None` if this CPU cannot run it.
    #[allow(unsafe_code)]
    pub(in crate::batch) fn new() -> Option<Keygen> {
        Keygen::with_vaes(true)
    }

    /// [`Keygen::new`], using VAES only if `vaes` and the CPU has it (tests run both paths).
    #[allow(unsafe_code)]
    pub(in crate::batch) fn with_vaes(vaes: bool) -> Option<Keygen> {
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
    pub(in crate::batch) fn run<P: Payload>(
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
pub(super) fn keygen_ni<P: Payload>(
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
pub(super) fn keygen_vaes<P: Payload>(
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
pub(super) fn aes_gen_vaes<P: Payload>(
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
pub(super) fn gen_pair<P: Payload>(rk: &RoundKeys, n: usize, a: &mut GenLanes<'_, P>, b: &mut GenLanes<'_, P>) {
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
pub(super) fn aes_gen<P: Payload>(rk: &RoundKeys, x: &[__m128i; 2 * GG], out: &mut GenAes) {
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
pub(super) struct GenAes {
    pub(super) cl: [__m128i; 2 * GG],
    pub(super) cr: [__m128i; 2 * GG],
    pub(super) cv0: [__m128i; 2 * GG],
    pub(super) cv1: [__m128i; 2 * GG],
}

/// The state of [`GG`] key pairs being generated (lanes past the real keys compute on zeros and
/// write nothing).
pub(super) struct GenLanes<'k, P> {
    /// Current seeds (bit 0 clear), index `2k + b` for party `b` of key `k`.
    pub(super) s: [__m128i; 2 * GG],
    /// Current control bits (0 or 1), same index.
    pub(super) t: [u64; 2 * GG],
    /// `V_α` of each key: DCF in `va1`, DCF2 (both words) in `va2`.
    pub(super) va1: [u64; GG],
    pub(super) va2: [__m128i; GG],
    /// `β` of each key, in the same two forms.
    pub(super) beta1: [u64; GG],
    pub(super) beta2: [__m128i; GG],
    /// Tree path of each `α`: bit `l` = direction at level `l`.
    pub(super) path: [u64; GG],
    /// Control-bit CWs of each key: `[t_L, t_R]`, bit `l` = level `l`.
    pub(super) ctrl: [[u64; 2]; GG],
    /// Party 0's root seed of each key.
    pub(super) root: [u128; GG],
    /// Offset of the value CWs in a serialised key.
    pub(super) values: usize,
    /// Party 0's serialised key of each lane (empty past the real keys).
    pub(super) keys: [&'k mut [u8]; GG],
    pub(super) aes: GenAes,
    pub(super) _payload: PhantomData<P>,
}

impl<'k, P: Payload> GenLanes<'k, P> {
    #[inline]
    #[target_feature(enable = "aes,sse4.1,avx")]
    pub(super) fn new(lay: &Layout, n_bits: u32, at: &[u64], bt: &[P], roots: &[u128], out: &'k mut [u8]) -> Self {
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
    pub(super) fn aes(&mut self, rk: &RoundKeys) {
        aes_gen::<P>(rk, &self.s, &mut self.aes);
    }

    /// Finishes level `level` after [`GenLanes::aes`]: MMO feed-forward, the level's CWs (written
    /// into the keys), next seeds and control bits. The same arithmetic as `TileGen::run`, in SSE
    /// registers where it is 128 bits wide.
    #[inline]
    #[target_feature(enable = "aes,sse4.1,avx")]
    pub(super) fn apply(&mut self, level: usize) {
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
                crate::batch::put(key, self.values + 16 * level, &from_m(value).to_le_bytes());
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
                crate::batch::put(key, self.values + 8 * level, &value.to_le_bytes());
            }
            crate::batch::put(key, SEEDS + 16 * level, &from_m(seed).to_le_bytes());
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
    pub(super) fn finish(&mut self, rk: &RoundKeys, lay: &Layout, n_bits: u32) {
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
            crate::batch::write_key_head(key, n_bits, P::TAG, self.root[k]);
            crate::batch::write_key_tail(key, lay, self.ctrl[k], P::read(&fb));
        }
    }
}
