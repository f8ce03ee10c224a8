//! Data movement: `reshape`, `transpose`, `concat`, `slice`, `broadcast`.
//!
//! Why a module of its own: these ops never compute, they only move words, so they are exact
//! for every dtype and free in every protocol (local on shares). Each is one strided gather
//! (see [`super::broadcast`]) or a run of contiguous copies, so all are O(n).

use super::broadcast::{expand, gather, row_major_strides};
use super::words::{alloc, numel, range, split_at_axis};
use mpcflow_sdk::shape::{TensorInfo, norm_axis, slice_range};
use mpcflow_sdk::{Error, Result, Tensor};

fn axis_err(e: mpcflow_sdk::shape::ShapeError) -> Error {
    Error::invalid(e.to_string())
}

/// The same words under the output shape (row-major order is unchanged).
pub fn reshape(a: &Tensor, out: &TensorInfo) -> Result<Vec<u64>> {
    if numel(&out.shape)? != a.data.len() {
        return Err(Error::internal(format!("cannot reshape {:?} to {:?}", a.shape, out.shape)));
    }
    let mut v = alloc(a.data.len())?;
    v.extend_from_slice(&a.data);
    Ok(v)
}

/// Output axis `d` is input axis `perm[d]`; an empty `perm` reverses the axes.
pub fn transpose(a: &Tensor, perm: &[usize]) -> Result<Vec<u64>> {
    let rank = a.shape.len();
    let perm: Vec<usize> = if perm.is_empty() { (0..rank).rev().collect() } else { perm.to_vec() };
    let own = row_major_strides(&a.shape);
    let mut shape = Vec::with_capacity(rank);
    let mut strides = Vec::with_capacity(rank);
    for &p in &perm {
        match (a.shape.get(p), own.get(p)) {
            (Some(&d), Some(&s)) => {
                shape.push(d);
                strides.push(s);
            }
            _ => {
                return Err(Error::invalid(format!("`perm` {perm:?} does not fit shape {:?}", a.shape)));
            }
        }
    }
    gather(&a.data, &shape, 0, strides)
}

/// All inputs joined along `axis` (negative counts from the end), in input order.
pub fn concat(inputs: &[&Tensor], axis: i64, out: &TensorInfo) -> Result<Vec<u64>> {
    let ax = norm_axis(axis, out.shape.len()).map_err(axis_err)?;
    let (outer, _, _) = split_at_axis(&out.shape, ax)?;
    // Per input: the contiguous run it contributes to each outer index.
    let chunks = inputs
        .iter()
        .map(|t| split_at_axis(&t.shape, ax).map(|(_, len, inner)| len * inner))
        .collect::<Result<Vec<usize>>>()?;
    let mut v = alloc(numel(&out.shape)?)?;
    for o in 0..outer {
        for (t, &chunk) in inputs.iter().zip(&chunks) {
            v.extend_from_slice(range(&t.data, o * chunk, chunk)?);
        }
    }
    Ok(v)
}

/// The attributes of a `slice` node.
pub struct SliceSpec<'a> {
    /// Start per range.
    pub starts: &'a [i64],
    /// End per range (exclusive).
    pub ends: &'a [i64],
    /// Axis per range (range `i` applies to axis `i` when empty).
    pub axes: &'a [i64],
    /// Step per range (1 when empty).
    pub steps: &'a [i64],
}

/// `a[start:end:step]` per listed axis with NumPy semantics (negative indices count from the
/// end, out-of-range bounds are clamped, negative steps walk backwards), resolved by
/// [`slice_range`]; unlisted axes are kept whole. A later range for the same axis wins, as in
/// the shape rule.
pub fn slice(a: &Tensor, spec: &SliceSpec<'_>, out: &TensorInfo) -> Result<Vec<u64>> {
    let rank = a.shape.len();
    let mut start = vec![0i64; rank];
    let mut step = vec![1i64; rank];
    let mut len = a.shape.clone();
    for (i, (&s, &e)) in spec.starts.iter().zip(spec.ends).enumerate() {
        let ax = match spec.axes.get(i) {
            Some(&ax) => norm_axis(ax, rank).map_err(axis_err)?,
            None if spec.axes.is_empty() && i < rank => i,
            None => return Err(Error::invalid("`slice` has more ranges than axes")),
        };
        let k = spec.steps.get(i).copied().unwrap_or(1);
        if k == 0 {
            return Err(Error::invalid("`slice` step must not be 0"));
        }
        (start[ax], step[ax], len[ax]) = slice_range(a.shape[ax], s, e, k);
    }
    if len != out.shape {
        return Err(Error::internal(format!("slice of {:?} gives {len:?}, not {:?}", a.shape, out.shape)));
    }
    let own = row_major_strides(&a.shape);
    let mut base: isize = 0;
    let mut strides = Vec::with_capacity(rank);
    for d in 0..rank {
        base = base.wrapping_add((start[d] as isize).wrapping_mul(own[d]));
        strides.push((step[d] as isize).wrapping_mul(own[d]));
    }
    gather(&a.data, &len, base, strides)
}

/// `a` broadcast to the output shape (NumPy rules).
pub fn broadcast(a: &Tensor, out: &TensorInfo) -> Result<Vec<u64>> {
    Ok(expand(&a.data, &a.shape, &out.shape)?.into_owned())
}

#[cfg(test)]
mod tests {
    use super::super::testutil::*;
    use mpcflow_sdk::Op;

    fn iota(shape: &[usize]) -> mpcflow_sdk::Tensor {
        let n: usize = shape.iter().product();
        int(shape, &(0..n as i64).collect::<Vec<_>>())
    }

    fn slice(starts: &[i64], ends: &[i64], axes: &[i64], steps: &[i64]) -> Op {
        Op::Slice { starts: starts.to_vec(), ends: ends.to_vec(), axes: axes.to_vec(), steps: steps.to_vec() }
    }

    #[test]
    fn reshape_keeps_order() {
        let r = run(&Op::Reshape { shape: vec![3, -1] }, &[&iota(&[2, 3])]);
        assert_eq!((r.shape.clone(), ints(&r)), (vec![3, 2], vec![0, 1, 2, 3, 4, 5]));
    }

    #[test]
    fn transpose_permutes() {
        let a = iota(&[2, 3, 4]);
        let r = run(&Op::Transpose { perm: vec![2, 0, 1] }, &[&a]);
        assert_eq!(r.shape, vec![4, 2, 3]);
        // out[i][j][k] = a[j][k][i] = 12j + 4k + i.
        assert_eq!(ints(&r)[..8], [0, 4, 8, 12, 16, 20, 1, 5]);
        let r = run(&Op::Transpose { perm: vec![] }, &[&iota(&[2, 3])]);
        assert_eq!((r.shape.clone(), ints(&r)), (vec![3, 2], vec![0, 3, 1, 4, 2, 5]));
        let s = run(&Op::Transpose { perm: vec![] }, &[&int(&[], &[9])]);
        assert_eq!(ints(&s), vec![9]);
    }

    #[test]
    fn concat_along_negative_axis() {
        let (a, b) = (iota(&[2, 1]), int(&[2, 2], &[10, 11, 12, 13]));
        let r = run(&Op::Concat { axis: -1 }, &[&a, &b]);
        assert_eq!((r.shape.clone(), ints(&r)), (vec![2, 3], vec![0, 10, 11, 1, 12, 13]));
        let r = run(&Op::Concat { axis: 0 }, &[&a, &iota(&[1, 1]), &a]);
        assert_eq!(ints(&r), vec![0, 1, 0, 0, 1]);
        let r = run(&Op::Concat { axis: 0 }, &[&iota(&[0, 2]), &iota(&[1, 2])]);
        assert_eq!(ints(&r), vec![0, 1]);
    }

    #[test]
    fn slices_like_numpy() {
        let a = iota(&[5]);
        assert_eq!(ints(&run(&slice(&[1], &[-1], &[], &[]), &[&a])), vec![1, 2, 3]);
        // a[-1:-100:-2] = [4, 2, 0].
        assert_eq!(ints(&run(&slice(&[-1], &[-100], &[], &[-2]), &[&a])), vec![4, 2, 0]);
        // a[::-1] via huge bounds.
        assert_eq!(ints(&run(&slice(&[i64::MAX], &[i64::MIN], &[], &[-1]), &[&a])), vec![4, 3, 2, 1, 0]);
        assert_eq!(ints(&run(&slice(&[3], &[1], &[], &[]), &[&a])), Vec::<i64>::new());
        assert_eq!(ints(&run(&slice(&[0], &[5], &[], &[i64::MAX]), &[&a])), vec![0]);
        assert_eq!(ints(&run(&slice(&[4], &[-6], &[], &[i64::MIN]), &[&a])), vec![4]);
        // 2-D: rows 0..2, columns reversed by -2, given through negative axes.
        let m = iota(&[3, 4]);
        let r = run(&slice(&[0, -1], &[2, -5], &[-2, -1], &[1, -2]), &[&m]);
        assert_eq!((r.shape.clone(), ints(&r)), (vec![2, 2], vec![3, 1, 7, 5]));
        // A later range for the same axis wins.
        let r = run(&slice(&[0, 2], &[1, 4], &[1, 1], &[]), &[&m]);
        assert_eq!(ints(&r), vec![2, 3, 6, 7, 10, 11]);
    }

    #[test]
    fn broadcast_to_shape() {
        let r = run(&Op::Broadcast { shape: vec![2, 3, 2] }, &[&iota(&[3, 1])]);
        assert_eq!(ints(&r), vec![0, 0, 1, 1, 2, 2, 0, 0, 1, 1, 2, 2]);
        let r = run(&Op::Broadcast { shape: vec![2] }, &[&fx(&[], &[1.5])]);
        assert_eq!(reals(&r), vec![1.5, 1.5]);
    }

    mod props {
        use super::super::super::testutil::*;
        use super::iota;
        use mpcflow_sdk::Op;
        use proptest::prelude::*;

        fn shape_and_perm() -> impl Strategy<Value = (Vec<usize>, Vec<usize>)> {
            prop::collection::vec(1usize..4, 0..5).prop_flat_map(|s| {
                let r = s.len();
                (Just(s), Just((0..r).collect::<Vec<_>>()).prop_shuffle())
            })
        }

        proptest! {
            #[test]
            fn transpose_twice_with_inverse_is_identity((shape, perm) in shape_and_perm()) {
                let a = iota(&shape);
                let mut inv = vec![0; perm.len()];
                for (i, &p) in perm.iter().enumerate() {
                    inv[p] = i;
                }
                let t = run(&Op::Transpose { perm: perm.clone() }, &[&a]);
                let back = run(&Op::Transpose { perm: inv }, &[&t]);
                prop_assert_eq!(back, a);
            }

            #[test]
            fn concat_then_slice_returns_the_parts(
                rows in 1usize..4, widths in prop::collection::vec(0usize..4, 1..4), axis_neg in any::<bool>()
            ) {
                let parts: Vec<_> = widths
                    .iter()
                    .enumerate()
                    .map(|(i, &w)| int(&[rows, w], &(0..(rows * w) as i64).map(|x| x + 100 * i as i64).collect::<Vec<_>>()))
                    .collect();
                let refs: Vec<_> = parts.iter().collect();
                let axis = if axis_neg { -1 } else { 1 };
                let c = run(&Op::Concat { axis }, &refs);
                let mut at = 0i64;
                for (p, &w) in parts.iter().zip(&widths) {
                    let s = run(&Op::Slice { starts: vec![at], ends: vec![at + w as i64], axes: vec![axis], steps: vec![] }, &[&c]);
                    prop_assert_eq!(&s, p);
                    at += w as i64;
                }
            }
        }
    }
}
