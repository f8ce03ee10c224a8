//! `mpcflow-protocol-fss2pc`: two-party secure computation from function secret sharing.
//!
//! The `fss2pc` protocol: two parties plus a trusted dealer. Every secret tensor is a **masked
//! wire** (a public `x + r` and additive shares of the mask `r`, which the dealer knows), so
//! linear ops are local and every non-linear gate is a few rounds of openings, with the dealer's
//! DCF keys turning comparisons with the secret mask into shares ([`gates`] has the table of
//! gates, rounds and bytes, and the forms chosen per node from the plan's network profile;
//! [`lowering`] the ops built from them).
//!
//! - [`fss`] (the `mpcflow-fss` library crate): the sans-I/O cryptographic core: a fixed-key
//!   AES-128 tree PRG, the Boyle–Gilboa–Ishai DPF and the Boyle et al. (Eurocrypt 2021) DCF over
//!   `Z(2^64)`, the half-tree one-bit DCF of the two-round comparisons, the vector-payload DPF of
//!   the table lookups (full-domain evaluation folded into rotated dot products; where a round
//!   is cheap, XOR shares of a one-hot vector instead), with batched
//!   evaluation and byte-exact key serialisation.
//! - [`gates`], [`dealer`], [`material`], [`wire`]: the protocol on top of it.
//! - [`accel`]: the session's kernel plugin (a GPU) for DCF evaluation and ring products, with
//!   the libraries' CPU code as the fallback (the `mpcflow-kernel-cpu` plugin wraps the same
//!   code as the `cpu` kernel).
//!
//! Accuracy against the plaintext `ref` protocol (`f` = fractional bits, 1 ulp = 2^-f):
//! - exact: linear ops, comparisons and ReLU (differences below `2^(compare_bits−1)` words;
//!   `compare_bits` defaults to 64; a graph that declares fewer, or inputs whose declared ranges
//!   bound the difference, get shallower keys), max/min, argmax, maxpool, onehot (integer
//!   indices in `[0, depth)`, see [`gates::onehot`]), integer products;
//! - within 1 ulp: fixed-point products, matmul, conv2d, right shifts and `scale` (exact
//!   DCF-based truncation rounding half up, where `ref` rounds half away from zero), for
//!   `|x·y| < 2^(62−2f)` before truncation (a right shift by `t`: `|x| < 2^62 − 2^(t−1)`), one bit less than
//!   the ring, which makes the truncation one `f`-bit DCF instead of two (see
//!   [`gates::trunc`]); comparisons need the same range at the default `compare_bits`;
//! - within `1 + |mean|·2^-8` ulp: `mean` and `avgpool`, for `|mean| < 2^(62−2f−7)`, any count
//!   (see [`lowering`]);
//! - within `E + 2` ulp: exp, sigmoid, tanh, gelu (quadratic pieces on 256-point tables; `E` is
//!   2.0·10^-6 for sigmoid, 3.9·10^-6 for tanh, 1.6·10^-6 for gelu and 1.8·10^-5·|y| for exp,
//!   about one ulp at `f = 16`, plus `max|f'|·2^(s−f)` where large `f` drops `s` remainder bits),
//!   with exp held at `exp(8)` above 8 (see [`gates::lut`]); they need `5 ≤ f ≤ 24`, which the
//!   planner checks, and `|x| < 2^62` as the other gates do;
//! - within `2^-20·|y| + 1` ulp (at `f = 16`; `(2^-21 + 2^-(Q−2))·|y| + 1` in general): reciprocal,
//!   rsqrt, sqrt for `|x| < 2^(62−f)`, with `ref`'s saturated values at 0 and below exactly
//!   (see [`gates::root`]; reciprocal needs `f ≤ 22`, rsqrt and sqrt `f ≤ 24`);
//! - div, softmax, layernorm: lowered onto these (bounds in [`lowering`]).
//!
//! The gates, their dealing and the lowering live in the `mpcflow-fss-gates` library crate,
//! which `rep3` shares (one of its computing parties deals per node what fss2pc's dealer deals
//! per session); they are re-exported here under their old paths.

pub use mpcflow_fss_gates::{accel, dealer, errors, fss, gates, lowering, material, pool, ring, wire};
pub mod protocol;

pub use protocol::Fss2pc;
