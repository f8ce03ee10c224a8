//! Window ops over the last two axes of `[N, C, H, W]`: `maxpool` and `avgpool`.
//!
//! Why a module of its own: both walk the same windows, but treat padding differently, which
//! is the part a secure implementation most easily gets wrong: `maxpool` never selects a padding
//! position (an all-negative window stays negative), while `avgpool` counts padding as zeros and
//! always divides by the full kernel area (like PyTorch's `count_include_pad=True`).

use super::words::{alloc, at, div_round, fixed_scaled, numel, signed};
use mpcflow_sdk::op::Pool;
use mpcflow_sdk::shape::TensorInfo;
use mpcflow_sdk::{Error, FixedPoint, Result, Tensor};

/// Geometry of one pooling: input `[n, c, h, w]`, output `oh x ow`, and the window.
struct Windows {
    planes: usize,
    h: usize,
    w: usize,
    oh: usize,
    ow: usize,
    p: Pool,
}

impl Windows {
    fn new(x: &Tensor, out: &TensorInfo, p: &Pool) -> Result<Windows> {
        match (x.shape.as_slice(), out.shape.as_slice()) {
            ([n, c, h, w], [n2, c2, oh, ow]) if n == n2 && c == c2 => {
                Ok(Windows { planes: numel(&[*n, *c])?, h: *h, w: *w, oh: *oh, ow: *ow, p: p.clone() })
            }
            _ => Err(Error::internal(format!("pooling {:?} into {:?}", x.shape, out.shape))),
        }
    }

    /// Calls `f(positions)` once per window, in output order, with the input indices of the
    /// window's positions that are not padding.
    fn each(&self, mut f: impl FnMut(&[usize]) -> Result<()>) -> Result<()> {
        let ([kh, kw], [sh, sw], [ph, pw]) = (self.p.kernel, self.p.stride, self.p.padding);
        let mut positions = Vec::new();
        for plane in 0..self.planes {
            for oy in 0..self.oh {
                for ox in 0..self.ow {
                    positions.clear();
                    for ky in 0..kh {
                        let Some(iy) = (oy * sh + ky).checked_sub(ph).filter(|&iy| iy < self.h) else {
                            continue;
                        };
                        for kx in 0..kw {
                            let Some(ix) = (ox * sw + kx).checked_sub(pw).filter(|&ix| ix < self.w) else {
                                continue;
                            };
                            positions.push((plane * self.h + iy) * self.w + ix);
                        }
                    }
                    f(&positions)?;
                }
            }
        }
        Ok(())
    }
}

/// Enforces the comparison width within every window (see [`super::compare::Width`]).
pub fn check_windows(x: &Tensor, p: &Pool, out: &TensorInfo, w: super::compare::Width) -> Result<()> {
    let win = Windows::new(x, out, p)?;
    win.each(|positions| {
        let group: Result<Vec<i64>> = positions.iter().map(|&i| Ok(signed(x.dtype, at(&x.data, i)?))).collect();
        w.span(group?)
    })
}

/// The largest element of each window (signed words); padding positions are never selected.
pub fn maxpool(x: &Tensor, p: &Pool, out: &TensorInfo) -> Result<Vec<u64>> {
    let win = Windows::new(x, out, p)?;
    let mut v = alloc(numel(&out.shape)?)?;
    win.each(|positions| {
        let mut best: Option<i64> = None;
        for &i in positions {
            let e = signed(x.dtype, at(&x.data, i)?);
            best = Some(best.map_or(e, |b| b.max(e)));
        }
        // The shape rule keeps padding below the kernel, so no window is all padding.
        let b = best.ok_or_else(|| Error::internal("a pooling window lies entirely in the padding"))?;
        v.push(b as u64);
        Ok(())
    })?;
    Ok(v)
}

/// The exact sum of each window (padding counts as 0) divided by the kernel area, rounded to
/// nearest (ties away from zero). Int inputs are read as reals (times `2^f`); the result wraps
/// like every ring op (only an int input near the ends of its range can leave the fixed range).
pub fn avgpool(x: &Tensor, p: &Pool, out: &TensorInfo, fp: FixedPoint) -> Result<Vec<u64>> {
    let win = Windows::new(x, out, p)?;
    let area = i128::try_from(numel(&p.kernel)?).map_err(|_| Error::invalid("pooling kernel too large"))?;
    let mut v = alloc(numel(&out.shape)?)?;
    win.each(|positions| {
        let mut sum = 0i128;
        for &i in positions {
            sum = sum
                .checked_add(fixed_scaled(x.dtype, at(&x.data, i)?, fp))
                .ok_or_else(|| Error::invalid("avgpool window sum overflows 128 bits"))?;
        }
        let q = div_round(sum, area).ok_or_else(|| Error::invalid("pooling kernel of area 0"))?;
        v.push(q as u64);
        Ok(())
    })?;
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::super::testutil::*;
    use mpcflow_sdk::op::Pool;
    use mpcflow_sdk::{DType, Op, Tensor};

    fn pool(kernel: [usize; 2], stride: [usize; 2], padding: [usize; 2]) -> Pool {
        Pool { kernel, stride, padding }
    }

    #[test]
    fn maxpool_ignores_padding() {
        let x = int(&[1, 1, 2, 2], &[-1, -2, -3, -4]);
        let r = run(&Op::Maxpool(pool([2, 2], [1, 1], [1, 1])), &[&x]);
        assert_eq!(r.shape, vec![1, 1, 3, 3]);
        assert_eq!(ints(&r), vec![-1, -1, -2, -1, -1, -2, -3, -3, -4]);
    }

    #[test]
    fn maxpool_strided_over_channels() {
        let v: Vec<f64> = (0..32).map(|i| if i % 5 == 0 { -(i as f64) } else { i as f64 * 0.5 }).collect();
        let x = fx(&[1, 2, 4, 4], &v);
        let r = run(&Op::Maxpool(pool([2, 2], [2, 2], [0, 0])), &[&x]);
        assert_eq!(r.shape, vec![1, 2, 2, 2]);
        // Plane 0 windows: {0,1,4,5}, {2,3,6,7}, {8,9,12,13}, {10,11,14,15}; multiples of 5 negated.
        assert_eq!(reals(&r), vec![2.0, 3.5, 6.5, 7.0, 10.5, 11.5, 14.5, 15.5]);
        let b = bit(&[1, 1, 2, 2], &[0, 0, 1, 0]);
        let r = run(&Op::Maxpool(pool([2, 2], [2, 2], [0, 0])), &[&b]);
        assert_eq!((r.dtype, r.data), (DType::Bit, vec![1]));
        let r = run(&Op::Maxpool(pool([1, 1], [1, 1], [0, 0])), &[&int(&[1, 1, 1, 2], &[i64::MIN, i64::MAX])]);
        assert_eq!(ints(&r), vec![i64::MIN, i64::MAX]);
    }

    #[test]
    fn avgpool_counts_padding_as_zero() {
        let x = fx(&[1, 1, 2, 2], &[-1.0, -2.0, -3.0, -4.0]);
        let r = run(&Op::Avgpool(pool([2, 2], [1, 1], [1, 1])), &[&x]);
        assert_eq!(reals(&r), vec![-0.25, -0.75, -0.5, -1.0, -2.5, -1.5, -0.75, -1.75, -1.0]);
    }

    #[test]
    fn avgpool_rounds_to_nearest_and_reads_ints_as_reals() {
        let w = Tensor::from_words(DType::Fixed, vec![1, 1, 1, 4], vec![1, 0, (-1i64) as u64, 0]).unwrap();
        let r = run(&Op::Avgpool(pool([1, 2], [1, 2], [0, 0])), &[&w]);
        assert_eq!(ints(&r), vec![1, -1], "half an ulp rounds away from zero");
        let w = Tensor::from_words(DType::Fixed, vec![1, 1, 1, 3], vec![1, 1, 0]).unwrap();
        assert_eq!(ints(&run(&Op::Avgpool(pool([1, 3], [1, 1], [0, 0])), &[&w])), vec![1]);
        let r = run(&Op::Avgpool(pool([1, 2], [1, 1], [0, 0])), &[&int(&[1, 1, 1, 3], &[1, 2, -7])]);
        assert_eq!((r.dtype, reals(&r)), (DType::Fixed, vec![1.5, -2.5]));
    }
}
