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
