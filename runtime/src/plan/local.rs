//! Local evaluation: what one party can compute from its own data, it computes in the clear.
//!
//! A value computed from one party's private inputs and public constants alone (the planner
//! marks it [`Visibility::Private`]) is something that party could have computed before the
//! run and brought as an input. Secret-sharing it and computing under the protocol buys
//! nothing: the other parties learn nothing either way. So the planner leaves such nodes to
//! their party: it computes them in the clear with the same kernels and contracts as `ref`
//! ([`mpcflow_ring::kernels`]), and the value enters the protocol through an ordinary input
//! gate, `name#shared`, where a node that is not local reads it. The protocol never sees a
//! local node. The idea is SMCQL's "slicing" and Conclave's pushing of the MPC frontier down
//! to the data owners (Bater et al., VLDB 2017; Volgushev et al., EuroSys 2019).
//!
//! **What crosses.** For a local node `y = f(x)` the other parties receive what an input gate
//! of `y` sends them (fss2pc: `y` plus a mask only the dealer and `y`'s owner know; rep3: its
//! replicated shares), exactly as if the owner had brought `y` as an input. Shapes are public
//! as they are for every input. A local node checks the contracts `ref` checks (a comparison's
//! width, a product's range, a declared `range:`); one broken stops the run on its owner with
//! the node named, and the others hear the category and the node's name, never a value. So
//! they learn that the owner's data broke that node's contract, as they do when an input
//! breaks its declared range; under the protocol the contract would go unchecked and the
//! result be wrong. A malicious owner could bring `f(x)` and `x`
//! inconsistent with each other, as it could bring any input it likes; fss2pc and rep3 assume
//! semi-honest parties.
//!
//! **Through concatenations.** Two hospitals' rows are usually concatenated first and then
//! compared (`gt(concat(north, south), 140)`): no single party holds the concatenation. An
//! elementwise op whose other operands are one-element constants distributes over the pieces
//! of a concatenation; a sum over the concatenated axis is the sum of the pieces' sums, a
//! histogram the sum of theirs, a maximum (minimum) over it the maximum (minimum) of theirs.
//! The planner rewrites these so, where a piece is one party's own, and the pieces become
//! local: the hospitals' comparisons and their count cost one input gate of one word each,
//! a histogram one of a word per bin, the highest pressure one comparison. A maximum's
//! contract (the values it compares lie within `compare_bits` of each other) is then checked
//! on each piece and on the pieces' maxima: a lane wider than that, which `ref` refuses whole,
//! can run here, and correctly, since every comparison made fits the width. A range declared on
//! an elementwise op holds for each piece, and each local piece checks it.
//!
//! **Not yet: data owners.** An owner who computes nothing (`owners:`, see [`crate::owners`])
//! has its inputs split into shares at once, so its data is not evaluated locally: the owner
//! could compute such nodes itself and share their results as inputs.
//!
//! **Opting out.** [`super::PlanOptions::all_under_protocol`] (`--all-under-protocol`) keeps
//! every op under the protocol: to measure the protocol's gates, or to test them against `ref`.

use super::lower::Builder;
use crate::error::{Problem, Site};
use mpcflow_sdk::protocol::NodeKind;
use mpcflow_sdk::shape::{TensorInfo, Visibility};
use mpcflow_sdk::{Op, PartyId};

/// The suffix of the input gate that shares local node `name` with the protocol.
pub const SHARED_SUFFIX: &str = "#shared";

/// Whether `op` applied to the pieces of a concatenation, with one-element operands beside
/// it, gives the pieces of its result.
fn elementwise(op: &Op) -> bool {
    matches!(
        op,
        Op::Add
            | Op::Sub
            | Op::Neg
            | Op::Mul
            | Op::Scale { .. }
            | Op::Shift { .. }
            | Op::Gt
            | Op::Ge
            | Op::Lt
            | Op::Le
            | Op::Eq
            | Op::Relu
            | Op::Reciprocal
            | Op::Div
            | Op::Sqrt
            | Op::Rsqrt
            | Op::Exp
            | Op::Sigmoid
            | Op::Tanh
            | Op::Gelu
    )
}

impl Builder<'_> {
    /// Whether ops may be left to their party here: planning allows it, and this is no step of
    /// a protocol's own lowering (whose steps the protocol expects to compute itself).
    fn may_go_local(&self) -> bool {
        self.local_evaluation && self.protocol_lowering == 0
    }

    /// The party that can compute `op` on `inputs` alone, giving `out`: every input is its
    /// local value, its own input (brought to the run, not shared from elsewhere) or a
    /// constant.
    pub(super) fn local_party(&self, inputs: &[u32], out: &TensorInfo) -> Option<PartyId> {
        let Visibility::Private(p) = out.vis else { return None };
        if !self.may_go_local() {
            return None;
        }
        let own = |i: &u32| {
            let n = &self.nodes[*i as usize];
            n.local == Some(p)
                || matches!(n.desc.kind, NodeKind::Constant { .. })
                || (matches!(n.desc.kind, NodeKind::Input { owner } if owner == p) && n.inputs.is_empty())
        };
        inputs.iter().all(own).then_some(p)
    }

    /// `id` as the protocol may read it: a local node through its input gate (added the first
    /// time it is needed), anything else as it is.
    pub(super) fn shared(&mut self, id: u32) -> u32 {
        let Some(owner) = self.nodes[id as usize].local else { return id };
        if let Some(&gate) = self.gates.get(&id) {
            return gate;
        }
        let node = &self.nodes[id as usize];
        let (name, origin, info, range) = (
            format!("{}{SHARED_SUFFIX}", node.desc.name),
            node.origin.clone(),
            node.desc.output.clone(),
            node.desc.range,
        );
        let gate = self.push(name, &origin, NodeKind::Input { owner }, vec![id], info);
        // Protocols see an input gate like any other: no inputs.
        let desc = &mut self.nodes[gate as usize].desc;
        desc.inputs.clear();
        desc.range = range;
        self.gates.insert(id, gate);
        gate
    }

    /// The node behind `id` if it is the input gate of a local node.
    fn unshared(&self, id: u32) -> u32 {
        let n = &self.nodes[id as usize];
        if n.shares_local_value() { n.inputs[0] } else { id }
    }

    /// `op` on `inputs` rewritten over the pieces of a concatenation (see the module docs), when
    /// that lets a piece be computed locally: `Some(id)` of the node giving the result.
    pub(super) fn through_concat(
        &mut self,
        name: &str,
        origin: &str,
        op: &Op,
        inputs: &[u32],
        out: &TensorInfo,
        depth: usize,
    ) -> Result<Option<u32>, Problem> {
        if !self.may_go_local() {
            return Ok(None);
        }
        // An elementwise op gives the pieces of its result; a reduction over the concatenated
        // axis gives partial results, combined by its `combine` op.
        // `Some((axes, combine))` for a reduction over `axes` (all when empty).
        let reduction = match op {
            Op::Sum { axes, .. } if inputs.len() == 1 => Some((axes.clone(), Op::Add)),
            Op::Histogram { .. } => Some((vec![], Op::Add)),
            Op::Max { axis: Some(a) } => Some((vec![*a], Op::Max { axis: None })),
            Op::Min { axis: Some(a) } => Some((vec![*a], Op::Min { axis: None })),
            op if elementwise(op) => None,
            _ => return Ok(None),
        };
        // Exactly one operand is a concatenation; the others are one-element constants of no
        // higher rank (so that the pieces keep their shapes).
        let mut cat = None;
        for (k, &i) in inputs.iter().enumerate() {
            match &self.nodes[i as usize].desc.kind {
                NodeKind::Op(Op::Concat { axis }) if cat.is_none() => cat = Some((k, *axis)),
                NodeKind::Constant { value } if value.data.len() == 1 => {}
                _ => return Ok(None),
            }
        }
        let Some((k, axis)) = cat else { return Ok(None) };
        let whole = &self.nodes[inputs[k] as usize];
        let rank = whole.desc.output.shape.len();
        let norm = |a: i64| if a < 0 { a + rank as i64 } else { a };
        let axis = norm(axis);
        if inputs.iter().any(|&i| self.info(i).shape.len() > rank) {
            return Ok(None);
        }
        // A reduction distributes over the pieces when it reduces the concatenated axis (a
        // histogram counts every element; no axes is a sum of everything).
        if let Some((axes, _)) = &reduction
            && !(axes.is_empty() || axes.iter().any(|&a| norm(a) == axis))
        {
            return Ok(None);
        }
        // A maximum or minimum of an empty piece is undefined, though the whole's is not.
        if matches!(op, Op::Max { .. } | Op::Min { .. })
            && whole.inputs.iter().any(|&i| self.info(i).shape.get(axis as usize) == Some(&0))
        {
            return Ok(None);
        }
        let whole_id = inputs[k];
        let pieces: Vec<u32> = whole.inputs.iter().map(|&i| self.unshared(i)).collect();
        if pieces.len() < 2 {
            return Ok(None);
        }
        let one_party_s = |i: &u32| matches!(self.info(*i).vis, Visibility::Private(_));
        if !pieces.iter().any(one_party_s) {
            return Ok(None);
        }
        // Each piece is a smaller operand than the whole, so the rewrites of nested
        // concatenations end; they are no lowering and do not count against its depth.
        let mut parts = Vec::with_capacity(pieces.len());
        for (j, &piece) in pieces.iter().enumerate() {
            let mut args = inputs.to_vec();
            args[k] = piece;
            parts.push(self.op(&format!("{name}/{j}.{}", op.name()), origin, op.clone(), args, depth)?);
        }
        let id = match reduction {
            Some((_, combine)) => {
                let mut acc = parts[0];
                for (j, &p) in parts.iter().enumerate().skip(1) {
                    let last = j + 1 == parts.len();
                    // Named apart from the pieces' own nodes (a maximum's pieces and combines are
                    // both `max`).
                    let sub = if last { name.to_string() } else { format!("{name}/all{j}.{}", combine.name()) };
                    acc = self.op(&sub, origin, combine.clone(), vec![acc, p], depth)?;
                }
                acc
            }
            None => {
                let id = self.op(name, origin, Op::Concat { axis }, parts.clone(), depth)?;
                self.pieces_of.insert(id, parts);
                id
            }
        };
        self.bypassed.push(whole_id);
        let got = self.info(id);
        if got.shape != out.shape || got.dtype != out.dtype {
            return Err(Problem::new(
                Site::Node(origin.to_string()),
                format!(
                    "`{}` over the pieces of a concatenation gives {} {:?} instead of {} {:?} (a planner bug)",
                    op.name(),
                    got.dtype,
                    got.shape,
                    out.dtype,
                    out.shape
                ),
            ));
        }
        Ok(Some(id))
    }
}

/// `nodes` without what the rewrites over concatenations left unread: a concatenation read
/// around, the input gates that only it read, the local nodes that only those gates read.
/// An input brought to the run that was read, and now is read only by its owner's local nodes
/// or not at all, is left to its owner: no input gate runs for it.
pub(super) fn prune_bypassed(mut nodes: Vec<super::PlanNode>, bypassed: &[u32]) -> Vec<super::PlanNode> {
    let n = nodes.len();
    let mut readers: Vec<Vec<u32>> = vec![vec![]; n];
    for (i, node) in nodes.iter().enumerate() {
        for &j in &node.inputs {
            readers[j as usize].push(i as u32);
        }
    }
    let mut unread: Vec<usize> = readers.iter().map(Vec::len).collect();
    let mut keep = vec![true; n];
    // A declared range is a contract `ref` checks: a node carrying one stays.
    let prunable = |node: &super::PlanNode, id: usize| {
        node.desc.range.is_none()
            && (bypassed.contains(&(id as u32))
                || node.shares_local_value()
                || (node.local.is_some() && matches!(node.desc.kind, NodeKind::Op(_))))
    };
    let mut work: Vec<usize> =
        bypassed.iter().map(|&i| i as usize).filter(|&i| unread[i] == 0 && nodes[i].desc.range.is_none()).collect();
    while let Some(i) = work.pop() {
        if !keep[i] {
            continue;
        }
        keep[i] = false;
        for &j in &nodes[i].inputs {
            let j = j as usize;
            unread[j] -= 1;
            if unread[j] == 0 && prunable(&nodes[j], j) {
                work.push(j);
            }
        }
    }
    for i in 0..n {
        let NodeKind::Input { owner } = nodes[i].desc.kind else { continue };
        let read_by_owner_only = !readers[i].is_empty()
            && readers[i].iter().filter(|&&r| keep[r as usize]).all(|&r| nodes[r as usize].local == Some(owner));
        if nodes[i].inputs.is_empty() && read_by_owner_only {
            nodes[i].local = Some(owner);
        }
    }
    retain(nodes, &keep)
}

/// The nodes marked in `keep`, renumbered in order.
fn retain(nodes: Vec<super::PlanNode>, keep: &[bool]) -> Vec<super::PlanNode> {
    let mut new_id = vec![u32::MAX; nodes.len()];
    let mut next = 0u32;
    for (i, k) in keep.iter().enumerate() {
        if *k {
            new_id[i] = next;
            next += 1;
        }
    }
    nodes
        .into_iter()
        .enumerate()
        .filter(|(i, _)| keep[*i])
        .map(|(i, mut node)| {
            node.desc.id = new_id[i];
            for j in &mut node.inputs {
                *j = new_id[*j as usize];
            }
            node
        })
        .collect()
}
