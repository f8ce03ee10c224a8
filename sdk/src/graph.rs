//! A graph built in code: what pipeline files, importers and host programs produce.
//!
//! A [`GraphSpec`] names tensors by string, like a pipeline file does. The runtime validates it
//! and plans it; nothing here is checked until then.
//!
//! ```
//! use mpcflow_sdk::graph::{Dim, GraphSpec};
//! use mpcflow_sdk::{DType, Op};
//! let g = GraphSpec::new("millionaires", ["alice", "bob"])
//!     .input("a", "alice", DType::Int, vec![])
//!     .input("b", "bob", DType::Int, vec![])
//!     .node("a_richer", Op::Gt, ["a", "b"])
//!     .output("a_richer", ["alice", "bob"]);
//! assert_eq!(g.nodes.len(), 1);
//! # let _ = Dim::Fixed(1);
//! ```

use crate::{DType, FixedPoint, Op};
use serde::{Deserialize, Serialize};

/// One dimension of a declared input shape.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Dim {
    /// A known size.
    Fixed(usize),
    /// A name fixed by the owner's data (`shape: [n_rows]`).
    Sym(String),
}

impl From<usize> for Dim {
    fn from(n: usize) -> Dim {
        Dim::Fixed(n)
    }
}

impl From<&str> for Dim {
    fn from(s: &str) -> Dim {
        Dim::Sym(s.to_string())
    }
}

/// A private input brought by one party.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct InputSpec {
    /// Tensor name.
    pub name: String,
    /// The party that owns it.
    pub owner: String,
    /// Element type.
    pub dtype: DType,
    /// Shape; symbolic dims are fixed by the data.
    pub shape: Vec<Dim>,
    /// A plaintext transform the owner applies before sharing (an operator plugin of kind
    /// transform); the dtype and shape above describe its result.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transform: Option<TransformSpec>,
    /// The values the input may take, `[lo, hi]` inclusive, in the dtype's units (`range:` in a
    /// pipeline): a contract every process checks on its own data before sharing it, from which
    /// the planner derives the width of the comparisons it feeds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub range: Option<[f64; 2]>,
}

/// `transform: { op: normalize, mean: 120 }` on an input.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TransformSpec {
    /// The operator plugin's name.
    pub op: String,
    /// Its attributes.
    pub attrs: crate::op::Attrs,
}

/// A public constant.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ConstSpec {
    /// Tensor name.
    pub name: String,
    /// Element type.
    pub dtype: DType,
    /// Shape.
    pub shape: Vec<usize>,
    /// Row-major values as real numbers (encoded with the graph's fixed-point setting).
    pub values: Vec<f64>,
}

/// An operator node.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NodeSpec {
    /// The node's name, which is also the name of its output tensor.
    pub name: String,
    /// The operator.
    pub op: Op,
    /// Names of its input tensors.
    pub inputs: Vec<String>,
    /// The values the node's output may take, `[lo, hi]` inclusive, in its dtype's units
    /// (`range:` in a pipeline, or written by `mpcflow import --calibrate`): a contract the
    /// planner narrows the widths of the comparisons and lookups it feeds by, which `ref`
    /// enforces (a value outside it stops the run, naming the node and the value). Secure
    /// protocols cannot see the values: one outside the range makes their result wrong.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub range: Option<[f64; 2]>,
}

impl NodeSpec {
    /// A node with no declared range.
    pub fn new(name: impl Into<String>, op: Op, inputs: Vec<String>) -> NodeSpec {
        NodeSpec { name: name.into(), op, inputs, range: None }
    }
}

/// A revealed output.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OutputSpec {
    /// Tensor revealed.
    pub name: String,
    /// Parties that learn it.
    pub reveal_to: Vec<String>,
}

/// A whole computation.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GraphSpec {
    /// Name of the computation.
    pub name: String,
    /// Parties, in order (the first is party 0): the computing parties, which run the protocol.
    pub parties: Vec<String>,
    /// Data owners that only bring inputs and receive outputs (`owners:` in a pipeline): an
    /// owner secret-shares each of its inputs to the parties and learns only what is revealed
    /// to it. An input's `owner` and an output's `reveal_to` may name them like parties.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub owners: Vec<String>,
    /// Protocol name (`ref`, `fss2pc`, ...).
    pub protocol: String,
    /// Fixed-point encoding.
    pub fixed_point: FixedPoint,
    /// Private inputs.
    pub inputs: Vec<InputSpec>,
    /// Public constants.
    pub constants: Vec<ConstSpec>,
    /// Operator nodes.
    pub nodes: Vec<NodeSpec>,
    /// Revealed outputs.
    pub outputs: Vec<OutputSpec>,
}

impl GraphSpec {
    /// An empty graph over `parties`, using the `ref` protocol and the default fixed point.
    pub fn new<S: Into<String>>(name: &str, parties: impl IntoIterator<Item = S>) -> Self {
        GraphSpec {
            name: name.into(),
            parties: parties.into_iter().map(Into::into).collect(),
            owners: vec![],
            protocol: "ref".into(),
            fixed_point: FixedPoint::default(),
            inputs: vec![],
            constants: vec![],
            nodes: vec![],
            outputs: vec![],
        }
    }

    /// Sets the protocol.
    pub fn protocol(mut self, name: &str) -> Self {
        self.protocol = name.into();
        self
    }

    /// Declares data owners (see [`GraphSpec::owners`]).
    pub fn owners<S: Into<String>>(mut self, owners: impl IntoIterator<Item = S>) -> Self {
        self.owners = owners.into_iter().map(Into::into).collect();
        self
    }

    /// Adds a private input.
    pub fn input(mut self, name: &str, owner: &str, dtype: DType, shape: Vec<Dim>) -> Self {
        self.inputs.push(InputSpec {
            name: name.into(),
            owner: owner.into(),
            dtype,
            shape,
            transform: None,
            range: None,
        });
        self
    }

    /// Declares the range `[lo, hi]` of node `name`'s output (see [`NodeSpec::range`]).
    pub fn node_range(mut self, name: &str, lo: f64, hi: f64) -> Self {
        if let Some(n) = self.nodes.iter_mut().find(|n| n.name == name) {
            n.range = Some([lo, hi]);
        }
        self
    }

    /// Declares the range `[lo, hi]` of the input `name` (see [`InputSpec::range`]).
    pub fn input_range(mut self, name: &str, lo: f64, hi: f64) -> Self {
        if let Some(i) = self.inputs.iter_mut().find(|i| i.name == name) {
            i.range = Some([lo, hi]);
        }
        self
    }

    /// Adds a public constant.
    pub fn constant(mut self, name: &str, dtype: DType, shape: Vec<usize>, values: Vec<f64>) -> Self {
        self.constants.push(ConstSpec { name: name.into(), dtype, shape, values });
        self
    }

    /// Adds an operator node.
    pub fn node<S: Into<String>>(mut self, name: &str, op: Op, inputs: impl IntoIterator<Item = S>) -> Self {
        self.nodes.push(NodeSpec::new(name, op, inputs.into_iter().map(Into::into).collect()));
        self
    }

    /// Reveals a tensor to some parties.
    pub fn output<S: Into<String>>(mut self, name: &str, reveal_to: impl IntoIterator<Item = S>) -> Self {
        self.outputs.push(OutputSpec { name: name.into(), reveal_to: reveal_to.into_iter().map(Into::into).collect() });
        self
    }
}
