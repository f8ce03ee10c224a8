//! Sums of products: batched `matmul` and `conv2d`.
//!
//! Why a module of its own: these are the ops whose secure versions use matrix triples and whose
//! rounding differs from a chain of `mul` + `add`. The reference accumulates the **exact**
//! products of every output element in `i128` and rounds **once**: fixed × fixed is rounded by
//! `frac_bits` (ties away from zero), every other dtype pair is the ring sum (wrapping to 64
//! bits; bit × bit with a bit output is the sum modulo 2, i.e. the product over GF(2)).
//! The `i128` accumulator wraps modulo 2^128; that can only happen with more than two products
//! near 2^126 each, and even then the result is exact modulo 2^64 except possibly the direction
//! of a rounding tie.

use super::broadcast::{Walk, broadcast_strides};
use super::words::{alloc, at, numel, range, signed};
use mpcflow_sdk::fixed::round_shift_i128;
use mpcflow_sdk::shape::TensorInfo;
use mpcflow_sdk::{DType, Error, FixedPoint, Result, Tensor};

/// Turns an exact `i128` sum of word products into the output word.
fn finisher(a: DType, b: DType, out: DType, fp: FixedPoint) -> impl Fn(i128) -> u64 {
    let shift = if a == DType::Fixed && b == DType::Fixed { fp.frac_bits } else { 0 };
    let mask = if out == DType::Bit { 1 } else { u64::MAX };
    move |s| (round_shift_i128(s, shift) as u64) & mask
}

fn product(a: DType, x: u64, b: DType, y: u64) -> i128 {
    i128::from(signed(a, x)) * i128::from(signed(b, y))
}

/// `[.., m, k] x [.., k, n]`, batch axes broadcast like NumPy (a rank-2 operand is shared by
/// every batch).
pub fn matmul(a: &Tensor, b: &Tensor, out: &TensorInfo, fp: FixedPoint) -> Result<Vec<u64>> {
    let bad = || Error::internal(format!("matmul of {:?} and {:?} into {:?}", a.shape, b.shape, out.shape));
    let (ra, rb, ro) = (a.shape.len(), b.shape.len(), out.shape.len());
    if ra < 2 || rb < 2 || ro < 2 {
        return Err(bad());
    }
    let (m, k, n) = (a.shape[ra - 2], a.shape[ra - 1], b.shape[rb - 1]);
    if b.shape[rb - 2] != k || out.shape[ro - 2..] != [m, n] {
        return Err(bad());
    }
    let batch = &out.shape[..ro - 2];
    let total = numel(&out.shape)?;
    if total == 0 {
        return Ok(Vec::new());
    }
    // The output is not empty: every batch exists, each operand holds at least one whole matrix
    // (so these sizes fit), and `m, n > 0`.
    let (size_a, size_b) = (numel(&[m, k])?, numel(&[k, n])?);
    let scaled = |s: Vec<isize>, size: usize| s.into_iter().map(|x| x.wrapping_mul(size as isize)).collect();
    let sa = scaled(broadcast_strides(&a.shape[..ra - 2], batch)?, size_a);
    let sb = scaled(broadcast_strides(&b.shape[..rb - 2], batch)?, size_b);
    let mut walk = Walk::new(batch, vec![(0, sa), (0, sb)])?;
    let finish = finisher(a.dtype, b.dtype, out.dtype, fp);
    let mut v = alloc(total)?;
    let mut row = vec![0i128; n];
    for _ in 0..numel(batch)? {
        let am = range(&a.data, walk.pos(0)?, size_a)?;
        let bm = range(&b.data, walk.pos(1)?, size_b)?;
        for i in 0..m {
            row.fill(0);
            if k > 0 {
                let arow = range(am, i * k, k)?;
                for (&x, brow) in arow.iter().zip(bm.chunks_exact(n)) {
                    for (acc, &y) in row.iter_mut().zip(brow) {
                        *acc = acc.wrapping_add(product(a.dtype, x, b.dtype, y));
                    }
                }
            }
            v.extend(row.iter().map(|&s| finish(s)));
        }
        walk.advance();
    }
    Ok(v)
}

fn dims4(shape: &[usize]) -> Result<[usize; 4]> {
    shape.try_into().map_err(|_| Error::internal(format!("expected a rank-4 shape, got {shape:?}")))
}

/// 2-D convolution (cross-correlation, as in every ML framework): input `[N, C, H, W]`, weight
/// `[O, C, kh, kw]`, output `[N, O, oh, ow]`; `padding` zeros on each side, `stride` steps.
pub fn conv2d(
    x: &Tensor,
    w: &Tensor,
    stride: [usize; 2],
    padding: [usize; 2],
    out: &TensorInfo,
    fp: FixedPoint,
) -> Result<Vec<u64>> {
    let [nb, c, h, wd] = dims4(&x.shape)?;
    let [o, c2, kh, kw] = dims4(&w.shape)?;
    let [nb2, o2, oh, ow] = dims4(&out.shape)?;
    if c != c2 || nb != nb2 || o != o2 {
        return Err(Error::internal(format!("conv2d of {:?} and {:?} into {:?}", x.shape, w.shape, out.shape)));
    }
    let finish = finisher(x.dtype, w.dtype, out.dtype, fp);
    let [sh, sw] = stride;
    let [ph, pw] = padding;
    let mut v = alloc(numel(&out.shape)?)?;
    for n in 0..nb {
        for oc in 0..o {
            for oy in 0..oh {
                for ox in 0..ow {
                    let mut acc = 0i128;
                    for ic in 0..c {
                        for ky in 0..kh {
                            // Row in the padded input; skip the padding rows.
                            let Some(iy) = (oy * sh + ky).checked_sub(ph).filter(|&iy| iy < h) else {
                                continue;
                            };
                            for kx in 0..kw {
                                let Some(ix) = (ox * sw + kx).checked_sub(pw).filter(|&ix| ix < wd) else {
                                    continue;
                                };
                                let xv = at(&x.data, ((n * c + ic) * h + iy) * wd + ix)?;
                                let wv = at(&w.data, ((oc * c + ic) * kh + ky) * kw + kx)?;
                                acc = acc.wrapping_add(product(x.dtype, xv, w.dtype, wv));
                            }
                        }
                    }
                    v.push(finish(acc));
                }
            }
        }
    }
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::super::testutil::*;
    use mpcflow_sdk::{DType, Op, Tensor};

    #[test]
    fn matmul_2d() {
        let a = fx(&[2, 3], &[1.0, 2.0, 3.0, -1.0, 0.5, 0.25]);
        let b = fx(&[3, 2], &[1.0, 0.0, 0.0, 1.0, 2.0, -2.0]);
        let r = run(&Op::Matmul, &[&a, &b]);
        assert_eq!((r.shape.clone(), reals(&r)), (vec![2, 2], vec![7.0, -4.0, -0.5, 0.0]));
    }

    #[test]
    fn matmul_rounds_once_per_element() {
        // Each product is 2^-17 (half an ulp); two of them sum to exactly one ulp. Rounding
        // each product first would give 2 ulp.
        let e = Tensor::from_words(DType::Fixed, vec![1, 2], vec![1, 1]).unwrap();
        let h = fx(&[2, 1], &[0.5, 0.5]);
        assert_eq!(run(&Op::Matmul, &[&e, &h]).data, vec![1]);
        assert_eq!(
            run(&Op::Mul, &[&fx(&[], &[0.5]), &Tensor::from_words(DType::Fixed, vec![], vec![1]).unwrap()]).data,
            vec![1]
        );
    }

    #[test]
    fn batched_matmul_broadcasts_batch_axes() {
        // a: [2, 1, 2, 2], b: [3, 2, 2] -> [2, 3, 2, 2].
        let a = int(&[2, 1, 2, 2], &[1, 0, 0, 1, 2, 0, 0, 2]);
        let b = int(&[3, 2, 2], &[1, 2, 3, 4, 0, 1, 1, 0, -1, 0, 0, -1]);
        let r = run(&Op::Matmul, &[&a, &b]);
        assert_eq!(r.shape, vec![2, 3, 2, 2]);
        assert_eq!(ints(&r), vec![1, 2, 3, 4, 0, 1, 1, 0, -1, 0, 0, -1, 2, 4, 6, 8, 0, 2, 2, 0, -2, 0, 0, -2]);
        // A rank-2 left operand is shared by every batch.
        let l = int(&[1, 2], &[1, 1]);
        let r = run(&Op::Matmul, &[&l, &b]);
        assert_eq!((r.shape.clone(), ints(&r)), (vec![3, 1, 2], vec![4, 6, 1, 1, -1, -1]));
    }

    #[test]
    fn matmul_mixed_dtypes_and_wrapping() {
        let r = run(&Op::Matmul, &[&int(&[1, 2], &[i64::MAX, 1]), &int(&[2, 1], &[2, 3])]);
        assert_eq!(ints(&r), vec![i64::MAX.wrapping_mul(2).wrapping_add(3)]);
        let r = run(&Op::Matmul, &[&fx(&[1, 2], &[1.5, -0.25]), &int(&[2, 1], &[2, 4])]);
        assert_eq!((r.dtype, reals(&r)), (DType::Fixed, vec![2.0]));
        let r = run(&Op::Matmul, &[&bit(&[1, 3], &[1, 1, 1]), &bit(&[3, 2], &[1, 1, 1, 0, 1, 1])]);
        assert_eq!((r.dtype, r.data), (DType::Bit, vec![1, 0]), "sum modulo 2");
        let r = run(&Op::Matmul, &[&bit(&[1, 3], &[1, 1, 1]), &int(&[3, 1], &[5, 6, 7])]);
        assert_eq!((r.dtype, ints(&r)), (DType::Int, vec![18]));
        // Largest magnitudes: (-2^63)·(-2^63) four times wraps the i128 accumulator, still exact mod 2^64.
        let m = fx(&[1, 4], &[0.0; 4]);
        let m = Tensor { data: vec![i64::MIN as u64; 4], ..m };
        let t = Tensor { shape: vec![4, 1], ..m.clone() };
        assert_eq!(run(&Op::Matmul, &[&m, &t]).data, vec![0]);
        // Inner size 0: empty sums.
        let r = run(&Op::Matmul, &[&int(&[2, 0], &[]), &int(&[0, 3], &[])]);
        assert_eq!(ints(&r), vec![0; 6]);
    }

    #[test]
    fn conv2d_padding_and_stride_2() {
        // Channel 0 holds 1..9, channel 1 all ones; padded by 1, stride 2, 2x2 kernels.
        let x = int(&[1, 2, 3, 3], &[1, 2, 3, 4, 5, 6, 7, 8, 9, 1, 1, 1, 1, 1, 1, 1, 1, 1]);
        // Output channel 0: [[1, 2], [3, 4]] on channel 0 and all ones on channel 1.
        // Output channel 1: -1 at the window's top-left on channel 0.
        let w = int(&[2, 2, 2, 2], &[1, 2, 3, 4, 1, 1, 1, 1, -1, 0, 0, 0, 0, 0, 0, 0]);
        let op = Op::Conv2d { stride: [2, 2], padding: [1, 1] };
        let r = run(&op, &[&x, &w]);
        assert_eq!(r.shape, vec![1, 2, 2, 2]);
        assert_eq!(ints(&r), vec![5, 20, 38, 81, 0, 0, 0, -5]);
        // Fixed × fixed rounds the exact sum once.
        let xf = fx(&[1, 1, 2, 2], &[0.5, 1.5, -2.0, 0.25]);
        let wf = fx(&[1, 1, 1, 1], &[0.5]);
        let r = run(&Op::Conv2d { stride: [1, 1], padding: [0, 0] }, &[&xf, &wf]);
        assert_eq!(reals(&r), vec![0.25, 0.75, -1.0, 0.125]);
    }

    #[test]
    fn conv2d_asymmetric_stride_and_batch() {
        let x = int(&[2, 1, 2, 3], &[1, 2, 3, 4, 5, 6, 10, 20, 30, 40, 50, 60]);
        let w = int(&[1, 1, 1, 2], &[1, -1]);
        let r = run(&Op::Conv2d { stride: [1, 2], padding: [0, 1] }, &[&x, &w]);
        // Padded rows: [0 1 2 3 0]; windows at columns 0 and 2: (0-1), (2-3).
        assert_eq!((r.shape.clone(), ints(&r)), (vec![2, 1, 2, 2], vec![-1, -1, -4, -1, -10, -10, -40, -10]));
    }

    mod props {
        use super::super::super::testutil::*;
        use mpcflow_sdk::Op;
        use proptest::prelude::*;

        fn operands() -> impl Strategy<Value = (usize, usize, usize, Vec<f64>, Vec<f64>)> {
            (1usize..4, 0usize..5, 1usize..4).prop_flat_map(|(m, k, n)| {
                (
                    Just(m),
                    Just(k),
                    Just(n),
                    prop::collection::vec(-100.0f64..100.0, m * k),
                    prop::collection::vec(-100.0f64..100.0, k * n),
                )
            })
        }

        proptest! {
            #[test]
            fn matmul_matches_f64_within_half_ulp((m, k, n, av, bv) in operands()) {
                let (a, b) = (fx(&[m, k], &av), fx(&[k, n], &bv));
                let (da, db) = (reals(&a), reals(&b));
                let got = reals(&run(&Op::Matmul, &[&a, &b]));
                for i in 0..m {
                    for j in 0..n {
                        let exact: f64 = (0..k).map(|p| da[i * k + p] * db[p * n + j]).sum();
                        prop_assert!((got[i * n + j] - exact).abs() <= ulp() / 2.0 + 1e-9);
                    }
                }
            }
        }
    }
}
