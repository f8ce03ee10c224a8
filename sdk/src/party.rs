//! Who takes part: parties, numbered in the order the pipeline file lists them, and the dealer.

use serde::{Deserialize, Serialize};

/// A party's index in the session's party list (`parties: [alice, bob]` makes alice 0).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct PartyId(pub u16);

impl PartyId {
    /// The index as a `usize`.
    pub fn index(self) -> usize {
        self.0 as usize
    }
}

impl std::fmt::Display for PartyId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "party {}", self.0)
    }
}

/// The dealer's name wherever endpoints are named (deployment files, certificates, errors);
/// no party may take it.
pub const DEALER: &str = "dealer";

/// One end of a channel: a party, or the dealer that produces offline material.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Endpoint {
    /// A computing party.
    Party(PartyId),
    /// The trusted dealer (offline phase only).
    Dealer,
}

impl std::fmt::Display for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Endpoint::Party(p) => p.fmt(f),
            Endpoint::Dealer => f.write_str(DEALER),
        }
    }
}
