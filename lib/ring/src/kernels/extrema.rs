//! Order statistics along one axis: `max`/`min` with an `axis`, and `argmax` (index or one-hot).
//!
//! Why a module of its own: these reduce with comparisons rather than additions (a tree of
//! comparisons in a secure protocol), and `argmax` has a tie rule that every protocol must
//! reproduce exactly: the **first** index holding the maximum wins, so the one-hot mask always
//! has exactly one 1 per lane. Words are compared as signed `i64` (bits as 0/1).

use super::compare::Width;
use super::words::{alloc, at, numel, signed, split_at_axis};
use mpcflow_sdk::shape::{TensorInfo, norm_axis};
use mpcflow_sdk::{Error, Result, Tensor};

/// `(outer, len, inner)` around `axis`, refusing an empty axis over a non-empty tensor.
fn lanes(a: &Tensor, axis: i64, op: &str) -> Result<(usize, usize, usize)> {
    let ax = norm_axis(axis, a.shape.len()).map_err(|e| Error::invalid(e.to_string()))?;
    let (outer, len, inner) = split_at_axis(&a.shape, ax)?;
    if len == 0 && numel(&[outer, inner])? != 0 {
        return Err(Error::invalid(format!("`{op}` over an empty axis")));
    }
    Ok((outer, len, inner))
}

/// Index of the first largest element of lane `(o, j)`, with that element.
fn lane_argmax(a: &Tensor, o: usize, j: usize, len: usize, inner: usize, is_max: bool) -> Result<(usize, i64)> {
    let base = o * len * inner + j;
    let mut best = (0, signed(a.dtype, at(&a.data, base)?));
    for i in 1..len {
        let e = signed(a.dtype, at(&a.data, base + i * inner)?);
        if (is_max && e > best.1) || (!is_max && e < best.1) {
            best = (i, e);
        }
    }
    Ok(best)
}

/// Enforces the comparison width within every lane along `axis` (see [`Width`]).
pub fn check_lanes(a: &Tensor, axis: i64, w: Width, op: &str) -> Result<()> {
    if a.dtype == mpcflow_sdk::DType::Bit {
        return Ok(());
    }
    let (outer, len, inner) = lanes(a, axis, op)?;
    for o in 0..outer {
        for j in 0..inner {
            let base = o * len * inner + j;
            let lane: Result<Vec<i64>> =
                (0..len).map(|i| Ok(signed(a.dtype, at(&a.data, base + i * inner)?))).collect();
            w.span(lane?)?;
        }
    }
    Ok(())
}

/// The maximum (`is_max`) or minimum along `axis`; the axis is removed.
pub fn max_min_axis(a: &Tensor, axis: i64, is_max: bool, out: &TensorInfo) -> Result<Vec<u64>> {
    let (outer, len, inner) = lanes(a, axis, if is_max { "max" } else { "min" })?;
    let mut v = alloc(numel(&out.shape)?)?;
    for o in 0..outer {
        for j in 0..inner {
            v.push(lane_argmax(a, o, j, len, inner, is_max)?.1 as u64);
        }
    }
    Ok(v)
}

/// The first index of the maximum along `axis` as an int (axis removed), or with `one_hot` a
/// bit mask of the input's shape with a single 1 per lane at that index.
pub fn argmax(a: &Tensor, axis: i64, one_hot: bool, out: &TensorInfo) -> Result<Vec<u64>> {
    let (outer, len, inner) = lanes(a, axis, "argmax")?;
    let n = numel(&out.shape)?;
    let mut v = alloc(n)?;
    if one_hot {
        v.resize(n, 0);
    }
    for o in 0..outer {
        for j in 0..inner {
            let (i, _) = lane_argmax(a, o, j, len, inner, true)?;
            if one_hot {
                let slot = v.get_mut(o * len * inner + i * inner + j);
                *slot.ok_or_else(|| Error::internal("one-hot index out of range"))? = 1;
            } else {
                v.push(i as u64);
            }
        }
    }
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::super::testutil::*;
    use mpcflow_sdk::{DType, Op};

    #[test]
    fn max_min_over_axis() {
        let a = int(&[2, 3], &[-5, 7, 7, i64::MIN, -1, -2]);
        assert_eq!(ints(&run(&Op::Max { axis: Some(-1) }, &[&a])), vec![7, -1]);
        assert_eq!(ints(&run(&Op::Min { axis: Some(1) }, &[&a])), vec![-5, i64::MIN]);
        let r = run(&Op::Max { axis: Some(0) }, &[&a]);
        assert_eq!((r.shape.clone(), ints(&r)), (vec![3], vec![-5, 7, 7]));
        let r = run(&Op::Min { axis: Some(0) }, &[&fx(&[2, 1], &[0.5, -0.25])]);
        assert_eq!(reals(&r), vec![-0.25]);
        let r = run(&Op::Max { axis: Some(0) }, &[&bit(&[2], &[0, 1])]);
        assert_eq!((r.dtype, r.data), (DType::Bit, vec![1]));
    }

    #[test]
    fn argmax_takes_first_of_ties() {
        let a = fx(&[2, 4], &[1.0, 3.0, 3.0, -1.0, -2.0, -2.0, -3.0, -2.0]);
        let r = run(&Op::Argmax { axis: -1, one_hot: false }, &[&a]);
        assert_eq!((r.dtype, r.shape.clone(), ints(&r)), (DType::Int, vec![2], vec![1, 0]));
        let r = run(&Op::Argmax { axis: 1, one_hot: true }, &[&a]);
        assert_eq!((r.dtype, r.shape.clone()), (DType::Bit, vec![2, 4]));
        assert_eq!(r.data, vec![0, 1, 0, 0, 1, 0, 0, 0]);
        let r = run(&Op::Argmax { axis: 0, one_hot: true }, &[&a]);
        assert_eq!(r.data, vec![1, 1, 1, 1, 0, 0, 0, 0]);
        let r = run(&Op::Argmax { axis: -2, one_hot: false }, &[&int(&[3, 1], &[i64::MIN, i64::MIN, i64::MIN])]);
        assert_eq!(ints(&r), vec![0]);
        let r = run(&Op::Argmax { axis: 1, one_hot: true }, &[&int(&[0, 2], &[])]);
        assert_eq!(r.shape, vec![0, 2]);
    }

    mod props {
        use super::super::super::testutil::*;
        use mpcflow_sdk::Op;
        use proptest::prelude::*;

        fn tensor() -> impl Strategy<Value = (Vec<usize>, Vec<i64>, i64)> {
            prop::collection::vec(1usize..4, 1..4).prop_flat_map(|shape| {
                let n: usize = shape.iter().product();
                let r = shape.len() as i64;
                (Just(shape), prop::collection::vec(-3i64..3, n), -r..r)
            })
        }

        proptest! {
            #[test]
            fn one_hot_argmax_sums_to_one_and_marks_the_index((shape, v, axis) in tensor()) {
                let a = int(&shape, &v);
                let mask = run(&Op::Argmax { axis, one_hot: true }, &[&a]);
                let per_lane = run(&Op::Sum { axes: vec![axis], keepdims: false }, &[&mask]);
                prop_assert!(ints(&per_lane).iter().all(|&c| c == 1));
                // The marked element is the lane maximum, and the int index agrees with the mask.
                let idx = run(&Op::Argmax { axis, one_hot: false }, &[&a]);
                let ax = if axis < 0 { axis + shape.len() as i64 } else { axis } as usize;
                let len = shape[ax] as i64;
                let iota: Vec<i64> = (0..a.data.len()).map(|k| (k / shape[ax + 1..].iter().product::<usize>()) as i64 % len).collect();
                let picked = run(&Op::Sum { axes: vec![axis], keepdims: false }, &[&run(&Op::Mul, &[&mask, &int(&shape, &iota)])]);
                prop_assert_eq!(ints(&picked), ints(&idx));
                let at_max = run(&Op::Sum { axes: vec![axis], keepdims: false }, &[&run(&Op::Mul, &[&mask, &a])]);
                prop_assert_eq!(ints(&at_max), ints(&run(&Op::Max { axis: Some(axis) }, &[&a])));
            }
        }
    }
}
