//! The byte layout of one serialised key, its validation, and a batch of keys read in place.

use super::*;

/// Byte offsets of the fields of one serialised key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Layout {
    pub(super) n: usize,
    pub(super) values: usize,
    pub(super) ctrl: usize,
    pub(super) fin: usize,
    /// Bytes of one key.
    pub(crate) len: usize,
}

/// Offset of the root seed.
pub(super) const ROOT: usize = 2;
/// Offset of the first seed correction word.
pub(super) const SEEDS: usize = 18;

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
    pub(super) fn root(&self, key: &[u8]) -> u128 {
        key.get(ROOT..SEEDS).map_or(0, u128_le)
    }

    /// Seed CW of `level`, its ignored lowest bit cleared.
    #[inline(always)]
    pub(super) fn seed_cw(&self, key: &[u8], level: usize) -> u128 {
        key.get(SEEDS + 16 * level..SEEDS + 16 * level + 16).map_or(0, u128_le) & !1
    }

    #[inline(always)]
    pub(super) fn value_cw<P: Payload>(&self, key: &[u8], level: usize) -> P {
        key.get(self.values + 8 * P::WORDS * level..).map_or(P::default(), P::read)
    }

    /// The packed control-bit CWs as one little-endian word.
    #[inline(always)]
    pub(super) fn ctrl_word(&self, key: &[u8]) -> u128 {
        let mut c = [0u8; 16];
        if let (Some(d), Some(s)) = (c.get_mut(..self.fin - self.ctrl), key.get(self.ctrl..self.fin)) {
            d.copy_from_slice(s);
        }
        u128::from_le_bytes(c)
    }

    #[inline(always)]
    pub(super) fn final_cw<P: Payload>(&self, key: &[u8]) -> P {
        key.get(self.fin..).map_or(P::default(), P::read)
    }
}

/// The even bits of `x` packed into the low 32 bits.
#[inline]
pub(super) fn compress_even(mut x: u64) -> u64 {
    x &= 0x5555_5555_5555_5555;
    x = (x | (x >> 1)) & 0x3333_3333_3333_3333;
    x = (x | (x >> 2)) & 0x0f0f_0f0f_0f0f_0f0f;
    x = (x | (x >> 4)) & 0x00ff_00ff_00ff_00ff;
    x = (x | (x >> 8)) & 0x0000_ffff_0000_ffff;
    (x | (x >> 16)) & 0x0000_0000_ffff_ffff
}

/// The low 32 bits of `x` spread to the even bit positions.
#[inline]
pub(super) fn spread_even(mut x: u64) -> u64 {
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
    pub(super) n_bits: u32,
    pub(super) count: usize,
    pub(super) lay: Layout,
    pub(super) bytes: KeyBytes<'a>,
    pub(super) _payload: PhantomData<P>,
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
pub(super) fn validate_key<P: Payload>(key: &[u8], lay: &Layout, n_bits: u32, canonical: bool) -> Result<(), String> {
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
pub(super) fn write_key_head(key: &mut [u8], n_bits: u32, tag: u8, root: u128) {
    put(key, 0, &[tag, n_bits as u8]);
    put(key, ROOT, &root.to_le_bytes());
}

/// Control bits and final CW of a serialised key.
#[inline]
pub(super) fn write_key_tail<P: Payload>(key: &mut [u8], lay: &Layout, ctrl: [u64; 2], fin: P) {
    let c = join_ctrl(ctrl).to_le_bytes();
    if let Some(cb) = c.get(..lay.fin - lay.ctrl) {
        put(key, lay.ctrl, cb);
    }
    if let Some(d) = key.get_mut(lay.fin..) {
        fin.write(d);
    }
}
