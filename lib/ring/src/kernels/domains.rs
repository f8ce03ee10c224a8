//! The input domains of elementwise functions, as contracts that `ref` enforces.
//!
//! Why: secure protocols evaluate `exp` from a table on a bounded domain. Above its top end
//! fss2pc holds `exp` at `exp(8) ≈ 2981` (its `gates::lut`), which is no saturation of the
//! function: a standalone `exp(10)` would come out as 2981 with exit 0. `ref` computes `e^x`
//! exactly, so it refuses an input above 8 instead, naming it; inside softmax the lowering
//! subtracts the maximum first, so those inputs are never positive. (sigmoid, tanh and gelu
//! saturate for real outside their tables, so they need no contract.)

use mpcflow_sdk::{DType, Error, FixedPoint, Op, Result, Tensor};

/// The largest input of `exp` that secure protocols evaluate exactly to their stated bound.
pub const EXP_MAX: f64 = 8.0;

/// Checks the inputs of `op` against its domain.
pub fn check_inputs(op: &Op, inputs: &[&Tensor], fp: FixedPoint) -> Result<()> {
    let (Op::Exp, Some(a)) = (op, inputs.first()) else { return Ok(()) };
    let value = |w: u64| match a.dtype {
        DType::Fixed => fp.decode(w),
        _ => w as i64 as f64,
    };
    match a.data.iter().map(|&w| value(w)).find(|&x| x > EXP_MAX) {
        Some(x) => Err(Error::invalid(format!(
            "exp of {x} is outside the domain secure protocols evaluate (inputs up to {EXP_MAX}; fss2pc would \
             give exp({EXP_MAX}) ≈ {:.0}): keep the inputs at most {EXP_MAX}, for example by subtracting the \
             maximum first as softmax does",
            EXP_MAX.exp()
        ))),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::super::testutil::*;
    use super::*;

    #[test]
    fn exp_above_its_domain_is_refused() {
        let e = check_inputs(&Op::Exp, &[&fx(&[3], &[1.0, 8.0, 10.5])], fp()).unwrap_err().to_string();
        assert!(e.contains("exp of 10.5 is outside the domain"), "{e}");
        assert!(check_inputs(&Op::Exp, &[&fx(&[2], &[8.0, -100.0])], fp()).is_ok());
        assert!(check_inputs(&Op::Exp, &[&int(&[1], &[9])], fp()).is_err());
        assert!(check_inputs(&Op::Sigmoid, &[&fx(&[1], &[50.0])], fp()).is_ok());
    }
}
