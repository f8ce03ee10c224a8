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
    /// An already encoded tensor (its dtype must match the declaration). Its words are taken
    /// as they are, over the whole ring, without the range checks of the other forms: for
    /// embedders and tests that need ring semantics. A value beyond the input range may then
    /// compare wrongly under a secure protocol; `ref` refuses such comparisons.
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

    /// Encodes the value as `dtype`, refusing what the dtype cannot hold exactly: a number that
    /// is not finite, a fraction for `int`, anything but 0 and 1 for `bit`, and a magnitude at
    /// or beyond [`INPUT_LIMIT`] words (`2^62`, so that any two inputs compare exactly under
    /// the default `compare_bits` of 64).
    pub fn to_tensor(&self, dtype: DType, fp: FixedPoint) -> Result<Tensor, String> {
        match self {
            InputValue::Real { shape, values } => {
                if let Some(bad) = values.iter().find(|v| !v.is_finite()) {
                    return Err(format!("value {bad} is not a finite number"));
                }
                match dtype {
                    DType::Fixed => {
                        let max = limit(DType::Fixed, fp);
                        if let Some(big) = values.iter().find(|v| v.abs() >= max) {
                            return Err(out_of_range(&big.to_string(), dtype, fp));
                        }
                    }
                    DType::Int => {
                        if let Some(f) = values.iter().find(|v| v.fract() != 0.0) {
                            return Err(format!("value {f} is not a whole number, as dtype int requires"));
                        }
                        if let Some(big) = values.iter().find(|v| v.abs() >= limit(DType::Int, fp)) {
                            return Err(out_of_range(&big.to_string(), dtype, fp));
                        }
                    }
                    DType::Bit => {
                        if let Some(b) = values.iter().find(|v| **v != 0.0 && **v != 1.0) {
                            return Err(format!("value {b} is not a bit (0 or 1)"));
                        }
                    }
                }
                Tensor::from_f64(dtype, shape.clone(), values, fp).ok_or_else(|| len_err(shape, values.len()))
            }
            InputValue::Int { shape, values } => {
                if numel(shape) != values.len() {
                    return Err(len_err(shape, values.len()));
                }
                if dtype != DType::Bit {
                    let max = if dtype == DType::Fixed { INPUT_LIMIT >> fp.frac_bits } else { INPUT_LIMIT };
                    if let Some(v) = values.iter().find(|v| v.unsigned_abs() >= max) {
                        return Err(out_of_range(&v.to_string(), dtype, fp));
                    }
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
                    DType::Fixed => values.iter().map(|&v| (v << fp.frac_bits) as u64).collect(),
                };
                Ok(Tensor { dtype, shape: shape.clone(), data })
            }
            InputValue::Tensor(t) if t.dtype == dtype => Ok(t.clone()),
            InputValue::Tensor(t) => Err(format!("the tensor is {} but the input is declared {dtype}", t.dtype)),
        }
    }
}

/// What is wrong with a declared input range `r` (`[lo, hi]`) of `dtype`, if anything.
pub fn range_problem(r: &[f64], dtype: DType, fp: FixedPoint) -> Option<String> {
    let [lo, hi] = r else {
        return Some(format!("`range` takes two numbers, [lo, hi]; {} given", r.len()));
    };
    if !lo.is_finite() || !hi.is_finite() {
        return Some("`range` takes finite numbers".into());
    }
    if lo > hi {
        return Some(format!("`range` [{lo}, {hi}] is empty: lo must not exceed hi"));
    }
    let limit = limit(dtype, fp);
    if lo.abs() >= limit || hi.abs() >= limit {
        return Some(format!(
            "`range` [{lo}, {hi}] reaches past what a {dtype} value can hold (magnitude below {limit:.3e})"
        ));
    }
    None
}

/// Checks that every value of `t` lies in the declared `range` `[lo, hi]` (in the dtype's
/// units); the error names the first value outside it (see [`Tensor::check_range`]).
pub fn check_range(t: &Tensor, range: [f64; 2], fp: FixedPoint) -> Result<(), String> {
    t.check_range(range, fp)
}

/// Largest input magnitude in words, exclusive: two inputs then differ by less than `2^63`,
/// so comparing them (the sign of their difference in the ring) is exact.
pub const INPUT_LIMIT: u64 = 1 << 62;

/// [`INPUT_LIMIT`] as a number of the dtype (a real for fixed point).
fn limit(dtype: DType, fp: FixedPoint) -> f64 {
    match dtype {
        DType::Fixed => INPUT_LIMIT as f64 / fp.scale(),
        _ => INPUT_LIMIT as f64,
    }
}

fn out_of_range(v: &str, dtype: DType, fp: FixedPoint) -> String {
    match dtype {
        DType::Fixed => format!(
            "value {v} is outside the range of fixed-point values with {} fractional bits (magnitude below 2^{} ≈ {:.3e})",
            fp.frac_bits,
            62 - fp.frac_bits,
            limit(dtype, fp)
        ),
        _ => format!("value {v} is outside the range of int values (magnitude below 2^62 ≈ 4.61e18)"),
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
        assert!(InputValue::from(1e300).to_tensor(DType::Fixed, fp).unwrap_err().contains("outside the range"));
        let v = InputValue::Real { shape: vec![2, 2], values: vec![1.0; 3] };
        assert!(v.to_tensor(DType::Fixed, fp).unwrap_err().contains("do not fill"));
    }

    #[test]
    fn int_and_bit_inputs_are_exact_or_refused() {
        let fp = FixedPoint::default();
        let err = |v: InputValue, d| v.to_tensor(d, fp).unwrap_err();
        assert!(err(5.5.into(), DType::Int).contains("value 5.5 is not a whole number"));
        assert!(err(1.7.into(), DType::Bit).contains("value 1.7 is not a bit"));
        assert!(err(1e30.into(), DType::Int).contains("outside the range of int values"));
        assert!(err(i64::MIN.into(), DType::Int).contains("outside the range of int values"));
        assert!(err((1i64 << 62).into(), DType::Int).contains("outside the range"));
        assert!(err((1i64 << 46).into(), DType::Fixed).contains("outside the range of fixed-point values"));
        assert!(err(7.1e13.into(), DType::Fixed).contains("2^46"));
        // The largest accepted values encode exactly.
        let top = (1i64 << 62) - 1;
        assert_eq!(InputValue::from(-top).to_tensor(DType::Int, fp).unwrap().data, vec![(-top) as u64]);
        assert_eq!(InputValue::from(-5.0).to_tensor(DType::Int, fp).unwrap().data, vec![(-5i64) as u64]);
        let big = InputValue::from((1i64 << 46) - 1).to_tensor(DType::Fixed, fp).unwrap();
        assert_eq!(big.data, vec![((1u64 << 46) - 1) << 16]);
    }
}
