//! # mpcflow-sdk: the interface every mpcflow plugin is written against
//!
//! mpcflow is a dataflow runtime for secure multi-party computation. The runtime knows only the
//! traits in this crate and a registry of named implementations; every built-in protocol,
//! transport, kernel and importer implements exactly the traits a third party implements.
//!
//! The key design decision: **protocols are sans-I/O state machines.** A protocol never owns a
//! socket or an async runtime. For each plan node it returns a [`protocol::NodeEval`], and the
//! scheduler drives it: every [`protocol::Step::Exchange`] is one online round whose messages the
//! scheduler sends (tagged by node, sharing one channel per pair of parties with every other node
//! in flight) and whose replies it hands back. Rounds and bytes are therefore counted by the
//! runtime, not self-reported, which is what lets tests assert that the cost model is exact.
//!
//! What lives here:
//! - [`tensor`], [`dtype`], [`fixed`]: plaintext tensors in the ring Z(2^64) and the one
//!   definition of fixed-point semantics.
//! - [`party`]: party ids and endpoints.
//! - [`op`], [`shape`]: the op set, its attributes and its shape rules.
//! - [`graph`]: a graph built in code (what pipeline files and importers produce).
//! - [`protocol`], [`transport`], [`kernel`], [`importer`], [`operator`]: one trait per plugin kind.
//! - [`plugin`]: what third-party plugins are made of: the native interface (abi_stable, feature
//!   `abi`) and the WASM interface (feature `guest` for the plugin side).
//! - [`error`]: the boundary error type.

pub mod config;
pub mod dtype;
pub mod error;
pub mod fixed;
pub mod graph;
pub mod importer;
pub mod kernel;
pub mod network;
pub mod op;
pub mod operator;
pub mod party;
pub mod plugin;
pub mod pool;
pub mod protocol;
pub mod shape;
pub mod tensor;
pub mod transport;

pub use dtype::DType;
pub use error::{Error, Result};
pub use fixed::FixedPoint;
pub use network::Network;
pub use op::Op;
pub use party::{DEALER, Endpoint, PartyId};
pub use tensor::Tensor;

/// Version of this interface. A plugin built against another version is refused at load.
pub const SDK_VERSION: &str = env!("CARGO_PKG_VERSION");
