//! 64-byte register loads and stores shared by the AVX-512 kernels ([`crate::halftree`]'s and
//! [`crate::table`]'s): safe functions over arrays of exactly 64 bytes, so the one `unsafe`
//! block of each stays within the bytes the reference covers; and [`RowStream`], which writes a
//! row of registers to memory with non-temporal stores whatever the row's alignment.

use core::arch::x86_64::{
    __m512i, _MM_HINT_T0, _mm_prefetch, _mm_sfence, _mm512_aesenc_epi128, _mm512_aesenclast_epi128, _mm512_loadu_si512,
    _mm512_mask_storeu_epi8, _mm512_permutex2var_epi8, _mm512_setzero_si512, _mm512_storeu_si512, _mm512_stream_si512,
    _mm512_xor_si512,
};

/// The 64 bytes of `bytes` as a register.
#[allow(unsafe_code)]
#[inline]
#[target_feature(enable = "avx512f")]
pub(crate) fn load(bytes: &[u8; 64]) -> __m512i {
    // SAFETY: reads the 64 bytes the reference covers; the load has no alignment requirement.
    unsafe { _mm512_loadu_si512(bytes.as_ptr().cast()) }
}

/// AES-128 of four 128-bit lanes under the expanded key `rk` (each round key in all four
/// lanes): the fixed-key permutation both kernels hash with.
#[inline]
#[target_feature(enable = "avx512f,vaes")]
pub(crate) fn aes4(rk: &[__m512i; 11], x: __m512i) -> __m512i {
    let mut y = _mm512_xor_si512(x, rk[0]);
    for key in &rk[1..10] {
        y = _mm512_aesenc_epi128(y, *key);
    }
    _mm512_aesenclast_epi128(y, rk[10])
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

/// Whether this CPU has what [`RowStream`] needs beyond AVX-512 F: byte-masked stores
/// (AVX-512 BW) and the two-register byte permutation (AVX-512 VBMI). Every CPU with AVX-512
/// and VAES so far has both (Ice Lake and later, Zen 4 and later).
pub(crate) fn streams() -> bool {
    std::arch::is_x86_feature_detected!("avx512bw") && std::arch::is_x86_feature_detected!("avx512vbmi")
}

/// Writes a row of registers, 64 bytes each and in order, with non-temporal stores to the
/// cache lines it covers whole (masked ordinary stores for the partial lines at its ends).
///
/// # Why
///
/// A dealer writes hundreds of megabytes of key material that nobody reads for a while. An
/// ordinary store to a line not in cache first reads the line (read for ownership), so
/// writing costs twice its bytes in memory traffic; a non-temporal store writes the line
/// without reading it. On the 2-core Emerald Rapids VM, writing 2 × 928 MB took 249 ms with
/// ordinary 64-byte stores and 85 ms with non-temporal ones, and half-tree key generation of
/// 1M keys was that write.
///
/// # Any alignment
///
/// A non-temporal 64-byte store must be aligned, and material sits at whatever offset its
/// buffer and layout give it. With the row starting `m` bytes into a line, each aligned line
/// inside the row is the top `m` bytes of one register and the low `64 − m` of the next: one
/// `vpermt2b` (AVX-512 VBMI) joins them. The row's first `64 − m` bytes and last `m` go out
/// through byte-masked stores, so nothing outside the row is touched.
///
/// Non-temporal stores are weakly ordered: a stream fences them (one `sfence`) when it is
/// dropped, on the writing thread, so the bytes are in memory before anything after it reads
/// them or hands them to another thread.
pub(crate) struct RowStream<'a> {
    row: &'a mut [u8],
    /// The row's start within its cache line.
    skew: usize,
    /// Registers written so far.
    done: usize,
    prev: __m512i,
    /// `vpermt2b` indices picking bytes `64 − skew .. 128 − skew` of `prev ‖ next`.
    join: __m512i,
}

impl<'a> RowStream<'a> {
    /// A writer of `row`, whose length must be a multiple of 64 (else the row comes back).
    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,avx512vbmi")]
    pub(crate) fn new(row: &'a mut [u8]) -> Result<RowStream<'a>, &'a mut [u8]> {
        if !row.len().is_multiple_of(64) {
            return Err(row);
        }
        let skew = row.as_ptr() as usize % 64;
        // Byte i of the joined line is byte `i + 64 − skew` of `prev ‖ next` (indices mod 128).
        let mut idx = [0u8; 64];
        for (i, x) in idx.iter_mut().enumerate() {
            *x = ((i + 64 - skew) % 128) as u8;
        }
        let join = load(&idx);
        Ok(RowStream { row, skew, done: 0, prev: _mm512_setzero_si512(), join })
    }

    /// Writes the next 64 bytes of the row (nothing past its end).
    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,avx512vbmi")]
    pub(crate) fn push(&mut self, v: __m512i) {
        let j = self.done;
        if 64 * (j + 1) > self.row.len() {
            return;
        }
        self.done += 1;
        if self.skew == 0 {
            if let Some(line) = self.row.get_mut(64 * j..64 * (j + 1)).and_then(|b| <&mut [u8; 64]>::try_from(b).ok()) {
                stream(v, line);
            }
        } else if j == 0 {
            // The row's first bytes, up to the first line boundary.
            let head = (1u64 << (64 - self.skew)) - 1;
            if let Some(first) = self.row.get_mut(..64).and_then(|b| <&mut [u8; 64]>::try_from(b).ok()) {
                masked_store(v, head, first);
            }
        } else {
            let at = 64 * j - self.skew;
            let line = _mm512_permutex2var_epi8(self.prev, self.join, v);
            if let Some(dst) = self.row.get_mut(at..at + 64).and_then(|b| <&mut [u8; 64]>::try_from(b).ok()) {
                stream(line, dst);
            }
        }
        self.prev = v;
    }

    /// Writes the row's last partial line (where the row is not aligned); the row must have had
    /// all its registers pushed.
    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,avx512vbmi")]
    pub(crate) fn finish(self) {
        debug_assert_eq!(64 * self.done, self.row.len(), "every register of the row pushed");
        if self.skew == 0 || self.done == 0 {
            return;
        }
        let tail = !((1u64 << (64 - self.skew)) - 1);
        let at = 64 * (self.done - 1);
        let prev = self.prev;
        if let Some(last) = self.row.get_mut(at..at + 64).and_then(|b| <&mut [u8; 64]>::try_from(b).ok()) {
            masked_store(prev, tail, last);
        }
    }

    /// The row, for writing otherwise (nothing pushed yet).
    pub(crate) fn into_row(mut self) -> &'a mut [u8] {
        debug_assert_eq!(self.done, 0, "a row handed back before anything was streamed into it");
        std::mem::take(&mut self.row)
    }

    /// Orders the non-temporal stores before any later store (one `sfence`).
    #[allow(unsafe_code)]
    #[inline]
    fn fence() {
        // SAFETY: `sfence` has no operands and no preconditions (SSE, in the x86-64 baseline).
        unsafe { _mm_sfence() }
    }
}

impl Drop for RowStream<'_> {
    /// Fences the streamed stores (see the type's docs).
    fn drop(&mut self) {
        RowStream::fence();
    }
}

/// A non-temporal store of a register into an aligned line. It is weakly ordered: the
/// [`RowStream`] that makes it fences it when dropped.
#[allow(unsafe_code)]
#[inline]
#[target_feature(enable = "avx512f")]
fn stream(v: __m512i, line: &mut [u8; 64]) {
    debug_assert_eq!(line.as_ptr() as usize % 64, 0, "a non-temporal store needs an aligned line");
    if !(line.as_ptr() as usize).is_multiple_of(64) {
        return store(v, line);
    }
    // SAFETY: writes the 64 bytes the reference covers, which start on a 64-byte boundary
    // (checked just above), as the instruction requires. The store is weakly ordered: the
    // stream that calls this fences it on its own thread before the bytes are read or handed
    // on (`RowStream`'s `Drop`).
    unsafe { _mm512_stream_si512(line.as_mut_ptr().cast(), v) }
}

/// The bytes of `v` whose bit is set in `mask` into the same bytes of `bytes`, the others left
/// as they are.
#[allow(unsafe_code)]
#[inline]
#[target_feature(enable = "avx512f,avx512bw")]
fn masked_store(v: __m512i, mask: u64, bytes: &mut [u8; 64]) {
    // SAFETY: writes only bytes within the 64 the reference covers (a masked-out byte is
    // neither written nor faulted on); no alignment requirement.
    unsafe { _mm512_mask_storeu_epi8(bytes.as_mut_ptr().cast(), mask, v) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::arch::x86_64::_mm512_set1_epi8;

    /// A register of 64 equal bytes.
    #[target_feature(enable = "avx512f")]
    fn splat(b: u8) -> __m512i {
        _mm512_set1_epi8(b as i8)
    }

    /// Every skew and length: the row gets exactly the pushed bytes, nothing around it changes.
    #[test]
    #[allow(unsafe_code)]
    fn a_row_stream_writes_exactly_its_row_at_any_alignment() {
        if !(std::arch::is_x86_feature_detected!("avx512f") && streams()) {
            eprintln!("SKIPPED: this CPU has no AVX-512 BW and VBMI; the row stream is not used here");
            return;
        }
        for regs in [1usize, 2, 3, 32] {
            for skew in 0..64 {
                let mut buf = vec![0xEEu8; 64 * regs + 256];
                let base = buf.as_ptr() as usize;
                let start = 64 + (64 + skew - base % 64) % 64;
                // The register's index mixed in: no two registers of a row get the same bytes.
                let want: Vec<u8> = (0..64 * regs).map(|i| (i * 7 + i / 64 * 13 + 1) as u8).collect();
                {
                    let row = &mut buf[start..start + 64 * regs];
                    // SAFETY: the test checked the CPU features just above.
                    unsafe {
                        let mut w = RowStream::new(row).expect("a multiple of 64");
                        for chunk in want.chunks_exact(64) {
                            let mut a = [0u8; 64];
                            a.copy_from_slice(chunk);
                            w.push(load(&a));
                        }
                        w.push(splat(0x11)); // past the end: ignored
                        w.finish();
                    }
                }
                assert_eq!(&buf[start..start + 64 * regs], &want[..], "regs {regs} skew {skew}");
                assert!(
                    buf[..start].iter().chain(&buf[start + 64 * regs..]).all(|&b| b == 0xEE),
                    "regs {regs} skew {skew}: bytes outside the row"
                );
            }
        }
        // SAFETY: as above.
        let mut odd = [0u8; 65];
        assert!(unsafe { RowStream::new(&mut odd) }.is_err(), "not a multiple of 64");
    }
}
