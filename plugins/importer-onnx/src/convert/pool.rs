//! Pooling: `MaxPool`, `AveragePool` and `GlobalAveragePool`.
//!
//! The graph's pools are 2-D with symmetric padding and no dilation or ceil mode; anything
//! else is refused here, naming the attribute, rather than computed differently.

use super::attrs::{attr_i, attr_ints};
use super::{Converter, Val};
use crate::ImportError;
use crate::proto::onnx::NodeProto;
use mpcflow_sdk::Op;
use mpcflow_sdk::op::Pool;

impl Converter {
    pub(super) fn pool(&mut self, n: &NodeProto, base: &str, op: &str) -> Result<(), ImportError> {
        let kernel = self.pair(n, "kernel_shape", [0, 0])?;
        if kernel.contains(&0) {
            return Err(self.err(n, "kernel_shape must be 2-D".into()));
        }
        if attr_ints(n, "dilations").is_some_and(|d| d.iter().any(|&x| x != 1)) {
            return Err(self.err(n, "only dilation 1 is supported".into()));
        }
        if attr_i(n, "ceil_mode", 0) != 0 {
            return Err(self.err(n, "ceil_mode = 1 is not supported".into()));
        }
        let stride = self.pair(n, "strides", [1, 1])?;
        let padding = self.pads(n)?;
        if op == "AveragePool" && padding != [0, 0] && attr_i(n, "count_include_pad", 0) == 0 {
            return Err(self.err(n, "padding with count_include_pad = 0 is not supported".into()));
        }
        let pool = Pool { kernel, stride, padding };
        let x = self.operand(n, 0)?;
        let op_ = if op == "MaxPool" { Op::Maxpool(pool) } else { Op::Avgpool(pool) };
        let out = self.emit(n, base, op_, vec![x])?;
        self.set(n, Val::Secret(out));
        Ok(())
    }

    /// `GlobalAveragePool`: a mean over the spatial axes, kept as dimensions of 1.
    pub(super) fn global_average_pool(&mut self, n: &NodeProto, base: &str) -> Result<(), ImportError> {
        let x = self.operand(n, 0)?;
        let axes = (2..self.shape_of(&x).len() as i64).collect();
        let out = self.emit(n, base, Op::Mean { axes, keepdims: true }, vec![x])?;
        self.set(n, Val::Secret(out));
        Ok(())
    }
}
