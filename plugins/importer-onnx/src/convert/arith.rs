//! Elementwise arithmetic on secrets: `Add`, `Sub`, `Mul`, `Div`, `Pow` (squares) and `Where`.
//!
//! A secure product costs a round of communication while a public scale costs nothing, so a
//! product or quotient with a known scalar becomes a `scale` (remembered, for the GELU pattern),
//! `Pow` is accepted only as the square it is in normalisations, and a condition the file fixes
//! becomes a public bit mask.

use super::{Converter, Scaled, Val};
use crate::ImportError;
use crate::proto::onnx::NodeProto;
use mpcflow_sdk::Op;

impl Converter {
    pub(super) fn binary(&mut self, n: &NodeProto, base: &str, op: &str) -> Result<(), ImportError> {
        // A product or quotient with one known scalar is a public scale: no secure product.
        let scalar = |v: Option<&Val>| match v {
            Some(Val::Known(k)) if k.data.len() == 1 => Some(k.data[0]),
            _ => None,
        };
        let factor = match op {
            "Mul" => scalar(self.opt(n, 1)).or_else(|| scalar(self.opt(n, 0))),
            "Div" => scalar(self.opt(n, 1)).map(|d| 1.0 / d),
            _ => None,
        };
        // A mask's factor (BERT's `(1 − m)·min`) as a masking constant placed in the graph.
        let factor = factor.map(super::place::mask_value);
        let out = match factor {
            Some(f) => {
                let i = if op == "Mul" && scalar(self.opt(n, 1)).is_none() { 1 } else { 0 };
                let x = self.operand(n, i)?;
                let out = self.emit(n, base, Op::Scale { factor: f }, vec![x.clone()])?;
                self.scaled.insert(out.clone(), Scaled { from: x, factor: f });
                out
            }
            None => {
                let (a, b) = (self.operand(n, 0)?, self.operand(n, 1)?);
                let op_ = match op {
                    "Add" => Op::Add,
                    "Sub" => Op::Sub,
                    "Mul" => Op::Mul,
                    _ => Op::Div,
                };
                self.emit(n, base, op_, vec![a, b])?
            }
        };
        self.set(n, Val::Secret(out));
        Ok(())
    }

    /// `Pow` with the known exponent 2: `x · x`.
    pub(super) fn pow(&mut self, n: &NodeProto, base: &str) -> Result<(), ImportError> {
        let e = self.known(n, 1, "exponent")?;
        // Small whole exponents as products: x², x³ = x²·x (GPT-2's tanh GELU), x⁴ = (x²)².
        let e = match e.data.as_slice() {
            [e] if [1.0, 2.0, 3.0, 4.0].contains(e) => *e as u32,
            _ => return Err(self.err(n, "only the exponents 1, 2, 3 and 4 are supported".into())),
        };
        let x = self.operand(n, 0)?;
        let out = match e {
            1 => x,
            2 => self.emit(n, base, Op::Mul, vec![x.clone(), x])?,
            _ => {
                let sq = self.emit(n, &format!("{base}_sq"), Op::Mul, vec![x.clone(), x.clone()])?;
                let other = if e == 3 { x } else { sq.clone() };
                self.emit(n, base, Op::Mul, vec![sq, other])?
            }
        };
        self.set(n, Val::Secret(out));
        Ok(())
    }

    /// `Where`: a secure select between two tensors.
    pub(super) fn select(&mut self, n: &NodeProto, base: &str) -> Result<(), ImportError> {
        let mut inputs = (1..3).map(|i| self.operand(n, i)).collect::<Result<Vec<_>, _>>()?;
        inputs.insert(0, String::new());
        // A condition fixed by the file is a public bit mask.
        if let Some(Val::Known(k)) = self.opt(n, 0).cloned() {
            if k.data.iter().any(|&b| b != 0.0 && b != 1.0) {
                return Err(self.err(n, "the condition must hold booleans".into()));
            }
            inputs[0] = self.place_bits(&format!("{}_mask", n.input[0]), k);
        } else {
            inputs[0] = self.operand(n, 0)?;
        }
        let out = self.emit(n, base, Op::Select, inputs)?;
        self.set(n, Val::Secret(out));
        Ok(())
    }
}
