//! Data owners in their own processes (`mpcflow owner`), and the parties' side of them.
//!
//! What an owner sends and receives is explained in [`crate::owners`]; here is how it travels.
//! An owner is endpoint `Party(parties + j)` of the transport and connects to the computing
//! parties only (not to the dealer, nor to other owners).
//!
//! 1. The owner and each party exchange introductions (the handshake's round 0: versions,
//!    protocol, pipeline digest, and the owner's input shapes), before the parties and the
//!    dealer handshake among themselves. A party passes the owners' input shapes on in its own
//!    introduction, so that the dealer and the other parties plan with them; two parties given
//!    different shapes by one owner refuse the session, naming it.
//! 2. The owner sends each party an [`OWNER_NODE`] message with that party's key, and the last
//!    party one more per input: the words of the input minus the other parties' streams, in
//!    the order the pipeline declares the inputs.
//! 3. The parties plan, agree and run. From the owners' introductions on, each sends the owner
//!    `Alive` every third of the timeout, and an `Abort` with its reason if anything fails.
//! 4. Each party sends the owner one [`OWNER_NODE`] message with the masked outputs revealed
//!    to it (dtype, shape, words), and waits for the owner's `Bye`. The owner checks that every
//!    party sent the same bytes, removes the masks and says `Bye`.
//!
//! An owner does not plan: it cannot (it lacks the other owners' shapes), and it need not, as
//! every party checks the plan with the others and the owner checks the pipeline digest.

use super::handshake::{Handshake, Introduction, Peer};
use super::{Setup, joined, tell};
use crate::error::{Error, Problem, Site};
use crate::owners::{self, OwnerIo, OwnerKeys, OwnerOutput};
use crate::plan::Plan;
use crate::schedule::frame::{Frame, Kind};
use mpcflow_sdk::graph::GraphSpec;
use mpcflow_sdk::transport::Transport;
use mpcflow_sdk::{DType, Endpoint, PartyId, Tensor};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The node id of the frames between owners and parties (no plan node has it).
pub const OWNER_NODE: u32 = u32::MAX;

/// What an owner process ends with.
#[derive(Debug)]
pub struct OwnerRun {
    /// Outputs revealed to this owner: (name, value), in graph order.
    pub outputs: Vec<(String, Tensor)>,
    /// Seconds from the start to the end of the run.
    pub wall_s: f64,
}

/// The owners as peers of a party.
pub(super) fn owner_peers(spec: &GraphSpec) -> Vec<Peer> {
    let k = spec.parties.len();
    spec.owners
        .iter()
        .enumerate()
        .map(|(j, n)| Peer { endpoint: Endpoint::Party(PartyId((k + j) as u16)), name: n.clone() })
        .collect()
}

/// The computing parties as peers of an owner.
fn party_peers(spec: &GraphSpec) -> Vec<Peer> {
    (0..spec.parties.len())
        .map(|i| Peer { endpoint: Endpoint::Party(PartyId(i as u16)), name: spec.parties[i].clone() })
        .collect()
}

/// At a party: the owners' introductions (round 0); returns their input shapes. Each owner
/// must bring exactly its declared inputs.
pub(super) async fn introduce_owners(
    hs: &Handshake,
    spec: &GraphSpec,
    mine: Introduction,
) -> Result<BTreeMap<String, Vec<usize>>, Error> {
    let h = hs.clone();
    let theirs = tokio::task::spawn_blocking(move || h.introduce(&mine)).await.map_err(joined)??;
    let mut shapes = BTreeMap::new();
    for (peer, intro) in hs.peers.iter().zip(&theirs) {
        let declared: Vec<&str> =
            spec.inputs.iter().filter(|i| i.owner == peer.name).map(|i| i.name.as_str()).collect();
        for (input, shape) in &intro.inputs {
            if !declared.contains(&input.as_str()) {
                return Err(hs.abort(Error::Handshake {
                    party: hs.me.clone(),
                    peer: peer.name.clone(),
                    message: format!("brought `{input}`, which is not one of its inputs ({})", declared.join(", ")),
                }));
            }
            shapes.insert(input.clone(), shape.clone());
        }
        let missing: Vec<&str> = declared.iter().copied().filter(|i| !intro.inputs.contains_key(*i)).collect();
        if !missing.is_empty() {
            return Err(hs.abort(Error::Handshake {
                party: hs.me.clone(),
                peer: peer.name.clone(),
                message: format!("brought no value for its input(s) {}", missing.join(", ")),
            }));
        }
    }
    Ok(shapes)
}

/// At party `me` (index `p`): every owner's message, turned into this party's share and mask
/// inputs.
pub(super) async fn receive_shares(hs: &Handshake, plan: &Plan, p: usize) -> Result<HashMap<String, Tensor>, Error> {
    let io = plan.owner_io.clone();
    let last = p + 1 == plan.parties.len();
    let h = hs.clone();
    let parties = plan.parties.clone();
    let got = tokio::task::spawn_blocking(move || -> Result<HashMap<String, Tensor>, Error> {
        let mut keys = HashMap::new();
        let mut words = HashMap::new();
        for peer in &h.peers {
            let bad = |m: &str| h.refuse_owner(&peer.name, m);
            let key = recv_owner_frame(&h, peer, h.timeout)?;
            keys.insert(
                peer.name.clone(),
                <[u8; 32]>::try_from(key.as_slice()).map_err(|_| bad("sent a malformed key"))?,
            );
            if last {
                for i in io.inputs.iter().filter(|i| i.owner == peer.name) {
                    let n = mpcflow_sdk::tensor::numel(&i.shape);
                    let w = recv_owner_frame(&h, peer, h.timeout)?;
                    if w.len() != 8 * n {
                        return Err(bad(&format!("sent {} bytes for `{}`, which has {n} elements", w.len(), i.name)));
                    }
                    let data = w.chunks_exact(8).map(|c| u64::from_le_bytes(c.try_into().unwrap_or([0; 8]))).collect();
                    words.insert(i.name.clone(), Tensor { dtype: i.dtype, shape: i.shape.clone(), data });
                }
            }
        }
        owners::party_tensors(&io, &parties, p, &keys, &words)
    });
    got.await.map_err(joined)?
}

/// Sends `Alive` to the owners every third of the timeout until the returned sender is
/// dropped.
pub(super) fn heartbeat(hs: &Handshake) -> std::sync::mpsc::Sender<()> {
    let (stop, stopped) = std::sync::mpsc::channel::<()>();
    let (link, peers, every) = (hs.link.clone(), hs.peers.clone(), (hs.timeout / 3).max(Duration::from_millis(20)));
    let _ = std::thread::Builder::new().name("owner-alive".into()).spawn(move || {
        while let Err(std::sync::mpsc::RecvTimeoutError::Timeout) = stopped.recv_timeout(every) {
            for p in &peers {
                let _ = link.send(p.endpoint, Frame::control(Kind::Alive).encode());
            }
        }
    });
    stop
}

/// At a party after the run: each owner's masked outputs (`revealed`: masked name → value),
/// then the owner's `Bye`.
pub(super) async fn deliver_outputs(
    hs: &Handshake,
    io: &OwnerIo,
    revealed: &HashMap<String, Tensor>,
) -> Result<(), Error> {
    let mut messages = vec![];
    for peer in &hs.peers {
        let mut payload = vec![];
        for o in io.outputs.iter().filter(|o| o.owner == peer.name) {
            let name = owners::masked_name(&o.name, &o.owner);
            let t = revealed.get(&name).ok_or_else(|| Error::Internal(format!("no `{name}` to send")))?;
            encode_output(&mut payload, o, t);
        }
        messages.push((peer.clone(), payload));
    }
    let h = hs.clone();
    let sent = tokio::task::spawn_blocking(move || -> Result<(), Error> {
        for (peer, payload) in messages {
            let frame = Frame { kind: Kind::Msg, node: OWNER_NODE, round: 1, payload }.encode();
            h.link.send(peer.endpoint, frame).map_err(|e| Error::Transport {
                party: h.me.clone(),
                message: format!("sending {}'s outputs: {e}", peer.name),
            })?;
        }
        for peer in &h.peers {
            await_bye(&h, peer)?;
        }
        Ok(())
    });
    sent.await.map_err(joined)?
}

/// An owner's `Bye` (its `Alive` frames may come first).
fn await_bye(hs: &Handshake, peer: &Peer) -> Result<(), Error> {
    loop {
        match next_frame(hs, peer, hs.timeout)? {
            f if f.kind == Kind::Bye => return Ok(()),
            f if f.kind == Kind::Alive => {}
            f => return Err(hs.refuse_owner(&peer.name, &format!("sent a {:?} frame instead of its goodbye", f.kind))),
        }
    }
}

fn encode_output(out: &mut Vec<u8>, o: &OwnerOutput, masked: &Tensor) {
    out.push(match o.dtype {
        DType::Fixed => 0,
        DType::Int => 1,
        DType::Bit => 2,
    });
    out.extend((masked.shape.len() as u32).to_le_bytes());
    for &d in &masked.shape {
        out.extend((d as u64).to_le_bytes());
    }
    for &w in &masked.data {
        out.extend(w.to_le_bytes());
    }
}

/// One masked output as a party sends it.
struct Masked {
    dtype: DType,
    shape: Vec<usize>,
    words: Vec<u64>,
}

/// Reads one masked output; returns it and the rest.
fn decode_output(bytes: &[u8]) -> Option<(Masked, &[u8])> {
    let (&dt, rest) = bytes.split_first()?;
    let dtype = [DType::Fixed, DType::Int, DType::Bit].get(dt as usize).copied()?;
    let (rank, mut rest) = rest.split_at_checked(4)?;
    let rank = u32::from_le_bytes(rank.try_into().ok()?) as usize;
    if rank > 16 {
        return None;
    }
    let mut shape = vec![];
    for _ in 0..rank {
        let (d, r) = rest.split_at_checked(8)?;
        shape.push(usize::try_from(u64::from_le_bytes(d.try_into().ok()?)).ok()?);
        rest = r;
    }
    let n = shape.iter().try_fold(1usize, |a, &d| a.checked_mul(d))?;
    let (w, rest) = rest.split_at_checked(n.checked_mul(8)?)?;
    let words = w.chunks_exact(8).map(|c| u64::from_le_bytes(c.try_into().unwrap_or([0; 8]))).collect();
    Some((Masked { dtype, shape, words }, rest))
}

/// The next frame from `peer`, within `wait`.
fn next_frame(hs: &Handshake, peer: &Peer, wait: Duration) -> Result<Frame, Error> {
    let bytes = hs.link.recv(peer.endpoint, wait).map_err(|e| Error::Transport {
        party: hs.me.clone(),
        message: match e {
            mpcflow_sdk::Error::Timeout(_) => format!("{} sent nothing for {:.1} s", peer.name, wait.as_secs_f64()),
            e => format!("{} left: {e}", peer.name),
        },
    })?;
    let frame =
        Frame::decode(bytes).map_err(|e| hs.refuse_owner(&peer.name, &format!("sent a malformed frame: {e}")))?;
    match frame.kind {
        Kind::Abort => Err(Error::PeerFailed {
            party: hs.me.clone(),
            peer: peer.name.clone(),
            reason: crate::error::from_peer(&frame.payload),
        }),
        _ => Ok(frame),
    }
}

/// The payload of `peer`'s next owner message; `Alive` frames before it reset the wait.
fn recv_owner_frame(hs: &Handshake, peer: &Peer, quiet: Duration) -> Result<Vec<u8>, Error> {
    loop {
        let f = next_frame(hs, peer, quiet)?;
        match f.kind {
            Kind::Alive => {}
            Kind::Msg if f.node == OWNER_NODE => return Ok(f.payload),
            k => return Err(hs.refuse_owner(&peer.name, &format!("sent a {k:?} frame where its data was due"))),
        }
    }
}

/// After a failed send: the reason a party gave for stopping, if its `Abort` arrives within a
/// second (a party that stopped because of another owner says so, which a broken pipe does
/// not); `e` otherwise.
fn explained(hs: &Handshake, e: Error) -> Error {
    let deadline = Instant::now() + Duration::from_secs(1);
    while Instant::now() < deadline {
        for peer in &hs.peers {
            let Ok(bytes) = hs.link.recv(peer.endpoint, Duration::from_millis(20)) else { continue };
            if let Ok(f) = Frame::decode(bytes)
                && f.kind == Kind::Abort
            {
                return Error::PeerFailed {
                    party: hs.me.clone(),
                    peer: peer.name.clone(),
                    reason: crate::error::from_peer(&f.payload),
                };
            }
        }
    }
    e
}

impl Handshake {
    fn refuse_owner(&self, peer: &str, message: &str) -> Error {
        Error::Handshake { party: self.me.clone(), peer: peer.to_string(), message: message.to_string() }
    }
}

/// Runs data owner `name` of `spec` in this process with its `inputs` (encoded, by input
/// name): shares them with the computing parties and returns the outputs revealed to it.
pub async fn run_remote_owner(
    spec: &GraphSpec,
    protocol: Arc<dyn mpcflow_sdk::protocol::Protocol>,
    transport: Arc<dyn Transport>,
    name: &str,
    inputs: Result<HashMap<String, Tensor>, Error>,
    cfg: &crate::schedule::RunConfig,
) -> Result<OwnerRun, Error> {
    let start = Instant::now();
    let j = spec.owners.iter().position(|o| o == name).ok_or_else(|| {
        let owners = if spec.owners.is_empty() { "none".to_string() } else { spec.owners.join(", ") };
        Error::Invalid(vec![Problem::new(
            Site::Graph,
            format!("`{name}` is not a data owner of this pipeline (owners: {owners})"),
        )])
    })?;
    let descriptor = protocol.descriptor();
    if !descriptor.secure && !cfg.session.allow_insecure {
        return Err(Error::Invalid(vec![Problem::new(
            Site::Protocol,
            format!(
                "protocol `{}` is insecure: the parties would see this owner's inputs in the clear; use a secure \
                 protocol, or allow it explicitly for a test (--insecure)",
                descriptor.name
            ),
        )]));
    }
    let setup = Setup { spec, has_dealer: descriptor.needs_dealer, protocol, cfg };
    let me = Endpoint::Party(PartyId((spec.parties.len() + j) as u16));
    let link = match setup.connect(transport, me, name).await {
        Ok(link) => link,
        Err(e) => return Err(inputs.err().unwrap_or(e)),
    };
    let hs = Handshake { me: name.into(), link: link.clone(), peers: party_peers(spec), timeout: cfg.session.timeout };
    let inputs = inputs.map_err(|e| hs.abort(e))?;
    let own_shapes: BTreeMap<String, Vec<usize>> = inputs.iter().map(|(k, t)| (k.clone(), t.shape.clone())).collect();
    let mine = Introduction::new(
        name,
        (&descriptor.name, &descriptor.version),
        super::digest::parts(spec),
        own_shapes,
        cfg.session.network,
    );
    // The parties answer once all of them, the dealer and every owner are connected: allow
    // for that as the parties do.
    let h = Handshake { timeout: cfg.session.timeout + cfg.session.connect_timeout, ..hs.clone() };
    tokio::task::spawn_blocking(move || h.introduce(&mine)).await.map_err(joined)?.map_err(|e| tell(&hs, e))?;

    let k = spec.parties.len();
    let keys = OwnerKeys::fresh(k).map_err(|e| hs.abort(e))?;
    let mut last_words: Vec<Vec<u8>> = vec![];
    for decl in spec.inputs.iter().filter(|i| i.owner == name) {
        let x = inputs.get(&decl.name).ok_or_else(|| hs.abort(Error::Internal(format!("no `{}`", decl.name))))?;
        last_words.push(owners::last_share(&keys, &decl.name, x).data.iter().flat_map(|w| w.to_le_bytes()).collect());
    }
    let expected: Vec<String> =
        spec.outputs.iter().filter(|o| o.reveal_to.iter().any(|r| r == name)).map(|o| o.name.clone()).collect();
    let h = hs.clone();
    let owner = name.to_string();
    let exchanged = tokio::task::spawn_blocking(move || -> Result<Vec<(String, Tensor)>, Error> {
        for (p, peer) in h.peers.iter().enumerate() {
            // The key, then (to the last party) one frame per input, each below the frame limit.
            let mut frames = vec![keys.key(p).to_vec()];
            if p + 1 == k {
                frames.extend(last_words.iter().cloned());
            }
            for payload in frames {
                let frame = Frame { kind: Kind::Msg, node: OWNER_NODE, round: 0, payload }.encode();
                h.link.send(peer.endpoint, frame).map_err(|e| {
                    explained(
                        &h,
                        Error::Transport {
                            party: h.me.clone(),
                            message: format!("sending its shares to {}: {e}", peer.name),
                        },
                    )
                })?;
            }
        }
        // The parties' masked outputs: every party's, then the same bytes from each.
        let mut first: Option<(String, Vec<u8>)> = None;
        for peer in &h.peers {
            let payload = recv_owner_frame(&h, peer, h.timeout)?;
            match &first {
                None => first = Some((peer.name.clone(), payload)),
                Some((who, bytes)) if *bytes != payload => {
                    return Err(h.refuse_owner(
                        &peer.name,
                        &format!("sent other results than {who}: the parties disagree, so none is shown"),
                    ));
                }
                Some(_) => {}
            }
        }
        let (from, bytes) = first.ok_or_else(|| Error::Internal("a pipeline without parties".into()))?;
        let mut rest = bytes.as_slice();
        let mut outputs = vec![];
        for out in &expected {
            let (m, r) =
                decode_output(rest).ok_or_else(|| h.refuse_owner(&from, &format!("sent a malformed `{out}`")))?;
            rest = r;
            let o = OwnerOutput { name: out.clone(), owner: owner.clone(), dtype: m.dtype, shape: m.shape.clone() };
            let masked = Tensor { dtype: o.mask_dtype(), shape: m.shape, data: m.words };
            outputs.push((out.clone(), owners::unmask(&keys, &o, &masked)?));
        }
        if !rest.is_empty() {
            return Err(h.refuse_owner(&from, "sent more outputs than the pipeline reveals to this owner"));
        }
        for peer in &h.peers {
            let _ = h.link.send(peer.endpoint, Frame::control(Kind::Bye).encode());
        }
        Ok(outputs)
    });
    // Whatever stopped this owner, every party hears of it: after the run they no longer listen
    // to each other, so a party's failure reaches the others only this way.
    let outputs = exchanged.await.map_err(joined)?.map_err(|e| hs.abort(e))?;
    Ok(OwnerRun { outputs, wall_s: start.elapsed().as_secs_f64() })
}

/// Whether an introduction's input `input` may come from party `peer` passing on an owner's
/// shape (see the module docs).
pub(super) fn relayed(spec: &GraphSpec, input: &str) -> bool {
    spec.inputs.iter().any(|i| i.name == input && spec.owners.contains(&i.owner))
}
