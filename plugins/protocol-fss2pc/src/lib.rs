//! `mpcflow-protocol-fss2pc`: two-party secure computation from function secret sharing.
//!
//! The `fss2pc` protocol: two parties plus a trusted dealer. Every secret tensor is a **masked
//! wire** (a public `x + r` and additive shares of the mask `r`, which the dealer knows), so
//! linear ops are local and every non-linear gate is one round of openings, with the dealer's
//! DCF keys turning comparisons with the secret mask into shares ([`gates`] has the table of
//! gates, rounds and bytes; [`lowering`] the ops built from them).
//!
//! - [`fss`]: the sans-I/O cryptographic core: a fixed-key AES-128 tree PRG, the
//!   Boyle–Gilboa–Ishai DPF and the Boyle et al. (Eurocrypt 2021) DCF over `Z(2^64)`, with
//!   batched evaluation and byte-exact key serialisation.
//! - [`gates`], [`dealer`], [`material`], [`wire`]: the protocol on top of it.
//!
//! Accuracy against the plaintext `ref` protocol: linear ops, comparisons, ReLU and integer
//! products are exact; fixed-point products and right shifts use exact truncation (DCF-based,
//! round half up: at most 1 ulp from `ref`, which rounds half away from zero, and only on exact
//! ties); `scale` encodes its factor as `ref` does and is within 1 ulp of it; `mean` is within
//! `1 + |sum|·2^-15` ulp (see [`lowering::MEAN_EXTRA_BITS`]). Comparisons are exact for operands
//! within ±2^62; products must stay below 2^63 before truncation (`|x·y| < 2^(63−2f)`, as in
//! every 64-bit fixed-point protocol).

pub mod dealer;
pub mod fss;
pub mod gates;
pub mod linalg;
pub mod lowering;
pub mod material;
pub mod protocol;
pub mod ring;
pub mod wire;

pub use protocol::Fss2pc;
