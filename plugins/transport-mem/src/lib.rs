//! The `mem` transport: every endpoint of a session in one process, one crossbeam channel per
//! ordered pair of endpoints.
//!
//! Channels from the dealer are bounded by the session's `dealer_window` (backpressure on the
//! offline phase); channels between parties are unbounded, since the scheduler drains them
//! continuously. Each link owns the sending ends of its outgoing channels and the receiving
//! ends of its incoming ones, so when a party's link is dropped its peers see the channel
//! close instead of waiting for a timeout.

use crossbeam_channel::{Receiver, RecvTimeoutError, SendTimeoutError, Sender, bounded, unbounded};
use mpcflow_sdk::transport::{Link, SessionInfo, Transport};
use mpcflow_sdk::{Endpoint, Error, PartyId, Result};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

/// The ends of the channels of one endpoint.
#[derive(Default)]
struct Kit {
    tx: HashMap<Endpoint, Sender<Vec<u8>>>,
    rx: HashMap<Endpoint, Receiver<Vec<u8>>>,
}

/// In-process transport. One instance serves any number of sessions.
#[derive(Default)]
pub struct MemTransport {
    /// Kits not yet taken, by session id and endpoint.
    pending: Mutex<HashMap<String, HashMap<Endpoint, Kit>>>,
}

impl MemTransport {
    /// A transport with no sessions.
    pub fn new() -> Self {
        Self::default()
    }
}

fn endpoints(session: &SessionInfo) -> Vec<Endpoint> {
    // Data owners follow the parties (see `SessionInfo::owners`).
    let n = session.parties.len() + session.owners.len();
    let mut v: Vec<Endpoint> = (0..n).map(|p| Endpoint::Party(PartyId(p as u16))).collect();
    if session.has_dealer {
        v.push(Endpoint::Dealer);
    }
    v
}

fn wire_session(session: &SessionInfo) -> HashMap<Endpoint, Kit> {
    let all = endpoints(session);
    let mut kits: HashMap<Endpoint, Kit> = all.iter().map(|e| (*e, Kit::default())).collect();
    for &from in &all {
        for &to in &all {
            if from == to {
                continue;
            }
            let (tx, rx) = if from == Endpoint::Dealer { bounded(session.dealer_window.max(1)) } else { unbounded() };
            if let Some(k) = kits.get_mut(&from) {
                k.tx.insert(to, tx);
            }
            if let Some(k) = kits.get_mut(&to) {
                k.rx.insert(from, rx);
            }
        }
    }
    kits
}

impl Transport for MemTransport {
    fn name(&self) -> &str {
        "mem"
    }

    fn connect(&self, session: &SessionInfo, me: Endpoint) -> Result<Box<dyn Link>> {
        if !endpoints(session).contains(&me) {
            return Err(Error::Transport(format!("{me} is not an endpoint of session {}", session.id)));
        }
        let mut pending = self.pending.lock().map_err(|_| Error::internal("mem transport lock poisoned"))?;
        let kits = pending.entry(session.id.clone()).or_insert_with(|| wire_session(session));
        let kit = kits
            .remove(&me)
            .ok_or_else(|| Error::Transport(format!("{me} already connected to session {}", session.id)))?;
        if kits.is_empty() {
            pending.remove(&session.id);
        }
        // A send into a full (dealer) channel waits as long as any other wait of the session.
        Ok(Box::new(MemLink { me, kit, send_timeout: session.timeout }))
    }
}

/// One endpoint's channels.
struct MemLink {
    me: Endpoint,
    kit: Kit,
    send_timeout: Duration,
}

impl Link for MemLink {
    fn send(&self, to: Endpoint, frame: Vec<u8>) -> Result<()> {
        let tx = self.kit.tx.get(&to).ok_or_else(|| Error::Transport(format!("{} has no channel to {to}", self.me)))?;
        tx.send_timeout(frame, self.send_timeout).map_err(|e| match e {
            SendTimeoutError::Timeout(_) => {
                Error::Timeout(format!("{to} accepted nothing for {:.1} s", self.send_timeout.as_secs_f64()))
            }
            SendTimeoutError::Disconnected(_) => Error::Transport(format!("{to} closed the channel")),
        })
    }

    fn recv(&self, from: Endpoint, timeout: Duration) -> Result<Vec<u8>> {
        let rx = self
            .kit
            .rx
            .get(&from)
            .ok_or_else(|| Error::Transport(format!("{} has no channel from {from}", self.me)))?;
        rx.recv_timeout(timeout).map_err(|e| match e {
            RecvTimeoutError::Timeout => {
                Error::Timeout(format!("nothing from {from} within {:.1} s", timeout.as_secs_f64()))
            }
            RecvTimeoutError::Disconnected => Error::Transport(format!("{from} closed the channel")),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn session(dealer: bool) -> SessionInfo {
        SessionInfo {
            id: "s".into(),
            parties: vec!["a".into(), "b".into()],
            owners: vec![],
            has_dealer: dealer,
            dealer_window: 1,
            timeout: Duration::from_millis(20),
        }
    }

    #[test]
    fn delivers_in_order_and_reports_close() {
        let t = MemTransport::new();
        let s = session(false);
        let a = t.connect(&s, Endpoint::Party(PartyId(0))).unwrap();
        let b = t.connect(&s, Endpoint::Party(PartyId(1))).unwrap();
        a.send(Endpoint::Party(PartyId(1)), vec![1]).unwrap();
        a.send(Endpoint::Party(PartyId(1)), vec![2]).unwrap();
        assert_eq!(b.recv(Endpoint::Party(PartyId(0)), Duration::from_secs(1)).unwrap(), vec![1]);
        assert_eq!(b.recv(Endpoint::Party(PartyId(0)), Duration::from_secs(1)).unwrap(), vec![2]);
        assert!(matches!(b.recv(Endpoint::Party(PartyId(0)), Duration::from_millis(10)), Err(Error::Timeout(_))));
        drop(a);
        assert!(matches!(b.recv(Endpoint::Party(PartyId(0)), Duration::from_millis(10)), Err(Error::Transport(_))));
        assert!(t.connect(&s, Endpoint::Party(PartyId(0))).is_ok(), "a finished session's id can be reused");
    }

    #[test]
    fn dealer_channel_is_bounded() {
        let t = MemTransport::new();
        let s = session(true);
        let d = t.connect(&s, Endpoint::Dealer).unwrap();
        let a = t.connect(&s, Endpoint::Party(PartyId(0))).unwrap();
        assert!(t.connect(&s, Endpoint::Dealer).is_err(), "an endpoint connects once");
        let _b = t.connect(&s, Endpoint::Party(PartyId(1))).unwrap();
        d.send(Endpoint::Party(PartyId(0)), vec![0]).unwrap();
        assert!(matches!(d.send(Endpoint::Party(PartyId(0)), vec![1]), Err(Error::Timeout(_))), "window of 1 is full");
        a.recv(Endpoint::Dealer, Duration::from_secs(1)).unwrap();
        d.send(Endpoint::Party(PartyId(0)), vec![2]).unwrap();
    }
}
