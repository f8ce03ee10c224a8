//! Values known when the model is imported: initializers, `Constant` nodes and whatever is
//! computed from them alone (shapes, axes, transposed or rescaled weights).
//!
//! They are real numbers in a dense row-major array. An importer folds them with these few
//! NumPy-like operations, so that the secure graph only contains work that depends on the
//! private input.

use crate::ImportError;
use crate::proto::onnx::{TensorProto, tensor_proto::DataType};

/// A dense array known at import.
#[derive(Clone, Debug, PartialEq)]
pub struct Known {
    /// Dimensions.
    pub shape: Vec<usize>,
    /// Row-major values.
    pub data: Vec<f64>,
    /// Whether it holds integers (shapes, indices): never a model weight.
    pub int: bool,
}

/// The most elements a value computed at import (not read from the file) may have: 2^27, a
/// gigabyte of `f64`. Masks and position ids that exporters build are far smaller; a damaged
/// file that asks for more is refused instead of exhausting memory.
pub const MAX_GENERATED: usize = 1 << 27;

/// The element count of `shape` for a value computed at import, or why it is refused.
pub fn generated_len(shape: &[usize]) -> Result<usize, String> {
    match mpcflow_sdk::shape::checked_numel(shape) {
        Some(n) if n <= MAX_GENERATED => Ok(n),
        _ => Err(format!(
            "a value of shape {shape:?} computed at import is too large (at most {MAX_GENERATED} elements)"
        )),
    }
}

impl Known {
    /// A 1-D array of integers.
    pub fn ints(v: &[i64]) -> Known {
        Known { shape: vec![v.len()], data: v.iter().map(|&x| x as f64).collect(), int: true }
    }

    /// The values as integers (shapes, axes, indices).
    pub fn as_ints(&self) -> Vec<i64> {
        self.data.iter().map(|&x| x as i64).collect()
    }

    /// Decodes an ONNX tensor; `what` names it in errors.
    pub fn from_proto(t: &TensorProto, what: &str) -> Result<Known, ImportError> {
        let bad = |m: String| ImportError::Tensor { name: what.to_string(), message: m };
        if t.data_location == Some(1) {
            return Err(bad("its data is in an external file; save the model with the weights inside".into()));
        }
        let shape: Vec<usize> = t
            .dims
            .iter()
            .map(|&d| usize::try_from(d))
            .collect::<Result<_, _>>()
            .map_err(|_| bad("negative dimension".into()))?;
        let n =
            mpcflow_sdk::shape::checked_numel(&shape).ok_or_else(|| bad(format!("shape {shape:?} is too large")))?;
        let raw = t.raw_data();
        let dt = DataType::try_from(t.data_type()).unwrap_or(DataType::Undefined);
        let (data, int): (Vec<f64>, bool) = match dt {
            DataType::Float if !raw.is_empty() => {
                (raw.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]) as f64).collect(), false)
            }
            DataType::Float => (t.float_data.iter().map(|&x| x as f64).collect(), false),
            DataType::Double if !raw.is_empty() => {
                (raw.chunks_exact(8).map(|c| f64::from_le_bytes(c.try_into().unwrap_or([0; 8]))).collect(), false)
            }
            DataType::Double => (t.double_data.clone(), false),
            DataType::Int64 if !raw.is_empty() => {
                (raw.chunks_exact(8).map(|c| i64::from_le_bytes(c.try_into().unwrap_or([0; 8])) as f64).collect(), true)
            }
            DataType::Int64 => (t.int64_data.iter().map(|&x| x as f64).collect(), true),
            DataType::Int32
            | DataType::Int8
            | DataType::Uint8
            | DataType::Int16
            | DataType::Uint16
            | DataType::Bool
                if raw.is_empty() =>
            {
                (t.int32_data.iter().map(|&x| x as f64).collect(), true)
            }
            DataType::Int32 => {
                (raw.chunks_exact(4).map(|c| i32::from_le_bytes([c[0], c[1], c[2], c[3]]) as f64).collect(), true)
            }
            DataType::Int8 => (raw.iter().map(|&b| b as i8 as f64).collect(), true),
            DataType::Uint8 | DataType::Bool => (raw.iter().map(|&b| b as f64).collect(), true),
            other => {
                return Err(bad(format!(
                    "element type {} is not supported (supported: float, double, int64, int32, int8, uint8, bool)",
                    other.as_str_name()
                )));
            }
        };
        if data.len() != n {
            return Err(bad(format!("holds {} values for shape {shape:?} ({n} expected)", data.len())));
        }
        Ok(Known { shape, data, int })
    }

    /// Applies `f` elementwise with NumPy broadcasting.
    pub fn zip(&self, other: &Known, f: impl Fn(f64, f64) -> f64) -> Result<Known, String> {
        let shape = mpcflow_sdk::shape::broadcast_shapes(&self.shape, &other.shape).map_err(|e| e.0)?;
        let n = generated_len(&shape)?;
        let index = |k: &Known, mut i: usize| {
            // Map a flat index of `shape` to a flat index of `k` (broadcast dims repeat).
            let mut at = 0;
            let mut stride = 1;
            for d in (0..shape.len()).rev() {
                let coord = i % shape[d];
                i /= shape[d];
                let kd = (d + k.shape.len()).checked_sub(shape.len());
                if let Some(kd) = kd {
                    let size = k.shape[kd];
                    at += if size == 1 { 0 } else { coord * stride };
                    stride *= size;
                }
            }
            at
        };
        let data = (0..n).map(|i| f(self.data[index(self, i)], other.data[index(other, i)])).collect();
        Ok(Known { shape, data, int: self.int && other.int })
    }

    /// This value broadcast to `shape` (NumPy rules; `shape` must be what they give).
    pub fn broadcast_to(&self, shape: &[usize]) -> Result<Known, String> {
        let n = generated_len(shape)?;
        let target = Known { shape: shape.to_vec(), data: vec![0.0; n], int: self.int };
        let out = self.zip(&target, |x, _| x)?;
        if out.shape != shape {
            return Err(format!("shape {:?} does not broadcast to {shape:?}", self.shape));
        }
        Ok(out)
    }

    /// ONNX `Slice` with positive steps: per axis of `axes`, the indices `start, start + step, …`
    /// below `end`, negative bounds counting from the end and every bound clamped to the axis.
    pub fn slice(&self, starts: &[i64], ends: &[i64], axes: &[usize], steps: &[i64]) -> Result<Known, String> {
        let rank = self.shape.len();
        let mut picks: Vec<Vec<usize>> = self.shape.iter().map(|&d| (0..d).collect()).collect();
        for (k, &a) in axes.iter().enumerate() {
            let dim = *self.shape.get(a).ok_or_else(|| format!("axis {a} of a rank-{rank} value"))? as i64;
            let step = steps.get(k).copied().unwrap_or(1);
            let (Some(&start), Some(&end)) = (starts.get(k), ends.get(k)) else {
                return Err("fewer starts or ends than axes".into());
            };
            if step <= 0 {
                return Err("only positive steps are supported".into());
            }
            let clamp = |v: i64| if v < 0 { v.saturating_add(dim) } else { v }.clamp(0, dim);
            let (from, to) = (clamp(start), clamp(end));
            picks[a] = (from..to).step_by(step as usize).map(|i| i as usize).collect();
        }
        let shape: Vec<usize> = picks.iter().map(Vec::len).collect();
        generated_len(&shape)?;
        let data = self
            .read_by_coords(&shape, |coord, strides| (0..rank).map(|d| picks[d][coord[d]] * strides[d]).sum::<usize>());
        Ok(Known { shape, data, int: self.int })
    }

    /// The values of an output of `shape`, in row-major order, read from this value at
    /// `src(output coordinates, this value's row-major strides)`.
    fn read_by_coords(&self, shape: &[usize], src: impl Fn(&[usize], &[usize]) -> usize) -> Vec<f64> {
        let rank = self.shape.len();
        let mut strides = vec![1usize; rank];
        for d in (0..rank.saturating_sub(1)).rev() {
            strides[d] = strides[d + 1] * self.shape[d + 1];
        }
        let n: usize = shape.iter().product();
        let mut data = Vec::with_capacity(n);
        let mut coord = vec![0usize; shape.len()];
        for _ in 0..n {
            data.push(self.data[src(&coord, &strides)]);
            for d in (0..shape.len()).rev() {
                coord[d] += 1;
                if coord[d] < shape[d] {
                    break;
                }
                coord[d] = 0;
            }
        }
        data
    }

    /// Permutes axes; refuses a `perm` that is not a permutation of this value's axes.
    pub fn transpose(&self, perm: &[usize]) -> Result<Known, String> {
        let rank = self.shape.len();
        let mut sorted = perm.to_vec();
        sorted.sort_unstable();
        if !sorted.iter().copied().eq(0..rank) {
            return Err(format!("perm {perm:?} is not a permutation of the axes of a rank-{rank} value"));
        }
        let shape: Vec<usize> = perm.iter().map(|&p| self.shape[p]).collect();
        let data = self.read_by_coords(&shape, |coord, strides| (0..rank).map(|d| coord[d] * strides[perm[d]]).sum());
        Ok(Known { shape, data, int: self.int })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slices_as_onnx_does() {
        let k = Known { shape: vec![2, 5], data: (0..10).map(f64::from).collect(), int: true };
        let s = k.slice(&[1, -4], &[i64::MAX, 5], &[0, 1], &[1, 2]).unwrap();
        assert_eq!((s.shape, s.data), (vec![1, 2], vec![6.0, 8.0]));
        let s = k.slice(&[0], &[-1], &[1], &[]).unwrap();
        assert_eq!(s.shape, vec![2, 4]);
        assert!(k.slice(&[0], &[2], &[1], &[-1]).is_err());
        assert!(k.slice(&[0], &[2], &[2], &[]).is_err());
    }

    #[test]
    fn broadcasting_and_transpose() {
        let a = Known { shape: vec![2, 3], data: vec![1., 2., 3., 4., 5., 6.], int: false };
        let b = Known { shape: vec![3], data: vec![10., 20., 30.], int: false };
        assert_eq!(a.zip(&b, |x, y| x + y).unwrap().data, vec![11., 22., 33., 14., 25., 36.]);
        let col = Known { shape: vec![2, 1], data: vec![1., 2.], int: false };
        assert_eq!(a.zip(&col, |x, y| x * y).unwrap().data, vec![1., 2., 3., 8., 10., 12.]);
        let t = a.transpose(&[1, 0]).unwrap();
        assert_eq!((t.shape, t.data), (vec![3, 2], vec![1., 4., 2., 5., 3., 6.]));
        for bad in [&[1][..], &[0, 0], &[0, 2], &[1, 0, 2]] {
            assert!(a.transpose(bad).unwrap_err().contains("not a permutation"), "{bad:?}");
        }
        assert!(b.transpose(&[1, 0]).is_err(), "a rank-1 value has no axis 1");
    }
}
