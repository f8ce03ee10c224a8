//! The `fss2pc` protocol: two parties and a dealer, masked wires, function secret sharing.

use crate::dealer::FssDealer;
use crate::gates::classify;
use crate::lowering;
use mpcflow_sdk::protocol::{
    Cost, Dealer, EvalInput, Lowering, NodeDesc, NodeEval, PartyCount, Protocol, ProtocolDescriptor, Tuning,
};
use mpcflow_sdk::shape::TensorInfo;
use mpcflow_sdk::{Error, FixedPoint, Op, Result};

/// The fss2pc protocol plugin, with its session's [`Tuning`].
#[derive(Debug, Default, Clone, Copy)]
pub struct Fss2pc {
    tuning: Tuning,
}

impl Fss2pc {
    /// The protocol with `tuning` (what [`Protocol::tuned`] returns).
    pub fn with_tuning(tuning: Tuning) -> Fss2pc {
        Fss2pc { tuning }
    }
}

impl Protocol for Fss2pc {
    fn descriptor(&self) -> ProtocolDescriptor {
        ProtocolDescriptor {
            needs_dealer: true,
            // What the dealer deals and how the parties read it: processes of two versions
            // refuse each other at the handshake instead of misreading material. 0.2.0: lookups
            // read one-hot shares, and seeds expand to two words per AES block. 0.3.0: in a
            // product with a value one party holds, that party adds `B(x̂, ŷ)`.
            version: "0.3.0".into(),
            ..ProtocolDescriptor::new(
                "fss2pc",
                "two parties and a dealer; masked wires with DCF-based comparisons and exact truncation",
                PartyCount::exactly(2),
            )
        }
    }

    fn supports(&self, op: &Op) -> bool {
        lowering::supported(op)
    }

    fn lower(&self, op: &Op, inputs: &[TensorInfo], fixed_point: FixedPoint) -> Option<Lowering> {
        lowering::lower(op, inputs, fixed_point)
    }

    fn check(&self, node: &NodeDesc) -> std::result::Result<(), String> {
        crate::gates::check(node, "fss2pc")
    }

    fn cost(&self, node: &NodeDesc) -> Cost {
        cost(node)
    }

    fn needs_material(&self, node: &NodeDesc) -> bool {
        classify(node).is_some_and(|g| g.needs_material())
    }

    fn dealer(&self) -> Box<dyn Dealer> {
        Box::new(FssDealer::new(self.tuning.threads))
    }

    fn begin(&self, node: &NodeDesc, input: EvalInput) -> Result<Box<dyn NodeEval>> {
        classify(node).ok_or_else(|| Error::Unsupported { what: node.kind.label(), plugin: "fss2pc".into() })?.begin(
            node,
            input,
            self.tuning.threads,
        )
    }

    fn tuned(&self, tuning: &Tuning) -> Option<std::sync::Arc<dyn Protocol>> {
        crate::pool::set_max_idle(tuning.pool_bytes);
        Some(std::sync::Arc::new(Fss2pc::with_tuning(*tuning)))
    }
}

/// The exact cost of a node (tests hold the runtime's measurements to it).
pub fn cost(node: &NodeDesc) -> Cost {
    classify(node).map_or_else(|| Cost::zero(node.parties), |g| g.cost(node))
}
