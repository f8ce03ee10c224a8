//! `histogram`: counts per bin with public edges, as `numpy.histogram` counts (the last bin
//! closed), on the input's words.
//!
//! Why the thresholds are words: a secure protocol compares the shared words with public
//! constants, so the plaintext semantics are defined on the same words and both agree exactly.
//! Bin `i` counts the words `w` with `T_i ≤ w < T_{i+1}`, where [`thresholds`] gives
//! `T_0 … T_k` exactly (as `i128`): each edge encoded as a constant of the input's dtype (fixed
//! point `round(e·2^f)`; int `⌈e⌉`, since `x ≥ e` is `x ≥ ⌈e⌉` for a whole `x`) and the last one
//! past the closed edge (`+ 1` word; int `⌊e⌋ + 1`). A secure protocol counts
//! `c_i = #{w ≥ T_i}` with one comparison per element and threshold and takes `c_i − c_{i+1}`;
//! a threshold beyond every word ([`Threshold::Always`], [`Threshold::Never`]) needs no
//! comparison: its count is every element, or none.

use super::compare::Width;
use super::words::signed;
use mpcflow_sdk::{DType, FixedPoint, Result, Tensor};

/// Where thresholds are held: far beyond every 64-bit word, and far inside `i128`.
const FAR: f64 = 1e30;

/// The thresholds `T_0 … T_k` of `edges` for words of `dtype` (see the module docs).
pub fn thresholds(edges: &[f64], dtype: DType, fp: FixedPoint) -> Vec<i128> {
    let held = |v: f64| v.clamp(-FAR, FAR) as i128;
    let k = edges.len().saturating_sub(1);
    edges
        .iter()
        .enumerate()
        .map(|(i, &e)| match (dtype, i == k) {
            (DType::Int, false) => held(e.ceil()),
            (DType::Int, true) => held(e.floor()) + 1,
            (_, false) => held((e * fp.scale()).round()),
            (_, true) => held((e * fp.scale()).round()) + 1,
        })
        .collect()
}

/// How a secure protocol learns `#{w ≥ T}` for one threshold.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Threshold {
    /// At or below every word: every element counts.
    Always,
    /// A word: one comparison per element.
    Compare(i64),
    /// Above every word: no element counts.
    Never,
}

impl Threshold {
    /// The threshold `t` as a secure protocol handles it.
    pub fn of(t: i128) -> Threshold {
        if t <= i128::from(i64::MIN) {
            Threshold::Always
        } else if t > i128::from(i64::MAX) {
            Threshold::Never
        } else {
            Threshold::Compare(t as i64)
        }
    }
}

/// Counts per bin of every element of `a` (see the module docs).
pub fn histogram(a: &Tensor, edges: &[f64], fp: FixedPoint) -> Result<Vec<u64>> {
    let t = thresholds(edges, a.dtype, fp);
    let mut counts = vec![0u64; t.len().saturating_sub(1)];
    for &w in &a.data {
        let x = i128::from(signed(a.dtype, w));
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

/// The comparison width the secure form needs: every element compared with every threshold
/// that is a word.
pub fn check_width(w: Width, a: &Tensor, edges: &[f64]) -> Result<()> {
    let words: Vec<i64> = thresholds(edges, a.dtype, w.fp)
        .into_iter()
        .filter_map(|t| match Threshold::of(t) {
            Threshold::Compare(v) => Some(v),
            _ => None,
        })
        .collect();
    let (Some(&tlo), Some(&thi)) = (words.iter().min(), words.iter().max()) else { return Ok(()) };
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
        // An int beyond 2^62 (a sum of inputs, say) still falls below an edge of 1e19.
        let big = Tensor { dtype: DType::Int, shape: vec![2], data: vec![5_000_000_000_000_000_000u64, 7] };
        assert_eq!(histogram(&big, &[0.0, 1e19], fp()).unwrap(), vec![2]);
        let t = thresholds(&[-1e300, 0.0, 1e19], DType::Int, fp());
        assert_eq!(
            t.iter().map(|&t| Threshold::of(t)).collect::<Vec<_>>(),
            [Threshold::Always, Threshold::Compare(0), Threshold::Never]
        );
    }
}
