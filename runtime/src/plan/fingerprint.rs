//! The plan fingerprint: SHA-256 over a canonical JSON form of everything that must agree
//! between parties (parties, protocol and version, fixed point, network profile, every node with its inputs,
//! shapes and constants). Two processes that derive the same plan get the same hash.

use super::Plan;
use sha2::{Digest, Sha256};

pub(super) fn fingerprint(plan: &Plan) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(b"mpcflow-plan-v1\0");
    let head = serde_json::json!({
        "name": plan.name,
        "parties": plan.parties,
        "protocol": plan.protocol,
        "protocol_version": plan.protocol_version,
        "fixed_point": plan.fixed_point,
        "network": plan.network,
    });
    h.update(head.to_string().as_bytes());
    for n in &plan.nodes {
        let node = serde_json::json!({ "desc": n.desc, "inputs": n.inputs, "local": n.local });
        h.update(node.to_string().as_bytes());
        h.update(b"\n");
    }
    h.finalize().into()
}
