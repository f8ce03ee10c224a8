//! CPU emulation of the CUDA kernels in `cuda/mpcflow_kernels.cu`, and the tests that hold it to
//! the CPU implementation in `mpcflow-protocol-fss2pc` bit for bit.
//!
//! # How the emulation works
//!
//! The kernel source also compiles as plain C11 when `MPCF_EMULATE` is defined; `build.rs` does
//! that and links the result into this crate. The `MPCF_*` macros of the source turn
//! `__shared__` into thread-local statics, `__syncthreads()` into nothing and the global thread
//! index into a variable, and each `mpcf_emu_<kernel>(threads, arguments…)` runner calls the
//! kernel once per thread index `0..threads`, one after another.
//!
//! A kernel thread depends on the others of its block only through the cooperative start (copy
//! the AES T-tables and round keys into shared memory, one word per thread, then synchronise);
//! in emulation every thread has local id 0 and local size 1 and so copies everything itself.
//! The emulated run therefore computes exactly what the per-thread code computes on a GPU: the
//! AES tables and key expansion, the byte order of seeds and keys, the DCF/DCF2/DPF tree walks,
//! the index arithmetic of matmul, conv2d and bit packing, and the `gid >= items` guards (every
//! run gets whole blocks of 256 threads and at least one thread past the last item, and every
//! output buffer carries guard words that must come back untouched).
//!
//! # What it does not cover
//!
//! * The launch and the host side: grid and block sizes, `blockIdx.x * blockDim.x +
//!   threadIdx.x`, and the cudarc host code (NVRTC compilation, module loading, the argument
//!   order and types of each launch, device copies, streams, error handling).
//! * Real concurrency: races on shared memory between the threads of a block (a missing or
//!   misplaced `__syncthreads()`, a thread returning before it), and anything that depends on
//!   the order in which threads run.
//! * Performance: coalescing of global loads, shared-memory bank conflicts, occupancy, register
//!   pressure, warp divergence.
//! * The C++ side of the source: here it is compiled as C; only NVRTC itself shows that the
//!   CUDA C++ form compiles (`scripts/ensure-nvrtc.sh` provides NVRTC without a GPU).

// The tests call the C emulation through FFI, which needs `unsafe`; each call sits in one small
// wrapper below that sizes the buffers, with a SAFETY comment on why the kernel stays in them.
#![allow(unsafe_code)]

use mpcflow_fss::prg::FIXED_KEYS;
use mpcflow_fss::{Dcf2Key, Dcf2KeyBatch, DcfKey, DcfKeyBatch, DpfKey, FssError, Prg, PrgKey, SeedRng, dcf, dcf2, dpf};
use mpcflow_ring::linalg;
use proptest::prelude::*;

/// Threads per block of every launch.
const BLOCK: usize = 256;
/// Words of one expanded AES-128 key.
const KEY_WORDS: usize = 44;
/// Words of the three expanded PRG keys (`kL`, `kR`, `kV`).
const RK_WORDS: usize = 3 * KEY_WORDS;
/// Guard words after every output buffer; a kernel that writes past its output changes them.
const GUARD: usize = 8;
/// Initial value of outputs and guard words.
const SENTINEL: u64 = 0x5a5a_5a5a_a5a5_a5a5;
/// Bytes of the longest key any layout can describe (DCF2 with 64 levels; the kernels accept at
/// most 2 payload words).
const MAX_KEY_LEN: usize = 18 + 32 * 64 + 16 + 16;
/// Extra readable bytes after the keys given to a key kernel, so that even a kernel that ignored
/// a bad `key_len` could not read outside the buffer (thread gid reads at most
/// [`MAX_KEY_LEN`] bytes from gid·key_len).
const KEY_SLACK: usize = 4096;

unsafe extern "C" {
    fn mpcf_emu_prg_round_keys(threads: u64, rk: *mut u32);
    fn mpcf_emu_aes_mmo(threads: u64, rk: *const u32, which: u32, input: *const u8, out: *mut u8, count: u64);
    fn mpcf_emu_dcf_eval(
        threads: u64,
        rk: *const u32,
        keys: *const u8,
        count: u64,
        key_len: u32,
        n_bits: u32,
        words: u32,
        party: u32,
        xs: *const u64,
        out: *mut u64,
    );
    fn mpcf_emu_dpf_eval(
        threads: u64,
        rk: *const u32,
        keys: *const u8,
        count: u64,
        key_len: u32,
        n_bits: u32,
        party: u32,
        xs: *const u64,
        out: *mut u64,
    );
    fn mpcf_emu_ring_matmul(threads: u64, a: *const u64, b: *const u64, c: *mut u64, m: u64, k: u64, n: u64);
    fn mpcf_emu_ring_conv2d(
        threads: u64,
        x: *const u64,
        w: *const u64,
        y: *mut u64,
        batch: u32,
        c: u32,
        h: u32,
        wd: u32,
        o: u32,
        kh: u32,
        kw: u32,
        oh: u32,
        ow: u32,
        sh: u32,
        sw: u32,
        ph: u32,
        pw: u32,
    );
    fn mpcf_emu_pack_bits(threads: u64, input: *const u64, count: u64, bits: u32, out: *mut u64);
    fn mpcf_emu_unpack_bits(threads: u64, input: *const u64, count: u64, bits: u32, out: *mut u64);
    fn mpcf_emu_expand_key(key: *const u8, rk: *mut u32);
    fn mpcf_emu_aes_encrypt(rk44: *const u32, input: *const u8, out: *mut u8);
}

// ---------------------------------------------------------------------------------------------
// Safe wrappers: one launch each, with the buffer sizes the kernel expects.
// ---------------------------------------------------------------------------------------------

/// Emulated threads for `items` items: whole blocks, with at least one thread past the end.
fn threads(items: usize) -> u64 {
    ((items / BLOCK + 1) * BLOCK) as u64
}

/// An output buffer of `len` words followed by [`GUARD`] guard words, all [`SENTINEL`].
fn out_buf(len: usize) -> Vec<u64> {
    vec![SENTINEL; len + GUARD]
}

/// The first `len` words of `buf`, after checking that nothing was written past them.
fn finish(mut buf: Vec<u64>, len: usize, what: &str) -> Vec<u64> {
    assert!(buf[len..].iter().all(|w| *w == SENTINEL), "{what} wrote past its {len} output words");
    buf.truncate(len);
    buf
}

/// `2^n − 1` (all ones for `n = 64`).
fn domain_mask(n_bits: u32) -> u64 {
    if n_bits >= 64 { u64::MAX } else { (1 << n_bits) - 1 }
}

/// The round keys of the three PRG keys, from `mpcf_prg_round_keys`.
fn round_keys() -> Vec<u32> {
    let mut rk = vec![0xdead_beef_u32; RK_WORDS + GUARD];
    // SAFETY: `rk` has 132 + GUARD words; the kernel writes rk[0..132) (thread 0 only).
    unsafe { mpcf_emu_prg_round_keys(threads(1), rk.as_mut_ptr()) };
    assert!(rk[RK_WORDS..].iter().all(|w| *w == 0xdead_beef), "round keys written past 132 words");
    rk.truncate(RK_WORDS);
    rk
}

/// The emulation's expansion of an arbitrary AES-128 key (44 little-endian words).
fn expand_key(key: &[u8; 16]) -> [u32; KEY_WORDS] {
    let mut rk = [0u32; KEY_WORDS];
    // SAFETY: `key` has 16 bytes and `rk` 44 words, exactly what the expansion reads and writes.
    unsafe { mpcf_emu_expand_key(key.as_ptr(), rk.as_mut_ptr()) };
    rk
}

/// One AES-128 encryption of `block` under `key` through the kernels' table code.
fn aes_encrypt(key: &[u8; 16], block: &[u8; 16]) -> [u8; 16] {
    let rk = expand_key(key);
    let mut out = [0u8; 16];
    // SAFETY: `rk` has 44 words, `block` and `out` 16 bytes each: all that is read or written.
    unsafe { mpcf_emu_aes_encrypt(rk.as_ptr(), block.as_ptr(), out.as_mut_ptr()) };
    out
}

/// `mpcf_aes_mmo` with PRG key `which` on `seeds` (as little-endian 16-byte blocks).
fn aes_mmo(rk: &[u32], which: u32, seeds: &[u128]) -> Vec<u128> {
    assert_eq!(rk.len(), RK_WORDS);
    let input: Vec<u8> = seeds.iter().flat_map(|s| s.to_le_bytes()).collect();
    let mut out = vec![0xa5u8; input.len() + 8 * GUARD];
    // SAFETY: `rk` has 132 words (all loaded), `input` 16·count bytes and `out` 16·count plus
    // guard bytes; thread gid < count reads and writes block gid only.
    unsafe {
        mpcf_emu_aes_mmo(threads(seeds.len()), rk.as_ptr(), which, input.as_ptr(), out.as_mut_ptr(), seeds.len() as u64)
    };
    assert!(out[input.len()..].iter().all(|b| *b == 0xa5), "aes_mmo wrote past its output");
    out.chunks_exact(16).take(seeds.len()).map(|c| u128::from_le_bytes(c.try_into().unwrap_or_default())).collect()
}

/// Arguments of one `mpcf_dcf_eval` / `mpcf_dpf_eval` launch, possibly inconsistent on purpose.
#[derive(Clone, Copy, Debug)]
struct KeyLaunch {
    key_len: u32,
    n_bits: u32,
    /// Payload words (DCF 1, DCF2 2); ignored for the DPF.
    words: u32,
    party: u32,
}

/// `mpcf_dcf_eval` (`dpf = false`) or `mpcf_dpf_eval` (`dpf = true`) of key `i` of `keys` at
/// `xs[i]`: the whole output buffer (`4·count` words, [`SENTINEL`] where nothing was written).
fn key_eval(rk: &[u32], keys: &[u8], xs: &[u64], a: KeyLaunch, dpf: bool) -> Vec<u64> {
    assert_eq!(rk.len(), RK_WORDS);
    let count = xs.len();
    let mut padded = keys.to_vec();
    padded.resize(keys.len() + KEY_SLACK, 0);
    let last = count.saturating_sub(1) * a.key_len as usize;
    assert!(last + MAX_KEY_LEN <= padded.len(), "the test passed too few key bytes");
    let len = 4 * count;
    let mut out = out_buf(len);
    // SAFETY: `rk` has 132 words; `xs` has `count` points. Thread gid < count reads key bytes
    // [gid·key_len, gid·key_len + L) where L, the layout length for n_bits ≤ 64 and words ≤ 2,
    // is at most MAX_KEY_LEN (and equals key_len when the kernel runs at all): in bounds by the
    // assertion above. It writes out[gid·words .. gid·words + words) with words ≤ 2, inside the
    // 4·count + GUARD words of `out`.
    unsafe {
        if dpf {
            mpcf_emu_dpf_eval(
                threads(count),
                rk.as_ptr(),
                padded.as_ptr(),
                count as u64,
                a.key_len,
                a.n_bits,
                a.party,
                xs.as_ptr(),
                out.as_mut_ptr(),
            );
        } else {
            mpcf_emu_dcf_eval(
                threads(count),
                rk.as_ptr(),
                padded.as_ptr(),
                count as u64,
                a.key_len,
                a.n_bits,
                a.words,
                a.party,
                xs.as_ptr(),
                out.as_mut_ptr(),
            );
        }
    }
    finish(out, len, if dpf { "dpf_eval" } else { "dcf_eval" })
}

/// `mpcf_ring_matmul`: `A (m×k) · B (k×n)`.
fn matmul(a: &[u64], b: &[u64], [m, k, n]: [usize; 3]) -> Vec<u64> {
    assert_eq!((a.len(), b.len()), (m * k, k * n));
    let mut c = out_buf(m * n);
    // SAFETY: `a` has m·k words, `b` k·n and `c` m·n plus guard words; thread gid < m·n reads
    // row gid/n of A and column gid%n of B and writes c[gid].
    unsafe {
        mpcf_emu_ring_matmul(threads(m * n), a.as_ptr(), b.as_ptr(), c.as_mut_ptr(), m as u64, k as u64, n as u64)
    };
    finish(c, m * n, "ring_matmul")
}

/// Shape of one convolution: input `[batch, c, h, w]`, weights `[o, c, kh, kw]`, stride, padding.
#[derive(Clone, Copy, Debug)]
struct Conv {
    batch: usize,
    c: usize,
    h: usize,
    w: usize,
    o: usize,
    kh: usize,
    kw: usize,
    stride: [usize; 2],
    pad: [usize; 2],
}

impl Conv {
    /// Output height and width.
    fn out_hw(&self) -> [usize; 2] {
        [
            (self.h + 2 * self.pad[0] - self.kh) / self.stride[0] + 1,
            (self.w + 2 * self.pad[1] - self.kw) / self.stride[1] + 1,
        ]
    }

    fn out_len(&self) -> usize {
        let [oh, ow] = self.out_hw();
        self.batch * self.o * oh * ow
    }
}

/// `mpcf_ring_conv2d`.
fn conv2d(x: &[u64], w: &[u64], s: Conv) -> Vec<u64> {
    assert_eq!((x.len(), w.len()), (s.batch * s.c * s.h * s.w, s.o * s.c * s.kh * s.kw));
    let [oh, ow] = s.out_hw();
    let len = s.out_len();
    let mut y = out_buf(len);
    let d = |v: usize| u32::try_from(v).unwrap_or(u32::MAX);
    // SAFETY: `x` and `w` have exactly the words of the shapes passed, `y` the output's plus
    // guard words; thread gid < batch·o·oh·ow reads only taps inside the input (padding taps
    // are skipped) and writes y[gid].
    unsafe {
        mpcf_emu_ring_conv2d(
            threads(len),
            x.as_ptr(),
            w.as_ptr(),
            y.as_mut_ptr(),
            d(s.batch),
            d(s.c),
            d(s.h),
            d(s.w),
            d(s.o),
            d(s.kh),
            d(s.kw),
            d(oh),
            d(ow),
            d(s.stride[0]),
            d(s.stride[1]),
            d(s.pad[0]),
            d(s.pad[1]),
        )
    };
    finish(y, len, "ring_conv2d")
}

/// `mpcf_pack_bits` of `values` at `bits` bits each (`bits` outside 1..=64 gives whatever the
/// kernel wrote, which should be nothing).
fn pack(values: &[u64], bits: u32) -> Vec<u64> {
    let len = (values.len() * bits.clamp(1, 64) as usize).div_ceil(64);
    let mut out = out_buf(len);
    // SAFETY: `values` has `count` words and `out` ⌈count·bits/64⌉ plus guard words (bits is
    // clamped the same way for the size; the kernel writes nothing for bits outside 1..=64);
    // thread gid reads the values overlapping word gid and writes out[gid].
    unsafe { mpcf_emu_pack_bits(threads(len), values.as_ptr(), values.len() as u64, bits, out.as_mut_ptr()) };
    finish(out, len, "pack_bits")
}

/// `mpcf_unpack_bits`: `count` values of `bits` bits from `packed`.
fn unpack(packed: &[u64], count: usize, bits: u32) -> Vec<u64> {
    assert!(packed.len() >= (count * bits.clamp(1, 64) as usize).div_ceil(64));
    let mut out = out_buf(count);
    // SAFETY: `packed` has at least ⌈count·bits/64⌉ words: value gid ends at bit (gid+1)·bits ≤
    // count·bits, so the two words it may touch exist; `out` has count plus guard words.
    unsafe { mpcf_emu_unpack_bits(threads(count), packed.as_ptr(), count as u64, bits, out.as_mut_ptr()) };
    finish(out, count, "unpack_bits")
}

// ---------------------------------------------------------------------------------------------
// Helpers of the tests
// ---------------------------------------------------------------------------------------------

fn fail(e: FssError) -> TestCaseError {
    TestCaseError::fail(e.to_string())
}

/// `α` for key `i`: 0 and `2^n − 1` among random values.
fn alpha_for(i: usize, n_bits: u32, r: &mut SeedRng) -> u64 {
    match i % 4 {
        1 => 0,
        2 => domain_mask(n_bits),
        _ => r.next_u64() & domain_mask(n_bits),
    }
}

/// Evaluation points for a key with `alpha`: α, α ± 1, 0, 2^n − 1 and a random point.
fn points(alpha: u64, n_bits: u32, r: &mut SeedRng) -> [u64; 6] {
    let max = domain_mask(n_bits);
    [alpha, alpha.wrapping_sub(1) & max, alpha.wrapping_add(1) & max, 0, max, r.next_u64() & max]
}

/// Random words from a deterministic generator.
fn words(r: &mut SeedRng, len: usize) -> Vec<u64> {
    (0..len).map(|_| r.next_u64()).collect()
}

// ---------------------------------------------------------------------------------------------
// AES and the MMO PRG
// ---------------------------------------------------------------------------------------------

#[test]
fn aes_fips197_known_answers() {
    // Appendix B.
    let key = [0x2b, 0x7e, 0x15, 0x16, 0x28, 0xae, 0xd2, 0xa6, 0xab, 0xf7, 0x15, 0x88, 0x09, 0xcf, 0x4f, 0x3c];
    let pt = [0x32, 0x43, 0xf6, 0xa8, 0x88, 0x5a, 0x30, 0x8d, 0x31, 0x31, 0x98, 0xa2, 0xe0, 0x37, 0x07, 0x34];
    let ct = [0x39, 0x25, 0x84, 0x1d, 0x02, 0xdc, 0x09, 0xfb, 0xdc, 0x11, 0x85, 0x97, 0x19, 0x6a, 0x0b, 0x32];
    assert_eq!(aes_encrypt(&key, &pt), ct);
    // Appendix A.1: w[4] = a0fafe17, w[43] = b6630ca6 (words big-endian there, little-endian here).
    let rk = expand_key(&key);
    assert_eq!(rk[4], u32::from_le_bytes([0xa0, 0xfa, 0xfe, 0x17]));
    assert_eq!(rk[43], u32::from_le_bytes([0xb6, 0x63, 0x0c, 0xa6]));
    // Appendix C.1.
    let key: [u8; 16] = core::array::from_fn(|i| i as u8);
    let pt: [u8; 16] = core::array::from_fn(|i| (i as u8) * 0x11);
    let ct = [0x69, 0xc4, 0xe0, 0xd8, 0x6a, 0x7b, 0x04, 0x30, 0xd8, 0xcd, 0xb7, 0x80, 0x70, 0xb4, 0xc5, 0x5a];
    assert_eq!(aes_encrypt(&key, &pt), ct);
}

#[test]
fn prg_round_keys_expand_the_fixed_keys() {
    let rk = round_keys();
    for (k, key) in FIXED_KEYS.iter().enumerate() {
        assert_eq!(rk[KEY_WORDS * k..KEY_WORDS * (k + 1)], expand_key(key), "key {k}");
        // Round key 0 is the key itself, as little-endian words.
        let w0 = u32::from_le_bytes([key[0], key[1], key[2], key[3]]);
        assert_eq!(rk[KEY_WORDS * k], w0, "key {k}");
    }
}

/// The MMO regression vector of fss2pc's prg.rs (computed there with OpenSSL).
#[test]
fn mmo_regression_vector() {
    let rk = round_keys();
    let s = 0x0f0e_0d0c_0b0a_0908_0706_0504_0302_0100u128;
    let want = [
        0x370b_1a46_161c_d877_56c5_ab5f_886a_b10fu128,
        0xb4be_5669_f096_5fa2_9763_8dd2_e6a5_7ebf,
        0x60ee_eec0_8409_6baa_dc3d_0243_b77e_7ae3,
    ];
    for (which, w) in want.iter().enumerate() {
        assert_eq!(aes_mmo(&rk, which as u32, &[s]), [*w], "key {which}");
    }
}

/// Thousands of random seeds per key: every entry of every T-table gets used.
#[test]
fn mmo_matches_prg_on_many_seeds() {
    let rk = round_keys();
    let prg = Prg::global();
    let mut r = SeedRng::from_seed([3; 32]);
    let mut seeds: Vec<u128> = (0..4000).map(|_| r.next_u128()).collect();
    seeds.extend([0, u128::MAX, 1, 1 << 127, u128::from(u64::MAX)]);
    for (which, key) in [PrgKey::Left, PrgKey::Right, PrgKey::Value].into_iter().enumerate() {
        let got = aes_mmo(&rk, which as u32, &seeds);
        for (i, (s, g)) in seeds.iter().zip(&got).enumerate() {
            assert_eq!(*g, prg.mmo(key, *s), "key {which}, seed {i}");
        }
    }
}

/// A bad key index writes nothing.
#[test]
fn mmo_rejects_a_bad_key_index() {
    let rk = round_keys();
    let seeds = [5u128, 6];
    let got = aes_mmo(&rk, 3, &seeds);
    assert!(got.iter().all(|b| *b == u128::from_le_bytes([0xa5; 16])));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn mmo_matches_prg(seeds in prop::collection::vec(any::<u128>(), 1..40)) {
        let rk = round_keys();
        let prg = Prg::global();
        for (which, key) in [PrgKey::Left, PrgKey::Right, PrgKey::Value].into_iter().enumerate() {
            let got = aes_mmo(&rk, which as u32, &seeds);
            let want: Vec<u128> = seeds.iter().map(|s| prg.mmo(key, *s)).collect();
            prop_assert_eq!(got, want, "key {}", which);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// DCF, DCF2, DPF
// ---------------------------------------------------------------------------------------------

/// Keys of both parties for `count` random functions, each repeated once per evaluation point,
/// with the points, the CPU's outputs of both parties and the function values.
struct Case {
    keys: [Vec<u8>; 2],
    xs: Vec<u64>,
    cpu: [Vec<u64>; 2],
    want: Vec<u64>,
}

impl Case {
    fn new() -> Case {
        Case { keys: [Vec::new(), Vec::new()], xs: Vec::new(), cpu: [Vec::new(), Vec::new()], want: Vec::new() }
    }

    /// Sets the low bit of every seed CW of every key (keys of `key_len` bytes, `n_bits` levels):
    /// fss2pc's key format ignores it, so the outputs must not change.
    fn set_seed_cw_low_bits(&mut self, key_len: usize, n_bits: u32) {
        for keys in &mut self.keys {
            for key in keys.chunks_exact_mut(key_len) {
                for level in 0..n_bits as usize {
                    key[18 + 16 * level] |= 1;
                }
            }
        }
    }

    /// Runs the kernel for both parties and checks it against the CPU and the function.
    fn check(&self, launch: impl Fn(u32) -> KeyLaunch, words: usize, dpf: bool) -> Result<(), TestCaseError> {
        let rk = round_keys();
        let mut gpu = [Vec::new(), Vec::new()];
        for party in 0..2u32 {
            let out = key_eval(&rk, &self.keys[party as usize], &self.xs, launch(party), dpf);
            let (used, rest) = out.split_at(words * self.xs.len());
            prop_assert!(rest.iter().all(|w| *w == SENTINEL), "party {} wrote past its outputs", party);
            for (i, (g, c)) in used.iter().zip(&self.cpu[party as usize]).enumerate() {
                prop_assert_eq!(*g, *c, "party {}, output word {} (point {})", party, i, i / words);
            }
            prop_assert_eq!(used.len(), self.cpu[party as usize].len());
            gpu[party as usize] = used.to_vec();
        }
        for (i, ((a, b), w)) in gpu[0].iter().zip(&gpu[1]).zip(&self.want).enumerate() {
            prop_assert_eq!(a.wrapping_add(*b), *w, "shares of output word {} do not add up", i);
        }
        Ok(())
    }
}

fn check_dcf(n_bits: u32, seed: [u8; 32], count: usize) -> Result<(), TestCaseError> {
    let mut r = SeedRng::from_seed(seed);
    let mut case = Case::new();
    for i in 0..count {
        let (alpha, beta) = (alpha_for(i, n_bits, &mut r), r.next_u64());
        let (k0, k1) = dcf::keygen(alpha, beta, n_bits, &mut r).map_err(fail)?;
        for x in points(alpha, n_bits, &mut r) {
            for (p, k) in [&k0, &k1].into_iter().enumerate() {
                case.keys[p].extend(k.to_bytes());
                case.cpu[p].push(dcf::eval(p as u8, k, x).map_err(fail)?);
            }
            case.xs.push(x);
            case.want.push(if x < alpha { beta } else { 0 });
        }
    }
    let key_len = DcfKey::serialized_len(n_bits) as u32;
    case.check(|party| KeyLaunch { key_len, n_bits, words: 1, party }, 1, false)?;
    case.set_seed_cw_low_bits(key_len as usize, n_bits);
    case.check(|party| KeyLaunch { key_len, n_bits, words: 1, party }, 1, false)
}

fn check_dcf2(n_bits: u32, seed: [u8; 32], count: usize) -> Result<(), TestCaseError> {
    let mut r = SeedRng::from_seed(seed);
    let mut case = Case::new();
    for i in 0..count {
        let (alpha, beta) = (alpha_for(i, n_bits, &mut r), [r.next_u64(), r.next_u64()]);
        let (k0, k1) = dcf2::keygen(alpha, beta, n_bits, &mut r).map_err(fail)?;
        for x in points(alpha, n_bits, &mut r) {
            for (p, k) in [&k0, &k1].into_iter().enumerate() {
                case.keys[p].extend(k.to_bytes());
                case.cpu[p].extend(dcf2::eval(p as u8, k, x).map_err(fail)?);
            }
            case.xs.push(x);
            case.want.extend(if x < alpha { beta } else { [0, 0] });
        }
    }
    let key_len = Dcf2Key::serialized_len(n_bits) as u32;
    case.check(|party| KeyLaunch { key_len, n_bits, words: 2, party }, 2, false)?;
    case.set_seed_cw_low_bits(key_len as usize, n_bits);
    case.check(|party| KeyLaunch { key_len, n_bits, words: 2, party }, 2, false)
}

fn check_dpf(n_bits: u32, seed: [u8; 32], count: usize) -> Result<(), TestCaseError> {
    let mut r = SeedRng::from_seed(seed);
    let mut case = Case::new();
    for i in 0..count {
        let (alpha, beta) = (alpha_for(i, n_bits, &mut r), r.next_u64());
        let (k0, k1) = dpf::keygen(alpha, beta, n_bits, &mut r).map_err(fail)?;
        for x in points(alpha, n_bits, &mut r) {
            for (p, k) in [&k0, &k1].into_iter().enumerate() {
                case.keys[p].extend(k.to_bytes());
                case.cpu[p].push(dpf::eval(p as u8, k, x).map_err(fail)?);
            }
            case.xs.push(x);
            case.want.push(if x == alpha { beta } else { 0 });
        }
    }
    let key_len = DpfKey::serialized_len(n_bits) as u32;
    case.check(|party| KeyLaunch { key_len, n_bits, words: 1, party }, 1, true)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn dcf_matches_cpu(n_bits in 1u32..=64, seed in any::<[u8; 32]>(), count in 1usize..6) {
        check_dcf(n_bits, seed, count)?;
    }

    #[test]
    fn dcf2_matches_cpu(n_bits in 1u32..=64, seed in any::<[u8; 32]>(), count in 1usize..6) {
        check_dcf2(n_bits, seed, count)?;
    }

    #[test]
    fn dpf_matches_cpu(n_bits in 1u32..=64, seed in any::<[u8; 32]>(), count in 1usize..6) {
        check_dpf(n_bits, seed, count)?;
    }
}

/// The domain sizes at the edges, deterministically (proptest may not draw them).
#[test]
fn key_kernels_at_edge_domain_sizes() {
    for n_bits in [1u32, 2, 3, 4, 5, 8, 31, 32, 33, 63, 64] {
        let seed = [n_bits as u8; 32];
        for (name, res) in [
            ("dcf", check_dcf(n_bits, seed, 4)),
            ("dcf2", check_dcf2(n_bits, seed, 4)),
            ("dpf", check_dpf(n_bits, seed, 4)),
        ] {
            if let Err(e) = res {
                panic!("{name}, n = {n_bits}: {e}");
            }
        }
    }
}

/// Batches from the dealer's batched key generation (`keygen_into`), more keys than one block,
/// against the batched CPU evaluation (`eval_many`).
#[test]
fn dcf_batches_match_eval_many() {
    let mut r = SeedRng::from_seed([9; 32]);
    let rk = round_keys();
    for n_bits in [1u32, 7, 17, 64] {
        let count = 300;
        let max = domain_mask(n_bits);
        let alphas: Vec<u64> = (0..count).map(|i| alpha_for(i, n_bits, &mut r)).collect();
        let xs: Vec<u64> = alphas.iter().map(|a| points(*a, n_bits, &mut r)[r.next_u64() as usize % 6] & max).collect();
        // DCF.
        let betas = words(&mut r, count);
        let (mut b0, mut b1) = (Vec::new(), Vec::new());
        dcf::keygen_into(&alphas, &betas, n_bits, &mut r, &mut b0, &mut b1).unwrap_or_else(|e| panic!("{e}"));
        let key_len = DcfKey::serialized_len(n_bits) as u32;
        for (party, bytes) in [b0, b1].iter().enumerate() {
            let batch = DcfKeyBatch::from_bytes(bytes, count, n_bits).unwrap_or_else(|e| panic!("{e}"));
            let mut cpu = vec![0u64; count];
            dcf::eval_many(party as u8, &batch, &xs, &mut cpu).unwrap_or_else(|e| panic!("{e}"));
            let launch = KeyLaunch { key_len, n_bits, words: 1, party: party as u32 };
            assert_eq!(key_eval(&rk, bytes, &xs, launch, false)[..count], cpu, "dcf n={n_bits} party={party}");
        }
        // DCF2.
        let betas: Vec<[u64; 2]> = (0..count).map(|_| [r.next_u64(), r.next_u64()]).collect();
        let (mut b0, mut b1) = (Vec::new(), Vec::new());
        dcf2::keygen_into(&alphas, &betas, n_bits, &mut r, &mut b0, &mut b1).unwrap_or_else(|e| panic!("{e}"));
        let key_len = Dcf2Key::serialized_len(n_bits) as u32;
        for (party, bytes) in [b0, b1].iter().enumerate() {
            let batch = Dcf2KeyBatch::from_bytes(bytes, count, n_bits).unwrap_or_else(|e| panic!("{e}"));
            let mut cpu = vec![[0u64; 2]; count];
            dcf2::eval_many(party as u8, &batch, &xs, &mut cpu).unwrap_or_else(|e| panic!("{e}"));
            let cpu: Vec<u64> = cpu.into_iter().flatten().collect();
            let launch = KeyLaunch { key_len, n_bits, words: 2, party: party as u32 };
            assert_eq!(key_eval(&rk, bytes, &xs, launch, false)[..2 * count], cpu, "dcf2 n={n_bits} party={party}");
        }
    }
}

/// Inconsistent launch arguments write nothing (the host validates; the kernel must not read
/// outside the keys or write garbage when it did not).
#[test]
fn key_kernels_reject_bad_arguments() {
    let mut r = SeedRng::from_seed([5; 32]);
    let rk = round_keys();
    let n_bits = 10;
    let (k0, _) = dcf::keygen(3, 4, n_bits, &mut r).unwrap_or_else(|e| panic!("{e}"));
    let (p0, _) = dpf::keygen(3, 4, n_bits, &mut r).unwrap_or_else(|e| panic!("{e}"));
    let xs = [1u64, 2];
    let dcf_keys = [k0.to_bytes(), k0.to_bytes()].concat();
    let dpf_keys = [p0.to_bytes(), p0.to_bytes()].concat();
    let ok = KeyLaunch { key_len: DcfKey::serialized_len(n_bits) as u32, n_bits, words: 1, party: 0 };
    let ok_dpf = KeyLaunch { key_len: DpfKey::serialized_len(n_bits) as u32, ..ok };
    // The good launches write.
    assert_ne!(key_eval(&rk, &dcf_keys, &xs, ok, false)[0], SENTINEL);
    assert_ne!(key_eval(&rk, &dpf_keys, &xs, ok_dpf, true)[0], SENTINEL);
    let bad = [
        KeyLaunch { key_len: ok.key_len - 1, ..ok },
        KeyLaunch { key_len: ok.key_len + 1, ..ok },
        KeyLaunch { words: 2, ..ok },
        KeyLaunch { words: 3, ..ok },
        KeyLaunch { words: 0, ..ok },
        KeyLaunch { party: 2, ..ok },
        KeyLaunch { n_bits: 0, ..ok },
        KeyLaunch { n_bits: 65, ..ok },
        KeyLaunch { n_bits: 11, ..ok },
    ];
    for a in bad {
        let out = key_eval(&rk, &dcf_keys, &xs, a, false);
        assert!(out.iter().all(|w| *w == SENTINEL), "dcf_eval wrote for {a:?}");
    }
    let bad_dpf = [
        KeyLaunch { key_len: ok_dpf.key_len - 1, ..ok_dpf },
        KeyLaunch { party: 2, ..ok_dpf },
        KeyLaunch { n_bits: 0, ..ok_dpf },
        KeyLaunch { n_bits: 65, ..ok_dpf },
        KeyLaunch { n_bits: 9, ..ok_dpf },
    ];
    for a in bad_dpf {
        let out = key_eval(&rk, &dpf_keys, &xs, a, true);
        assert!(out.iter().all(|w| *w == SENTINEL), "dpf_eval wrote for {a:?}");
    }
}

// ---------------------------------------------------------------------------------------------
// Ring products
// ---------------------------------------------------------------------------------------------

fn matmul_ref(a: &[u64], b: &[u64], [m, k, n]: [usize; 3]) -> Vec<u64> {
    let mut c = vec![0u64; m * n];
    for i in 0..m {
        for j in 0..n {
            c[i * n + j] = (0..k).fold(0u64, |acc, l| acc.wrapping_add(a[i * k + l].wrapping_mul(b[l * n + j])));
        }
    }
    c
}

fn conv_ref(x: &[u64], w: &[u64], s: Conv) -> Vec<u64> {
    let [oh, ow] = s.out_hw();
    let mut y = vec![0u64; s.out_len()];
    for b in 0..s.batch {
        for o in 0..s.o {
            for oy in 0..oh {
                for ox in 0..ow {
                    let mut acc = 0u64;
                    for c in 0..s.c {
                        for ky in 0..s.kh {
                            for kx in 0..s.kw {
                                let iy = (oy * s.stride[0] + ky) as isize - s.pad[0] as isize;
                                let ix = (ox * s.stride[1] + kx) as isize - s.pad[1] as isize;
                                if iy < 0 || ix < 0 || iy as usize >= s.h || ix as usize >= s.w {
                                    continue;
                                }
                                let xv = x[((b * s.c + c) * s.h + iy as usize) * s.w + ix as usize];
                                let wv = w[((o * s.c + c) * s.kh + ky) * s.kw + kx];
                                acc = acc.wrapping_add(xv.wrapping_mul(wv));
                            }
                        }
                    }
                    y[((b * s.o + o) * oh + oy) * ow + ox] = acc;
                }
            }
        }
    }
    y
}

fn check_matmul(dims: [usize; 3], seed: u8) {
    let [m, k, n] = dims;
    let mut r = SeedRng::from_seed([seed; 32]);
    let (a, b) = (words(&mut r, m * k), words(&mut r, k * n));
    let got = matmul(&a, &b, dims);
    assert_eq!(got, matmul_ref(&a, &b, dims), "{dims:?}");
    if m * k * n > 0 {
        let lib = linalg::matmul([&a, &b], [&[m, k], &[k, n]], &[m, n], &linalg::Config::default())
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(got, lib, "{dims:?} vs linalg");
    }
}

#[test]
fn matmul_matches_loops_and_linalg() {
    let shapes = [
        [1, 1, 1],
        [1, 5, 1],
        [3, 1, 4],
        [2, 3, 5],
        [7, 4, 1],
        [1, 9, 6],
        [17, 13, 19],
        [2, 0, 3],
        [16, 16, 16],
        [1, 1, 300],
    ];
    for (i, dims) in shapes.into_iter().enumerate() {
        check_matmul(dims, i as u8);
    }
}

fn check_conv(s: Conv, seed: u8) {
    let mut r = SeedRng::from_seed([seed; 32]);
    let x = words(&mut r, s.batch * s.c * s.h * s.w);
    let w = words(&mut r, s.o * s.c * s.kh * s.kw);
    let got = conv2d(&x, &w, s);
    assert_eq!(got, conv_ref(&x, &w, s), "{s:?}");
    let [oh, ow] = s.out_hw();
    let lib = linalg::conv2d(
        [&x, &w],
        [&[s.batch, s.c, s.h, s.w], &[s.o, s.c, s.kh, s.kw]],
        s.stride,
        s.pad,
        &[s.batch, s.o, oh, ow],
        &linalg::Config::default(),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(got, lib, "{s:?} vs linalg");
}

#[test]
fn conv2d_matches_loops_and_linalg() {
    let c = |batch, c, h, w, o, kh, kw, stride, pad| Conv { batch, c, h, w, o, kh, kw, stride, pad };
    let shapes = [
        c(1, 1, 1, 1, 1, 1, 1, [1, 1], [0, 0]),
        c(2, 3, 5, 7, 4, 3, 3, [1, 1], [1, 1]),
        c(1, 2, 6, 5, 3, 2, 3, [2, 2], [0, 1]),
        c(3, 1, 4, 4, 2, 3, 3, [2, 1], [2, 2]),
        c(1, 2, 7, 3, 1, 1, 1, [2, 2], [0, 0]),
        c(1, 1, 2, 2, 1, 3, 3, [1, 1], [1, 1]),
        c(1, 1, 2, 2, 1, 2, 2, [1, 1], [3, 3]),
        c(2, 4, 9, 8, 5, 3, 2, [2, 3], [1, 0]),
    ];
    for (i, s) in shapes.into_iter().enumerate() {
        check_conv(s, i as u8);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn matmul_matches_loops(m in 1usize..10, k in 1usize..10, n in 1usize..10, seed in any::<u8>()) {
        check_matmul([m, k, n], seed);
    }

    #[test]
    fn conv2d_matches_loops(
        (batch, c, o) in (1usize..3, 1usize..4, 1usize..4),
        (kh, kw, sh, sw, ph, pw) in (1usize..4, 1usize..4, 1usize..3, 1usize..3, 0usize..3, 0usize..3),
        (dh, dw) in (0usize..5, 0usize..5),
        seed in any::<u8>(),
    ) {
        // The input is at least as large as the kernel, so every output has a tap.
        let s = Conv { batch, c, h: kh + dh, w: kw + dw, o, kh, kw, stride: [sh, sw], pad: [ph, pw] };
        check_conv(s, seed);
    }
}

// ---------------------------------------------------------------------------------------------
// Bit packing
// ---------------------------------------------------------------------------------------------

fn pack_ref(values: &[u64], bits: u32) -> Vec<u64> {
    let bits = bits as usize;
    let mut out = vec![0u64; (values.len() * bits).div_ceil(64)];
    for (i, v) in values.iter().enumerate() {
        for b in 0..bits {
            if (v >> b) & 1 == 1 {
                let j = i * bits + b;
                out[j / 64] |= 1 << (j % 64);
            }
        }
    }
    out
}

fn check_pack(values: &[u64], bits: u32) {
    let packed = pack(values, bits);
    assert_eq!(packed, pack_ref(values, bits), "bits={bits} count={}", values.len());
    let back = unpack(&packed, values.len(), bits);
    let masked: Vec<u64> = values.iter().map(|v| v & domain_mask(bits)).collect();
    assert_eq!(back, masked, "bits={bits} count={}", values.len());
}

#[test]
fn pack_round_trips_at_fixed_widths() {
    let mut r = SeedRng::from_seed([11; 32]);
    for bits in [1u32, 7, 13, 32, 63, 64] {
        for count in [0usize, 1, 2, 5, 63, 64, 65, 100, 257, 1000] {
            check_pack(&words(&mut r, count), bits);
        }
        // All ones and alternating patterns.
        check_pack(&[u64::MAX; 77], bits);
        check_pack(&[0xaaaa_aaaa_aaaa_aaaa, 0x5555_5555_5555_5555].repeat(40), bits);
    }
}

#[test]
fn pack_rejects_bad_widths() {
    for bits in [0u32, 65, 200] {
        let out = pack(&[1, 2, 3], bits);
        assert!(out.iter().all(|w| *w == SENTINEL), "pack_bits wrote for bits={bits}");
        let out = unpack(&[7, 7, 7], 3, bits);
        assert!(out.iter().all(|w| *w == SENTINEL), "unpack_bits wrote for bits={bits}");
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn pack_round_trips(values in prop::collection::vec(any::<u64>(), 0..300), bits in 1u32..=64) {
        check_pack(&values, bits);
    }
}
