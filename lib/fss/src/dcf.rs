//! Distributed comparison function over an `n`-bit domain with output group `Z(2^64)`
//! (Boyle–Chandran–Gilboa–Gupta–Ishai–Kohli–Ryffel, Eurocrypt 2021, ePrint 2020/1392, Fig. 3).
//!
//! `f^<_{α,β}(x) = β` if `x < α` (unsigned, on `n`-bit values), else `0`. [`keygen`] returns keys
//! `(k0, k1)` with `eval(0, k0, x) + eval(1, k1, x) = f^<_{α,β}(x)` (wrapping) for every
//! `x < 2^n`. (Other comparisons follow by linearity: for `x ≥ α` party 0 outputs `β − y_0` and
//! party 1 `−y_1`; `x ≤ α` is `f^<_{α+1,β}` for `α < 2^n − 1`.)
//!
//! # Construction
//!
//! The DPF tree of [`super::dpf`] plus a value correction word per level. Per level the PRG
//! expands the parent seed `s` into
//!
//! ```text
//! s_L‖t_L = AES_kL(s) ⊕ s,   s_R‖t_R = AES_kR(s) ⊕ s,   v_L‖v_R = AES_kV(s) ⊕ s
//! ```
//!
//! (`v_L` = low 64 bits, `v_R` = high 64 bits, each already an element of `Z(2^64)`, so
//! `Convert` is the identity on them). Where `x` leaves the path to `α` to the *left* of it
//! (`x_i = 0 < α_i = 1`), the value correction word makes the two parties' running sums differ by
//! exactly `β`; elsewhere off the path they cancel, and on the path a final correction word zeroes
//! the sum at `x = α`.
//!
//! Costs: **`2n` AES calls per evaluation** (per level one child-seed block with `kL` or `kR`
//! and one value block with `kV`; no key schedules, nothing extra at the leaf); [`eval_batch`]
//! issues them level by level over tiles of [`EVAL_TILE`] points per `encrypt_blocks` call. Key
//! generation: `6n` AES calls (three blocks per level for each party's seed).
//!
//! # Key size
//!
//! [`DcfKey::serialized_len`]`(n) = 2 + 16 + n·(16 + 8) + ⌈2n/8⌉ + 8` bytes: 2-byte header (type
//! tag, `n`), root seed, per level a 128-bit seed CW, a 64-bit value CW and two control-bit CWs
//! (packed), and the 64-bit final CW. `n = 64` → 1578 B, `n = 32` → 802 B, `n = 16` → 414 B.
//! This is BCG+21's `λ + n(λ + 2 + ℓ) + ℓ` bits (ℓ = 64-bit outputs) plus the header, and
//! matches LLAMA's CPU key pack (≈ 1.56 KB for n = ℓ = 64). EzPC's GPU-MPC DCF (≈ 951 B at
//! n = 64) is smaller because its outputs are 1 bit and it terminates 8 levels early.

use std::borrow::Cow;
use std::fmt;

use super::batch::{self, KeyBatch};
use super::prg::{Block, Prg, PrgKey, SeedRng, block_from_u128, u128_from_block};
use super::{
    EVAL_TILE, EvalScratch, FssError, REGION, Reader, check_all_in_domain, check_bits, check_in_domain, check_party,
    control_bytes, convert, mask64, mask128, pack_control_bits, path_bit, select, signed, split_seed,
    unpack_control_bits,
};

/// Type tag (first byte) of a serialised DCF key, format version 1.
pub const DCF_TAG: u8 = b'C';

/// Keys per tile in [`keygen_batch`] (two seeds each).
const GEN_TILE: usize = 128;

/// Seeds per tile in [`keygen_batch`].
const TILE: usize = 2 * GEN_TILE;

/// The correction word of one tree level.
#[derive(Clone, Copy, PartialEq, Eq)]
struct LevelCw {
    seed: u128,
    value: u64,
    t_l: u8,
    t_r: u8,
}

/// One party's DCF key.
///
/// Both parties' keys share the correction words and differ only in the root seed. `Debug`
/// prints only the domain size, never key material.
#[derive(Clone, PartialEq, Eq)]
pub struct DcfKey {
    n_bits: u32,
    root: u128,
    cws: Vec<LevelCw>,
    final_cw: u64,
}

impl fmt::Debug for DcfKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DcfKey").field("n_bits", &self.n_bits).finish_non_exhaustive()
    }
}

impl DcfKey {
    /// The domain size `n` in bits.
    pub fn n_bits(&self) -> u32 {
        self.n_bits
    }

    /// Serialised size of an `n`-bit key: `2 + 16 + 24·n + ⌈2n/8⌉ + 8` bytes
    /// (header, root seed, seed CWs, value CWs, packed control-bit CWs, final CW).
    pub const fn serialized_len(n_bits: u32) -> usize {
        let n = n_bits as usize;
        2 + 16 + 24 * n + control_bytes(n) + 8
    }

    /// Serialises the key:
    /// `tag 'C' (1) ‖ n (1) ‖ root seed (16) ‖ n × seed CW (16 each) ‖ n × value CW (8 each) ‖
    /// control-bit CWs ‖ final CW (8)`, all little-endian; control bits are packed LSB first,
    /// bit `2i` = `t_L` and bit `2i+1` = `t_R` of level `i`, unused bits zero.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(Self::serialized_len(self.n_bits));
        out.push(DCF_TAG);
        out.push(self.n_bits as u8);
        out.extend_from_slice(&self.root.to_le_bytes());
        for cw in &self.cws {
            out.extend_from_slice(&cw.seed.to_le_bytes());
        }
        for cw in &self.cws {
            out.extend_from_slice(&cw.value.to_le_bytes());
        }
        pack_control_bits(self.cws.iter().map(|cw| (cw.t_l, cw.t_r)), &mut out, self.cws.len());
        out.extend_from_slice(&self.final_cw.to_le_bytes());
        out
    }

    /// Parses [`DcfKey::to_bytes`] output. Rejects (never panics on) wrong tag, domain size
    /// outside `1..=64`, wrong length, and non-canonical encodings (seed low bits or padding bits
    /// set), so every accepted byte string re-serialises to itself.
    pub fn from_bytes(bytes: &[u8]) -> Result<DcfKey, FssError> {
        let mut r = Reader::new(bytes, "DCF");
        let n_bits = r.header(DCF_TAG, DcfKey::serialized_len)?;
        let n = n_bits as usize;
        let root = r.seed("root seed", None)?;
        let mut seeds = Vec::with_capacity(n);
        for i in 0..n {
            seeds.push(r.seed("seed correction word", Some(i))?);
        }
        let mut values = Vec::with_capacity(n);
        for _ in 0..n {
            values.push(r.u64()?);
        }
        let ctrl = r.control_bits(n)?;
        let final_cw = r.u64()?;
        r.finish()?;
        let cws = seeds
            .into_iter()
            .zip(values)
            .enumerate()
            .map(|(i, (seed, value))| {
                let (t_l, t_r) = unpack_control_bits(ctrl, i);
                LevelCw { seed, value, t_l, t_r }
            })
            .collect();
        Ok(DcfKey { n_bits, root, cws, final_cw })
    }
}

/// Generates the two keys of `f^<_{α,β}` over an `n_bits`-bit domain.
///
/// Errors if `n_bits` is not in `1..=64` or `alpha ≥ 2^n_bits`. (`α = 0` is allowed and gives
/// the all-zero function.)
pub fn keygen(alpha: u64, beta: u64, n_bits: u32, rng: &mut SeedRng) -> Result<(DcfKey, DcfKey), FssError> {
    let mut keys = keygen_batch(&[alpha], &[beta], n_bits, rng)?;
    keys.pop().ok_or(FssError::LengthMismatch { what: "generated keys", expected: 1, got: 0 })
}

/// Generates one key pair per `(alphas[i], betas[i])`, level by level across up to 128 keys at a
/// time so the dealer's AES calls are batched (three `encrypt_blocks` calls per level over both
/// parties' seeds). Draws randomness in the same order as calling [`keygen`] for each pair in turn.
pub fn keygen_batch(
    alphas: &[u64],
    betas: &[u64],
    n_bits: u32,
    rng: &mut SeedRng,
) -> Result<Vec<(DcfKey, DcfKey)>, FssError> {
    check_bits(n_bits)?;
    if betas.len() != alphas.len() {
        return Err(FssError::LengthMismatch { what: "betas", expected: alphas.len(), got: betas.len() });
    }
    for a in alphas {
        check_in_domain("alpha", *a, n_bits)?;
    }
    let prg = Prg::global();
    let cap = TILE + prg.parallel_blocks();
    let mut bl = vec![Block::default(); cap];
    let mut br = vec![Block::default(); cap];
    let mut bv = vec![Block::default(); cap];
    let mut s = vec![0u128; TILE];
    let mut t = vec![0u8; TILE];
    let mut keys = Vec::with_capacity(alphas.len());
    let mut flat: Vec<LevelCw> = Vec::with_capacity(GEN_TILE * n_bits as usize);

    for (at, bt) in alphas.chunks(GEN_TILE).zip(betas.chunks(GEN_TILE)) {
        let m = 2 * at.len();
        let (s, t) = (&mut s[..m], &mut t[..m]);
        // Index 2k + b holds party b's state for key k.
        for (sp, tp) in s.chunks_exact_mut(2).zip(t.chunks_exact_mut(2)) {
            for (b, (sb, tb)) in sp.iter_mut().zip(tp.iter_mut()).enumerate() {
                *sb = rng.next_u128() & !1;
                *tb = b as u8;
            }
        }
        let roots: Vec<u128> = s.to_vec();
        // V_α per key: the running correction of the on-path value shares.
        let mut v_alpha = vec![0u64; at.len()];
        // Correction words of this tile, level-major (index level · k + key).
        flat.clear();

        for level in 0..n_bits {
            for (((l, r), v), sj) in bl.iter_mut().zip(br.iter_mut()).zip(bv.iter_mut()).zip(s.iter()) {
                let b = block_from_u128(*sj);
                *l = b;
                *r = b;
                *v = b;
            }
            prg.encrypt_padded(PrgKey::Left, &mut bl, m);
            prg.encrypt_padded(PrgKey::Right, &mut br, m);
            prg.encrypt_padded(PrgKey::Value, &mut bv, m);

            for (((((alpha, beta), va), (sp, tp)), lp), (rp, vp)) in at
                .iter()
                .zip(bt.iter())
                .zip(v_alpha.iter_mut())
                .zip(s.chunks_exact_mut(2).zip(t.chunks_exact_mut(2)))
                .zip(bl.chunks_exact(2))
                .zip(br.chunks_exact(2).zip(bv.chunks_exact(2)))
            {
                let a = path_bit(*alpha, n_bits, level) as u8;
                let am = mask128(a);
                let am64 = mask64(a);
                let mut keep_s = [0u128; 2];
                let mut lose_s = [0u128; 2];
                let mut keep_t = [0u8; 2];
                let mut keep_v = [0u64; 2];
                let mut lose_v = [0u64; 2];
                let mut t_l = [0u8; 2];
                let mut t_r = [0u8; 2];
                for b in 0..2 {
                    let (sl, tl) = split_seed(u128_from_block(&lp[b]) ^ sp[b]);
                    let (sr, tr) = split_seed(u128_from_block(&rp[b]) ^ sp[b]);
                    let v = u128_from_block(&vp[b]) ^ sp[b];
                    let (vl, vr) = (v as u64, (v >> 64) as u64);
                    // α_i = 0: keep L, lose R; α_i = 1: keep R, lose L.
                    keep_s[b] = (sr & am) | (sl & !am);
                    lose_s[b] = (sl & am) | (sr & !am);
                    keep_t[b] = (tr & a) | (tl & (a ^ 1));
                    keep_v[b] = (vr & am64) | (vl & !am64);
                    lose_v[b] = (vl & am64) | (vr & !am64);
                    t_l[b] = tl;
                    t_r[b] = tr;
                }
                let t1 = tp[1];
                let seed = lose_s[0] ^ lose_s[1];
                // V_CW = (-1)^{t_1} · (v_1^Lose − v_0^Lose − V_α [+ β if Lose = L]).
                let lose_sum = lose_v[1].wrapping_sub(lose_v[0]).wrapping_sub(*va).wrapping_add(beta & am64);
                let value = signed(t1, lose_sum);
                // V_α ← V_α − v_1^Keep + v_0^Keep + (-1)^{t_1} · V_CW.
                *va = va.wrapping_sub(keep_v[1]).wrapping_add(keep_v[0]).wrapping_add(signed(t1, value));
                let cw_tl = t_l[0] ^ t_l[1] ^ a ^ 1;
                let cw_tr = t_r[0] ^ t_r[1] ^ a;
                let cw_keep = (cw_tr & a) | (cw_tl & (a ^ 1));
                for b in 0..2 {
                    let tb = tp[b];
                    sp[b] = keep_s[b] ^ (mask128(tb) & seed);
                    tp[b] = keep_t[b] ^ (tb & cw_keep);
                }
                flat.push(LevelCw { seed, value, t_l: cw_tl, t_r: cw_tr });
            }
        }

        for (kk, (((va, sp), tp), rp)) in
            v_alpha.iter().zip(s.chunks_exact(2)).zip(t.chunks_exact(2)).zip(roots.chunks_exact(2)).enumerate()
        {
            let cw: Vec<LevelCw> = flat.iter().skip(kk).step_by(at.len()).copied().collect();
            // CW_{n+1} = (-1)^{t_1} · (Convert(s_1) − Convert(s_0) − V_α).
            let final_cw = signed(tp[1], convert(sp[1]).wrapping_sub(convert(sp[0])).wrapping_sub(*va));
            let k0 = DcfKey { n_bits, root: rp[0], cws: cw.clone(), final_cw };
            let k1 = DcfKey { n_bits, root: rp[1], cws: cw, final_cw };
            keys.push((k0, k1));
        }
    }
    Ok(keys)
}

/// Party `party`'s share of `f^<_{α,β}(x)`: `2n` AES calls in a dependent chain (latency bound;
/// use [`eval_batch`] for many points).
pub fn eval(party: u8, key: &DcfKey, x: u64) -> Result<u64, FssError> {
    check_party(party)?;
    check_in_domain("evaluation point", x, key.n_bits)?;
    let prg = Prg::global();
    let mut s = key.root;
    let mut t = party;
    let mut acc = 0u64;
    for (level, cw) in key.cws.iter().enumerate() {
        let bit = path_bit(x, key.n_bits, level as u32);
        let (sc, tc) = split_seed(prg.mmo(PrgKey::child(bit), s));
        let v = (prg.mmo(PrgKey::Value, s) >> (64 * bit)) as u64;
        let t_cw = if bit == 0 { cw.t_l } else { cw.t_r };
        acc = acc.wrapping_add(v).wrapping_add(mask64(t) & cw.value);
        s = sc ^ (mask128(t) & cw.seed);
        t = tc ^ (t & t_cw);
    }
    acc = acc.wrapping_add(convert(s)).wrapping_add(mask64(t) & key.final_cw);
    Ok(signed(party, acc))
}

/// Evaluates party `party`'s key at every point of `xs` into `out` (same length), level by level
/// over tiles of [`EVAL_TILE`] points: per level and tile one `encrypt_blocks` call with `kL` on the
/// points going left, one with `kR` on those going right and one with `kV` on all of them — `2n`
/// AES blocks per point in all.
pub fn eval_batch(party: u8, key: &DcfKey, xs: &[u64], out: &mut [u64]) -> Result<(), FssError> {
    check_party(party)?;
    if out.len() != xs.len() {
        return Err(FssError::LengthMismatch { what: "output buffer", expected: xs.len(), got: out.len() });
    }
    check_all_in_domain(xs, key.n_bits)?;
    if xs.is_empty() {
        return Ok(());
    }
    let prg = Prg::global();
    let mut scratch = EvalScratch::new();
    let EvalScratch { buf_a, buf_b, vbuf, s, t, .. } = &mut *scratch;
    const MASK: usize = 2 * REGION - 1;
    let n = key.n_bits;
    let root = block_from_u128(key.root);

    for (xt, acc) in xs.chunks(EVAL_TILE).zip(out.chunks_mut(EVAL_TILE)) {
        let m = xt.len();
        s.fill(key.root);
        t.fill(party);
        acc.fill(0);
        // Level i reads `cur` and writes level i+1's seed blocks into `next`. A point going left
        // sits at the number of left-goers before it; one going right at REGION + the number of
        // right-goers before it (j − left-goers).
        let (mut cur, mut next) = (&mut *buf_a, &mut *buf_b);
        let mut cl = 0usize;
        for ((j, x), vb) in xt.iter().enumerate().zip(vbuf.iter_mut()) {
            let bit = ((x >> (n - 1)) & 1) as usize;
            cur[select(bit, REGION + j - cl, cl) & MASK] = root;
            *vb = root;
            cl += 1 - bit;
        }
        for (level, cw) in key.cws.iter().enumerate() {
            let shift = n - 1 - level as u32;
            let next_shift = shift.saturating_sub(1); // after the last level: harmless scratch writes
            {
                let (left, right) = cur.split_at_mut(REGION);
                prg.encrypt_padded(PrgKey::Left, left, cl);
                prg.encrypt_padded(PrgKey::Right, right, m - cl);
                prg.encrypt_padded(PrgKey::Value, vbuf, m);
            }
            let (mut rl, mut wl) = (0usize, 0usize);
            let t_cw = [cw.t_l, cw.t_r];
            for (j, ((((x, sj), tj), aj), vb)) in
                xt.iter().zip(s.iter_mut()).zip(t.iter_mut()).zip(acc.iter_mut()).zip(vbuf.iter_mut()).enumerate()
            {
                let bit = ((x >> shift) & 1) as usize;
                let e = u128_from_block(&cur[select(bit, REGION + j - rl, rl) & MASK]);
                rl += 1 - bit;
                let (sc, tc) = split_seed(e ^ *sj);
                let v = ((u128_from_block(vb) ^ *sj) >> (64 * bit)) as u64;
                *aj = aj.wrapping_add(v).wrapping_add(mask64(*tj) & cw.value);
                let s_new = sc ^ (mask128(*tj) & cw.seed);
                *sj = s_new;
                *tj = tc ^ (*tj & t_cw[bit]);
                // Gather for the next level.
                let nbit = ((x >> next_shift) & 1) as usize;
                let b = block_from_u128(s_new);
                next[select(nbit, REGION + j - wl, wl) & MASK] = b;
                *vb = b;
                wl += 1 - nbit;
            }
            std::mem::swap(&mut cur, &mut next);
            cl = wl;
        }
        for ((aj, sj), tj) in acc.iter_mut().zip(s.iter()).zip(t.iter()) {
            *aj = signed(party, aj.wrapping_add(convert(*sj)).wrapping_add(mask64(*tj) & key.final_cw));
        }
    }
    Ok(())
}

/// Many DCF keys of one domain size (one party's): their concatenated serialisations
/// ([`DcfKey::to_bytes`] each), validated once and then evaluated where they lie by
/// [`eval_many`]; borrowed from the caller's buffer ([`DcfKeyBatch::from_bytes`]) or owning it
/// ([`DcfKeyBatch::from_vec`]). No copy, no per-key allocation: a serialised key is already a
/// structure of arrays (root, seed CWs, value CWs, packed control bits, final CW), which the
/// evaluation reads level by level with fixed strides. `Debug` prints only sizes.
#[derive(Clone, PartialEq, Eq)]
pub struct DcfKeyBatch<'a>(KeyBatch<'a, u64>);

impl fmt::Debug for DcfKeyBatch<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DcfKeyBatch").field("n_bits", &self.0.n_bits()).field("len", &self.0.len()).finish()
    }
}

impl<'a> DcfKeyBatch<'a> {
    /// Validates `count` keys of `n_bits` bits serialised back to back
    /// (`count · DcfKey::serialized_len(n_bits)` bytes) and borrows them. Accepts what
    /// [`DcfKey::from_bytes`] accepts key by key, plus the requirement that every key has `n_bits`
    /// bits, except that the seed CWs are not read: their lowest bits, which evaluation ignores,
    /// may be set (validating them meant reading every key twice from memory). Errors name the
    /// first bad key.
    pub fn from_bytes(bytes: &'a [u8], count: usize, n_bits: u32) -> Result<DcfKeyBatch<'a>, FssError> {
        KeyBatch::parse(Cow::Borrowed(bytes), count, n_bits, true).map(DcfKeyBatch)
    }

    /// [`DcfKeyBatch::from_bytes`], taking ownership of the buffer.
    pub fn from_vec(bytes: Vec<u8>, count: usize, n_bits: u32) -> Result<DcfKeyBatch<'static>, FssError> {
        KeyBatch::parse(Cow::Owned(bytes), count, n_bits, true).map(DcfKeyBatch)
    }

    /// [`DcfKeyBatch::from_bytes`] on `buffer[range]`, sharing the buffer (no copy).
    pub fn from_shared(
        buffer: std::sync::Arc<dyn AsRef<[u8]> + Send + Sync>,
        range: std::ops::Range<usize>,
        count: usize,
        n_bits: u32,
    ) -> Result<DcfKeyBatch<'static>, FssError> {
        KeyBatch::parse(crate::batch::KeyBytes::Shared(buffer, range), count, n_bits, true).map(DcfKeyBatch)
    }

    /// The same keys, owning their bytes (copied if borrowed).
    pub fn into_owned(self) -> DcfKeyBatch<'static> {
        DcfKeyBatch(self.0.into_owned())
    }

    /// Number of keys.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether the batch holds no keys.
    pub fn is_empty(&self) -> bool {
        self.0.len() == 0
    }

    /// The domain size `n` in bits.
    pub fn n_bits(&self) -> u32 {
        self.0.n_bits()
    }

    /// The concatenated serialised keys.
    pub fn as_bytes(&self) -> &[u8] {
        self.0.bytes()
    }

    /// Key `i` on its own (`None` if `i ≥ len()`); a parsed copy, meant for tests.
    pub fn get(&self, i: usize) -> Option<DcfKey> {
        self.0.key(i).and_then(|k| DcfKey::from_bytes(k).ok())
    }
}

/// Generates one key pair per `(alphas[i], betas[i])` and appends the serialised keys to `out0`
/// (party 0) and `out1` (party 1) in order: byte-identical to [`keygen_batch`] followed by
/// [`DcfKey::to_bytes`] with the same `rng` state, without building the keys in between. `6n` AES
/// blocks per pair: on x86-64 with AES-NI a kernel that walks one key pair per group (both
/// parties' seeds together, two groups alternating), else level by level over tiles of 64 keys.
/// Nothing is appended on error.
pub fn keygen_into(
    alphas: &[u64],
    betas: &[u64],
    n_bits: u32,
    rng: &mut SeedRng,
    out0: &mut Vec<u8>,
    out1: &mut Vec<u8>,
) -> Result<(), FssError> {
    batch::keygen_into(alphas, betas, n_bits, rng, out0, out1)
}

/// [`keygen_into`] on up to `max_threads` threads (capped at the available parallelism; only for
/// more than [`PAR_MIN_BATCH`](super::PAR_MIN_BATCH) pairs), with byte-identical output and `rng` use.
pub fn keygen_into_par(
    alphas: &[u64],
    betas: &[u64],
    n_bits: u32,
    rng: &mut SeedRng,
    out0: &mut Vec<u8>,
    out1: &mut Vec<u8>,
    max_threads: usize,
) -> Result<(), FssError> {
    batch::keygen_into_par(alphas, betas, n_bits, rng, out0, out1, max_threads)
}

/// Evaluates key `i` of `keys` at its own point `xs[i]` into `out[i]`, for every `i` (all three
/// of the same length): equal to `eval(party, &keys.get(i), xs[i])`, but many keys at a time so
/// the AES calls of different keys overlap (an AES-NI kernel where the CPU has one, else tiles of
/// [`EVAL_TILE`] keys level by level, each `encrypt_blocks` call getting a few hundred blocks);
/// `2n` AES blocks per key.
pub fn eval_many(party: u8, keys: &DcfKeyBatch<'_>, xs: &[u64], out: &mut [u64]) -> Result<(), FssError> {
    batch::eval_many(party, &keys.0, xs, out)
}

/// [`eval_many`] split into contiguous parts on up to `max_threads` scoped threads (capped at
/// the available parallelism), the calling thread taking the first part. Batches of at most
/// [`PAR_MIN_BATCH`](super::PAR_MIN_BATCH) keys run on the calling thread alone.
pub fn eval_many_par(
    party: u8,
    keys: &DcfKeyBatch<'_>,
    xs: &[u64],
    out: &mut [u64],
    max_threads: usize,
) -> Result<(), FssError> {
    batch::eval_many_par(party, &keys.0, xs, out, max_threads)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{PAR_MIN_BATCH, domain_mask};
    use proptest::prelude::*;

    const NS: [u32; 7] = [1, 2, 8, 16, 32, 63, 64];

    fn rng(tag: u8) -> SeedRng {
        SeedRng::from_seed([tag; 32])
    }

    fn f_lt(alpha: u64, beta: u64, x: u64) -> u64 {
        if x < alpha { beta } else { 0 }
    }

    fn reconstruct(k0: &DcfKey, k1: &DcfKey, x: u64) -> u64 {
        let y0 = eval(0, k0, x).unwrap_or_else(|e| panic!("eval 0: {e}"));
        let y1 = eval(1, k1, x).unwrap_or_else(|e| panic!("eval 1: {e}"));
        y0.wrapping_add(y1)
    }

    fn edge_points(alpha: u64, n: u32) -> Vec<u64> {
        let max = domain_mask(n);
        let mut v = vec![
            0,
            1 & max,
            max,
            max - 1,
            alpha,
            alpha.wrapping_add(1) & max,
            alpha.wrapping_sub(1) & max,
            max / 2,
            max / 2 + 1,
        ];
        v.sort_unstable();
        v.dedup();
        v
    }

    #[test]
    fn edge_cases_all_domain_sizes() {
        let mut r = rng(11);
        for n in NS {
            let max = domain_mask(n);
            for alpha in [0, 1 & max, max, max - 1, r.next_u64() & max, max / 2 + 1] {
                let beta = r.next_u64();
                let (k0, k1) = keygen(alpha, beta, n, &mut r).unwrap_or_else(|e| panic!("{e}"));
                assert_eq!(k1.n_bits(), n);
                let xs = edge_points(alpha, n);
                let mut y0 = vec![0; xs.len()];
                let mut y1 = vec![0; xs.len()];
                eval_batch(0, &k0, &xs, &mut y0).unwrap_or_else(|e| panic!("{e}"));
                eval_batch(1, &k1, &xs, &mut y1).unwrap_or_else(|e| panic!("{e}"));
                for (i, x) in xs.iter().enumerate() {
                    let want = f_lt(alpha, beta, *x);
                    assert_eq!(reconstruct(&k0, &k1, *x), want, "n={n} alpha={alpha:#x} x={x:#x}");
                    assert_eq!(y0[i].wrapping_add(y1[i]), want, "batch n={n} alpha={alpha:#x} x={x:#x}");
                }
            }
        }
    }

    #[test]
    fn exhaustive_small_domains() {
        let mut r = rng(12);
        for n in 1u32..=6 {
            for alpha in 0..(1u64 << n) {
                let beta = r.next_u64();
                let (k0, k1) = keygen(alpha, beta, n, &mut r).unwrap_or_else(|e| panic!("{e}"));
                let xs: Vec<u64> = (0..(1u64 << n)).collect();
                let mut y0 = vec![0; xs.len()];
                let mut y1 = vec![0; xs.len()];
                eval_batch(0, &k0, &xs, &mut y0).unwrap_or_else(|e| panic!("{e}"));
                eval_batch(1, &k1, &xs, &mut y1).unwrap_or_else(|e| panic!("{e}"));
                for x in xs {
                    assert_eq!(
                        y0[x as usize].wrapping_add(y1[x as usize]),
                        f_lt(alpha, beta, x),
                        "n={n} a={alpha} x={x}"
                    );
                }
            }
        }
    }

    #[test]
    fn batch_spanning_several_tiles_matches_single() {
        let mut r = rng(13);
        for n in [5u32, 24, 64] {
            let alpha = r.next_u64() & domain_mask(n);
            let (k0, k1) = keygen(alpha, 7, n, &mut r).unwrap_or_else(|e| panic!("{e}"));
            let xs: Vec<u64> = (0..2 * EVAL_TILE + 91).map(|_| r.next_u64() & domain_mask(n)).collect();
            let mut y = [vec![0; xs.len()], vec![0; xs.len()]];
            for (party, key) in [(0u8, &k0), (1, &k1)] {
                let out = &mut y[party as usize];
                eval_batch(party, key, &xs, out).unwrap_or_else(|e| panic!("{e}"));
                for (x, v) in xs.iter().zip(out.iter()) {
                    assert_eq!(*v, eval(party, key, *x).unwrap_or_default());
                }
            }
            for (i, x) in xs.iter().enumerate() {
                assert_eq!(y[0][i].wrapping_add(y[1][i]), f_lt(alpha, 7, *x));
            }
        }
    }

    #[test]
    fn skewed_batches_fill_one_side() {
        // Every point going the same way fills one region of the scratch buffers completely.
        let mut r = rng(40);
        for n in [1u32, 9, 64] {
            let max = domain_mask(n);
            let alpha = max / 2 + 1;
            let beta = r.next_u64();
            let (k0, k1) = keygen(alpha, beta, n, &mut r).unwrap_or_else(|e| panic!("{e}"));
            let len = 2 * EVAL_TILE + 3;
            let patterns: [Vec<u64>; 4] = [
                vec![0; len],
                vec![max; len],
                vec![alpha; len],
                (0..len as u64).map(|i| if i % 2 == 0 { 0 } else { max }).collect(),
            ];
            for xs in patterns {
                let mut y0 = vec![0; len];
                let mut y1 = vec![0; len];
                eval_batch(0, &k0, &xs, &mut y0).unwrap_or_else(|e| panic!("{e}"));
                eval_batch(1, &k1, &xs, &mut y1).unwrap_or_else(|e| panic!("{e}"));
                for (i, x) in xs.iter().enumerate() {
                    assert_eq!(y0[i].wrapping_add(y1[i]), f_lt(alpha, beta, *x), "n={n} x={x:#x}");
                }
            }
        }
    }

    #[test]
    fn keygen_batch_equals_repeated_keygen() {
        let n = 32;
        let alphas: Vec<u64> = (0..GEN_TILE as u64 + 5).map(|i| (i * 104_729) & domain_mask(n)).collect();
        let betas: Vec<u64> = (0..alphas.len() as u64).map(|i| i.wrapping_mul(0x9e37_79b9_7f4a_7c15)).collect();
        let batch = keygen_batch(&alphas, &betas, n, &mut rng(14)).unwrap_or_else(|e| panic!("{e}"));
        let mut r = rng(14);
        for ((a, b), pair) in alphas.iter().zip(&betas).zip(&batch) {
            let single = keygen(*a, *b, n, &mut r).unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(&single, pair);
            let x = a.wrapping_sub(1) & domain_mask(n);
            assert_eq!(reconstruct(&pair.0, &pair.1, x), f_lt(*a, *b, x));
        }
    }

    #[test]
    fn invalid_arguments_are_errors() {
        let mut r = rng(15);
        assert_eq!(keygen(0, 1, 0, &mut r), Err(FssError::InvalidDomainBits(0)));
        assert_eq!(keygen(0, 1, 65, &mut r), Err(FssError::InvalidDomainBits(65)));
        assert!(matches!(keygen(2, 1, 1, &mut r), Err(FssError::OutOfDomain { .. })));
        assert!(matches!(keygen_batch(&[1], &[1, 2], 8, &mut r), Err(FssError::LengthMismatch { .. })));
        let (k0, _) = keygen(3, 1, 8, &mut r).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(eval(2, &k0, 1), Err(FssError::InvalidParty(2)));
        assert!(matches!(eval(0, &k0, 256), Err(FssError::OutOfDomain { .. })));
        let mut out = [0u64; 2];
        assert!(matches!(eval_batch(0, &k0, &[1], &mut out), Err(FssError::LengthMismatch { .. })));
        assert!(matches!(eval_batch(0, &k0, &[1, u64::MAX], &mut out), Err(FssError::OutOfDomain { .. })));
        assert_eq!(eval_batch(255, &k0, &[1, 2], &mut out), Err(FssError::InvalidParty(255)));
        assert!(eval_batch(1, &k0, &[], &mut []).is_ok());
    }

    #[test]
    fn serialisation_round_trip_and_sizes() {
        let mut r = rng(16);
        for n in NS {
            let (k0, k1) =
                keygen(r.next_u64() & domain_mask(n), r.next_u64(), n, &mut r).unwrap_or_else(|e| panic!("{e}"));
            for k in [&k0, &k1] {
                let bytes = k.to_bytes();
                assert_eq!(bytes.len(), DcfKey::serialized_len(n));
                assert_eq!(DcfKey::from_bytes(&bytes).as_ref(), Ok(k));
            }
        }
        assert_eq!(DcfKey::serialized_len(64), 1578);
        assert_eq!(DcfKey::serialized_len(32), 802);
        assert_eq!(DcfKey::serialized_len(16), 414);
    }

    #[test]
    fn malformed_bytes_are_errors() {
        let mut r = rng(17);
        for n in [1u32, 3, 8, 64] {
            let (k0, _) = keygen(1, 5, n, &mut r).unwrap_or_else(|e| panic!("{e}"));
            let bytes = k0.to_bytes();
            for len in 0..bytes.len() {
                assert!(DcfKey::from_bytes(&bytes[..len]).is_err(), "n={n} truncated to {len}");
            }
            let mut longer = bytes.clone();
            longer.push(0);
            assert!(DcfKey::from_bytes(&longer).is_err());
            let mut wrong_tag = bytes.clone();
            wrong_tag[0] = crate::dpf::DPF_TAG;
            assert!(DcfKey::from_bytes(&wrong_tag).is_err());
            for bad_n in [0u8, 65, 200] {
                let mut b = bytes.clone();
                b[1] = bad_n;
                assert!(DcfKey::from_bytes(&b).is_err());
            }
            let mut low_bit = bytes.clone();
            low_bit[18] |= 1; // first seed correction word's control-bit position
            assert!(DcfKey::from_bytes(&low_bit).is_err());
            if !(2 * n).is_multiple_of(8) {
                let mut pad = bytes.clone();
                let last_ctrl = 2 + 16 + 24 * n as usize + control_bytes(n as usize) - 1;
                pad[last_ctrl] |= 0x80;
                assert!(DcfKey::from_bytes(&pad).is_err());
            }
        }
        // A DPF key is not a DCF key, even when lengths happen to be plausible.
        let (dpf_key, _) = crate::dpf::keygen(1, 1, 8, &mut r).unwrap_or_else(|e| panic!("{e}"));
        assert!(DcfKey::from_bytes(&dpf_key.to_bytes()).is_err());
    }

    #[test]
    fn keys_look_random() {
        let mut r = rng(18);
        let n = 64;
        let mut seed_ones = 0u32;
        let mut seed_total = 0u32;
        let mut value_ones = 0u32;
        let mut value_total = 0u32;
        let mut len = None;
        for alpha in [0u64, 1, 0xdead_beef, u64::MAX, 1 << 63] {
            let (k0, k1) = keygen(alpha, 1, n, &mut r).unwrap_or_else(|e| panic!("{e}"));
            let (b0, b1) = (k0.to_bytes(), k1.to_bytes());
            assert_eq!(*len.get_or_insert(b0.len()), b0.len());
            assert_eq!(b1.len(), b0.len());
            assert!(b0[2..].windows(2).any(|w| w[0] != w[1]));
            assert_ne!(b0, b1);
            for cw in &k0.cws {
                seed_ones += (cw.seed >> 1).count_ones();
                seed_total += 127;
                value_ones += cw.value.count_ones();
                value_total += 64;
            }
            // The value CWs are masked by PRG output even though beta = 1 and alpha is extreme.
            assert!(k0.cws.iter().any(|cw| cw.value > u32::MAX as u64));
        }
        assert!(seed_ones * 100 > seed_total * 45 && seed_ones * 100 < seed_total * 55, "{seed_ones}/{seed_total}");
        assert!(
            value_ones * 100 > value_total * 45 && value_ones * 100 < value_total * 55,
            "{value_ones}/{value_total}"
        );
    }

    fn ok<T>(r: Result<T, FssError>) -> T {
        r.unwrap_or_else(|e| panic!("{e}"))
    }

    /// Both parties' serialised keys from [`keygen_into`].
    fn keys_into(alphas: &[u64], betas: &[u64], n: u32, r: &mut SeedRng) -> [Vec<u8>; 2] {
        let (mut b0, mut b1) = (Vec::new(), Vec::new());
        ok(keygen_into(alphas, betas, n, r, &mut b0, &mut b1));
        [b0, b1]
    }

    #[test]
    fn keygen_into_is_byte_identical_to_keygen_batch() {
        for n in [1u32, 7, 32, 63, 64] {
            let count = 2 * GEN_TILE + 5;
            let mut r = rng(30);
            let alphas: Vec<u64> = (0..count).map(|_| r.next_u64() & domain_mask(n)).collect();
            let betas: Vec<u64> = (0..count).map(|_| r.next_u64()).collect();
            let (mut ra, mut rb) = (rng(31), rng(31));
            let pairs = ok(keygen_batch(&alphas, &betas, n, &mut ra));
            // Appends after existing content.
            let (mut b0, mut b1) = (vec![0xEE], vec![0xFF, 0xFF]);
            ok(keygen_into(&alphas, &betas, n, &mut rb, &mut b0, &mut b1));
            let mut w0 = vec![0xEE];
            let mut w1 = vec![0xFF, 0xFF];
            for (k0, k1) in &pairs {
                w0.extend_from_slice(&k0.to_bytes());
                w1.extend_from_slice(&k1.to_bytes());
            }
            assert!(b0 == w0 && b1 == w1, "n={n}");
            assert_eq!(ra.next_u128(), rb.next_u128(), "same rng use");
            // The batch parses back to the same keys.
            let batch = ok(DcfKeyBatch::from_bytes(&b1[2..], count, n));
            assert_eq!((batch.len(), batch.n_bits()), (count, n));
            for (i, (_, k1)) in pairs.iter().enumerate() {
                assert_eq!(batch.get(i).as_ref(), Some(k1));
            }
            assert!(batch.get(count).is_none());
        }
    }

    #[test]
    fn par_keygen_appends_after_what_the_buffers_hold() {
        let n = 12;
        let count = PAR_MIN_BATCH + 70;
        let mut r = rng(40);
        let alphas: Vec<u64> = (0..count).map(|_| r.next_u64() & domain_mask(n)).collect();
        let betas: Vec<u64> = (0..count).map(|_| r.next_u64()).collect();
        let (mut rs, mut rp) = (rng(41), rng(41));
        let (mut s0, mut s1) = (vec![1, 2, 3], vec![9]);
        let (mut p0, mut p1) = (s0.clone(), s1.clone());
        ok(keygen_into(&alphas, &betas, n, &mut rs, &mut s0, &mut s1));
        ok(keygen_into_par(&alphas, &betas, n, &mut rp, &mut p0, &mut p1, 2));
        assert!(s0 == p0 && s1 == p1, "same bytes after the same prefixes");
        assert_eq!(&p0[..3], &[1, 2, 3]);
        assert_eq!(p1[0], 9);
    }

    #[test]
    fn par_variants_match_serial() {
        let n = 10;
        let count = PAR_MIN_BATCH + EVAL_TILE + 33;
        let mut r = rng(32);
        let alphas: Vec<u64> = (0..count).map(|_| r.next_u64() & domain_mask(n)).collect();
        let betas: Vec<u64> = (0..count).map(|_| r.next_u64()).collect();
        let xs: Vec<u64> = (0..count).map(|_| r.next_u64() & domain_mask(n)).collect();
        let (mut ra, mut rp) = (rng(33), rng(33));
        let [a0, a1] = keys_into(&alphas, &betas, n, &mut ra);
        let (mut p0, mut p1) = (Vec::new(), Vec::new());
        ok(keygen_into_par(&alphas, &betas, n, &mut rp, &mut p0, &mut p1, 2));
        assert!(a0 == p0 && a1 == p1);
        assert_eq!(ra.next_u128(), rp.next_u128());
        let b = [ok(DcfKeyBatch::from_bytes(&a0, count, n)), ok(DcfKeyBatch::from_bytes(&a1, count, n))];
        let mut y = [vec![0; count], vec![0; count]];
        for party in 0..2u8 {
            let p = usize::from(party);
            ok(eval_many(party, &b[p], &xs, &mut y[p]));
            for threads in [0, 1, 2, 5] {
                let mut yp = vec![0; count];
                ok(eval_many_par(party, &b[p], &xs, &mut yp, threads));
                assert!(yp == y[p], "threads={threads}");
            }
        }
        for i in 0..count {
            assert_eq!(y[0][i].wrapping_add(y[1][i]), f_lt(alphas[i], betas[i], xs[i]), "i={i}");
        }
    }

    #[test]
    fn batch_validates_like_single_keys() {
        let mut r = rng(34);
        for n in [1u32, 3, 8, 63, 64] {
            let len = DcfKey::serialized_len(n);
            let [b0, _] = keys_into(&[0, 1 & domain_mask(n), domain_mask(n)], &[5, 6, 7], n, &mut r);
            assert!(DcfKeyBatch::from_bytes(&b0, 3, n).is_ok());
            assert!(DcfKeyBatch::from_bytes(&b0, 2, n).is_err());
            assert!(DcfKeyBatch::from_bytes(&b0[..3 * len - 1], 3, n).is_err());
            if n < 64 {
                assert!(DcfKeyBatch::from_bytes(&b0, 3, n + 1).is_err());
            }
            // Every single-byte corruption of the last key is accepted by the batch parser iff
            // the single-key parser accepts it (most flips are not detectable: random bytes),
            // except a seed CW's low bit: the batch ignores it, and evaluates as without it.
            let xs = [0, 1 & domain_mask(n), r.next_u64() & domain_mask(n)];
            let mut want = [0u64; 3];
            ok(eval_many(0, &ok(DcfKeyBatch::from_bytes(&b0, 3, n)), &xs, &mut want));
            for pos in 0..len {
                for flip in [0x01u8, 0x80] {
                    let mut bad = b0.clone();
                    bad[2 * len + pos] ^= flip;
                    let single = DcfKey::from_bytes(&bad[2 * len..]);
                    let batch = DcfKeyBatch::from_bytes(&bad, 3, n);
                    let ignored = flip == 1 && (18..18 + 16 * n as usize).contains(&pos) && (pos - 18) % 16 == 0;
                    if ignored {
                        assert!(single.is_err(), "n={n} pos={pos}: a single key is canonical");
                        let mut got = [0u64; 3];
                        ok(eval_many(0, &ok(batch), &xs, &mut got));
                        assert_eq!(got, want, "n={n} pos={pos}");
                        continue;
                    }
                    assert_eq!(single.is_ok(), batch.is_ok(), "n={n} pos={pos} flip={flip:#x}");
                    if let (Ok(k), Ok(b)) = (single, batch) {
                        assert_eq!(b.get(2), Some(k));
                    } else if let Err(FssError::MalformedKey { reason, .. }) = DcfKeyBatch::from_bytes(&bad, 3, n) {
                        assert!(reason.starts_with("key 2:"), "{reason}");
                    }
                }
            }
        }
        assert_eq!(DcfKeyBatch::from_bytes(&[], 0, 65).err(), Some(FssError::InvalidDomainBits(65)));
        let empty = ok(DcfKeyBatch::from_bytes(&[], 0, 5));
        assert!(empty.is_empty());
        assert_eq!(format!("{empty:?}"), "DcfKeyBatch { n_bits: 5, len: 0 }");
        assert!(eval_many(0, &empty, &[], &mut []).is_ok());
        // A DCF2 key is not a DCF key.
        let (k2, _) = ok(crate::dcf2::keygen(1, [1, 1], 8, &mut r));
        assert!(DcfKeyBatch::from_bytes(&k2.to_bytes(), 1, 8).is_err());
    }

    #[test]
    fn eval_many_invalid_arguments() {
        let mut r = rng(35);
        let [b0, _] = keys_into(&[3, 4], &[1, 1], 8, &mut r);
        let k = ok(DcfKeyBatch::from_bytes(&b0, 2, 8));
        let mut out = [0u64; 2];
        assert_eq!(eval_many(2, &k, &[1, 2], &mut out), Err(FssError::InvalidParty(2)));
        assert!(matches!(eval_many(0, &k, &[1], &mut out[..1]), Err(FssError::LengthMismatch { .. })));
        assert!(matches!(eval_many(0, &k, &[1, 2], &mut out[..1]), Err(FssError::LengthMismatch { .. })));
        assert!(matches!(eval_many(0, &k, &[1, 256], &mut out), Err(FssError::OutOfDomain { .. })));
        assert!(matches!(eval_many_par(0, &k, &[1, 256], &mut out, 2), Err(FssError::OutOfDomain { .. })));
        let (mut o0, mut o1) = (Vec::new(), Vec::new());
        assert!(matches!(
            keygen_into(&[1, 300], &[1, 1], 8, &mut r, &mut o0, &mut o1),
            Err(FssError::OutOfDomain { what: "alpha", value: 300, .. })
        ));
        assert!(keygen_into_par(&[1], &[1, 2], 8, &mut r, &mut o0, &mut o1, 2).is_err());
        assert!(o0.is_empty() && o1.is_empty());
    }

    fn n_strategy() -> impl Strategy<Value = u32> {
        prop::sample::select(NS.to_vec())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(128))]

        #[test]
        fn prop_matches_definition(
            n in n_strategy(),
            a in any::<u64>(),
            beta in any::<u64>(),
            xs in prop::collection::vec(any::<u64>(), 1..8),
            seed in any::<[u8; 32]>(),
        ) {
            let alpha = a & domain_mask(n);
            let mut r = SeedRng::from_seed(seed);
            let (k0, k1) = keygen(alpha, beta, n, &mut r).map_err(|e| TestCaseError::fail(e.to_string()))?;
            let mut pts: Vec<u64> = xs.iter().map(|x| x & domain_mask(n)).collect();
            pts.extend(edge_points(alpha, n));
            let mut y0 = vec![0; pts.len()];
            let mut y1 = vec![0; pts.len()];
            eval_batch(0, &k0, &pts, &mut y0).map_err(|e| TestCaseError::fail(e.to_string()))?;
            eval_batch(1, &k1, &pts, &mut y1).map_err(|e| TestCaseError::fail(e.to_string()))?;
            for (i, x) in pts.iter().enumerate() {
                prop_assert_eq!(y0[i].wrapping_add(y1[i]), f_lt(alpha, beta, *x));
                prop_assert_eq!(Ok(y0[i]), eval(0, &k0, *x));
                prop_assert_eq!(Ok(y1[i]), eval(1, &k1, *x));
            }
        }

        #[test]
        fn prop_eval_many_matches_eval(
            n in n_strategy(),
            keys in prop::collection::vec((any::<u64>(), any::<u64>(), any::<u64>(), 0u8..4), 1..700),
            seed in any::<[u8; 32]>(),
        ) {
            let max = domain_mask(n);
            let alphas: Vec<u64> = keys.iter().map(|k| k.0 & max).collect();
            let betas: Vec<u64> = keys.iter().map(|k| k.1).collect();
            // Mixed points: random, the key's alpha, alpha − 1, alpha + 1.
            let xs: Vec<u64> = keys
                .iter()
                .zip(&alphas)
                .map(|(k, a)| match k.3 {
                    0 => k.2 & max,
                    1 => *a,
                    2 => a.wrapping_sub(1) & max,
                    _ => a.wrapping_add(1) & max,
                })
                .collect();
            let mut r = SeedRng::from_seed(seed);
            let [b0, b1] = keys_into(&alphas, &betas, n, &mut r);
            let b = [
                DcfKeyBatch::from_bytes(&b0, xs.len(), n).map_err(|e| TestCaseError::fail(e.to_string()))?,
                DcfKeyBatch::from_bytes(&b1, xs.len(), n).map_err(|e| TestCaseError::fail(e.to_string()))?,
            ];
            let mut y = [vec![0; xs.len()], vec![0; xs.len()]];
            for party in 0..2u8 {
                let p = usize::from(party);
                eval_many(party, &b[p], &xs, &mut y[p]).map_err(|e| TestCaseError::fail(e.to_string()))?;
                for (i, x) in xs.iter().enumerate() {
                    let k = b[p].get(i).ok_or_else(|| TestCaseError::fail("key"))?;
                    prop_assert_eq!(Ok(y[p][i]), eval(party, &k, *x));
                }
            }
            for i in 0..xs.len() {
                prop_assert_eq!(y[0][i].wrapping_add(y[1][i]), f_lt(alphas[i], betas[i], xs[i]));
            }
        }

        #[test]
        fn prop_round_trip(n in n_strategy(), a in any::<u64>(), beta in any::<u64>(), seed in any::<[u8; 32]>()) {
            let mut r = SeedRng::from_seed(seed);
            let (k0, k1) = keygen(a & domain_mask(n), beta, n, &mut r).map_err(|e| TestCaseError::fail(e.to_string()))?;
            for k in [k0, k1] {
                let bytes = k.to_bytes();
                prop_assert_eq!(bytes.len(), DcfKey::serialized_len(n));
                prop_assert_eq!(DcfKey::from_bytes(&bytes), Ok(k));
            }
        }

        #[test]
        fn prop_arbitrary_bytes_never_panic(
            mut bytes in prop::collection::vec(any::<u8>(), 0..1700),
            n in 1u8..=64,
            fix_header in any::<bool>(),
        ) {
            if fix_header && bytes.len() >= 2 {
                bytes[0] = DCF_TAG;
                bytes[1] = n;
                bytes.resize(DcfKey::serialized_len(u32::from(n)), 0);
            }
            if let Ok(k) = DcfKey::from_bytes(&bytes) {
                prop_assert_eq!(k.to_bytes(), bytes);
                let _ = eval(1, &k, 0);
            }
        }
    }
}
