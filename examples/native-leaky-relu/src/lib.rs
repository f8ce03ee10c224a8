//! A native mpcflow plugin: `leaky_relu(x) = x` for `x > 0`, `alpha · x` otherwise.
//!
//! It is a *secure* operator: it never sees data. At plan time it rewrites itself into op-set
//! primitives, `alpha · x + (1 − alpha) · relu(x)` (one ReLU, two local scalings, one local
//! addition), which every protocol evaluates, so it runs under `ref`, `fss2pc` and any protocol
//! added later, at the cost of one ReLU.

use mpcflow_sdk::op::Attrs;
use mpcflow_sdk::operator::{Compose, Operator, number_attr};
use mpcflow_sdk::protocol::Lowering;
use mpcflow_sdk::shape::TensorInfo;
use mpcflow_sdk::{DType, Error, FixedPoint, Result};

/// The operator.
pub struct LeakyRelu;

impl Operator for LeakyRelu {
    fn name(&self) -> &str {
        "leaky_relu"
    }

    fn version(&self) -> &str {
        env!("CARGO_PKG_VERSION")
    }

    fn lower(&self, attrs: &Attrs, inputs: &[TensorInfo], fixed_point: FixedPoint) -> Result<Lowering> {
        if let Some(unknown) = attrs.keys().find(|k| k.as_str() != "alpha") {
            return Err(Error::invalid(format!("`leaky_relu` has no attribute `{unknown}` (it takes `alpha`)")));
        }
        let alpha = number_attr("leaky_relu", attrs, "alpha", Some(0.01))?;
        if !(0.0..=1.0).contains(&alpha) {
            return Err(Error::invalid(format!("`leaky_relu`: `alpha` must be between 0 and 1, not {alpha}")));
        }
        match inputs {
            [x] if x.dtype == DType::Fixed => {}
            [x] => return Err(Error::invalid(format!("`leaky_relu` takes a fixed-point tensor, not {}", x.dtype))),
            _ => return Err(Error::invalid(format!("`leaky_relu` takes one input, not {}", inputs.len()))),
        }
        let mut c = Compose::new(fixed_point);
        let x = c.input(0);
        let relu = c.relu(x.clone());
        let negative_part = c.scale(x, alpha);
        let positive_part = c.scale(relu, 1.0 - alpha);
        c.add(negative_part, positive_part);
        Ok(c.finish())
    }
}

mpcflow_sdk::export_native_plugins! {
    operators: [LeakyRelu],
}
