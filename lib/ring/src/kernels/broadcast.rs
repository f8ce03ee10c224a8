//! Walking row-major index spaces: NumPy broadcasting, strided gathers, reduction targets.
//!
//! Why a module of its own: broadcasting, transpose, slicing, batched matmul and reductions are
//! all "visit every index of a shape in row-major order and follow strides into other buffers".
//! One odometer ([`Walk`]) does that in O(1) amortised per element, with no per-element index
//! decomposition and no materialised index tables. Positions use wrapping arithmetic so that no
//! stride (huge, negative, or belonging to an empty shape) can panic, and every read is
//! bounds-checked, so a wrong stride is an error, never undefined behaviour or a crash.

use super::words::{alloc, at, numel, word};
use mpcflow_sdk::{Error, Result, Tensor};
use std::borrow::Cow;

/// Row-major strides of `shape`, in elements. Wrapping: with a zero-sized axis the strides of
/// the other axes may not fit, but nothing is then read.
pub fn row_major_strides(shape: &[usize]) -> Vec<isize> {
    let mut strides = vec![0isize; shape.len()];
    let mut acc: isize = 1;
    for (s, &d) in strides.iter_mut().zip(shape).rev() {
        *s = acc;
        acc = acc.wrapping_mul(d as isize);
    }
    strides
}

/// Strides that read a tensor of `shape` at every index of `out` under NumPy broadcasting:
/// `shape` is aligned to the right, and missing or size-1 axes get stride 0.
pub fn broadcast_strides(shape: &[usize], out: &[usize]) -> Result<Vec<isize>> {
    let bad = || Error::internal(format!("shape {shape:?} does not broadcast to {out:?}"));
    let lead = out.len().checked_sub(shape.len()).ok_or_else(bad)?;
    let own = row_major_strides(shape);
    let mut strides = vec![0isize; out.len()];
    for (i, (&d, &s)) in shape.iter().zip(&own).enumerate() {
        let o = out[lead + i];
        if d == o {
            strides[lead + i] = if d == 1 { 0 } else { s };
        } else if d != 1 {
            return Err(bad());
        }
    }
    Ok(strides)
}

/// An odometer over a row-major index space, carrying one position per stream (input buffer).
pub struct Walk {
    shape: Vec<usize>,
    strides: Vec<Vec<isize>>,
    idx: Vec<usize>,
    pos: Vec<isize>,
}

impl Walk {
    /// A walk over `shape`; each stream is `(base position, stride per axis)`.
    pub fn new(shape: &[usize], streams: Vec<(isize, Vec<isize>)>) -> Result<Walk> {
        if streams.iter().any(|(_, s)| s.len() != shape.len()) {
            return Err(Error::internal("walk strides do not match the shape's rank"));
        }
        let (pos, strides) = streams.into_iter().unzip();
        Ok(Walk { shape: shape.to_vec(), strides, idx: vec![0; shape.len()], pos })
    }

    /// Current position of stream `s`, or an internal error if it left the buffer's range.
    pub fn pos(&self, s: usize) -> Result<usize> {
        self.pos
            .get(s)
            .and_then(|&p| usize::try_from(p).ok())
            .ok_or_else(|| Error::internal("walk position out of range"))
    }

    /// Moves to the next index in row-major order (wraps to the start after the last).
    pub fn advance(&mut self) {
        let mut d = self.shape.len();
        while d > 0 {
            d -= 1;
            self.idx[d] += 1;
            for (p, st) in self.pos.iter_mut().zip(&self.strides) {
                *p = p.wrapping_add(st[d]);
            }
            if self.idx[d] < self.shape[d] {
                return;
            }
            for (p, st) in self.pos.iter_mut().zip(&self.strides) {
                *p = p.wrapping_sub(st[d].wrapping_mul(self.shape[d] as isize));
            }
            self.idx[d] = 0;
        }
    }
}

/// Reads `src` at `base + Σ idx[d]·strides[d]` for every index of `shape`, in row-major order.
pub fn gather(src: &[u64], shape: &[usize], base: isize, strides: Vec<isize>) -> Result<Vec<u64>> {
    let n = numel(shape)?;
    let mut out = alloc(n)?;
    let mut walk = Walk::new(shape, vec![(base, strides)])?;
    for _ in 0..n {
        out.push(at(src, walk.pos(0)?)?);
        walk.advance();
    }
    Ok(out)
}

/// The words of a tensor of `shape` broadcast to `out` (borrowed when no broadcast is needed).
pub fn expand<'a>(data: &'a [u64], shape: &[usize], out: &[usize]) -> Result<Cow<'a, [u64]>> {
    if shape == out {
        return Ok(Cow::Borrowed(data));
    }
    Ok(Cow::Owned(gather(data, out, 0, broadcast_strides(shape, out)?)?))
}

/// An operand broadcast to an output shape: its words as they are (same shape), one word for
/// every position (a one-element tensor, the common `x > 140`), or gathered.
enum Operand<'a> {
    Words(Cow<'a, [u64]>),
    One(u64),
}

fn operand<'a>(t: &'a Tensor, out: &[usize]) -> Result<Operand<'a>> {
    match t.data.as_slice() {
        [w] if t.shape != out => Ok(Operand::One(word(t.dtype, *w))),
        _ => Ok(Operand::Words(expand(&t.data, &t.shape, out)?)),
    }
}

/// Calls `f` on the words (read with [`word`]) of `a` and `b` broadcast to `out`, in order.
pub fn each2(a: &Tensor, b: &Tensor, out: &[usize], mut f: impl FnMut(u64, u64)) -> Result<()> {
    let (da, db) = (a.dtype, b.dtype);
    match (operand(a, out)?, operand(b, out)?) {
        (Operand::Words(xa), Operand::Words(xb)) => {
            xa.iter().zip(xb.iter()).for_each(|(&x, &y)| f(word(da, x), word(db, y)));
        }
        (Operand::Words(xa), Operand::One(y)) => xa.iter().for_each(|&x| f(word(da, x), y)),
        (Operand::One(x), Operand::Words(xb)) => xb.iter().for_each(|&y| f(x, word(db, y))),
        (Operand::One(x), Operand::One(y)) => (0..numel(out)?).for_each(|_| f(x, y)),
    }
    Ok(())
}

/// `f` applied to the words (read with [`word`]) of `a` and `b` broadcast to `out`.
pub fn zip2(a: &Tensor, b: &Tensor, out: &[usize], f: impl Fn(u64, u64) -> u64) -> Result<Vec<u64>> {
    let mut v = alloc(numel(out)?)?;
    each2(a, b, out, |x, y| v.push(f(x, y)))?;
    Ok(v)
}

/// `f` applied to the words of `a`, `b` and `c` broadcast to `out`.
pub fn zip3(a: &Tensor, b: &Tensor, c: &Tensor, out: &[usize], f: impl Fn(u64, u64, u64) -> u64) -> Result<Vec<u64>> {
    let xa = expand(&a.data, &a.shape, out)?;
    let (xb, xc) = (expand(&b.data, &b.shape, out)?, expand(&c.data, &c.shape, out)?);
    let mut v = alloc(numel(out)?)?;
    let words = xa.iter().zip(xb.iter()).zip(xc.iter());
    v.extend(words.map(|((&x, &y), &z)| f(word(a.dtype, x), word(b.dtype, y), word(c.dtype, z))));
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strides() {
        assert_eq!(row_major_strides(&[2, 3, 4]), vec![12, 4, 1]);
        assert_eq!(broadcast_strides(&[3, 1], &[2, 3, 4]).unwrap(), vec![0, 1, 0]);
        assert_eq!(broadcast_strides(&[], &[2]).unwrap(), vec![0]);
        assert!(broadcast_strides(&[3], &[2]).is_err());
        assert!(broadcast_strides(&[1, 1], &[2]).is_err());
    }

    #[test]
    fn expand_broadcasts_like_numpy() {
        // [[1], [2], [3]] broadcast to [2, 3, 2].
        let e = expand(&[1, 2, 3], &[3, 1], &[2, 3, 2]).unwrap();
        assert_eq!(&*e, &[1, 1, 2, 2, 3, 3, 1, 1, 2, 2, 3, 3]);
        assert!(matches!(expand(&[1, 2], &[2], &[2]).unwrap(), Cow::Borrowed(_)));
        assert_eq!(&*expand(&[7], &[], &[3]).unwrap(), &[7, 7, 7]);
    }

    #[test]
    fn gather_follows_negative_strides_and_checks_bounds() {
        // Reverse of [0, 1, 2, 3, 4] with step -2: 4, 2, 0.
        assert_eq!(gather(&[0, 1, 2, 3, 4], &[3], 4, vec![-2]).unwrap(), vec![4, 2, 0]);
        // Transpose of a 2x3 matrix.
        assert_eq!(gather(&[1, 2, 3, 4, 5, 6], &[3, 2], 0, vec![1, 3]).unwrap(), vec![1, 4, 2, 5, 3, 6]);
        assert!(gather(&[1, 2], &[3], 0, vec![1]).is_err());
        assert!(gather(&[1, 2], &[1], -1, vec![1]).is_err());
        assert_eq!(gather(&[], &[0, 5], 0, vec![isize::MAX, isize::MIN]).unwrap(), Vec::<u64>::new());
    }
}
