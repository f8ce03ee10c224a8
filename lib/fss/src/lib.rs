//! `mpcflow-fss`: the sans-I/O cryptographic core of two-party function secret sharing (FSS).
//!
//! A library, not a plugin: the `fss2pc` protocol deals and evaluates these keys, the `cpu`
//! kernel evaluates batches of them, and the CUDA kernel is tested bit for bit against them. It
//! depends on `std`, the `aes` crate, `getrandom` (the dealer's seeds) and `thiserror` only.
//!
//! A trusted dealer splits a function `f` into two keys `k0`, `k1`; each key alone reveals
//! nothing about `f` (beyond the domain size), and for every input `x`,
//! `eval(0, k0, x) + eval(1, k1, x) = f(x)` in the output group, here `Z(2^64)` (`u64` with
//! wrapping arithmetic).
//!
//! * [`dpf`]: distributed point function (Boyle–Gilboa–Ishai, CCS 2016), `f(x) = β` if `x = α`,
//!   else 0.
//! * [`dcf`]: distributed comparison function (Boyle–Chandran–Gilboa–Gupta–Ishai–Kohli–Ryffel,
//!   Eurocrypt 2021, "Function Secret Sharing for Mixed-Mode and Fixed-Point Secure
//!   Computation", ePrint 2020/1392, Fig. 3), `f(x) = β` if `x < α` (unsigned), else 0.
//! * [`dcf2`]: the same comparison with a two-word payload (output group `Z(2^64)²`), one tree
//!   walk for two payloads.
//! * [`halftree`]: a one-bit comparison (XOR shares of `[x < α]`, the bit of DReLU) on the
//!   half tree of Guo et al. (Eurocrypt 2023): one 128-bit correction word and one AES block per
//!   level, the bit read off the control bits, the last 7 levels as one leaf table; batches in a
//!   level-major layout, with an AVX-512/VAES kernel where the CPU has one.
//! * [`table`]: a DPF over a small domain (at most 14 bits) whose payload is a vector of up to
//!   four words, expanded over its whole domain and folded into the rotated dot products of a
//!   secret-index table lookup (Sigma, PETS 2024), early termination after all but 3 levels.
//! * [`prg`]: the fixed-key AES-128 Matyas–Meyer–Oseas tree PRG and the dealer's [`SeedRng`].
//!
//! Everything is pure, synchronous and allocation-light: no I/O, no threads, no global mutable
//! state (the PRG's fixed key schedules are computed once and then only read).
//!
//! # Conventions
//!
//! * Domain: `n`-bit unsigned integers, `1 ≤ n ≤ 64` ([`MAX_DOMAIN_BITS`]); inputs and `α` must be
//!   `< 2^n` (an out-of-domain value is an error, never silently reduced). The tree is walked
//!   from the most significant of the `n` bits down.
//! * Parties are `0` and `1`; party 1's shares carry the sign `(-1)^1`.
//! * Seeds are 128-bit; the least significant bit of every PRG output block is the control bit
//!   `t` and is cleared from the seed, so seeds carry 127 bits of pseudo-entropy.
//! * `Convert` (seed → output group) takes the high 64 bits of the seed: the output group is
//!   smaller than the seed, so no extra PRG call is needed at the leaves.
//!
//! # Costs (AES-128 block calls, fixed key, no key schedules)
//!
//! | | Gen (dealer, both keys) | Eval, one point | Eval, full domain |
//! |---|---|---|---|
//! | DPF | `4n` | `n` | `2·(2^n − 1)` |
//! | DCF | `6n` | `2n` | — |
//! | DCF2 | `8n + 2` | `2n + 1` | — |
//! | half-tree one-bit DCF | `2(n − 6)` | `n − 6` | — |
//! | table key, `W` words | `4(n − 3) + 8W` | — | `2(2^(n−3) − 1) + W·2^(n−1)` |
//!
//! Key sizes (bytes, see [`dpf::DpfKey::serialized_len`], [`dcf::DcfKey::serialized_len`],
//! [`dcf2::Dcf2Key::serialized_len`]): DPF `26 + 16n + ⌈n/4⌉`, DCF `26 + 24n + ⌈n/4⌉`,
//! DCF2 `26 + 32n + ⌈n/4⌉ + 8`; a half-tree key `16·(n − 5)` in a batch with a 2-byte header
//! ([`halftree::key_bytes`], for `n ≥ 7`); a table key `16 + 17(n − 3) + 64W` in a batch with a
//! 3-byte header ([`table::key_bytes`], for `n ≥ 3`).
//!
//! The batched entry points ([`dpf::eval_batch`], [`dcf::eval_batch`], [`dpf::keygen_batch`],
//! [`dcf::keygen_batch`]) walk many trees level by level (tiles of [`EVAL_TILE`] points or 128
//! keys), so each `encrypt_blocks` call gets on the order of a hundred or more independent blocks;
//! single-point [`dpf::eval`] / [`dcf::eval`] are latency bound (one chain of dependent AES calls)
//! and meant for tests and stragglers.
//!
//! For one key *per point* (a tensor of comparisons, each with its own `α`), the parties parse
//! their keys into a flat [`DcfKeyBatch`] / [`Dcf2KeyBatch`] (structure of arrays, no per-key
//! allocation) and evaluate key `i` at point `i` with [`dcf::eval_many`] / [`dcf2::eval_many`]
//! (on x86-64 with AES-NI, groups of keys walked together with per-lane round keys, else tiles of
//! keys walked level by level; `_par` variants split large batches across scoped threads); the dealer writes key pairs straight into the parties' byte buffers with
//! [`dcf::keygen_into`] / [`dcf2::keygen_into`] (and `_par`; on x86-64 with AES-NI, one key pair
//! per group with both parties' seeds walked together, else tiles of keys level by level).
//!
//! Key generation is called `keygen` rather than `gen` because `gen` is a reserved keyword in
//! Rust 2024.
//!
//! # Security notes
//!
//! * Semi-honest model with a trusted dealer; keys are not authenticated (a malicious dealer or
//!   a tampered key yields wrong shares, never a panic).
//! * The fixed-key PRG is secure in the ideal-permutation model for AES (see [`prg`]).
//! * Evaluation branches on the bits of `x`, which in FSS-based 2PC is the *public* masked input;
//!   secret control bits are applied with masks. Key generation keeps `α`-dependent choices to
//!   selects, but the code has not been audited for constant time.

mod batch;
pub mod dcf;
pub mod dcf2;
pub mod dpf;
pub mod halftree;
pub mod prg;
#[cfg(target_arch = "x86_64")]
mod simd;
pub mod table;

pub use batch::PAR_MIN_BATCH;
pub use dcf::{DcfKey, DcfKeyBatch};
pub use dcf2::{Dcf2Key, Dcf2KeyBatch};
pub use dpf::DpfKey;
pub use prg::{Prg, PrgKey, SeedRng};

use thiserror::Error;

/// Largest supported domain size in bits.
pub const MAX_DOMAIN_BITS: u32 = 64;

/// Errors of the FSS core: every caller-controlled or key-byte-controlled problem ends up here.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum FssError {
    /// The domain size is not in `1..=64` bits.
    #[error("domain size must be between 1 and {MAX_DOMAIN_BITS} bits, got {0}")]
    InvalidDomainBits(u32),
    /// A value (`alpha` or an evaluation point) does not fit in the domain.
    // The value is not printed: during key generation it is derived from a secret mask.
    #[error("{what} is outside the {n_bits}-bit domain")]
    OutOfDomain {
        /// Which value.
        what: &'static str,
        /// The offending value.
        value: u64,
        /// The domain size.
        n_bits: u32,
    },
    /// The party index is not 0 or 1.
    #[error("party must be 0 or 1, got {0}")]
    InvalidParty(u8),
    /// Two slices that must have the same length do not.
    #[error("length mismatch for {what}: expected {expected}, got {got}")]
    LengthMismatch {
        /// Which slice.
        what: &'static str,
        /// The required length.
        expected: usize,
        /// The length received.
        got: usize,
    },
    /// Full-domain evaluation was asked for a domain too large to materialise.
    #[error("full-domain evaluation supports at most {max} bits, the key has {n_bits}")]
    DomainTooLarge {
        /// The key's domain size.
        n_bits: u32,
        /// The largest supported domain size.
        max: u32,
    },
    /// Key bytes could not be parsed (wrong length, wrong type tag, non-canonical encoding).
    #[error("malformed {kind} key: {reason}")]
    MalformedKey {
        /// `"DPF"` or `"DCF"`.
        kind: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// The operating system's random source failed.
    #[error("operating-system entropy unavailable: {0}")]
    Entropy(String),
}

/// Checks `1 ≤ n_bits ≤ 64`.
pub(crate) fn check_bits(n_bits: u32) -> Result<(), FssError> {
    if (1..=MAX_DOMAIN_BITS).contains(&n_bits) { Ok(()) } else { Err(FssError::InvalidDomainBits(n_bits)) }
}

/// `2^n − 1` (all ones for `n ≥ 64`).
#[inline]
pub(crate) fn domain_mask(n_bits: u32) -> u64 {
    if n_bits >= 64 { u64::MAX } else { (1u64 << n_bits) - 1 }
}

/// Checks that `value < 2^n_bits`.
#[inline]
pub(crate) fn check_in_domain(what: &'static str, value: u64, n_bits: u32) -> Result<(), FssError> {
    if value & !domain_mask(n_bits) == 0 { Ok(()) } else { Err(FssError::OutOfDomain { what, value, n_bits }) }
}

/// Checks that every value of `xs` is `< 2^n_bits`.
pub(crate) fn check_all_in_domain(xs: &[u64], n_bits: u32) -> Result<(), FssError> {
    let high = !domain_mask(n_bits);
    // Branch-free OR first (vectorises); locate the culprit only on failure.
    if xs.iter().fold(0u64, |acc, x| acc | x) & high == 0 {
        return Ok(());
    }
    match xs.iter().find(|x| **x & high != 0) {
        Some(x) => Err(FssError::OutOfDomain { what: "evaluation point", value: *x, n_bits }),
        None => Ok(()),
    }
}

/// Checks that `party` is 0 or 1.
#[inline]
pub(crate) fn check_party(party: u8) -> Result<(), FssError> {
    if party <= 1 { Ok(()) } else { Err(FssError::InvalidParty(party)) }
}

/// `(-1)^b · v` in `Z(2^64)` for `b ∈ {0, 1}` (a party index or a control bit; branch-free).
#[inline(always)]
pub(crate) fn signed(b: u8, v: u64) -> u64 {
    let m = mask64(b);
    (v ^ m).wrapping_sub(m)
}

/// All ones if the low bit of `t` is set, else zero (128-bit).
#[inline(always)]
pub(crate) fn mask128(t: u8) -> u128 {
    0u128.wrapping_sub(u128::from(t & 1))
}

/// All ones if the low bit of `t` is set, else zero (64-bit).
#[inline(always)]
pub(crate) fn mask64(t: u8) -> u64 {
    0u64.wrapping_sub(u64::from(t & 1))
}

/// Points per tile in the batched evaluations ([`dpf::eval_batch`], [`dcf::eval_batch`]): a
/// multiple of the VAES-256 and AES-NI group sizes (30, 8), small enough that a tile's whole
/// working set (about 26 KiB) stays in a 32 KiB L1 data cache.
pub const EVAL_TILE: usize = 240;

/// Blocks per seed region of [`EvalScratch`]: `EVAL_TILE` rounded up to a whole number of
/// parallel groups of any backend (at most 64), and a power of two so masked indices need no
/// bounds checks.
pub(crate) const REGION: usize = 256;

/// Scratch memory of one batched evaluation, fixed-size so the hot loops index without bounds
/// checks (indices are masked to the array size; by construction the mask never changes them).
///
/// The gaps keep the streams that are read and written together at different offsets modulo
/// 4 KiB, so loads are not falsely held up behind stores to an aliasing address ("4K aliasing").
pub(crate) struct EvalScratch {
    /// Seed buffer A: left-going blocks at `[0, REGION)`, right-going ones at `[REGION, 2·REGION)`.
    pub(crate) buf_a: [prg::Block; 2 * REGION],
    _gap_a: [prg::Block; 40],
    /// Seed buffer B, same layout; A and B alternate between levels.
    pub(crate) buf_b: [prg::Block; 2 * REGION],
    _gap_b: [prg::Block; 24],
    /// DCF value blocks, one per point.
    pub(crate) vbuf: [prg::Block; REGION],
    _gap_v: [prg::Block; 12],
    /// Current seed of each point.
    pub(crate) s: [u128; EVAL_TILE],
    /// Current control bit of each point.
    pub(crate) t: [u8; EVAL_TILE],
}

impl EvalScratch {
    pub(crate) fn new() -> Box<EvalScratch> {
        Box::new(EvalScratch {
            buf_a: [prg::Block::default(); 2 * REGION],
            _gap_a: [prg::Block::default(); 40],
            buf_b: [prg::Block::default(); 2 * REGION],
            _gap_b: [prg::Block::default(); 24],
            vbuf: [prg::Block::default(); REGION],
            _gap_v: [prg::Block::default(); 12],
            s: [0; EVAL_TILE],
            t: [0; EVAL_TILE],
        })
    }
}

/// `if bit == 1 { one } else { zero }` for `bit ∈ {0, 1}`, without a branch.
#[inline(always)]
pub(crate) fn select(bit: usize, one: usize, zero: usize) -> usize {
    let m = 0usize.wrapping_sub(bit);
    (one & m) | (zero & !m)
}

/// Splits a PRG output block into (seed with its low bit cleared, control bit).
#[inline(always)]
pub(crate) fn split_seed(o: u128) -> (u128, u8) {
    (o & !1, (o & 1) as u8)
}

/// `Convert: {0,1}^128 → Z(2^64)`: the high 64 bits of a seed.
#[inline(always)]
pub(crate) fn convert(seed: u128) -> u64 {
    (seed >> 64) as u64
}

/// Bit `level` of the tree path of `x` (level 0 = the most significant of the `n` bits).
#[inline(always)]
pub(crate) fn path_bit(x: u64, n_bits: u32, level: u32) -> u64 {
    (x >> (n_bits - 1 - level)) & 1
}

/// Bytes holding the two control-bit correction words of each of `n` levels.
#[inline]
pub(crate) const fn control_bytes(n_bits: usize) -> usize {
    (2 * n_bits).div_ceil(8)
}

/// Packs per-level `(t_L, t_R)` pairs LSB first: bit `2i` = `t_L` of level `i`, bit `2i+1` = `t_R`.
pub(crate) fn pack_control_bits(pairs: impl Iterator<Item = (u8, u8)>, out: &mut Vec<u8>, n_bits: usize) {
    let start = out.len();
    out.resize(start + control_bytes(n_bits), 0);
    for (i, (l, r)) in pairs.enumerate() {
        for (j, bit) in [(2 * i, l), (2 * i + 1, r)] {
            if let Some(byte) = out.get_mut(start + j / 8) {
                *byte |= (bit & 1) << (j % 8);
            }
        }
    }
}

/// Reads control-bit pair `level` back from bytes written by [`pack_control_bits`].
#[inline]
pub(crate) fn unpack_control_bits(bytes: &[u8], level: usize) -> (u8, u8) {
    let bit = |j: usize| bytes.get(j / 8).map_or(0, |b| (b >> (j % 8)) & 1);
    (bit(2 * level), bit(2 * level + 1))
}

/// A bounds-checked little-endian reader over key bytes.
pub(crate) struct Reader<'a> {
    bytes: &'a [u8],
    kind: &'static str,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(bytes: &'a [u8], kind: &'static str) -> Self {
        Reader { bytes, kind }
    }

    pub(crate) fn malformed(&self, reason: impl Into<String>) -> FssError {
        FssError::MalformedKey { kind: self.kind, reason: reason.into() }
    }

    pub(crate) fn take(&mut self, n: usize) -> Result<&'a [u8], FssError> {
        if self.bytes.len() < n {
            return Err(self.malformed(format!("truncated: needed {n} more bytes, {} left", self.bytes.len())));
        }
        let (head, tail) = self.bytes.split_at(n);
        self.bytes = tail;
        Ok(head)
    }

    pub(crate) fn u8(&mut self) -> Result<u8, FssError> {
        Ok(self.take(1)?.first().copied().unwrap_or_default())
    }

    pub(crate) fn u64(&mut self) -> Result<u64, FssError> {
        let mut a = [0u8; 8];
        a.copy_from_slice(self.take(8)?);
        Ok(u64::from_le_bytes(a))
    }

    pub(crate) fn u128(&mut self) -> Result<u128, FssError> {
        let mut a = [0u8; 16];
        a.copy_from_slice(self.take(16)?);
        Ok(u128::from_le_bytes(a))
    }

    /// A seed: 16 bytes whose lowest bit (the control-bit position) must be clear.
    pub(crate) fn seed(&mut self, what: &'static str, index: Option<usize>) -> Result<u128, FssError> {
        let s = self.u128()?;
        if s & 1 == 0 {
            return Ok(s);
        }
        let name = match index {
            Some(i) => format!("{what} {i}"),
            None => what.to_string(),
        };
        Err(self.malformed(format!("{name} has its control-bit position set")))
    }

    /// Reads the common header (type tag and domain size) and checks the total length.
    pub(crate) fn header(&mut self, tag: u8, len_for: fn(u32) -> usize) -> Result<u32, FssError> {
        let total = self.bytes.len();
        let got_tag = self.u8()?;
        if got_tag != tag {
            return Err(self.malformed(format!("type tag {got_tag:#04x}, expected {tag:#04x}")));
        }
        let n_bits = u32::from(self.u8()?);
        check_bits(n_bits).map_err(|e| self.malformed(e.to_string()))?;
        let want = len_for(n_bits);
        if total != want {
            return Err(self.malformed(format!("{total} bytes, a {n_bits}-bit key has {want}")));
        }
        Ok(n_bits)
    }

    /// Control bits of `n_bits` levels; unused high bits of the last byte must be zero.
    pub(crate) fn control_bits(&mut self, n_bits: usize) -> Result<&'a [u8], FssError> {
        let bytes = self.take(control_bytes(n_bits))?;
        let used = 2 * n_bits;
        if !used.is_multiple_of(8) && bytes.last().is_some_and(|b| b >> (used % 8) != 0) {
            return Err(self.malformed("padding bits after the control bits are not zero"));
        }
        Ok(bytes)
    }

    pub(crate) fn finish(&self) -> Result<(), FssError> {
        if self.bytes.is_empty() { Ok(()) } else { Err(self.malformed(format!("{} trailing bytes", self.bytes.len()))) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_bits_round_trip() {
        for n in [1usize, 3, 4, 5, 64] {
            let pairs: Vec<(u8, u8)> = (0..n).map(|i| ((i % 3 == 0) as u8, (i % 2 == 1) as u8)).collect();
            let mut out = vec![0xAA];
            pack_control_bits(pairs.iter().copied(), &mut out, n);
            assert_eq!(out.len(), 1 + control_bytes(n));
            let mut r = Reader::new(&out[1..], "test");
            let bytes = r.control_bits(n).unwrap_or_default();
            for (i, p) in pairs.iter().enumerate() {
                assert_eq!(unpack_control_bits(bytes, i), *p);
            }
        }
    }

    #[test]
    fn domain_helpers() {
        assert_eq!(domain_mask(1), 1);
        assert_eq!(domain_mask(63), u64::MAX >> 1);
        assert_eq!(domain_mask(64), u64::MAX);
        assert!(check_bits(0).is_err() && check_bits(65).is_err() && check_bits(64).is_ok());
        assert!(check_in_domain("a", 4, 2).is_err() && check_in_domain("a", 3, 2).is_ok());
        assert!(check_all_in_domain(&[0, 1, 2, 3], 2).is_ok());
        assert_eq!(
            check_all_in_domain(&[0, 9, 2], 3),
            Err(FssError::OutOfDomain { what: "evaluation point", value: 9, n_bits: 3 })
        );
        assert_eq!(path_bit(0b100, 3, 0), 1);
        assert_eq!(path_bit(0b100, 3, 2), 0);
        assert_eq!(path_bit(1 << 63, 64, 0), 1);
    }
}
