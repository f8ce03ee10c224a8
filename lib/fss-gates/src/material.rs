//! Dealer material: how a node's correlated randomness is laid out for each party.
//!
//! Every node's material starts with a version byte and a gate tag, so a party refuses material
//! made for another gate or by another version with a clear error. Party 0's random shares are
//! never sent: the dealer sends a 32-byte seed and party 0 expands it with the AES-CTR
//! [`SeedRng`]; party 1 receives the corrections (`value − share₀`) explicitly. Keys of the
//! comparison functions are sent to both (they are correlated, not random).

use crate::fss::halftree::{self, HalfTreeKeys};
use crate::fss::table::{self, TableKeys, onehot};
use crate::fss::{Dcf2Key, Dcf2KeyBatch, DcfKey, DcfKeyBatch, SeedRng, dcf, dcf2};
use mpcflow_sdk::{Error, Result};

/// Version of the material layout.
pub const VERSION: u8 = 1;

fn dealer_err(e: crate::fss::FssError) -> Error {
    Error::internal(format!("fss2pc dealer: {e}"))
}

/// Spare capacity for the runtime's frame tag, appended after the material.
const FRAME_ROOM: usize = 16;

/// Length of the seed party 0 receives.
pub const SEED_LEN: usize = 32;

/// Which gate a node's material is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Tag {
    /// Input mask for the owner.
    Input = 1,
    /// Beaver-style correlation of a bilinear op (mul, matmul, conv2d).
    Bilinear = 2,
    /// Exact truncation.
    Trunc = 3,
    /// Sign (comparison).
    Sign = 4,
    /// ReLU.
    Relu = 5,
    /// Bilinear followed by truncation.
    BilinearTrunc = 6,
    /// Table lookup on a small domain with quadratic pieces (tag 7 was the layout before it:
    /// a 2048-point table and two DPFs).
    Lut = 11,
    /// Reciprocal, rsqrt, sqrt (see `gates::root`).
    Root = 8,
    /// Sign in two rounds (half-tree DReLU, then a local select).
    Sign2 = 9,
    /// ReLU in two rounds (half-tree DReLU, then a select).
    Relu2 = 10,
    /// One-hot bits of an index (see `gates::onehot`).
    OneHot = 12,
}

/// Bytes of the header.
pub const HEADER: usize = 2;

/// Writes one party's material.
///
/// The buffer may be a recycled one that still holds older bytes past `pos` (see
/// [`crate::pool::take`]): writes go over them in place, and [`Writer::finish`] cuts the buffer
/// at `pos`, so every byte handed on was written here.
pub struct Writer {
    buf: Vec<u8>,
    /// Bytes written so far.
    pos: usize,
}

impl Writer {
    /// Starts material for `tag`.
    pub fn new(tag: Tag) -> Writer {
        Writer { buf: vec![VERSION, tag as u8], pos: HEADER }
    }

    /// Starts material for `tag` in `buf`: recycled with stale bytes to write over, or empty
    /// with room reserved, which becomes a zeroed buffer of that length (pages the OS maps on
    /// first touch: whoever writes a region, the key generators' threads included, faults its
    /// own pages in, and nothing is zero-filled or copied when the material grows).
    fn in_buffer(tag: Tag, buf: Vec<u8>, recycled: bool) -> Writer {
        let buf = if recycled || buf.capacity() < FRESH_ROOM_MIN { buf } else { vec![0u8; buf.capacity()] };
        let mut w = Writer { buf, pos: 0 };
        w.bytes(&[VERSION, tag as u8]);
        w
    }

    /// Appends ring words.
    pub fn words(&mut self, w: &[u64]) {
        let room = self.region(8 * w.len());
        for (dst, x) in room.chunks_exact_mut(8).zip(w) {
            dst.copy_from_slice(&x.to_le_bytes());
        }
    }

    /// Appends raw bytes.
    pub fn bytes(&mut self, b: &[u8]) {
        self.region(b.len()).copy_from_slice(b);
    }

    /// The next `len` bytes of the material, to be filled in by the caller (their content is
    /// unspecified until then: stale bytes of a recycled buffer, or zeros). A buffer sized by
    /// the gate's cost never grows here.
    pub(crate) fn region(&mut self, len: usize) -> &mut [u8] {
        let end = self.pos + len;
        if self.buf.len() < end {
            self.buf.resize(end, 0);
        }
        let start = self.pos;
        self.pos = end;
        &mut self.buf[start..end]
    }

    /// The material.
    pub fn finish(mut self) -> Vec<u8> {
        self.buf.truncate(self.pos);
        self.buf
    }
}

/// New buffers at least this large are zeroed allocations of their whole reserved length (see
/// [`Writer::in_buffer`]); smaller ones grow as they are written.
const FRESH_ROOM_MIN: usize = 1 << 20;

/// Reads one party's material, checking every length.
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    /// Checks the header.
    pub fn new(buf: &'a [u8], tag: Tag) -> Result<Reader<'a>> {
        match buf {
            [v, _, ..] if *v != VERSION => {
                Err(Error::Material(format!("material layout version {v}, this build reads version {VERSION}")))
            }
            [_, t, ..] if *t != tag as u8 => {
                Err(Error::Material(format!("material is for gate {t}, expected gate {} ({tag:?})", tag as u8)))
            }
            [_, _, ..] => Ok(Reader { buf, pos: HEADER }),
            _ => Err(Error::Material(format!("material of {} bytes has no header", buf.len()))),
        }
    }

    /// The next `n` bytes.
    pub fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8]> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.buf.len()).ok_or_else(|| {
            Error::Material(format!("truncated: {what} needs {n} bytes, {} left", self.buf.len() - self.pos))
        })?;
        let s = &self.buf[self.pos..end];
        self.pos = end;
        Ok(s)
    }

    /// `n` ring words.
    pub fn words(&mut self, n: usize, what: &str) -> Result<Vec<u64>> {
        let b = self.take(n * 8, what)?;
        Ok(b.chunks_exact(8).map(|c| u64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]])).collect())
    }

    /// A seed for [`SeedRng`].
    pub fn seed(&mut self) -> Result<SeedRng> {
        let b = self.take(SEED_LEN, "seed")?;
        let mut s = [0u8; SEED_LEN];
        s.copy_from_slice(b);
        Ok(SeedRng::from_seed(s))
    }

    /// Fails if bytes are left over.
    pub fn finish(self) -> Result<()> {
        if self.pos == self.buf.len() {
            Ok(())
        } else {
            Err(Error::Material(format!("{} unexpected bytes after the material", self.buf.len() - self.pos)))
        }
    }
}

/// Draws `n` words from a seeded generator.
pub fn draw(rng: &mut SeedRng, n: usize) -> Vec<u64> {
    let mut v = vec![0u64; n];
    rng.fill_u64(&mut v);
    v
}

/// Size of a DCF key over `bits` bits.
pub fn dcf_len(bits: u32) -> u64 {
    DcfKey::serialized_len(bits) as u64
}

/// `n` random bits (0 or 1 each) from a seeded generator, 64 to a draw.
pub fn draw_bits(rng: &mut SeedRng, n: usize) -> Vec<u64> {
    let words = draw(rng, n.div_ceil(64));
    (0..n).map(|i| (words[i / 64] >> (i % 64)) & 1).collect()
}

/// Size of `n` half-tree one-bit DCF keys over `bits` bits, with their batch header.
pub fn halftree_len(n: usize, bits: u32) -> u64 {
    halftree::batch_len(n, bits) as u64
}

/// Bytes of `n` bits packed eight to a byte.
pub fn bits_len(n: usize) -> u64 {
    n.div_ceil(8) as u64
}

/// Packs bits (0 or 1 each) eight to a byte, least significant first.
pub fn pack_bits(bits: &[u8]) -> Vec<u8> {
    bits.chunks(8).map(|c| c.iter().enumerate().fold(0u8, |acc, (i, b)| acc | ((b & 1) << i))).collect()
}

/// The first `n` bits of `bytes` as they were packed by [`pack_bits`].
pub fn unpack_bits(bytes: &[u8], n: usize) -> Vec<u8> {
    (0..n).map(|i| bytes.get(i / 8).map_or(0, |b| (b >> (i % 8)) & 1)).collect()
}

/// Size of a two-word DCF key over `bits` bits.
pub fn dcf2_len(bits: u32) -> u64 {
    Dcf2Key::serialized_len(bits) as u64
}

/// Dealer side: splits values into party 0's seed-expanded share and party 1's correction.
pub struct Split {
    p0: Writer,
    p1: Writer,
    rng0: SeedRng,
    /// Threads for key generation.
    threads: usize,
}

impl Split {
    /// Starts material for `tag`; party 0's seed is drawn from the dealer's generator.
    /// `sizes` (from [`split_len`]) reserves the buffers up front, plus room for the runtime's
    /// frame header, so large material is written once and never reallocated.
    pub fn new(tag: Tag, dealer: &mut SeedRng, sizes: [u64; 2], threads: usize) -> Split {
        let mut seed = [0u8; SEED_LEN];
        dealer.fill_bytes(&mut seed);
        let writer = |size: u64| {
            let (buf, recycled) = crate::pool::take(size as usize + FRAME_ROOM);
            Writer::in_buffer(tag, buf, recycled)
        };
        let mut p0 = writer(sizes[0]);
        p0.bytes(&seed);
        Split { p0, p1: writer(sizes[1]), rng0: SeedRng::from_seed(seed), threads: threads.max(1) }
    }

    /// Key generation that appends to the parties' buffers (the one-round DCF keys): cut them
    /// where the material ends (a buffer holds stale bytes or zeros past it); the keys then go
    /// into the room the buffer keeps past that point, so nothing written so far is copied.
    fn prepare_for_keys(&mut self) {
        for w in [&mut self.p0, &mut self.p1] {
            w.buf.truncate(w.pos);
        }
    }

    /// After appending key generation: the material now ends where the buffers do.
    fn keys_appended(&mut self) {
        for w in [&mut self.p0, &mut self.p1] {
            w.pos = w.buf.len();
        }
    }

    /// Shares `v`: party 0 gets its part from the seed, party 1 gets `v − share₀`.
    pub fn share(&mut self, v: &[u64]) {
        let s0 = draw(&mut self.rng0, v.len());
        let s1: Vec<u64> = v.iter().zip(&s0).map(|(a, b)| a.wrapping_sub(*b)).collect();
        self.p1.words(&s1);
    }

    /// Generates one DCF key pair per element (`x < alphas[i]` ↦ `betas[i]`) straight into the
    /// parties' material, on the split's threads.
    pub fn dcf_keys(&mut self, alphas: &[u64], betas: &[u64], bits: u32, rng: &mut SeedRng) -> Result<()> {
        self.prepare_for_keys();
        dcf::keygen_into_par(alphas, betas, bits, rng, &mut self.p0.buf, &mut self.p1.buf, self.threads)
            .map_err(dealer_err)?;
        self.keys_appended();
        Ok(())
    }

    /// XOR-shares bits (0 or 1 each): party 0's come from its seed, party 1 gets the others,
    /// packed eight to a byte.
    pub fn share_bits(&mut self, bits: &[u8]) {
        let own = draw_bits(&mut self.rng0, bits.len());
        let mine: Vec<u8> = bits.iter().zip(&own).map(|(b, o)| b ^ *o as u8).collect();
        self.p1.bytes(&pack_bits(&mine));
    }

    /// XOR-shares the one-hot vector of each `α` of `alphas` over `2^n_bits` points (the
    /// layout of [`crate::fss::table::onehot`]): party 0's share comes from its seed, party 1
    /// gets the other. Returns party 0's bit at each `α`, which fixes the sign of the parties'
    /// sums.
    pub fn one_hot(&mut self, alphas: &[u64], n_bits: u32) -> Vec<u64> {
        let per = onehot::words(n_bits);
        let mut shares = draw(&mut self.rng0, alphas.len() * per);
        let mask = (1u64 << n_bits) - 1;
        let at = alphas
            .iter()
            .zip(shares.chunks_exact_mut(per))
            .map(|(a, share)| {
                let x = (a & mask) as usize;
                let word = &mut share[x / 64];
                let bit = (*word >> (x % 64)) & 1;
                *word ^= 1 << (x % 64);
                bit
            })
            .collect();
        self.p1.words(&shares);
        at
    }

    /// Generates one half-tree one-bit DCF key pair per element (XOR shares of
    /// `x < alphas[i]`) straight into the parties' material, on the split's threads.
    pub fn halftree_keys(&mut self, alphas: &[u64], bits: u32, rng: &mut SeedRng) -> Result<()> {
        let threads = self.threads;
        self.keys_into(halftree::batch_len(alphas.len(), bits), |k0, k1| {
            halftree::keygen_into_slices(alphas, bits, rng, k0, k1, threads)
        })
    }

    /// Key generation into the next `len` bytes of both parties' material; on failure the
    /// regions (which may hold a recycled buffer's stale bytes) are not material.
    fn keys_into(
        &mut self,
        len: usize,
        generate: impl FnOnce(&mut [u8], &mut [u8]) -> std::result::Result<(), crate::fss::FssError>,
    ) -> Result<()> {
        let at = (self.p0.pos, self.p1.pos);
        let res = generate(self.p0.region(len), self.p1.region(len)).map_err(dealer_err);
        if res.is_err() {
            (self.p0.pos, self.p1.pos) = at;
        }
        res
    }

    /// Generates one table-key pair per element (`[x = alphas[i]]·betas[i·W..(i+1)·W]` over an
    /// `n_bits`-bit domain, see [`crate::fss::table`]) straight into the parties' material, on
    /// the split's threads.
    pub fn table_keys(
        &mut self,
        alphas: &[u64],
        betas: &[u64],
        n_bits: u32,
        words: u32,
        rng: &mut SeedRng,
    ) -> Result<()> {
        let threads = self.threads;
        self.keys_into(table::batch_len(alphas.len(), n_bits, words), |k0, k1| {
            table::keygen_into_slices(alphas, betas, n_bits, words, rng, k0, k1, threads)
        })
    }

    /// The same with two-word payloads.
    pub fn dcf2_keys(&mut self, alphas: &[u64], betas: &[[u64; 2]], bits: u32, rng: &mut SeedRng) -> Result<()> {
        self.prepare_for_keys();
        dcf2::keygen_into_par(alphas, betas, bits, rng, &mut self.p0.buf, &mut self.p1.buf, self.threads)
            .map_err(dealer_err)?;
        self.keys_appended();
        Ok(())
    }

    /// Both parties' material.
    pub fn finish(self) -> Vec<Vec<u8>> {
        vec![self.p0.finish(), self.p1.finish()]
    }
}

/// Party side of [`Split`]: reads shares in the order the dealer wrote them.
pub struct Shares<'a> {
    reader: Reader<'a>,
    rng0: Option<SeedRng>,
    accel: crate::accel::Accel,
    /// The buffer `reader` reads, when shared: keys kept past this reader then point into it.
    owner: Option<std::sync::Arc<crate::pool::Recycled>>,
}

impl<'a> Shares<'a> {
    /// Opens `material` of `tag` for `party` (0 or 1).
    pub fn new(material: &'a [u8], tag: Tag, party: u16) -> Result<Shares<'a>> {
        let mut reader = Reader::new(material, tag)?;
        let rng0 = if party == 0 { Some(reader.seed()?) } else { None };
        Ok(Shares { reader, rng0, accel: crate::accel::Accel::default(), owner: None })
    }

    /// [`Shares::new`] on a shared buffer: keys read with [`Shares::kept_keys`] then share it
    /// instead of copying their bytes.
    pub fn shared(material: &'a std::sync::Arc<crate::pool::Recycled>, tag: Tag, party: u16) -> Result<Shares<'a>> {
        let mut s = Shares::new(material, tag, party)?;
        s.owner = Some(material.clone());
        Ok(s)
    }

    /// Evaluates this material's keys on `accel` (the session's kernel).
    pub fn with_accel(mut self, accel: crate::accel::Accel) -> Shares<'a> {
        self.accel = accel;
        self
    }

    /// Where this material's keys are evaluated.
    pub fn accel(&self) -> &crate::accel::Accel {
        &self.accel
    }

    /// This party's share of the next value of `n` elements.
    pub fn share(&mut self, n: usize, what: &str) -> Result<Vec<u64>> {
        match &mut self.rng0 {
            Some(rng) => Ok(draw(rng, n)),
            None => self.reader.words(n, what),
        }
    }

    /// This party's `n` DCF keys over `bits` bits, read in place.
    pub fn keys(&mut self, n: usize, bits: u32, what: &str) -> Result<DcfKeyBatch<'a>> {
        let b = self.reader.take(DcfKey::serialized_len(bits) * n, what)?;
        DcfKeyBatch::from_bytes(b, n, bits).map_err(|e| Error::Material(format!("{what}: {e}")))
    }

    /// [`Shares::keys`] for keys kept after this reader is gone (for a later round): they point
    /// into the shared material buffer (see [`Shares::shared`]), or are copied when it is not.
    pub fn kept_keys(&mut self, n: usize, bits: u32, what: &str) -> Result<DcfKeyBatch<'static>> {
        let err = |e: crate::fss::FssError| Error::Material(format!("{what}: {e}"));
        let (buffer, range): (std::sync::Arc<dyn AsRef<[u8]> + Send + Sync>, _) =
            match self.kept_bytes(DcfKey::serialized_len(bits) * n, what)? {
                KeptBytes::Shared(owner, range) => (owner, range),
                KeptBytes::Owned(v) => {
                    let len = v.len();
                    (std::sync::Arc::new(crate::pool::Recycled::new(v)), 0..len)
                }
            };
        DcfKeyBatch::from_shared(buffer, range, n, bits).map_err(err)
    }

    /// This party's XOR shares of `n` one-hot vectors over `2^n_bits` points (see
    /// [`Split::one_hot`]).
    pub fn one_hot(&mut self, n: usize, n_bits: u32, what: &str) -> Result<Vec<u64>> {
        self.share(n * onehot::words(n_bits), what)
    }

    /// This party's XOR shares of `n` bits (0 or 1 each).
    pub fn bits(&mut self, n: usize, what: &str) -> Result<Vec<u8>> {
        match &mut self.rng0 {
            Some(rng) => Ok(draw_bits(rng, n).into_iter().map(|b| b as u8).collect()),
            None => Ok(unpack_bits(self.reader.take(bits_len(n) as usize, what)?, n)),
        }
    }

    /// The next `len` bytes, kept past this reader: a range of the shared material buffer (see
    /// [`Shares::shared`]), or a copy when it is not shared.
    fn kept_bytes(&mut self, len: usize, what: &str) -> Result<KeptBytes> {
        let b = self.reader.take(len, what)?;
        if let Some(owner) = &self.owner {
            // Where `b` starts in the owner's buffer (it is a subslice of it: `reader` reads it;
            // the bounds-checked `get` confirms that rather than assume it).
            let start = (b.as_ptr() as usize).wrapping_sub(owner.as_ptr() as usize);
            let range = start..start.saturating_add(b.len());
            if owner.get(range.clone()).is_some_and(|s| std::ptr::eq(s.as_ptr(), b.as_ptr())) {
                return Ok(KeptBytes::Shared(owner.clone(), range));
            }
        }
        Ok(KeptBytes::Owned(b.to_vec()))
    }

    /// [`Shares::halftree_keys`] for keys evaluated in a later round: a range of the shared material buffer (see [`Shares::shared`]), or a copy.
    pub fn kept_halftree_keys(&mut self, n: usize, bits: u32, what: &str) -> Result<KeptHalfTree> {
        let bytes = self.kept_bytes(halftree::batch_len(n, bits), what)?;
        HalfTreeKeys::from_bytes(bytes.get(), n, bits).map_err(|e| Error::Material(format!("{what}: {e}")))?;
        Ok(KeptHalfTree { bytes, n, bits })
    }

    /// This party's `n` table keys over `bits` bits with `words` payload words, kept for a later
    /// round, as [`Shares::kept_halftree_keys`] keeps its keys.
    pub fn kept_table_keys(&mut self, n: usize, bits: u32, words: u32, what: &str) -> Result<KeptTable> {
        let bytes = self.kept_bytes(table::batch_len(n, bits, words), what)?;
        TableKeys::from_bytes(bytes.get(), n, bits, words).map_err(|e| Error::Material(format!("{what}: {e}")))?;
        Ok(KeptTable { bytes, n, bits, words })
    }

    /// This party's `n` half-tree one-bit DCF keys over `bits` bits, read in place.
    pub fn halftree_keys(&mut self, n: usize, bits: u32, what: &str) -> Result<HalfTreeKeys<'a>> {
        let b = self.reader.take(halftree::batch_len(n, bits), what)?;
        HalfTreeKeys::from_bytes(b, n, bits).map_err(|e| Error::Material(format!("{what}: {e}")))
    }

    /// This party's `n` two-word DCF keys over `bits` bits, read in place.
    pub fn keys2(&mut self, n: usize, bits: u32, what: &str) -> Result<Dcf2KeyBatch<'a>> {
        let b = self.reader.take(Dcf2Key::serialized_len(bits) * n, what)?;
        Dcf2KeyBatch::from_bytes(b, n, bits).map_err(|e| Error::Material(format!("{what}: {e}")))
    }

    /// Fails if bytes are left over.
    pub fn finish(self) -> Result<()> {
        self.reader.finish()
    }
}

/// Key bytes kept past the reader that found them.
enum KeptBytes {
    /// A range of the shared material buffer.
    Shared(std::sync::Arc<crate::pool::Recycled>, std::ops::Range<usize>),
    /// A copy.
    Owned(Vec<u8>),
}

impl KeptBytes {
    fn get(&self) -> &[u8] {
        match self {
            KeptBytes::Shared(owner, range) => owner.get(range.clone()).unwrap_or_default(),
            KeptBytes::Owned(v) => v,
        }
    }
}

/// Half-tree keys read now and evaluated in a later round (see [`Shares::kept_halftree_keys`]).
pub struct KeptHalfTree {
    bytes: KeptBytes,
    n: usize,
    bits: u32,
}

impl KeptHalfTree {
    /// The keys (checked when they were read; this checks the two header bytes again).
    pub fn keys(&self) -> Result<HalfTreeKeys<'_>> {
        HalfTreeKeys::from_bytes(self.bytes.get(), self.n, self.bits).map_err(|e| Error::Material(e.to_string()))
    }
}

/// Table keys read now and evaluated in a later round (see [`Shares::kept_table_keys`]).
pub struct KeptTable {
    bytes: KeptBytes,
    n: usize,
    bits: u32,
    words: u32,
}

impl KeptTable {
    /// The keys (checked when they were read; this checks the header again).
    pub fn keys(&self) -> Result<TableKeys<'_>> {
        TableKeys::from_bytes(self.bytes.get(), self.n, self.bits, self.words)
            .map_err(|e| Error::Material(e.to_string()))
    }
}

/// Size of `n` table keys over `bits` bits with `words` payload words, with their batch header.
pub fn table_len(n: usize, bits: u32, words: u32) -> u64 {
    table::batch_len(n, bits, words) as u64
}

/// Bytes of material for `words` shared vectors of `n` elements and `key_len` bytes of keys per
/// element, per party: `[party 0, party 1]`.
pub fn split_len(n: usize, words: usize, key_len: u64) -> [u64; 2] {
    let keys = key_len * n as u64;
    [HEADER as u64 + SEED_LEN as u64 + keys, HEADER as u64 + (words * n * 8) as u64 + keys]
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Material written over a recycled buffer's stale bytes is byte for byte what a new buffer
    /// gets, and ends where the writing did.
    #[test]
    fn a_recycled_buffer_gives_the_same_material() {
        let write = |buf: Vec<u8>, recycled: bool| {
            let mut w = Writer::in_buffer(Tag::Relu2, buf, recycled);
            w.words(&[1, 2, u64::MAX]);
            w.bytes(&[7, 8, 9]);
            w.region(5).copy_from_slice(&[1, 1, 2, 3, 5]);
            w.words(&[42]);
            w.finish()
        };
        let fresh = write(Vec::new(), false);
        assert_eq!(fresh.len(), 2 + 24 + 3 + 5 + 8);
        for stale_len in [0, 3, 20, fresh.len(), 200] {
            assert_eq!(write(vec![0xAB; stale_len], true), fresh, "{stale_len} stale bytes");
        }
        assert_eq!(unpack_bits(&pack_bits(&[1, 0, 1, 1, 0, 0, 0, 1, 1]), 9), vec![1, 0, 1, 1, 0, 0, 0, 1, 1]);
    }

    /// Split material read back by both parties gives shares of what was dealt.
    #[test]
    fn shared_bits_and_words_reconstruct() {
        let mut dealer = SeedRng::from_seed([3; 32]);
        let mut split = Split::new(Tag::Sign2, &mut dealer, [0, 0], 1);
        let words = [5u64, u64::MAX, 0, 1 << 63];
        let bits = [1u8, 0, 0, 1, 1, 1, 0, 1, 0, 1];
        split.share(&words);
        split.share_bits(&bits);
        let m = split.finish();
        let mut got = Vec::new();
        for party in 0..2u16 {
            let mut sh = Shares::new(&m[party as usize], Tag::Sign2, party).unwrap();
            got.push((sh.share(4, "w").unwrap(), sh.bits(10, "b").unwrap()));
            sh.finish().unwrap();
        }
        let w: Vec<u64> = got[0].0.iter().zip(&got[1].0).map(|(a, b)| a.wrapping_add(*b)).collect();
        let b: Vec<u8> = got[0].1.iter().zip(&got[1].1).map(|(a, b)| a ^ b).collect();
        assert_eq!((w.as_slice(), b.as_slice()), (&words[..], &bits[..]));
        assert!(Shares::new(&m[1], Tag::Relu2, 1).is_err(), "another gate's tag");
    }

    /// One-hot shares read back by both parties XOR to the one-hot vectors dealt, and the bits
    /// the dealer is told are party 0's at each point.
    #[test]
    fn one_hot_shares_reconstruct() {
        let mut dealer = SeedRng::from_seed([5; 32]);
        for n_bits in [3u32, 7, 8] {
            let alphas = [0u64, 5, (1 << n_bits) - 1, 7 + (1 << n_bits)];
            let mut split = Split::new(Tag::Lut, &mut dealer, [0, 0], 1);
            let at = split.one_hot(&alphas, n_bits);
            let m = split.finish();
            let per = onehot::words(n_bits);
            let got: Vec<Vec<u64>> = (0..2u16)
                .map(|party| {
                    let mut sh = Shares::new(&m[party as usize], Tag::Lut, party).unwrap();
                    let v = sh.one_hot(alphas.len(), n_bits, "one-hot").unwrap();
                    sh.finish().unwrap();
                    v
                })
                .collect();
            for (i, a) in alphas.iter().enumerate() {
                let x = (*a as usize) & ((1 << n_bits) - 1);
                for p in 0..1usize << n_bits {
                    let bit = |v: &[u64]| (v[i * per + p / 64] >> (p % 64)) & 1;
                    assert_eq!(bit(&got[0]) ^ bit(&got[1]), u64::from(p == x), "n {n_bits} α {a} point {p}");
                    if p == x {
                        assert_eq!(bit(&got[0]), at[i], "party 0's bit at α");
                    }
                }
            }
        }
    }
}
