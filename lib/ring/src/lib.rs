//! `mpcflow-ring`: arithmetic in the ring Z(2^64) that several plugins share.
//!
//! A library, not a plugin: it implements no plugin trait.
//! - [`kernels`]: the plaintext semantics of every op of the op set (exact, in `i128` or `f64`,
//!   rounded once), which the `ref` protocol runs and every secure protocol is tested against,
//!   plus [`kernels::check_contracts`], the ranges that secure protocols rely on.
//! - [`linalg`]: fast wrapping matrix products and convolutions (blocked, AVX-512 or AVX2 where
//!   the CPU has it, Strassen for large squares, threads), bit for bit equal to the kernels in ring mode.
//! - [`ring`]: an op applied to ring words ("ring mode"), the fast paths first.

pub mod kernels;
pub mod linalg;
pub mod ring;
