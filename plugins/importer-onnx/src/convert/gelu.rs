//! The GELU that PyTorch exports as `x · 0.5 · (1 + erf(x / √2))`.
//!
//! The graph has no `erf`, and computing it securely on its own would be costly; the whole
//! pattern, though, is one secure `gelu`. So the importer follows the pattern node by node
//! (keeping its partial results as [`GeluStage`]s rather than tensors) and accepts `Erf` only
//! inside it.

use super::{Converter, GeluStage, Val};
use crate::ImportError;
use crate::proto::onnx::NodeProto;
use mpcflow_sdk::Op;

impl Converter {
    /// Recognises the GELU that PyTorch exports as `x · 0.5 · (1 + erf(x / √2))` (in either
    /// order of the two products), node by node, and makes it one `gelu` op. Returns the value
    /// of `n` if `n` continues the pattern.
    pub(super) fn gelu_pattern(&mut self, n: &NodeProto, base: &str) -> Result<Option<Val>, ImportError> {
        let near = |a: f64, b: f64| (a - b).abs() < 1e-4;
        let scalar = |v: Option<&Val>| match v {
            Some(Val::Known(k)) if k.data.len() == 1 => Some(k.data[0]),
            _ => None,
        };
        let ins: Vec<Option<Val>> = (0..n.input.len()).map(|i| self.opt(n, i).cloned()).collect();
        let other = |i: usize| ins.get(1 - i).cloned().flatten();
        match n.op_type() {
            "Erf" => match ins.first().cloned().flatten() {
                Some(Val::Secret(t)) => match self.scaled.get(&t) {
                    Some(s) if near(s.factor, std::f64::consts::FRAC_1_SQRT_2) => {
                        Ok(Some(Val::Gelu(GeluStage::Erf(s.from.clone()))))
                    }
                    _ => Err(self.err(
                        n,
                        "Erf is supported only inside the GELU pattern x · 0.5 · (1 + erf(x / sqrt(2)))".into(),
                    )),
                },
                _ => Err(self
                    .err(n, "Erf is supported only inside the GELU pattern x · 0.5 · (1 + erf(x / sqrt(2)))".into())),
            },
            "Add" if ins.len() == 2 => {
                for (i, v) in ins.iter().enumerate() {
                    if let Some(Val::Gelu(GeluStage::Erf(x))) = v
                        && scalar(other(i).as_ref()).is_some_and(|c| near(c, 1.0))
                    {
                        return Ok(Some(Val::Gelu(GeluStage::OnePlusErf(x.clone()))));
                    }
                }
                Ok(None)
            }
            "Mul" if ins.len() == 2 => {
                for (i, v) in ins.iter().enumerate() {
                    match (v, other(i)) {
                        (Some(Val::Gelu(GeluStage::OnePlusErf(x))), o)
                            if scalar(o.as_ref()).is_some_and(|c| near(c, 0.5)) =>
                        {
                            return Ok(Some(Val::Gelu(GeluStage::HalfOnePlusErf(x.clone()))));
                        }
                        (Some(Val::Gelu(GeluStage::HalfOnePlusErf(x))), Some(Val::Secret(y))) if &y == x => {
                            return Ok(Some(Val::Secret(self.emit(n, base, Op::Gelu, vec![x.clone()])?)));
                        }
                        (Some(Val::Gelu(GeluStage::OnePlusErf(x))), Some(Val::Secret(y))) => {
                            if &y == x {
                                let g = self.emit(n, base, Op::Gelu, vec![x.clone()])?;
                                return Ok(Some(Val::Gelu(GeluStage::Twice { x: x.clone(), gelu: g })));
                            }
                            if self.scaled.get(&y).is_some_and(|s| &s.from == x && near(s.factor, 0.5)) {
                                return Ok(Some(Val::Secret(self.emit(n, base, Op::Gelu, vec![x.clone()])?)));
                            }
                        }
                        (Some(Val::Gelu(GeluStage::Twice { gelu, .. })), o)
                            if scalar(o.as_ref()).is_some_and(|c| near(c, 0.5)) =>
                        {
                            return Ok(Some(Val::Secret(gelu.clone())));
                        }
                        _ => {}
                    }
                }
                Ok(None)
            }
            _ => Ok(None),
        }
    }
}
