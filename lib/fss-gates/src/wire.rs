//! Masked wires: how fss2pc holds a tensor.
//!
//! Every secret tensor `x` travels as a **public masked value** `x̂ = x + r` (both parties hold
//! it) and **additive shares of the mask** `r = r₀ + r₁` (party `i` holds `rᵢ`); the dealer knows
//! `r`. Public tensors (constants, counts) are masked values with mask 0. In a
//! [`mpcflow_sdk::protocol::Wire`], plane 0 is `x̂` and plane 1 this party's mask share.

use mpcflow_sdk::protocol::Wire;
use mpcflow_sdk::{DType, Error, Result, Tensor};

/// A party's view of one tensor.
#[derive(Clone, PartialEq, Eq)]
pub struct Masked {
    /// Shape.
    pub shape: Vec<usize>,
    /// Element type.
    pub dtype: DType,
    /// `x + r`, public.
    pub value: Vec<u64>,
    /// This party's share of `r`.
    pub share: Vec<u64>,
}

/// Shows shape and dtype only: a mask share must never reach a log.
impl std::fmt::Debug for Masked {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Masked").field("shape", &self.shape).field("dtype", &self.dtype).finish_non_exhaustive()
    }
}

impl Masked {
    /// A public value: mask 0.
    pub fn public(t: Tensor) -> Masked {
        let n = t.data.len();
        Masked { shape: t.shape, dtype: t.dtype, value: t.data, share: vec![0; n] }
    }

    /// Into a wire.
    pub fn into_wire(self) -> Wire {
        Wire { shape: self.shape, dtype: self.dtype, planes: vec![self.value, self.share] }
    }
}

/// A party's view of one input of a node, borrowed from its wire.
///
/// Gates read their inputs through this rather than an owned [`Masked`]: a copy of every input
/// plane per node cost, for a large gate split into chunks, the whole input once per chunk.
#[derive(Clone, Copy)]
pub struct MaskedRef<'a> {
    /// Shape.
    pub shape: &'a [usize],
    /// Element type.
    pub dtype: DType,
    /// `x + r`, public.
    pub value: &'a [u64],
    /// This party's share of `r`.
    pub share: &'a [u64],
}

/// Shows shape and dtype only, as [`Masked`] does.
impl std::fmt::Debug for MaskedRef<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MaskedRef").field("shape", &self.shape).field("dtype", &self.dtype).finish_non_exhaustive()
    }
}

impl<'a> MaskedRef<'a> {
    /// Reads a wire, checking it has the two planes of the right length.
    pub fn from_wire(w: &'a Wire) -> Result<MaskedRef<'a>> {
        let n = mpcflow_sdk::tensor::numel(&w.shape);
        match w.planes.as_slice() {
            [v, s] if v.len() == n && s.len() == n => {
                Ok(MaskedRef { shape: &w.shape, dtype: w.dtype, value: v, share: s })
            }
            _ => Err(Error::internal("fss2pc wire without a masked value and a mask share")),
        }
    }

    /// An owned copy.
    pub fn to_masked(self) -> Masked {
        Masked { shape: self.shape.to_vec(), dtype: self.dtype, value: self.value.to_vec(), share: self.share.to_vec() }
    }
}

/// Little-endian bytes of ring words.
pub fn to_bytes(words: &[u64]) -> Vec<u8> {
    // Into a buffer of the final length, word by word, which the compiler turns into a plain
    // copy (an `extend` per word checked the capacity each time: 2.5% of a million ReLUs'
    // online CPU).
    let mut v = vec![0u8; words.len() * 8];
    for (dst, w) in v.chunks_exact_mut(8).zip(words) {
        dst.copy_from_slice(&w.to_le_bytes());
    }
    v
}

/// Ring words from little-endian bytes; the length must be exactly `n` words.
pub fn from_bytes(bytes: &[u8], n: usize, what: &str) -> Result<Vec<u64>> {
    if bytes.len() != n * 8 {
        return Err(Error::protocol(format!("{what}: expected {} bytes ({n} elements), got {}", n * 8, bytes.len())));
    }
    Ok(bytes.chunks_exact(8).map(|c| u64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]])).collect())
}

/// `a + b` elementwise, wrapping.
pub fn add(a: &[u64], b: &[u64]) -> Vec<u64> {
    a.iter().zip(b).map(|(x, y)| x.wrapping_add(*y)).collect()
}

/// `a - b` elementwise, wrapping.
pub fn sub(a: &[u64], b: &[u64]) -> Vec<u64> {
    a.iter().zip(b).map(|(x, y)| x.wrapping_sub(*y)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_go_out_little_endian_and_come_back() {
        let words = [0u64, 1, 0x0102_0304_0506_0708, u64::MAX, 1 << 63];
        let bytes = to_bytes(&words);
        assert_eq!(bytes.len(), 40);
        assert_eq!(&bytes[8..24], &[1, 0, 0, 0, 0, 0, 0, 0, 8, 7, 6, 5, 4, 3, 2, 1]);
        assert_eq!(from_bytes(&bytes, 5, "words").expect("five words"), words);
        assert!(from_bytes(&bytes, 4, "words").is_err(), "a length that is not the count's");
        assert!(to_bytes(&[]).is_empty());
    }
}
