//! The `kernel` plugin kind: heavy local compute a protocol may hand off (ring matrix products,
//! batched DPF/DCF evaluation). Every method is optional and defaults to "not supported", so a
//! kernel implements only what its device does well and protocols fall back to the CPU.
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

/// A kernel plugin.
pub trait Kernel: Send + Sync {
    /// Name and device.
    fn descriptor(&self) -> KernelDescriptor;

    /// `out = a · b` in Z(2^64), row-major, `a` is `m×k`, `b` is `k×n`.
    fn ring_matmul(&self, a: &[u64], b: &[u64], m: usize, k: usize, n: usize, out: &mut [u64]) -> Result<()> {
        let _ = (a, b, m, k, n, out);
        Err(Error::Unsupported { what: "ring_matmul".into(), plugin: self.descriptor().name })
    }
}
