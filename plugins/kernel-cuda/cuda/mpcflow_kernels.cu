/*
 * mpcflow CUDA kernels: fixed-key AES (MMO), one-key-per-thread DCF/DCF2/DPF evaluation,
 * ring (Z(2^64)) matrix product and 2-D convolution, and bit packing.
 *
 * ONE SOURCE, TWO COMPILERS
 *
 *   - As CUDA C++ with NVRTC, ahead of time: tests/ptx.rs compiles it for compute_90 and checks
 *     the result against the committed mpcflow_kernels.ptx, which the cudarc host code
 *     (src/lib.rs) loads; the driver JIT-compiles that PTX for the GPU. NVRTC has no standard
 *     headers, so this file includes nothing and brings its own integer typedefs.
 *   - As plain C11 with the host C compiler when MPCF_EMULATE is defined (build.rs does this):
 *     every kernel becomes an ordinary C function, and mpcf_emu_<kernel> runners at the end of
 *     the file call it once per "thread", one thread after another. The Rust tests in
 *     src/emu.rs run these and compare the bytes with the CPU implementation of
 *     mpcflow-protocol-fss2pc. There is no GPU on the development machines, so this emulation is
 *     what proves the kernel logic; see src/emu.rs for what it does not cover.
 *
 *   The MPCF_* macros below hide the CUDA-only syntax. Rules that keep the emulation faithful:
 *     * a kernel talks to other threads only through the cooperative load at its start
 *       (for (j = MPCF_LOCAL_ID(); j < N; j += MPCF_LOCAL_SIZE()) shared[j] = ...;), then
 *       MPCF_SYNC(); in emulation LOCAL_ID is 0 and LOCAL_SIZE is 1, so each emulated thread
 *       loads everything itself;
 *     * `if (gid >= items) return;` comes AFTER the MPCF_SYNC() (on a GPU, a thread that returns
 *       before __syncthreads() leaves the others of its block waiting: undefined behaviour);
 *     * kernels validate their scalar arguments and do nothing (write nothing) on bad ones, so a
 *       host bug cannot turn into an out-of-bounds read; the host validates keys and shapes
 *       before launching (keys: KeyBatch parsing in fss2pc), the kernels do not re-validate key
 *       bytes (tag, domain-size byte, canonical encodings).
 *
 * LAUNCH GEOMETRY (all kernels)
 *
 *   1-D grid, 256 threads per block, one item per thread: item = gid = blockIdx.x * blockDim.x +
 *   threadIdx.x; threads with gid >= items do nothing. mpcf_prg_round_keys runs on one thread.
 *
 * CONVENTIONS
 *
 *   - 128-bit values (seeds, AES blocks) are a struct of two u64 halves, lo = bits 0..63 and
 *     hi = bits 64..127: the 16 bytes of Rust's u128::to_le_bytes are lo's 8 little-endian bytes
 *     followed by hi's. An AES block is the same 16 bytes, so AES state column c (bytes 4c..4c+3)
 *     is the little-endian u32 word c: column 0 = low 32 bits of lo, column 3 = high 32 of hi.
 *   - Round keys (output of mpcf_prg_round_keys, input `rk` of every AES kernel): 3 x 44 u32,
 *     key k (0 = kL, 1 = kR, 2 = kV) at rk[44k .. 44k+44); word 4r + c is column c of round
 *     key r (r = 0..10), as a LITTLE-endian word (byte 4c + i of the round key at bits 8i..8i+7).
 *     FIPS-197 writes the same words big-endian: its w[43] = b6630ca6 is 0xa60c63b6 here.
 *   - Everything else (key bytes, ring elements) is little-endian, as in fss2pc's serialisation.
 *
 * WHY T-TABLES IN SHARED MEMORY
 *
 *   A GPU has no AES instructions. The classic software AES merges SubBytes, ShiftRows and
 *   MixColumns into four 256-entry u32 tables (T-tables): a round is 16 table lookups and XORs.
 *   The lookups are data-dependent, so the 32 threads of a warp hit 32 different addresses:
 *   __constant__ memory serialises such accesses (it is fast only when a warp reads ONE address),
 *   and global memory would go through L1 with long latency. Shared memory serves 32 different
 *   addresses per cycle unless several fall in the same bank (4 tables x 256 words = 4 KiB; a few
 *   bank conflicts per lookup on average). So every AES kernel starts by copying the tables (and
 *   the 132 round-key words, read by all threads alike) from constant/global into shared memory,
 *   cooperatively, one word per thread, then synchronises. Only Te0 is stored; Te1..Te3 are its
 *   byte rotations and the S-box is byte 1 of Te0, both derived during the copy.
 *   (Faster GPU AES exists: bitsliced AES, or tables replicated per bank; not needed here yet.)
 *
 * WHY ONE KEY PER THREAD, AND WHAT IS NOT COALESCED
 *
 *   In the online phase every element of a tensor has its own DCF/DPF key (its own alpha), so
 *   the natural work item is "key i at point x_i": one tree walk of n levels per thread, with no
 *   communication between threads and a uniform loop bound (n is the same for the whole batch,
 *   so the warps do not diverge; the direction bit only changes which round keys are read).
 *   The keys are read in fss2pc's serialised layout (key-major: all of key i, then all of key
 *   i+1, key_len bytes apart), byte by byte because key_len is not a multiple of 4. A warp's 32
 *   loads of "seed CW of level l" therefore touch 32 different cache lines: NOT coalesced. On a
 *   real GPU the host would upload the keys level-major (for each level, the CWs of all keys
 *   side by side, 16 bytes apart), or a transpose kernel would produce that layout; then each of
 *   a warp's loads covers 512 consecutive bytes. This file keeps the serialised layout so that
 *   the emulation compares against fss2pc byte for byte; the layout change is a follow-up.
 *   The same holds for mpcf_aes_mmo (16-byte blocks loaded byte-wise: coalesced in the sense of
 *   neighbouring addresses, but 16 load instructions instead of one 16-byte vector load) and the
 *   naive mpcf_ring_matmul / mpcf_ring_conv2d (no shared-memory tiling yet; see their comments).
 */

/* ------------------------------------------------------------------------------------------ */
/* Types and the CUDA / emulation macros                                                        */
/* ------------------------------------------------------------------------------------------ */

typedef unsigned long long u64;
typedef unsigned int u32;
typedef unsigned char u8;

#if defined(MPCF_EMULATE) && (defined(__CUDACC__) || defined(__CUDACC_RTC__))
#error "MPCF_EMULATE is for the plain-C emulation build, not for CUDA compilers"
#endif

#ifdef MPCF_EMULATE
/*
 * Emulation: kernels are plain C functions run once per emulated thread by the runners at the
 * end of this file. Shared memory and the thread index are thread-local (not just static)
 * because the Rust test harness runs tests on several OS threads at once; each OS thread is one
 * sequential "GPU".
 */
static _Thread_local u64 mpcf_emu_gid;
#define MPCF_KERNEL
#define MPCF_DEVICE static inline
#define MPCF_SHARED static _Thread_local
#define MPCF_CONSTANT static const
#define MPCF_GLOBAL_ID() (mpcf_emu_gid)
#define MPCF_LOCAL_ID() ((u32)0)
#define MPCF_LOCAL_SIZE() ((u32)1)
#define MPCF_SYNC() ((void)0)
#define MPCF_UNROLL
#else
#define MPCF_KERNEL extern "C" __global__
#define MPCF_DEVICE __device__ __forceinline__
#define MPCF_SHARED __shared__
#define MPCF_CONSTANT __constant__
#define MPCF_GLOBAL_ID() ((u64)blockIdx.x * blockDim.x + threadIdx.x)
#define MPCF_LOCAL_ID() ((u32)threadIdx.x)
#define MPCF_LOCAL_SIZE() ((u32)blockDim.x)
#define MPCF_SYNC() __syncthreads()
#define MPCF_UNROLL _Pragma("unroll")
#endif

/* A 128-bit value: lo = bits 0..63, hi = bits 64..127 (see CONVENTIONS). */
typedef struct mpcf_u128 {
    u64 lo;
    u64 hi;
} mpcf_u128;

/* ------------------------------------------------------------------------------------------ */
/* Constants                                                                                    */
/* ------------------------------------------------------------------------------------------ */

/*
 * AES encryption T-table Te0 for little-endian column words: for s = S-box(x),
 * Te0[x] = 2s | s << 8 | s << 16 | 3s << 24 (products in GF(2^8)), i.e. the MixColumns column
 * (2, 1, 1, 3) of an input byte in state row 0. Rows 1..3 use Te1..Te3 = Te0 rotated left by
 * 8, 16, 24 bits. Byte 1 of Te0[x] is S-box(x). Generated by computing the S-box from its
 * definition (multiplicative inverse in GF(2^8) followed by the affine map); checked by the
 * FIPS-197 known-answer tests and the comparisons with the `aes` crate in src/emu.rs.
 */
MPCF_CONSTANT u32 mpcf_te0[256] = {
    0xa56363c6u, 0x847c7cf8u, 0x997777eeu, 0x8d7b7bf6u, 0x0df2f2ffu, 0xbd6b6bd6u,
    0xb16f6fdeu, 0x54c5c591u, 0x50303060u, 0x03010102u, 0xa96767ceu, 0x7d2b2b56u,
    0x19fefee7u, 0x62d7d7b5u, 0xe6abab4du, 0x9a7676ecu, 0x45caca8fu, 0x9d82821fu,
    0x40c9c989u, 0x877d7dfau, 0x15fafaefu, 0xeb5959b2u, 0xc947478eu, 0x0bf0f0fbu,
    0xecadad41u, 0x67d4d4b3u, 0xfda2a25fu, 0xeaafaf45u, 0xbf9c9c23u, 0xf7a4a453u,
    0x967272e4u, 0x5bc0c09bu, 0xc2b7b775u, 0x1cfdfde1u, 0xae93933du, 0x6a26264cu,
    0x5a36366cu, 0x413f3f7eu, 0x02f7f7f5u, 0x4fcccc83u, 0x5c343468u, 0xf4a5a551u,
    0x34e5e5d1u, 0x08f1f1f9u, 0x937171e2u, 0x73d8d8abu, 0x53313162u, 0x3f15152au,
    0x0c040408u, 0x52c7c795u, 0x65232346u, 0x5ec3c39du, 0x28181830u, 0xa1969637u,
    0x0f05050au, 0xb59a9a2fu, 0x0907070eu, 0x36121224u, 0x9b80801bu, 0x3de2e2dfu,
    0x26ebebcdu, 0x6927274eu, 0xcdb2b27fu, 0x9f7575eau, 0x1b090912u, 0x9e83831du,
    0x742c2c58u, 0x2e1a1a34u, 0x2d1b1b36u, 0xb26e6edcu, 0xee5a5ab4u, 0xfba0a05bu,
    0xf65252a4u, 0x4d3b3b76u, 0x61d6d6b7u, 0xceb3b37du, 0x7b292952u, 0x3ee3e3ddu,
    0x712f2f5eu, 0x97848413u, 0xf55353a6u, 0x68d1d1b9u, 0x00000000u, 0x2cededc1u,
    0x60202040u, 0x1ffcfce3u, 0xc8b1b179u, 0xed5b5bb6u, 0xbe6a6ad4u, 0x46cbcb8du,
    0xd9bebe67u, 0x4b393972u, 0xde4a4a94u, 0xd44c4c98u, 0xe85858b0u, 0x4acfcf85u,
    0x6bd0d0bbu, 0x2aefefc5u, 0xe5aaaa4fu, 0x16fbfbedu, 0xc5434386u, 0xd74d4d9au,
    0x55333366u, 0x94858511u, 0xcf45458au, 0x10f9f9e9u, 0x06020204u, 0x817f7ffeu,
    0xf05050a0u, 0x443c3c78u, 0xba9f9f25u, 0xe3a8a84bu, 0xf35151a2u, 0xfea3a35du,
    0xc0404080u, 0x8a8f8f05u, 0xad92923fu, 0xbc9d9d21u, 0x48383870u, 0x04f5f5f1u,
    0xdfbcbc63u, 0xc1b6b677u, 0x75dadaafu, 0x63212142u, 0x30101020u, 0x1affffe5u,
    0x0ef3f3fdu, 0x6dd2d2bfu, 0x4ccdcd81u, 0x140c0c18u, 0x35131326u, 0x2fececc3u,
    0xe15f5fbeu, 0xa2979735u, 0xcc444488u, 0x3917172eu, 0x57c4c493u, 0xf2a7a755u,
    0x827e7efcu, 0x473d3d7au, 0xac6464c8u, 0xe75d5dbau, 0x2b191932u, 0x957373e6u,
    0xa06060c0u, 0x98818119u, 0xd14f4f9eu, 0x7fdcdca3u, 0x66222244u, 0x7e2a2a54u,
    0xab90903bu, 0x8388880bu, 0xca46468cu, 0x29eeeec7u, 0xd3b8b86bu, 0x3c141428u,
    0x79dedea7u, 0xe25e5ebcu, 0x1d0b0b16u, 0x76dbdbadu, 0x3be0e0dbu, 0x56323264u,
    0x4e3a3a74u, 0x1e0a0a14u, 0xdb494992u, 0x0a06060cu, 0x6c242448u, 0xe45c5cb8u,
    0x5dc2c29fu, 0x6ed3d3bdu, 0xefacac43u, 0xa66262c4u, 0xa8919139u, 0xa4959531u,
    0x37e4e4d3u, 0x8b7979f2u, 0x32e7e7d5u, 0x43c8c88bu, 0x5937376eu, 0xb76d6ddau,
    0x8c8d8d01u, 0x64d5d5b1u, 0xd24e4e9cu, 0xe0a9a949u, 0xb46c6cd8u, 0xfa5656acu,
    0x07f4f4f3u, 0x25eaeacfu, 0xaf6565cau, 0x8e7a7af4u, 0xe9aeae47u, 0x18080810u,
    0xd5baba6fu, 0x887878f0u, 0x6f25254au, 0x722e2e5cu, 0x241c1c38u, 0xf1a6a657u,
    0xc7b4b473u, 0x51c6c697u, 0x23e8e8cbu, 0x7cdddda1u, 0x9c7474e8u, 0x211f1f3eu,
    0xdd4b4b96u, 0xdcbdbd61u, 0x868b8b0du, 0x858a8a0fu, 0x907070e0u, 0x423e3e7cu,
    0xc4b5b571u, 0xaa6666ccu, 0xd8484890u, 0x05030306u, 0x01f6f6f7u, 0x120e0e1cu,
    0xa36161c2u, 0x5f35356au, 0xf95757aeu, 0xd0b9b969u, 0x91868617u, 0x58c1c199u,
    0x271d1d3au, 0xb99e9e27u, 0x38e1e1d9u, 0x13f8f8ebu, 0xb398982bu, 0x33111122u,
    0xbb6969d2u, 0x70d9d9a9u, 0x898e8e07u, 0xa7949433u, 0xb69b9b2du, 0x221e1e3cu,
    0x92878715u, 0x20e9e9c9u, 0x49cece87u, 0xff5555aau, 0x78282850u, 0x7adfdfa5u,
    0x8f8c8c03u, 0xf8a1a159u, 0x80898909u, 0x170d0d1au, 0xdabfbf65u, 0x31e6e6d7u,
    0xc6424284u, 0xb86868d0u, 0xc3414182u, 0xb0999929u, 0x772d2d5au, 0x110f0f1eu,
    0xcbb0b07bu, 0xfc5454a8u, 0xd6bbbb6du, 0x3a16162cu,
};

/* The three fixed public PRG keys of fss2pc (prg.rs FIXED_KEYS): "mpcflow/fss/prg" + L, R, V. */
MPCF_CONSTANT u8 mpcf_prg_keys[48] = {
    'm', 'p', 'c', 'f', 'l', 'o', 'w', '/', 'f', 's', 's', '/', 'p', 'r', 'g', 'L',
    'm', 'p', 'c', 'f', 'l', 'o', 'w', '/', 'f', 's', 's', '/', 'p', 'r', 'g', 'R',
    'm', 'p', 'c', 'f', 'l', 'o', 'w', '/', 'f', 's', 's', '/', 'p', 'r', 'g', 'V',
};

/* Words per expanded AES-128 key (11 round keys of 4 words) and for the three PRG keys. */
#define MPCF_RK_WORDS 44u
#define MPCF_PRG_RK_WORDS 132u
/* Words of the four T-tables in shared memory. */
#define MPCF_TAB_WORDS 1024u

/* ------------------------------------------------------------------------------------------ */
/* AES-128 (encryption only) and the MMO PRG                                                    */
/* ------------------------------------------------------------------------------------------ */

MPCF_DEVICE u32 mpcf_rotl32(u32 v, u32 r) {
    return (v << r) | (v >> (32u - r));
}

/* S-box(x) from the constant table (key expansion only; the rounds use the shared copy). */
MPCF_DEVICE u32 mpcf_sbox_const(u32 x) {
    return (mpcf_te0[x & 0xffu] >> 8) & 0xffu;
}

/* SubWord: the S-box on each byte of a word. */
MPCF_DEVICE u32 mpcf_sub_word(u32 w) {
    return mpcf_sbox_const(w) | (mpcf_sbox_const(w >> 8) << 8) | (mpcf_sbox_const(w >> 16) << 16) |
           (mpcf_sbox_const(w >> 24) << 24);
}

/*
 * FIPS-197 key expansion of a 16-byte key into 44 little-endian words w[0..44) (see
 * CONVENTIONS). RotWord moves byte 1 to byte 0, which on a little-endian word is a rotation
 * right by 8; Rcon goes into byte 0 (the low byte) and is doubled in GF(2^8) each round
 * (01, 02, 04, ..., 80, 1b, 36).
 */
MPCF_DEVICE void mpcf_expand_key(const u8 *key, u32 *w) {
    u32 i;
    u32 rcon = 1u;
    for (i = 0; i < 4u; ++i) {
        w[i] = (u32)key[4u * i] | ((u32)key[4u * i + 1u] << 8) | ((u32)key[4u * i + 2u] << 16) |
               ((u32)key[4u * i + 3u] << 24);
    }
    for (i = 4; i < MPCF_RK_WORDS; ++i) {
        u32 temp = w[i - 1u];
        if ((i & 3u) == 0u) {
            temp = mpcf_sub_word((temp >> 8) | (temp << 24)) ^ rcon;
            rcon = ((rcon << 1) ^ ((rcon & 0x80u) ? 0x1bu : 0u)) & 0xffu;
        }
        w[i] = w[i - 4u] ^ temp;
    }
}

/*
 * Cooperative start of every AES kernel: the four T-tables into tab[0..1024) (Te_r at
 * tab[256r ..]) and the three expanded PRG keys into rks[0..132), one word per thread of the
 * block (in emulation: all of it, by every emulated thread). The caller must MPCF_SYNC() after.
 */
MPCF_DEVICE void mpcf_load_aes(u32 *tab, u32 *rks, const u32 *rk) {
    u32 j;
    for (j = MPCF_LOCAL_ID(); j < 256u; j += MPCF_LOCAL_SIZE()) {
        u32 v = mpcf_te0[j];
        tab[j] = v;
        tab[256u + j] = mpcf_rotl32(v, 8);
        tab[512u + j] = mpcf_rotl32(v, 16);
        tab[768u + j] = mpcf_rotl32(v, 24);
    }
    for (j = MPCF_LOCAL_ID(); j < MPCF_PRG_RK_WORDS; j += MPCF_LOCAL_SIZE()) {
        rks[j] = rk[j];
    }
}

/* The S-box through the shared Te0 (byte 1), for the last round. */
MPCF_DEVICE u32 mpcf_sbox(const u32 *tab, u32 x) {
    return (tab[x & 0xffu] >> 8) & 0xffu;
}

/*
 * AES-128 encryption of the block whose little-endian column words are (c0, c1, c2, c3), in
 * place. tab: the shared T-tables; rk: 44 round-key words. Round r, output column j: row i comes
 * from input column (j + i) mod 4 (ShiftRows) and contributes Te_i[that byte] (SubBytes and
 * MixColumns); the last round has no MixColumns, so it uses the S-box bytes directly.
 */
MPCF_DEVICE void mpcf_aes_encrypt(const u32 *tab, const u32 *rk, u32 *c0, u32 *c1, u32 *c2, u32 *c3) {
    const u32 *t0 = tab;
    const u32 *t1 = tab + 256;
    const u32 *t2 = tab + 512;
    const u32 *t3 = tab + 768;
    u32 s0 = *c0 ^ rk[0];
    u32 s1 = *c1 ^ rk[1];
    u32 s2 = *c2 ^ rk[2];
    u32 s3 = *c3 ^ rk[3];
    u32 r;
    MPCF_UNROLL
    for (r = 1; r < 10u; ++r) {
        const u32 *k = rk + 4u * r;
        u32 n0 = t0[s0 & 0xffu] ^ t1[(s1 >> 8) & 0xffu] ^ t2[(s2 >> 16) & 0xffu] ^ t3[s3 >> 24] ^ k[0];
        u32 n1 = t0[s1 & 0xffu] ^ t1[(s2 >> 8) & 0xffu] ^ t2[(s3 >> 16) & 0xffu] ^ t3[s0 >> 24] ^ k[1];
        u32 n2 = t0[s2 & 0xffu] ^ t1[(s3 >> 8) & 0xffu] ^ t2[(s0 >> 16) & 0xffu] ^ t3[s1 >> 24] ^ k[2];
        u32 n3 = t0[s3 & 0xffu] ^ t1[(s0 >> 8) & 0xffu] ^ t2[(s1 >> 16) & 0xffu] ^ t3[s2 >> 24] ^ k[3];
        s0 = n0;
        s1 = n1;
        s2 = n2;
        s3 = n3;
    }
    *c0 = (mpcf_sbox(tab, s0) | (mpcf_sbox(tab, s1 >> 8) << 8) | (mpcf_sbox(tab, s2 >> 16) << 16) |
           (mpcf_sbox(tab, s3 >> 24) << 24)) ^
          rk[40];
    *c1 = (mpcf_sbox(tab, s1) | (mpcf_sbox(tab, s2 >> 8) << 8) | (mpcf_sbox(tab, s3 >> 16) << 16) |
           (mpcf_sbox(tab, s0 >> 24) << 24)) ^
          rk[41];
    *c2 = (mpcf_sbox(tab, s2) | (mpcf_sbox(tab, s3 >> 8) << 8) | (mpcf_sbox(tab, s0 >> 16) << 16) |
           (mpcf_sbox(tab, s1 >> 24) << 24)) ^
          rk[42];
    *c3 = (mpcf_sbox(tab, s3) | (mpcf_sbox(tab, s0 >> 8) << 8) | (mpcf_sbox(tab, s1 >> 16) << 16) |
           (mpcf_sbox(tab, s2 >> 24) << 24)) ^
          rk[43];
}

/* One Matyas-Meyer-Oseas call, fss2pc's Prg::mmo: AES_k(s) XOR s (rk = that key's 44 words). */
MPCF_DEVICE mpcf_u128 mpcf_mmo(const u32 *tab, const u32 *rk, mpcf_u128 s) {
    u32 c0 = (u32)s.lo;
    u32 c1 = (u32)(s.lo >> 32);
    u32 c2 = (u32)s.hi;
    u32 c3 = (u32)(s.hi >> 32);
    mpcf_u128 o;
    mpcf_aes_encrypt(tab, rk, &c0, &c1, &c2, &c3);
    o.lo = ((u64)c0 | ((u64)c1 << 32)) ^ s.lo;
    o.hi = ((u64)c2 | ((u64)c3 << 32)) ^ s.hi;
    return o;
}

/* ------------------------------------------------------------------------------------------ */
/* Little-endian byte access (key bytes lie at arbitrary offsets: key_len is any number)        */
/* ------------------------------------------------------------------------------------------ */

MPCF_DEVICE u64 mpcf_ld_u64(const u8 *p) {
    u64 v = 0;
    u32 i;
    MPCF_UNROLL
    for (i = 0; i < 8u; ++i) {
        v |= (u64)p[i] << (8u * i);
    }
    return v;
}

MPCF_DEVICE mpcf_u128 mpcf_ld_u128(const u8 *p) {
    mpcf_u128 v;
    v.lo = mpcf_ld_u64(p);
    v.hi = mpcf_ld_u64(p + 8);
    return v;
}

MPCF_DEVICE void mpcf_st_u64(u8 *p, u64 v) {
    u32 i;
    MPCF_UNROLL
    for (i = 0; i < 8u; ++i) {
        p[i] = (u8)(v >> (8u * i));
    }
}

/* All ones if the low bit of t is set, else zero (fss2pc's mask64 / mask128 halves). */
MPCF_DEVICE u64 mpcf_mask(u64 t) {
    return (u64)0 - (t & 1u);
}

/* (-1)^b * v in Z(2^64) for b in {0, 1} (fss2pc's `signed`). */
MPCF_DEVICE u64 mpcf_signed(u64 b, u64 v) {
    u64 m = mpcf_mask(b);
    return (v ^ m) - m;
}

/* ------------------------------------------------------------------------------------------ */
/* Kernels                                                                                      */
/* ------------------------------------------------------------------------------------------ */

/*
 * Expands the three fixed PRG keys (kL, kR, kV) into rk[0..132) (layout: see CONVENTIONS).
 * Launched with one thread (a single block of 1); the result stays on the device and is the
 * `rk` argument of every other AES kernel. No shared memory and no sync, so the early return
 * of extra threads is harmless.
 */
MPCF_KERNEL void mpcf_prg_round_keys(u32 *rk) {
    u32 k;
    if (MPCF_GLOBAL_ID() != 0u) {
        return;
    }
    for (k = 0; k < 3u; ++k) {
        mpcf_expand_key(mpcf_prg_keys + 16u * k, rk + MPCF_RK_WORDS * k);
    }
}

/*
 * out block i = AES_k(in block i) XOR in block i, k = PRG key `which` (0 = kL, 1 = kR, 2 = kV);
 * blocks are 16 bytes (a u128 in little-endian). items = count. `in` and `out` may be the same
 * buffer (each thread reads its block before writing it). which > 2 writes nothing.
 */
MPCF_KERNEL void mpcf_aes_mmo(const u32 *rk, u32 which, const u8 *in, u8 *out, u64 count) {
    MPCF_SHARED u32 tab[MPCF_TAB_WORDS];
    MPCF_SHARED u32 rks[MPCF_PRG_RK_WORDS];
    u64 gid = MPCF_GLOBAL_ID();
    mpcf_u128 o;
    mpcf_load_aes(tab, rks, rk);
    MPCF_SYNC();
    if (gid >= count || which > 2u) {
        return;
    }
    o = mpcf_mmo(tab, rks + MPCF_RK_WORDS * which, mpcf_ld_u128(in + 16u * gid));
    mpcf_st_u64(out + 16u * gid, o.lo);
    mpcf_st_u64(out + 16u * gid + 8u, o.hi);
}

/*
 * One level of the tree walk shared by DCF and DPF evaluation, at path bit `bit`: the child
 * c = AES_k(bit)(s) ^ s, then the next seed c ^ (t ? seed CW : 0) with its lowest bit (the
 * control-bit position; ignored in the CW, as fss2pc's key format says) cleared, and the next
 * control bit c.lo & 1 ^ (t & the direction's control-bit CW).
 */
MPCF_DEVICE void mpcf_tree_step(const u32 *tab, const u32 *rks, const u8 *seed_cws, const u8 *ctrl, u32 level,
                                u64 bit, mpcf_u128 *s, u64 *t) {
    mpcf_u128 c = mpcf_mmo(tab, rks + MPCF_RK_WORDS * (u32)bit, *s);
    mpcf_u128 cw = mpcf_ld_u128(seed_cws + 16u * level);
    u64 t_cw = ((u64)ctrl[level >> 2] >> (2u * (level & 3u) + (u32)bit)) & 1u;
    u64 m = mpcf_mask(*t);
    s->lo = (c.lo ^ (cw.lo & m)) & ~(u64)1;
    s->hi = c.hi ^ (cw.hi & m);
    *t = (c.lo & 1u) ^ (*t & t_cw);
}

/*
 * DCF (words = 1) or DCF2 (words = 2) evaluation, one key per thread: party `party`'s share of
 * key i at xs[i] into out[i*words .. i*words + words). items = count.
 *
 * Key i is keys[i*key_len .. (i+1)*key_len), fss2pc's serialised layout (fss/batch.rs):
 *   tag (1) | n (1) | root seed (16) | n x seed CW (16) | n x value CW (8 words) |
 *   control-bit CWs (ceil(2n/8); bit 2l = t_L, bit 2l+1 = t_R of level l) | final CW (8 words),
 * all little-endian, key_len = 18 + (16 + 8 words) n + ceil(n/4) + 8 words. The tag and n bytes
 * are not read (n_bits is an argument; the host validated the batch). xs[i] must be < 2^n_bits
 * (the host checks; higher bits would be ignored). Inconsistent arguments (n_bits outside
 * 1..=64, words not 1 or 2, party not 0 or 1, key_len not the length above) write nothing.
 *
 * Mirrors fss2pc's batch::eval_one step for step: per level, with bit = bit (n-1-level) of x,
 *   child  = MMO_{kL or kR}(s)                      (seed = child with bit 0 cleared, t' = bit 0)
 *   value  = DCF:  MMO_kV(s), low 64 bits if bit = 0 else high 64
 *            DCF2: MMO_kV(s | bit), both halves
 *   acc   += value + (value CW of the level if t)
 *   s      = seed XOR (seed CW if t),   t = t' XOR (t AND t_L or t_R of the level)
 * then acc += Convert(s) + (final CW if t) with Convert = high 64 bits of s (DCF) or MMO_kV(s)
 * (DCF2), and the result is (-1)^party * acc. 2n (+1 for DCF2) AES blocks per thread, in one
 * dependent chain; the point bits select round keys, not code paths, so warps do not diverge.
 */
MPCF_KERNEL void mpcf_dcf_eval(const u32 *rk, const u8 *keys, u64 count, u32 key_len, u32 n_bits, u32 words,
                               u32 party, const u64 *xs, u64 *out) {
    MPCF_SHARED u32 tab[MPCF_TAB_WORDS];
    MPCF_SHARED u32 rks[MPCF_PRG_RK_WORDS];
    u64 gid = MPCF_GLOBAL_ID();
    const u8 *key;
    const u8 *seed_cws;
    const u8 *value_cws;
    const u8 *ctrl;
    const u8 *fin;
    const u32 *rk_v = rks + 2u * MPCF_RK_WORDS;
    mpcf_u128 s;
    u64 t, x, acc0 = 0, acc1 = 0, m;
    u32 level;
    mpcf_load_aes(tab, rks, rk);
    MPCF_SYNC();
    if (gid >= count || n_bits < 1u || n_bits > 64u || (words != 1u && words != 2u) || party > 1u ||
        key_len != 18u + (16u + 8u * words) * n_bits + (n_bits + 3u) / 4u + 8u * words) {
        return;
    }
    key = keys + gid * key_len;
    seed_cws = key + 18;
    value_cws = seed_cws + 16u * n_bits;
    ctrl = value_cws + 8u * words * n_bits;
    fin = ctrl + (n_bits + 3u) / 4u;
    s = mpcf_ld_u128(key + 2);
    t = party;
    x = xs[gid];
    for (level = 0; level < n_bits; ++level) {
        u64 bit = (x >> (n_bits - 1u - level)) & 1u;
        m = mpcf_mask(t);
        if (words == 1u) {
            mpcf_u128 v = mpcf_mmo(tab, rk_v, s);
            acc0 += (bit ? v.hi : v.lo) + (mpcf_ld_u64(value_cws + 8u * level) & m);
        } else {
            mpcf_u128 in = s;
            mpcf_u128 v;
            in.lo |= bit;
            v = mpcf_mmo(tab, rk_v, in);
            acc0 += v.lo + (mpcf_ld_u64(value_cws + 16u * level) & m);
            acc1 += v.hi + (mpcf_ld_u64(value_cws + 16u * level + 8u) & m);
        }
        mpcf_tree_step(tab, rks, seed_cws, ctrl, level, bit, &s, &t);
    }
    m = mpcf_mask(t);
    if (words == 1u) {
        acc0 += s.hi + (mpcf_ld_u64(fin) & m);
        out[gid] = mpcf_signed(party, acc0);
    } else {
        mpcf_u128 conv = mpcf_mmo(tab, rk_v, s);
        acc0 += conv.lo + (mpcf_ld_u64(fin) & m);
        acc1 += conv.hi + (mpcf_ld_u64(fin + 8) & m);
        out[2u * gid] = mpcf_signed(party, acc0);
        out[2u * gid + 1u] = mpcf_signed(party, acc1);
    }
}

/*
 * DPF evaluation, one key per thread: party `party`'s share of key i at xs[i] into out[i].
 * items = count. Key layout (fss2pc dpf.rs to_bytes):
 *   tag 'P' (1) | n (1) | root seed (16) | n x seed CW (16) | control-bit CWs (ceil(2n/8)) |
 *   final CW (8), key_len = 18 + 16n + ceil(n/4) + 8.
 * Same walk as the DCF without values: n AES blocks per thread; the result is
 * (-1)^party * (Convert(s) + (final CW if t)), Convert = high 64 bits of the leaf seed.
 * Inconsistent arguments (n_bits outside 1..=64, party > 1, wrong key_len) write nothing.
 */
MPCF_KERNEL void mpcf_dpf_eval(const u32 *rk, const u8 *keys, u64 count, u32 key_len, u32 n_bits, u32 party,
                               const u64 *xs, u64 *out) {
    MPCF_SHARED u32 tab[MPCF_TAB_WORDS];
    MPCF_SHARED u32 rks[MPCF_PRG_RK_WORDS];
    u64 gid = MPCF_GLOBAL_ID();
    const u8 *key;
    const u8 *seed_cws;
    const u8 *ctrl;
    mpcf_u128 s;
    u64 t, x, m;
    u32 level;
    mpcf_load_aes(tab, rks, rk);
    MPCF_SYNC();
    if (gid >= count || n_bits < 1u || n_bits > 64u || party > 1u ||
        key_len != 18u + 16u * n_bits + (n_bits + 3u) / 4u + 8u) {
        return;
    }
    key = keys + gid * key_len;
    seed_cws = key + 18;
    ctrl = seed_cws + 16u * n_bits;
    s = mpcf_ld_u128(key + 2);
    t = party;
    x = xs[gid];
    for (level = 0; level < n_bits; ++level) {
        mpcf_tree_step(tab, rks, seed_cws, ctrl, level, (x >> (n_bits - 1u - level)) & 1u, &s, &t);
    }
    m = mpcf_mask(t);
    out[gid] = mpcf_signed(party, s.hi + (mpcf_ld_u64(ctrl + (n_bits + 3u) / 4u) & m));
}

/*
 * C = A * B in Z(2^64) (wrapping), row-major, A m x k, B k x n, C m x n. items = m*n, thread g
 * computes C[g / n][g % n]. Naive: consecutive threads of a warp share A's row (one broadcast
 * load) and read consecutive B columns (coalesced), but every A and B word is fetched from
 * global memory (through L1/L2) once per output it feeds. A tiled version (16x16 tiles of A and
 * B staged in shared memory, as in the CUDA programming guide) would cut that traffic by the
 * tile size; 64-bit multiplies are several 32-bit IMADs on current GPUs either way.
 */
MPCF_KERNEL void mpcf_ring_matmul(const u64 *a, const u64 *b, u64 *c, u64 m, u64 k, u64 n) {
    u64 gid = MPCF_GLOBAL_ID();
    u64 r, col, j, acc = 0;
    if (gid >= m * n) {
        return;
    }
    r = gid / n;
    col = gid % n;
    for (j = 0; j < k; ++j) {
        acc += a[r * k + j] * b[j * n + col];
    }
    c[gid] = acc;
}

/*
 * 2-D convolution (cross-correlation, as in fss2pc's linalg::conv2d) in Z(2^64): x is
 * [batch, c, h, wd] (NCHW), w is [o, c, kh, kw], y is [batch, o, oh, ow]; stride (sh, sw), zero
 * padding (ph, pw) on each side, no dilation, groups or bias. items = batch*o*oh*ow, thread g
 * computes output element g (row-major). Taps that fall into the padding are skipped, so no
 * input is read out of bounds whatever oh and ow are (the host computes them:
 * oh = (h + 2ph - kh) / sh + 1). Naive like mpcf_ring_matmul: neighbouring threads read
 * neighbouring input columns (coalesced for sw = 1) and the same weights (broadcast); an im2col
 * + tiled matmul or shared-memory input tiles would reuse loads.
 */
MPCF_KERNEL void mpcf_ring_conv2d(const u64 *x, const u64 *w, u64 *y, u32 batch, u32 c, u32 h, u32 wd, u32 o,
                                  u32 kh, u32 kw, u32 oh, u32 ow, u32 sh, u32 sw, u32 ph, u32 pw) {
    u64 gid = MPCF_GLOBAL_ID();
    u64 g, ox, oy, oc, bi, ci, ky, kx, acc = 0;
    if (gid >= (u64)batch * o * oh * ow) {
        return;
    }
    g = gid;
    ox = g % ow;
    g /= ow;
    oy = g % oh;
    g /= oh;
    oc = g % o;
    bi = g / o;
    for (ci = 0; ci < c; ++ci) {
        const u64 *xin = x + (bi * c + ci) * h * wd;
        const u64 *win = w + (oc * c + ci) * kh * kw;
        for (ky = 0; ky < kh; ++ky) {
            u64 iy = oy * sh + ky;
            if (iy < ph || iy - ph >= h) {
                continue;
            }
            for (kx = 0; kx < kw; ++kx) {
                u64 ix = ox * sw + kx;
                if (ix < pw || ix - pw >= wd) {
                    continue;
                }
                acc += xin[(iy - ph) * wd + (ix - pw)] * win[ky * kw + kx];
            }
        }
    }
    y[gid] = acc;
}

/* The low `bits` bits set (bits in 1..=64). */
MPCF_DEVICE u64 mpcf_low_bits(u32 bits) {
    return bits >= 64u ? ~(u64)0 : (((u64)1 << bits) - 1u);
}

/*
 * Packs `count` values of `bits` bits (1..=64; higher input bits ignored) back to back: value i
 * is stream bits [i*bits, (i+1)*bits), stream bit j is bit j % 64 of word j / 64. items =
 * ceil(count*bits / 64): thread g assembles output word g from the (at most 64/bits + 2) values
 * that overlap it, so no two threads write the same word and no atomics are needed. Bits past
 * the last value are zero. bits outside 1..=64 writes nothing.
 */
MPCF_KERNEL void mpcf_pack_bits(const u64 *in, u64 count, u32 bits, u64 *out) {
    u64 gid = MPCF_GLOBAL_ID();
    u64 lo, hi, i, last, word = 0;
    if (bits < 1u || bits > 64u || gid >= (count * bits + 63u) / 64u) {
        return;
    }
    lo = 64u * gid;  /* first stream bit of this word */
    hi = lo + 64u;   /* one past its last */
    last = (hi + bits - 1u) / bits; /* one past the last value starting before hi */
    if (last > count) {
        last = count;
    }
    for (i = lo / bits; i < last; ++i) {
        u64 v = in[i] & mpcf_low_bits(bits);
        u64 start = i * bits;
        if (start >= lo) {
            word |= v << (start - lo); /* start - lo < 64 */
        } else {
            word |= v >> (lo - start); /* 0 < lo - start < bits <= 64: the value straddles lo */
        }
    }
    out[gid] = word;
}

/*
 * Inverse of mpcf_pack_bits: value i of the packed stream into out[i] (zero-extended). items =
 * count. A value touches at most two words. bits outside 1..=64 writes nothing.
 */
MPCF_KERNEL void mpcf_unpack_bits(const u64 *in, u64 count, u32 bits, u64 *out) {
    u64 gid = MPCF_GLOBAL_ID();
    u64 start, wi, off, v;
    if (bits < 1u || bits > 64u || gid >= count) {
        return;
    }
    start = gid * bits;
    wi = start / 64u;
    off = start % 64u;
    v = in[wi] >> off;
    if (off + bits > 64u) {
        v |= in[wi + 1u] << (64u - off); /* off > 0 here, so the shift is 1..63 */
    }
    out[gid] = v & mpcf_low_bits(bits);
}

/* ------------------------------------------------------------------------------------------ */
/* Emulation runners (plain C only)                                                             */
/* ------------------------------------------------------------------------------------------ */

#ifdef MPCF_EMULATE
/*
 * mpcf_emu_<kernel>(threads, <kernel arguments>) runs the kernel for gid = 0 .. threads-1, one
 * after another, on the calling OS thread. `threads` plays the role of grid size x block size,
 * so tests pass a multiple of 256 larger than the item count to exercise the `gid >= items`
 * guards.
 */

void mpcf_emu_prg_round_keys(u64 threads, u32 *rk) {
    for (mpcf_emu_gid = 0; mpcf_emu_gid < threads; ++mpcf_emu_gid) {
        mpcf_prg_round_keys(rk);
    }
}

void mpcf_emu_aes_mmo(u64 threads, const u32 *rk, u32 which, const u8 *in, u8 *out, u64 count) {
    for (mpcf_emu_gid = 0; mpcf_emu_gid < threads; ++mpcf_emu_gid) {
        mpcf_aes_mmo(rk, which, in, out, count);
    }
}

void mpcf_emu_dcf_eval(u64 threads, const u32 *rk, const u8 *keys, u64 count, u32 key_len, u32 n_bits, u32 words,
                       u32 party, const u64 *xs, u64 *out) {
    for (mpcf_emu_gid = 0; mpcf_emu_gid < threads; ++mpcf_emu_gid) {
        mpcf_dcf_eval(rk, keys, count, key_len, n_bits, words, party, xs, out);
    }
}

void mpcf_emu_dpf_eval(u64 threads, const u32 *rk, const u8 *keys, u64 count, u32 key_len, u32 n_bits, u32 party,
                       const u64 *xs, u64 *out) {
    for (mpcf_emu_gid = 0; mpcf_emu_gid < threads; ++mpcf_emu_gid) {
        mpcf_dpf_eval(rk, keys, count, key_len, n_bits, party, xs, out);
    }
}

void mpcf_emu_ring_matmul(u64 threads, const u64 *a, const u64 *b, u64 *c, u64 m, u64 k, u64 n) {
    for (mpcf_emu_gid = 0; mpcf_emu_gid < threads; ++mpcf_emu_gid) {
        mpcf_ring_matmul(a, b, c, m, k, n);
    }
}

void mpcf_emu_ring_conv2d(u64 threads, const u64 *x, const u64 *w, u64 *y, u32 batch, u32 c, u32 h, u32 wd, u32 o,
                          u32 kh, u32 kw, u32 oh, u32 ow, u32 sh, u32 sw, u32 ph, u32 pw) {
    for (mpcf_emu_gid = 0; mpcf_emu_gid < threads; ++mpcf_emu_gid) {
        mpcf_ring_conv2d(x, w, y, batch, c, h, wd, o, kh, kw, oh, ow, sh, sw, ph, pw);
    }
}

void mpcf_emu_pack_bits(u64 threads, const u64 *in, u64 count, u32 bits, u64 *out) {
    for (mpcf_emu_gid = 0; mpcf_emu_gid < threads; ++mpcf_emu_gid) {
        mpcf_pack_bits(in, count, bits, out);
    }
}

void mpcf_emu_unpack_bits(u64 threads, const u64 *in, u64 count, u32 bits, u64 *out) {
    for (mpcf_emu_gid = 0; mpcf_emu_gid < threads; ++mpcf_emu_gid) {
        mpcf_unpack_bits(in, count, bits, out);
    }
}

/*
 * Test hooks for the FIPS-197 known-answer tests, which use keys other than the PRG keys:
 * the key expansion of an arbitrary 16-byte key into 44 words, and one AES encryption with
 * those words through the same table load and round function as the kernels.
 */
void mpcf_emu_expand_key(const u8 *key, u32 *rk) {
    mpcf_expand_key(key, rk);
}

void mpcf_emu_aes_encrypt(const u32 *rk44, const u8 *in, u8 *out) {
    static _Thread_local u32 tab[MPCF_TAB_WORDS];
    static _Thread_local u32 rks[MPCF_PRG_RK_WORDS];
    u32 all[MPCF_PRG_RK_WORDS];
    u32 i, c[4];
    for (i = 0; i < MPCF_PRG_RK_WORDS; ++i) {
        all[i] = rk44[i % MPCF_RK_WORDS];
    }
    mpcf_load_aes(tab, rks, all);
    for (i = 0; i < 4u; ++i) {
        c[i] = (u32)in[4u * i] | ((u32)in[4u * i + 1u] << 8) | ((u32)in[4u * i + 2u] << 16) |
               ((u32)in[4u * i + 3u] << 24);
    }
    mpcf_aes_encrypt(tab, rks, &c[0], &c[1], &c[2], &c[3]);
    for (i = 0; i < 16u; ++i) {
        out[i] = (u8)(c[i / 4u] >> (8u * (i % 4u)));
    }
}
#endif /* MPCF_EMULATE */
