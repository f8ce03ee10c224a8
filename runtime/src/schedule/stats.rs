//! What a party measured for one node.

use serde::Serialize;

/// Measured at one party for one node.
#[derive(Clone, Debug, Default, Serialize, PartialEq)]
pub struct NodeStats {
    /// Online rounds performed.
    pub rounds: u32,
    /// Payload bytes sent to peers.
    pub bytes_sent: u64,
    /// Payload bytes received from peers.
    pub bytes_received: u64,
    /// Dealer material bytes received.
    pub material_bytes: u64,
    /// Seconds from the node becoming ready to finishing.
    pub wall_s: f64,
    /// Seconds waiting for material.
    pub material_wait_s: f64,
}
