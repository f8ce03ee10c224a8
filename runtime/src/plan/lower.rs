//! Adding op nodes to a plan: shape inference, protocol lowering and custom-operator expansion.

use super::PlanNode;
use crate::error::{Problem, Site};
use crate::registry::Registry;
use mpcflow_sdk::protocol::{Cost, LRef, Lowering, NodeDesc, NodeKind, Protocol};
use mpcflow_sdk::shape::{TensorInfo, Visibility, fmt_shape, infer};
use mpcflow_sdk::{FixedPoint, Op, Tensor};
use std::collections::HashMap;
use std::sync::Arc;

/// How deep lowerings may nest before we call it a loop.
const MAX_LOWERING_DEPTH: usize = 16;
/// The most elements one tensor may have (2^36 words = 512 GiB): past this a shape is a typo.
pub(super) const MAX_ELEMENTS: usize = 1 << 36;
/// The most nodes one lowering may produce.
const MAX_LOWERED_NODES: usize = 1 << 16;

pub(super) struct Builder<'a> {
    pub nodes: Vec<PlanNode>,
    pub by_name: HashMap<String, u32>,
    pub fixed_point: FixedPoint,
    pub network: mpcflow_sdk::Network,
    pub parties: usize,
    pub protocol: Arc<dyn Protocol>,
    pub registry: &'a Registry,
    /// Whether a party computes the nodes on its own data in the clear (see [`super::local`]).
    pub local_evaluation: bool,
    /// How many protocol lowerings are being expanded (their steps stay under the protocol).
    pub protocol_lowering: usize,
    /// The input gate of each local node that the protocol reads.
    pub gates: HashMap<u32, u32>,
    /// Concatenations that a rewrite over their pieces read around (see [`super::local`]).
    pub bypassed: Vec<u32>,
    /// The pieces of an elementwise op rewritten over a concatenation, by the node giving its
    /// result: a range declared on the op holds for each piece.
    pub pieces_of: HashMap<u32, Vec<u32>>,
}

impl Builder<'_> {
    pub fn info(&self, id: u32) -> &TensorInfo {
        &self.nodes[id as usize].desc.output
    }

    pub fn push(&mut self, name: String, origin: &str, kind: NodeKind, inputs: Vec<u32>, output: TensorInfo) -> u32 {
        let id = self.nodes.len() as u32;
        let desc = NodeDesc {
            id,
            name: name.clone(),
            kind,
            inputs: inputs.iter().map(|&i| self.info(i).clone()).collect(),
            output,
            fixed_point: self.fixed_point,
            parties: self.parties,
            network: self.network,
            range: None,
        };
        self.nodes.push(PlanNode {
            desc,
            inputs,
            origin: origin.to_string(),
            needs_material: false,
            cost: Cost::default(),
            local: None,
        });
        self.by_name.insert(name, id);
        id
    }

    pub fn constant(&mut self, name: String, origin: &str, value: Tensor) -> u32 {
        let info = TensorInfo { shape: value.shape.clone(), dtype: value.dtype, vis: Visibility::Public };
        self.push(name, origin, NodeKind::Constant { value }, vec![], info)
    }

    /// Adds `op` applied to `inputs` under `name`, lowering it as the protocol or an operator
    /// plugin asks. Returns the id of the node that produces `name`.
    pub fn op(&mut self, name: &str, origin: &str, op: Op, inputs: Vec<u32>, depth: usize) -> Result<u32, Problem> {
        let site = Site::Node(origin.to_string());
        if depth > MAX_LOWERING_DEPTH {
            return Err(Problem::new(
                site,
                format!("lowering `{}` does not terminate (more than {MAX_LOWERING_DEPTH} levels)", op.name()),
            ));
        }
        let infos: Vec<TensorInfo> = inputs.iter().map(|&i| self.info(i).clone()).collect();
        if let Op::Custom { name: opname, attrs } = &op {
            let plugin = self
                .registry
                .operator(opname)
                .ok_or_else(|| Problem::new(Site::NodeOp(origin.to_string()), format!("unknown op `{opname}`")))?;
            let lowering = plugin
                .lower(attrs, &infos, self.fixed_point)
                .map_err(|e| Problem::new(site.clone(), format!("operator plugin `{opname}`: {e}")))?;
            return self.expand(name, origin, &lowering, &inputs, depth);
        }
        // Shapes and sizes are checked before a protocol sees the op, so no lowering ever runs
        // on attributes the op set rejects.
        let out = infer(&op, &infos).map_err(|e| {
            let described: Vec<String> = self
                .nodes_named(&inputs)
                .into_iter()
                .zip(&infos)
                .map(|(n, t)| format!("{n} {} {}", fmt_shape(&t.shape), t.dtype))
                .collect();
            let msg = e.to_string();
            let msg = if msg.contains(&format!("`{}`", op.name())) { msg } else { format!("`{}`: {msg}", op.name()) };
            Problem::new(site.clone(), format!("{msg} (inputs: {})", described.join(", ")))
        })?;
        if out.numel() > MAX_ELEMENTS {
            return Err(Problem::new(
                site,
                format!(
                    "`{}` would produce a tensor of shape {}, more than {MAX_ELEMENTS} elements",
                    op.name(),
                    fmt_shape(&out.shape)
                ),
            ));
        }
        if let Some(p) = self.local_party(&inputs, &out) {
            let id = self.push(name.to_string(), origin, NodeKind::Op(op), inputs, out);
            self.nodes[id as usize].local = Some(p);
            return Ok(id);
        }
        if let Some(id) = self.through_concat(name, origin, &op, &inputs, &out, depth)? {
            return Ok(id);
        }
        // The protocol reads a local value through its input gate (with the same info).
        let inputs: Vec<u32> = inputs.into_iter().map(|i| self.shared(i)).collect();
        if let Some(lowering) = self.protocol.lower(&op, &infos, self.fixed_point) {
            if lowering.nodes.len() > MAX_LOWERED_NODES {
                return Err(Problem::new(
                    site,
                    format!(
                        "lowering `{}` needs {} nodes, more than {MAX_LOWERED_NODES}",
                        op.name(),
                        lowering.nodes.len()
                    ),
                ));
            }
            self.protocol_lowering += 1;
            let expanded = self.expand(name, origin, &lowering, &inputs, depth);
            self.protocol_lowering -= 1;
            let id = expanded?;
            // A lowering must produce what the op would: same shape and dtype.
            let got = self.info(id);
            if got.shape != out.shape || got.dtype != out.dtype {
                return Err(Problem::new(
                    site,
                    format!(
                        "protocol `{}` cannot compute `{}` on these inputs: its lowering gives {} {} instead of {} {}",
                        self.protocol.descriptor().name,
                        op.name(),
                        got.dtype,
                        fmt_shape(&got.shape),
                        out.dtype,
                        fmt_shape(&out.shape)
                    ),
                ));
            }
            return Ok(id);
        }
        if !self.protocol.supports(&op) {
            return Err(Problem::new(
                Site::NodeOp(origin.to_string()),
                format!("protocol `{}` does not support op `{}`", self.protocol.descriptor().name, op.name()),
            ));
        }
        Ok(self.push(name.to_string(), origin, NodeKind::Op(op), inputs, out))
    }

    fn nodes_named(&self, ids: &[u32]) -> Vec<String> {
        ids.iter().map(|&i| self.nodes[i as usize].desc.name.clone()).collect()
    }

    fn expand(
        &mut self,
        name: &str,
        origin: &str,
        lowering: &Lowering,
        inputs: &[u32],
        depth: usize,
    ) -> Result<u32, Problem> {
        let site = Site::Node(origin.to_string());
        if lowering.nodes.is_empty() {
            return Err(Problem::new(site, "lowering produced no nodes"));
        }
        let mut produced: Vec<u32> = Vec::with_capacity(lowering.nodes.len());
        let last = lowering.nodes.len() - 1;
        for (j, ln) in lowering.nodes.iter().enumerate() {
            let mut ids = Vec::with_capacity(ln.inputs.len());
            for (k, r) in ln.inputs.iter().enumerate() {
                ids.push(match r {
                    LRef::Input(i) => *inputs.get(*i).ok_or_else(|| {
                        Problem::new(site.clone(), format!("lowering refers to input {i} of {}", inputs.len()))
                    })?,
                    LRef::Node(p) if *p < j => produced[*p],
                    LRef::Node(p) => {
                        return Err(Problem::new(site.clone(), format!("lowering step {j} refers to later step {p}")));
                    }
                    LRef::Const(t) => self.constant(format!("{name}/{j}.c{k}"), origin, t.clone()),
                });
            }
            let sub = if j == last { name.to_string() } else { format!("{name}/{j}.{}", ln.op.name()) };
            produced.push(self.op(&sub, origin, ln.op.clone(), ids, depth + 1)?);
        }
        Ok(produced[last])
    }
}
