//! The `operator` plugin kind: a custom op, expanded by the planner into ops of the op set.
//!
//! A pipeline node names it like any op (`{ op: clip, inputs: [x], lo: 0.0, hi: 1.0 }`). The
//! planner asks the operator to infer its output and to lower itself into a [`Lowering`],
//! which every protocol then evaluates with the ops it already has.
//!
//! ```
//! use mpcflow_sdk::operator::*;
//! use mpcflow_sdk::op::{Attrs, Op};
//! use mpcflow_sdk::protocol::{LRef, Lowering, LoweredNode};
//! use mpcflow_sdk::shape::TensorInfo;
//! use mpcflow_sdk::Result;
//! /// `square(x) = x * x`.
//! struct Square;
//! impl Operator for Square {
//!     fn name(&self) -> &str { "square" }
//!     fn lower(&self, _attrs: &Attrs, _inputs: &[TensorInfo]) -> Result<Lowering> {
//!         Ok(Lowering { nodes: vec![LoweredNode { op: Op::Mul, inputs: vec![LRef::Input(0), LRef::Input(0)] }] })
//!     }
//! }
//! ```

use crate::Result;
use crate::op::Attrs;
use crate::protocol::Lowering;
use crate::shape::TensorInfo;

/// An operator plugin.
pub trait Operator: Send + Sync {
    /// Name used as `op:` in pipeline files.
    fn name(&self) -> &str;
    /// Rewrites the op, applied to inputs with these public facts, into op-set nodes.
    /// Bad attributes return [`crate::Error::Invalid`] with a message naming them.
    fn lower(&self, attrs: &Attrs, inputs: &[TensorInfo]) -> Result<Lowering>;
}
