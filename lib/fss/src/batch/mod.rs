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
pub(crate) mod aesni;
mod eval;
mod keygen;
mod layout;
#[cfg(test)]
mod tests;

pub(crate) use eval::{eval_many, eval_many_par, eval_one, par_threads, run_parts};
pub(crate) use keygen::{grow, keygen_into, keygen_into_par};
pub(crate) use layout::*;

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
