//! 3-D layers and transposed convolutions, built from the 2-D ops and matrix products every
//! protocol already computes (a 3-D UNet's layers: `Conv`, `MaxPool` and `ConvTranspose` on
//! `[N, C, D, H, W]`):
//!
//! - **`Conv` with a `kd×kh×kw` kernel**: the input, zero-padded in depth, is sliced at each of
//!   the `kd` kernel depths (with the depth stride); each slice's depths move into the batch and
//!   are convolved in 2-D with that depth's kernel plane, and the `kd` results are summed. Under
//!   fss2pc each 2-D product is truncated once, so the sum is within `kd` ulp of one rounding
//!   more than a single 3-D product would be.
//! - **`MaxPool` and `AveragePool` with a `kd×kh×kw` window**: a 2-D pool over `(H, W)` with the
//!   depths folded into the channels, then the maximum (or the sum, scaled by `1/kd`) of the `kd`
//!   depth slices. An average is rounded twice under fss2pc (the 2-D mean, then the scale), so it
//!   is within 2 ulp of the exact mean.
//! - **`ConvTranspose`** in 2-D or 3-D, any kernel, stride, pads and output padding: one matrix
//!   product of each input position's channels with the weights as `[C, O·Π(Q·s)]` gives every
//!   tap's contribution, where each axis's `k` taps are grouped into `Q = ⌈k/s⌉` groups of `s`
//!   (zero weights past `k`). Within a group no two taps reach the same output, so a reshape and
//!   a transpose put the group's taps in place (when the kernel equals the stride, as in a UNet's
//!   upsampling, that is all); the `Q` groups per axis are shifted by `q·s` and summed, and the
//!   pads cut off. Under fss2pc each product is truncated once, so an output is within `ΠQ` ulp
//!   of one rounding.
//!
//! Anything else (groups, dilations, `output_shape`, asymmetric 2-D padding of `Conv`) is
//! refused, naming the attribute.

use super::attrs::{attr_i, attr_ints};
use super::{Converter, Val};
use crate::ImportError;
use crate::proto::onnx::NodeProto;
use crate::values::Known;
use mpcflow_sdk::Op;
use mpcflow_sdk::op::Pool;

impl Converter {
    /// The rank of a layer's weight (input 1), if the file fixes it.
    pub(super) fn layer_rank(&self, n: &NodeProto) -> Option<usize> {
        match self.get(n, 1).ok()? {
            Val::Weight(k) | Val::Known(k) => Some(k.shape.len()),
            _ => None,
        }
    }

    /// Positive integers of attribute `name`, one per spatial axis (`default` when absent).
    fn spatial(&self, n: &NodeProto, name: &str, rank: usize, default: usize) -> Result<Vec<usize>, ImportError> {
        match attr_ints(n, name) {
            None => Ok(vec![default; rank]),
            Some(v) if v.len() == rank && v.iter().all(|&x| x > 0) => Ok(v.iter().map(|&x| x as usize).collect()),
            Some(v) => Err(self.err(n, format!("{name} {v:?} is not supported ({rank}-D, positive)"))),
        }
    }

    fn plain_layer(&self, n: &NodeProto) -> Result<(), ImportError> {
        if attr_i(n, "group", 1) != 1 {
            return Err(self.err(n, "only group = 1 is supported".into()));
        }
        if attr_ints(n, "dilations").is_some_and(|d| d.iter().any(|&x| x != 1)) {
            return Err(self.err(n, "only dilation 1 is supported".into()));
        }
        if auto_pad(n) {
            return Err(self.err(n, "auto_pad SAME_UPPER/SAME_LOWER is not supported; give explicit pads".into()));
        }
        Ok(())
    }

    /// The weight of a layer, which the model file fixes (a weight or a constant).
    fn layer_weight(&self, n: &NodeProto) -> Result<(Known, bool), ImportError> {
        match self.get(n, 1)? {
            Val::Weight(k) => Ok((k.clone(), true)),
            Val::Known(k) => Ok((k.clone(), false)),
            Val::Secret(_) | Val::Gelu(_) => Err(self.err(
                n,
                "its weight (input 1) must be fixed by the model file, not computed from the private input".into(),
            )),
        }
    }

    /// `k` as a weight derived from the layer's (or a constant, when the file fixed it as one).
    fn layer_part(&mut self, n: &NodeProto, name: &str, k: Known, weight: bool) -> String {
        if weight {
            self.derived_weight(&format!("{}_{name}", n.input[1]), k)
        } else {
            self.place(&format!("{}_{name}", n.input[1]), k, false)
        }
    }

    /// The bias of a layer with `o` outputs as `[o, 1, …]` for `spatial` trailing axes, if any.
    fn layer_bias(&mut self, n: &NodeProto, o: usize, spatial: usize) -> Result<Option<String>, ImportError> {
        if self.opt(n, 2).is_none() {
            return Ok(None);
        }
        let b = self.known(n, 2, "bias")?;
        if b.data.len() != o {
            return Err(self.err(n, format!("a bias of {} values for {o} output channels", b.data.len())));
        }
        let shape: Vec<usize> = std::iter::once(o).chain(std::iter::repeat_n(1, spatial)).collect();
        Ok(Some(self.derived_weight(&n.input[2], Known { shape, ..b })))
    }

    /// `Conv` on `[N, C, D, H, W]` (see the module docs).
    pub(super) fn conv3d(&mut self, n: &NodeProto, base: &str) -> Result<(), ImportError> {
        self.plain_layer(n)?;
        let x = self.operand(n, 0)?;
        let xs = self.shape_of(&x);
        let (w, weight) = self.layer_weight(n)?;
        let [o, c, kd, kh, kw] = w.shape[..] else {
            return Err(self.err(n, format!("a 3-D convolution needs a weight of rank 5, not {:?}", w.shape)));
        };
        if xs.len() != 5 || xs[1] != c {
            return Err(self.err(n, format!("input {xs:?} does not fit the weight {:?}", w.shape)));
        }
        let stride = self.spatial(n, "strides", 3, 1)?;
        let pads = attr_ints(n, "pads").unwrap_or_else(|| vec![0; 6]);
        if pads.len() != 6 || pads.iter().any(|&p| p < 0) || pads[1] != pads[4] || pads[2] != pads[5] {
            return Err(
                self.err(n, format!("pads {pads:?} are not supported (3-D, the same on both sides of H and W)"))
            );
        }
        let (pd0, pd1) = (pads[0] as usize, pads[3] as usize);
        let (nb, d) = (xs[0], xs[2]);
        let depth = d + pd0 + pd1;
        if depth < kd {
            return Err(self.err(n, format!("a kernel depth of {kd} over {depth} padded depths")));
        }
        let d_out = (depth - kd) / stride[0] + 1;
        // Zero depths: a scalar constant broadcast (the pipeline file holds one number).
        let zeros = |s: &mut Self, at: usize, len: usize| -> Result<String, ImportError> {
            let zero = s.place(&format!("{base}_zero"), Known { shape: vec![], data: vec![0.0], int: false }, false);
            let shape = vec![nb, c, len, xs[3], xs[4]];
            s.emit(n, &format!("{base}_depth_pad{at}"), Op::Broadcast { shape }, vec![zero])
        };
        let mut padded = x;
        if pd0 > 0 || pd1 > 0 {
            let mut parts = vec![];
            if pd0 > 0 {
                parts.push(zeros(self, 0, pd0)?);
            }
            parts.push(padded);
            if pd1 > 0 {
                parts.push(zeros(self, 1, pd1)?);
            }
            padded = self.emit(n, &format!("{base}_padded"), Op::Concat { axis: 2 }, parts)?;
        }
        let plane = c * kh * kw;
        let mut terms = vec![];
        for i in 0..kd {
            let end = (i + stride[0] * (d_out - 1) + 1) as i64;
            let slice =
                Op::Slice { starts: vec![i as i64], ends: vec![end], axes: vec![2], steps: vec![stride[0] as i64] };
            let s = self.emit(n, &format!("{base}_depth{i}"), slice, vec![padded.clone()])?;
            let s = self.emit(n, &format!("{base}_depth{i}"), Op::Transpose { perm: vec![0, 2, 1, 3, 4] }, vec![s])?;
            let batch = Op::Reshape { shape: vec![(nb * d_out) as i64, c as i64, xs[3] as i64, xs[4] as i64] };
            let s = self.emit(n, &format!("{base}_depth{i}"), batch, vec![s])?;
            // Kernel plane i: W[:, :, i] as [O, C, kh, kw].
            let data: Vec<f64> = (0..o * c)
                .flat_map(|oc| w.data[(oc * kd + i) * kh * kw..(oc * kd + i + 1) * kh * kw].iter().copied())
                .collect();
            debug_assert_eq!(data.len(), o * plane);
            let wi =
                self.layer_part(n, &format!("depth{i}"), Known { shape: vec![o, c, kh, kw], data, int: false }, weight);
            let conv = Op::Conv2d { stride: [stride[1], stride[2]], padding: [pads[1] as usize, pads[2] as usize] };
            terms.push(self.emit(n, &format!("{base}_conv{i}"), conv, vec![s, wi])?);
        }
        let mut sum = terms.remove(0);
        for (i, t) in terms.into_iter().enumerate() {
            sum = self.emit(n, &format!("{base}_sum{i}"), Op::Add, vec![sum, t])?;
        }
        let ys = self.shape_of(&sum);
        let unbatch = Op::Reshape { shape: vec![nb as i64, d_out as i64, o as i64, ys[2] as i64, ys[3] as i64] };
        let y = self.emit(n, &format!("{base}_volume"), unbatch, vec![sum])?;
        let mut out = self.emit(n, base, Op::Transpose { perm: vec![0, 2, 1, 3, 4] }, vec![y])?;
        if let Some(b) = self.layer_bias(n, o, 3)? {
            out = self.emit(n, base, Op::Add, vec![out, b])?;
        }
        self.set(n, Val::Secret(out));
        Ok(())
    }

    /// `MaxPool` or `AveragePool` on `[N, C, D, H, W]` (see the module docs).
    pub(super) fn pool3d(&mut self, n: &NodeProto, base: &str, max: bool) -> Result<(), ImportError> {
        if auto_pad(n) {
            return Err(self.err(n, "auto_pad SAME_UPPER/SAME_LOWER is not supported; give explicit pads".into()));
        }
        if attr_ints(n, "dilations").is_some_and(|d| d.iter().any(|&x| x != 1)) {
            return Err(self.err(n, "only dilation 1 is supported".into()));
        }
        if attr_i(n, "ceil_mode", 0) != 0 {
            return Err(self.err(n, "ceil_mode = 1 is not supported".into()));
        }
        if attr_ints(n, "pads").is_some_and(|p| p.iter().any(|&x| x != 0)) {
            return Err(self.err(n, "a 3-D pool with padding is not supported".into()));
        }
        let kernel = self.spatial(n, "kernel_shape", 3, 0)?;
        let stride = self.spatial(n, "strides", 3, 1)?;
        let x = self.operand(n, 0)?;
        let xs = self.shape_of(&x);
        if xs.len() != 5 || xs[2] < kernel[0] {
            return Err(self.err(n, format!("a 3-D window {kernel:?} over an input of shape {xs:?}")));
        }
        let (nb, c, d) = (xs[0] as i64, xs[1] as i64, xs[2]);
        let folded = self.emit(
            n,
            &format!("{base}_planes"),
            Op::Reshape { shape: vec![nb, c * d as i64, xs[3] as i64, xs[4] as i64] },
            vec![x],
        )?;
        let pool = Pool { kernel: [kernel[1], kernel[2]], stride: [stride[1], stride[2]], padding: [0, 0] };
        let op = if max { Op::Maxpool(pool) } else { Op::Avgpool(pool) };
        let pooled = self.emit(n, &format!("{base}_planes"), op, vec![folded])?;
        let ps = self.shape_of(&pooled);
        let unfold = Op::Reshape { shape: vec![nb, c, d as i64, ps[2] as i64, ps[3] as i64] };
        let pooled = self.emit(n, &format!("{base}_planes"), unfold, vec![pooled])?;
        let d_out = (d - kernel[0]) / stride[0] + 1;
        let mut best: Option<String> = None;
        for j in 0..kernel[0] {
            let end = (j + stride[0] * (d_out - 1) + 1) as i64;
            let slice =
                Op::Slice { starts: vec![j as i64], ends: vec![end], axes: vec![2], steps: vec![stride[0] as i64] };
            let s = self.emit(n, &format!("{base}_depth{j}"), slice, vec![pooled.clone()])?;
            let combine = if max { Op::Max { axis: None } } else { Op::Add };
            best = Some(match best {
                None => s,
                Some(b) => self.emit(n, base, combine, vec![b, s])?,
            });
        }
        let mut out = best.ok_or_else(|| self.err(n, "an empty window".into()))?;
        if !max && kernel[0] > 1 {
            out = self.emit(n, base, Op::Scale { factor: 1.0 / kernel[0] as f64 }, vec![out])?;
        }
        self.set(n, Val::Secret(out));
        Ok(())
    }

    /// `ConvTranspose` in 2-D or 3-D (see the module docs).
    pub(super) fn conv_transpose(&mut self, n: &NodeProto, base: &str) -> Result<(), ImportError> {
        self.plain_layer(n)?;
        if attr_ints(n, "output_shape").is_some() {
            return Err(self.err(n, "output_shape is not supported; give pads and output_padding".into()));
        }
        let x = self.operand(n, 0)?;
        let xs = self.shape_of(&x);
        let (w, weight) = self.layer_weight(n)?;
        let r = w.shape.len().saturating_sub(2);
        if !(2..=3).contains(&r) || xs.len() != r + 2 || xs[1] != w.shape[0] || xs.contains(&0) || w.shape.contains(&0)
        {
            return Err(self.err(
                n,
                format!("input {xs:?} and weight {:?}: 2-D or 3-D, C first in the weight, no empty axis", w.shape),
            ));
        }
        let (c, o) = (w.shape[0], w.shape[1]);
        let kernel = w.shape[2..].to_vec();
        let stride = self.spatial(n, "strides", r, 1)?;
        let pads = attr_ints(n, "pads").unwrap_or_else(|| vec![0; 2 * r]);
        let extra = attr_ints(n, "output_padding").unwrap_or_else(|| vec![0; r]);
        if pads.len() != 2 * r || pads.iter().any(|&p| p < 0) {
            return Err(self.err(n, format!("pads {pads:?}: {} non-negative values", 2 * r)));
        }
        if extra.len() != r || extra.iter().zip(&stride).any(|(&e, &s)| e < 0 || e as usize >= s) {
            return Err(
                self.err(n, format!("output_padding {extra:?}: one per axis, each below its stride {stride:?}"))
            );
        }
        // Per axis: the full output s·(S−1)+k, cut by the pads and lengthened by output_padding.
        let mut out = vec![];
        for a in 0..r {
            let full = stride[a] * (xs[2 + a] - 1) + kernel[a] + extra[a] as usize;
            let cut = (pads[a] + pads[r + a]) as usize;
            if full <= cut {
                return Err(self.err(n, format!("pads {pads:?} leave nothing of an output of {full} on axis {a}")));
            }
            out.push(full - cut);
        }
        // Kernel taps split per axis into Q = ⌈k/s⌉ groups of s (zero weights past k).
        let groups: Vec<usize> = kernel.iter().zip(&stride).map(|(&k, &s)| k.div_ceil(s)).collect();
        let padded: Vec<usize> = groups.iter().zip(&stride).map(|(&q, &s)| q * s).collect();
        let taps: usize = padded.iter().product();
        let mut data = vec![0.0; c * o * taps];
        let in_kernel: usize = kernel.iter().product();
        for co in 0..c * o {
            for t in 0..in_kernel {
                // Tap t's coordinates in the kernel, then its index in the padded kernel.
                let (mut rest, mut at, mut scale) = (t, 0, 1);
                for a in (0..r).rev() {
                    at += (rest % kernel[a]) * scale;
                    rest /= kernel[a];
                    scale *= padded[a];
                }
                data[co * taps + at] = w.data[co * in_kernel + t];
            }
        }
        let positions: usize = xs[0] * xs[2..].iter().product::<usize>();
        // [N, C, S…] → [N, S…, C] → [N·ΠS, C].
        let mut perm = vec![0];
        perm.extend(2..r + 2);
        perm.push(1);
        let t = self.emit(n, &format!("{base}_positions"), Op::Transpose { perm }, vec![x])?;
        let t = self.emit(
            n,
            &format!("{base}_positions"),
            Op::Reshape { shape: vec![positions as i64, c as i64] },
            vec![t],
        )?;
        let wm = self.layer_part(n, "taps", Known { shape: vec![c, o * taps], data, int: false }, weight);
        let y = self.emit(n, &format!("{base}_taps"), Op::Matmul, vec![t, wm])?;
        // [N, S…, O, Q1, s1, Q2, s2, …].
        let mut split: Vec<i64> = xs.iter().enumerate().filter(|&(i, _)| i != 1).map(|(_, &d)| d as i64).collect();
        split.push(o as i64);
        for a in 0..r {
            split.extend([groups[a] as i64, stride[a] as i64]);
        }
        let y = self.emit(n, &format!("{base}_taps"), Op::Reshape { shape: split }, vec![y])?;
        // The canvas: every group's block placed, long enough for the pads and output_padding.
        let canvas: Vec<usize> =
            (0..r).map(|a| ((xs[2 + a] + groups[a] - 1) * stride[a]).max(pads[a] as usize + out[a])).collect();
        let mut sum: Option<String> = None;
        let blocks: usize = groups.iter().product();
        for b in 0..blocks {
            let mut q = vec![0; r];
            let mut rest = b;
            for a in (0..r).rev() {
                q[a] = rest % groups[a];
                rest /= groups[a];
            }
            let name = format!("{base}_group{b}");
            let mut block = y.clone();
            if blocks > 1 {
                let axes: Vec<i64> = (0..r).map(|a| (r + 2 + 2 * a) as i64).collect();
                let starts: Vec<i64> = q.iter().map(|&v| v as i64).collect();
                let ends: Vec<i64> = q.iter().map(|&v| v as i64 + 1).collect();
                block = self.emit(n, &name, Op::Slice { starts, ends, axes, steps: vec![] }, vec![block])?;
            }
            // [N, S…, O, 1, s1, …] → [N, O, S1, s1, S2, s2, …, 1…] → [N, O, S1·s1, …].
            let mut perm = vec![0, r + 1];
            for a in 0..r {
                perm.extend([1 + a, r + 3 + 2 * a]);
            }
            perm.extend((0..r).map(|a| r + 2 + 2 * a));
            block = self.emit(n, &name, Op::Transpose { perm }, vec![block])?;
            let mut placed = vec![xs[0], o];
            placed.extend((0..r).map(|a| xs[2 + a] * stride[a]));
            let shape = placed.iter().map(|&d| d as i64).collect();
            block = self.emit(n, &name, Op::Reshape { shape }, vec![block])?;
            // Shift group q by q·s along each axis, zeros around it up to the canvas.
            for a in 0..r {
                let (front, len) = (q[a] * stride[a], placed[2 + a]);
                let back = canvas[a] - front - len;
                let mut parts = vec![];
                for (side, count) in [(0, front), (1, back)] {
                    if count == 0 {
                        continue;
                    }
                    let zero = self.place(
                        &format!("{base}_zero"),
                        Known { shape: vec![], data: vec![0.0], int: false },
                        false,
                    );
                    let mut shape = placed.clone();
                    shape[2 + a] = count;
                    let z = self.emit(n, &format!("{name}_pad{a}{side}"), Op::Broadcast { shape }, vec![zero])?;
                    parts.push((side, z));
                }
                if parts.is_empty() {
                    continue;
                }
                let mut cat: Vec<String> = parts.iter().filter(|(s, _)| *s == 0).map(|(_, z)| z.clone()).collect();
                cat.push(block);
                cat.extend(parts.iter().filter(|(s, _)| *s == 1).map(|(_, z)| z.clone()));
                block = self.emit(n, &name, Op::Concat { axis: (2 + a) as i64 }, cat)?;
                placed[2 + a] = canvas[a];
            }
            sum = Some(match sum {
                None => block,
                Some(s) => self.emit(n, &format!("{base}_sum"), Op::Add, vec![s, block])?,
            });
        }
        let mut y = sum.ok_or_else(|| self.err(n, "an empty kernel".into()))?;
        // Cut the pads off.
        if (0..r).any(|a| pads[a] != 0 || canvas[a] != out[a]) {
            let axes = (0..r).map(|a| (2 + a) as i64).collect();
            let starts = (0..r).map(|a| pads[a]).collect();
            let ends = (0..r).map(|a| pads[a] + out[a] as i64).collect();
            y = self.emit(n, base, Op::Slice { starts, ends, axes, steps: vec![] }, vec![y])?;
        }
        if let Some(b) = self.layer_bias(n, o, r)? {
            y = self.emit(n, base, Op::Add, vec![y, b])?;
        }
        self.set(n, Val::Secret(y));
        Ok(())
    }
}

/// Whether `n` asks for automatic padding.
fn auto_pad(n: &NodeProto) -> bool {
    super::attrs::attr(n, "auto_pad").is_some_and(|a| !matches!(a.s(), b"NOTSET" | b"VALID" | b""))
}
