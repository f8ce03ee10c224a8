//! Plaintext tensors in the ring Z(2^64): what owners bring and what outputs reveal.

use crate::{DType, FixedPoint};
use serde::{Deserialize, Serialize};

/// A dense row-major tensor whose elements are ring elements (`u64`, wrapping).
///
/// How the words are read depends on `dtype`: fixed-point (see [`crate::fixed`]), two's
/// complement integers, or bits (0/1).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tensor {
    /// Element type.
    pub dtype: DType,
    /// Dimensions, outermost first. An empty shape is a scalar.
    pub shape: Vec<usize>,
    /// Row-major ring elements; `data.len()` equals the product of `shape`.
    pub data: Vec<u64>,
}

/// Number of elements of a shape (1 for a scalar); saturates at `usize::MAX` instead of
/// overflowing, so a crafted shape can never match real data.
pub fn numel(shape: &[usize]) -> usize {
    shape.iter().try_fold(1usize, |a, &d| a.checked_mul(d)).unwrap_or(usize::MAX)
}

impl Tensor {
    /// Checks that every value lies in the declared range `[lo, hi]` (in the dtype's units: a
    /// real for fixed point); the error names the first value outside it and its index.
    pub fn check_range(&self, [lo, hi]: [f64; 2], fp: FixedPoint) -> Result<(), String> {
        let scale = if self.dtype == DType::Fixed { fp.scale() } else { 1.0 };
        let (lo_w, hi_w) = ((lo * scale).ceil() as i128, (hi * scale).floor() as i128);
        match self.data.iter().map(|&w| i128::from(w as i64)).enumerate().find(|(_, w)| *w < lo_w || *w > hi_w) {
            None => Ok(()),
            Some((i, w)) => {
                let v = if self.dtype == DType::Fixed { fp.decode(w as i64 as u64).to_string() } else { w.to_string() };
                let at = if self.data.len() > 1 { format!(" (element {i})") } else { String::new() };
                Err(format!("value {v}{at} is outside the declared range [{lo}, {hi}]"))
            }
        }
    }

    /// A tensor from raw ring words. Returns `None` if the length does not match the shape.
    pub fn from_words(dtype: DType, shape: Vec<usize>, data: Vec<u64>) -> Option<Tensor> {
        (numel(&shape) == data.len()).then_some(Tensor { dtype, shape, data })
    }

    /// A tensor of zeros.
    pub fn zeros(dtype: DType, shape: Vec<usize>) -> Tensor {
        let n = numel(&shape);
        Tensor { dtype, shape, data: vec![0; n] }
    }

    /// Encodes real numbers in `dtype`: fixed-point with `fp`, integers rounded to nearest,
    /// bits as `x != 0`. Returns `None` if the length does not match the shape.
    pub fn from_f64(dtype: DType, shape: Vec<usize>, values: &[f64], fp: FixedPoint) -> Option<Tensor> {
        if numel(&shape) != values.len() {
            return None;
        }
        let data = values.iter().map(|&x| encode_value(dtype, x, fp)).collect();
        Some(Tensor { dtype, shape, data })
    }

    /// A scalar encoded from a real number.
    pub fn scalar(dtype: DType, value: f64, fp: FixedPoint) -> Tensor {
        Tensor { dtype, shape: vec![], data: vec![encode_value(dtype, value, fp)] }
    }

    /// Decodes every element to a real number.
    pub fn to_f64(&self, fp: FixedPoint) -> Vec<f64> {
        self.data.iter().map(|&w| decode_value(self.dtype, w, fp)).collect()
    }

    /// Number of elements.
    pub fn numel(&self) -> usize {
        self.data.len()
    }

    /// Size in bytes of the ring words.
    pub fn byte_len(&self) -> usize {
        self.data.len() * 8
    }
}

/// Encodes one real number as a ring word of `dtype`.
pub fn encode_value(dtype: DType, x: f64, fp: FixedPoint) -> u64 {
    match dtype {
        DType::Fixed => fp.encode(x),
        DType::Int => FixedPoint::new(0).encode(x),
        DType::Bit => u64::from(x != 0.0),
    }
}

/// Decodes one ring word of `dtype` to a real number.
pub fn decode_value(dtype: DType, w: u64, fp: FixedPoint) -> f64 {
    match dtype {
        DType::Fixed => fp.decode(w),
        DType::Int => w as i64 as f64,
        DType::Bit => (w & 1) as f64,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shape_must_match() {
        assert!(Tensor::from_words(DType::Int, vec![2, 3], vec![0; 5]).is_none());
        let t = Tensor::from_f64(DType::Int, vec![2], &[-3.0, 4.4], FixedPoint::default()).unwrap();
        assert_eq!(t.data, vec![(-3i64) as u64, 4]);
        assert_eq!(t.to_f64(FixedPoint::default()), vec![-3.0, 4.0]);
    }
}
