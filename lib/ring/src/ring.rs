//! Running the op set's plaintext kernels in "ring mode": every tensor read as 64-bit integers,
//! so ops are the exact wrapping ring maps that masked values and mask shares need.
//!
//! Products (`matmul`, `conv2d`, and `mul` without a general broadcast) run on the fast
//! wrapping kernels of [`crate::linalg`]; the moves that split and join a large gate into
//! chunks (`reshape`, a `slice` of whole rows, a `concat` along axis 0, as fss2pc's lowering
//! emits them) are single copies; every other op runs on the plaintext [`crate::kernels`] in
//! `Int` mode. All give the same words, and the same errors for inputs that do not fit the op (a
//! fast path that does not apply falls through to `ref`).

use crate::kernels::eval_op;
use crate::linalg;
use mpcflow_sdk::shape::{TensorInfo, Visibility};
use mpcflow_sdk::{DType, FixedPoint, Op, Result, Tensor};

/// `op` applied to ring words, with the output shape `shape`.
pub fn apply(op: &Op, inputs: &[&[u64]], shapes: &[&[usize]], shape: &[usize]) -> Result<Vec<u64>> {
    apply_config(op, inputs, shapes, shape, &linalg::Config::default())
}

/// [`apply`] with the products computed as `cfg` says (threads, Strassen, vector unit).
pub fn apply_config(
    op: &Op,
    inputs: &[&[u64]],
    shapes: &[&[usize]],
    shape: &[usize],
    cfg: &linalg::Config,
) -> Result<Vec<u64>> {
    let cfg = *cfg;
    match (op, inputs, shapes) {
        (Op::Matmul, &[a, b], &[sa, sb]) => linalg::matmul([a, b], [sa, sb], shape, &cfg),
        (Op::Conv2d { stride, padding }, &[x, w], &[sx, sw]) => {
            linalg::conv2d([x, w], [sx, sw], *stride, *padding, shape, &cfg)
        }
        (Op::Mul, &[a, b], &[sa, sb]) => match linalg::mul([a, b], [sa, sb], shape)? {
            Some(v) => Ok(v),
            None => via_ref(op, inputs, shapes, shape),
        },
        _ => match moved(op, inputs, shapes, shape).or_else(|| direct(op, inputs, shapes, shape)) {
            Some(v) => Ok(v),
            None => via_ref(op, inputs, shapes, shape),
        },
    }
}

/// `add` and `sub` of two operands of the output's shape or of one such and a one-element
/// operand, `neg`, and a `sum` down to one element, as straight loops over the words; `None`
/// for anything else (left to `ref`, which copies its inputs into tensors first: a tenth of a
/// million-row statistics pipeline's time went to those copies).
fn direct(op: &Op, inputs: &[&[u64]], shapes: &[&[usize]], shape: &[usize]) -> Option<Vec<u64>> {
    use mpcflow_sdk::tensor::numel;
    let n = numel(shape);
    let whole = |k: usize| inputs.get(k).zip(shapes.get(k)).is_some_and(|(d, s)| d.len() == n && *s == shape);
    let single = |k: usize| inputs.get(k).zip(shapes.get(k)).is_some_and(|(d, s)| d.len() == 1 && numel(s) == 1);
    let f: fn(u64, u64) -> u64 = match op {
        Op::Add => u64::wrapping_add,
        Op::Sub => u64::wrapping_sub,
        Op::Neg if inputs.len() == 1 && whole(0) => return Some(inputs[0].iter().map(|x| x.wrapping_neg()).collect()),
        Op::Sum { .. }
            if inputs.len() == 1 && n == 1 && shapes.first().is_some_and(|s| numel(s) == inputs[0].len()) =>
        {
            return Some(vec![inputs[0].iter().fold(0u64, |s, x| s.wrapping_add(*x))]);
        }
        _ => return None,
    };
    let (a, b) = match inputs {
        &[a, b] => (a, b),
        _ => return None,
    };
    if whole(0) && whole(1) {
        Some(a.iter().zip(b).map(|(x, y)| f(*x, *y)).collect())
    } else if whole(0) && single(1) {
        Some(a.iter().map(|x| f(*x, b[0])).collect())
    } else if single(0) && whole(1) {
        Some(b.iter().map(|y| f(a[0], *y)).collect())
    } else {
        None
    }
}

/// `reshape`, a step-1 `slice` of whole rows (axis 0, in-range bounds) and `concat` along axis 0
/// of row-major words as one copy; `None` for anything else (left to `ref`, which also reports
/// bad shapes). `ref` copies every input into a tensor first, which for the slices of a chunked
/// gate meant the whole input once per chunk.
fn moved(op: &Op, inputs: &[&[u64]], shapes: &[&[usize]], shape: &[usize]) -> Option<Vec<u64>> {
    use mpcflow_sdk::tensor::numel;
    let whole = inputs.len() == shapes.len() && inputs.iter().zip(shapes).all(|(d, s)| d.len() == numel(s));
    if !whole {
        return None;
    }
    match (op, inputs, shapes) {
        (Op::Reshape { .. }, &[a], _) if a.len() == numel(shape) => Some(a.to_vec()),
        (Op::Slice { starts, ends, axes, steps }, &[a], &[sa]) => {
            let (&[start], &[end], &[0]) = (starts.as_slice(), ends.as_slice(), axes.as_slice()) else { return None };
            let ([rows, rest @ ..], true) = (sa, steps.is_empty() || steps == &[1]) else { return None };
            let (start, end) = (usize::try_from(start).ok()?, usize::try_from(end).ok()?);
            let fits = start <= end && end <= *rows && shape.split_first() == Some((&(end - start), rest));
            let inner = numel(rest);
            fits.then(|| a[start * inner..end * inner].to_vec())
        }
        (Op::Concat { axis: 0 }, _, [first, ..]) => {
            let rest = first.get(1..)?;
            let rows = shapes.iter().try_fold(0usize, |n, s| (s.get(1..) == Some(rest)).then(|| n + s[0]))?;
            (shape.split_first() == Some((&rows, rest))).then(|| inputs.concat())
        }
        _ => None,
    }
}

/// `op` applied to ring words by the plaintext kernels in `Int` mode (exact `i128` sums): the
/// reference that the fast paths are tested against.
pub fn via_ref(op: &Op, inputs: &[&[u64]], shapes: &[&[usize]], shape: &[usize]) -> Result<Vec<u64>> {
    let tensors: Vec<Tensor> = inputs
        .iter()
        .zip(shapes)
        .map(|(d, s)| Tensor { dtype: DType::Int, shape: s.to_vec(), data: d.to_vec() })
        .collect();
    let refs: Vec<&Tensor> = tensors.iter().collect();
    let out = TensorInfo { shape: shape.to_vec(), dtype: DType::Int, vis: Visibility::Secret };
    Ok(eval_op(op, &refs, &out, FixedPoint::new(0))?.data)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn words(n: usize, seed: u64) -> Vec<u64> {
        (0..n as u64).map(|i| (i + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ seed).collect()
    }

    /// The planned output shape, as the planner gives it.
    fn out_shape(op: &Op, shapes: &[&[usize]]) -> Option<Vec<usize>> {
        let infos: Vec<TensorInfo> = shapes
            .iter()
            .map(|s| TensorInfo { shape: s.to_vec(), dtype: DType::Int, vis: Visibility::Secret })
            .collect();
        mpcflow_sdk::shape::infer(op, &infos).ok().map(|t| t.shape)
    }

    proptest! {
        /// The copies give `ref`'s words for every slice, concat and reshape the planner accepts,
        /// whether or not the fast path applies.
        #[test]
        fn moves_match_ref(
            dims in prop::collection::vec(0usize..5, 1..4),
            (start, end, axis, step) in (-6i64..7, -6i64..7, 0i64..2, prop::sample::select(vec![0i64, 1, 2, -1])),
            (rows, seed) in (0usize..4, any::<u64>()),
        ) {
            let n = dims.iter().product::<usize>();
            let a = words(n, seed);
            let steps = if step == 0 { vec![] } else { vec![step] };
            let slice = Op::Slice { starts: vec![start], ends: vec![end], axes: vec![axis], steps };
            let reshape = Op::Reshape { shape: vec![-1] };
            for op in [slice, reshape] {
                if let Some(out) = out_shape(&op, &[&dims]) {
                    let want = via_ref(&op, &[&a], &[&dims], &out).unwrap();
                    prop_assert_eq!(apply(&op, &[&a], &[&dims], &out).unwrap(), want, "{:?} of {:?}", op, dims);
                }
            }
            let mut other = dims.clone();
            other[0] = rows;
            let b = words(other.iter().product(), !seed);
            let concat = Op::Concat { axis: 0 };
            let out = out_shape(&concat, &[&dims, &other]).unwrap();
            let want = via_ref(&concat, &[&a, &b], &[&dims, &other], &out).unwrap();
            prop_assert_eq!(apply(&concat, &[&a, &b], &[&dims, &other], &out).unwrap(), want);
        }
    }

    proptest! {
        /// The direct loops give `ref`'s words for add and sub (same shapes, a one-element
        /// operand on either side, broadcasts they decline), neg and whole sums.
        #[test]
        fn direct_loops_match_ref(dims in prop::collection::vec(1usize..5, 1..4), seed in any::<u64>()) {
            let n = dims.iter().product::<usize>();
            let (a, b) = (words(n, seed), words(n, !seed));
            let one = words(1, seed ^ 7);
            let mut row = dims.clone();
            row[0] = 1;
            let r = words(row.iter().product(), seed ^ 9);
            type Operands<'a> = Vec<(&'a [u64], Vec<usize>)>;
            let cases: Vec<(Op, Operands<'_>)> = vec![
                (Op::Add, vec![(&a, dims.clone()), (&b, dims.clone())]),
                (Op::Sub, vec![(&a, dims.clone()), (&one, vec![])]),
                (Op::Sub, vec![(&one, vec![1]), (&b, dims.clone())]),
                (Op::Add, vec![(&a, dims.clone()), (&r, row.clone())]),
                (Op::Neg, vec![(&a, dims.clone())]),
                (Op::Sum { axes: vec![], keepdims: false }, vec![(&a, dims.clone())]),
                (Op::Sum { axes: vec![0], keepdims: true }, vec![(&a, dims.clone())]),
            ];
            for (op, ins) in cases {
                let data: Vec<&[u64]> = ins.iter().map(|(d, _)| *d).collect();
                let shapes: Vec<&[usize]> = ins.iter().map(|(_, s)| s.as_slice()).collect();
                if let Some(out) = out_shape(&op, &shapes) {
                    let want = via_ref(&op, &data, &shapes, &out).unwrap();
                    prop_assert_eq!(apply(&op, &data, &shapes, &out).unwrap(), want, "{:?} of {:?}", op, shapes);
                }
            }
        }
    }

    #[test]
    fn bad_shapes_are_refs_errors() {
        let a = words(6, 1);
        let slice = Op::Slice { starts: vec![0], ends: vec![2], axes: vec![0], steps: vec![] };
        // A planned shape that does not match: the fast path declines, and ref reports it.
        assert!(apply(&slice, &[&a], &[&[3, 2]], &[3, 2]).is_err());
        assert!(apply(&Op::Reshape { shape: vec![-1] }, &[&a], &[&[3, 2]], &[7]).is_err());
        assert!(apply(&Op::Concat { axis: 0 }, &[&a, &a], &[&[3, 2], &[2, 3]], &[5, 2]).is_err());
    }
}
