//! Reductions over axes: `ReduceMean`, `ReduceSum` and `LayerNormalization`.
//!
//! The axes move from an attribute to an input across opsets; either way they must be fixed
//! by the model file, and the reduction is the graph's own `mean`, `sum` or `layernorm`.

use super::attrs::{attr_f, attr_i, attr_ints};
use super::{Converter, Val};
use crate::ImportError;
use crate::proto::onnx::NodeProto;
use mpcflow_sdk::Op;

impl Converter {
    /// `ReduceMean` and `ReduceSum`.
    pub(super) fn reduce(&mut self, n: &NodeProto, base: &str, op: &str) -> Result<(), ImportError> {
        let axes = match attr_ints(n, "axes") {
            Some(a) => a,
            None if self.opt(n, 1).is_some() => self.known(n, 1, "axes")?.as_ints(),
            None => vec![],
        };
        let keepdims = attr_i(n, "keepdims", 1) != 0;
        let x = self.operand(n, 0)?;
        if axes.is_empty() && attr_i(n, "noop_with_empty_axes", 0) != 0 {
            self.set(n, Val::Secret(x));
            return Ok(());
        }
        let op_ = if op == "ReduceMean" { Op::Mean { axes, keepdims } } else { Op::Sum { axes, keepdims } };
        let out = self.emit(n, base, op_, vec![x])?;
        self.set(n, Val::Secret(out));
        Ok(())
    }

    /// `LayerNormalization` with its scale and optional bias.
    pub(super) fn layer_norm(&mut self, n: &NodeProto, base: &str) -> Result<(), ImportError> {
        let axis = attr_i(n, "axis", -1);
        let epsilon = attr_f(n, "epsilon", 1e-5);
        let mut inputs = vec![self.operand(n, 0)?, self.operand(n, 1)?];
        if self.opt(n, 2).is_some() {
            inputs.push(self.operand(n, 2)?);
        }
        let out = self.emit(n, base, Op::Layernorm { axis, epsilon }, inputs)?;
        self.set(n, Val::Secret(out));
        Ok(())
    }
}
