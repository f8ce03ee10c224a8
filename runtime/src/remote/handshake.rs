//! The session handshake between processes, run over the transport before any node.
//!
//! Two rounds, each a `Hello` frame from every endpoint to every endpoint it talks to:
//! 1. **Introduction**: session format and mpcflow version, the endpoint's name, the
//!    protocol and its version, the pipeline digest with its named parts, and the shapes of
//!    the sender's own inputs (public: the plan depends on them). Each side checks every
//!    peer's introduction against its own; then all sides plan with the union of input shapes.
//! 2. **Agreement**: the fingerprint of the plan each side built. Equal fingerprints mean that
//!    every node, shape, lowering and protocol version agree, so the online phase can start.
//!
//! Any mismatch stops the process with an error that says what differs and between whom, and
//! the peers are told (an `Abort` frame with the reason), so every process stops with it.
//! Identity itself is the transport's job (the TLS certificate names the endpoint); the
//! introduction only checks that the peer calls itself what the transport connected.

use super::digest::{self, Part};
use crate::error::Error;
use crate::schedule::frame::{Frame, Kind};
use mpcflow_sdk::Endpoint;
use mpcflow_sdk::transport::Link;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

/// Version of the session format: the handshake and the runtime's frames. Peers must agree.
pub const WIRE_VERSION: u32 = 1;
/// Marks an mpcflow introduction.
const MAGIC: &str = "mpcflow-session";
/// Largest introduction accepted (it lists every part of the pipeline).
const MAX_HELLO: usize = 16 << 20;

/// Round 1: who the sender is and what it is about to run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Introduction {
    /// Always `MAGIC`.
    pub magic: String,
    /// [`WIRE_VERSION`] of the sender.
    pub wire: u32,
    /// The sender's mpcflow version.
    pub mpcflow: String,
    /// Endpoint name: a party's name or `dealer`.
    pub name: String,
    /// Protocol name and version.
    pub protocol: String,
    /// Version of the protocol plugin.
    pub protocol_version: String,
    /// Digest of the sender's pipeline.
    pub graph: String,
    /// The pipeline's named parts, to say what differs.
    pub parts: Vec<Part>,
    /// Shapes of the sender's own private inputs, and a party's also those of the data owners'
    /// inputs, which it passes on (an owner's own introduction carries only its own).
    pub inputs: BTreeMap<String, Vec<usize>>,
    /// The network profile the sender plans for (`--network`); every endpoint must agree.
    #[serde(default)]
    pub network: mpcflow_sdk::Network,
}

/// Whether `v` reads as a release's version: `MAJOR.MINOR.PATCH`, each a number, then maybe a
/// `-suffix` of letters, digits, dots and dashes (as Cargo writes it). Releases of one session
/// format work together, so another version is no reason to refuse; a malformed one is.
pub fn is_release_version(v: &str) -> bool {
    // SemVer build metadata (`+abc`) may follow, made of the same characters as a suffix.
    let (v, build) = v.split_once('+').unwrap_or((v, "a"));
    if build.is_empty() || !build.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-') {
        return false;
    }
    let (core, suffix) = v.split_once('-').unwrap_or((v, "a"));
    let parts: Vec<&str> = core.split('.').collect();
    parts.len() == 3
        && parts.iter().all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
        && !suffix.is_empty()
        && suffix.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-')
}

impl Introduction {
    /// This endpoint's introduction.
    pub fn new(
        name: &str,
        protocol: (&str, &str),
        parts: Vec<Part>,
        inputs: BTreeMap<String, Vec<usize>>,
        network: mpcflow_sdk::Network,
    ) -> Introduction {
        Introduction {
            magic: MAGIC.into(),
            wire: WIRE_VERSION,
            mpcflow: env!("CARGO_PKG_VERSION").into(),
            name: name.into(),
            protocol: protocol.0.into(),
            protocol_version: protocol.1.into(),
            graph: digest::digest(&parts),
            parts,
            inputs,
            network,
        }
    }
}

/// One peer: its endpoint and the name the deployment gives it.
#[derive(Clone, Debug)]
pub struct Peer {
    /// Endpoint.
    pub endpoint: Endpoint,
    /// Its name.
    pub name: String,
}

/// The handshake of one endpoint with its peers over an established link. Its calls block:
/// run them off the async workers.
#[derive(Clone)]
pub struct Handshake {
    /// This endpoint's name.
    pub me: String,
    /// Its link.
    pub link: Arc<dyn Link>,
    /// Everyone it talks to.
    pub peers: Vec<Peer>,
    /// Bound on each wait.
    pub timeout: Duration,
}

impl Handshake {
    fn refuse(&self, peer: &str, message: String) -> Error {
        Error::Handshake { party: self.me.clone(), peer: peer.to_string(), message }
    }

    /// Tells every peer why this endpoint stops (best effort: [`Error::peer_reason`], never the
    /// full message) and returns `e`.
    ///
    /// Each peer is told on a thread of its own, and this waits for them only briefly: a
    /// stalled peer's full socket must not hold this endpoint's exit for another timeout.
    pub fn abort(&self, e: Error) -> Error {
        const TELL_WAIT: Duration = Duration::from_millis(500);
        let frame = Frame::abort(&e.peer_reason());
        let (told, done) = std::sync::mpsc::channel();
        for p in &self.peers {
            let (link, frame, tell, to) = (self.link.clone(), frame.clone(), told.clone(), p.endpoint);
            let spawned = std::thread::Builder::new().name("abort".into()).spawn(move || {
                let _ = link.send(to, frame);
                let _ = tell.send(());
            });
            if spawned.is_err() {
                let _ = self.link.send(p.endpoint, Frame::abort(&e.peer_reason()));
                let _ = told.send(());
            }
        }
        drop(told);
        let deadline = std::time::Instant::now() + TELL_WAIT;
        for _ in &self.peers {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            if done.recv_timeout(left).is_err() {
                break;
            }
        }
        e
    }

    /// Sends one handshake frame to every peer. A failed send is returned per peer rather than
    /// at once: a peer that already left may have left its reason in our inbox.
    fn send_all(&self, round: u16, payload: &[u8]) -> HashMap<String, Error> {
        let frame = Frame { kind: Kind::Hello, node: 0, round, payload: payload.to_vec() }.encode();
        let mut failed = HashMap::new();
        for p in &self.peers {
            if let Err(e) = self.link.send(p.endpoint, frame.clone()) {
                let e = Error::Transport {
                    party: self.me.clone(),
                    message: format!("sending the session handshake to {}: {e}", p.name),
                };
                failed.insert(p.name.clone(), e);
            }
        }
        failed
    }

    /// The peer's next handshake frame; if none comes, the earlier failure to send to it
    /// (when there was one) explains more than the empty channel.
    fn recv_after(&self, peer: &Peer, round: u16, send_failed: &mut HashMap<String, Error>) -> Result<Vec<u8>, Error> {
        match self.recv(peer, round) {
            Err(e @ Error::Transport { .. }) => Err(send_failed.remove(&peer.name).unwrap_or(e)),
            r => r,
        }
    }

    fn recv(&self, peer: &Peer, round: u16) -> Result<Vec<u8>, Error> {
        let bytes = self.link.recv(peer.endpoint, self.timeout).map_err(|e| Error::Transport {
            party: self.me.clone(),
            message: format!("waiting for the session handshake of {}: {e}", peer.name),
        })?;
        let frame =
            Frame::decode(bytes).map_err(|e| self.refuse(&peer.name, format!("sent a malformed frame: {e}")))?;
        match frame.kind {
            Kind::Hello if frame.payload.len() > MAX_HELLO => Err(self.refuse(
                &peer.name,
                format!("sent a handshake of {} bytes, more than the limit of {MAX_HELLO}", frame.payload.len()),
            )),
            Kind::Hello if frame.round == round => Ok(frame.payload),
            Kind::Hello => {
                Err(self.refuse(&peer.name, format!("sent handshake round {}, expected round {round}", frame.round)))
            }
            Kind::Abort => Err(Error::PeerFailed {
                party: self.me.clone(),
                peer: peer.name.clone(),
                reason: crate::error::from_peer(&frame.payload),
            }),
            k => Err(self.refuse(&peer.name, format!("sent a {k:?} frame before the session was set up"))),
        }
    }

    /// Round 1: sends `mine`, receives every peer's introduction and checks it against `mine`.
    /// Returns the peers' introductions in `peers` order.
    pub fn introduce(&self, mine: &Introduction) -> Result<Vec<Introduction>, Error> {
        let bytes =
            serde_json::to_vec(mine).map_err(|e| Error::Internal(format!("cannot encode the handshake: {e}")))?;
        let mut send_failed = self.send_all(0, &bytes);
        let mut out = vec![];
        for peer in &self.peers {
            let theirs = self.recv_after(peer, 0, &mut send_failed)?;
            out.push(self.check(peer, mine, &theirs)?);
        }
        Ok(out)
    }

    fn check(&self, peer: &Peer, mine: &Introduction, bytes: &[u8]) -> Result<Introduction, Error> {
        // Versions first, from a loose parse: a newer peer's introduction may not fit our struct.
        let loose: serde_json::Value = serde_json::from_slice(bytes)
            .map_err(|e| self.refuse(&peer.name, format!("sent an unreadable handshake: {e}")))?;
        if loose.get("magic").and_then(|m| m.as_str()) != Some(MAGIC) {
            return Err(self.refuse(&peer.name, "is not an mpcflow session endpoint".into()));
        }
        let wire = loose.get("wire").and_then(|w| w.as_u64());
        let version = loose.get("mpcflow").and_then(|v| v.as_str()).unwrap_or("?");
        if wire != Some(u64::from(WIRE_VERSION)) {
            return Err(self.refuse(
                &peer.name,
                format!(
                    "runs mpcflow {version} with session format {}, {} runs mpcflow {} with format {WIRE_VERSION}: \
                     run the same mpcflow release on every host",
                    wire.map_or("?".into(), |w| w.to_string()),
                    self.me,
                    mine.mpcflow
                ),
            ));
        }
        let theirs: Introduction = serde_json::from_value(loose)
            .map_err(|e| self.refuse(&peer.name, format!("sent an unreadable handshake: {e}")))?;
        if !is_release_version(&theirs.mpcflow) {
            return Err(self.refuse(&peer.name, "sent a handshake with a malformed mpcflow version".into()));
        }
        if theirs.name != peer.name {
            return Err(self.refuse(
                &peer.name,
                format!("introduced itself as `{}` on the connection authenticated as `{}`", theirs.name, peer.name),
            ));
        }
        if theirs.graph != mine.graph {
            return Err(self.refuse(
                &peer.name,
                format!(
                    "runs a different pipeline: {}",
                    digest::describe_difference(&self.me, &mine.parts, &peer.name, &theirs.parts)
                ),
            ));
        }
        if theirs.network != mine.network {
            return Err(self.refuse(
                &peer.name,
                format!(
                    "plans for the `{}` network and {} for `{}`: give every process the same --network",
                    theirs.network, self.me, mine.network
                ),
            ));
        }
        if (theirs.protocol.as_str(), theirs.protocol_version.as_str())
            != (mine.protocol.as_str(), mine.protocol_version.as_str())
        {
            return Err(self.refuse(
                &peer.name,
                format!(
                    "runs protocol {} {}, {} runs {} {} (mpcflow {} and {})",
                    theirs.protocol,
                    theirs.protocol_version,
                    self.me,
                    mine.protocol,
                    mine.protocol_version,
                    theirs.mpcflow,
                    mine.mpcflow
                ),
            ));
        }
        Ok(theirs)
    }

    /// Round 2: sends this endpoint's plan fingerprint and checks that every peer planned the same.
    pub fn agree(&self, fingerprint: &str, mpcflow_of: &HashMap<String, String>) -> Result<(), Error> {
        let mut send_failed = self.send_all(1, fingerprint.as_bytes());
        for peer in &self.peers {
            let theirs = self.recv_after(peer, 1, &mut send_failed)?;
            if theirs != fingerprint.as_bytes() {
                // Show at most a fingerprint's length of what came.
                let theirs: String = String::from_utf8_lossy(&theirs).chars().take(64).collect();
                return Err(self.refuse(
                    &peer.name,
                    format!(
                        "planned differently: plan fingerprint {} at {}, {fingerprint} at {} (same pipeline and \
                         input shapes, so the planners differ: mpcflow {} and {})",
                        theirs,
                        peer.name,
                        self.me,
                        mpcflow_of.get(&peer.name).map_or("?", String::as_str),
                        env!("CARGO_PKG_VERSION")
                    ),
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mpcflow_sdk::PartyId;
    use mpcflow_sdk::transport::{SessionInfo, Transport};

    #[test]
    fn release_versions_are_three_numbers_and_a_plain_suffix() {
        for ok in [
            "0.1.0",
            "12.0.345",
            "1.2.3-rc.1",
            "0.1.0-dev-2",
            "0.1.0+abc.7",
            "1.0.0-rc.1+g1f2",
            env!("CARGO_PKG_VERSION"),
        ] {
            assert!(is_release_version(ok), "{ok}");
        }
        for bad in
            ["0 1.0", "0.1", "0.1.0.0", "0..1", "v0.1.0", "0.1.0-", "0.1.0-a b", "", "0.1.x", "0.1.0+", "0.1.0+a b"]
        {
            assert!(!is_release_version(bad), "{bad}");
        }
    }

    /// alice and bob connected over `mem`, as handshakes.
    fn pair() -> (Handshake, Handshake) {
        let t = mpcflow_transport_mem::MemTransport::new();
        let info = SessionInfo {
            id: "t".into(),
            parties: vec!["alice".into(), "bob".into()],
            owners: vec![],
            has_dealer: false,
            dealer_window: 4,
            timeout: Duration::from_secs(5),
        };
        let (a, b) = (Endpoint::Party(PartyId(0)), Endpoint::Party(PartyId(1)));
        let hs = |me: &str, e, peer: &str, pe| Handshake {
            me: me.into(),
            link: Arc::from(t.connect(&info, e).unwrap()),
            peers: vec![Peer { endpoint: pe, name: peer.into() }],
            timeout: Duration::from_secs(5),
        };
        (hs("alice", a, "bob", b), hs("bob", b, "alice", a))
    }

    #[test]
    fn different_plan_fingerprints_are_refused_on_both_sides() {
        let (a, b) = pair();
        let none = HashMap::new();
        let other = std::thread::spawn(move || b.agree("f00d", &HashMap::new()));
        let mine = a.agree("beef", &none).unwrap_err().to_string();
        assert!(
            mine.starts_with("alice: cannot run with bob: bob planned differently: plan fingerprint f00d at bob"),
            "{mine}"
        );
        let theirs = other.join().unwrap().unwrap_err().to_string();
        assert!(theirs.contains("plan fingerprint beef at alice, f00d at bob"), "{theirs}");
    }

    #[test]
    fn a_newer_session_format_is_named_with_both_versions() {
        let (a, b) = pair();
        let parts = vec![];
        let mine = Introduction::new("alice", ("p", "1"), parts.clone(), BTreeMap::new(), Default::default());
        let mut newer =
            serde_json::to_value(Introduction::new("bob", ("p", "1"), parts, BTreeMap::new(), Default::default()))
                .unwrap();
        newer["wire"] = serde_json::json!(WIRE_VERSION + 1);
        newer["mpcflow"] = serde_json::json!("9.9.9");
        let frame = Frame { kind: Kind::Hello, node: 0, round: 0, payload: serde_json::to_vec(&newer).unwrap() };
        b.link.send(Endpoint::Party(PartyId(0)), frame.encode()).unwrap();
        let e = a.introduce(&mine).unwrap_err().to_string();
        assert!(e.contains("bob runs mpcflow 9.9.9 with session format 2, alice runs mpcflow"), "{e}");
    }

    #[test]
    fn another_network_profile_is_named_with_both() {
        let (a, b) = pair();
        let mine = Introduction::new("alice", ("p", "1"), vec![], BTreeMap::new(), mpcflow_sdk::Network::Lan);
        let theirs = Introduction::new("bob", ("p", "1"), vec![], BTreeMap::new(), mpcflow_sdk::Network::Wan);
        let frame = Frame { kind: Kind::Hello, node: 0, round: 0, payload: serde_json::to_vec(&theirs).unwrap() };
        b.link.send(Endpoint::Party(PartyId(0)), frame.encode()).unwrap();
        let e = a.introduce(&mine).unwrap_err().to_string();
        assert!(
            e.contains("bob plans for the `wan` network and alice for `lan`: give every process the same --network"),
            "{e}"
        );
    }

    #[test]
    fn an_abort_during_the_handshake_names_the_peer_and_its_reason() {
        let (a, b) = pair();
        b.abort(Error::Dealer("out of disk writing /home/bob/material".into()));
        let e = a.agree("beef", &HashMap::new()).unwrap_err().to_string();
        assert!(e.contains("alice: stopped because bob failed: the dealer failed"), "{e}");
        // The category crosses, the message (with its local path) stays with bob.
        assert!(!e.contains("out of disk") && !e.contains("/home"), "{e}");
    }
}
