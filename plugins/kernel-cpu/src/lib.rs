//! `mpcflow-kernel-cpu`: the built-in `cpu` kernel: the `mpcflow-fss` library's AES-NI/VAES
//! DPF/DCF evaluation and the `mpcflow-ring` library's blocked ring products behind the sdk's
//! [`Kernel`] trait.
//!
//! fss2pc itself calls the same library code directly when the session's kernel is `cpu`; this
//! plugin exists so other kernels (the CUDA one) can be compared with it bit for bit, so a
//! third-party protocol can use the same evaluation, and so `mpcflow plugins list` shows what
//! `cpu` means.

use mpcflow_fss::{Dcf2KeyBatch, DcfKeyBatch, DpfKey, FssError, dcf, dcf2, dpf};
use mpcflow_ring::linalg;
use mpcflow_sdk::kernel::{Conv2dGeometry, FssKeys, FssScheme, Kernel, KernelDescriptor};
use mpcflow_sdk::{Error, Result};

/// The `cpu` kernel, evaluating key batches on `threads` threads.
#[derive(Clone, Copy, Debug)]
pub struct CpuKernel {
    /// Threads for batched key evaluation (products use the ring library's own setting).
    pub threads: usize,
}

impl Default for CpuKernel {
    /// As many threads as a session's default tuning uses (every core).
    fn default() -> Self {
        CpuKernel { threads: mpcflow_sdk::protocol::Tuning::default().threads }
    }
}

fn fss(e: FssError) -> Error {
    Error::invalid(format!("cpu kernel: {e}"))
}

fn check_out(what: &str, expected: usize, got: usize) -> Result<()> {
    if expected == got {
        Ok(())
    } else {
        Err(Error::invalid(format!("cpu kernel: {what} needs {expected} words, got {got}")))
    }
}

impl Kernel for CpuKernel {
    fn descriptor(&self) -> KernelDescriptor {
        KernelDescriptor { name: "cpu".into(), device: "cpu".into() }
    }

    fn ring_matmul(&self, a: &[u64], b: &[u64], m: usize, k: usize, n: usize, out: &mut [u64]) -> Result<()> {
        check_out("ring_matmul output", m * n, out.len())?;
        let c = linalg::matmul([a, b], [&[m, k], &[k, n]], &[m, n], &linalg::Config::default())?;
        out.copy_from_slice(&c);
        Ok(())
    }

    fn ring_conv2d(&self, x: &[u64], w: &[u64], g: &Conv2dGeometry, out: &mut [u64]) -> Result<()> {
        let sx = [g.batch, g.channels, g.input[0], g.input[1]];
        let sw = [g.out_channels, g.channels, g.kernel[0], g.kernel[1]];
        let so = [g.batch, g.out_channels, g.output[0], g.output[1]];
        check_out("ring_conv2d output", so.iter().product(), out.len())?;
        let expect = mpcflow_sdk::shape::window_out(g.input[0], g.kernel[0], g.stride[0], g.padding[0])
            .zip(mpcflow_sdk::shape::window_out(g.input[1], g.kernel[1], g.stride[1], g.padding[1]));
        if expect != Some((g.output[0], g.output[1])) {
            return Err(Error::invalid("cpu kernel: ring_conv2d output size does not match the geometry"));
        }
        let y = linalg::conv2d([x, w], [&sx, &sw], g.stride, g.padding, &so, &linalg::Config::default())?;
        out.copy_from_slice(&y);
        Ok(())
    }

    fn fss_eval(&self, keys: &FssKeys<'_>, xs: &[u64], out: &mut [u64]) -> Result<()> {
        let count = keys.count();
        check_out("fss_eval output", count * keys.scheme.words(), out.len())?;
        match keys.scheme {
            FssScheme::Dcf => {
                let b = DcfKeyBatch::from_bytes(keys.bytes, count, keys.n_bits).map_err(fss)?;
                dcf::eval_many_par(keys.party, &b, xs, out, self.threads.max(1)).map_err(fss)
            }
            FssScheme::Dcf2 => {
                let b = Dcf2KeyBatch::from_bytes(keys.bytes, count, keys.n_bits).map_err(fss)?;
                let pairs = out.as_chunks_mut::<2>().0;
                dcf2::eval_many_par(keys.party, &b, xs, pairs, self.threads.max(1)).map_err(fss)
            }
            FssScheme::Dpf => {
                check_out("fss_eval points", count, xs.len())?;
                let len = FssScheme::Dpf.key_len(keys.n_bits);
                for ((key, &x), o) in keys.bytes.chunks_exact(len).zip(xs).zip(out.iter_mut()) {
                    *o = dpf::eval(keys.party, &DpfKey::from_bytes(key).map_err(fss)?, x).map_err(fss)?;
                }
                Ok(())
            }
        }
    }

    fn pack_bits(&self, values: &[u64], bits: u32, out: &mut [u64]) -> Result<()> {
        mpcflow_sdk::kernel::pack_bits(values, bits, out)
    }
}
