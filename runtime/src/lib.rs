//! # mpcflow-runtime: the core of mpcflow
//!
//! The path of a computation:
//! ```text
//! pipeline.yaml ─[pipeline]→ GraphSpec ─[plan]→ Plan (shapes, lowering, costs, fingerprint)
//!                                                 │
//!                 dealer (offline) ─material stream→ parties (online) ─→ revealed outputs
//! ```
//! - [`pipeline`] reads YAML pipeline files into a [`mpcflow_sdk::graph::GraphSpec`], keeping
//!   the line and column of everything so that every later error can point at the file.
//! - [`plan`] validates the graph, infers shapes, lets the protocol lower composite ops, costs
//!   every node and fingerprints the result.
//! - [`schedule`] runs a plan: the dealer streams material in plan order through a bounded
//!   channel while each party runs every node whose inputs and material are ready, with all
//!   nodes' messages to a peer sharing one channel.
//! - [`remote`] runs one party or the dealer in its own process: a handshake agrees on
//!   versions, pipeline, input shapes and plan before the same scheduler runs.
//! - [`owners`] lets data owners who do not compute share their inputs with the parties and
//!   receive their outputs, by rewriting the plan and splitting values around the run.
//! - [`session`] is the embedding API: a host program builds a session from YAML or a graph
//!   built in code, passes Rust values and awaits outputs.
//!
//! - [`plugin_spec`] says which third-party plugins a pipeline or command line names; the
//!   plugin host crate loads them into the registry, and an input's `transform:` runs at its
//!   owner in [`session`] before the value is shared.
//!
//! The runtime depends on the traits of `mpcflow-sdk` and a [`registry::Registry`], never on a
//! concrete plugin; the `mpcflow` binary registers the built-ins.

pub mod error;
pub mod inputs;
pub mod kernel;
pub mod material_file;
pub mod owners;
pub mod pipeline;
pub mod plan;
pub mod plugin_spec;
pub mod registry;
pub mod remote;
pub mod report;
pub mod schedule;
pub mod session;

pub use error::{Error, Problem, Site};
pub use inputs::InputValue;
pub use plan::Plan;
pub use registry::Registry;
pub use report::RunReport;
pub use session::{RunOutput, Session, SessionConfig};
