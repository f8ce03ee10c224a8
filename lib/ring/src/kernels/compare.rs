//! Comparisons and what is built on them elementwise: `gt`, `ge`, `lt`, `le`, `eq`, `relu`,
//! two-input `max`/`min`, and `select`.
//!
//! Why a module of its own: in a secure protocol these are the ops that need a comparison (or a
//! multiplexer) circuit; in the reference they all reduce to comparing words as signed `i64`.
//! The shape rules guarantee that both operands are fixed, or both are int/bit, so comparing
//! words compares the real numbers they denote (bits count as the integers 0 and 1).

use super::broadcast::{each2, zip2, zip3};
use super::words::map1;
use mpcflow_sdk::shape::TensorInfo;
use mpcflow_sdk::{DType, Error, FixedPoint, Op, Result, Tensor};

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

/// The comparison width a graph declares (`compare_bits`, 64 by default) as a contract that
/// `ref` enforces: secure protocols compute the sign of a difference over that many bits, so
/// two compared values must differ by less than `2^(bits − 1)` words (and a ReLU input must
/// stay below it). A comparison outside the width would be silently wrong there; here it is an
/// error naming both values, so testing a pipeline under `ref` shows the problem.
#[derive(Clone, Copy, Debug)]
pub struct Width {
    /// The declared width.
    pub fp: FixedPoint,
    /// How the compared words read as numbers.
    pub dtype: DType,
}

impl Width {
    /// The largest difference the width allows, in words.
    fn limit(self) -> i128 {
        (1i128 << (self.fp.compare_bits.clamp(2, 64) - 1)) - 1
    }

    /// Whether `x − y` fits.
    fn fits(self, x: i64, y: i64) -> bool {
        (i128::from(x) - i128::from(y)).abs() <= self.limit()
    }

    fn show(self, w: i64) -> String {
        match self.dtype {
            DType::Fixed => format!("{}", self.fp.decode(w as u64)),
            _ => w.to_string(),
        }
    }

    /// The error for comparing `x` with `y` (with 0 for a ReLU: `y` absent).
    fn refuse(self, x: i64, y: Option<i64>) -> Error {
        let bits = self.fp.compare_bits;
        let limit = match self.dtype {
            DType::Fixed => format!("{}", self.limit() as f64 / self.fp.scale()),
            _ => self.limit().to_string(),
        };
        let what = match y {
            None => format!("value {} is beyond the reach of a sign test over", self.show(x)),
            Some(y) => {
                format!("compared values {} and {} are too far apart for a comparison over", self.show(x), self.show(y))
            }
        };
        Error::invalid(format!(
            "{what} compare_bits = {bits} (differences up to {limit}); \
             secure protocols would give a wrong answer: declare a wider compare_bits (at most 64) or keep the values \
             closer together"
        ))
    }

    /// Checks that `x` and `y` compare within the width.
    pub fn check_pair(self, x: i64, y: i64) -> Result<()> {
        if self.fits(x, y) { Ok(()) } else { Err(self.refuse(x, Some(y))) }
    }

    /// Checks every pair that `zip2` would compare.
    fn pairs(self, a: &Tensor, b: &Tensor, out: &[usize]) -> Result<()> {
        let mut bad: Option<(i64, i64)> = None;
        each2(a, b, out, |x, y| {
            if bad.is_none() && !self.fits(x as i64, y as i64) {
                bad = Some((x as i64, y as i64));
            }
        })?;
        bad.map_or(Ok(()), |(x, y)| Err(self.refuse(x, Some(y))))
    }

    /// Checks that every group's largest and smallest element compare within the width (the
    /// secure lowerings of max, argmax and maxpool compare pairs within one group).
    pub fn span(self, group: impl IntoIterator<Item = i64>) -> Result<()> {
        let (mut lo, mut hi) = (i64::MAX, i64::MIN);
        for v in group {
            lo = lo.min(v);
            hi = hi.max(v);
        }
        if lo <= hi && !self.fits(hi, lo) { Err(self.refuse(hi, Some(lo))) } else { Ok(()) }
    }
}

/// Enforces the comparison width on the operands of a two-input comparison, `max`/`min`, or
/// a ReLU (`b` absent: the value is compared with 0).
pub fn check_width(w: Width, a: &Tensor, b: Option<&Tensor>, out: &TensorInfo) -> Result<()> {
    if a.dtype == DType::Bit && b.is_none_or(|b| b.dtype == DType::Bit) {
        return Ok(()); // 0 and 1 compare within any width
    }
    match b {
        Some(b) => w.pairs(a, b, &out.shape),
        None => match a.data.iter().map(|&x| super::words::signed(a.dtype, x)).find(|&x| !w.fits(x, 0)) {
            Some(x) => Err(w.refuse(x, None)),
            None => Ok(()),
        },
    }
}

/// `onehot(a, depth)`: bit `k` of element `i`'s row is `[a_i == k]`, along a new last axis
/// ([`super::domains`] holds `a` to integers in `[0, depth)`).
pub fn one_hot(a: &Tensor, depth: usize, fp: FixedPoint) -> Result<Vec<u64>> {
    let len = a.data.len().checked_mul(depth).ok_or_else(|| Error::invalid("onehot output too large"))?;
    let mut out = vec![0u64; len];
    for (row, &w) in out.chunks_mut(depth.max(1)).zip(&a.data) {
        let k = match a.dtype {
            DType::Fixed => fp.decode(w),
            _ => w as i64 as f64,
        };
        if k >= 0.0 && (k as usize) < depth && k.fract() == 0.0 {
            row[k as usize] = 1;
        }
    }
    Ok(out)
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
    fn onehot_rows_of_ints_and_fixed() {
        let r = run(&Op::OneHot { depth: 3 }, &[&int(&[2], &[2, 0])]);
        assert_eq!((r.dtype, r.shape.clone()), (DType::Bit, vec![2, 3]));
        assert_eq!(ints(&r), vec![0, 0, 1, 1, 0, 0]);
        let r = run(&Op::OneHot { depth: 4 }, &[&fx(&[1, 1], &[3.0])]);
        assert_eq!((r.shape.clone(), ints(&r)), (vec![1, 1, 4], vec![0, 0, 0, 1]));
    }

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

    /// The kernels compare whole words (above); the protocol's contract check refuses what a
    /// 64-bit (or narrower) sign cannot tell apart, naming the values.
    #[test]
    fn comparisons_beyond_the_declared_width_are_refused() {
        use super::super::{check_contracts, eval_op};
        let at = |bits: u32, op: Op, ins: &[&mpcflow_sdk::Tensor]| {
            let out = out_info(&op, ins).unwrap();
            let fp = fp().with_compare_bits(bits);
            check_contracts(&op, ins, &out, fp).and_then(|()| eval_op(&op, ins, &out, fp))
        };
        let (lo, five) = (int(&[], &[i64::MIN]), int(&[], &[5]));
        for op in [Op::Gt, Op::Ge, Op::Lt, Op::Le, Op::Eq, Op::Max { axis: None }, Op::Min { axis: None }] {
            let e = at(64, op.clone(), &[&lo, &five]).unwrap_err().to_string();
            assert!(e.contains("compared values -9223372036854775808 and 5 are too far apart"), "{op:?}: {e}");
            assert!(e.contains("compare_bits = 64"), "{e}");
        }
        let e = at(64, Op::Relu, &[&lo]).unwrap_err().to_string();
        assert!(e.contains("value -9223372036854775808 is beyond"), "{e}");
        // At 25 bits a fixed value of 1000 (2^16 words per unit) is out of reach; 255 is not.
        let (x, t) = (fx(&[2], &[1000.0, 120.0]), fx(&[], &[140.0]));
        let e = at(25, Op::Gt, &[&x, &t]).unwrap_err().to_string();
        assert!(e.contains("compared values 1000 and 140") && e.contains("compare_bits = 25"), "{e}");
        assert!(e.contains("differences up to 255.99"), "{e}");
        assert_eq!(at(25, Op::Gt, &[&fx(&[2], &[250.0, 120.0]), &t]).unwrap().data, vec![1, 0]);
        let e = at(25, Op::Relu, &[&x]).unwrap_err().to_string();
        assert!(e.contains("value 1000 is beyond"), "{e}");
        // Groups of max over an axis, argmax and maxpool: within a lane or window only.
        let m = fx(&[2, 2], &[-200.0, 50.0, 900.0, 1000.0]);
        assert!(at(25, Op::Max { axis: Some(1) }, &[&m]).is_ok(), "lanes span 250 and 100");
        let e = at(25, Op::Argmax { axis: 0, one_hot: false }, &[&m]).unwrap_err().to_string();
        assert!(e.contains("compared values 900 and -200"), "{e}");
        let e = at(25, Op::Softmax { axis: 0 }, &[&m]).unwrap_err().to_string();
        assert!(e.contains("compared values 900 and -200"), "{e}");
        assert!(at(25, Op::Softmax { axis: 1 }, &[&m]).is_ok());
        // Bits compare within any width.
        assert!(at(2, Op::Gt, &[&bit(&[2], &[1, 0]), &bit(&[2], &[0, 1])]).is_ok());
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
