//! Plans: the validated, shape-inferred, lowered and costed form of a graph that every party and
//! the dealer derive identically, and compare by [`Plan::fingerprint`].

mod build;
mod dot;
mod fingerprint;
pub mod local;
mod lower;
mod memory;
mod ranges;
pub(crate) mod validate;

pub use build::{PlanOptions, build};
pub use dot::to_dot;
pub use memory::{MemoryEstimate, expected_peak};

use mpcflow_sdk::protocol::{Cost, NodeDesc, NodeKind, Protocol};
use std::collections::HashMap;
use std::sync::Arc;

/// The protocol plugin a plan was built for: whoever runs or deals the plan uses it, so
/// nothing looks the protocol up by name again.
#[derive(Clone)]
pub struct PlanProtocol(pub Arc<dyn Protocol>);

/// Shows the protocol's name.
impl std::fmt::Debug for PlanProtocol {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PlanProtocol({})", self.0.descriptor().name)
    }
}

/// One node of a plan.
#[derive(Clone, Debug)]
pub struct PlanNode {
    /// What protocols see of it.
    pub desc: NodeDesc,
    /// Plan ids of its inputs.
    pub inputs: Vec<u32>,
    /// The graph node it came from (differs from `desc.name` for lowered nodes).
    pub origin: String,
    /// Whether the dealer produces material for it.
    pub needs_material: bool,
    /// The protocol's predicted cost.
    pub cost: Cost,
    /// `Some(p)`: party `p` computes this node in the clear from its own data, and the protocol
    /// never sees it (see [`local`]).
    pub local: Option<mpcflow_sdk::PartyId>,
}

impl PlanNode {
    /// Whether this node is an input gate that shares a value one party computed in the clear
    /// (its one plan input, a [`PlanNode::local`] node) rather than a value brought to the run.
    pub fn shares_local_value(&self) -> bool {
        matches!(self.desc.kind, NodeKind::Input { .. }) && !self.inputs.is_empty()
    }
}

/// A plan: nodes in an order where every node follows its inputs.
#[derive(Clone, Debug)]
pub struct Plan {
    /// Name of the computation.
    pub name: String,
    /// Party names; index = party id.
    pub parties: Vec<String>,
    /// Protocol name.
    pub protocol: String,
    /// The protocol plugin itself.
    pub plugin: PlanProtocol,
    /// Protocol version (part of the fingerprint).
    pub protocol_version: String,
    /// Whether the protocol needs a dealer.
    pub needs_dealer: bool,
    /// Whether the protocol is secure (`ref` is not).
    pub secure: bool,
    /// Fixed-point encoding.
    pub fixed_point: mpcflow_sdk::FixedPoint,
    /// The network the plan assumes; part of the fingerprint (every process plans with it).
    pub network: mpcflow_sdk::Network,
    /// Nodes in plan order.
    pub nodes: Vec<PlanNode>,
    /// Symbolic dimensions and the sizes they were given.
    pub dims: Vec<(String, usize)>,
    /// Dimensions not fixed by data or options, given distinct sample sizes for checking.
    pub sampled_dims: Vec<String>,
    /// The data owners' inputs and outputs, which the plan shares and masks (see
    /// [`crate::owners`]); empty when the pipeline has no owners.
    pub owner_io: crate::owners::OwnerIo,
    /// SHA-256 of the plan's canonical form.
    pub fingerprint: [u8; 32],
}

impl Plan {
    /// The fingerprint as hex.
    pub fn fingerprint_hex(&self) -> String {
        self.fingerprint.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// Id of the node producing tensor `name`.
    pub fn node_id(&self, name: &str) -> Option<u32> {
        self.nodes.iter().position(|n| n.desc.name == name).map(|i| i as u32)
    }

    /// For each node, how many nodes consume its output.
    pub fn consumer_counts(&self) -> Vec<usize> {
        let mut c = vec![0; self.nodes.len()];
        for n in &self.nodes {
            for &i in &n.inputs {
                c[i as usize] += 1;
            }
        }
        c
    }

    /// For each node, how many nodes read it as the protocol's wire: nodes under the protocol,
    /// but not an input gate reading its local value (what the dealer keeps per wire).
    pub fn wire_reader_counts(&self) -> Vec<usize> {
        let mut c = vec![0; self.nodes.len()];
        for n in self.nodes.iter().filter(|n| n.local.is_none() && !n.shares_local_value()) {
            for &i in &n.inputs {
                c[i as usize] += 1;
            }
        }
        c
    }

    /// The output nodes: (tensor name, node id, parties that learn it).
    pub fn outputs(&self) -> Vec<(String, u32, Vec<String>)> {
        self.nodes
            .iter()
            .enumerate()
            .filter_map(|(i, n)| match &n.desc.kind {
                NodeKind::Output { reveal_to } => Some((
                    n.origin.clone(),
                    i as u32,
                    reveal_to.iter().map(|p| self.parties[p.index()].clone()).collect(),
                )),
                _ => None,
            })
            .collect()
    }

    /// Input nodes by tensor name.
    pub fn input_nodes(&self) -> HashMap<String, u32> {
        self.nodes
            .iter()
            .enumerate()
            .filter(|(_, n)| matches!(n.desc.kind, NodeKind::Input { .. }) && !n.shares_local_value())
            .map(|(i, n)| (n.desc.name.clone(), i as u32))
            .collect()
    }

    /// Sum of the per-node costs.
    pub fn total_cost(&self) -> Cost {
        let p = self.parties.len();
        let mut t = Cost::zero(p);
        for n in &self.nodes {
            t.rounds += n.cost.rounds;
            for i in 0..p {
                t.online_bytes[i] += n.cost.online_bytes.get(i).copied().unwrap_or(0);
                t.dealer_bytes[i] += n.cost.dealer_bytes.get(i).copied().unwrap_or(0);
            }
        }
        t
    }

    /// The plan as JSON (what `mpcflow plan --json` prints and the Python package reads): name,
    /// protocol, parties, fingerprint, network, every node's name, op, origin, shape, rounds,
    /// online and dealer bytes per party, form and the party computing it in the clear (`local`,
    /// or null), and the totals (with the expected peak
    /// memory, see [`expected_peak`]).
    pub fn to_json(&self) -> serde_json::Value {
        let total = self.total_cost();
        let nodes: Vec<_> = self
            .nodes
            .iter()
            .map(|n| {
                serde_json::json!({
                    "name": n.desc.name, "op": n.desc.kind.label(), "origin": n.origin, "shape": n.desc.output.shape,
                    "rounds": n.cost.rounds, "online_bytes": n.cost.online_bytes, "dealer_bytes": n.cost.dealer_bytes,
                    "form": n.cost.form,
                    "local": n.local.map(|p| self.parties[p.index()].clone()),
                })
            })
            .collect();
        let peak = expected_peak(self, crate::schedule::MATERIAL_WINDOW_BYTES as u64);
        serde_json::json!({
            "name": self.name, "protocol": self.protocol, "parties": self.parties, "fingerprint": self.fingerprint_hex(),
            "network": self.network.name(),
            "nodes": nodes,
            "total": {
                "rounds": total.rounds, "critical_rounds": self.critical_rounds(),
                "online_bytes": total.online_bytes, "dealer_bytes": total.dealer_bytes,
                "expected_peak_bytes": { "one_process": peak.one_process, "per_party": peak.per_party },
            },
        })
    }

    /// Rounds on the longest dependency path: the online latency in round trips when every
    /// ready node runs at once.
    pub fn critical_rounds(&self) -> u32 {
        let mut depth = vec![0u32; self.nodes.len()];
        for (i, n) in self.nodes.iter().enumerate() {
            // A local node reads its party's own values, ready before any round.
            if n.local.is_some() {
                continue;
            }
            let before = n.inputs.iter().map(|&j| depth[j as usize]).max().unwrap_or(0);
            depth[i] = before + n.cost.rounds;
        }
        depth.into_iter().max().unwrap_or(0)
    }
}
