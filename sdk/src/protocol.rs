//! The `protocol` plugin kind: how a node is computed securely.
//!
//! A protocol has two halves and a cost model:
//! - **Dealer side** ([`Protocol::dealer`]): from the plan alone (never from inputs), produce
//!   each party's correlated randomness node by node. The runtime feeds it the plan in order
//!   and streams the result to the parties while they compute.
//! - **Party side** ([`Protocol::begin`]): a sans-I/O state machine ([`NodeEval`]) that turns
//!   the party's input wires and material into its output wire, one [`Step::Exchange`] per
//!   online round. The scheduler moves the bytes; the protocol never touches a socket.
//! - **Cost model** ([`Protocol::cost`]): online rounds, online bytes each party sends, and
//!   dealer bytes each party receives, per node, stated before anything runs. The runtime
//!   measures the same quantities, and tests hold the two equal.
//!
//! Composite ops (softmax, layernorm, a custom operator) may be rewritten into simpler ops with
//! [`Protocol::lower`]; the planner does the rewrite before costing and dealing.
//!
//! A minimal protocol that evaluates everything locally (the runtime supplies the scheduling):
//! ```
//! use mpcflow_sdk::protocol::*;
//! use mpcflow_sdk::{Error, Result};
//! struct Nothing;
//! impl Protocol for Nothing {
//!     fn descriptor(&self) -> ProtocolDescriptor {
//!         ProtocolDescriptor::new("nothing", "computes nothing", PartyCount::any())
//!     }
//!     fn cost(&self, node: &NodeDesc) -> Cost { Cost::zero(node.parties) }
//!     fn begin(&self, node: &NodeDesc, _input: EvalInput) -> Result<Box<dyn NodeEval>> {
//!         Err(Error::Unsupported { what: node.kind.label(), plugin: "nothing".into() })
//!     }
//! }
//! ```

use crate::op::Op;
use crate::shape::TensorInfo;
use crate::{DType, FixedPoint, PartyId, Result, Tensor};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// How many parties a protocol runs with.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartyCount {
    /// Fewest parties.
    pub min: usize,
    /// Most parties (`None`: no limit).
    pub max: Option<usize>,
}

impl PartyCount {
    /// Exactly `n` parties.
    pub fn exactly(n: usize) -> Self {
        PartyCount { min: n, max: Some(n) }
    }

    /// One or more parties.
    pub fn any() -> Self {
        PartyCount { min: 1, max: None }
    }

    /// Whether `n` parties are accepted.
    pub fn accepts(&self, n: usize) -> bool {
        n >= self.min && self.max.is_none_or(|m| n <= m)
    }
}

impl std::fmt::Display for PartyCount {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.max {
            Some(m) if m == self.min => write!(f, "exactly {m}"),
            Some(m) => write!(f, "{} to {m}", self.min),
            None => write!(f, "{} or more", self.min),
        }
    }
}

/// What a protocol is, for the registry, `mpcflow plan` and the handshake.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ProtocolDescriptor {
    /// Name used in pipeline files.
    pub name: String,
    /// Version, compared in the handshake.
    pub version: String,
    /// One line for humans.
    pub description: String,
    /// Parties it runs with.
    pub parties: PartyCount,
    /// Whether it needs a dealer for offline material.
    pub needs_dealer: bool,
    /// False for protocols that reveal everything (`ref`): the runtime warns loudly.
    pub secure: bool,
    /// Ring words a party holds per element of a value (its [`Wire`]'s planes: a masked value
    /// and a mask share are two). `plan`'s memory estimate uses it; older plugins, which do not
    /// say, count as two.
    #[serde(default = "two_words")]
    pub wire_words: u32,
}

fn two_words() -> u32 {
    2
}

impl ProtocolDescriptor {
    /// A secure, dealer-free protocol descriptor with version 0.1.0.
    pub fn new(name: &str, description: &str, parties: PartyCount) -> Self {
        ProtocolDescriptor {
            name: name.into(),
            version: "0.1.0".into(),
            description: description.into(),
            parties,
            needs_dealer: false,
            secure: true,
            wire_words: 2,
        }
    }
}

/// What a plan node does.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum NodeKind {
    /// A private input of `owner`, shared with the others.
    Input {
        /// The party that brings the value.
        owner: PartyId,
    },
    /// A public constant, known to every party.
    Constant {
        /// Its value.
        value: Tensor,
    },
    /// An operator.
    Op(Op),
    /// Reveal the input to `reveal_to`.
    Output {
        /// Parties that learn the value.
        reveal_to: Vec<PartyId>,
    },
}

impl NodeKind {
    /// A short label: the op name, `input`, `constant` or `output`.
    pub fn label(&self) -> String {
        match self {
            NodeKind::Input { .. } => "input".into(),
            NodeKind::Constant { .. } => "constant".into(),
            NodeKind::Op(op) => op.name().into(),
            NodeKind::Output { .. } => "output".into(),
        }
    }
}

/// The public description of one plan node: all a protocol may base its work on.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NodeDesc {
    /// Position in the plan (dealer material travels in this order).
    pub id: u32,
    /// Name (the tensor it produces).
    pub name: String,
    /// What it does.
    pub kind: NodeKind,
    /// Its inputs' public facts.
    pub inputs: Vec<TensorInfo>,
    /// Its output's public facts.
    pub output: TensorInfo,
    /// The graph's fixed-point encoding.
    pub fixed_point: FixedPoint,
    /// Number of parties in the session.
    pub parties: usize,
    /// The network the session's plan assumes (see [`crate::network`]): a protocol with
    /// several forms of a node picks one from it, the same in every process.
    #[serde(default)]
    pub network: crate::Network,
    /// The declared range of the node's output, `[lo, hi]` in its dtype's units (see
    /// [`crate::graph::NodeSpec::range`]): `ref` enforces it, other protocols may rely on it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub range: Option<[f64; 2]>,
}

/// Predicted cost of one node.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cost {
    /// Online rounds (message exchanges that must wait for a reply).
    pub rounds: u32,
    /// Online payload bytes each party sends, by party index.
    pub online_bytes: Vec<u64>,
    /// Dealer material bytes each party receives, by party index.
    pub dealer_bytes: Vec<u64>,
    /// Which of its ways to compute the node the protocol chose, where it has several (for
    /// instance `two-round (DReLU, select)`); empty otherwise. `plan` shows it.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub form: String,
}

impl Cost {
    /// No rounds, no bytes.
    pub fn zero(parties: usize) -> Self {
        Cost { rounds: 0, online_bytes: vec![0; parties], dealer_bytes: vec![0; parties], form: String::new() }
    }
}

/// A party's local value of a tensor: a protocol-defined representation.
///
/// `planes` holds one or more row-major arrays of ring words, each of `numel` elements: a
/// plaintext protocol keeps one plane, an additive share one, a masked wire two (masked value
/// and mask share), replicated sharing two. The runtime never reads the words.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Wire {
    /// Shape.
    pub shape: Vec<usize>,
    /// Element type.
    pub dtype: DType,
    /// Protocol-defined planes of ring words.
    pub planes: Vec<Vec<u64>>,
}

/// The result of a node at one party.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NodeValue {
    /// The party's wire for the node's tensor.
    Wire(Wire),
    /// An output node: the plaintext if this party is among those it is revealed to.
    Revealed(Option<Tensor>),
}

/// A message to or from a peer, inside one node's round.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Message {
    /// The other party.
    pub peer: PartyId,
    /// Protocol-defined bytes.
    pub payload: Vec<u8>,
}

/// What a node evaluation wants next.
#[derive(Debug)]
pub enum Step {
    /// Send these messages, then call `step` again with one message from each of `expect`.
    /// Each `Exchange` is one online round.
    Exchange {
        /// Messages to send now.
        send: Vec<Message>,
        /// Peers whose message for this round must arrive before the next step.
        expect: Vec<PartyId>,
    },
    /// The node is finished.
    Done(NodeValue),
}

/// One party's evaluation of one node, driven by the scheduler.
///
/// The first call gets an empty inbox; each later call gets exactly the messages of the peers
/// named in the previous [`Step::Exchange`], in the order named. Returning an error aborts the
/// session on every party.
pub trait NodeEval: Send {
    /// Advances by one round.
    fn step(&mut self, inbox: Vec<Message>) -> Result<Step>;
}

/// A node evaluation that finishes without communicating.
pub struct Immediate(Option<Result<NodeValue>>);

impl Immediate {
    /// Wraps a finished result.
    pub fn boxed(result: Result<NodeValue>) -> Box<dyn NodeEval> {
        Box::new(Immediate(Some(result)))
    }
}

impl NodeEval for Immediate {
    fn step(&mut self, _inbox: Vec<Message>) -> Result<Step> {
        match self.0.take() {
            Some(r) => r.map(Step::Done),
            None => Err(crate::Error::internal("Immediate stepped twice")),
        }
    }
}

/// Everything a party brings to one node.
pub struct EvalInput {
    /// This party.
    pub party: PartyId,
    /// Wires of the node's inputs, in order.
    pub inputs: Vec<Arc<Wire>>,
    /// This party's dealer material for the node (empty when the protocol deals none).
    pub material: Vec<u8>,
    /// For an input node at its owner: the plaintext value.
    pub private: Option<Tensor>,
    /// The session's compute kernel, when it is not the protocol's own CPU code (`None` for the
    /// default `cpu`). A protocol may hand heavy local work to it and falls back to its own code
    /// for what the kernel does not support. Native protocol plugins always get `None`.
    pub kernel: Option<Arc<dyn crate::kernel::Kernel>>,
}

/// A reference to a value inside a [`Lowering`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum LRef {
    /// The `i`-th input of the node being lowered.
    Input(usize),
    /// The output of the `j`-th node of the lowering (only earlier ones).
    Node(usize),
    /// A public constant.
    Const(Tensor),
}

/// One node of a lowering.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LoweredNode {
    /// The op.
    pub op: Op,
    /// Its inputs.
    pub inputs: Vec<LRef>,
}

/// A rewrite of one node into several simpler ones; the last node's output replaces the
/// original node's output.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Lowering {
    /// Nodes in evaluation order.
    pub nodes: Vec<LoweredNode>,
}

/// The dealer side of a protocol for one session.
///
/// The runtime calls [`Dealer::deal`] for **every** node in plan order, so the dealer can track
/// what it needs about each wire (for masked-wire protocols, the masks), and calls
/// [`Dealer::forget`] once a node's output is no longer an input of any node still to come.
/// The dealer never sees inputs or outputs, only the plan.
pub trait Dealer: Send {
    /// Each party's material for `node` (empty vectors for a node without material), from a
    /// fresh 32-byte seed the runtime derives from operating-system randomness. `inputs` are
    /// the plan ids of the node's inputs, in order.
    fn deal(&mut self, node: &NodeDesc, inputs: &[u32], seed: [u8; 32]) -> Result<Vec<Vec<u8>>>;

    /// Drops whatever the dealer keeps about node `id`.
    fn forget(&mut self, id: u32) {
        let _ = id;
    }
}

/// A dealer for protocols without offline material.
pub struct NoMaterial;

impl Dealer for NoMaterial {
    fn deal(&mut self, node: &NodeDesc, _inputs: &[u32], _seed: [u8; 32]) -> Result<Vec<Vec<u8>>> {
        Ok(vec![Vec::new(); node.parties])
    }
}

/// How a protocol's local work runs in this process: speed and memory, never results, so the
/// processes of one session may differ. Set from the command line (`--threads`) or the
/// embedding program's session configuration, and handed to the protocol by [`Protocol::tuned`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Tuning {
    /// Threads for heavy local work: key generation, batched key evaluation, ring products.
    pub threads: usize,
    /// Most bytes of idle material buffers this process keeps for reuse.
    pub pool_bytes: usize,
}

impl Default for Tuning {
    /// As many threads as the machine offers; 1 GiB of idle buffers.
    fn default() -> Self {
        Tuning { threads: std::thread::available_parallelism().map_or(1, |n| n.get()), pool_bytes: 1 << 30 }
    }
}

/// A protocol plugin. See the module docs for the contract.
pub trait Protocol: Send + Sync {
    /// Name, parties, dealer needs.
    fn descriptor(&self) -> ProtocolDescriptor;

    /// Whether the protocol evaluates `op` directly. Unsupported ops must be lowered
    /// ([`Protocol::lower`]) or the plan is refused with a clear error.
    fn supports(&self, op: &Op) -> bool {
        let _ = op;
        true
    }

    /// Rewrites a composite op into simpler ones; `None` keeps it as it is.
    fn lower(&self, op: &Op, inputs: &[TensorInfo], fixed_point: FixedPoint) -> Option<Lowering> {
        let _ = (op, inputs, fixed_point);
        None
    }

    /// Whether the protocol can compute this planned node (with its shapes, dtypes and
    /// fixed-point setting); the message says why not. The planner refuses the plan otherwise,
    /// so nothing fails later at run time.
    fn check(&self, node: &NodeDesc) -> std::result::Result<(), String> {
        let _ = node;
        Ok(())
    }

    /// Predicted rounds and bytes of a node. Must match what evaluation does.
    fn cost(&self, node: &NodeDesc) -> Cost;

    /// Whether the dealer produces material for this node.
    fn needs_material(&self, node: &NodeDesc) -> bool {
        let _ = node;
        false
    }

    /// Dealer side: a fresh dealer for one session, fed every node of the plan in order.
    /// The default deals nothing, for protocols without offline material.
    fn dealer(&self) -> Box<dyn Dealer> {
        Box::new(NoMaterial)
    }

    /// Party side: starts evaluating `node`.
    fn begin(&self, node: &NodeDesc, input: EvalInput) -> Result<Box<dyn NodeEval>>;

    /// This protocol with `tuning` applied, for one session; `None` (the default) when it has
    /// no such settings and runs as it is.
    fn tuned(&self, tuning: &Tuning) -> Option<std::sync::Arc<dyn Protocol>> {
        let _ = tuning;
        None
    }
}
