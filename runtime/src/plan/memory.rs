//! The expected peak memory of a run, from the plan alone (`mpcflow plan` prints it).
//!
//! A party holds, at any point of the plan: the private inputs it brought and has not yet
//! shared, the wires of values still to be consumed (each value is dropped after its last
//! consumer, as the scheduler does), and dealer material ahead of and inside the running nodes
//! (the window of [`crate::schedule::MATERIAL_WINDOW_BYTES`], the transport's
//! [`crate::schedule::DEALER_CHANNEL_FRAMES`] frames and one frame in the reader's hand). On top
//! comes the working memory of the nodes running at once, which the plan cannot know exactly;
//! the estimate adds the largest node's inputs, output, material and messages (every party's,
//! since a party holds what it sends and what it receives) once more. In one process the
//! dealer adds two of the largest frames per party: the one its sender thread is writing and
//! the next node's, being generated (see [`crate::schedule::dealer`]). A node's wire
//! is `wire_words` ring words per element, as the protocol's descriptor states.
//!
//! It is an estimate, not a bound: it leaves out the allocator's retained pages, the protocols'
//! scratch buffers, and the working memory of several nodes running at once (the scheduler
//! starts every ready node; under a protocol with a dealer the material window limits how many
//! run together, without one nothing does). On the full-size models it comes within the figures the README
//! gives beside it.

use super::Plan;
use mpcflow_sdk::protocol::NodeKind;

/// The expected peak resident memory of one run, in bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MemoryEstimate {
    /// Each party's peak in its own process (material as it streams from a dealer process).
    pub per_party: Vec<u64>,
    /// Every party and the dealer in one process (`mpcflow run`).
    pub one_process: u64,
}

/// Bytes of a tensor of `numel` elements held as `words` ring words each.
fn wire_bytes(numel: usize, words: u64) -> u64 {
    numel as u64 * words * 8
}

/// The expected peak of `plan`'s run when each party reads `window_bytes` of material ahead.
pub fn expected_peak(plan: &Plan, window_bytes: u64) -> MemoryEstimate {
    let words = u64::from(plan.plugin.0.descriptor().wire_words.max(1));
    let parties = plan.parties.len();
    let consumers = plan.consumer_counts();
    // Each node's wire, and each input node's plaintext (one word per element).
    let wire: Vec<u64> = plan.nodes.iter().map(|n| wire_bytes(n.desc.output.numel(), words)).collect();
    let plain = |n: &super::PlanNode| wire_bytes(n.desc.output.numel(), 1);
    let mut per_party = Vec::with_capacity(parties);
    let mut dealer_frame = 0u64;
    for p in 0..parties {
        // Private inputs are read before the run and dropped once shared.
        let mut live: u64 = plan
            .nodes
            .iter()
            .filter(|n| matches!(&n.desc.kind, NodeKind::Input { owner } if owner.index() == p))
            .filter(|n| !n.shares_local_value())
            .map(plain)
            .sum();
        // A local node is a plaintext value on its party and nothing elsewhere.
        let held = |id: usize| match plan.nodes[id].local {
            Some(q) if q.index() == p => plain(&plan.nodes[id]),
            Some(_) => 0,
            None => wire[id],
        };
        let mut remaining = consumers.clone();
        let (mut peak, mut largest_node, mut largest_frame, mut total_material) = (live, 0u64, 0u64, 0u64);
        for (id, n) in plan.nodes.iter().enumerate() {
            let out = if matches!(n.desc.kind, NodeKind::Output { .. }) { 0 } else { held(id) };
            let material = n.cost.dealer_bytes.get(p).copied().unwrap_or(0);
            let inputs: u64 = n.inputs.iter().map(|&i| held(i as usize)).sum();
            // Its messages: what this party sends and what it receives, in memory at once.
            let messages: u64 = n.cost.online_bytes.iter().sum();
            largest_node = largest_node.max(inputs + out + material + messages);
            largest_frame = largest_frame.max(material);
            total_material += material;
            live += out;
            peak = peak.max(live);
            if let NodeKind::Input { owner } = &n.desc.kind
                && owner.index() == p
                && !n.shares_local_value()
            {
                live = live.saturating_sub(plain(n));
            }
            for &i in &n.inputs {
                let r = &mut remaining[i as usize];
                *r = r.saturating_sub(1);
                if *r == 0 {
                    live = live.saturating_sub(held(i as usize));
                }
            }
        }
        dealer_frame = dealer_frame.max(largest_frame);
        let channel = crate::schedule::DEALER_CHANNEL_FRAMES as u64 + 1;
        let material = total_material.min(window_bytes.max(largest_frame) + channel * largest_frame);
        per_party.push(peak + material + largest_node);
    }
    // In one process the dealer builds each party's frame beside them, and holds one more
    // (in its sender's hand) while it builds the next node's.
    let one_process = per_party.iter().sum::<u64>() + 2 * dealer_frame * parties as u64;
    MemoryEstimate { per_party, one_process }
}
