//! Linear layers: `MatMul`, `Gemm`, `Conv` and `BatchNormalization`.
//!
//! Their weights are the model owner's, and the importer runs at the model owner's, so every
//! transform of a weight alone happens here: `Gemm`'s `transB` and `alpha` fold into the weight,
//! a `BatchNormalization` that only follows a `Conv` folds into its weight and bias, and any
//! other batch norm becomes one per-channel affine map with scale and shift computed at import.

use super::attrs::{attr_f, attr_i, attr_ints};
use super::{Converter, Val};
use crate::ImportError;
use crate::proto::onnx::NodeProto;
use crate::values::Known;
use mpcflow_sdk::Op;

impl Converter {
    /// `MatMul`, with numpy's rules for 1-D operands.
    pub(super) fn matmul(&mut self, n: &NodeProto, base: &str) -> Result<(), ImportError> {
        // numpy.matmul semantics: a 1-D operand is a row (left) or column (right) vector
        // whose added dimension is dropped from the result.
        let (mut a, mut b) = (self.operand(n, 0)?, self.operand(n, 1)?);
        let (ra, rb) = (self.shape_of(&a).len(), self.shape_of(&b).len());
        if ra == 1 {
            a = self.emit(n, &format!("{base}_row"), Op::Reshape { shape: vec![1, -1] }, vec![a])?;
        }
        if rb == 1 {
            b = self.emit(n, &format!("{base}_col"), Op::Reshape { shape: vec![-1, 1] }, vec![b])?;
        }
        let mut out = self.emit(n, base, Op::Matmul, vec![a, b])?;
        if ra == 1 || rb == 1 {
            let mut shape: Vec<usize> = self.shape_of(&out);
            let r = shape.len();
            if rb == 1 {
                shape.remove(r - 1);
            }
            if ra == 1 {
                shape.remove(r - 2);
            }
            let op_ = Op::Reshape { shape: shape.iter().map(|&d| d as i64).collect() };
            out = self.emit(n, &format!("{base}_vec"), op_, vec![out])?;
        }
        self.set(n, Val::Secret(out));
        Ok(())
    }

    pub(super) fn gemm(&mut self, n: &NodeProto, base: &str) -> Result<(), ImportError> {
        let alpha = attr_f(n, "alpha", 1.0);
        let beta = attr_f(n, "beta", 1.0);
        let (ta, tb) = (attr_i(n, "transA", 0) != 0, attr_i(n, "transB", 0) != 0);
        let mut a = self.operand(n, 0)?;
        if ta {
            a = self.emit(n, &format!("{base}_at"), Op::Transpose { perm: vec![1, 0] }, vec![a])?;
        }
        let secret_b = matches!(self.get(n, 1)?, Val::Secret(_) | Val::Gelu(_));
        let b = match self.get(n, 1)?.clone() {
            Val::Secret(_) | Val::Gelu(_) => {
                let b = self.operand(n, 1)?;
                if tb { self.emit(n, &format!("{base}_bt"), Op::Transpose { perm: vec![1, 0] }, vec![b])? } else { b }
            }
            Val::Known(k) | Val::Weight(k) => {
                // Fold the transpose and α into the weight.
                let mut k =
                    if tb { k.transpose(&[1, 0]).map_err(|e| self.err(n, format!("transB: {e}")))? } else { k };
                if alpha != 1.0 {
                    k.data.iter_mut().for_each(|x| *x *= alpha);
                }
                if tb || alpha != 1.0 { self.derived_weight(&n.input[1], k) } else { self.operand(n, 1)? }
            }
        };
        let mut out = self.emit(n, &format!("{base}_mm"), Op::Matmul, vec![a, b])?;
        if secret_b && alpha != 1.0 {
            out = self.emit(n, &format!("{base}_alpha"), Op::Scale { factor: alpha }, vec![out])?;
        }
        if self.opt(n, 2).is_some() {
            let c = match self.get(n, 2)?.clone() {
                Val::Known(mut k) | Val::Weight(mut k) if beta != 1.0 => {
                    k.data.iter_mut().for_each(|x| *x *= beta);
                    self.derived_weight(&n.input[2], k)
                }
                _ if beta != 1.0 => {
                    let c = self.operand(n, 2)?;
                    self.emit(n, &format!("{base}_beta"), Op::Scale { factor: beta }, vec![c])?
                }
                _ => self.operand(n, 2)?,
            };
            out = self.emit(n, base, Op::Add, vec![out, c])?;
        }
        self.set(n, Val::Secret(out));
        Ok(())
    }

    pub(super) fn conv(&mut self, n: &NodeProto, base: &str) -> Result<(), ImportError> {
        if attr_i(n, "group", 1) != 1 {
            return Err(self.err(n, "only group = 1 is supported".into()));
        }
        if attr_ints(n, "dilations").is_some_and(|d| d.iter().any(|&x| x != 1)) {
            return Err(self.err(n, "only dilation 1 is supported".into()));
        }
        let stride = self.pair(n, "strides", [1, 1])?;
        let padding = self.pads(n)?;
        let x = self.operand(n, 0)?;
        let mut bias = match self.opt(n, 2) {
            Some(_) => Some(self.known(n, 2, "bias")?),
            None => None,
        };
        // A BatchNormalization that alone reads this output folds into the weight and bias:
        // y = s·(W∗x + b − mean) + β = (s·W)∗x + s·(b − mean) + β, with s = γ / sqrt(var + ε).
        let bn = n.output.first().and_then(|o| self.bn_after.get(o)).cloned();
        let fold = match (&bn, self.get(n, 1)?) {
            (Some(bn), Val::Weight(w)) if attr_i(bn, "training_mode", 0) == 0 => {
                let stats: Option<Vec<Known>> = (1..5)
                    .map(|i| match self.opt(bn, i) {
                        Some(Val::Known(k) | Val::Weight(k)) => Some(k.clone()),
                        _ => None,
                    })
                    .collect();
                // Fold only what fits: one statistic per output channel, a bias of that length
                // and an output to name; anything else is left to BatchNormalization's own
                // conversion, which refuses it with a message.
                let o = w.shape.first().copied().unwrap_or(0);
                let fits = |k: &Known| k.data.len() == o;
                stats
                    .filter(|st| {
                        o > 0 && st.iter().all(fits) && bias.as_ref().is_none_or(fits) && !bn.output.is_empty()
                    })
                    .map(|st| (bn.clone(), w.clone(), st))
            }
            _ => None,
        };
        let (w, out_name) = match fold {
            Some((bn, mut w, st)) => {
                let eps = attr_f(&bn, "epsilon", 1e-5);
                let o = w.shape[0];
                let per = w.data.len() / o.max(1);
                let sc: Vec<f64> = (0..o).map(|c| st[0].data[c] / (st[3].data[c] + eps).sqrt()).collect();
                for (c, chunk) in w.data.chunks_mut(per).enumerate() {
                    chunk.iter_mut().for_each(|x| *x *= sc[c]);
                }
                let b0 = bias.as_ref().map_or(vec![0.0; o], |b| b.data.clone());
                let folded: Vec<f64> = (0..o).map(|c| sc[c] * (b0[c] - st[2].data[c]) + st[1].data[c]).collect();
                bias = Some(Known { shape: vec![o], data: folded, int: false });
                let bn_out = bn.output[0].clone();
                self.folded.insert(bn_out.clone());
                (self.derived_weight(&n.input[1], w), bn_out)
            }
            None => (self.operand(n, 1)?, base.to_string()),
        };
        let mut out = self.emit(n, &format!("{out_name}_conv"), Op::Conv2d { stride, padding }, vec![x, w])?;
        if let Some(b) = bias {
            let o = b.data.len();
            let named = n.input.get(2).filter(|s| !s.is_empty()).cloned();
            let bias_base = named.unwrap_or_else(|| format!("{}_bias", n.input[1]));
            let bias = self.derived_weight(&bias_base, Known { shape: vec![o, 1, 1], ..b });
            out = self.emit(n, &out_name, Op::Add, vec![out, bias])?;
        }
        self.set(n, Val::Secret(out.clone()));
        if out_name != base {
            self.vals.insert(out_name, Val::Secret(out));
        }
        Ok(())
    }

    /// `y = (x - mean) / sqrt(var + ε) · γ + β` as one per-channel affine map whose scale and
    /// shift are computed at import: a BatchNormalization that no `Conv` before it absorbed
    /// (directly after a `Conv`, [`Self::conv`] folds it into the weight and bias instead).
    pub(super) fn batchnorm(&mut self, n: &NodeProto, base: &str) -> Result<(), ImportError> {
        if attr_i(n, "training_mode", 0) != 0 {
            return Err(self.err(n, "training_mode = 1 is not supported (export the model in inference mode)".into()));
        }
        let eps = attr_f(n, "epsilon", 1e-5);
        let [g, b, m, v] = [1, 2, 3, 4].map(|i| self.known(n, i, "statistics"));
        let (g, b, m, v) = (g?, b?, m?, v?);
        let c = g.data.len();
        let scale: Vec<f64> = (0..c).map(|i| g.data[i] / (v.data[i] + eps).sqrt()).collect();
        let shift: Vec<f64> = (0..c).map(|i| b.data[i] - m.data[i] * scale[i]).collect();
        let x = self.operand(n, 0)?;
        let rank = self.shape_of(&x).len();
        let bshape: Vec<usize> = std::iter::once(c).chain(std::iter::repeat_n(1, rank.saturating_sub(2))).collect();
        let s = self.derived_weight(&format!("{base}_scale"), Known { shape: bshape.clone(), data: scale, int: false });
        let t = self.derived_weight(&format!("{base}_shift"), Known { shape: bshape, data: shift, int: false });
        let y = self.emit(n, &format!("{base}_scaled"), Op::Mul, vec![x, s])?;
        let out = self.emit(n, base, Op::Add, vec![y, t])?;
        self.set(n, Val::Secret(out));
        Ok(())
    }
}
