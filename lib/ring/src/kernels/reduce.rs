//! Linear reductions over any set of axes: `sum`, `mean`, `count`.
//!
//! Why a module of its own: reductions over several (possibly negative, unordered) axes are the
//! one place where an output element gathers an arbitrary sub-grid of the input. Rather than
//! materialising index lists, the input is walked once in row-major order and each element is
//! folded into its output slot, found by strides that are 0 along the reduced axes: O(n).
//! `sum` is the ring sum (exact, wrapping); `mean` divides the exact `i128` sum once.

use super::broadcast::{Walk, row_major_strides};
use super::words::{div_round, fixed_scaled, numel, word};
use mpcflow_sdk::shape::{TensorInfo, norm_axes};
use mpcflow_sdk::{Error, FixedPoint, Result, Tensor};

/// Strides mapping an input index to its output slot: row-major strides of the input shape
/// with the reduced axes collapsed to size 1, and 0 along those axes. The same layout serves
/// `keepdims` true or false, since dropping size-1 axes does not move any element.
fn target_strides(shape: &[usize], axes: &[usize]) -> Vec<isize> {
    let kept: Vec<usize> = shape.iter().enumerate().map(|(i, &d)| if axes.contains(&i) { 1 } else { d }).collect();
    let mut strides = row_major_strides(&kept);
    for &a in axes {
        if let Some(s) = strides.get_mut(a) {
            *s = 0;
        }
    }
    strides
}

/// Folds every element of `a` into the slot of its output element (`init` to start with).
fn fold<T: Clone>(
    a: &Tensor,
    axes: &[usize],
    out_len: usize,
    init: T,
    mut f: impl FnMut(&mut T, u64) -> Result<()>,
) -> Result<Vec<T>> {
    let mut acc = Vec::new();
    acc.try_reserve_exact(out_len)
        .map_err(|_| Error::ResourcesExhausted(format!("cannot allocate {out_len} accumulators")))?;
    acc.resize(out_len, init);
    // Everything into one slot (a sum or count over all axes): no index to follow.
    if let [slot] = acc.as_mut_slice() {
        for &w in &a.data {
            f(slot, w)?;
        }
        return Ok(acc);
    }
    let mut walk = Walk::new(&a.shape, vec![(0, target_strides(&a.shape, axes))])?;
    for &w in &a.data {
        let slot = walk.pos(0).ok().and_then(|p| acc.get_mut(p));
        f(slot.ok_or_else(|| Error::internal("reduction slot out of range"))?, w)?;
        walk.advance();
    }
    Ok(acc)
}

fn resolve(axes: &[i64], rank: usize) -> Result<Vec<usize>> {
    norm_axes(axes, rank).map_err(|e| Error::invalid(e.to_string()))
}

/// Number of elements reduced into each output element: the product of the reduced sizes.
fn reduced_count(shape: &[usize], axes: &[usize]) -> Result<usize> {
    numel(&axes.iter().filter_map(|&a| shape.get(a).copied()).collect::<Vec<_>>())
}

/// Wrapping sum over `axes` (all when empty); bits count as 0/1 and sum to an int.
pub fn sum(a: &Tensor, axes: &[i64], out: &TensorInfo) -> Result<Vec<u64>> {
    let ax = resolve(axes, a.shape.len())?;
    fold(a, &ax, numel(&out.shape)?, 0u64, |s, w| {
        *s = s.wrapping_add(word(a.dtype, w));
        Ok(())
    })
}

/// Mean over `axes`: the exact sum of the elements as multiples of `2^-f` (ints times `2^f`)
/// divided by the count, rounded to nearest (ties away from zero), wrapping to 64 bits like a
/// ring op (only an int input near the ends of its range can leave the fixed range).
pub fn mean(a: &Tensor, axes: &[i64], out: &TensorInfo, fp: FixedPoint) -> Result<Vec<u64>> {
    let ax = resolve(axes, a.shape.len())?;
    let n =
        i128::try_from(reduced_count(&a.shape, &ax)?).map_err(|_| Error::invalid("`mean` over too many elements"))?;
    let sums = fold(a, &ax, numel(&out.shape)?, 0i128, |s, w| {
        *s = s
            .checked_add(fixed_scaled(a.dtype, w, fp))
            .ok_or_else(|| Error::invalid("`mean` sum overflows 128 bits"))?;
        Ok(())
    })?;
    sums.into_iter()
        .map(|s| div_round(s, n).map(|q| q as u64).ok_or_else(|| Error::invalid("`mean` over an empty axis")))
        .collect()
}

/// The public number of elements over `axes` (all when empty), as an int scalar.
pub fn count(a: &Tensor, axes: &[i64]) -> Result<Vec<u64>> {
    let ax = resolve(axes, a.shape.len())?;
    Ok(vec![reduced_count(&a.shape, &ax)? as u64])
}

#[cfg(test)]
mod tests {
    use super::super::testutil::*;
    use mpcflow_sdk::{DType, Op, Tensor};

    fn sum(axes: &[i64], keepdims: bool) -> Op {
        Op::Sum { axes: axes.to_vec(), keepdims }
    }

    fn mean(axes: &[i64], keepdims: bool) -> Op {
        Op::Mean { axes: axes.to_vec(), keepdims }
    }

    #[test]
    fn sums_over_axes() {
        let a = int(&[2, 3], &[1, 2, 3, 4, 5, 6]);
        assert_eq!(ints(&run(&sum(&[0], false), &[&a])), vec![5, 7, 9]);
        let r = run(&sum(&[-1], true), &[&a]);
        assert_eq!((r.shape.clone(), ints(&r)), (vec![2, 1], vec![6, 15]));
        let r = run(&sum(&[], false), &[&a]);
        assert_eq!((r.shape.clone(), ints(&r)), (vec![], vec![21]));
        let r = run(&sum(&[1, 0], true), &[&a]);
        assert_eq!((r.shape.clone(), ints(&r)), (vec![1, 1], vec![21]));
        let b = int(&[2, 3, 2], &(0..12).collect::<Vec<_>>());
        assert_eq!(ints(&run(&sum(&[0, 2], false), &[&b])), vec![14, 22, 30]);
        let r = run(&sum(&[0], false), &[&bit(&[3, 2], &[1, 1, 1, 0, 1, 0])]);
        assert_eq!((r.dtype, ints(&r)), (DType::Int, vec![3, 1]));
        assert_eq!(ints(&run(&sum(&[], false), &[&int(&[2], &[i64::MAX, 1])])), vec![i64::MIN]);
        assert_eq!(ints(&run(&sum(&[0], false), &[&int(&[0, 2], &[])])), vec![0, 0]);
        assert_eq!(reals(&run(&sum(&[], false), &[&fx(&[3], &[0.5, -1.25, 2.0])])), vec![1.25]);
    }

    #[test]
    fn mean_rounds_the_exact_sum_once() {
        let a = fx(&[2, 2], &[1.0, 2.0, -3.0, 0.5]);
        assert_eq!(reals(&run(&mean(&[1], false), &[&a])), vec![1.5, -1.25]);
        assert_eq!(reals(&run(&mean(&[-2], true), &[&a])), vec![-1.0, 1.25]);
        let w = Tensor::from_words(DType::Fixed, vec![2, 2], vec![1, 0, (-1i64) as u64, 0]).unwrap();
        assert_eq!(ints(&run(&mean(&[1], false), &[&w])), vec![1, -1]);
        let w = Tensor::from_words(DType::Fixed, vec![3], vec![1, 1, 0]).unwrap();
        assert_eq!(ints(&run(&mean(&[], false), &[&w])), vec![1]);
        let r = run(&mean(&[], false), &[&int(&[2], &[1, 2])]);
        assert_eq!((r.dtype, reals(&r)), (DType::Fixed, vec![1.5]));
        let r = run(&mean(&[], false), &[&int(&[2], &[i64::MAX, i64::MAX])]);
        assert_eq!(r.data, vec![(i64::MAX as u64).wrapping_shl(16)], "wraps like the ring");
        let m = Tensor::from_words(DType::Fixed, vec![2], vec![i64::MAX as u64; 2]).unwrap();
        assert_eq!(run(&mean(&[], false), &[&m]).data, vec![i64::MAX as u64]);
        let m = Tensor::from_words(DType::Fixed, vec![2], vec![i64::MIN as u64, i64::MAX as u64]).unwrap();
        assert_eq!(ints(&run(&mean(&[], false), &[&m])), vec![-1], "-1/2 ulp rounds away from zero");
    }

    #[test]
    fn count_is_public_product_of_sizes() {
        let a = fx(&[2, 3, 4], &[0.0; 24]);
        let c = |axes: &[i64]| ints(&run(&Op::Count { axes: axes.to_vec() }, &[&a]));
        assert_eq!(c(&[0, -1]), vec![8]);
        assert_eq!(c(&[]), vec![24]);
        assert_eq!(c(&[1, 1]), vec![3]);
        assert_eq!(ints(&run(&Op::Count { axes: vec![] }, &[&int(&[], &[5])])), vec![1]);
    }

    mod props {
        use super::super::super::testutil::*;
        use mpcflow_sdk::Op;
        use proptest::prelude::*;

        proptest! {
            #[test]
            fn mean_within_half_ulp_of_f64(v in prop::collection::vec(-1e4f64..1e4, 1..50)) {
                let a = fx(&[v.len()], &v);
                let exact = reals(&a).iter().sum::<f64>() / v.len() as f64;
                let got = reals(&run(&Op::Mean { axes: vec![], keepdims: false }, &[&a]))[0];
                prop_assert!((got - exact).abs() <= ulp() / 2.0 + 1e-9);
            }
        }
    }
}
