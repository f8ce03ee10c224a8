//! 64-byte register loads and stores shared by the AVX-512 kernels ([`crate::halftree`]'s and
//! [`crate::table`]'s): safe functions over arrays of exactly 64 bytes, so the one `unsafe`
//! block of each stays within the bytes the reference covers.

use core::arch::x86_64::{__m512i, _MM_HINT_T0, _mm_prefetch, _mm512_loadu_si512, _mm512_storeu_si512};

/// The 64 bytes of `bytes` as a register.
#[allow(unsafe_code)]
#[inline]
#[target_feature(enable = "avx512f")]
pub(crate) fn load(bytes: &[u8; 64]) -> __m512i {
    // SAFETY: reads the 64 bytes the reference covers; the load has no alignment requirement.
    unsafe { _mm512_loadu_si512(bytes.as_ptr().cast()) }
}

/// Asks the CPU to bring the cache line holding `byte` into L1 (a hint: no load, no fault).
#[allow(unsafe_code)]
#[inline]
pub(crate) fn prefetch(byte: &u8) {
    // SAFETY: `_mm_prefetch` only hints the cache about an address (here of a live byte); it
    // never dereferences it architecturally and cannot fault.
    unsafe { _mm_prefetch::<_MM_HINT_T0>(core::ptr::from_ref(byte).cast::<i8>()) }
}

/// Asks the CPU to bring the cache line at `offset` of `region` into L1 (a hint, taking an
/// address only: the region may be borrowed mutably elsewhere, to be written). Nothing past the
/// region's end. A read prefetch: `prefetchw` needs the `prfchw` feature, which the kernels do
/// not enable.
#[allow(unsafe_code)]
#[inline]
pub(crate) fn prefetch_at(region: *const u8, len: usize, offset: usize) {
    if offset < len {
        // SAFETY: `_mm_prefetch` only hints the cache about an address; it never dereferences
        // it architecturally and cannot fault (the check keeps it inside the region anyway).
        unsafe { _mm_prefetch::<_MM_HINT_T0>(region.wrapping_add(offset).cast::<i8>()) }
    }
}

/// A register into the 64 bytes of `bytes`.
#[allow(unsafe_code)]
#[inline]
#[target_feature(enable = "avx512f")]
pub(crate) fn store(v: __m512i, bytes: &mut [u8; 64]) {
    // SAFETY: writes the 64 bytes the reference covers; the store has no alignment requirement.
    unsafe { _mm512_storeu_si512(bytes.as_mut_ptr().cast(), v) }
}
