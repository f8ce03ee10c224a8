//! Human-readable output values.

use mpcflow_sdk::{DType, FixedPoint, Tensor};

/// Formats one element.
fn elem(dtype: DType, w: u64, fp: FixedPoint) -> String {
    match dtype {
        DType::Fixed => {
            let x = fp.decode(w);
            // Print what the encoding can resolve, without noise digits.
            let digits = ((fp.frac_bits as f64) * std::f64::consts::LOG10_2).ceil() as usize;
            let s = format!("{x:.digits$}");
            let s = if s.contains('.') { s.trim_end_matches('0').trim_end_matches('.').to_string() } else { s };
            if s == "-0" { "0".into() } else { s }
        }
        DType::Int => (w as i64).to_string(),
        DType::Bit => (w & 1).to_string(),
    }
}

/// Formats a tensor: a scalar plainly (bits as `1 (true)`), arrays as nested lists, long ones
/// abbreviated.
pub fn format_tensor(t: &Tensor, fp: FixedPoint) -> String {
    if t.shape.is_empty() {
        let w = t.data.first().copied().unwrap_or(0);
        return match t.dtype {
            DType::Bit => format!("{} ({})", w & 1, if w & 1 == 1 { "true" } else { "false" }),
            d => elem(d, w, fp),
        };
    }
    fn nest(t: &Tensor, fp: FixedPoint, off: usize, dim: usize) -> String {
        let n = t.shape[dim];
        let stride: usize = t.shape[dim + 1..].iter().product();
        let show = |i: usize| {
            if dim + 1 == t.shape.len() {
                elem(t.dtype, t.data[off + i], fp)
            } else {
                nest(t, fp, off + i * stride, dim + 1)
            }
        };
        let parts: Vec<String> = if n > 10 {
            (0..3).map(show).chain(std::iter::once("...".to_string())).chain((n - 3..n).map(show)).collect()
        } else {
            (0..n).map(show).collect()
        };
        format!("[{}]", parts.join(", "))
    }
    format!("{} (shape {:?})", nest(t, fp, 0, 0), t.shape)
}
