//! The `8 × 8` micro-kernel of [`super`] on AVX-512: eight 64-bit products per instruction.
//!
//! AVX-512DQ has the 64-bit vector multiply that AVX2 lacks: `vpmullq` keeps the low 64 bits of
//! each lane's product, which is the product in Z(2^64). So a step of the kernel is, per row of
//! the block, one broadcast of an `A` word, one `vpmullq` against a row of eight `B` words and
//! one `vpaddq` into that row's sums: no 32-bit halves, no cross terms, no final shift (the AVX2
//! kernel of [`super::avx2`] needs three multiplies and three adds per four products).
//!
//! `vpmullq` is slow as instructions go (three micro-ops, about 15 cycles of latency), but the
//! products of successive steps do not depend on each other, only the adds do, so out-of-order
//! execution overlaps them. On this project's 2-core Xeon (Sapphire Rapids class) the inner loop
//! alone runs at 10.7 GMAC/s per core against the AVX2 kernel's 4.6, for blocks of 4 × 8, 8 × 8,
//! 12 × 8 or 4 × 16 alike. Eight rows are kept because each panel of `B` then serves twice the
//! products: in a whole 256³ product 8 × 8 blocks ran at 9.7 GMAC/s, 4 × 8 at 6.8.
//!
//! # Unsafe code
//!
//! [`micro`] calls the `#[target_feature(enable = "avx512f,avx512dq")]` kernel only after
//! run-time detection, and the kernel's unaligned loads and stores go through pointers of
//! `[u64; 8]` arrays that the borrow checker vouches for. Everything else is safe.

use core::arch::x86_64::{
    __m512i, _mm512_add_epi64, _mm512_loadu_si512, _mm512_mullo_epi64, _mm512_set1_epi64, _mm512_setzero_si512,
    _mm512_storeu_si512,
};

/// Rows of this kernel's block.
pub(super) const MR: usize = super::MR_MAX;
/// Columns of this kernel's block: one 512-bit register of words.
pub(super) const NR: usize = 8;

/// Whether the CPU runs the AVX-512 kernel (detected once; `std` caches the answer).
pub(super) fn available() -> bool {
    std::arch::is_x86_feature_detected!("avx512f") && std::arch::is_x86_feature_detected!("avx512dq")
}

/// `Σ_p ap[p] ⊗ bp[p]` as in [`super::scalar_micro`], or `None` when the CPU lacks AVX-512DQ.
#[allow(unsafe_code)]
pub(super) fn micro(ap: &[u64], bp: &[u64]) -> Option<[[u64; NR]; MR]> {
    if !available() {
        return None;
    }
    // SAFETY: the CPU supports AVX-512F and AVX-512DQ (checked just above), the only target
    // features the callee enables.
    Some(unsafe { micro_avx512(ap, bp) })
}

/// The kernel: `ap` holds `MR` words per step, `bp` `NR` words per step; steps past the shorter
/// one are ignored, as in the scalar kernel.
#[target_feature(enable = "avx512f,avx512dq")]
#[allow(unsafe_code)]
fn micro_avx512(ap: &[u64], bp: &[u64]) -> [[u64; NR]; MR] {
    let mut sums = [_mm512_setzero_si512(); MR];
    for (x, y) in ap.as_chunks::<MR>().0.iter().zip(bp.as_chunks::<NR>().0) {
        // SAFETY: `y` is a `&[u64; 8]`, 64 readable bytes; `loadu` needs no alignment.
        let b = unsafe { _mm512_loadu_si512(y.as_ptr().cast::<__m512i>()) };
        for (sum, &a) in sums.iter_mut().zip(x) {
            *sum = _mm512_add_epi64(*sum, _mm512_mullo_epi64(_mm512_set1_epi64(a as i64), b));
        }
    }
    let mut out = [[0u64; NR]; MR];
    for (row, sum) in out.iter_mut().zip(sums) {
        // SAFETY: `row` is a `&mut [u64; 8]`, 64 writable bytes; `storeu` needs no alignment.
        unsafe { _mm512_storeu_si512(row.as_mut_ptr().cast::<__m512i>(), sum) };
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn matches_the_scalar_kernel_on_extreme_and_random_words() {
        if !super::available() {
            eprintln!("SKIPPED: this CPU has no AVX-512DQ; the AVX-512 kernel is not checked here");
            return;
        }
        super::super::check_micro_kernel(super::micro);
    }
}
