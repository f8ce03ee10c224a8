//! Comparisons and what is built on them elementwise: `gt`, `ge`, `lt`, `le`, `eq`, `relu`,
//! two-input `max`/`min`, and `select`.
//!
//! Why a module of its own: in a secure protocol these are the ops that need a comparison (or a
//! multiplexer) circuit; in the reference they all reduce to comparing words as signed `i64`.
//! The shape rules guarantee that both operands are fixed, or both are int/bit, so comparing
//! words compares the real numbers they denote (bits count as the integers 0 and 1).

use super::broadcast::{zip2, zip3};
use super::words::map1;
use mpcflow_sdk::shape::TensorInfo;
use mpcflow_sdk::{Op, Result, Tensor};

/// A comparison op as a predicate on signed words.
fn predicate(op: &Op) -> Option<fn(i64, i64) -> bool> {
    let p: fn(i64, i64) -> bool = match op {
        Op::Gt => |x, y| x > y,
        Op::Ge => |x, y| x >= y,
        Op::Lt => |x, y| x < y,
        Op::Le => |x, y| x <= y,
        Op::Eq => |x, y| x == y,
        _ => return None,
    };
    Some(p)
}

/// `a <op> b` as bits, with broadcasting. `None` when `op` is not a comparison.
pub fn compare(op: &Op, a: &Tensor, b: &Tensor, out: &TensorInfo) -> Option<Result<Vec<u64>>> {
    let p = predicate(op)?;
    Some(zip2(a, b, &out.shape, |x, y| u64::from(p(x as i64, y as i64))))
}

/// `max(a, 0)` on signed words (bits are unchanged).
pub fn relu(a: &Tensor) -> Result<Vec<u64>> {
    map1(a, |x| if (x as i64) < 0 { 0 } else { x })
}

/// Elementwise `max(a, b)` (`is_max`) or `min(a, b)` of signed words, with broadcasting.
pub fn max_min(a: &Tensor, b: &Tensor, out: &TensorInfo, is_max: bool) -> Result<Vec<u64>> {
    if is_max {
        zip2(a, b, &out.shape, |x, y| (x as i64).max(y as i64) as u64)
    } else {
        zip2(a, b, &out.shape, |x, y| (x as i64).min(y as i64) as u64)
    }
}

/// `select(cond, a, b)`: `a` where the condition's low bit is 1, else `b`; all three broadcast.
pub fn select(cond: &Tensor, a: &Tensor, b: &Tensor, out: &TensorInfo) -> Result<Vec<u64>> {
    zip3(cond, a, b, &out.shape, |c, x, y| if c & 1 == 1 { x } else { y })
}

#[cfg(test)]
mod tests {
    use super::super::testutil::*;
    use mpcflow_sdk::{DType, Op};

    #[test]
    fn comparisons_are_signed_and_broadcast() {
        let a = int(&[2, 3], &[-1, 0, 1, i64::MIN, i64::MAX, 5]);
        let b = int(&[3], &[0, 0, 1]);
        let cases = [
            (Op::Gt, [0, 0, 0, 0, 1, 1]),
            (Op::Ge, [0, 1, 1, 0, 1, 1]),
            (Op::Lt, [1, 0, 0, 1, 0, 0]),
            (Op::Le, [1, 1, 1, 1, 0, 0]),
            (Op::Eq, [0, 1, 1, 0, 0, 0]),
        ];
        for (op, want) in cases {
            let r = run(&op, &[&a, &b]);
            assert_eq!((r.dtype, r.shape.clone(), r.data), (DType::Bit, vec![2, 3], want.to_vec()), "{op:?}");
        }
        let r = run(&Op::Lt, &[&fx(&[2], &[-0.5, 2.0]), &fx(&[], &[1.0])]);
        assert_eq!(r.data, vec![1, 0]);
        let r = run(&Op::Eq, &[&bit(&[2], &[1, 0]), &int(&[2], &[1, 1])]);
        assert_eq!(r.data, vec![1, 0]);
    }

    #[test]
    fn relu_and_max_min() {
        let r = run(&Op::Relu, &[&fx(&[4], &[-1.5, 0.0, 2.25, -0.0001])]);
        assert_eq!(reals(&r), vec![0.0, 0.0, 2.25, 0.0]);
        assert_eq!(ints(&run(&Op::Relu, &[&int(&[2], &[i64::MIN, i64::MAX])])), vec![0, i64::MAX]);
        let r = run(&Op::Relu, &[&bit(&[2], &[1, 0])]);
        assert_eq!((r.dtype, r.data), (DType::Bit, vec![1, 0]));
        let (a, b) = (int(&[2, 2], &[1, -5, i64::MIN, 7]), int(&[2], &[0, 3]));
        assert_eq!(ints(&run(&Op::Max { axis: None }, &[&a, &b])), vec![1, 3, 0, 7]);
        assert_eq!(ints(&run(&Op::Min { axis: None }, &[&a, &b])), vec![0, -5, i64::MIN, 3]);
        let r = run(&Op::Max { axis: None }, &[&bit(&[2], &[0, 1]), &bit(&[2], &[0, 0])]);
        assert_eq!((r.dtype, r.data), (DType::Bit, vec![0, 1]));
        let r = run(&Op::Min { axis: None }, &[&bit(&[2], &[1, 1]), &int(&[2], &[-2, 4])]);
        assert_eq!((r.dtype, ints(&r)), (DType::Int, vec![-2, 1]));
        let r = run(&Op::Max { axis: None }, &[&fx(&[2], &[-1.0, 0.5]), &fx(&[], &[0.25])]);
        assert_eq!(reals(&r), vec![0.25, 0.5]);
    }

    #[test]
    fn select_broadcasts_all_three() {
        let c = bit(&[2, 1], &[1, 0]);
        let a = fx(&[3], &[1.0, 2.0, 3.0]);
        let b = fx(&[], &[-1.0]);
        let r = run(&Op::Select, &[&c, &a, &b]);
        assert_eq!(r.shape, vec![2, 3]);
        assert_eq!(reals(&r), vec![1.0, 2.0, 3.0, -1.0, -1.0, -1.0]);
        // Mixed int/bit branches give ints; the bit branch counts as 0/1.
        let r = run(&Op::Select, &[&bit(&[2], &[0, 1]), &int(&[2], &[7, 8]), &bit(&[2], &[1, 1])]);
        assert_eq!((r.dtype, ints(&r)), (DType::Int, vec![1, 8]));
        // Only the condition's low bit matters.
        let r = run(&Op::Select, &[&bit(&[2], &[3, 2]), &int(&[], &[1]), &int(&[], &[0])]);
        assert_eq!(ints(&r), vec![1, 0]);
    }
}
