//! The `MR × NR` micro-kernel of [`super`] on AVX2: four 64-bit products per instruction.
//!
//! x86-64 has no 64-bit vector multiply below AVX-512 (`vpmullq`); AVX2's `vpmuludq` multiplies
//! the low 32-bit halves of each 64-bit lane into a full 64-bit product. Writing `a = a₁·2³² + a₀`
//! and `b = b₁·2³² + b₀`,
//!
//! ```text
//! a·b mod 2⁶⁴ = a₀·b₀ + ((a₀·b₁ + a₁·b₀) mod 2³²)·2³²
//! ```
//!
//! so a whole dot product `Σ aₚ·bₚ` is `Σ a₀b₀ + (Σ (a₀b₁ + a₁b₀))·2³²`: three `vpmuludq` and
//! three adds per four products, and **one** shift per output at the very end, because the cross
//! sums only matter modulo 2³² and wrap harmlessly in their 64-bit lanes. The compiler's own
//! vectorisation of the scalar loop shifts and recombines every product, which is why it lost to
//! scalar `imul` (see [`super`]); with the shift hoisted out of the loop the vector kernel wins.
//!
//! The high halves `a₁`, `b₁` are made by `vpsrlq`, which runs on other execution ports than
//! `vpmuludq` on current x86 cores, so the packed panels stay plain words.
//!
//! # Unsafe code
//!
//! [`micro`] calls the `#[target_feature(enable = "avx2")]` kernel only after run-time detection,
//! and the kernel's unaligned loads and stores go through pointers of `[u64; 4]` arrays that the
//! borrow checker vouches for. Everything else is safe.

use core::arch::x86_64::{
    __m256i, _mm256_add_epi64, _mm256_loadu_si256, _mm256_mul_epu32, _mm256_set1_epi64x, _mm256_setzero_si256,
    _mm256_slli_epi64, _mm256_srli_epi64, _mm256_storeu_si256,
};

use super::{MR, NR};

// The kernel holds one row of `NR` words in one 256-bit register.
const _: () = assert!(NR == 4);

/// Whether the CPU runs the AVX2 kernel (detected once; `std` caches the answer).
pub(super) fn available() -> bool {
    std::arch::is_x86_feature_detected!("avx2")
}

/// `Σ_p ap[p] ⊗ bp[p]` as in [`super::scalar_micro`], or `None` when the CPU lacks AVX2.
#[allow(unsafe_code)]
pub(super) fn micro(ap: &[u64], bp: &[u64]) -> Option<[[u64; NR]; MR]> {
    if !available() {
        return None;
    }
    // SAFETY: the CPU supports AVX2 (checked just above), the only target feature the callee
    // enables.
    Some(unsafe { micro_avx2(ap, bp) })
}

/// The kernel: `ap` holds `MR` words per step, `bp` `NR` words per step; steps past the shorter
/// one are ignored, as in the scalar kernel.
#[target_feature(enable = "avx2")]
#[allow(unsafe_code)]
fn micro_avx2(ap: &[u64], bp: &[u64]) -> [[u64; NR]; MR] {
    let zero = _mm256_setzero_si256();
    // `low[i]`: Σ a₀·b₀ of row i; `cross[i]`: Σ (a₀·b₁ + a₁·b₀), shifted in at the end.
    let mut low = [zero; MR];
    let mut cross = [zero; MR];
    for (x, y) in ap.as_chunks::<MR>().0.iter().zip(bp.as_chunks::<NR>().0) {
        // SAFETY: `y` is a `&[u64; 4]`, 32 readable bytes; `loadu` needs no alignment.
        let b = unsafe { _mm256_loadu_si256(y.as_ptr().cast::<__m256i>()) };
        let b_hi = _mm256_srli_epi64::<32>(b);
        for i in 0..MR {
            let a = _mm256_set1_epi64x(x[i] as i64);
            let a_hi = _mm256_srli_epi64::<32>(a);
            low[i] = _mm256_add_epi64(low[i], _mm256_mul_epu32(a, b));
            cross[i] = _mm256_add_epi64(cross[i], _mm256_mul_epu32(a, b_hi));
            cross[i] = _mm256_add_epi64(cross[i], _mm256_mul_epu32(a_hi, b));
        }
    }
    let mut out = [[0u64; NR]; MR];
    for (row, (l, c)) in out.iter_mut().zip(low.into_iter().zip(cross)) {
        let sum = _mm256_add_epi64(l, _mm256_slli_epi64::<32>(c));
        // SAFETY: `row` is a `&mut [u64; 4]`, 32 writable bytes; `storeu` needs no alignment.
        unsafe { _mm256_storeu_si256(row.as_mut_ptr().cast::<__m256i>(), sum) };
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn matches_the_scalar_kernel_on_extreme_and_random_words() {
        if !super::available() {
            eprintln!("SKIPPED: this CPU has no AVX2; the AVX2 kernel is not checked here");
            return;
        }
        super::super::check_micro_kernel(super::micro);
    }
}
