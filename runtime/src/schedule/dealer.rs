//! The dealer's offline phase: walk the plan in order and stream each node's material to each
//! party. Sends block while a party's bounded channel is full, which is the backpressure that
//! keeps the dealer a bounded distance ahead of the online phase.
//!
//! Each party's frames go out on a sender thread of its own, handed over without a queue (a
//! rendezvous): the dealer generates node `k + 1` while node `k`'s frames are encrypted and
//! written, and the parties' links are written side by side. Over TLS the sends (encryption,
//! socket writes) cost about as much CPU as the key generation, and done in line they left the
//! parties idle while the dealer sent and the dealer idle while it waited on a full socket. It
//! holds at most one node's material more than an in-line dealer: the frames in the senders'
//! hands and the node being generated.
//!
//! Dealing first in phases ([`super::phases`]), the dealer waits for the parties to finish
//! each phase before it deals the next, and marks a phase dealt once its frames are written.

use super::frame::{Frame, Kind};
use super::phases::Phases;
use crate::error::Error;
use crate::plan::Plan;
use mpcflow_sdk::protocol::Protocol;
use mpcflow_sdk::transport::Link;
use mpcflow_sdk::{Endpoint, PartyId};
use serde::Serialize;
use sha2::{Digest, Sha256};
use std::sync::Arc;
use std::time::Instant;

/// What the dealer did.
#[derive(Clone, Debug, Default, Serialize, PartialEq)]
pub struct DealerStats {
    /// Material bytes sent to each party, per node (indexed by node id, then party).
    pub bytes: Vec<Vec<u64>>,
    /// Seconds spent generating and sending (dealing first in phases: from the start of each
    /// phase's dealing to the last of its frames written, added up).
    pub wall_s: f64,
}

/// A fresh master seed from the operating system.
pub fn os_seed() -> Result<[u8; 32], Error> {
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed).map_err(|e| Error::Dealer(format!("the operating system gave no randomness: {e}")))?;
    Ok(seed)
}

/// The seed of one node: SHA-256 of the master seed and the node id (a PRF keyed by the seed).
fn node_seed(master: &[u8; 32], node: u32) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(b"mpcflow-dealer-node-seed\0");
    h.update(master);
    h.update(node.to_le_bytes());
    h.finalize().into()
}

/// Tells every party that no more material will come (best effort: a party that has already
/// gone needs no goodbye).
pub fn end_of_material(link: &dyn Link, parties: usize) {
    let bye = Frame::control(Kind::Bye).encode();
    for p in 0..parties {
        let _ = link.send(Endpoint::Party(PartyId(p as u16)), bye.clone());
    }
}

/// One item for a sender thread: a frame with the node it belongs to, or `None`, which it
/// takes only once it has written every frame before (the channel is a rendezvous).
type Outgoing = Option<(usize, Vec<u8>)>;

/// Runs the dealer (blocking; call from a dedicated thread). With `phases`, it deals one phase
/// at a time, each once the parties have finished the one before.
pub fn run_dealer(
    plan: &Plan,
    protocol: &Arc<dyn Protocol>,
    link: &dyn Link,
    master: [u8; 32],
    phases: Option<&Phases>,
) -> Result<DealerStats, Error> {
    let start = Instant::now();
    let mut phases_dealing = std::time::Duration::ZERO;
    let parties = plan.parties.len();
    // The first failure of a sender thread, which ends the run.
    let failed: std::sync::Mutex<Option<Error>> = std::sync::Mutex::new(None);
    let mut stats = std::thread::scope(|scope| {
        let mut senders = Vec::with_capacity(parties);
        for p in 0..parties {
            let (tx, rx) = std::sync::mpsc::sync_channel::<Outgoing>(0);
            let failed = &failed;
            let spawned = std::thread::Builder::new()
                .name(format!("dealer-tx-{p}"))
                .spawn_scoped(scope, move || send_all(plan, link, p, rx, failed))
                .map_err(|e| Error::Dealer(format!("cannot start a sender thread: {e}")))?;
            senders.push((tx, spawned));
        }
        let txs: Vec<_> = senders.iter().map(|(tx, _)| tx.clone()).collect();
        let dealt = deal_all(plan, protocol, master, &txs, phases, &mut phases_dealing);
        // Ends the senders once they have written what they hold.
        drop(txs);
        for (p, (tx, handle)) in senders.into_iter().enumerate() {
            drop(tx);
            if handle.join().is_err()
                && let Ok(mut f) = failed.lock()
            {
                let party = plan.parties.get(p).map_or("?", String::as_str);
                f.get_or_insert(Error::Dealer(format!("the thread sending material to {party} panicked")));
            }
        }
        dealt
    });
    // A sender's failure first: it stopped the dealing (which then returns what it dealt), and
    // when a party has gone, its own failure is the cause the run reports, this its echo; a
    // deal error after a party has gone is not the first cause either.
    if let Some(e) = failed.lock().ok().and_then(|mut f| f.take()) {
        return Err(e);
    }
    if let Ok(s) = &mut stats {
        end_of_material(link, parties);
        s.wall_s = if phases.is_some() { phases_dealing } else { start.elapsed() }.as_secs_f64();
    }
    stats
}

/// Whether every sender has written every frame handed to it (`false`: one has stopped).
fn written(senders: &[std::sync::mpsc::SyncSender<Outgoing>]) -> bool {
    senders.iter().all(|tx| tx.send(None).is_ok())
}

/// Deals every node in plan order, handing each party's frame to its sender; stops early once
/// a sender has stopped (its failure is the run's error) or the phases are closed. Dealing in
/// phases, adds up in `dealing` the time from each phase's start to its frames written.
fn deal_all(
    plan: &Plan,
    protocol: &Arc<dyn Protocol>,
    master: [u8; 32],
    senders: &[std::sync::mpsc::SyncSender<Outgoing>],
    phases: Option<&Phases>,
    dealing: &mut std::time::Duration,
) -> Result<DealerStats, Error> {
    let parties = plan.parties.len();
    let mut stats = DealerStats { bytes: vec![vec![0; parties]; plan.nodes.len()], wall_s: 0.0 };
    let mut dealer = protocol.dealer();
    let mut uses_left = plan.wire_reader_counts();
    let mut phase_start = Instant::now();
    for (id, node) in plan.nodes.iter().enumerate() {
        if let Some(phases) = phases {
            if phases.is_closed() {
                return Ok(stats);
            }
            if phases.starts_later_phase(id) {
                let done = phases.phase_of(id - 1);
                if !written(senders) {
                    return Ok(stats);
                }
                // Timed before the parties may start, which may take the dealer's core.
                *dealing += phase_start.elapsed();
                phases.mark_dealt(done);
                if !phases.wait_completed(done) {
                    return Ok(stats);
                }
                phase_start = Instant::now();
            }
        }
        // A party computes its local nodes in the clear: the protocol never sees them, and the
        // input gate of a local value reads nothing the dealer knows.
        if node.local.is_some() {
            continue;
        }
        let inputs: &[u32] = if node.shares_local_value() { &[] } else { &node.inputs };
        let span = tracing::debug_span!("deal", node = %node.desc.name);
        let _g = span.enter();
        let material = dealer
            .deal(&node.desc, inputs, node_seed(&master, id as u32))
            .map_err(|e| Error::Dealer(format!("node `{}`: {e}", node.desc.name)))?;
        for &j in inputs {
            uses_left[j as usize] -= 1;
            if uses_left[j as usize] == 0 {
                dealer.forget(j);
            }
        }
        if uses_left[id] == 0 {
            dealer.forget(id as u32);
        }
        if !node.needs_material {
            if material.iter().any(|m| !m.is_empty()) {
                return Err(Error::Dealer(format!(
                    "node `{}`: protocol dealt material for a node that needs none",
                    node.desc.name
                )));
            }
            continue;
        }
        if material.len() != parties {
            return Err(Error::Dealer(format!(
                "node `{}`: protocol produced material for {} parties, expected {parties}",
                node.desc.name,
                material.len()
            )));
        }
        for ((p, m), tx) in material.into_iter().enumerate().zip(senders) {
            stats.bytes[id][p] = m.len() as u64;
            let frame = Frame::encode_owned(Kind::Material, id as u32, 0, m);
            if tx.send(Some((id, frame))).is_err() {
                // That party's sender has stopped on a failure, which the caller reports.
                return Ok(stats);
            }
        }
    }
    if let Some(phases) = phases
        && written(senders)
    {
        *dealing += phase_start.elapsed();
        phases.mark_dealt(phases.count() - 1);
    }
    Ok(stats)
}

/// A sender thread: writes party `p`'s frames as they come; records the first failure and
/// stops (dropping its receiver, which stops the dealing).
fn send_all(
    plan: &Plan,
    link: &dyn Link,
    p: usize,
    frames: std::sync::mpsc::Receiver<Outgoing>,
    failed: &std::sync::Mutex<Option<Error>>,
) {
    for (id, frame) in frames.into_iter().flatten() {
        if let Err(e) = link.send(Endpoint::Party(PartyId(p as u16)), frame) {
            let name = plan.nodes.get(id).map_or("?", |n| n.desc.name.as_str());
            let party = plan.parties.get(p).map_or("?", String::as_str);
            let message = format!("sending material of node `{name}` to {party}: {e}");
            let error = match e {
                // The party stopped taking material: its own failure is the cause, and ranks
                // before this echo of it.
                mpcflow_sdk::Error::Transport(_) | mpcflow_sdk::Error::Timeout(_) => {
                    Error::Transport { party: mpcflow_sdk::DEALER.into(), message }
                }
                _ => Error::Dealer(message),
            };
            if let Ok(mut f) = failed.lock() {
                f.get_or_insert(error);
            }
            return;
        }
    }
}
