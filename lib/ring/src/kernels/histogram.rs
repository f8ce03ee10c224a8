//! `histogram`: counts per bin with public edges, as `numpy.histogram` counts (the last bin
//! closed), on the input's words.
//!
//! Why the thresholds are words: a secure protocol compares the shared words with public
//! constants, so the plaintext semantics are defined on the same words and both agree exactly.
//! Bin `i` counts the words `w` with `T_i ≤ w < T_{i+1}`, where [`thresholds`] gives
//! `T_0 … T_k`: each edge encoded as a constant of the input's dtype (fixed point
//! `round(e·2^f)`; int `⌈e⌉`, since `x ≥ e` is `x ≥ ⌈e⌉` for a whole `x`) and the last one past
//! the closed edge (`+ 1` word; int `⌊e⌋ + 1`). Thresholds are held within `±2^62`, the range of
//! every input, which changes no count. A secure protocol can then count `c_i = #{w ≥ T_i}` with
//! one comparison per element and edge, and take `c_i − c_{i+1}`.

use super::compare::Width;
use super::words::signed;
use mpcflow_sdk::{DType, FixedPoint, Result, Tensor};

const REACH: i64 = 1 << 62;

/// The thresholds `T_0 … T_k` of `edges` for words of `dtype` (see the module docs).
pub fn thresholds(edges: &[f64], dtype: DType, fp: FixedPoint) -> Vec<i64> {
    let clamp = |v: f64| v.clamp(-(REACH as f64), REACH as f64) as i64;
    let k = edges.len().saturating_sub(1);
    edges
        .iter()
        .enumerate()
        .map(|(i, &e)| match (dtype, i == k) {
            (DType::Int, false) => clamp(e.ceil()),
            (DType::Int, true) => clamp(e.floor()) + 1,
            (_, false) => clamp((e * fp.scale()).round()),
            (_, true) => clamp((e * fp.scale()).round()) + 1,
        })
        .collect()
}

/// Counts per bin of every element of `a` (see the module docs).
pub fn histogram(a: &Tensor, edges: &[f64], fp: FixedPoint) -> Result<Vec<u64>> {
    let t = thresholds(edges, a.dtype, fp);
    let mut counts = vec![0u64; t.len().saturating_sub(1)];
    for &w in &a.data {
        let x = signed(a.dtype, w);
        // The bin is the last threshold at or below x, if it is not the last threshold.
        let above = t.partition_point(|&ti| ti <= x);
        if above > 0
            && let Some(c) = counts.get_mut(above - 1)
        {
            *c += 1;
        }
    }
    Ok(counts)
}

/// The comparison width the secure form needs: every element compared with every threshold.
pub fn check_width(w: Width, a: &Tensor, edges: &[f64]) -> Result<()> {
    let t = thresholds(edges, a.dtype, w.fp);
    let (Some(&tlo), Some(&thi)) = (t.iter().min(), t.iter().max()) else { return Ok(()) };
    let xs = a.data.iter().map(|&v| signed(a.dtype, v));
    let (xlo, xhi) = xs.fold((i64::MAX, i64::MIN), |(lo, hi), x| (lo.min(x), hi.max(x)));
    if xlo > xhi {
        return Ok(());
    }
    w.check_pair(xhi, tlo)?;
    w.check_pair(xlo, thi)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fp() -> FixedPoint {
        FixedPoint::default()
    }

    fn fixed(v: &[f64]) -> Tensor {
        Tensor::from_f64(DType::Fixed, vec![v.len()], v, fp()).unwrap()
    }

    #[test]
    fn counts_as_numpy_does_with_the_last_bin_closed() {
        let x = fixed(&[-1.0, 0.0, 0.5, 1.0, 1.999, 2.0, 3.0, 2.0000153]);
        // numpy.histogram(x, [0, 1, 2]) = [2, 3]: 2.0 counts in the last bin, 3.0 and -1.0 nowhere.
        assert_eq!(histogram(&x, &[0.0, 1.0, 2.0], fp()).unwrap(), vec![2, 3]);
        let ints =
            Tensor { dtype: DType::Int, shape: vec![6], data: [-3i64, 0, 1, 2, 4, 5].map(|v| v as u64).to_vec() };
        // Edges 0.5 and 4.5 for whole numbers: [1, 4] and 5 nowhere; 2.5 splits 1, 2 | 4.
        assert_eq!(histogram(&ints, &[0.5, 2.5, 4.5], fp()).unwrap(), vec![2, 1]);
        assert_eq!(histogram(&ints, &[-3.0, 5.0], fp()).unwrap(), vec![6]);
    }

    #[test]
    fn far_edges_change_no_count() {
        let x = fixed(&[-5.0, 5.0]);
        assert_eq!(histogram(&x, &[-1e300, 0.0, 1e300], fp()).unwrap(), vec![1, 1]);
    }
}
