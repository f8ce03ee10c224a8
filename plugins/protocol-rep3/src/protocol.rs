//! The `rep3` protocol plugin: descriptor, planning hooks and node evaluation.

use crate::gates::classify;
use mpcflow_fss_gates::lowering;
use mpcflow_sdk::protocol::{
    Cost, EvalInput, Lowering, NodeDesc, NodeEval, PartyCount, Protocol, ProtocolDescriptor, Tuning,
};
use mpcflow_sdk::shape::TensorInfo;
use mpcflow_sdk::{Error, FixedPoint, Op, Result};

/// The rep3 protocol plugin, with its session's [`Tuning`].
#[derive(Debug, Default, Clone, Copy)]
pub struct Rep3 {
    tuning: Tuning,
}

impl Rep3 {
    /// The protocol with `tuning` (what [`Protocol::tuned`] returns).
    pub fn with_tuning(tuning: Tuning) -> Rep3 {
        Rep3 { tuning }
    }
}

impl Protocol for Rep3 {
    fn descriptor(&self) -> ProtocolDescriptor {
        ProtocolDescriptor::new(
            "rep3",
            "three computing parties, honest majority, no dealer; replicated shares, comparisons by a bit circuit, truncations and tables dealt by one party to the other two",
            PartyCount::exactly(crate::share::PARTIES),
        )
    }

    fn supports(&self, op: &Op) -> bool {
        lowering::supported(op)
    }

    fn lower(&self, op: &Op, inputs: &[TensorInfo], fixed_point: FixedPoint) -> Option<Lowering> {
        // No point functions here: one-hot rows come from equality tests with the classes.
        if let Op::OneHot { depth } = op {
            return lowering::onehot_by_equalities(*depth, inputs, fixed_point);
        }
        lowering::lower(op, inputs, fixed_point)
    }

    fn check(&self, node: &NodeDesc) -> std::result::Result<(), String> {
        if classify(node).is_some() {
            return Ok(());
        }
        // rep3 computes what the fss2pc gates compute: their refusal says why.
        let inner = crate::gates::assisted::for_evaluators(node);
        mpcflow_fss_gates::gates::check(&inner, "rep3")
            .and(Err(format!("rep3 has no gate for {} on these inputs", node.kind.label())))
    }

    fn cost(&self, node: &NodeDesc) -> Cost {
        cost(node)
    }

    fn begin(&self, node: &NodeDesc, input: EvalInput) -> Result<Box<dyn NodeEval>> {
        let gate =
            classify(node).ok_or_else(|| Error::Unsupported { what: node.kind.label(), plugin: "rep3".into() })?;
        if !input.material.is_empty() {
            return Err(Error::Material("rep3 has no dealer, yet this node was given dealer material".into()));
        }
        gate.begin(node, input, self.tuning.threads)
    }

    fn tuned(&self, tuning: &Tuning) -> Option<std::sync::Arc<dyn Protocol>> {
        mpcflow_fss_gates::pool::set_max_idle(tuning.pool_bytes);
        Some(std::sync::Arc::new(Rep3::with_tuning(*tuning)))
    }
}

/// The exact cost of a node (tests hold the runtime's measurements to it).
pub fn cost(node: &NodeDesc) -> Cost {
    classify(node).map_or_else(|| Cost::zero(node.parties), |g| g.cost(node))
}
