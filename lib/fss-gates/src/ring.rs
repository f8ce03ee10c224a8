//! Ring-mode evaluation with the session's kernel: plain matrix products and convolutions are
//! offered to the kernel plugin (a GPU) first; everything else, and whatever the kernel
//! declines, runs on the `mpcflow-ring` library ([`apply`]).

use crate::accel::Accel;
use mpcflow_sdk::kernel::Conv2dGeometry;
use mpcflow_sdk::{Op, Result};

pub use mpcflow_ring::ring::{apply, via_ref};

/// [`apply`], with plain (unbatched) matrix products and convolutions offered to the session's
/// kernel first.
pub fn apply_with(accel: &Accel, op: &Op, inputs: &[&[u64]], shapes: &[&[usize]], shape: &[usize]) -> Result<Vec<u64>> {
    match (op, inputs, shapes) {
        (Op::Matmul, &[a, b], &[&[m, k], &[k2, n]])
            if k == k2 && shape == [m, n] && a.len() == m * k && b.len() == k * n =>
        {
            if let Some(c) = accel.matmul(a, b, [m, k, n])? {
                return Ok(c);
            }
        }
        (Op::Conv2d { stride, padding }, &[x, w], &[&[nb, c, h, wd], &[o, c2, kh, kw]])
            if c == c2
                && shape.len() == 4
                && shape[..2] == [nb, o]
                && x.len() == nb * c * h * wd
                && w.len() == o * c * kh * kw =>
        {
            let g = Conv2dGeometry {
                batch: nb,
                channels: c,
                input: [h, wd],
                out_channels: o,
                kernel: [kh, kw],
                stride: *stride,
                padding: *padding,
                output: [shape[2], shape[3]],
            };
            let fits = mpcflow_sdk::shape::window_out(h, kh, stride[0], padding[0]) == Some(shape[2])
                && mpcflow_sdk::shape::window_out(wd, kw, stride[1], padding[1]) == Some(shape[3]);
            if fits && let Some(y) = accel.conv2d(x, w, &g)? {
                return Ok(y);
            }
        }
        _ => {}
    }
    let cfg = mpcflow_ring::linalg::Config { threads: accel.threads(), ..Default::default() };
    mpcflow_ring::ring::apply_config(op, inputs, shapes, shape, &cfg)
}
