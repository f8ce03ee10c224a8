//! The `kernel` plugin kind: heavy local compute a protocol may hand off (ring matrix products and
//! convolutions, batched DPF/DCF evaluation, bit packing). Every method is optional and defaults to
//! "not supported", so a kernel implements only what its device does well and a protocol falls
//! back to its own CPU code for the rest.
//!
//! A session runs with one kernel, chosen by `--kernel` or the pipeline's `kernel:` (`cpu` by
//! default); the runtime hands it to the protocol with every node ([`crate::protocol::EvalInput`]).
//! Kernels compute on data a party already holds (public masked values, its own shares and keys),
//! so a kernel sees nothing the party may not see; it must still never log what it computes on.
//!
//! ```
//! use mpcflow_sdk::kernel::*;
//! struct Nothing;
//! impl Kernel for Nothing {
//!     fn descriptor(&self) -> KernelDescriptor {
//!         KernelDescriptor { name: "nothing".into(), device: "none".into() }
//!     }
//! }
//! assert!(Nothing.ring_matmul(&[1], &[1], 1, 1, 1, &mut [0]).is_err());
//! ```

use crate::{Error, Result};

/// What a kernel is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KernelDescriptor {
    /// Name used in configuration (`cpu`, `cuda`).
    pub name: String,
    /// The device, for logs (`cpu`, `NVIDIA H100`).
    pub device: String,
}

/// A function-secret-sharing scheme whose keys a kernel may evaluate, with its key layout.
///
/// Keys are the serialised keys of the `fss2pc` protocol (format version 1), all little-endian,
/// for an `n`-bit domain (`1 ≤ n ≤ 64`), with `w` output words of `Z(2^64)` (`w` = 1 for
/// [`FssScheme::Dpf`] and [`FssScheme::Dcf`], 2 for [`FssScheme::Dcf2`]):
///
/// ```text
/// DCF, DCF2: tag ('C' or 'D') (1) ‖ n (1) ‖ root seed (16) ‖ n × seed CW (16)
///            ‖ n × value CW (8·w) ‖ control-bit CWs (⌈2n/8⌉) ‖ final CW (8·w)
/// DPF:       tag 'P' (1) ‖ n (1) ‖ root seed (16) ‖ n × seed CW (16)
///            ‖ control-bit CWs (⌈2n/8⌉) ‖ final CW (8)
/// ```
///
/// Control bits: bit `2i` is `t_L`, bit `2i+1` is `t_R` of level `i`. Evaluators ignore the
/// lowest bit of a DCF or DCF2 seed CW (the seeds' control-bit position): the next seed is
/// `child ⊕ t·CW` with that bit cleared. fss2pc writes it as 0 but does not check it in a batch.
/// The tree PRG is fixed-key AES-128 in Matyas–Meyer–Oseas form with the keys
/// `"mpcflow/fss/prgL"`, `"…prgR"`, `"…prgV"`; the evaluation algorithms are those of
/// `mpcflow-protocol-fss2pc`'s `fss` module, which is the reference every kernel must equal bit
/// for bit.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FssScheme {
    /// Distributed point function: `β` at `x = α`, else 0.
    Dpf,
    /// Distributed comparison function: `β` where `x < α`, else 0 (one output word).
    Dcf,
    /// The comparison with two output words (one tree walk for two payloads).
    Dcf2,
}

impl FssScheme {
    /// Output words of `Z(2^64)` per evaluation.
    pub const fn words(self) -> usize {
        match self {
            FssScheme::Dpf | FssScheme::Dcf => 1,
            FssScheme::Dcf2 => 2,
        }
    }

    /// Bytes of one serialised key over an `n_bits`-bit domain.
    pub const fn key_len(self, n_bits: u32) -> usize {
        let n = n_bits as usize;
        let control = (2 * n).div_ceil(8);
        match self {
            FssScheme::Dpf => 2 + 16 + 16 * n + control + 8,
            FssScheme::Dcf | FssScheme::Dcf2 => {
                let w = self.words();
                2 + 16 + (16 + 8 * w) * n + control + 8 * w
            }
        }
    }
}

/// A batch of keys of one party, one key per evaluation point: key `i` is evaluated at point `i`.
///
/// The caller has validated the keys (lengths, tags, canonical encodings) and the points (each
/// below `2^n_bits`); a kernel may rely on both.
#[derive(Clone, Copy, Debug)]
pub struct FssKeys<'a> {
    /// The scheme (and so the layout).
    pub scheme: FssScheme,
    /// The evaluating party, 0 or 1.
    pub party: u8,
    /// Domain size in bits.
    pub n_bits: u32,
    /// `count × scheme.key_len(n_bits)` bytes: the keys back to back.
    pub bytes: &'a [u8],
}

impl FssKeys<'_> {
    /// Number of keys.
    pub fn count(&self) -> usize {
        self.bytes.len() / self.scheme.key_len(self.n_bits).max(1)
    }
}

/// The geometry of a 2-D convolution in NCHW layout (no dilation, no groups, no bias).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Conv2dGeometry {
    /// Images.
    pub batch: usize,
    /// Input channels.
    pub channels: usize,
    /// Input height and width.
    pub input: [usize; 2],
    /// Output channels.
    pub out_channels: usize,
    /// Kernel height and width.
    pub kernel: [usize; 2],
    /// Stride along height and width.
    pub stride: [usize; 2],
    /// Zero padding on each side along height and width.
    pub padding: [usize; 2],
    /// Output height and width.
    pub output: [usize; 2],
}

/// A kernel plugin.
pub trait Kernel: Send + Sync {
    /// Name and device.
    fn descriptor(&self) -> KernelDescriptor;

    /// Whether the kernel can run here; `Err` says why not in one line (no driver, no device).
    /// The runtime asks once per session and then uses the kernel, falls back to `cpu` or
    /// refuses to run (see the CLI's `--kernel`).
    fn available(&self) -> std::result::Result<(), String> {
        Ok(())
    }

    /// `out = a · b` in Z(2^64), row-major, `a` is `m×k`, `b` is `k×n`.
    fn ring_matmul(&self, a: &[u64], b: &[u64], m: usize, k: usize, n: usize, out: &mut [u64]) -> Result<()> {
        let _ = (a, b, m, k, n, out);
        Err(self.unsupported("ring_matmul"))
    }

    /// `out = conv2d(x, w)` in Z(2^64): `x` is `[batch, channels, h, w]`, `w` is
    /// `[out_channels, channels, kh, kw]`, `out` is `[batch, out_channels, oh, ow]`.
    fn ring_conv2d(&self, x: &[u64], w: &[u64], g: &Conv2dGeometry, out: &mut [u64]) -> Result<()> {
        let _ = (x, w, g, out);
        Err(self.unsupported("ring_conv2d"))
    }

    /// Evaluates key `i` of `keys` at `xs[i]` into `out[i·w .. (i+1)·w]` (`w` = output words of
    /// the scheme), for every `i`.
    fn fss_eval(&self, keys: &FssKeys<'_>, xs: &[u64], out: &mut [u64]) -> Result<()> {
        let _ = (keys, xs, out);
        Err(self.unsupported("fss_eval"))
    }

    /// Packs the low `bits` bits (1..=64) of each value back to back, little-endian bit order
    /// (value `i` occupies stream bits `[i·bits, (i+1)·bits)`), into `⌈len·bits/64⌉` words.
    fn pack_bits(&self, values: &[u64], bits: u32, out: &mut [u64]) -> Result<()> {
        let _ = (values, bits, out);
        Err(self.unsupported("pack_bits"))
    }

    /// The error of a method this kernel does not implement.
    fn unsupported(&self, what: &str) -> Error {
        Error::Unsupported { what: what.into(), plugin: self.descriptor().name }
    }
}

/// Whether `e` says a kernel does not implement a method (so the caller should use its own code).
pub fn is_unsupported(e: &Error) -> bool {
    matches!(e, Error::Unsupported { .. })
}

/// The reference packing of [`Kernel::pack_bits`], for kernels and tests.
pub fn pack_bits(values: &[u64], bits: u32, out: &mut [u64]) -> Result<()> {
    if !(1..=64).contains(&bits) {
        return Err(Error::invalid(format!("pack_bits: bit width must be 1..=64, got {bits}")));
    }
    let words = (values.len() * bits as usize).div_ceil(64);
    if out.len() != words {
        return Err(Error::invalid(format!("pack_bits: output needs {words} words, got {}", out.len())));
    }
    out.fill(0);
    let mask = if bits == 64 { u64::MAX } else { (1u64 << bits) - 1 };
    for (i, v) in values.iter().enumerate() {
        let (at, v) = (i * bits as usize, v & mask);
        let (word, shift) = (at / 64, at % 64);
        out[word] |= v << shift;
        if shift + bits as usize > 64 {
            out[word + 1] |= v >> (64 - shift);
        }
    }
    Ok(())
}

/// Inverse of [`pack_bits`]: the `count` values of a packed stream.
pub fn unpack_bits(packed: &[u64], count: usize, bits: u32) -> Result<Vec<u64>> {
    if !(1..=64).contains(&bits) {
        return Err(Error::invalid(format!("unpack_bits: bit width must be 1..=64, got {bits}")));
    }
    let words = (count * bits as usize).div_ceil(64);
    if packed.len() != words {
        return Err(Error::invalid(format!("unpack_bits: {count} values need {words} words, got {}", packed.len())));
    }
    let mask = if bits == 64 { u64::MAX } else { (1u64 << bits) - 1 };
    Ok((0..count)
        .map(|i| {
            let at = i * bits as usize;
            let (word, shift) = (at / 64, at % 64);
            let mut v = packed[word] >> shift;
            if shift + bits as usize > 64 {
                v |= packed[word + 1] << (64 - shift);
            }
            v & mask
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_lengths_match_the_documented_sizes() {
        // fss2pc's documented sizes: DPF 26 + 16n + ⌈n/4⌉, DCF 26 + 24n + ⌈n/4⌉, DCF2 … + 8.
        for n in [1u32, 7, 32, 63, 64] {
            let c = (n as usize).div_ceil(4);
            assert_eq!(FssScheme::Dpf.key_len(n), 26 + 16 * n as usize + c);
            assert_eq!(FssScheme::Dcf.key_len(n), 26 + 24 * n as usize + c);
            assert_eq!(FssScheme::Dcf2.key_len(n), 34 + 32 * n as usize + c);
        }
    }

    #[test]
    fn packing_round_trips_at_every_width() {
        let values: Vec<u64> = (0..131u64).map(|i| i.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ (i << 7)).collect();
        for bits in 1..=64u32 {
            let mut out = vec![0; (values.len() * bits as usize).div_ceil(64)];
            pack_bits(&values, bits, &mut out).unwrap();
            let mask = if bits == 64 { u64::MAX } else { (1 << bits) - 1 };
            let back = unpack_bits(&out, values.len(), bits).unwrap();
            assert_eq!(back, values.iter().map(|v| v & mask).collect::<Vec<_>>(), "bits {bits}");
        }
        assert!(pack_bits(&values, 0, &mut []).is_err());
        assert!(unpack_bits(&[0], 2, 40).is_err());
    }
}
