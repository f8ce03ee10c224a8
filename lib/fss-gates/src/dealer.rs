//! The fss2pc dealer: walks the plan, tracking the mask of every live wire (or the value of a
//! public one), and deals each gate's material from its own fresh seed.

use crate::fss::SeedRng;
use crate::gates::classify;
use crate::gates::linear::Known;
use mpcflow_sdk::protocol::{Dealer, NodeDesc};
use mpcflow_sdk::{Error, Result};
use std::collections::HashMap;

/// Dealer state for one session.
pub struct FssDealer {
    known: HashMap<u32, Known>,
    /// Threads for key generation.
    threads: usize,
}

impl FssDealer {
    /// A dealer generating keys on `threads` threads.
    pub fn new(threads: usize) -> FssDealer {
        FssDealer { known: HashMap::new(), threads: threads.max(1) }
    }

    fn get(&self, id: u32) -> Result<&Known> {
        self.known.get(&id).ok_or_else(|| Error::internal(format!("dealer has no mask for node {id}")))
    }
}

impl Dealer for FssDealer {
    fn deal(&mut self, node: &NodeDesc, inputs: &[u32], seed: [u8; 32]) -> Result<Vec<Vec<u8>>> {
        let gate =
            classify(node).ok_or_else(|| Error::Unsupported { what: node.kind.label(), plugin: "fss2pc".into() })?;
        check_memory(node, &gate)?;
        let mut rng = SeedRng::from_seed(seed);
        let ins: Vec<&Known> = inputs.iter().map(|&i| self.get(i)).collect::<Result<_>>()?;
        let (material, known) = gate.deal(node, &ins, &mut rng, self.threads)?;
        if let Some(k) = known {
            self.known.insert(node.id, k);
        }
        Ok(material)
    }

    fn forget(&mut self, id: u32) {
        self.known.remove(&id);
    }
}

/// Refuses, with an error, a node whose dealing this machine cannot allocate: both parties'
/// material and a few mask planes of the output (an allocation failure would abort the
/// process). The probe reserves address space only and frees it at once.
fn check_memory(node: &NodeDesc, gate: &crate::gates::Gate) -> Result<()> {
    let cost = gate.cost(node);
    let material: u64 = cost.dealer_bytes.iter().sum();
    let masks = (node.output.numel() as u64).saturating_mul(8 * 4);
    let need = material.saturating_add(masks);
    let Ok(need) = usize::try_from(need) else {
        return Err(exhausted(need));
    };
    let mut probe: Vec<u8> = Vec::new();
    probe.try_reserve_exact(need).map_err(|_| exhausted(need as u64))
}

fn exhausted(bytes: u64) -> Error {
    Error::ResourcesExhausted(format!(
        "dealing it needs about {:.1} GB of memory, which this machine cannot allocate",
        bytes as f64 / 1e9
    ))
}
