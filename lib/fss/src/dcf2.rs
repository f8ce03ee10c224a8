//! Distributed comparison function with a two-word payload: output group `Z(2^64)²`.
//!
//! `f^<_{α,β}(x) = β` if `x < α` (unsigned, on `n`-bit values), else `[0, 0]`, for
//! `β = [β₀, β₁]`; [`keygen`] returns keys with `eval(0, k0, x) + eval(1, k1, x) = f^<_{α,β}(x)`
//! word-wise (wrapping). One key pair does the work of two [`super::dcf`] pairs with the same `α`
//! (for instance the two payloads of a ReLU: the sign bit and the sign bit times the mask) for one
//! tree walk instead of two.
//!
//! # Construction
//!
//! The tree of [`super::dcf`] (same child-seed PRG `AES_kL(s) ⊕ s`, `AES_kR(s) ⊕ s`, same
//! control-bit and value-correction logic, BCG+21 Fig. 3) with two changes that give each level
//! and the leaf 128 bits of value instead of 64:
//!
//! * The value of direction `d` at a node with seed `s` is the whole block
//!   `AES_kV(s ∥ d) ⊕ (s ∥ d)` (`s ∥ d`: the seed with its cleared control-bit position set to
//!   `d`; low 64 bits = word 0). An evaluation needs only the value of the direction it takes,
//!   so it still costs **one value block per level**, as the DCF does (where one block holds both
//!   directions, 64 bits each). Only the dealer, who needs both directions, pays a fourth block per
//!   seed and level. The inputs `s ∥ 1` never collide with seeds (whose low bit is clear), so the
//!   two blocks of a node are outputs of the random permutation on distinct unpredictable inputs.
//! * `Convert(s)` of a leaf seed is `AES_kV(s) ⊕ s` (a 127-bit seed cannot give 128 pseudo-random
//!   bits by itself): one extra block per evaluation.
//!
//! (A single 128-bit value block cannot give the four pseudo-random words the dealer needs per
//! node, two per direction, hence the direction tweak rather than a split of one block.)
//!
//! Costs: **`2n + 1` AES blocks per evaluation** (per level one child-seed block and one value
//! block, plus `Convert`); key generation `8n + 2` per key pair. [`eval_many`] and
//! [`keygen_into`] batch them like their [`super::dcf`] counterparts.
//!
//! # Key size
//!
//! [`Dcf2Key::serialized_len`]`(n) = 2 + 16 + n·(16 + 16) + ⌈2n/8⌉ + 16 = 26 + 32n + ⌈n/4⌉ + 8`
//! bytes: the DCF layout with 16-byte value CWs (word 0 then word 1, little-endian) and a 16-byte
//! final CW. `n = 63` → 2066 B, `n = 64` → 2098 B, `n = 32` → 1066 B (a DCF key: 1554, 1578, 802).

use std::borrow::Cow;
use std::fmt;

use super::batch::{self, KeyBatch};
use super::prg::SeedRng;
use super::{FssError, Reader, control_bytes};

/// Type tag (first byte) of a serialised DCF2 key, format version 1.
pub const DCF2_TAG: u8 = b'D';

/// One party's DCF2 key. `Debug` prints only the domain size, never key material.
#[derive(Clone, PartialEq, Eq)]
pub struct Dcf2Key(KeyBatch<'static, [u64; 2]>);

impl fmt::Debug for Dcf2Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Dcf2Key").field("n_bits", &self.0.n_bits()).finish_non_exhaustive()
    }
}

impl Dcf2Key {
    /// The domain size `n` in bits.
    pub fn n_bits(&self) -> u32 {
        self.0.n_bits()
    }

    /// Serialised size of an `n`-bit key: `2 + 16 + 32·n + ⌈2n/8⌉ + 16` bytes
    /// (header, root seed, seed CWs, two-word value CWs, packed control-bit CWs, final CW).
    pub const fn serialized_len(n_bits: u32) -> usize {
        let n = n_bits as usize;
        2 + 16 + 32 * n + control_bytes(n) + 16
    }

    /// Serialises the key:
    /// `tag 'D' (1) ‖ n (1) ‖ root seed (16) ‖ n × seed CW (16 each) ‖ n × value CW (2 × 8 each) ‖
    /// control-bit CWs ‖ final CW (2 × 8)`, all little-endian, words in order; control bits as in
    /// [`super::DcfKey::to_bytes`].
    pub fn to_bytes(&self) -> Vec<u8> {
        self.0.key(0).map(<[u8]>::to_vec).unwrap_or_default()
    }

    /// Parses [`Dcf2Key::to_bytes`] output. Rejects (never panics on) wrong tag, domain size
    /// outside `1..=64`, wrong length, and non-canonical encodings (seed low bits or padding bits
    /// set), so every accepted byte string re-serialises to itself.
    pub fn from_bytes(bytes: &[u8]) -> Result<Dcf2Key, FssError> {
        let n_bits = Reader::new(bytes, "DCF2").header(DCF2_TAG, Dcf2Key::serialized_len)?;
        KeyBatch::parse(Cow::Owned(bytes.to_vec()), 1, n_bits, false).map(Dcf2Key)
    }
}

/// Many DCF2 keys of one domain size (one party's): their concatenated serialisations, validated
/// once and evaluated where they lie by [`eval_many`] (borrowed or owned; no copy, no per-key
/// allocation; see [`super::DcfKeyBatch`]). `Debug` prints only sizes.
#[derive(Clone, PartialEq, Eq)]
pub struct Dcf2KeyBatch<'a>(KeyBatch<'a, [u64; 2]>);

impl fmt::Debug for Dcf2KeyBatch<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Dcf2KeyBatch").field("n_bits", &self.0.n_bits()).field("len", &self.0.len()).finish()
    }
}

impl<'a> Dcf2KeyBatch<'a> {
    /// Validates `count` keys of `n_bits` bits serialised back to back ([`Dcf2Key::to_bytes`]
    /// each) and borrows them. Accepts what [`Dcf2Key::from_bytes`] accepts key by key, plus the
    /// requirement that every key has `n_bits` bits, except that the seed CWs' ignored lowest
    /// bits may be set (as for [`super::DcfKeyBatch::from_bytes`]). Errors name the first bad key.
    pub fn from_bytes(bytes: &'a [u8], count: usize, n_bits: u32) -> Result<Dcf2KeyBatch<'a>, FssError> {
        KeyBatch::parse(Cow::Borrowed(bytes), count, n_bits, true).map(Dcf2KeyBatch)
    }

    /// [`Dcf2KeyBatch::from_bytes`], taking ownership of the buffer.
    pub fn from_vec(bytes: Vec<u8>, count: usize, n_bits: u32) -> Result<Dcf2KeyBatch<'static>, FssError> {
        KeyBatch::parse(Cow::Owned(bytes), count, n_bits, true).map(Dcf2KeyBatch)
    }

    /// The same keys, owning their bytes (copied if borrowed).
    pub fn into_owned(self) -> Dcf2KeyBatch<'static> {
        Dcf2KeyBatch(self.0.into_owned())
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
    pub fn get(&self, i: usize) -> Option<Dcf2Key> {
        self.0.key(i).and_then(|k| Dcf2Key::from_bytes(k).ok())
    }
}

/// Generates the two keys of `f^<_{α,β}` over an `n_bits`-bit domain (via [`keygen_into`]).
///
/// Errors if `n_bits` is not in `1..=64` or `alpha ≥ 2^n_bits`. (`α = 0` gives the all-zero
/// function.)
pub fn keygen(alpha: u64, beta: [u64; 2], n_bits: u32, rng: &mut SeedRng) -> Result<(Dcf2Key, Dcf2Key), FssError> {
    let (mut b0, mut b1) = (Vec::new(), Vec::new());
    keygen_into(&[alpha], &[beta], n_bits, rng, &mut b0, &mut b1)?;
    Ok((Dcf2Key::from_bytes(&b0)?, Dcf2Key::from_bytes(&b1)?))
}

/// Generates one key pair per `(alphas[i], betas[i])` and appends the serialised keys to `out0`
/// (party 0) and `out1` (party 1) in order (`8n + 2` AES blocks per pair; an AES-NI kernel where
/// the CPU has one, else level by level over tiles of 64 keys, as [`super::dcf::keygen_into`]). Draws two root seeds per key from `rng`, party 0's first, as [`keygen`]
/// does. Nothing is appended on error.
pub fn keygen_into(
    alphas: &[u64],
    betas: &[[u64; 2]],
    n_bits: u32,
    rng: &mut SeedRng,
    out0: &mut Vec<u8>,
    out1: &mut Vec<u8>,
) -> Result<(), FssError> {
    batch::keygen_into(alphas, betas, n_bits, rng, out0, out1)
}

/// [`keygen_into`] on up to `max_threads` threads (capped at the available parallelism; only for
/// more than [`PAR_MIN_BATCH`](super::PAR_MIN_BATCH) pairs), with byte-identical output and `rng`
/// use.
pub fn keygen_into_par(
    alphas: &[u64],
    betas: &[[u64; 2]],
    n_bits: u32,
    rng: &mut SeedRng,
    out0: &mut Vec<u8>,
    out1: &mut Vec<u8>,
    max_threads: usize,
) -> Result<(), FssError> {
    batch::keygen_into_par(alphas, betas, n_bits, rng, out0, out1, max_threads)
}

/// Party `party`'s share of `f^<_{α,β}(x)`: `2n + 1` AES calls in a dependent chain (latency
/// bound; meant for tests and stragglers, use [`eval_many`] for many keys).
pub fn eval(party: u8, key: &Dcf2Key, x: u64) -> Result<[u64; 2], FssError> {
    batch::eval_one(party, &key.0, 0, x)
}

/// Evaluates key `i` of `keys` at its own point `xs[i]` into `out[i]`, for every `i` (all three
/// of the same length): equal to `eval(party, &keys.get(i), xs[i])`, many keys at a time (an
/// AES-NI kernel where the CPU has one, else level by level over tiles of
/// [`EVAL_TILE`](super::EVAL_TILE) keys).
pub fn eval_many(party: u8, keys: &Dcf2KeyBatch<'_>, xs: &[u64], out: &mut [[u64; 2]]) -> Result<(), FssError> {
    batch::eval_many(party, &keys.0, xs, out)
}

/// [`eval_many`] split into contiguous parts on up to `max_threads` scoped threads (capped at
/// the available parallelism), the calling thread taking the first part. Batches of at most
/// [`PAR_MIN_BATCH`](super::PAR_MIN_BATCH) keys run on the calling thread alone.
pub fn eval_many_par(
    party: u8,
    keys: &Dcf2KeyBatch<'_>,
    xs: &[u64],
    out: &mut [[u64; 2]],
    max_threads: usize,
) -> Result<(), FssError> {
    batch::eval_many_par(party, &keys.0, xs, out, max_threads)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{EVAL_TILE, PAR_MIN_BATCH, domain_mask};
    use proptest::prelude::*;

    const NS: [u32; 8] = [1, 2, 5, 8, 16, 32, 63, 64];

    fn rng(tag: u8) -> SeedRng {
        SeedRng::from_seed([tag; 32])
    }

    fn f_lt(alpha: u64, beta: [u64; 2], x: u64) -> [u64; 2] {
        if x < alpha { beta } else { [0, 0] }
    }

    fn add(a: [u64; 2], b: [u64; 2]) -> [u64; 2] {
        [a[0].wrapping_add(b[0]), a[1].wrapping_add(b[1])]
    }

    fn ok<T>(r: Result<T, FssError>) -> T {
        r.unwrap_or_else(|e| panic!("{e}"))
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

    /// Both parties' batches of `alphas.len()` keys.
    fn batches(alphas: &[u64], betas: &[[u64; 2]], n: u32, r: &mut SeedRng) -> [Dcf2KeyBatch<'static>; 2] {
        let (mut b0, mut b1) = (Vec::new(), Vec::new());
        ok(keygen_into(alphas, betas, n, r, &mut b0, &mut b1));
        [ok(Dcf2KeyBatch::from_vec(b0, alphas.len(), n)), ok(Dcf2KeyBatch::from_vec(b1, alphas.len(), n))]
    }

    #[test]
    fn exhaustive_small_domains() {
        let mut r = rng(1);
        for n in 1u32..=5 {
            for alpha in 0..(1u64 << n) {
                let beta = [r.next_u64(), r.next_u64()];
                let (k0, k1) = ok(keygen(alpha, beta, n, &mut r));
                for x in 0..(1u64 << n) {
                    let y = add(ok(eval(0, &k0, x)), ok(eval(1, &k1, x)));
                    assert_eq!(y, f_lt(alpha, beta, x), "n={n} a={alpha} x={x}");
                }
            }
        }
    }

    #[test]
    fn edge_cases_all_domain_sizes_single_and_many() {
        let mut r = rng(2);
        for n in NS {
            let max = domain_mask(n);
            let alphas = [0, 1 & max, max, max - 1, r.next_u64() & max, max / 2 + 1];
            // Every key evaluated at every edge point of its alpha, as one batch of keys.
            let mut ka = Vec::new();
            let mut kb = Vec::new();
            let mut xs = Vec::new();
            for a in alphas {
                let beta = [r.next_u64(), r.next_u64()];
                for x in edge_points(a, n) {
                    ka.push(a);
                    kb.push(beta);
                    xs.push(x);
                }
            }
            let [b0, b1] = batches(&ka, &kb, n, &mut r);
            let mut y0 = vec![[0; 2]; xs.len()];
            let mut y1 = vec![[0; 2]; xs.len()];
            ok(eval_many(0, &b0, &xs, &mut y0));
            ok(eval_many(1, &b1, &xs, &mut y1));
            for i in 0..xs.len() {
                let want = f_lt(ka[i], kb[i], xs[i]);
                assert_eq!(add(y0[i], y1[i]), want, "n={n} alpha={:#x} x={:#x}", ka[i], xs[i]);
                let (k0, k1) = (b0.get(i).unwrap_or_else(|| panic!("key {i}")), b1.get(i).unwrap_or_else(|| panic!()));
                assert_eq!(Ok(y0[i]), eval(0, &k0, xs[i]));
                assert_eq!(Ok(y1[i]), eval(1, &k1, xs[i]));
            }
        }
    }

    #[test]
    fn words_are_independent_payloads() {
        // Word 0 and word 1 each reconstruct their own payload, including extreme values.
        let mut r = rng(3);
        for beta in [[0, u64::MAX], [u64::MAX, 0], [1, 1 << 63], [r.next_u64(), r.next_u64()]] {
            let (k0, k1) = ok(keygen(1000, beta, 63, &mut r));
            assert_eq!(add(ok(eval(0, &k0, 999)), ok(eval(1, &k1, 999))), beta);
            assert_eq!(add(ok(eval(0, &k0, 1000)), ok(eval(1, &k1, 1000))), [0, 0]);
        }
    }

    #[test]
    fn par_and_multi_tile_batches_match_single_thread() {
        let mut r = rng(4);
        let n = 12;
        let count = PAR_MIN_BATCH + 3 * EVAL_TILE + 17;
        let alphas: Vec<u64> = (0..count).map(|_| r.next_u64() & domain_mask(n)).collect();
        let betas: Vec<[u64; 2]> = (0..count).map(|_| [r.next_u64(), r.next_u64()]).collect();
        let xs: Vec<u64> = (0..count).map(|_| r.next_u64() & domain_mask(n)).collect();
        // keygen_into_par: byte-identical to keygen_into and leaves the rng in the same state.
        let (mut a0, mut a1, mut p0, mut p1) = (vec![7u8], vec![], vec![], vec![]);
        let mut ra = rng(5);
        let mut rp = rng(5);
        ok(keygen_into(&alphas, &betas, n, &mut ra, &mut a0, &mut a1));
        p0.push(7);
        ok(keygen_into_par(&alphas, &betas, n, &mut rp, &mut p0, &mut p1, 4));
        assert!(a0 == p0 && a1 == p1);
        assert_eq!(ra.next_u128(), rp.next_u128());
        let b = [ok(Dcf2KeyBatch::from_bytes(&a0[1..], count, n)), ok(Dcf2KeyBatch::from_bytes(&a1, count, n))];
        let mut y = [vec![[0; 2]; count], vec![[0; 2]; count]];
        for party in 0..2u8 {
            let p = usize::from(party);
            ok(eval_many(party, &b[p], &xs, &mut y[p]));
            for threads in [1, 2, 3] {
                let mut yp = vec![[0; 2]; count];
                ok(eval_many_par(party, &b[p], &xs, &mut yp, threads));
                assert!(yp == y[p], "threads={threads}");
            }
        }
        for i in 0..count {
            assert_eq!(add(y[0][i], y[1][i]), f_lt(alphas[i], betas[i], xs[i]), "i={i}");
        }
    }

    #[test]
    fn serialisation_round_trip_and_sizes() {
        let mut r = rng(6);
        for n in NS {
            let (k0, k1) = ok(keygen(r.next_u64() & domain_mask(n), [r.next_u64(), 3], n, &mut r));
            for k in [&k0, &k1] {
                let bytes = k.to_bytes();
                assert_eq!(bytes.len(), Dcf2Key::serialized_len(n));
                assert_eq!(bytes.len(), 26 + 32 * n as usize + (n as usize).div_ceil(4) + 8);
                assert_eq!(Dcf2Key::from_bytes(&bytes).as_ref(), Ok(k));
            }
        }
        assert_eq!(Dcf2Key::serialized_len(63), 2066);
        assert_eq!(Dcf2Key::serialized_len(64), 2098);
        assert_eq!(Dcf2Key::serialized_len(32), 1066);
    }

    #[test]
    fn malformed_bytes_are_errors() {
        let mut r = rng(7);
        for n in [1u32, 3, 8, 64] {
            let (k0, _) = ok(keygen(1, [5, 6], n, &mut r));
            let bytes = k0.to_bytes();
            for len in 0..bytes.len() {
                assert!(Dcf2Key::from_bytes(&bytes[..len]).is_err(), "n={n} truncated to {len}");
            }
            let mut longer = bytes.clone();
            longer.push(0);
            assert!(Dcf2Key::from_bytes(&longer).is_err());
            let mut wrong_tag = bytes.clone();
            wrong_tag[0] = crate::dcf::DCF_TAG;
            assert!(Dcf2Key::from_bytes(&wrong_tag).is_err());
            for bad_n in [0u8, 65, 200] {
                let mut b = bytes.clone();
                b[1] = bad_n;
                assert!(Dcf2Key::from_bytes(&b).is_err());
            }
            let mut root_bit = bytes.clone();
            root_bit[2] |= 1;
            assert!(Dcf2Key::from_bytes(&root_bit).is_err());
            let mut low_bit = bytes.clone();
            low_bit[18] |= 1;
            assert!(Dcf2Key::from_bytes(&low_bit).is_err());
            if !(2 * n).is_multiple_of(8) {
                let mut pad = bytes.clone();
                pad[2 + 16 + 32 * n as usize + control_bytes(n as usize) - 1] |= 0x80;
                assert!(Dcf2Key::from_bytes(&pad).is_err());
            }
        }
        // A DCF key of the same domain is not a DCF2 key.
        let (dcf_key, _) = ok(crate::dcf::keygen(1, 1, 8, &mut r));
        assert!(Dcf2Key::from_bytes(&dcf_key.to_bytes()).is_err());
    }

    #[test]
    fn batch_parse_errors_name_the_key() {
        let mut r = rng(8);
        let n = 8;
        let len = Dcf2Key::serialized_len(n);
        let (mut b0, mut b1) = (Vec::new(), Vec::new());
        ok(keygen_into(&[1, 2, 3], &[[1, 1]; 3], n, &mut r, &mut b0, &mut b1));
        assert!(Dcf2KeyBatch::from_bytes(&b0, 3, n).is_ok());
        assert!(Dcf2KeyBatch::from_bytes(&b0, 2, n).is_err());
        assert!(Dcf2KeyBatch::from_bytes(&b0, 3, 9).is_err());
        assert_eq!(Dcf2KeyBatch::from_bytes(&b0, 3, 0).err(), Some(FssError::InvalidDomainBits(0)));
        assert!(Dcf2KeyBatch::from_bytes(&b0, usize::MAX, n).is_err());
        let empty = ok(Dcf2KeyBatch::from_bytes(&[], 0, n));
        assert!(empty.is_empty() && empty.get(0).is_none());
        let mut bad = b0.clone();
        bad[2 * len + 2] |= 1; // the root seed's control-bit position
        match Dcf2KeyBatch::from_bytes(&bad, 3, n) {
            Err(FssError::MalformedKey { kind: "DCF2", reason }) => assert!(reason.starts_with("key 2:"), "{reason}"),
            other => panic!("{other:?}"),
        }
        let batch = ok(Dcf2KeyBatch::from_bytes(&b1, 3, n));
        assert_eq!((batch.len(), batch.n_bits()), (3, n));
        for i in 0..3 {
            assert_eq!(batch.get(i).map(|k| k.to_bytes()).as_deref(), b1.get(i * len..(i + 1) * len));
        }
        assert!(batch.get(3).is_none() && batch.get(usize::MAX).is_none());
        assert_eq!(format!("{batch:?}"), "Dcf2KeyBatch { n_bits: 8, len: 3 }");
    }

    #[test]
    fn invalid_arguments_are_errors() {
        let mut r = rng(9);
        assert_eq!(keygen(0, [1, 1], 0, &mut r).err(), Some(FssError::InvalidDomainBits(0)));
        assert!(matches!(keygen(2, [1, 1], 1, &mut r), Err(FssError::OutOfDomain { what: "alpha", .. })));
        let (mut b0, mut b1) = (vec![1u8], Vec::new());
        assert!(matches!(
            keygen_into(&[1], &[[1, 1]; 2], 8, &mut r, &mut b0, &mut b1),
            Err(FssError::LengthMismatch { .. })
        ));
        assert!(keygen_into(&[1, 256], &[[1, 1]; 2], 8, &mut r, &mut b0, &mut b1).is_err());
        assert_eq!((b0.len(), b1.len()), (1, 0), "nothing appended on error");
        let [k0, _] = batches(&[3, 4], &[[1, 1]; 2], 8, &mut r);
        let mut out = [[0u64; 2]; 2];
        assert_eq!(eval_many(2, &k0, &[1, 2], &mut out), Err(FssError::InvalidParty(2)));
        assert!(matches!(eval_many(0, &k0, &[1], &mut out[..1]), Err(FssError::LengthMismatch { .. })));
        assert!(matches!(eval_many(0, &k0, &[1, 2], &mut out[..1]), Err(FssError::LengthMismatch { .. })));
        assert!(matches!(eval_many(0, &k0, &[1, 256], &mut out), Err(FssError::OutOfDomain { .. })));
        assert!(matches!(eval_many_par(0, &k0, &[1, 256], &mut out, 2), Err(FssError::OutOfDomain { .. })));
        let k = k0.get(0).unwrap_or_else(|| panic!());
        assert!(matches!(eval(0, &k, 256), Err(FssError::OutOfDomain { .. })));
        assert_eq!(eval(5, &k, 1), Err(FssError::InvalidParty(5)));
        assert_eq!(format!("{k:?}"), "Dcf2Key { n_bits: 8, .. }");
    }

    #[test]
    fn keys_look_random() {
        let mut r = rng(10);
        let mut ones = 0u32;
        let mut total = 0u32;
        for alpha in [0u64, 1, u64::MAX, 1 << 63] {
            let (k0, k1) = ok(keygen(alpha, [1, 0], 64, &mut r));
            let (b0, b1) = (k0.to_bytes(), k1.to_bytes());
            assert_ne!(b0, b1);
            assert_eq!(b0[18..], b1[18..], "the keys differ only in the root seed");
            // Value CWs and the final CW: pseudo-random even for beta = [1, 0].
            let vals = &b0[18 + 16 * 64..18 + 32 * 64];
            ones += vals.iter().map(|b| b.count_ones()).sum::<u32>();
            total += 8 * vals.len() as u32;
        }
        assert!(ones * 100 > total * 45 && ones * 100 < total * 55, "{ones}/{total}");
    }

    fn n_strategy() -> impl Strategy<Value = u32> {
        prop::sample::select(NS.to_vec())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]

        #[test]
        fn prop_eval_many_matches_eval_and_definition(
            n in n_strategy(),
            keys in prop::collection::vec((any::<u64>(), any::<[u64; 2]>(), any::<u64>(), 0u8..4), 1..600),
            seed in any::<[u8; 32]>(),
        ) {
            let max = domain_mask(n);
            let alphas: Vec<u64> = keys.iter().map(|k| k.0 & max).collect();
            let betas: Vec<[u64; 2]> = keys.iter().map(|k| k.1).collect();
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
            let [b0, b1] = batches(&alphas, &betas, n, &mut r);
            let mut y0 = vec![[0; 2]; xs.len()];
            let mut y1 = vec![[0; 2]; xs.len()];
            eval_many(0, &b0, &xs, &mut y0).map_err(|e| TestCaseError::fail(e.to_string()))?;
            eval_many(1, &b1, &xs, &mut y1).map_err(|e| TestCaseError::fail(e.to_string()))?;
            for i in 0..xs.len() {
                prop_assert_eq!(add(y0[i], y1[i]), f_lt(alphas[i], betas[i], xs[i]));
                if i % 7 == 0 {
                    let k0 = b0.get(i).ok_or_else(|| TestCaseError::fail("key"))?;
                    prop_assert_eq!(Ok(y0[i]), eval(0, &k0, xs[i]));
                }
            }
        }

        #[test]
        fn prop_arbitrary_bytes_never_panic(
            mut bytes in prop::collection::vec(any::<u8>(), 0..2200),
            n in 1u8..=64,
            fix_header in any::<bool>(),
        ) {
            if fix_header && bytes.len() >= 2 {
                bytes[0] = DCF2_TAG;
                bytes[1] = n;
                bytes.resize(Dcf2Key::serialized_len(u32::from(n)), 0);
            }
            if let Ok(k) = Dcf2Key::from_bytes(&bytes) {
                prop_assert_eq!(k.to_bytes(), bytes.clone());
                let _ = eval(1, &k, 0);
            }
            let _ = Dcf2KeyBatch::from_bytes(&bytes, 1, u32::from(n));
        }
    }
}
