//! Handing heavy local work to the session's kernel plugin, with this crate's CPU code as the
//! fallback.
//!
//! A party's node evaluation gets the session's kernel in its [`EvalInput`]
//! (`None` for the default `cpu`, which is this crate's own code). [`Accel`] wraps it: every
//! method first offers the work to the kernel and, if the kernel says it does not support it,
//! does it here. Any other kernel error (a device fault, an out-of-memory) is an error of the
//! node, never silently retried on the CPU: a GPU that gives wrong answers must be noticed.
//!
//! [`EvalInput`]: mpcflow_sdk::protocol::EvalInput

use std::sync::Arc;

use crate::fss::halftree::{self, HalfTreeKeys};
use crate::fss::{Dcf2KeyBatch, DcfKeyBatch, dcf, dcf2};
use mpcflow_sdk::kernel::{FssKeys, FssScheme, Kernel, is_unsupported};
use mpcflow_sdk::{Error, Result};

/// The session's kernel, or none (the libraries' CPU code, on `threads` threads).
#[derive(Clone)]
pub struct Accel(Option<Arc<dyn Kernel>>, usize);

impl Default for Accel {
    /// No kernel, one thread (tests and small work).
    fn default() -> Self {
        Accel(None, 1)
    }
}

impl std::fmt::Debug for Accel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.0 {
            Some(k) => write!(f, "Accel({})", k.descriptor().name),
            None => write!(f, "Accel(cpu)"),
        }
    }
}

fn material(e: crate::fss::FssError) -> Error {
    Error::Material(e.to_string())
}

impl Accel {
    /// Wraps the kernel a node evaluation was given.
    pub fn new(kernel: Option<Arc<dyn Kernel>>, threads: usize) -> Accel {
        Accel(kernel, threads.max(1))
    }

    /// Threads for the CPU code.
    pub fn threads(&self) -> usize {
        self.1
    }

    /// Runs `job` on the kernel; `Ok(false)` when there is none or it does not support the job.
    fn offer(&self, job: impl FnOnce(&dyn Kernel) -> Result<()>) -> Result<bool> {
        let Some(k) = &self.0 else { return Ok(false) };
        match job(k.as_ref()) {
            Ok(()) => Ok(true),
            Err(e) if is_unsupported(&e) => Ok(false),
            Err(e) => Err(Error::Material(format!("kernel `{}`: {e}", k.descriptor().name))),
        }
    }

    /// Party `party`'s DCF shares: key `i` of `keys` at `xs[i]` into `out[i]`.
    pub fn dcf(&self, party: u16, keys: &DcfKeyBatch<'_>, xs: &[u64], out: &mut [u64]) -> Result<()> {
        let batch =
            FssKeys { scheme: FssScheme::Dcf, party: party as u8, n_bits: keys.n_bits(), bytes: keys.as_bytes() };
        if xs.len() != keys.len() || out.len() != keys.len() {
            return Err(Error::internal("DCF evaluation: keys, points and outputs differ in length"));
        }
        if !xs.is_empty() && self.offer(|k| k.fss_eval(&batch, xs, out))? {
            return Ok(());
        }
        dcf::eval_many_par(party as u8, keys, xs, out, self.1).map_err(material)
    }

    /// Party `party`'s two-word DCF shares: key `i` of `keys` at `xs[i]` into `out[i]`.
    pub fn dcf2(&self, party: u16, keys: &Dcf2KeyBatch<'_>, xs: &[u64], out: &mut [[u64; 2]]) -> Result<()> {
        let batch =
            FssKeys { scheme: FssScheme::Dcf2, party: party as u8, n_bits: keys.n_bits(), bytes: keys.as_bytes() };
        if xs.len() != keys.len() || out.len() != keys.len() {
            return Err(Error::internal("DCF2 evaluation: keys, points and outputs differ in length"));
        }
        if !xs.is_empty() && self.offer(|k| k.fss_eval(&batch, xs, out.as_flattened_mut()))? {
            return Ok(());
        }
        dcf2::eval_many_par(party as u8, keys, xs, out, self.1).map_err(material)
    }

    /// Party shares (bits) of the half-tree one-bit DCF: key `i` of `keys` at `xs[i]` into
    /// `out[i]`. On this crate's CPU code: no kernel evaluates these keys yet.
    pub fn halftree(&self, keys: &HalfTreeKeys<'_>, xs: &[u64], out: &mut [u8]) -> Result<()> {
        halftree::eval_many_par(keys, xs, out, self.1).map_err(material)
    }

    /// [`Accel::halftree`] at several rows of points: key `i` at `points[p][i]` into
    /// `out[p·len + i]`, the rows' shared levels walked once (see
    /// [`halftree::eval_points_par`]).
    pub fn halftree_points(&self, keys: &HalfTreeKeys<'_>, points: &[&[u64]], out: &mut [u8]) -> Result<()> {
        halftree::eval_points_par(keys, points, out, self.1).map_err(material)
    }

    /// `a · b` in Z(2^64) for row-major `m×k` and `k×n` matrices, or `None` when the kernel does
    /// not take it (the caller then uses [`mpcflow_ring::linalg`]).
    pub fn matmul(&self, a: &[u64], b: &[u64], [m, k, n]: [usize; 3]) -> Result<Option<Vec<u64>>> {
        if self.0.is_none() || m * n == 0 {
            return Ok(None);
        }
        let mut out = vec![0u64; m * n];
        Ok(self.offer(|kern| kern.ring_matmul(a, b, m, k, n, &mut out))?.then_some(out))
    }

    /// `conv2d(x, w)` in Z(2^64), or `None` when the kernel does not take it.
    pub fn conv2d(&self, x: &[u64], w: &[u64], g: &mpcflow_sdk::kernel::Conv2dGeometry) -> Result<Option<Vec<u64>>> {
        if self.0.is_none() {
            return Ok(None);
        }
        let mut out = vec![0u64; g.batch * g.out_channels * g.output[0] * g.output[1]];
        Ok(self.offer(|kern| kern.ring_conv2d(x, w, g, &mut out))?.then_some(out))
    }
}
