//! Tables read with XOR shares of a one-hot vector: the secret-index lookup of the parent
//! module without its key expansion, for a round more.
//!
//! # Why
//!
//! A table key gives the parties additive shares of `β·e_α` at every point of its domain, so
//! a rotated dot product is a share of `β·T[j]` with no interaction, but each party expands
//! `W·2^n` pseudorandom ring words for it: `W·2^(n−1)` AES blocks per key (192 of the 222 a
//! lookup's 7-bit, three-word key costs), most of a lookup's evaluation. On a domain this small
//! the point function needs no tree at all: the dealer XOR-shares the `2^n`-bit one-hot vector
//! `e_α` itself (party 0's share `u₀` expanded from its seed, party 1 sent `u₁ = u₀ ⊕ e_α`,
//! 16 bytes at `n = 7`), as Sigma's code switches its DPFs to a secret-shared table on domains
//! of at most 7 bits (Gupta et al., "SIGMA: Secure GPT Inference with Function Secret
//! Sharing", PETS 2024; `GPUSSTabKey` in EzPC's `GPU-MPC`).
//!
//! # What the parties compute
//!
//! With `D_b = Σ_{x : u_b(x) = 1} T[(ĵ − x) mod 2^n]`, party 0 outputs `−D₀` and party 1 `D₁`:
//! off `α` the two shares agree and the terms cancel, at `α` exactly one of them is set, so the
//! outputs add up to `σ·T[ĵ − α]` with `σ = 1 − 2·u₀(α) = ±1`. At `α = r mod 2^n`, the mask
//! of the index `j`, that is `σ·T[j]`: a sum of masked table entries per table, no AES.
//!
//! The sign `σ` is the dealer's secret and must stay one: it tells on which half of party 0's
//! share `α` lies. The caller multiplies it out with shares the dealer makes from it, which
//! takes one opening (see the lookup gate in `mpcflow_fss_gates`). That round, against the
//! table key's expansion, is the trade: a planner takes this form where a round is cheap.
//!
//! # Security
//!
//! Each party's share alone is uniform and independent of `α`: `u₀` is expanded from a seed
//! only party 0 and the dealer hold, and `u₁` is `u₀` (which party 1 never sees) XOR a fixed
//! vector. What the parties open afterwards is masked by the dealer (see the gate).
//!
//! # Layout
//!
//! A share is [`words`] 64-bit words per element, bit `x mod 64` of word `x / 64` the share at
//! point `x`; bits past `2^n` (domains under 6 bits) are never read.

use super::{FssError, MAX_TABLE_BITS};

/// Words of one element's share over a `2^n_bits`-point domain.
pub const fn words(n_bits: u32) -> usize {
    (1usize << n_bits).div_ceil(64)
}

/// Points per AVX-512 register of table words.
#[cfg(target_arch = "x86_64")]
const LANES: usize = 8;

/// Party `party`'s shares of `σ_i·T_a[j_i]` for every element `i` and table `a`, into `out`
/// (element-major: `tables.len()` words per element): `−Σ` (party 0) or `+Σ` (party 1) of
/// `tables[a][offsets[i] + x]` over the points `x` set in the element's share (see the module
/// docs). Each table is stored reversed and doubled by the caller (the rotation by the public
/// masked index is then the contiguous run at the element's offset) and must hold
/// `offsets[i] + 2^n_bits` entries.
pub fn dots(
    party: u8,
    shares: &[u64],
    n_bits: u32,
    tables: &[&[u64]],
    offsets: &[usize],
    out: &mut [u64],
) -> Result<(), FssError> {
    if n_bits > MAX_TABLE_BITS {
        return Err(FssError::DomainTooLarge { n_bits, max: MAX_TABLE_BITS });
    }
    let n = offsets.len();
    let per = words(n_bits);
    let size = 1usize << n_bits;
    if shares.len() != n * per {
        return Err(FssError::LengthMismatch { what: "one-hot share words", expected: n * per, got: shares.len() });
    }
    if out.len() != n * tables.len() {
        return Err(FssError::LengthMismatch { what: "one-hot sums", expected: n * tables.len(), got: out.len() });
    }
    let need = offsets.iter().max().map_or(0, |o| o + size);
    if let Some(short) = tables.iter().find(|t| t.len() < need) {
        return Err(FssError::LengthMismatch { what: "table entries", expected: need, got: short.len() });
    }
    let negate = party == 0;
    #[cfg(target_arch = "x86_64")]
    if size >= LANES
        && std::arch::is_x86_feature_detected!("avx512f")
        && let Some(tables) = <&[&[u64]; 3]>::try_from(tables).ok()
    {
        // SAFETY: the CPU has AVX-512 F (checked just above), the only feature the callee
        // enables; every run it reads lies inside its table (checked above).
        #[allow(unsafe_code)]
        unsafe {
            avx512::dots3(shares, size, tables, offsets, negate, out)
        };
        return Ok(());
    }
    let np = tables.len();
    for ((share, &o), sums) in shares.chunks_exact(per).zip(offsets).zip(out.chunks_exact_mut(np.max(1))) {
        for (sum, table) in sums.iter_mut().zip(tables) {
            let run = &table[o..o + size];
            let s = run.iter().enumerate().fold(0u64, |acc, (x, v)| {
                let bit = (share[x / 64] >> (x % 64)) & 1;
                acc.wrapping_add(v & bit.wrapping_neg())
            });
            *sum = if negate { s.wrapping_neg() } else { s };
        }
    }
    Ok(())
}

#[cfg(target_arch = "x86_64")]
mod avx512 {
    //! The sums of three tables with AVX-512 masked adds: eight points of a run per add, the
    //! share's byte as the mask.

    use core::arch::x86_64::{
        __m512i, _mm512_loadu_si512, _mm512_mask_add_epi64, _mm512_reduce_add_epi64, _mm512_setzero_si512,
    };

    use super::LANES;

    /// Eight words as a register.
    #[allow(unsafe_code)]
    #[inline]
    #[target_feature(enable = "avx512f")]
    fn load8(words: &[u64; LANES]) -> __m512i {
        // SAFETY: reads the 64 bytes the array reference covers; no alignment requirement.
        unsafe { _mm512_loadu_si512(words.as_ptr().cast()) }
    }

    /// [`super::dots`] for three tables and a domain of at least eight points; the caller has
    /// checked the lengths.
    #[target_feature(enable = "avx512f")]
    pub(super) fn dots3(
        shares: &[u64],
        size: usize,
        tables: &[&[u64]; 3],
        offsets: &[usize],
        negate: bool,
        out: &mut [u64],
    ) {
        let per = super::words(size.trailing_zeros());
        for ((share, &o), sums) in shares.chunks_exact(per).zip(offsets).zip(out.chunks_exact_mut(3)) {
            // Eight points of each run at a time; `size` is a multiple of eight.
            let runs = tables.map(|t| t[o..o + size].as_chunks::<LANES>().0);
            let mut acc = [_mm512_setzero_si512(); 3];
            for c in 0..size / LANES {
                let mask = (share[c / 8] >> (8 * (c % 8))) as u8;
                for (a, run) in acc.iter_mut().zip(&runs) {
                    *a = _mm512_mask_add_epi64(*a, mask, *a, load8(&run[c]));
                }
            }
            for (sum, a) in sums.iter_mut().zip(acc) {
                let s = _mm512_reduce_add_epi64(a) as u64;
                *sum = if negate { s.wrapping_neg() } else { s };
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::SeedRng;

    /// Shares of the one-hot vector at `alpha` over `n_bits` bits: party 0's drawn at random,
    /// party 1's with the bit at `alpha` flipped.
    fn deal(alpha: usize, n_bits: u32, rng: &mut SeedRng) -> [Vec<u64>; 2] {
        let u0: Vec<u64> = (0..words(n_bits)).map(|_| rng.next_u64()).collect();
        let mut u1 = u0.clone();
        u1[alpha / 64] ^= 1 << (alpha % 64);
        [u0, u1]
    }

    /// Reversed and doubled, as the gates store their tables.
    fn stored(t: &[u64]) -> Vec<u64> {
        let len = t.len();
        (0..2 * len).map(|i| t[len - 1 - i % len]).collect()
    }

    /// The two parties' sums add up to `σ·T[(ĵ − α) mod 2^n]` with `σ = 1 − 2·u₀(α)`, on every
    /// `α` of small domains and random ones of larger, for three tables (the AVX-512 kernel
    /// where the CPU has it) and for one and two (the portable sums).
    #[test]
    fn sums_are_shares_of_the_signed_entry() {
        let mut rng = SeedRng::from_seed([9; 32]);
        for n_bits in [1u32, 3, 6, 7, 8, 10] {
            let size = 1usize << n_bits;
            let raw: Vec<Vec<u64>> = (0..3).map(|_| (0..size).map(|_| rng.next_u64()).collect()).collect();
            let tables: Vec<Vec<u64>> = raw.iter().map(|t| stored(t)).collect();
            let alphas: Vec<usize> = if n_bits <= 7 {
                (0..size).collect()
            } else {
                (0..40).map(|_| rng.next_u64() as usize % size).collect()
            };
            for alpha in alphas {
                let jhat = rng.next_u64();
                let offset = size - 1 - (jhat as usize & (size - 1));
                let [u0, u1] = deal(alpha, n_bits, &mut rng);
                let sigma = 1u64.wrapping_sub(2 * ((u0[alpha / 64] >> (alpha % 64)) & 1));
                let entry = (jhat.wrapping_sub(alpha as u64) as usize) & (size - 1);
                for np in [3usize, 1, 2] {
                    let refs: Vec<&[u64]> = tables.iter().take(np).map(|t| t.as_slice()).collect();
                    let mut got = [vec![0u64; np], vec![0u64; np]];
                    for (party, (share, o)) in [&u0, &u1].into_iter().zip(got.iter_mut()).enumerate() {
                        dots(party as u8, share, n_bits, &refs, &[offset], o).unwrap();
                    }
                    for a in 0..np {
                        let sum = got[0][a].wrapping_add(got[1][a]);
                        assert_eq!(sum, sigma.wrapping_mul(raw[a][entry]), "n {n_bits} α {alpha} table {a} of {np}");
                    }
                }
            }
        }
    }

    /// The AVX-512 kernel and the portable sums agree element by element.
    #[test]
    fn kernel_matches_the_portable_sums() {
        let mut rng = SeedRng::from_seed([4; 32]);
        for n_bits in [3u32, 7, 8] {
            let size = 1usize << n_bits;
            let count = 37;
            let tables: Vec<Vec<u64>> = (0..3).map(|_| (0..2 * size).map(|_| rng.next_u64()).collect()).collect();
            let shares: Vec<u64> = (0..count * words(n_bits)).map(|_| rng.next_u64()).collect();
            let offsets: Vec<usize> = (0..count).map(|_| rng.next_u64() as usize % size).collect();
            let refs: Vec<&[u64]> = tables.iter().map(|t| t.as_slice()).collect();
            for party in 0..2u8 {
                let mut kernel = vec![0u64; 3 * count];
                dots(party, &shares, n_bits, &refs, &offsets, &mut kernel).unwrap();
                // Two tables at a time take the portable path.
                let mut portable = vec![0u64; 3 * count];
                for a in 0..3 {
                    let pair = [refs[a], refs[(a + 1) % 3]];
                    let mut two = vec![0u64; 2 * count];
                    dots(party, &shares, n_bits, &pair, &offsets, &mut two).unwrap();
                    for i in 0..count {
                        portable[3 * i + a] = two[2 * i];
                    }
                }
                assert_eq!(kernel, portable, "n {n_bits} party {party}");
            }
        }
    }

    /// Wrong lengths are refused, never read past.
    #[test]
    fn wrong_lengths_are_refused() {
        let t = vec![0u64; 256];
        let refs: [&[u64]; 1] = [&t];
        let mut out = vec![0u64; 1];
        assert!(dots(0, &[0; 1], 7, &refs, &[0], &mut out).is_err(), "short share");
        assert!(dots(0, &[0; 2], 7, &refs, &[200], &mut out).is_err(), "run past the table");
        assert!(dots(0, &[0; 2], 7, &refs, &[0], &mut [0u64; 2]).is_err(), "output length");
        assert!(dots(1, &[0; 2], 7, &refs, &[128], &mut out).is_ok());
        assert!(dots(0, &[], 64, &refs, &[], &mut []).is_err(), "a domain past the largest table");
    }
}
