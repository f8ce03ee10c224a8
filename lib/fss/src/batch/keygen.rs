//! Generating key pairs straight into the two parties' byte buffers: tiles of keys walked level
//! by level (portable), on scoped threads for large batches; x86-64 with AES-NI hands the work
//! to [`super::aesni::Keygen`].

use super::eval::{MAX_LEVELS, par_threads, run_parts};
use super::*;

/// Argument checks of key generation; returns the key layout.
pub(super) fn check_keygen<P: Payload>(alphas: &[u64], betas: &[P], n_bits: u32) -> Result<Layout, FssError> {
    check_bits(n_bits)?;
    if betas.len() != alphas.len() {
        return Err(FssError::LengthMismatch { what: "betas", expected: alphas.len(), got: betas.len() });
    }
    check_all_in_domain(alphas, n_bits).map_err(|e| match e {
        FssError::OutOfDomain { value, n_bits, .. } => FssError::OutOfDomain { what: "alpha", value, n_bits },
        other => other,
    })?;
    let lay = Layout::new(n_bits, P::WORDS);
    alphas.len().checked_mul(lay.len).ok_or(FssError::LengthMismatch {
        what: "keys (output size overflows)",
        expected: usize::MAX / lay.len,
        got: alphas.len(),
    })?;
    Ok(lay)
}

/// Generates one key pair per `(alphas[i], betas[i])` and appends party 0's serialised keys to
/// `out0`, party 1's to `out1`, in order. Draws the same randomness in the same order as
/// `dcf::keygen_batch` (two root seeds per key, party 0's first); nothing is appended on error.
/// Runs the AES-NI kernel where the CPU has one ([`aesni::Keygen`]), else [`TileGen`].
pub(crate) fn keygen_into<P: Payload>(
    alphas: &[u64],
    betas: &[P],
    n_bits: u32,
    rng: &mut SeedRng,
    out0: &mut Vec<u8>,
    out1: &mut Vec<u8>,
) -> Result<(), FssError> {
    keygen_into_with(alphas, betas, n_bits, rng, out0, out1, false)
}

/// [`keygen_into`], on the portable path if `portable` (the tests' reference).
pub(super) fn keygen_into_with<P: Payload>(
    alphas: &[u64],
    betas: &[P],
    n_bits: u32,
    rng: &mut SeedRng,
    out0: &mut Vec<u8>,
    out1: &mut Vec<u8>,
    portable: bool,
) -> Result<(), FssError> {
    let lay = check_keygen(alphas, betas, n_bits)?;
    let total = alphas.len() * lay.len;
    out0.reserve(total);
    out1.reserve(total);
    let mut generator = Gen::<P>::new(n_bits, portable);
    let tile = generator.tile();
    let mut roots = vec![0u128; 2 * tile];
    for (at, bt) in alphas.chunks(tile).zip(betas.chunks(tile)) {
        let rt = &mut roots[..2 * at.len()];
        for r in rt.iter_mut() {
            *r = rng.next_u128() & !1;
        }
        let keys = generator.run(at, bt, rt);
        out0.extend_from_slice(keys);
        let start = out1.len();
        out1.extend_from_slice(keys);
        if let Some(dst) = out1.get_mut(start..) {
            set_roots(dst, &lay, rt, 1);
        }
    }
    Ok(())
}

/// [`keygen_into`] split across up to `max_threads` scoped threads (see [`par_threads`]), with
/// byte-identical output: the root seeds are drawn up front in the same order.
pub(crate) fn keygen_into_par<P: Payload>(
    alphas: &[u64],
    betas: &[P],
    n_bits: u32,
    rng: &mut SeedRng,
    out0: &mut Vec<u8>,
    out1: &mut Vec<u8>,
    max_threads: usize,
) -> Result<(), FssError> {
    keygen_into_par_with(alphas, betas, n_bits, rng, out0, out1, max_threads, false)
}

/// `out`'s bytes followed by `extra` zero bytes to fill in, taking `out`. An output with room
/// for them (a recycled material buffer) is extended in place: its pages are mapped already.
/// Otherwise a zeroed allocation comes from the OS untouched, so the key generators' threads
/// fault their own pages in, and what `out` already holds (a material header, other shares:
/// small) is copied in front, rather than the keys (large) appended after it.
pub(crate) fn grow(out: &mut Vec<u8>, extra: usize) -> Vec<u8> {
    let total = out.len() + extra;
    if out.capacity() >= total {
        let mut v = std::mem::take(out);
        v.resize(total, 0);
        v
    } else {
        let mut fresh = vec![0u8; total];
        fresh[..out.len()].copy_from_slice(out);
        fresh
    }
}

/// [`keygen_into_par`], on the portable path if `portable`.
#[allow(clippy::too_many_arguments)]
pub(super) fn keygen_into_par_with<P: Payload>(
    alphas: &[u64],
    betas: &[P],
    n_bits: u32,
    rng: &mut SeedRng,
    out0: &mut Vec<u8>,
    out1: &mut Vec<u8>,
    max_threads: usize,
    portable: bool,
) -> Result<(), FssError> {
    let threads = par_threads(alphas.len(), max_threads);
    if threads <= 1 {
        return keygen_into_with(alphas, betas, n_bits, rng, out0, out1, portable);
    }
    let lay = check_keygen(alphas, betas, n_bits)?;
    let roots: Vec<u128> = (0..2 * alphas.len()).map(|_| rng.next_u128() & !1).collect();
    let (at0, at1) = (out0.len(), out1.len());
    let mut fresh0 = grow(out0, alphas.len() * lay.len);
    let mut fresh1 = grow(out1, alphas.len() * lay.len);
    let per = alphas.len().div_ceil(threads).div_ceil(GEN_TILE) * GEN_TILE;
    let parts: Vec<_> = alphas
        .chunks(per)
        .zip(betas.chunks(per))
        .zip(roots.chunks(2 * per))
        .zip(fresh0[at0..].chunks_mut(per * lay.len).zip(fresh1[at1..].chunks_mut(per * lay.len)))
        .map(|p| (0, p))
        .collect();
    run_parts(parts, |_, (((at, bt), rt), (o0, o1))| {
        let mut generator = Gen::<P>::new(n_bits, portable);
        let tile = generator.tile();
        let chunks = at.chunks(tile).zip(bt.chunks(tile)).zip(rt.chunks(2 * tile));
        let outs = o0.chunks_mut(tile * lay.len).zip(o1.chunks_mut(tile * lay.len));
        for (((a, b), r), (d0, d1)) in chunks.zip(outs) {
            generator.run_into(a, b, r, d0);
            d1.copy_from_slice(d0);
            set_roots(d1, &lay, r, 1);
        }
    });
    *out0 = fresh0;
    *out1 = fresh1;
    Ok(())
}

/// A key generator for chunks of up to [`Gen::tile`] keys: the AES-NI kernel where the CPU has
/// one, else the portable [`TileGen`].
pub(super) enum Gen<P> {
    #[cfg(target_arch = "x86_64")]
    Ni {
        /// Boxed: it holds the round keys (528 bytes).
        kernel: Box<aesni::Keygen>,
        n_bits: u32,
        lay: Layout,
        /// Party 0's serialised keys of the chunk.
        out: Vec<u8>,
    },
    Portable(Box<TileGen<P>>),
}

impl<P: Payload> Gen<P> {
    pub(super) fn new(n_bits: u32, portable: bool) -> Self {
        #[cfg(target_arch = "x86_64")]
        if !portable && let Some(kernel) = aesni::Keygen::new() {
            let lay = Layout::new(n_bits, P::WORDS);
            return Gen::Ni { kernel: Box::new(kernel), n_bits, lay, out: vec![0; aesni::GEN_CHUNK * lay.len] };
        }
        let _ = portable;
        Gen::Portable(Box::new(TileGen::new(n_bits)))
    }

    /// Keys per call of [`Gen::run`].
    pub(super) fn tile(&self) -> usize {
        match self {
            #[cfg(target_arch = "x86_64")]
            Gen::Ni { .. } => aesni::GEN_CHUNK,
            Gen::Portable(_) => GEN_TILE,
        }
    }

    /// Generates the key pairs of `at`, `bt` (at most [`Gen::tile`] of them; root seeds
    /// `roots[2k + b]` for party `b` of key `k`) and returns party 0's serialised keys; party 1's
    /// differ only in the root seeds (see [`set_roots`]).
    /// [`Self::run`] into `dst` (zeroed, exactly the chunk's bytes): the kernel writes there
    /// directly, saving a copy of every key.
    pub(super) fn run_into(&mut self, at: &[u64], bt: &[P], roots: &[u128], dst: &mut [u8]) {
        match self {
            #[cfg(target_arch = "x86_64")]
            Gen::Ni { kernel, n_bits, lay, .. } => {
                let g = at.len().min(aesni::GEN_CHUNK);
                kernel.run(lay, *n_bits, &at[..g], bt, roots, &mut dst[..g * lay.len]);
            }
            Gen::Portable(_) => {
                let keys = self.run(at, bt, roots);
                dst.copy_from_slice(keys);
            }
        }
    }

    pub(super) fn run(&mut self, at: &[u64], bt: &[P], roots: &[u128]) -> &[u8] {
        match self {
            #[cfg(target_arch = "x86_64")]
            Gen::Ni { kernel, n_bits, lay, out } => {
                let g = at.len().min(aesni::GEN_CHUNK);
                let out = &mut out[..g * lay.len];
                kernel.run(lay, *n_bits, &at[..g], bt, roots, out);
                out
            }
            Gen::Portable(tg) => {
                for (dst, src) in tg.roots.iter_mut().zip(roots) {
                    *dst = *src;
                }
                tg.run(at, bt)
            }
        }
    }
}

/// Writes party `party`'s root seeds (`roots[2k + party]`) into the serialised keys of `keys`.
pub(super) fn set_roots(keys: &mut [u8], lay: &Layout, roots: &[u128], party: usize) {
    for (key, rp) in keys.chunks_exact_mut(lay.len).zip(roots.chunks_exact(2)) {
        if let Some(r) = rp.get(party) {
            put(key, ROOT, &r.to_le_bytes());
        }
    }
}

/// Seeds of one [`TileGen`] tile (two per key).
pub(super) const GEN_SEEDS: usize = 2 * GEN_TILE;

/// Length of the AES buffers of [`TileGen`]: the tile's seeds plus room for padding to any
/// backend's group (at most 64 blocks); a power of two, so masked indices need no bounds checks.
pub(super) const GEN_BUF: usize = 2 * GEN_SEEDS;

/// Scratch and output buffers of key generation for one tile of up to [`GEN_TILE`] keys, as
/// fixed-size arrays (structure of arrays, indices masked to the array size).
pub(super) struct TileGen<P> {
    pub(super) n_bits: u32,
    pub(super) lay: Layout,
    /// AES buffers: left, right, value (direction 0), value (direction 1, DCF2 only).
    pub(super) bl: Box<[Block; GEN_BUF]>,
    pub(super) br: Box<[Block; GEN_BUF]>,
    pub(super) bv0: Box<[Block; GEN_BUF]>,
    pub(super) bv1: Box<[Block; GEN_BUF]>,
    /// Root seeds of the tile, index `2k + b` for party `b` of key `k` (filled by the caller).
    pub(super) roots: Vec<u128>,
    pub(super) s: [u128; GEN_SEEDS],
    pub(super) t: [u8; GEN_SEEDS],
    /// `V_α` per key: the running correction of the on-path value shares.
    pub(super) v_alpha: [P; GEN_TILE],
    pub(super) ctrl: [[u64; 2]; GEN_TILE],
    /// Tree path of each `α`: bit `l` = direction at level `l`.
    pub(super) apath: [u64; GEN_TILE],
    /// `cw_s[level][k]`: seed CW of level `level` of key `k`, gathered level by level and
    /// written key by key at the end (rows padded so a column does not crowd one L1 set).
    pub(super) cw_s: Vec<[u128; GEN_TILE + 4]>,
    /// `cw_v[level][k]`: value CW of level `level` of key `k`, likewise.
    pub(super) cw_v: Vec<[P; GEN_TILE + 8]>,
    /// Party 0's serialised keys of the tile.
    pub(super) out0: Vec<u8>,
}

impl<P: Payload> TileGen<P> {
    pub(super) fn new(n_bits: u32) -> Self {
        let lay = Layout::new(n_bits, P::WORDS);
        TileGen {
            n_bits,
            lay,
            bl: Box::new([Block::default(); GEN_BUF]),
            br: Box::new([Block::default(); GEN_BUF]),
            bv0: Box::new([Block::default(); GEN_BUF]),
            bv1: Box::new([Block::default(); GEN_BUF]),
            roots: vec![0; GEN_SEEDS],
            s: [0; GEN_SEEDS],
            t: [0; GEN_SEEDS],
            v_alpha: [P::default(); GEN_TILE],
            ctrl: [[0; 2]; GEN_TILE],
            apath: [0; GEN_TILE],
            cw_s: vec![[0; GEN_TILE + 4]; MAX_LEVELS],
            cw_v: vec![[P::default(); GEN_TILE + 8]; MAX_LEVELS],
            out0: vec![0; GEN_TILE * lay.len],
        }
    }

    /// Generates the key pairs of one tile (`at.len() ≤ GEN_TILE`, roots already in
    /// `self.roots`) and returns party 0's serialised keys; party 1's differ only in the root
    /// seeds (see [`set_roots`]).
    pub(super) fn run(&mut self, at: &[u64], bt: &[P]) -> &[u8] {
        const BM: usize = GEN_BUF - 1;
        const SM: usize = GEN_SEEDS - 1;
        const KM: usize = GEN_TILE - 1;
        let prg = Prg::global();
        let g = at.len().min(bt.len()).min(GEN_TILE);
        let m = 2 * g;
        let lay = self.lay;
        let n_bits = self.n_bits;
        let TileGen { bl, br, bv0, bv1, roots, s, t, v_alpha, ctrl, apath, cw_s, cw_v, out0, .. } = self;
        let out0 = &mut out0[..g * lay.len];
        for ((sj, tj), (j, r)) in s.iter_mut().zip(t.iter_mut()).zip(roots.iter().enumerate()).take(m) {
            *sj = *r;
            *tj = (j & 1) as u8;
        }
        v_alpha.fill(P::default());
        ctrl.fill([0; 2]);
        for (p, alpha) in apath.iter_mut().zip(at) {
            // Bit `l` = bit `n − 1 − l` of α.
            *p = alpha.reverse_bits() >> (64 - n_bits);
        }
        let two = P::VALUE_BLOCKS == 2;

        for (level, (row_s, row_v)) in cw_s.iter_mut().zip(cw_v.iter_mut()).enumerate().take(lay.n) {
            for j in 0..m {
                let sj = s[j & SM];
                let b = block_from_u128(sj);
                bl[j & BM] = b;
                br[j & BM] = b;
                bv0[j & BM] = block_from_u128(P::value_input(sj, 0));
                if two {
                    bv1[j & BM] = block_from_u128(P::value_input(sj, 1));
                }
            }
            prg.encrypt_padded(PrgKey::Left, &mut bl[..], m);
            prg.encrypt_padded(PrgKey::Right, &mut br[..], m);
            prg.encrypt_padded(PrgKey::Value, &mut bv0[..], m);
            if two {
                prg.encrypt_padded(PrgKey::Value, &mut bv1[..], m);
            }
            for (k, beta) in bt.iter().enumerate().take(g) {
                let km = k & KM;
                let a = ((apath[km] >> level) & 1) as u8;
                let am = mask128(a);
                let am64 = mask64(a);
                let (j0, j1) = ((2 * k) & SM, (2 * k + 1) & SM);
                let (s0, s1) = (s[j0], s[j1]);
                // Children with their control bits in bit 0.
                let l0 = u128_from_block(&bl[j0 & BM]) ^ s0;
                let l1 = u128_from_block(&bl[j1 & BM]) ^ s1;
                let r0 = u128_from_block(&br[j0 & BM]) ^ s0;
                let r1 = u128_from_block(&br[j1 & BM]) ^ s1;
                // α_i = 0: keep L, lose R; α_i = 1: keep R, lose L (branch-free).
                let keep0 = l0 ^ ((l0 ^ r0) & am);
                let keep1 = l1 ^ ((l1 ^ r1) & am);
                let (dl, dr) = (l0 ^ l1, r0 ^ r1);
                let dk = keep0 ^ keep1;
                // Seed CW = s_0^Lose ⊕ s_1^Lose; the control-bit CWs from bit 0 of the XORs.
                let seed = (dk ^ dl ^ dr) & !1;
                let cw_tl = (dl as u8 & 1) ^ a ^ 1;
                let cw_tr = (dr as u8 & 1) ^ a;
                let cw_keep = (dk as u8 & 1) ^ 1;
                let value_of = |j: usize, sb: u128| {
                    let o0 = u128_from_block(&bv0[j & BM]) ^ P::value_input(sb, 0);
                    let o1 = if two { u128_from_block(&bv1[j & BM]) ^ P::value_input(sb, 1) } else { o0 };
                    let (vl, vr) = (P::value(o0, 0), P::value(o1, 1));
                    (P::select(am64, vr, vl), P::select(am64, vl, vr))
                };
                let (keep_v0, lose_v0) = value_of(j0, s0);
                let (keep_v1, lose_v1) = value_of(j1, s1);
                let (t0, t1) = (t[j0], t[j1]);
                let va = &mut v_alpha[km];
                // V_CW = (-1)^{t_1} · (v_1^Lose − v_0^Lose − V_α [+ β if Lose = L]).
                let value = lose_v1.sub(lose_v0).sub(*va).add(beta.and(am64)).signed(t1);
                // V_α ← V_α − v_1^Keep + v_0^Keep + (-1)^{t_1} · V_CW.
                *va = va.sub(keep_v1).add(keep_v0).add(value.signed(t1));
                s[j0] = (keep0 & !1) ^ (mask128(t0) & seed);
                t[j0] = (keep0 as u8 & 1) ^ (t0 & cw_keep);
                s[j1] = (keep1 & !1) ^ (mask128(t1) & seed);
                t[j1] = (keep1 as u8 & 1) ^ (t1 & cw_keep);
                let c = &mut ctrl[km];
                c[0] |= u64::from(cw_tl) << level;
                c[1] |= u64::from(cw_tr) << level;
                row_s[km] = seed;
                row_v[km] = value;
            }
        }
        // The gathered CWs into the serialised keys, key by key (sequential stores).
        let vw = 8 * P::WORDS;
        for (k, key) in out0.chunks_exact_mut(lay.len).enumerate() {
            let km = k & KM;
            if let Some(d) = key.get_mut(SEEDS..lay.values) {
                for (c, row) in d.chunks_exact_mut(16).zip(cw_s.iter()) {
                    c.copy_from_slice(&row[km].to_le_bytes());
                }
            }
            if let Some(d) = key.get_mut(lay.values..lay.ctrl) {
                for (c, row) in d.chunks_exact_mut(vw).zip(cw_v.iter()) {
                    row[km].write(c);
                }
            }
        }

        // Leaves: CW_{n+1} = (-1)^{t_1} · (Convert(s_1) − Convert(s_0) − V_α).
        if P::CONVERT_BY_PRG {
            for (v, sj) in bv0.iter_mut().zip(s.iter()).take(m) {
                *v = block_from_u128(*sj);
            }
            prg.encrypt_padded(PrgKey::Value, &mut bv0[..], m);
        }
        let leaves = s.chunks_exact(2).zip(t.chunks_exact(2)).zip(bv0.chunks_exact(2));
        for (k, ((((sp, tp), vp), (va, c)), rp)) in
            leaves.zip(v_alpha.iter().zip(ctrl.iter())).zip(roots.chunks_exact(2)).take(g).enumerate()
        {
            let conv = |b: usize| P::convert(sp[b], u128_from_block(&vp[b]) ^ sp[b]);
            let fin = conv(1).sub(conv(0)).sub(*va).signed(tp[1]);
            if let Some(key) = out0.get_mut(k * lay.len..(k + 1) * lay.len) {
                write_key_head(key, n_bits, P::TAG, rp[0]);
                write_key_tail(key, &lay, *c, fin);
            }
        }
        out0
    }
}
