//! The run report: per node, what the cost model predicted and what each party measured.

use crate::plan::Plan;
use crate::schedule::LocalRun;
use serde::Serialize;

/// One node in the report.
#[derive(Clone, Debug, Serialize)]
pub struct NodeReport {
    /// Node name.
    pub name: String,
    /// Op label.
    pub op: String,
    /// The graph node it came from.
    pub origin: String,
    /// Output shape.
    pub shape: Vec<usize>,
    /// Slowest party's seconds from ready to done.
    pub wall_s: f64,
    /// Of those, the longest any party waited for its dealer material: the dealer's pace, or
    /// room in the material window held by the nodes running before it; not this node's work.
    pub material_wait_s: f64,
    /// Rounds measured (the most any party took).
    pub rounds: u32,
    /// Rounds the cost model predicted.
    pub predicted_rounds: u32,
    /// Bytes each party sent.
    pub bytes_sent: Vec<u64>,
    /// Bytes each party received.
    pub bytes_received: Vec<u64>,
    /// Bytes each party was predicted to send.
    pub predicted_bytes_sent: Vec<u64>,
    /// Dealer bytes each party received.
    pub dealer_bytes: Vec<u64>,
    /// Dealer bytes predicted per party.
    pub predicted_dealer_bytes: Vec<u64>,
    /// The party that computed it in the clear from its own data (see
    /// [`crate::plan::local`]); `None` under the protocol.
    pub local: Option<String>,
}

/// Totals of a run.
#[derive(Clone, Debug, Serialize)]
pub struct Totals {
    /// Online bytes sent per party.
    pub bytes_sent: Vec<u64>,
    /// Dealer bytes per party.
    pub dealer_bytes: Vec<u64>,
    /// Sum of rounds over nodes.
    pub rounds: u32,
    /// Rounds on the longest dependency path (the latency in round trips).
    pub critical_rounds: u32,
}

/// One node of the pipeline as written (a layer of an imported model, a `model:` node's layer,
/// or a pipeline node), with the plan nodes it was lowered to added up.
#[derive(Clone, Debug, Serialize)]
pub struct LayerReport {
    /// The graph node (`origin` of its plan nodes).
    pub name: String,
    /// How many plan nodes it became.
    pub nodes: usize,
    /// Op label of its first plan node (for a lowered op, the first step's).
    pub op: String,
    /// Output shape of its last plan node.
    pub shape: Vec<usize>,
    /// Sum of its plan nodes' `wall_s` (they may overlap, so this can exceed the time the
    /// layer took from first start to last end).
    pub node_s: f64,
    /// Sum of its plan nodes' `material_wait_s`: the part of `node_s` spent waiting for the
    /// dealer.
    pub material_wait_s: f64,
    /// Rounds on its longest chain of plan nodes.
    pub critical_rounds: u32,
    /// Bytes each party sent.
    pub bytes_sent: Vec<u64>,
    /// Dealer bytes each party received.
    pub dealer_bytes: Vec<u64>,
}

/// A whole run.
#[derive(Clone, Debug, Serialize)]
pub struct RunReport {
    /// Computation name.
    pub name: String,
    /// Protocol.
    pub protocol: String,
    /// Plan fingerprint (hex).
    pub fingerprint: String,
    /// Parties.
    pub parties: Vec<String>,
    /// Seconds end to end.
    pub wall_s: f64,
    /// Seconds of the parties' run: the online phase alone when the material was dealt first
    /// (`deal_first`: the sum of its phases' times), else about `wall_s`.
    pub online_wall_s: f64,
    /// How many phases the material was dealt in ahead of the online phase (0: it streamed, or
    /// the run had no material).
    pub online_phases: usize,
    /// Dealer seconds.
    pub dealer_wall_s: f64,
    /// Totals.
    pub totals: Totals,
    /// Per node of the pipeline as written, in the order of their first plan node: where the
    /// time, bytes and material go, layer by layer.
    pub layers: Vec<LayerReport>,
    /// Per node, in plan order.
    pub nodes: Vec<NodeReport>,
}

/// The plan's nodes added up by the graph node they came from.
fn layers(plan: &Plan, nodes: &[NodeReport]) -> Vec<LayerReport> {
    let mut index: std::collections::HashMap<&str, usize> = std::collections::HashMap::new();
    let mut out: Vec<LayerReport> = vec![];
    // Rounds on the longest chain ending at each plan node, counting only its layer's nodes.
    let mut depth = vec![0u32; plan.nodes.len()];
    for (i, (n, r)) in plan.nodes.iter().zip(nodes).enumerate() {
        let before =
            n.inputs.iter().filter(|&&j| plan.nodes[j as usize].origin == n.origin).map(|&j| depth[j as usize]).max();
        depth[i] = before.unwrap_or(0) + r.rounds;
        let at = *index.entry(n.origin.as_str()).or_insert_with(|| {
            out.push(LayerReport {
                name: n.origin.clone(),
                nodes: 0,
                op: r.op.clone(),
                shape: vec![],
                node_s: 0.0,
                material_wait_s: 0.0,
                critical_rounds: 0,
                bytes_sent: vec![0; r.bytes_sent.len()],
                dealer_bytes: vec![0; r.dealer_bytes.len()],
            });
            out.len() - 1
        });
        let l = &mut out[at];
        l.nodes += 1;
        l.shape = r.shape.clone();
        l.node_s += r.wall_s;
        l.material_wait_s += r.material_wait_s;
        l.critical_rounds = l.critical_rounds.max(depth[i]);
        for (t, b) in l.bytes_sent.iter_mut().zip(&r.bytes_sent) {
            *t += b;
        }
        for (t, b) in l.dealer_bytes.iter_mut().zip(&r.dealer_bytes) {
            *t += b;
        }
    }
    out
}

impl RunReport {
    /// Builds the report of a local run.
    pub fn new(plan: &Plan, run: &LocalRun) -> RunReport {
        let p = plan.parties.len();
        let mut nodes = Vec::with_capacity(plan.nodes.len());
        let mut totals = Totals {
            bytes_sent: vec![0; p],
            dealer_bytes: vec![0; p],
            rounds: 0,
            critical_rounds: plan.critical_rounds(),
        };
        for (i, n) in plan.nodes.iter().enumerate() {
            let stat = |q: usize| run.parties.get(q).and_then(|r| r.stats.get(i));
            let bytes_sent: Vec<u64> = (0..p).map(|q| stat(q).map_or(0, |s| s.bytes_sent)).collect();
            let dealer_bytes: Vec<u64> =
                (0..p).map(|q| run.dealer.bytes.get(i).and_then(|b| b.get(q)).copied().unwrap_or(0)).collect();
            let rounds = (0..p).filter_map(stat).map(|s| s.rounds).max().unwrap_or(0);
            for q in 0..p {
                totals.bytes_sent[q] += bytes_sent[q];
                totals.dealer_bytes[q] += dealer_bytes[q];
            }
            totals.rounds += rounds;
            nodes.push(NodeReport {
                name: n.desc.name.clone(),
                op: n.desc.kind.label(),
                origin: n.origin.clone(),
                shape: n.desc.output.shape.clone(),
                wall_s: (0..p).filter_map(stat).map(|s| s.wall_s).fold(0.0, f64::max),
                material_wait_s: (0..p).filter_map(stat).map(|s| s.material_wait_s).fold(0.0, f64::max),
                rounds,
                predicted_rounds: n.cost.rounds,
                bytes_sent,
                bytes_received: (0..p).map(|q| stat(q).map_or(0, |s| s.bytes_received)).collect(),
                predicted_bytes_sent: n.cost.online_bytes.clone(),
                dealer_bytes,
                predicted_dealer_bytes: n.cost.dealer_bytes.clone(),
                local: n.local.map(|q| plan.parties[q.index()].clone()),
            });
        }
        RunReport {
            name: plan.name.clone(),
            protocol: plan.protocol.clone(),
            fingerprint: plan.fingerprint_hex(),
            parties: plan.parties.clone(),
            wall_s: run.wall_s,
            online_wall_s: run.online_wall_s,
            online_phases: run.online_phases,
            dealer_wall_s: run.dealer.wall_s,
            totals,
            layers: layers(plan, &nodes),
            nodes,
        }
    }
}
