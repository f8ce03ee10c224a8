//! A party's local nodes, computed in the clear (see [`crate::plan::local`] for which nodes are
//! local and why that is safe).
//!
//! The scheduler runs this party's local nodes as tasks like any other, each as soon as the
//! local nodes it reads are done, with the kernels and contracts `ref` uses; the input gate of
//! a local value then shares it with the protocol as if the party had brought it. Its own
//! inputs are read in the clear from the start; other parties' local nodes are no concern of
//! this party, which sees only their input gates.

use super::stats::NodeStats;
use crate::error::Error;
use crate::plan::Plan;
use mpcflow_sdk::protocol::NodeKind;
use mpcflow_sdk::{PartyId, Tensor};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

/// Whether party `me` has nothing to do for node `id` itself: another party's local node, or
/// its own local input (a value in the clear from the start).
pub(super) fn idle(plan: &Plan, me: PartyId, id: u32) -> bool {
    let n = &plan.nodes[id as usize];
    n.local.is_some() && (n.local != Some(me) || !matches!(n.desc.kind, NodeKind::Op(_)))
}

/// Whether node `reader` waits on party `me` for node `id` to finish: a local node waits for
/// the local nodes it reads; a node under the protocol for the nodes under the protocol it
/// reads, and an input gate for its local value.
pub(super) fn waits(plan: &Plan, me: PartyId, reader: u32, id: u32) -> bool {
    !idle(plan, me, reader)
        && !idle(plan, me, id)
        && (plan.nodes[reader as usize].local.is_none() || plan.nodes[id as usize].local.is_some())
}

/// This party's values in the clear: its local nodes' and the inputs they read.
pub(super) struct Plain {
    /// By node id: the local nodes' values (its local inputs' from the start).
    values: Vec<Option<Arc<Tensor>>>,
    /// Inputs that the protocol reads too, and how many local nodes still read each.
    shared_inputs: HashMap<u32, (Arc<Tensor>, usize)>,
    /// How many local nodes still read each of this party's local inputs.
    input_reads: Vec<usize>,
}

impl Plain {
    /// Takes this party's local inputs out of `inputs`, and copies those that both local nodes
    /// and the protocol read.
    pub(super) fn new(plan: &Plan, me: PartyId, inputs: &mut HashMap<u32, Tensor>) -> Result<Plain, Error> {
        let mut values = vec![None; plan.nodes.len()];
        let mut input_reads = vec![0usize; plan.nodes.len()];
        let mut shared_inputs: HashMap<u32, (Arc<Tensor>, usize)> = HashMap::new();
        for (i, n) in plan.nodes.iter().enumerate() {
            if n.local != Some(me) {
                continue;
            }
            match n.desc.kind {
                NodeKind::Input { .. } => {
                    let v = inputs.remove(&(i as u32)).ok_or_else(|| Error::Node {
                        party: plan.parties[me.index()].clone(),
                        node: n.desc.name.clone(),
                        op: n.desc.kind.label(),
                        source: mpcflow_sdk::Error::invalid("this party owns the input but brought no value"),
                    })?;
                    values[i] = Some(Arc::new(v));
                }
                _ => {
                    for &j in &n.inputs {
                        let input = &plan.nodes[j as usize];
                        if input.local.is_some() && matches!(input.desc.kind, NodeKind::Input { .. }) {
                            input_reads[j as usize] += 1;
                        }
                        if input.local.is_none() && matches!(input.desc.kind, NodeKind::Input { .. }) {
                            match shared_inputs.get_mut(&j) {
                                Some(e) => e.1 += 1,
                                None => {
                                    let v = inputs.get(&j).cloned().ok_or_else(|| {
                                        Error::Internal(format!("no value for input `{}`", input.desc.name))
                                    })?;
                                    shared_inputs.insert(j, (Arc::new(v), 1));
                                }
                            }
                        }
                    }
                }
            }
        }
        Ok(Plain { values, shared_inputs, input_reads })
    }

    /// The arguments of local node `id`, in the clear.
    pub(super) fn args(&mut self, plan: &Plan, id: u32) -> Result<Vec<Arc<Tensor>>, Error> {
        let node = &plan.nodes[id as usize];
        let mut args = Vec::with_capacity(node.inputs.len());
        for &j in &node.inputs {
            let arg = match &plan.nodes[j as usize].desc.kind {
                NodeKind::Constant { value } => Some(Arc::new(value.clone())),
                // A local input is dropped after its last local reader.
                NodeKind::Input { .. } if plan.nodes[j as usize].local.is_some() => {
                    let left = &mut self.input_reads[j as usize];
                    *left = left.saturating_sub(1);
                    if *left == 0 { self.values[j as usize].take() } else { self.values[j as usize].clone() }
                }
                _ if plan.nodes[j as usize].local.is_some() => self.values[j as usize].clone(),
                _ => match self.shared_inputs.get_mut(&j) {
                    Some((v, left)) => {
                        let v = v.clone();
                        *left -= 1;
                        if *left == 0 {
                            self.shared_inputs.remove(&j);
                        }
                        Some(v)
                    }
                    None => None,
                },
            };
            args.push(arg.ok_or_else(|| {
                Error::Internal(format!("input `{}` of local node missing", plan.nodes[j as usize].desc.name))
            })?);
        }
        Ok(args)
    }

    /// The value of local node `id` for its input gate: moved out when `last`.
    pub(super) fn for_gate(&mut self, id: u32, last: bool) -> Option<Tensor> {
        let slot = &mut self.values[id as usize];
        let v = if last { slot.take()? } else { slot.clone()? };
        Some(Arc::try_unwrap(v).unwrap_or_else(|shared| (*shared).clone()))
    }

    /// Keeps local node `id`'s value.
    pub(super) fn put(&mut self, id: u32, value: Tensor) {
        self.values[id as usize] = Some(Arc::new(value));
    }

    /// Drops local node `id`'s value (its last reader is done).
    pub(super) fn drop_value(&mut self, id: u32) {
        self.values[id as usize] = None;
    }
}

/// Evaluates local node `id` of `plan` on `args` in the clear, as `ref` would, for party `party`.
pub(super) fn evaluate(plan: &Plan, id: u32, party: &str, args: &[Arc<Tensor>]) -> Result<(Tensor, NodeStats), Error> {
    let start = Instant::now();
    let desc = &plan.nodes[id as usize].desc;
    let node_err = |source: mpcflow_sdk::Error| Error::Node {
        party: party.to_string(),
        node: desc.name.clone(),
        op: desc.kind.label(),
        source,
    };
    let NodeKind::Op(op) = &desc.kind else {
        return Err(Error::Internal(format!("a {} node cannot be computed locally", desc.kind.label())));
    };
    let refs: Vec<&Tensor> = args.iter().map(|a| a.as_ref()).collect();
    let value =
        mpcflow_ring::kernels::eval_checked(op, &refs, &desc.output, desc.fixed_point, desc.range).map_err(node_err)?;
    Ok((value, NodeStats { wall_s: start.elapsed().as_secs_f64(), ..NodeStats::default() }))
}
