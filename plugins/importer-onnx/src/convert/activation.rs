//! Nonlinear functions: `Relu`, `Sigmoid`, `Tanh`, `Exp`, `Sqrt`, `Neg`, `Reciprocal`, `Gelu`,
//! `LeakyRelu`, `Clip` and `Softmax`.
//!
//! Each maps onto the graph's own secure op (or a few of them: `LeakyRelu` as one comparison
//! and public scales, `Clip` as `max`/`min` with public bounds, an opset < 13 `Softmax` as
//! reshapes around a row softmax), so that the protocol, not the importer, decides how each
//! nonlinearity is computed securely.

use super::attrs::{attr, attr_f, attr_i};
use super::{Converter, Val};
use crate::ImportError;
use crate::proto::onnx::NodeProto;
use crate::values::Known;
use mpcflow_sdk::Op;

impl Converter {
    /// The one-input functions that are one graph op each.
    pub(super) fn unary(&mut self, n: &NodeProto, base: &str, op: &str) -> Result<(), ImportError> {
        let op_ = match op {
            "Relu" => Op::Relu,
            "Sigmoid" => Op::Sigmoid,
            "Tanh" => Op::Tanh,
            "Exp" => Op::Exp,
            "Sqrt" => Op::Sqrt,
            "Neg" => Op::Neg,
            "Reciprocal" => Op::Reciprocal,
            _ => {
                if attr(n, "approximate").is_some_and(|a| a.s() != b"none") {
                    return Err(self.err(n, "only approximate=\"none\" (the erf form) is supported".into()));
                }
                Op::Gelu
            }
        };
        let x = self.operand(n, 0)?;
        let out = self.emit(n, base, op_, vec![x])?;
        self.set(n, Val::Secret(out));
        Ok(())
    }

    /// `LeakyRelu`.
    pub(super) fn leaky_relu(&mut self, n: &NodeProto, base: &str) -> Result<(), ImportError> {
        // (1 - α)·relu(x) + α·x: one comparison, no product of secrets.
        let alpha = attr_f(n, "alpha", 0.01);
        let x = self.operand(n, 0)?;
        let r = self.emit(n, &format!("{base}_relu"), Op::Relu, vec![x.clone()])?;
        let a = self.emit(n, &format!("{base}_pos"), Op::Scale { factor: 1.0 - alpha }, vec![r])?;
        let b = self.emit(n, &format!("{base}_neg"), Op::Scale { factor: alpha }, vec![x])?;
        let out = self.emit(n, base, Op::Add, vec![a, b])?;
        self.set(n, Val::Secret(out));
        Ok(())
    }

    /// `Clip` with known bounds (inputs from opset 11, attributes before).
    pub(super) fn clip(&mut self, n: &NodeProto, base: &str) -> Result<(), ImportError> {
        let (lo, hi) = if self.opset >= 11 {
            let bound = |s: &Self, i| s.opt(n, i).map(|_| s.known(n, i, "bound")).transpose();
            (bound(self, 1)?.map(|k| k.data[0]), bound(self, 2)?.map(|k| k.data[0]))
        } else {
            (attr(n, "min").map(|a| f64::from(a.f())), attr(n, "max").map(|a| f64::from(a.f())))
        };
        let mut x = self.operand(n, 0)?;
        for (bound, is_lo) in [(lo, true), (hi, false)] {
            if let Some(b) = bound {
                let bound = Known { shape: vec![], data: vec![b], int: false };
                let side = if is_lo { "min" } else { "max" };
                let c = self.place_as(&format!("\u{0}clip:{base}:{side}"), &format!("{base}_{side}"), bound, false);
                let op_ = if is_lo { Op::Max { axis: None } } else { Op::Min { axis: None } };
                x = self.emit(n, base, op_, vec![x, c])?;
            }
        }
        self.set(n, Val::Secret(x));
        Ok(())
    }

    /// `Softmax` before opset 13, over the flattened trailing dimensions.
    pub(super) fn softmax_rows(&mut self, n: &NodeProto, base: &str) -> Result<(), ImportError> {
        // Before opset 13, Softmax flattens to [dims before axis, dims from axis on],
        // normalises each row, and restores the shape.
        let x = self.operand(n, 0)?;
        let shape = self.shape_of(&x);
        let axis = mpcflow_sdk::shape::norm_axis(attr_i(n, "axis", 1), shape.len()).map_err(|e| self.err(n, e.0))?;
        let rows: usize = shape[..axis].iter().product();
        let flat = Op::Reshape { shape: vec![rows as i64, -1] };
        let f = self.emit(n, &format!("{base}_rows"), flat, vec![x])?;
        let sm = self.emit(n, &format!("{base}_softmax"), Op::Softmax { axis: 1 }, vec![f])?;
        let back = Op::Reshape { shape: shape.iter().map(|&d| d as i64).collect() };
        let out = self.emit(n, base, back, vec![sm])?;
        self.set(n, Val::Secret(out));
        Ok(())
    }

    /// `Softmax` from opset 13, over one axis.
    pub(super) fn softmax(&mut self, n: &NodeProto, base: &str) -> Result<(), ImportError> {
        let axis = attr_i(n, "axis", -1);
        let x = self.operand(n, 0)?;
        let out = self.emit(n, base, Op::Softmax { axis }, vec![x])?;
        self.set(n, Val::Secret(out));
        Ok(())
    }
}
