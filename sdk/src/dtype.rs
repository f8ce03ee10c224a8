//! Element types of tensors. All are stored as `u64` words of the ring Z(2^64).

use serde::{Deserialize, Serialize};

/// The element type of a tensor.
///
/// Every dtype is stored in the ring Z(2^64) as a wrapping `u64`:
/// - `Fixed`: a real number in two's-complement fixed point with the graph's `frac_bits`
///   fractional bits (see [`crate::fixed`]).
/// - `Int`: a 64-bit two's-complement integer.
/// - `Bit`: 0 or 1 (comparison results, masks for `select`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "lowercase")]
pub enum DType {
    /// Fixed-point real number.
    Fixed,
    /// 64-bit signed integer.
    Int,
    /// A single bit, 0 or 1.
    Bit,
}

impl DType {
    /// The name used in pipeline files.
    pub fn name(self) -> &'static str {
        match self {
            DType::Fixed => "fixed",
            DType::Int => "int",
            DType::Bit => "bit",
        }
    }

    /// Parses a pipeline-file name.
    pub fn parse(s: &str) -> Option<DType> {
        match s {
            "fixed" => Some(DType::Fixed),
            "int" => Some(DType::Int),
            "bit" => Some(DType::Bit),
            _ => None,
        }
    }
}

impl std::fmt::Display for DType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}
