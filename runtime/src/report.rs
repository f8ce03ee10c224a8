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
    /// (`deal_first`), else about `wall_s`.
    pub online_wall_s: f64,
    /// Dealer seconds.
    pub dealer_wall_s: f64,
    /// Totals.
    pub totals: Totals,
    /// Per node, in plan order.
    pub nodes: Vec<NodeReport>,
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
                rounds,
                predicted_rounds: n.cost.rounds,
                bytes_sent,
                bytes_received: (0..p).map(|q| stat(q).map_or(0, |s| s.bytes_received)).collect(),
                predicted_bytes_sent: n.cost.online_bytes.clone(),
                dealer_bytes,
                predicted_dealer_bytes: n.cost.dealer_bytes.clone(),
            });
        }
        RunReport {
            name: plan.name.clone(),
            protocol: plan.protocol.clone(),
            fingerprint: plan.fingerprint_hex(),
            parties: plan.parties.clone(),
            wall_s: run.wall_s,
            online_wall_s: run.online_wall_s,
            dealer_wall_s: run.dealer.wall_s,
            totals,
            nodes,
        }
    }
}
