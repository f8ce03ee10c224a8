//! A WASM mpcflow plugin with two operators, built with
//! `cargo build --release --target wasm32-unknown-unknown`.
//!
//! - `normalize` (a transform): a party rescales its own column before it is shared,
//!   `z = (x − mean) / std`, and with `clip: k` caps outliers at `±k`. It runs only at the
//!   input's owner, on plaintext, inside the sandbox.
//! - `clip` (secure): `min(max(x, lo), hi)` on secret values, composed from two comparisons
//!   the protocol already has.

use mpcflow_sdk::op::{Attrs, Op};
use mpcflow_sdk::operator::{Compose, Operator, OperatorKind, PlainTensor, number_attr};
use mpcflow_sdk::protocol::Lowering;
use mpcflow_sdk::shape::TensorInfo;
use mpcflow_sdk::{DType, Error, FixedPoint, Result};

/// Checks that `attrs` holds only `allowed`.
fn only(op: &str, attrs: &Attrs, allowed: &[&str]) -> Result<()> {
    match attrs.keys().find(|k| !allowed.contains(&k.as_str())) {
        Some(k) => Err(Error::invalid(format!("`{op}` has no attribute `{k}` (it takes {})", allowed.join(", ")))),
        None => Ok(()),
    }
}

/// `normalize`: `(x − mean) / std`, optionally clipped to `±clip`.
pub struct Normalize;

impl Operator for Normalize {
    fn name(&self) -> &str {
        "normalize"
    }

    fn version(&self) -> &str {
        env!("CARGO_PKG_VERSION")
    }

    fn kind(&self) -> OperatorKind {
        OperatorKind::Transform
    }

    fn transform(&self, attrs: &Attrs, mut input: PlainTensor) -> Result<PlainTensor> {
        only("normalize", attrs, &["mean", "std", "clip"])?;
        let mean = number_attr("normalize", attrs, "mean", None)?;
        let std = number_attr("normalize", attrs, "std", None)?;
        if !(std > 0.0 && std.is_finite()) {
            return Err(Error::invalid(format!("`normalize`: `std` must be a positive number, not {std}")));
        }
        let clip = number_attr("normalize", attrs, "clip", Some(f64::INFINITY))?;
        for v in &mut input.values {
            *v = ((*v - mean) / std).clamp(-clip, clip);
        }
        Ok(input)
    }
}

/// `clip`: `min(max(x, lo), hi)` on secret values.
pub struct Clip;

impl Operator for Clip {
    fn name(&self) -> &str {
        "clip"
    }

    fn version(&self) -> &str {
        env!("CARGO_PKG_VERSION")
    }

    fn lower(&self, attrs: &Attrs, inputs: &[TensorInfo], fixed_point: FixedPoint) -> Result<Lowering> {
        only("clip", attrs, &["lo", "hi"])?;
        let (lo, hi) = (number_attr("clip", attrs, "lo", None)?, number_attr("clip", attrs, "hi", None)?);
        if lo > hi {
            return Err(Error::invalid(format!("`clip`: `lo` ({lo}) is above `hi` ({hi})")));
        }
        let dtype = match inputs {
            [x] => x.dtype,
            _ => return Err(Error::invalid(format!("`clip` takes one input, not {}", inputs.len()))),
        };
        if dtype == DType::Bit {
            return Err(Error::invalid("`clip` takes numbers, not bits"));
        }
        let mut c = Compose::new(fixed_point);
        let x = c.input(0);
        let (lo, hi) = (c.constant(dtype, lo), c.constant(dtype, hi));
        let above = c.op(Op::Max { axis: None }, [x, lo]);
        c.op(Op::Min { axis: None }, [above, hi]);
        Ok(c.finish())
    }
}

mpcflow_sdk::export_wasm_plugins! {
    operators: [Normalize, Clip],
}
