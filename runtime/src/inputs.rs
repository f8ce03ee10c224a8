//! Private inputs as Rust values, converted to ring tensors with the declared dtype.

use mpcflow_sdk::tensor::numel;
use mpcflow_sdk::{DType, FixedPoint, Tensor};

/// A value a party brings for one of its inputs.
#[derive(Clone, Debug, PartialEq)]
pub enum InputValue {
    /// Real numbers (encoded with the input's dtype: fixed point, rounded integers, or bits).
    Real {
        /// Shape.
        shape: Vec<usize>,
        /// Row-major values.
        values: Vec<f64>,
    },
    /// Exact 64-bit integers.
    Int {
        /// Shape.
        shape: Vec<usize>,
        /// Row-major values.
        values: Vec<i64>,
    },
    /// An already encoded tensor (its dtype must match the declaration).
    Tensor(Tensor),
}

impl InputValue {
    /// The value's shape.
    pub fn shape(&self) -> &[usize] {
        match self {
            InputValue::Real { shape, .. } | InputValue::Int { shape, .. } => shape,
            InputValue::Tensor(t) => &t.shape,
        }
    }

    /// Encodes the value as `dtype`.
    pub fn to_tensor(&self, dtype: DType, fp: FixedPoint) -> Result<Tensor, String> {
        match self {
            InputValue::Real { shape, values } => {
                if let Some(bad) = values.iter().find(|v| !v.is_finite()) {
                    return Err(format!("value {bad} is not a finite number"));
                }
                if dtype == DType::Fixed
                    && let Some(big) = values.iter().find(|v| **v > fp.max_value() || **v < fp.min_value())
                {
                    return Err(format!("value {big} does not fit fixed point with {} fractional bits", fp.frac_bits));
                }
                if dtype == DType::Bit
                    && let Some(b) = values.iter().find(|v| **v != 0.0 && **v != 1.0)
                {
                    return Err(format!("value {b} is not a bit (0 or 1)"));
                }
                Tensor::from_f64(dtype, shape.clone(), values, fp).ok_or_else(|| len_err(shape, values.len()))
            }
            InputValue::Int { shape, values } => {
                if numel(shape) != values.len() {
                    return Err(len_err(shape, values.len()));
                }
                let data = match dtype {
                    DType::Int => values.iter().map(|&v| v as u64).collect(),
                    DType::Bit => values
                        .iter()
                        .map(|&v| {
                            if v == 0 || v == 1 {
                                Ok(v as u64)
                            } else {
                                Err(format!("value {v} is not a bit (0 or 1)"))
                            }
                        })
                        .collect::<Result<_, _>>()?,
                    DType::Fixed => {
                        let lim = fp.max_value() as u64;
                        if let Some(v) = values.iter().find(|v| v.unsigned_abs() > lim) {
                            return Err(format!(
                                "value {v} does not fit fixed point with {} fractional bits",
                                fp.frac_bits
                            ));
                        }
                        values.iter().map(|&v| (v << fp.frac_bits) as u64).collect()
                    }
                };
                Ok(Tensor { dtype, shape: shape.clone(), data })
            }
            InputValue::Tensor(t) if t.dtype == dtype => Ok(t.clone()),
            InputValue::Tensor(t) => Err(format!("the tensor is {} but the input is declared {dtype}", t.dtype)),
        }
    }
}

fn len_err(shape: &[usize], n: usize) -> String {
    format!("{n} values do not fill shape {shape:?}")
}

impl From<f64> for InputValue {
    fn from(v: f64) -> Self {
        InputValue::Real { shape: vec![], values: vec![v] }
    }
}

impl From<i64> for InputValue {
    fn from(v: i64) -> Self {
        InputValue::Int { shape: vec![], values: vec![v] }
    }
}

impl From<Vec<f64>> for InputValue {
    fn from(v: Vec<f64>) -> Self {
        InputValue::Real { shape: vec![v.len()], values: v }
    }
}

impl From<Vec<i64>> for InputValue {
    fn from(v: Vec<i64>) -> Self {
        InputValue::Int { shape: vec![v.len()], values: v }
    }
}

impl From<Tensor> for InputValue {
    fn from(t: Tensor) -> Self {
        InputValue::Tensor(t)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conversions_check_their_input() {
        let fp = FixedPoint::default();
        assert_eq!(InputValue::from(3i64).to_tensor(DType::Fixed, fp).unwrap().data, vec![3 << 16]);
        assert!(InputValue::from(2.0).to_tensor(DType::Bit, fp).unwrap_err().contains("not a bit"));
        assert!(InputValue::from(f64::NAN).to_tensor(DType::Fixed, fp).is_err());
        assert!(InputValue::from(1e300).to_tensor(DType::Fixed, fp).unwrap_err().contains("does not fit"));
        let v = InputValue::Real { shape: vec![2, 2], values: vec![1.0; 3] };
        assert!(v.to_tensor(DType::Fixed, fp).unwrap_err().contains("do not fill"));
    }
}
