//! Fixed-key AES-128 pseudo-random generator (Matyas–Meyer–Oseas form) and the dealer's seed RNG.
//!
//! # The tree PRG
//!
//! Every DPF/DCF level expands a 128-bit seed `s` into a few 128-bit blocks with
//!
//! ```text
//! G(s) = ( AES_kL(s) ⊕ s,  AES_kR(s) ⊕ s,  AES_kV(s) ⊕ s )
//! ```
//!
//! where `kL`, `kR`, `kV` are three **fixed, public** AES-128 keys ([`PrgKey`]), derived from
//! constant ASCII labels (`"mpcflow/fss/prgL"` and so on) and expanded exactly once per process
//! ([`Prg::global`]). Each output block is one Matyas–Meyer–Oseas (MMO) compression
//! `π_k(s) ⊕ s` of the seed under a fixed permutation `π_k`.
//!
//! Why fixed-key MMO is the standard choice for FSS trees:
//! * **Speed.** The textbook "seed as AES key" PRG re-runs the key schedule at every tree node
//!   (about 80 ns here, some 80 times the cost of one batched block; EzPC's LLAMA and GPU-MPC do
//!   this). With fixed keys the round keys stay in registers and every PRG call is one AES block,
//!   so independent seeds can be pipelined through AES-NI/VAES (many blocks per instruction
//!   stream, about 1 ns per block instead of about 15 ns latency).
//! * **Security assumption.** Fixed-key constructions are proven in the **ideal-permutation
//!   (random-permutation) model** for AES with a fixed key: `s ↦ π(s) ⊕ s` is then a
//!   correlation-robust hash, and its outputs on seeds that are unpredictable to the adversary
//!   (here at least 127 bits of pseudo-entropy per seed) look uniform. Feeding the same seed to
//!   three *independent* keys gives three independent-looking blocks. This is the assumption made
//!   by the FSS libraries that use it (e.g. fss-rs, libfss, Google's DPF library) and by
//!   fixed-key garbling (Bellare–Hoang–Keelveedhi–Rogaway 2013; Guo–Katz–Wang–Yu 2020, who also
//!   note that the bound degrades with the total number of seeds processed, `q·N/2^127`, which is
//!   negligible at our scales). It is a stronger assumption than "AES is a PRF".
//!
//! # Batching
//!
//! AES hardware has multi-cycle latency but high throughput, so [`Prg::encrypt_padded`] and
//! [`Prg::mmo_in_place`] hand many independent blocks (typically 100–960) to `encrypt_blocks`.
//! The `aes` crate processes blocks in groups of [`Prg::parallel_blocks`] (64 for VAES-512, 8 for
//! AES-NI; its VAES-256 path with 30 is rarely taken, see [`Prg::backend`]) and any remainder
//! one block at a time, so batched callers round
//! their buffers up to a whole number of groups when the remainder is large
//! ([`Prg::padded_len`]).
//!
//! # Seed RNG
//!
//! Key generation needs fresh uniformly random root seeds. [`SeedRng`] expands a caller-provided
//! 32-byte seed with AES-128 in counter mode (key = first 16 bytes, initial counter = last 16
//! bytes), so a dealer can seed it from the operating system ([`SeedRng::from_os_entropy`]) and
//! tests can seed it deterministically. No non-cryptographic RNG is used anywhere in this module.

use std::fmt;
use std::sync::LazyLock;

use aes::Aes128;
use aes::cipher::{Array, BlockCipherEncrypt, KeyInit};

use super::FssError;

/// One 128-bit AES block (re-exported from the `aes` crate).
pub type Block = aes::Block;

/// Number of blocks [`Prg::mmo_in_place`] and [`SeedRng`] hand to one `encrypt_blocks` call
/// (the least common multiple of the VAES-512, VAES-256 and AES-NI group sizes 64, 30 and 8).
pub const CHUNK_BLOCKS: usize = 960;

/// Which of the three fixed AES keys of the tree PRG to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PrgKey {
    /// `kL`: produces the left child seed and its control bit.
    Left = 0,
    /// `kR`: produces the right child seed and its control bit.
    Right = 1,
    /// `kV`: produces the two 64-bit DCF value words (left in the low half, right in the high half).
    Value = 2,
}

impl PrgKey {
    /// The child-seed key for direction `bit` (0 = left, anything else = right).
    #[inline]
    pub fn child(bit: u64) -> PrgKey {
        if bit == 0 { PrgKey::Left } else { PrgKey::Right }
    }
}

/// The fixed public AES-128 keys, one per [`PrgKey`]: 16 ASCII bytes each, nothing up the sleeve.
pub const FIXED_KEYS: [[u8; 16]; 3] = [*b"mpcflow/fss/prgL", *b"mpcflow/fss/prgR", *b"mpcflow/fss/prgV"];

/// The fixed-key MMO PRG: three AES-128 ciphers with their key schedules expanded once.
pub struct Prg {
    ciphers: [Aes128; 3],
    par: usize,
    backend: &'static str,
}

static GLOBAL_PRG: LazyLock<Prg> = LazyLock::new(Prg::new);

impl fmt::Debug for Prg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Prg").field("backend", &self.backend).field("parallel_blocks", &self.par).finish()
    }
}

impl Default for Prg {
    fn default() -> Self {
        Prg::new()
    }
}

impl Prg {
    /// Expands the three fixed keys (prefer [`Prg::global`], which does this once per process).
    pub fn new() -> Prg {
        let ciphers = FIXED_KEYS.map(|k| Aes128::new(&Array::from(k)));
        let (backend, par) = detect_backend();
        Prg { ciphers, par, backend }
    }

    /// The process-wide PRG, initialised on first use.
    #[inline]
    pub fn global() -> &'static Prg {
        &GLOBAL_PRG
    }

    /// The AES implementation the `aes` crate is expected to pick on this CPU (`"vaes512"`,
    /// `"aes-ni"`, `"armv8-aes"` or `"software"`). Log it at start-up: the software fallback is
    /// about two orders of magnitude slower. `aes` 0.9.4 takes its VAES-256 path only where the
    /// OS has enabled AVX-512 register state (a `cpufeatures` 0.3 quirk), so AVX2-only CPUs with
    /// VAES (Zen 3, Alder Lake, VMs that hide AVX-512) run AES-NI.
    pub fn backend(&self) -> &'static str {
        self.backend
    }

    /// How many blocks the AES backend processes in parallel; batched callers pad their buffers
    /// to a multiple of this so no block goes through the slow one-at-a-time tail path.
    pub fn parallel_blocks(&self) -> usize {
        self.par
    }

    /// How many blocks to encrypt so that `len` useful ones come out fastest: `len` rounded up to
    /// a multiple of [`Prg::parallel_blocks`] when the leftover `r = len mod P` is at least `P/2`
    /// (a padded group costs about `P` pipelined blocks, while the `aes` crate runs a leftover
    /// block by block at a few times the per-block cost), else `len` itself.
    #[inline]
    pub fn padded_len(&self, len: usize) -> usize {
        let r = len % self.par;
        if 2 * r < self.par { len } else { len - r + self.par }
    }

    /// Raw fixed-key AES (no MMO feed-forward) on every block of `blocks`, in place.
    #[inline]
    pub fn encrypt_blocks(&self, key: PrgKey, blocks: &mut [Block]) {
        self.ciphers[key as usize].encrypt_blocks(blocks);
    }

    /// Raw fixed-key AES on the first `len` blocks of `buf`, extended to [`Prg::padded_len`] where
    /// `buf` is long enough (the extra blocks are scratch and get overwritten). Returns how many
    /// blocks were encrypted.
    #[inline]
    pub fn encrypt_padded(&self, key: PrgKey, buf: &mut [Block], len: usize) -> usize {
        let n = self.padded_len(len).min(buf.len());
        if let Some(blocks) = buf.get_mut(..n) {
            self.ciphers[key as usize].encrypt_blocks(blocks);
        }
        n
    }

    /// One MMO call: `AES_key(seed) ⊕ seed` (latency bound; prefer the batched forms).
    #[inline]
    pub fn mmo(&self, key: PrgKey, seed: u128) -> u128 {
        let mut b = block_from_u128(seed);
        self.ciphers[key as usize].encrypt_block(&mut b);
        u128_from_block(&b) ^ seed
    }

    /// Batched MMO in place: every `s` becomes `AES_key(s) ⊕ s`, [`CHUNK_BLOCKS`] blocks per
    /// `encrypt_blocks` call.
    pub fn mmo_in_place(&self, key: PrgKey, seeds: &mut [u128]) {
        let cipher = &self.ciphers[key as usize];
        let mut buf = [Block::default(); CHUNK_BLOCKS];
        for chunk in seeds.chunks_mut(CHUNK_BLOCKS) {
            let blocks = &mut buf[..chunk.len()];
            for (b, s) in blocks.iter_mut().zip(chunk.iter()) {
                *b = block_from_u128(*s);
            }
            cipher.encrypt_blocks(blocks);
            for (b, s) in blocks.iter().zip(chunk.iter_mut()) {
                *s ^= u128_from_block(b);
            }
        }
    }
}

/// Mirrors the `aes` crate's run-time backend choice to learn its parallel group size. A wrong
/// guess only costs speed, never correctness.
///
/// `aes` 0.9.4 asks `cpufeatures` 0.3, which reports `vaes` only when the OS has enabled AVX-512
/// register state; so its VAES-256 path is taken only on AVX-512 machines (where VAES-512 wins
/// anyway), and AVX2-only CPUs with VAES (Zen 3, Alder Lake, or VMs that hide AVX-512) run the
/// AES-NI backend, 8 blocks at a time.
fn detect_backend() -> (&'static str, usize) {
    #[cfg(any(target_arch = "x86_64", target_arch = "x86"))]
    {
        if std::arch::is_x86_feature_detected!("vaes") && std::arch::is_x86_feature_detected!("avx512f") {
            return ("vaes512", 64);
        }
        if std::arch::is_x86_feature_detected!("aes") {
            return ("aes-ni", 8);
        }
    }
    #[cfg(target_arch = "aarch64")]
    {
        if std::arch::is_aarch64_feature_detected!("aes") {
            return ("armv8-aes", 8);
        }
    }
    if aes::hardware_accelerated() { ("hardware", 8) } else { ("software", 4) }
}

/// A 128-bit value as an AES block (little-endian bytes).
#[inline(always)]
pub fn block_from_u128(v: u128) -> Block {
    Array::from(v.to_le_bytes())
}

/// An AES block as a 128-bit value (little-endian bytes).
#[inline(always)]
pub fn u128_from_block(b: &Block) -> u128 {
    u128::from_le_bytes(b.0)
}

/// Number of counter blocks [`SeedRng`] encrypts per refill.
const RNG_BUFFER_BLOCKS: usize = 64;

/// Cryptographic RNG for key generation: AES-128 in counter mode over a caller-provided 32-byte
/// seed (bytes 0..16 are the AES key, bytes 16..32 the initial counter, little-endian).
///
/// The output is pseudo-random as long as the seed is secret and uniformly random and fewer than
/// about 2^64 blocks are drawn. Seed it from the OS ([`SeedRng::from_os_entropy`]) for real
/// dealers, from a fixed seed for reproducible tests. It is deliberately not `Clone`: two copies
/// would hand out the same "random" seeds twice.
pub struct SeedRng {
    cipher: Aes128,
    counter: u128,
    buf: [Block; RNG_BUFFER_BLOCKS],
    /// The next unread 64-bit half of `buf` (`2·RNG_BUFFER_BLOCKS`: empty).
    pos: usize,
}

impl fmt::Debug for SeedRng {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SeedRng").finish_non_exhaustive()
    }
}

impl SeedRng {
    /// A generator expanding `seed` (which must be secret and uniformly random).
    pub fn from_seed(seed: [u8; 32]) -> SeedRng {
        let mut key = [0u8; 16];
        let mut ctr = [0u8; 16];
        key.copy_from_slice(&seed[..16]);
        ctr.copy_from_slice(&seed[16..]);
        SeedRng {
            cipher: Aes128::new(&Array::from(key)),
            counter: u128::from_le_bytes(ctr),
            buf: [Block::default(); RNG_BUFFER_BLOCKS],
            pos: 2 * RNG_BUFFER_BLOCKS,
        }
    }

    /// A generator seeded with 32 bytes from the operating system's CSPRNG.
    pub fn from_os_entropy() -> Result<SeedRng, FssError> {
        let mut seed = [0u8; 32];
        getrandom::fill(&mut seed).map_err(|e| FssError::Entropy(e.to_string()))?;
        Ok(SeedRng::from_seed(seed))
    }

    fn refill(&mut self) {
        for b in self.buf.iter_mut() {
            *b = block_from_u128(self.counter);
            self.counter = self.counter.wrapping_add(1);
        }
        self.cipher.encrypt_blocks(&mut self.buf);
        self.pos = 0;
    }

    /// The next 128 pseudo-random bits: the next two 64-bit words, low first (one whole block
    /// when the words before were drawn in pairs).
    pub fn next_u128(&mut self) -> u128 {
        let lo = self.next_u64();
        u128::from(lo) | (u128::from(self.next_u64()) << 64)
    }

    /// The next 64 pseudo-random bits: each block gives two, low half first.
    pub fn next_u64(&mut self) -> u64 {
        if self.pos >= 2 * RNG_BUFFER_BLOCKS {
            self.refill();
        }
        let block = self.buf.get(self.pos / 2).map(u128_from_block).unwrap_or_default();
        let v = (block >> (64 * (self.pos % 2))) as u64;
        self.pos += 1;
        v
    }

    /// Fills `dest` with the next `dest.len()` words, as that many calls of
    /// [`SeedRng::next_u64`] would, a buffer at a time.
    pub fn fill_u64(&mut self, dest: &mut [u64]) {
        let mut rest = dest;
        while !rest.is_empty() {
            if self.pos >= 2 * RNG_BUFFER_BLOCKS {
                self.refill();
            }
            // Whole blocks from a block boundary; a single word where a block is half read.
            if self.pos % 2 == 1 || rest.len() == 1 {
                let (first, tail) = rest.split_at_mut(1);
                first[0] = self.next_u64();
                rest = tail;
                continue;
            }
            let blocks = (rest.len() / 2).min(RNG_BUFFER_BLOCKS - self.pos / 2);
            let (head, tail) = rest.split_at_mut(2 * blocks);
            for (pair, b) in head.chunks_exact_mut(2).zip(&self.buf[self.pos / 2..]) {
                let v = u128_from_block(b);
                pair[0] = v as u64;
                pair[1] = (v >> 64) as u64;
            }
            self.pos += 2 * blocks;
            rest = tail;
        }
    }

    /// Fills `dest` with pseudo-random bytes, sixteen to a [`SeedRng::next_u128`].
    pub fn fill_bytes(&mut self, dest: &mut [u8]) {
        for chunk in dest.chunks_mut(16) {
            let bytes = self.next_u128().to_le_bytes();
            chunk.copy_from_slice(&bytes[..chunk.len()]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Words drawn one at a time, in bulk from any position, and as 128-bit pairs are the same
    /// stream, and a block gives two words.
    #[test]
    fn words_one_at_a_time_and_in_bulk_agree() {
        let one: Vec<u64> = {
            let mut rng = SeedRng::from_seed([11; 32]);
            (0..1000).map(|_| rng.next_u64()).collect()
        };
        for split in [0usize, 1, 2, 3, 127, 128, 129, 255, 256, 999] {
            let mut rng = SeedRng::from_seed([11; 32]);
            let mut got: Vec<u64> = (0..split).map(|_| rng.next_u64()).collect();
            let mut rest = vec![0u64; 1000 - split];
            let (a, b) = rest.split_at_mut((1000 - split) / 3);
            rng.fill_u64(a);
            rng.fill_u64(b);
            got.extend(rest);
            assert_eq!(got, one, "{split} drawn singly first");
        }
        let mut rng = SeedRng::from_seed([11; 32]);
        let first = rng.next_u128();
        assert_eq!((first as u64, (first >> 64) as u64), (one[0], one[1]));
        // Counter mode: block 0 is AES_k(counter), the seed's second half.
        let cipher = Aes128::new(&Array::from([11u8; 16]));
        let mut b = Array::from([11u8; 16]);
        cipher.encrypt_block(&mut b);
        assert_eq!(u128::from_le_bytes(<[u8; 16]>::from(b)), first, "one block, two words");
    }

    #[test]
    fn aes_known_answer_fips197() {
        // FIPS-197 appendix C.1.
        let key: [u8; 16] = core::array::from_fn(|i| i as u8);
        let pt: [u8; 16] = core::array::from_fn(|i| (i as u8) * 0x11);
        let cipher = Aes128::new(&Array::from(key));
        let mut b = Array::from(pt);
        cipher.encrypt_block(&mut b);
        let want = [0x69, 0xc4, 0xe0, 0xd8, 0x6a, 0x7b, 0x04, 0x30, 0xd8, 0xcd, 0xb7, 0x80, 0x70, 0xb4, 0xc5, 0x5a];
        assert_eq!(<[u8; 16]>::from(b), want);
    }

    #[test]
    fn mmo_matches_definition_and_batch() {
        let prg = Prg::global();
        let mut rng = SeedRng::from_seed([7; 32]);
        for key in [PrgKey::Left, PrgKey::Right, PrgKey::Value] {
            let cipher = Aes128::new(&Array::from(FIXED_KEYS[key as usize]));
            // Lengths around the chunk and parallel-group boundaries.
            for len in [0usize, 1, 7, 31, 64, 959, 960, 961, 2000] {
                let seeds: Vec<u128> = (0..len).map(|_| rng.next_u128()).collect();
                let mut batch = seeds.clone();
                prg.mmo_in_place(key, &mut batch);
                for (s, o) in seeds.iter().zip(&batch) {
                    let mut b = block_from_u128(*s);
                    cipher.encrypt_block(&mut b);
                    assert_eq!(*o, u128_from_block(&b) ^ s);
                    assert_eq!(*o, prg.mmo(key, *s));
                }
            }
        }
    }

    #[test]
    fn mmo_regression_vector() {
        // Pins the fixed keys and byte order: key material from the dealer must evaluate the same
        // on every party and every version.
        let prg = Prg::global();
        let s = 0x0f0e_0d0c_0b0a_0908_0706_0504_0302_0100u128;
        let l = prg.mmo(PrgKey::Left, s);
        let r = prg.mmo(PrgKey::Right, s);
        let v = prg.mmo(PrgKey::Value, s);
        assert_ne!(l, r);
        assert_ne!(l, v);
        assert_eq!((l, r, v), (MMO_L, MMO_R, MMO_V));
    }

    // Computed independently with OpenSSL's AES-128-ECB (Python `cryptography`).
    const MMO_L: u128 = 0x370b_1a46_161c_d877_56c5_ab5f_886a_b10f;
    const MMO_R: u128 = 0xb4be_5669_f096_5fa2_9763_8dd2_e6a5_7ebf;
    const MMO_V: u128 = 0x60ee_eec0_8409_6baa_dc3d_0243_b77e_7ae3;

    #[test]
    fn encrypt_padded_covers_len() {
        let prg = Prg::global();
        let cipher = Aes128::new(&Array::from(FIXED_KEYS[0]));
        let mut buf = vec![Block::default(); 100 + prg.parallel_blocks()];
        for (i, b) in buf.iter_mut().enumerate() {
            *b = block_from_u128(i as u128);
        }
        let n = prg.encrypt_padded(PrgKey::Left, &mut buf, 100);
        assert!(n >= 100 && n < 100 + prg.parallel_blocks());
        assert_eq!(n, prg.padded_len(100));
        for len in 0..200 {
            let p = prg.padded_len(len);
            assert!(p >= len && p < len + prg.parallel_blocks());
            assert!(p == len || p.is_multiple_of(prg.parallel_blocks()));
        }
        for (i, b) in buf.iter().take(100).enumerate() {
            let mut want = block_from_u128(i as u128);
            cipher.encrypt_block(&mut want);
            assert_eq!(*b, want);
        }
        // A buffer too short to pad is encrypted up to its end, never past it.
        let mut short = vec![Block::default(); 3];
        assert_eq!(prg.encrypt_padded(PrgKey::Left, &mut short, 3), 3);
        assert_eq!(prg.encrypt_padded(PrgKey::Left, &mut short, 0), 0);
    }

    #[test]
    fn seed_rng_is_deterministic_and_seed_dependent() {
        let mut a = SeedRng::from_seed([1; 32]);
        let mut b = SeedRng::from_seed([1; 32]);
        let mut c = SeedRng::from_seed([2; 32]);
        let xa: Vec<u128> = (0..200).map(|_| a.next_u128()).collect();
        let xb: Vec<u128> = (0..200).map(|_| b.next_u128()).collect();
        let xc: Vec<u128> = (0..200).map(|_| c.next_u128()).collect();
        assert_eq!(xa, xb);
        assert_ne!(xa, xc);
        // Counter mode: all blocks distinct.
        let mut sorted = xa.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted.len(), xa.len());
        // Bytes: roughly balanced.
        let mut bytes = vec![0u8; 4096];
        a.fill_bytes(&mut bytes[..4095]);
        let ones: u32 = bytes.iter().map(|b| b.count_ones()).sum();
        let total = 4095 * 8;
        assert!(ones > total * 45 / 100 && ones < total * 55 / 100, "{ones} of {total}");
    }

    #[test]
    fn seed_rng_counter_mode_definition() {
        let mut seed = [0u8; 32];
        seed[..16].copy_from_slice(b"0123456789abcdef");
        seed[16..].copy_from_slice(&u128::MAX.to_le_bytes()); // counter wraps after one block
        let cipher = Aes128::new(&Array::from(*b"0123456789abcdef"));
        let mut rng = SeedRng::from_seed(seed);
        for ctr in [u128::MAX, 0, 1] {
            let mut b = block_from_u128(ctr);
            cipher.encrypt_block(&mut b);
            assert_eq!(rng.next_u128(), u128_from_block(&b));
        }
    }

    #[test]
    fn os_entropy_seeds_differ() -> Result<(), FssError> {
        let mut a = SeedRng::from_os_entropy()?;
        let mut b = SeedRng::from_os_entropy()?;
        assert_ne!(a.next_u128(), b.next_u128());
        Ok(())
    }
}
