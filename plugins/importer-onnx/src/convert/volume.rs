//! 3-D layers and transposed convolutions, built from the 2-D ops and matrix products every
//! protocol already computes (a 3-D UNet's layers: `Conv`, `MaxPool` and `ConvTranspose` on
//! `[N, C, D, H, W]`):
//!
//! - **`Conv` with a `kd×kh×kw` kernel**: the input, zero-padded in depth, is sliced at each of
//!   the `kd` kernel depths (with the depth stride); each slice's depths move into the batch and
//!   are convolved in 2-D with that depth's kernel plane, and the `kd` results are summed. Under
//!   fss2pc each 2-D product is truncated once, so the sum is within `kd` ulp of one rounding
//!   more than a single 3-D product would be.
//! - **`MaxPool` with a `kd×kh×kw` window**: a 2-D max pool over `(H, W)` with the depths folded
//!   into the channels, then the maximum of the `kd` depth slices.
//! - **`ConvTranspose` whose kernel equals its stride, without padding** (a UNet's upsampling, in
//!   2-D or 3-D): no two kernel taps reach the same output, so it is one matrix product of each
//!   position's channels with the weights as `[C, O·Πk]`, whose taps a reshape and a transpose
//!   then put in place.
//!
//! Anything else (groups, dilations, other transposed strides, asymmetric 2-D padding) is
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
            Val::Secret(_) | Val::Gelu(_) => {
                Err(self.err(n, "a weight computed from the private input is not supported in this layer".into()))
            }
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

    /// `MaxPool` on `[N, C, D, H, W]` (see the module docs).
    pub(super) fn maxpool3d(&mut self, n: &NodeProto, base: &str) -> Result<(), ImportError> {
        if attr_ints(n, "dilations").is_some_and(|d| d.iter().any(|&x| x != 1)) {
            return Err(self.err(n, "only dilation 1 is supported".into()));
        }
        if attr_i(n, "ceil_mode", 0) != 0 {
            return Err(self.err(n, "ceil_mode = 1 is not supported".into()));
        }
        if attr_ints(n, "pads").is_some_and(|p| p.iter().any(|&x| x != 0)) {
            return Err(self.err(n, "a 3-D max pool with padding is not supported".into()));
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
        let pooled = self.emit(n, &format!("{base}_planes"), Op::Maxpool(pool), vec![folded])?;
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
            best = Some(match best {
                None => s,
                Some(b) => self.emit(n, base, Op::Max { axis: None }, vec![b, s])?,
            });
        }
        let out = best.ok_or_else(|| self.err(n, "an empty window".into()))?;
        self.set(n, Val::Secret(out));
        Ok(())
    }

    /// `ConvTranspose` whose kernel equals its stride, without padding (see the module docs).
    pub(super) fn conv_transpose(&mut self, n: &NodeProto, base: &str) -> Result<(), ImportError> {
        self.plain_layer(n)?;
        for name in ["output_padding", "output_shape"] {
            if attr_ints(n, name).is_some_and(|v| v.iter().any(|&x| x != 0)) {
                return Err(self.err(n, format!("{name} is not supported")));
            }
        }
        let x = self.operand(n, 0)?;
        let xs = self.shape_of(&x);
        let (w, weight) = self.layer_weight(n)?;
        let r = w.shape.len().saturating_sub(2);
        if !(2..=3).contains(&r) || xs.len() != r + 2 || xs[1] != w.shape[0] {
            return Err(
                self.err(n, format!("input {xs:?} and weight {:?}: 2-D or 3-D, C first in the weight", w.shape))
            );
        }
        let (c, o) = (w.shape[0], w.shape[1]);
        let kernel = w.shape[2..].to_vec();
        let stride = self.spatial(n, "strides", r, 1)?;
        if stride != kernel || attr_ints(n, "pads").is_some_and(|p| p.iter().any(|&x| x != 0)) {
            return Err(self.err(
                n,
                format!("strides {stride:?} with kernel {kernel:?}: only a kernel equal to its stride, without pads, is supported"),
            ));
        }
        let taps: usize = kernel.iter().product();
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
        // W [C, O, k…] is already [C, O·Πk] in memory.
        let wm = self.layer_part(n, "taps", Known { shape: vec![c, o * taps], ..w }, weight);
        let y = self.emit(n, &format!("{base}_taps"), Op::Matmul, vec![t, wm])?;
        // [N, S…, O, k…] → [N, O, S1, k1, S2, k2, …] → [N, O, S1·k1, …].
        let mut split: Vec<i64> = xs.iter().enumerate().filter(|&(i, _)| i != 1).map(|(_, &d)| d as i64).collect();
        split.push(o as i64);
        split.extend(kernel.iter().map(|&k| k as i64));
        let y = self.emit(n, &format!("{base}_taps"), Op::Reshape { shape: split }, vec![y])?;
        let mut perm = vec![0, r + 1];
        for a in 0..r {
            perm.extend([1 + a, r + 2 + a]);
        }
        let y = self.emit(n, &format!("{base}_taps"), Op::Transpose { perm }, vec![y])?;
        let mut shape = vec![xs[0] as i64, o as i64];
        shape.extend((0..r).map(|a| (xs[2 + a] * kernel[a]) as i64));
        let mut out = self.emit(n, base, Op::Reshape { shape }, vec![y])?;
        if let Some(b) = self.layer_bias(n, o, r)? {
            out = self.emit(n, base, Op::Add, vec![out, b])?;
        }
        self.set(n, Val::Secret(out));
        Ok(())
    }
}

/// Whether `n` asks for automatic padding.
fn auto_pad(n: &NodeProto) -> bool {
    super::attrs::attr(n, "auto_pad").is_some_and(|a| !matches!(a.s(), b"NOTSET" | b"VALID" | b""))
}
