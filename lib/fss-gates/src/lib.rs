//! `mpcflow-fss-gates`: secure gates on masked wires from function secret sharing.
//!
//! A **masked wire** is a public `x + r` held by two evaluating parties, with additive shares of
//! the mask `r`, which a third party, the one that deals, knows. Linear ops are local; every
//! non-linear gate is a few rounds of openings, with the dealt FSS keys (DCF, half-tree DReLU,
//! table DPF) turning comparisons with the secret mask into shares. [`gates`] has the table of
//! gates, rounds and bytes; [`lowering`] the composite ops built from them.
//!
//! Two protocols use these gates:
//! - `fss2pc`: two parties and a trusted dealer that deals every node's material ahead of the
//!   online phase ([`dealer::FssDealer`] walks the plan).
//! - `rep3`: three computing parties with replicated shares; for a non-linear node one of them
//!   deals the material to the other two as the node runs (the honest-majority trust model
//!   allows it), and the result goes back to replicated shares.
//!
//! - [`fss`] (the `mpcflow-fss` library crate): the sans-I/O cryptographic core.
//! - [`gates`], [`dealer`], [`material`], [`wire`]: the gates on top of it.
//! - [`accel`]: the session's kernel plugin (a GPU) for DCF evaluation and ring products, with
//!   the libraries' CPU code as the fallback.

pub mod accel;
pub mod dealer;
pub mod errors;
/// The FSS core, re-exported from the `mpcflow-fss` library crate.
pub use mpcflow_fss as fss;
pub mod gates;
pub mod lowering;
pub mod material;
/// Buffer recycling, shared with the runtime and transports through the sdk.
pub use mpcflow_sdk::pool;
pub mod ring;
pub mod wire;
