//! Machinery shared by [`super::dcf`] and [`super::dcf2`]: comparison-function keys whose
//! payload is one or two words of `Z(2^64)`, in flat batches (one key per point), generated
//! straight into serialised bytes and evaluated level by level across keys.
//!
//! Both schemes use the same tree (child seeds `AES_kL(s) ⊕ s`, `AES_kR(s) ⊕ s`) and the same
//! byte layout; they differ only in the [`Payload`] type, which fixes how the value words of a
//! level and the leaf's `Convert` come out of the PRG:
//!
//! * `u64` (DCF): one value block `AES_kV(s) ⊕ s` per node gives both directions (low half =
//!   left, high half = right); `Convert(s)` = high 64 bits of the leaf seed.
//! * `[u64; 2]` (DCF2): the value block of direction `d` is `AES_kV(s ∥ d) ⊕ (s ∥ d)` (the seed
//!   with its cleared control-bit position set to `d`), a whole 128 bits per direction; an
//!   evaluation still needs one value block per level. `Convert(s)` = `AES_kV(s) ⊕ s` of the leaf
//!   seed (128 pseudo-random bits; the 127-bit seed itself is too short).
//!
//! # Serialised key (`w` = payload words)
//!
//! `tag (1) ‖ n (1) ‖ root seed (16) ‖ n × seed CW (16) ‖ n × value CW (8w) ‖ control-bit CWs
//! (⌈2n/8⌉, bit 2i = t_L, bit 2i+1 = t_R of level i, unused bits zero) ‖ final CW (8w)`, all
//! little-endian: `2 + 16 + (16 + 8w)·n + ⌈n/4⌉ + 8w` bytes. The lowest bit of a seed CW (the
//! control-bit position of the seeds it corrects) is written 0 and ignored when read: every
//! evaluator, here and in the GPU kernel, clears it from the next seed. So a batch is validated
//! by reading two cache lines per key (head and control bits), not the kilobyte of seed CWs,
//! which were read twice from memory, once to validate and once to evaluate.
//!
//! # Batches
//!
//! [`KeyBatch`] is `count` serialised keys of one domain size back to back, validated once and
//! then read in place (borrowed or owned; no copy, no per-key allocation). A serialised key is
//! already a structure of arrays (root, seed CWs, value CWs, control bits, final CW), so a level's
//! CWs of consecutive keys lie at a fixed stride. [`eval_many`] evaluates key `i` at `xs[i]` for
//! all `i`, walking tiles of [`MANY_TILE`] keys level by level so every `encrypt_blocks` call gets
//! tens to hundreds of independent blocks (as `dcf::eval_batch` does for one key at many points).
//! [`keygen_into`] generates key pairs level by level over tiles of [`GEN_TILE`] keys and writes
//! them straight into the two parties' byte buffers.
//!
//! On x86-64 CPUs with AES-NI, [`eval_many`] runs a dedicated kernel instead ([`aesni`]: groups
//! of keys walked key-major with per-lane round-key selection, about twice as fast), and so does
//! [`keygen_into`] ([`aesni::Keygen`]: one key pair per group, two groups alternating, CWs
//! written straight into the keys; about 1.5 to 2 times as fast); the portable tiled paths are
//! the fallbacks and their references in the tests.
//!
//! Why no copy into owned arrays: for a million keys that is gigabytes of fresh memory, and first
//! touches of fresh pages (page faults) cost more than the evaluation itself on small VMs.

#[cfg(target_arch = "x86_64")]
mod aesni;

use std::borrow::Cow;
use std::marker::PhantomData;
use std::sync::Mutex;
use std::thread;

use super::prg::{Block, Prg, PrgKey, SeedRng, block_from_u128, u128_from_block};
use super::{
    EvalScratch, FssError, REGION, check_all_in_domain, check_bits, check_in_domain, check_party, control_bytes,
    mask64, mask128, path_bit, select, signed, split_seed,
};

/// Keys per tile in [`eval_many`]: each `encrypt_blocks` call gets about 64 (child seeds) or 128
/// (values) blocks; a tile's state and AES buffers stay in L1, its CWs (decoded once per tile into
/// level-major rows, about 200 KiB) in L2. A power of two (indices are masked with it).
pub(crate) const MANY_TILE: usize = 128;

/// Keys per tile in [`keygen_into`] (two seeds each, so 128 blocks per `encrypt_blocks` call): the
/// tile's CWs (gathered level by level, then written key by key) and serialised keys stay in L2.
/// A power of two (the tile's arrays are indexed with masks).
pub(crate) const GEN_TILE: usize = 64;

/// Batches of at most this many keys are evaluated on the calling thread alone by
/// [`dcf::eval_many_par`](super::dcf::eval_many_par) and
/// [`dcf2::eval_many_par`](super::dcf2::eval_many_par) (and generated so by the `keygen_into_par`
/// functions); larger ones are split across threads.
pub const PAR_MIN_BATCH: usize = 4096;

/// The output group of a comparison function: one word (`u64`) or two (`[u64; 2]`) of
/// `Z(2^64)`, with how its elements come out of the PRG. Implemented only for these two types.
pub(crate) trait Payload: Copy + Default + PartialEq + Eq + Send + Sync + 'static {
    /// 64-bit words per element.
    const WORDS: usize;
    /// Type tag of the serialised key.
    const TAG: u8;
    /// Name in error messages.
    const KIND: &'static str;
    /// Value PRG blocks the dealer needs per seed and level (1: both directions from one block).
    const VALUE_BLOCKS: usize;
    /// Whether `Convert` of a leaf seed takes a value PRG block (`AES_kV(s) ⊕ s`).
    const CONVERT_BY_PRG: bool;

    /// Input of the value PRG block for direction `bit`.
    fn value_input(seed: u128, bit: u64) -> u128;
    /// The value of direction `bit` from `AES_kV(i) ⊕ i`, `i = value_input(seed, bit)`.
    fn value(out: u128, bit: u64) -> Self;
    /// `Convert` of a leaf seed; `prg_out` is `AES_kV(seed) ⊕ seed` when [`Self::CONVERT_BY_PRG`].
    fn convert(seed: u128, prg_out: u128) -> Self;
    /// Wrapping addition.
    fn add(self, o: Self) -> Self;
    /// Wrapping subtraction.
    fn sub(self, o: Self) -> Self;
    /// Bitwise AND of every word with `m`.
    fn and(self, m: u64) -> Self;
    /// `(-1)^b · self` for `b ∈ {0, 1}`.
    fn signed(self, b: u8) -> Self;
    /// `one` where `m` is all ones, `zero` where it is zero.
    fn select(m: u64, one: Self, zero: Self) -> Self;
    /// Little-endian bytes into the first `8·WORDS` bytes of `out`.
    fn write(self, out: &mut [u8]);
    /// From the first `8·WORDS` little-endian bytes of `b` (missing bytes read as zero).
    fn read(b: &[u8]) -> Self;
}

#[inline(always)]
fn u128_le(b: &[u8]) -> u128 {
    b.try_into().map_or(0, u128::from_le_bytes)
}

#[inline(always)]
fn put(out: &mut [u8], at: usize, bytes: &[u8]) {
    if let Some(d) = out.get_mut(at..at + bytes.len()) {
        d.copy_from_slice(bytes);
    }
}

impl Payload for u64 {
    const WORDS: usize = 1;
    const TAG: u8 = super::dcf::DCF_TAG;
    const KIND: &'static str = "DCF";
    const VALUE_BLOCKS: usize = 1;
    const CONVERT_BY_PRG: bool = false;

    #[inline(always)]
    fn value_input(seed: u128, _bit: u64) -> u128 {
        seed
    }
    #[inline(always)]
    fn value(out: u128, bit: u64) -> u64 {
        let m = 0u64.wrapping_sub(bit & 1);
        ((out >> 64) as u64 & m) | (out as u64 & !m)
    }
    #[inline(always)]
    fn convert(seed: u128, _prg_out: u128) -> u64 {
        super::convert(seed)
    }
    #[inline(always)]
    fn add(self, o: u64) -> u64 {
        self.wrapping_add(o)
    }
    #[inline(always)]
    fn sub(self, o: u64) -> u64 {
        self.wrapping_sub(o)
    }
    #[inline(always)]
    fn and(self, m: u64) -> u64 {
        self & m
    }
    #[inline(always)]
    fn signed(self, b: u8) -> u64 {
        signed(b, self)
    }
    #[inline(always)]
    fn select(m: u64, one: u64, zero: u64) -> u64 {
        (one & m) | (zero & !m)
    }
    #[inline(always)]
    fn write(self, out: &mut [u8]) {
        if let Some(d) = out.first_chunk_mut::<8>() {
            *d = self.to_le_bytes();
        }
    }
    #[inline(always)]
    fn read(b: &[u8]) -> u64 {
        b.first_chunk::<8>().map_or(0, |a| u64::from_le_bytes(*a))
    }
}

impl Payload for [u64; 2] {
    const WORDS: usize = 2;
    const TAG: u8 = super::dcf2::DCF2_TAG;
    const KIND: &'static str = "DCF2";
    const VALUE_BLOCKS: usize = 2;
    const CONVERT_BY_PRG: bool = true;

    #[inline(always)]
    fn value_input(seed: u128, bit: u64) -> u128 {
        seed | u128::from(bit & 1)
    }
    #[inline(always)]
    fn value(out: u128, _bit: u64) -> [u64; 2] {
        [out as u64, (out >> 64) as u64]
    }
    #[inline(always)]
    fn convert(_seed: u128, prg_out: u128) -> [u64; 2] {
        [prg_out as u64, (prg_out >> 64) as u64]
    }
    #[inline(always)]
    fn add(self, o: [u64; 2]) -> [u64; 2] {
        [self[0].wrapping_add(o[0]), self[1].wrapping_add(o[1])]
    }
    #[inline(always)]
    fn sub(self, o: [u64; 2]) -> [u64; 2] {
        [self[0].wrapping_sub(o[0]), self[1].wrapping_sub(o[1])]
    }
    #[inline(always)]
    fn and(self, m: u64) -> [u64; 2] {
        [self[0] & m, self[1] & m]
    }
    #[inline(always)]
    fn signed(self, b: u8) -> [u64; 2] {
        [signed(b, self[0]), signed(b, self[1])]
    }
    #[inline(always)]
    fn select(m: u64, one: [u64; 2], zero: [u64; 2]) -> [u64; 2] {
        [(one[0] & m) | (zero[0] & !m), (one[1] & m) | (zero[1] & !m)]
    }
    #[inline(always)]
    fn write(self, out: &mut [u8]) {
        if let Some(d) = out.first_chunk_mut::<16>() {
            let (a, b) = d.split_at_mut(8);
            a.copy_from_slice(&self[0].to_le_bytes());
            b.copy_from_slice(&self[1].to_le_bytes());
        }
    }
    #[inline(always)]
    fn read(b: &[u8]) -> [u64; 2] {
        let v = b.first_chunk::<16>().map_or(0, |a| u128::from_le_bytes(*a));
        [v as u64, (v >> 64) as u64]
    }
}

/// Byte offsets of the fields of one serialised key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Layout {
    n: usize,
    values: usize,
    ctrl: usize,
    fin: usize,
    /// Bytes of one key.
    pub(crate) len: usize,
}

/// Offset of the root seed.
const ROOT: usize = 2;
/// Offset of the first seed correction word.
const SEEDS: usize = 18;

impl Layout {
    pub(crate) const fn new(n_bits: u32, words: usize) -> Layout {
        let n = n_bits as usize;
        let values = SEEDS + 16 * n;
        let ctrl = values + 8 * words * n;
        let fin = ctrl + control_bytes(n);
        Layout { n, values, ctrl, fin, len: fin + 8 * words }
    }

    // Field readers of a serialised key; a key too short reads zeros (callers validate lengths).

    #[inline(always)]
    fn root(&self, key: &[u8]) -> u128 {
        key.get(ROOT..SEEDS).map_or(0, u128_le)
    }

    /// Seed CW of `level`, its ignored lowest bit cleared.
    #[inline(always)]
    fn seed_cw(&self, key: &[u8], level: usize) -> u128 {
        key.get(SEEDS + 16 * level..SEEDS + 16 * level + 16).map_or(0, u128_le) & !1
    }

    #[inline(always)]
    fn value_cw<P: Payload>(&self, key: &[u8], level: usize) -> P {
        key.get(self.values + 8 * P::WORDS * level..).map_or(P::default(), P::read)
    }

    /// The packed control-bit CWs as one little-endian word.
    #[inline(always)]
    fn ctrl_word(&self, key: &[u8]) -> u128 {
        let mut c = [0u8; 16];
        if let (Some(d), Some(s)) = (c.get_mut(..self.fin - self.ctrl), key.get(self.ctrl..self.fin)) {
            d.copy_from_slice(s);
        }
        u128::from_le_bytes(c)
    }

    #[inline(always)]
    fn final_cw<P: Payload>(&self, key: &[u8]) -> P {
        key.get(self.fin..).map_or(P::default(), P::read)
    }
}

/// The even bits of `x` packed into the low 32 bits.
#[inline]
fn compress_even(mut x: u64) -> u64 {
    x &= 0x5555_5555_5555_5555;
    x = (x | (x >> 1)) & 0x3333_3333_3333_3333;
    x = (x | (x >> 2)) & 0x0f0f_0f0f_0f0f_0f0f;
    x = (x | (x >> 4)) & 0x00ff_00ff_00ff_00ff;
    x = (x | (x >> 8)) & 0x0000_ffff_0000_ffff;
    (x | (x >> 16)) & 0x0000_0000_ffff_ffff
}

/// The low 32 bits of `x` spread to the even bit positions.
#[inline]
fn spread_even(mut x: u64) -> u64 {
    x &= 0xffff_ffff;
    x = (x | (x << 16)) & 0x0000_ffff_0000_ffff;
    x = (x | (x << 8)) & 0x00ff_00ff_00ff_00ff;
    x = (x | (x << 4)) & 0x0f0f_0f0f_0f0f_0f0f;
    x = (x | (x << 2)) & 0x3333_3333_3333_3333;
    (x | (x << 1)) & 0x5555_5555_5555_5555
}

/// Packed control bits (bit `2i` = `t_L`, `2i+1` = `t_R` of level `i`) → `[t_L mask, t_R mask]`.
#[inline]
pub(crate) fn split_ctrl(c: u128) -> [u64; 2] {
    let (lo, hi) = (c as u64, (c >> 64) as u64);
    [compress_even(lo) | (compress_even(hi) << 32), compress_even(lo >> 1) | (compress_even(hi >> 1) << 32)]
}

/// Inverse of [`split_ctrl`].
#[inline]
pub(crate) fn join_ctrl([l, r]: [u64; 2]) -> u128 {
    let lo = spread_even(l) | (spread_even(r) << 1);
    let hi = spread_even(l >> 32) | (spread_even(r >> 32) << 1);
    u128::from(lo) | (u128::from(hi) << 64)
}

/// Where a batch's bytes live: borrowed, owned, or a range of a buffer shared with others (a
/// party's whole material for a node, so keys kept for a later round need no copy).
#[derive(Clone)]
pub enum KeyBytes<'a> {
    /// Borrowed from the caller.
    Borrowed(&'a [u8]),
    /// Owned.
    Owned(Vec<u8>),
    /// `buffer[range]` of a shared buffer.
    Shared(std::sync::Arc<dyn AsRef<[u8]> + Send + Sync>, std::ops::Range<usize>),
}

impl std::ops::Deref for KeyBytes<'_> {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match self {
            KeyBytes::Borrowed(b) => b,
            KeyBytes::Owned(v) => v,
            KeyBytes::Shared(buf, r) => (**buf).as_ref().get(r.clone()).unwrap_or_default(),
        }
    }
}

impl PartialEq for KeyBytes<'_> {
    fn eq(&self, other: &Self) -> bool {
        **self == **other
    }
}

impl Eq for KeyBytes<'_> {}

impl<'a> From<Cow<'a, [u8]>> for KeyBytes<'a> {
    fn from(c: Cow<'a, [u8]>) -> Self {
        match c {
            Cow::Borrowed(b) => KeyBytes::Borrowed(b),
            Cow::Owned(v) => KeyBytes::Owned(v),
        }
    }
}

/// `count` serialised keys of one domain size, concatenated, validated once and then evaluated
/// where they lie (borrowed, owned or shared bytes; no copy, no per-key allocation).
///
/// The serialised key is itself a structure of arrays (root, all seed CWs, all value CWs, packed
/// control bits, final CW), so [`eval_range`] reads each level's CWs with fixed strides.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct KeyBatch<'a, P> {
    n_bits: u32,
    count: usize,
    lay: Layout,
    bytes: KeyBytes<'a>,
    _payload: PhantomData<P>,
}

impl<'a, P: Payload> KeyBatch<'a, P> {
    pub(crate) fn n_bits(&self) -> u32 {
        self.n_bits
    }

    pub(crate) fn len(&self) -> usize {
        self.count
    }

    /// All keys' serialisations, back to back.
    pub(crate) fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The serialisation of key `i`.
    pub(crate) fn key(&self, i: usize) -> Option<&[u8]> {
        let start = i.checked_mul(self.lay.len)?;
        self.bytes.get(start..start.checked_add(self.lay.len)?)
    }

    /// The same keys, owning their bytes.
    pub(crate) fn into_owned(self) -> KeyBatch<'static, P> {
        let KeyBatch { n_bits, count, lay, bytes, _payload } = self;
        let bytes = match bytes {
            KeyBytes::Borrowed(b) => KeyBytes::Owned(b.to_vec()),
            KeyBytes::Owned(v) => KeyBytes::Owned(v),
            KeyBytes::Shared(buf, r) => KeyBytes::Shared(buf, r),
        };
        KeyBatch { n_bits, count, lay, bytes, _payload }
    }

    /// Validates `count` keys of `n_bits` bits serialised back to back: tag, domain size,
    /// length, the root seed's low bit and the control-bit padding, reading two cache lines per
    /// key. A `batch` (errors prefixed with the key index) accepts any value of the seed CWs'
    /// ignored low bits (see the module docs); a single key (`!batch`) must have them zero, as
    /// the single-key parsers require, so that it re-serialises canonically.
    pub(crate) fn parse(
        bytes: impl Into<KeyBytes<'a>>,
        count: usize,
        n_bits: u32,
        batch: bool,
    ) -> Result<Self, FssError> {
        let bytes = bytes.into();
        check_bits(n_bits)?;
        let lay = Layout::new(n_bits, P::WORDS);
        let malformed = |reason: String| FssError::MalformedKey { kind: P::KIND, reason };
        let want = count.checked_mul(lay.len).ok_or_else(|| malformed(format!("{count} keys overflow a length")))?;
        if bytes.len() != want {
            return Err(malformed(format!("{} bytes, {count} {n_bits}-bit keys have {want}", bytes.len())));
        }
        for (k, key) in bytes.chunks_exact(lay.len).enumerate() {
            validate_key::<P>(key, &lay, n_bits, !batch)
                .map_err(|r| malformed(if batch { format!("key {k}: {r}") } else { r }))?;
        }
        Ok(KeyBatch { n_bits, count, lay, bytes, _payload: PhantomData })
    }
}

/// Checks one serialised key of `lay.len` bytes (see [`KeyBatch::parse`]).
fn validate_key<P: Payload>(key: &[u8], lay: &Layout, n_bits: u32, canonical: bool) -> Result<(), String> {
    let tag = key.first().copied().unwrap_or_default();
    if tag != P::TAG {
        return Err(format!("type tag {tag:#04x}, expected {:#04x}", P::TAG));
    }
    let n = key.get(1).copied().unwrap_or_default();
    if u32::from(n) != n_bits {
        return Err(format!("domain size {n} bits in a batch of {n_bits}-bit keys"));
    }
    if key.get(ROOT).is_some_and(|b| b & 1 != 0) {
        return Err("root seed has its control-bit position set".to_string());
    }
    // A batch does not read the seed CWs: their low bits are ignored (see the module docs).
    if canonical {
        let seeds = key.get(SEEDS..lay.values).unwrap_or_default();
        if let Some(i) = seeds.chunks_exact(16).position(|c| c.first().is_some_and(|b| b & 1 != 0)) {
            return Err(format!("seed correction word {i} has its control-bit position set"));
        }
    }
    if 2 * lay.n < 128 && lay.ctrl_word(key) >> (2 * lay.n) != 0 {
        return Err("padding bits after the control bits are not zero".to_string());
    }
    Ok(())
}

/// Tag, domain size and root seed of a serialised key.
#[inline]
fn write_key_head(key: &mut [u8], n_bits: u32, tag: u8, root: u128) {
    put(key, 0, &[tag, n_bits as u8]);
    put(key, ROOT, &root.to_le_bytes());
}

/// Control bits and final CW of a serialised key.
#[inline]
fn write_key_tail<P: Payload>(key: &mut [u8], lay: &Layout, ctrl: [u64; 2], fin: P) {
    let c = join_ctrl(ctrl).to_le_bytes();
    if let Some(cb) = c.get(..lay.fin - lay.ctrl) {
        put(key, lay.ctrl, cb);
    }
    if let Some(d) = key.get_mut(lay.fin..) {
        fin.write(d);
    }
}

/// Party `party`'s share of key `i` of `b` at `x` (latency bound: `2n` dependent AES calls,
/// plus one for a PRG `Convert`).
pub(crate) fn eval_one<P: Payload>(party: u8, b: &KeyBatch<'_, P>, i: usize, x: u64) -> Result<P, FssError> {
    check_party(party)?;
    check_in_domain("evaluation point", x, b.n_bits)?;
    let key = b.key(i).ok_or(FssError::LengthMismatch { what: "key index", expected: b.len(), got: i })?;
    let lay = &b.lay;
    let ctrl = split_ctrl(lay.ctrl_word(key));
    let prg = Prg::global();
    let (mut s, mut t, mut acc) = (lay.root(key), party, P::default());
    for level in 0..lay.n {
        let bit = path_bit(x, b.n_bits, level as u32);
        let (sc, tc) = split_seed(prg.mmo(PrgKey::child(bit), s));
        let v = P::value(prg.mmo(PrgKey::Value, P::value_input(s, bit)), bit);
        let t_cw = ((if bit == 0 { ctrl[0] } else { ctrl[1] } >> level) & 1) as u8;
        acc = acc.add(v).add(lay.value_cw::<P>(key, level).and(mask64(t)));
        s = sc ^ (mask128(t) & lay.seed_cw(key, level));
        t = tc ^ (t & t_cw);
    }
    let prg_out = if P::CONVERT_BY_PRG { prg.mmo(PrgKey::Value, s) } else { 0 };
    Ok(acc.add(P::convert(s, prg_out)).add(lay.final_cw::<P>(key).and(mask64(t))).signed(party))
}

/// Argument checks shared by [`eval_many`] and [`eval_many_par`].
fn check_many<P: Payload>(party: u8, b: &KeyBatch<'_, P>, xs: &[u64], out: &[P]) -> Result<(), FssError> {
    check_party(party)?;
    if xs.len() != b.len() {
        return Err(FssError::LengthMismatch { what: "evaluation points", expected: b.len(), got: xs.len() });
    }
    if out.len() != xs.len() {
        return Err(FssError::LengthMismatch { what: "output buffer", expected: xs.len(), got: out.len() });
    }
    check_all_in_domain(xs, b.n_bits)
}

/// Evaluates key `i` of `b` at `xs[i]` into `out[i]` for every `i`.
pub(crate) fn eval_many<P: Payload>(party: u8, b: &KeyBatch<'_, P>, xs: &[u64], out: &mut [P]) -> Result<(), FssError> {
    check_many(party, b, xs, out)?;
    eval_range(party, b, 0, xs, out);
    Ok(())
}

/// Threads to use for `len` items: 1 up to [`PAR_MIN_BATCH`], else the available parallelism
/// capped at `max_threads` (at least 1).
fn par_threads(len: usize, max_threads: usize) -> usize {
    if len <= PAR_MIN_BATCH {
        return 1;
    }
    let avail = thread::available_parallelism().map_or(1, |n| n.get());
    avail.min(max_threads).max(1)
}

/// Runs `work(first index, part)` over `parts` (each with its index offset): the first on the
/// calling thread, the others on scoped threads (inline if a thread cannot be started).
fn run_parts<T: Send>(parts: Vec<(usize, T)>, work: impl Fn(usize, T) + Sync) {
    // Each part sits in its own cell, so a part whose thread failed to start is still at hand.
    let cells: Vec<Mutex<Option<(usize, T)>>> = parts.into_iter().map(|p| Mutex::new(Some(p))).collect();
    let run = |cell: &Mutex<Option<(usize, T)>>| {
        if let Some((at, part)) = cell.lock().ok().and_then(|mut g| g.take()) {
            work(at, part);
        }
    };
    thread::scope(|scope| {
        let run = &run;
        for cell in cells.iter().skip(1) {
            if thread::Builder::new().spawn_scoped(scope, move || run(cell)).is_err() {
                run(cell);
            }
        }
        if let Some(cell) = cells.first() {
            run(cell);
        }
    });
}

/// [`eval_many`] split across up to `max_threads` scoped threads (see [`par_threads`]), in
/// contiguous parts of whole tiles.
pub(crate) fn eval_many_par<P: Payload>(
    party: u8,
    b: &KeyBatch<'_, P>,
    xs: &[u64],
    out: &mut [P],
    max_threads: usize,
) -> Result<(), FssError> {
    check_many(party, b, xs, out)?;
    let threads = par_threads(xs.len(), max_threads);
    if threads <= 1 {
        eval_range(party, b, 0, xs, out);
        return Ok(());
    }
    let per = xs.len().div_ceil(threads).div_ceil(MANY_TILE) * MANY_TILE;
    let parts: Vec<_> = xs.chunks(per).zip(out.chunks_mut(per)).enumerate().map(|(i, p)| (i * per, p)).collect();
    run_parts(parts, |first, (xc, oc)| eval_range(party, b, first, xc, oc));
    Ok(())
}

/// Most levels of a key (the largest domain size).
const MAX_LEVELS: usize = 64;

/// Row length of the level-major CW arrays of [`ManyTile`]: a little over [`MANY_TILE`], so the
/// rows do not all start at the same L1 set (the per-key decode writes one entry in every row).
const ROW: usize = MANY_TILE + 8;

/// Per-tile state of [`eval_range`] as a structure of arrays: the tile's correction words,
/// decoded once per tile into level-major rows (one sequential pass over the tile's key bytes,
/// which the hardware prefetcher streams in), and the running state of each point.
struct ManyTile<P> {
    /// `cs[level][j]`: seed CW of level `level` of the tile's key `j`.
    cs: Vec<[u128; ROW]>,
    /// `cv[level][j]`: value CW of level `level` of the tile's key `j`.
    cv: Vec<[P; ROW]>,
    /// Current seed of each point.
    s: [u128; MANY_TILE],
    /// Running output share of each point.
    acc: [P; MANY_TILE],
    /// Current control bit of each point (0 or 1).
    t: [u64; MANY_TILE],
    /// Tree path of each point: bit `l` = direction at level `l`.
    path: [u64; MANY_TILE],
    /// The control-bit CW on each point's path: bit `l` = `t_L` or `t_R` of level `l`.
    tcw: [u64; MANY_TILE],
}

impl<P: Payload> ManyTile<P> {
    fn new() -> Box<Self> {
        Box::new(ManyTile {
            cs: vec![[0; ROW]; MAX_LEVELS],
            cv: vec![[P::default(); ROW]; MAX_LEVELS],
            s: [0; MANY_TILE],
            acc: [P::default(); MANY_TILE],
            t: [0; MANY_TILE],
            path: [0; MANY_TILE],
            tcw: [0; MANY_TILE],
        })
    }
}

/// Evaluates keys `first..first + xs.len()` of `b` at `xs` into `out`: on the AES-NI kernel
/// ([`aesni`]) where the CPU has one, else on the portable path ([`eval_range_portable`]).
/// Arguments are checked by the callers; a range outside the batch leaves `out` untouched.
fn eval_range<P: Payload>(party: u8, b: &KeyBatch<'_, P>, first: usize, xs: &[u64], out: &mut [P]) {
    #[cfg(target_arch = "x86_64")]
    if aesni::eval_range(party, b, first, xs, out) {
        return;
    }
    eval_range_portable(party, b, first, xs, out);
}

/// [`eval_range`] on any CPU: tiles of [`MANY_TILE`] keys walked level by level, the `aes` crate's
/// `encrypt_blocks` on each level's blocks (grouped by PRG key).
fn eval_range_portable<P: Payload>(party: u8, b: &KeyBatch<'_, P>, first: usize, xs: &[u64], out: &mut [P]) {
    const MASK: usize = 2 * REGION - 1;
    const TMASK: usize = MANY_TILE - 1;
    let prg = Prg::global();
    let mut scratch = EvalScratch::new();
    let EvalScratch { buf_a, buf_b, vbuf, .. } = &mut *scratch;
    let mut tile_state = ManyTile::<P>::new();
    let ManyTile { cs, cv, s, acc, t, path, tcw } = &mut *tile_state;
    let n = b.n_bits;
    let lay = b.lay;
    let vw = 8 * P::WORDS;

    for (tile, (xt, ot)) in xs.chunks(MANY_TILE).zip(out.chunks_mut(MANY_TILE)).enumerate() {
        let k0 = first + tile * MANY_TILE;
        let m = xt.len().min(MANY_TILE);
        let Some(keys) = b.bytes().get(k0 * lay.len..(k0 + m) * lay.len) else { return };
        // Same scheme as `dcf::eval_batch`: a point going left sits at the number of left-goers
        // before it in `cur`, one going right at REGION + the number of right-goers before it.
        let (mut cur, mut next) = (&mut *buf_a, &mut *buf_b);
        let mut cl = 0usize;
        for (j, (x, key)) in xt.iter().zip(keys.chunks_exact(lay.len)).enumerate() {
            let jm = j & TMASK;
            let seeds = key.get(SEEDS..lay.values).unwrap_or_default();
            for (row, c) in cs.iter_mut().zip(seeds.chunks_exact(16)) {
                row[jm] = c.first_chunk::<16>().map_or(0, |a| u128::from_le_bytes(*a)) & !1;
            }
            let values = key.get(lay.values..lay.ctrl).unwrap_or_default();
            for (row, c) in cv.iter_mut().zip(values.chunks_exact(vw)) {
                row[jm] = P::read(c);
            }
            let root = lay.root(key);
            // Bit `l` of `p` is the path bit of level `l` (bit `n − 1 − l` of `x`).
            let p = x.reverse_bits() >> (64 - n);
            let [cl_l, cl_r] = split_ctrl(lay.ctrl_word(key));
            let bit = p & 1;
            cur[select(bit as usize, REGION + j - cl, cl) & MASK] = block_from_u128(root);
            vbuf[j & (REGION - 1)] = block_from_u128(P::value_input(root, bit));
            s[jm] = root;
            acc[jm] = P::default();
            t[jm] = u64::from(party & 1);
            path[jm] = p;
            tcw[jm] = (cl_l & !p) | (cl_r & p);
            cl += 1 - bit as usize;
        }
        for (level, (csl, cvl)) in cs.iter().zip(cv.iter()).enumerate().take(lay.n) {
            // After the last level the shift wraps to 0: harmless scratch writes.
            let next_shift = (level as u32 + 1) & 63;
            {
                let (left, right) = cur.split_at_mut(REGION);
                prg.encrypt_padded(PrgKey::Left, left, cl);
                prg.encrypt_padded(PrgKey::Right, right, m - cl);
                prg.encrypt_padded(PrgKey::Value, vbuf, m);
            }
            let (mut rl, mut wl) = (0usize, 0usize);
            for j in 0..m {
                let jm = j & TMASK;
                let pj = path[jm];
                let bit = (pj >> level) & 1;
                let e = u128_from_block(&cur[select(bit as usize, REGION + j - rl, rl) & MASK]);
                rl += 1 - bit as usize;
                let (sv, tv) = (s[jm], t[jm]);
                let tm = 0u64.wrapping_sub(tv);
                let sc = e ^ sv;
                let v = P::value(u128_from_block(&vbuf[j & (REGION - 1)]) ^ P::value_input(sv, bit), bit);
                acc[jm] = acc[jm].add(v).add(cvl[jm].and(tm));
                let s_new = (sc & !1) ^ (0u128.wrapping_sub(u128::from(tv)) & csl[jm]);
                s[jm] = s_new;
                t[jm] = (sc as u64 & 1) ^ (tv & (tcw[jm] >> level));
                // Gather for the next level.
                let nbit = (pj >> next_shift) & 1;
                next[select(nbit as usize, REGION + j - wl, wl) & MASK] = block_from_u128(s_new);
                vbuf[j & (REGION - 1)] = block_from_u128(P::value_input(s_new, nbit));
                wl += 1 - nbit as usize;
            }
            std::mem::swap(&mut cur, &mut next);
            cl = wl;
        }
        if P::CONVERT_BY_PRG {
            for (vb, sj) in vbuf.iter_mut().zip(s.iter()).take(m) {
                *vb = block_from_u128(*sj);
            }
            prg.encrypt_padded(PrgKey::Value, vbuf, m);
        }
        let state = s.iter().zip(acc.iter()).zip(t.iter());
        for ((o, ((sj, aj), tj)), (key, vb)) in
            ot.iter_mut().zip(state).zip(keys.chunks_exact(lay.len).zip(vbuf.iter()))
        {
            let conv = P::convert(*sj, u128_from_block(vb) ^ *sj);
            *o = aj.add(conv).add(lay.final_cw::<P>(key).and(0u64.wrapping_sub(*tj))).signed(party);
        }
    }
}

/// Argument checks of key generation; returns the key layout.
fn check_keygen<P: Payload>(alphas: &[u64], betas: &[P], n_bits: u32) -> Result<Layout, FssError> {
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
fn keygen_into_with<P: Payload>(
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

/// [`keygen_into_par`], on the portable path if `portable`.
#[allow(clippy::too_many_arguments)]
fn keygen_into_par_with<P: Payload>(
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
    // Outputs with room for the keys (recycled material buffers) are extended in place: their
    // pages are mapped already. Otherwise zeroed allocations come from the OS untouched, so the
    // threads fault their own pages in, and what the outputs already hold (a material header,
    // other shares: small) is copied in front, rather than the keys (large) appended after it.
    let (at0, at1) = (out0.len(), out1.len());
    let grow = |out: &mut Vec<u8>, at: usize| {
        let total = at + alphas.len() * lay.len;
        if out.capacity() >= total {
            out.resize(total, 0);
            std::mem::take(out)
        } else {
            let mut fresh = vec![0u8; total];
            fresh[..at].copy_from_slice(out);
            fresh
        }
    };
    let mut fresh0 = grow(out0, at0);
    let mut fresh1 = grow(out1, at1);
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
enum Gen<P> {
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
    fn new(n_bits: u32, portable: bool) -> Self {
        #[cfg(target_arch = "x86_64")]
        if !portable && let Some(kernel) = aesni::Keygen::new() {
            let lay = Layout::new(n_bits, P::WORDS);
            return Gen::Ni { kernel: Box::new(kernel), n_bits, lay, out: vec![0; aesni::GEN_CHUNK * lay.len] };
        }
        let _ = portable;
        Gen::Portable(Box::new(TileGen::new(n_bits)))
    }

    /// Keys per call of [`Gen::run`].
    fn tile(&self) -> usize {
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
    fn run_into(&mut self, at: &[u64], bt: &[P], roots: &[u128], dst: &mut [u8]) {
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

    fn run(&mut self, at: &[u64], bt: &[P], roots: &[u128]) -> &[u8] {
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
fn set_roots(keys: &mut [u8], lay: &Layout, roots: &[u128], party: usize) {
    for (key, rp) in keys.chunks_exact_mut(lay.len).zip(roots.chunks_exact(2)) {
        if let Some(r) = rp.get(party) {
            put(key, ROOT, &r.to_le_bytes());
        }
    }
}

/// Seeds of one [`TileGen`] tile (two per key).
const GEN_SEEDS: usize = 2 * GEN_TILE;

/// Length of the AES buffers of [`TileGen`]: the tile's seeds plus room for padding to any
/// backend's group (at most 64 blocks); a power of two, so masked indices need no bounds checks.
const GEN_BUF: usize = 2 * GEN_SEEDS;

/// Scratch and output buffers of key generation for one tile of up to [`GEN_TILE`] keys, as
/// fixed-size arrays (structure of arrays, indices masked to the array size).
struct TileGen<P> {
    n_bits: u32,
    lay: Layout,
    /// AES buffers: left, right, value (direction 0), value (direction 1, DCF2 only).
    bl: Box<[Block; GEN_BUF]>,
    br: Box<[Block; GEN_BUF]>,
    bv0: Box<[Block; GEN_BUF]>,
    bv1: Box<[Block; GEN_BUF]>,
    /// Root seeds of the tile, index `2k + b` for party `b` of key `k` (filled by the caller).
    roots: Vec<u128>,
    s: [u128; GEN_SEEDS],
    t: [u8; GEN_SEEDS],
    /// `V_α` per key: the running correction of the on-path value shares.
    v_alpha: [P; GEN_TILE],
    ctrl: [[u64; 2]; GEN_TILE],
    /// Tree path of each `α`: bit `l` = direction at level `l`.
    apath: [u64; GEN_TILE],
    /// `cw_s[level][k]`: seed CW of level `level` of key `k`, gathered level by level and
    /// written key by key at the end (rows padded so a column does not crowd one L1 set).
    cw_s: Vec<[u128; GEN_TILE + 4]>,
    /// `cw_v[level][k]`: value CW of level `level` of key `k`, likewise.
    cw_v: Vec<[P; GEN_TILE + 8]>,
    /// Party 0's serialised keys of the tile.
    out0: Vec<u8>,
}

impl<P: Payload> TileGen<P> {
    fn new(n_bits: u32) -> Self {
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
    fn run(&mut self, at: &[u64], bt: &[P]) -> &[u8] {
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Random keys of both parties for `count` comparisons, with points next to and at `α`.
    fn batches<P: Payload>(
        count: usize,
        n_bits: u32,
        tag: u8,
        beta: impl Fn(u64) -> P,
    ) -> ([KeyBatch<'static, P>; 2], Vec<u64>) {
        let mut r = SeedRng::from_seed([tag; 32]);
        let max = super::super::domain_mask(n_bits);
        let alphas: Vec<u64> = (0..count).map(|_| r.next_u64() & max).collect();
        let betas: Vec<P> = (0..count).map(|_| beta(r.next_u64())).collect();
        let xs: Vec<u64> = alphas
            .iter()
            .enumerate()
            .map(|(i, a)| match i % 4 {
                0 => r.next_u64() & max,
                1 => *a,
                2 => a.wrapping_sub(1) & max,
                _ => a.wrapping_add(1) & max,
            })
            .collect();
        let (mut b0, mut b1) = (Vec::new(), Vec::new());
        keygen_into(&alphas, &betas, n_bits, &mut r, &mut b0, &mut b1).unwrap_or_else(|e| panic!("{e}"));
        let parse = |b: Vec<u8>| KeyBatch::parse(Cow::Owned(b), count, n_bits, true).unwrap_or_else(|e| panic!("{e}"));
        ([parse(b0), parse(b1)], xs)
    }

    /// The dispatching [`eval_range`] (the AES-NI kernel where the CPU has one) agrees with the
    /// portable path and with single-key evaluation, for ranges that are not whole groups.
    fn dispatch_matches_portable<P: Payload + std::fmt::Debug>(tag: u8, beta: impl Fn(u64) -> P + Copy) {
        for n_bits in [1u32, 2, 7, 17, 63, 64] {
            for count in [1usize, 6, 7, 13, 14, 15, 29, 300] {
                let (keys, xs) = batches::<P>(count, n_bits, tag, beta);
                for (party, b) in keys.iter().enumerate() {
                    let party = party as u8;
                    for first in [0, count / 3] {
                        let xs = &xs[first..];
                        let mut fast = vec![P::default(); xs.len()];
                        let mut slow = vec![P::default(); xs.len()];
                        eval_range(party, b, first, xs, &mut fast);
                        eval_range_portable(party, b, first, xs, &mut slow);
                        assert_eq!(fast, slow, "n={n_bits} count={count} first={first} party={party}");
                        for (i, (x, y)) in xs.iter().zip(&fast).enumerate().step_by(5) {
                            assert_eq!(eval_one(party, b, first + i, *x), Ok(*y));
                        }
                    }
                }
            }
        }
    }

    /// Both parties' keys from the dispatching key generation (the AES-NI kernel where the CPU
    /// has one) and from the portable path, serial or on `threads` threads, for the same seed.
    fn gen_both<P: Payload>(
        alphas: &[u64],
        betas: &[P],
        n_bits: u32,
        seed: [u8; 32],
        threads: Option<usize>,
    ) -> [[Vec<u8>; 2]; 2] {
        let run = |portable: bool| {
            let mut r = SeedRng::from_seed(seed);
            // Appends after existing content.
            let (mut b0, mut b1) = (vec![0xA5], vec![]);
            let res = match threads {
                None => keygen_into_with(alphas, betas, n_bits, &mut r, &mut b0, &mut b1, portable),
                Some(t) => keygen_into_par_with(alphas, betas, n_bits, &mut r, &mut b0, &mut b1, t, portable),
            };
            res.unwrap_or_else(|e| panic!("{e}"));
            // The rng is left in the same state.
            b0.extend_from_slice(&r.next_u128().to_le_bytes());
            [b0, b1]
        };
        [run(false), run(true)]
    }

    /// The dispatching key generation agrees byte for byte with the portable path (root seeds,
    /// CWs, rng use) for random seeds, several domain sizes and batch sizes that are not whole
    /// groups, and the keys evaluate to the comparison function.
    fn keygen_matches_portable<P: Payload + std::fmt::Debug>(tag: u8, beta: impl Fn(u64) -> P + Copy) {
        let mut r = SeedRng::from_seed([tag; 32]);
        for n_bits in [1u32, 2, 5, 7, 17, 32, 63, 64] {
            let max = super::super::domain_mask(n_bits);
            for count in [1usize, 2, 3, 4, 5, 6, 7, 8, 9, 11, 16, 17, 31, 63, 64, 65, 130] {
                let mut seed = [0u8; 32];
                r.fill_bytes(&mut seed);
                let alphas: Vec<u64> = (0..count)
                    .map(|i| match i % 5 {
                        0 => 0,
                        1 => max,
                        _ => r.next_u64() & max,
                    })
                    .collect();
                let betas: Vec<P> = (0..count).map(|_| beta(r.next_u64())).collect();
                let [fast, slow] = gen_both(&alphas, &betas, n_bits, seed, None);
                assert!(fast == slow, "n={n_bits} count={count}");
                // The keys compute f(x) = β for x < α, else 0.
                let [b0, b1] = fast;
                let parse = |b: &[u8]| {
                    KeyBatch::<P>::parse(Cow::Owned(b.to_vec()), count, n_bits, true).unwrap_or_else(|e| panic!("{e}"))
                };
                let keys = [parse(&b0[1..b0.len() - 16]), parse(&b1)];
                for (i, (a, b)) in alphas.iter().zip(&betas).enumerate() {
                    for x in [*a, a.wrapping_sub(1) & max, a.wrapping_add(1) & max, r.next_u64() & max] {
                        let y0 = eval_one(0, &keys[0], i, x).unwrap_or_else(|e| panic!("{e}"));
                        let y1 = eval_one(1, &keys[1], i, x).unwrap_or_else(|e| panic!("{e}"));
                        let want = if x < *a { *b } else { P::default() };
                        assert_eq!(y0.add(y1), want, "n={n_bits} count={count} i={i} x={x:#x}");
                    }
                }
            }
        }
        // The threaded variant, on a batch large enough to be split.
        for n_bits in [6u32, 63] {
            let count = PAR_MIN_BATCH + 2 * GEN_TILE + 5;
            let mut seed = [0u8; 32];
            r.fill_bytes(&mut seed);
            let max = super::super::domain_mask(n_bits);
            let alphas: Vec<u64> = (0..count).map(|_| r.next_u64() & max).collect();
            let betas: Vec<P> = (0..count).map(|_| beta(r.next_u64())).collect();
            let [fast, slow] = gen_both(&alphas, &betas, n_bits, seed, Some(3));
            assert!(fast == slow, "par n={n_bits}");
            let [serial, _] = gen_both(&alphas, &betas, n_bits, seed, None);
            assert!(fast == serial, "par n={n_bits}");
        }
    }

    #[test]
    fn keygen_matches_portable_dcf() {
        keygen_matches_portable::<u64>(42, |b| b);
    }

    #[test]
    fn keygen_matches_portable_dcf2() {
        keygen_matches_portable::<[u64; 2]>(43, |b| [b, b.rotate_left(29)]);
    }

    /// Keys whose seed CWs all have their ignored low bit set evaluate as the clean keys on every
    /// path: dispatch (VAES where the CPU has it), AES-NI, portable tiles and one key at a time.
    fn seed_cw_low_bits_are_ignored<P: Payload + std::fmt::Debug>(tag: u8, beta: impl Fn(u64) -> P + Copy) {
        for n_bits in [1u32, 7, 63, 64] {
            let count = 29;
            let (keys, xs) = batches::<P>(count, n_bits, tag, beta);
            let lay = Layout::new(n_bits, P::WORDS);
            for (party, clean) in keys.iter().enumerate() {
                let party = party as u8;
                let mut bytes = clean.bytes().to_vec();
                for key in bytes.chunks_exact_mut(lay.len) {
                    for level in 0..lay.n {
                        key[SEEDS + 16 * level] |= 1;
                    }
                }
                let dirty =
                    KeyBatch::<P>::parse(Cow::Owned(bytes), count, n_bits, true).unwrap_or_else(|e| panic!("{e}"));
                let run = |b: &KeyBatch<'_, P>, path: u8| {
                    let mut out = vec![P::default(); count];
                    match path {
                        0 => eval_range(party, b, 0, &xs, &mut out),
                        1 => eval_range_portable(party, b, 0, &xs, &mut out),
                        #[cfg(target_arch = "x86_64")]
                        2 => assert!(!aesni::available() || aesni::eval_range_with(party, b, 0, &xs, &mut out, false)),
                        _ => {
                            for (i, (x, y)) in xs.iter().zip(out.iter_mut()).enumerate() {
                                *y = eval_one(party, b, i, *x).unwrap_or_else(|e| panic!("{e}"));
                            }
                        }
                    }
                    out
                };
                let want = run(clean, 1);
                for path in 0..4 {
                    assert_eq!(run(&dirty, path), want, "n={n_bits} party={party} path={path}");
                }
            }
        }
    }

    #[test]
    fn seed_cw_low_bits_are_ignored_dcf() {
        seed_cw_low_bits_are_ignored::<u64>(44, |b| b);
    }

    #[test]
    fn seed_cw_low_bits_are_ignored_dcf2() {
        seed_cw_low_bits_are_ignored::<[u64; 2]>(45, |b| [b, b.rotate_left(11)]);
    }

    #[test]
    fn dispatch_matches_portable_dcf() {
        dispatch_matches_portable::<u64>(40, |b| b);
    }

    #[test]
    fn dispatch_matches_portable_dcf2() {
        dispatch_matches_portable::<[u64; 2]>(41, |b| [b, b.rotate_left(17)]);
    }
}
