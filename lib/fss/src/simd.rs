//! 64-byte register loads and stores shared by the AVX-512 kernels ([`crate::halftree`]'s and
//! [`crate::table`]'s): safe functions over arrays of exactly 64 bytes, so the one `unsafe`
//! block of each stays within the bytes the reference covers.

use core::arch::x86_64::{__m512i, _mm512_loadu_si512, _mm512_storeu_si512};

/// The 64 bytes of `bytes` as a register.
#[allow(unsafe_code)]
#[inline]
#[target_feature(enable = "avx512f")]
pub(crate) fn load(bytes: &[u8; 64]) -> __m512i {
    // SAFETY: reads the 64 bytes the reference covers; the load has no alignment requirement.
    unsafe { _mm512_loadu_si512(bytes.as_ptr().cast()) }
}

/// A register into the 64 bytes of `bytes`.
#[allow(unsafe_code)]
#[inline]
#[target_feature(enable = "avx512f")]
pub(crate) fn store(v: __m512i, bytes: &mut [u8; 64]) {
    // SAFETY: writes the 64 bytes the reference covers; the store has no alignment requirement.
    unsafe { _mm512_storeu_si512(bytes.as_mut_ptr().cast(), v) }
}
