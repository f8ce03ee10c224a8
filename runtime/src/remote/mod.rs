//! One endpoint of a session in its own process: a party with only its own inputs, the dealer
//! with none, or a data owner who brings inputs and computes nothing ([`owner`]).
//!
//! [`run_local`](crate::schedule::run_local) knows every input and builds the plan once. Here
//! each process knows only its own inputs, and the plan depends on every input's shape, so
//! the processes first [handshake]: they check that they run the same mpcflow, protocol and
//! pipeline, exchange their input shapes, plan, and compare plan fingerprints. Then a party
//! runs its online phase ([`crate::schedule::party::run_party`]) and the dealer streams its
//! material ([`crate::schedule::dealer::run_dealer`]), exactly as in one process.
//!
//! How a run ends: a party sends `Bye` to every other party once its own nodes are done, and
//! shows its outputs only when every other party's `Bye` has come; then it sends `Bye` to the
//! dealer, which exits successfully only once every party has. While a party runs it sends
//! `Alive` every third of the timeout, so that whoever waits for its end can tell slow from
//! stalled. A failure sends an `Abort` with the reason everywhere instead, and the dealer passes
//! it on to the parties it can still reach. (No finite exchange makes every process agree in
//! every failure: a party that dies right after its last `Bye` leaves the others with their
//! outputs and the dealer with an error.)

pub mod digest;
pub mod handshake;
pub mod owner;

pub use owner::{OWNER_NODE, OwnerRun, run_remote_owner};

use crate::error::{Error, Problem, Site};
use crate::plan::Plan;
use crate::schedule::dealer::{DealerStats, os_seed, run_dealer};
use crate::schedule::frame::{Frame, Kind};
use crate::schedule::party::{PartyResult, PartyTask, run_party};
use crate::schedule::{LocalRun, RunConfig};
use handshake::{Handshake, Introduction, Peer};
use mpcflow_sdk::graph::GraphSpec;
use mpcflow_sdk::protocol::Protocol;
use mpcflow_sdk::transport::{Link, SessionInfo, Transport};
use mpcflow_sdk::{Endpoint, PartyId, Tensor};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Builds the plan from every input's shape (the session's own planner, options applied).
pub type PlanFn<'a> = dyn Fn(HashMap<String, Vec<usize>>) -> Result<Plan, Error> + Sync + 'a;

/// The session id every process of a deployment uses (the transport checks it on connect).
const SESSION_ID: &str = "mpcflow";

pub use mpcflow_sdk::DEALER;

/// What a party process ends with.
#[derive(Debug)]
pub struct PartyRun {
    /// Outputs revealed to this party: (name, the parties that learn it, value), in graph order.
    pub outputs: Vec<(String, Vec<String>, Tensor)>,
    /// The plan all processes agreed on.
    pub plan: Arc<Plan>,
    /// This party's measurements (other parties' columns are zero); `wall_s` counts from the
    /// end of the handshake to the end of the run.
    pub run: LocalRun,
    /// Seconds from the start to the end of the handshake (connecting included).
    pub setup_s: f64,
}

/// What the dealer process ends with.
#[derive(Debug)]
pub struct DealerRun {
    /// The plan all processes agreed on.
    pub plan: Arc<Plan>,
    /// Material bytes per node and party, and the time taken.
    pub stats: DealerStats,
}

/// What both kinds of endpoint share before they run.
struct Setup<'a> {
    spec: &'a GraphSpec,
    protocol: Arc<dyn Protocol>,
    has_dealer: bool,
    cfg: &'a RunConfig,
}

impl Setup<'_> {
    fn session(&self) -> SessionInfo {
        SessionInfo {
            id: SESSION_ID.into(),
            parties: self.spec.parties.clone(),
            owners: self.spec.owners.clone(),
            has_dealer: self.has_dealer,
            dealer_window: crate::schedule::DEALER_CHANNEL_FRAMES,
            timeout: self.cfg.session.timeout,
        }
    }

    /// Connects `me` (named `name`) to its peers; blocking, so run off the async workers.
    async fn connect(&self, transport: Arc<dyn Transport>, me: Endpoint, name: &str) -> Result<Arc<dyn Link>, Error> {
        let info = self.session();
        let link = tokio::task::spawn_blocking(move || transport.connect(&info, me))
            .await
            .map_err(|e| Error::Internal(format!("connecting task failed: {e}")))?
            .map_err(|e| Error::Transport { party: name.into(), message: format!("cannot connect: {e}") })?;
        Ok(Arc::from(link))
    }

    fn peers_of(&self, me: Endpoint) -> Vec<Peer> {
        let mut v: Vec<Peer> = self
            .spec
            .parties
            .iter()
            .enumerate()
            .map(|(i, n)| Peer { endpoint: Endpoint::Party(PartyId(i as u16)), name: n.clone() })
            .filter(|p| p.endpoint != me)
            .collect();
        if self.has_dealer && me != Endpoint::Dealer {
            v.push(Peer { endpoint: Endpoint::Dealer, name: DEALER.into() });
        }
        v
    }

    /// Both handshake rounds; returns the agreed plan. `plan` builds a plan from input shapes.
    async fn agree(
        &self,
        hs: &Handshake,
        own_shapes: BTreeMap<String, Vec<usize>>,
        plan: &PlanFn<'_>,
    ) -> Result<Plan, Error> {
        let descriptor = self.protocol.descriptor();
        let mine = Introduction::new(
            &hs.me,
            (&descriptor.name, &descriptor.version),
            digest::parts(self.spec),
            own_shapes.clone(),
            self.cfg.session.network,
        );
        let h = hs.clone();
        let theirs =
            tokio::task::spawn_blocking(move || h.introduce(&mine)).await.map_err(joined)?.map_err(|e| tell(hs, e))?;
        let mut shapes: HashMap<String, Vec<usize>> = own_shapes.into_iter().collect();
        for (peer, intro) in hs.peers.iter().zip(&theirs) {
            for (input, shape) in &intro.inputs {
                match self.spec.inputs.iter().find(|i| &i.name == input) {
                    Some(decl) if decl.owner == peer.name => {
                        shapes.insert(input.clone(), shape.clone());
                    }
                    // A party passes on a data owner's shapes; the owner told every party.
                    Some(decl) if owner::relayed(self.spec, input) => match shapes.get(input) {
                        Some(seen) if seen != shape => {
                            return Err(hs.abort(Error::Handshake {
                                party: hs.me.clone(),
                                peer: peer.name.clone(),
                                message: format!(
                                    "passed on shape {shape:?} for {}'s input `{input}`, where {} has {seen:?}: \
                                     the owner gave the parties different shapes",
                                    decl.owner, hs.me
                                ),
                            }));
                        }
                        _ => {
                            shapes.insert(input.clone(), shape.clone());
                        }
                    },
                    Some(decl) => {
                        return Err(hs.abort(Error::Handshake {
                            party: hs.me.clone(),
                            peer: peer.name.clone(),
                            message: format!("brought input `{input}`, which belongs to {}", decl.owner),
                        }));
                    }
                    None => {
                        return Err(hs.abort(Error::Handshake {
                            party: hs.me.clone(),
                            peer: peer.name.clone(),
                            message: format!("brought `{input}`, which is not an input of the pipeline"),
                        }));
                    }
                }
            }
            let missing: Vec<&str> = self
                .spec
                .inputs
                .iter()
                .filter(|i| i.owner == peer.name && !intro.inputs.contains_key(&i.name))
                .map(|i| i.name.as_str())
                .collect();
            if !missing.is_empty() {
                return Err(hs.abort(Error::Handshake {
                    party: hs.me.clone(),
                    peer: peer.name.clone(),
                    message: format!("brought no value for its input(s) {}", missing.join(", ")),
                }));
            }
        }
        let plan = plan(shapes).map_err(|e| hs.abort(e))?;
        let versions: HashMap<String, String> =
            hs.peers.iter().zip(&theirs).map(|(p, i)| (p.name.clone(), i.mpcflow.clone())).collect();
        let (h, fingerprint) = (hs.clone(), plan.fingerprint_hex());
        tokio::task::spawn_blocking(move || h.agree(&fingerprint, &versions))
            .await
            .map_err(joined)?
            .map_err(|e| tell(hs, e))?;
        Ok(plan)
    }
}

/// Passes this endpoint's own failure on to its peers; a peer's failure they know already.
fn tell(hs: &Handshake, e: Error) -> Error {
    if e.is_secondary() { e } else { hs.abort(e) }
}

fn joined(e: tokio::task::JoinError) -> Error {
    Error::Internal(format!("handshake task failed: {e}"))
}

/// Runs party `name` of `spec` in this process with its own `inputs` (encoded, by input
/// name). `plan` builds the plan from every input's shape. When encoding the inputs failed, the
/// party still connects and tells its peers why it stops, then returns that error.
pub async fn run_remote_party(
    spec: &GraphSpec,
    protocol: Arc<dyn Protocol>,
    transport: Arc<dyn Transport>,
    name: &str,
    inputs: Result<HashMap<String, Tensor>, Error>,
    cfg: &RunConfig,
    plan: &PlanFn<'_>,
) -> Result<PartyRun, Error> {
    let start = Instant::now();
    let index = spec.parties.iter().position(|p| p == name).ok_or_else(|| {
        Error::Invalid(vec![Problem::new(
            Site::Graph,
            format!("`{name}` is not a party of this pipeline (parties: {})", spec.parties.join(", ")),
        )])
    })?;
    let me = PartyId(index as u16);
    let descriptor = protocol.descriptor();
    if !descriptor.secure && !cfg.session.allow_insecure {
        return Err(Error::Invalid(vec![Problem::new(
            Site::Protocol,
            format!(
                "protocol `{}` is insecure: it sends every private input to the other parties in the clear; \
                 use a secure protocol (fss2pc), or allow it explicitly for a test (--insecure)",
                descriptor.name
            ),
        )]));
    }
    let setup = Setup { spec, has_dealer: descriptor.needs_dealer, protocol, cfg };
    let link = match setup.connect(transport, Endpoint::Party(me), name).await {
        Ok(link) => link,
        Err(e) => return Err(inputs.err().unwrap_or(e)),
    };
    let hs = Handshake {
        me: name.into(),
        link: link.clone(),
        peers: setup.peers_of(Endpoint::Party(me)),
        timeout: cfg.session.timeout,
    };
    let owners_hs = Handshake { peers: owner::owner_peers(spec), ..hs.clone() };
    let inputs = inputs.map_err(|e| hs.abort(owners_hs.abort(e)))?;
    let mut own_shapes: BTreeMap<String, Vec<usize>> =
        inputs.iter().map(|(k, t)| (k.clone(), t.shape.clone())).collect();
    if !spec.owners.is_empty() {
        // The owners first: their input shapes go on to the other parties and the dealer. An
        // owner needs none of this party's shapes.
        let mine = Introduction::new(
            name,
            (&descriptor.name, &descriptor.version),
            digest::parts(spec),
            BTreeMap::new(),
            cfg.session.network,
        );
        // Whoever failed, every owner and party hears of it (an owner knows no other owner).
        let from_owners =
            owner::introduce_owners(&owners_hs, spec, mine).await.map_err(|e| hs.abort(owners_hs.abort(e)))?;
        own_shapes.extend(from_owners);
    }
    // From here on the owners wait for this party: `Alive` tells them it is still at work.
    let alive = (!owners_hs.peers.is_empty()).then(|| owner::heartbeat(&owners_hs));
    let plan = Arc::new(setup.agree(&hs, own_shapes, plan).await.map_err(|e| owners_hs.abort(e))?);
    tracing::info!(party = %name, fingerprint = %plan.fingerprint_hex(), nodes = plan.nodes.len(), "session agreed");
    let setup_s = start.elapsed().as_secs_f64();
    let start = Instant::now();

    let mut inputs = inputs;
    if plan.owner_io.has_owners() {
        let shares = owner::receive_shares(&owners_hs, &plan, index).await.map_err(|e| hs.abort(owners_hs.abort(e)))?;
        inputs.extend(shares);
    }
    let ids = plan.input_nodes();
    let by_id = inputs.into_iter().filter_map(|(k, t)| ids.get(&k).map(|&id| (id, t))).collect();
    let task = PartyTask {
        plan: plan.clone(),
        protocol: setup.protocol.clone(),
        me,
        link,
        inputs: by_id,
        timeout: cfg.session.timeout,
        dealer_window: cfg.session.dealer_window,
        material_window_bytes: cfg.session.material_window_bytes,
        progress: cfg.session.progress.clone(),
        dealer_connected: setup.has_dealer,
        kernel: cfg.kernel.clone(),
        phases: None,
    };
    let ran = run_party(task).await;
    drop(alive);
    let mut result = ran.map_err(|e| owners_hs.abort(e))?;
    if plan.owner_io.has_owners() {
        owner::deliver_outputs(&owners_hs, &plan.owner_io, &result.outputs).await.map_err(|e| owners_hs.abort(e))?;
    }
    let outputs = plan
        .outputs()
        .into_iter()
        .filter(|(out, _, _)| !plan.owner_io.is_masked_output(out))
        .filter_map(|(out, _, to)| result.outputs.remove(&out).map(|t| (out, to, t)))
        .collect();
    let mut parties: Vec<PartyResult> = (0..plan.parties.len()).map(|_| PartyResult::default()).collect();
    if let Some(own) = parties.get_mut(index) {
        own.stats = result.stats;
    }
    let wall_s = start.elapsed().as_secs_f64();
    let run = LocalRun { parties, dealer: DealerStats::default(), wall_s, online_wall_s: wall_s, online_phases: 0 };
    Ok(PartyRun { outputs, plan, run, setup_s })
}

/// Runs the dealer of `spec` in this process. `plan` builds the plan from every input's shape.
pub async fn run_remote_dealer(
    spec: &GraphSpec,
    protocol: Arc<dyn Protocol>,
    transport: Arc<dyn Transport>,
    cfg: &RunConfig,
    plan: &PlanFn<'_>,
) -> Result<DealerRun, Error> {
    let descriptor = protocol.descriptor();
    if !descriptor.needs_dealer {
        return Err(Error::Dealer(format!(
            "protocol `{}` uses no dealer: start only the parties ({})",
            descriptor.name,
            spec.parties.join(", ")
        )));
    }
    let setup = Setup { spec, protocol, has_dealer: true, cfg };
    let link = setup.connect(transport, Endpoint::Dealer, DEALER).await?;
    let hs = Handshake {
        me: DEALER.into(),
        link: link.clone(),
        peers: setup.peers_of(Endpoint::Dealer),
        timeout: cfg.session.timeout,
    };
    let plan = Arc::new(setup.agree(&hs, BTreeMap::new(), plan).await?);
    tracing::info!(fingerprint = %plan.fingerprint_hex(), nodes = plan.nodes.len(), "session agreed");

    // While dealing, a watcher reads what the parties send: a party's `Abort` ends the dealer
    // at once, even while the dealing is blocked writing to a stalled party.
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let (woken, wake) = tokio::sync::oneshot::channel::<()>();
    let watcher = {
        let (l, peers, stop) = (link.clone(), hs.peers.clone(), stop.clone());
        std::thread::Builder::new()
            .name("dealer-watch".into())
            .spawn(move || watch_parties(l.as_ref(), &peers, &stop, woken))
            .map_err(|e| Error::Internal(format!("cannot start the dealer's watcher: {e}")))?
    };
    let stop_watching = |stop: &std::sync::atomic::AtomicBool| {
        stop.store(true, std::sync::atomic::Ordering::Release);
        watcher.join().unwrap_or_default()
    };
    let (p, proto, l) = (plan.clone(), setup.protocol.clone(), link.clone());
    let dealing = tokio::task::spawn_blocking(move || -> Result<DealerStats, Error> {
        let master = os_seed()?;
        run_dealer(&p, &proto, l.as_ref(), master, None)
    });
    let dealt = tokio::select! {
        r = dealing => r.map_err(|e| Error::Internal(format!("dealer task failed: {e}")))?,
        Ok(()) = wake => {
            // A party stopped: report its reason now; the dealing is left to fail on its own.
            let seen = stop_watching(&stop);
            let cause = seen.abort.unwrap_or_else(|| Error::Internal("a party's abort went missing".into()));
            return Err(hs.abort(cause));
        }
    };
    let seen = stop_watching(&stop);
    let stats = match dealt {
        Ok(s) => s,
        Err(e) => {
            // A party that failed explains why it stopped taking material: report its reason.
            // Its `Alive` frames may still be queued before the `Abort`, so read past them.
            let cause = seen
                .abort
                .or_else(|| hs.peers.iter().find_map(|p| abort_from(link.as_ref(), p, Duration::from_millis(200))));
            // Tell every party, also those whose link to the failed party broke first.
            return Err(hs.abort(cause.unwrap_or(e)));
        }
    };
    let (l, peers, quiet) = (link.clone(), hs.peers.clone(), cfg.session.timeout);
    let byes = seen.byes;
    tokio::task::spawn_blocking(move || await_parties(l.as_ref(), &peers, quiet, &byes))
        .await
        .map_err(|e| Error::Internal(format!("dealer task failed: {e}")))?
        .map_err(|e| hs.abort(e))?;
    Ok(DealerRun { plan, stats })
}

/// What the parties said while the dealer dealt.
#[derive(Default)]
struct Seen {
    /// The first party's `Abort`, as this dealer's error.
    abort: Option<Error>,
    /// Parties that said `Bye` already (the last material was out before the watcher stopped).
    byes: Vec<Endpoint>,
}

/// Reads the parties' frames until `stop`: `Alive` is dropped, `Bye` remembered, an `Abort`
/// wakes the dealer (`wake`) and ends the watch. A closed channel is left for later.
fn watch_parties(
    link: &dyn Link,
    peers: &[Peer],
    stop: &std::sync::atomic::AtomicBool,
    wake: tokio::sync::oneshot::Sender<()>,
) -> Seen {
    const POLL: Duration = Duration::from_millis(20);
    let mut seen = Seen::default();
    let mut quiet: Vec<Endpoint> = vec![];
    while !stop.load(std::sync::atomic::Ordering::Acquire) {
        let listening: Vec<&Peer> =
            peers.iter().filter(|p| !quiet.contains(&p.endpoint) && !seen.byes.contains(&p.endpoint)).collect();
        if listening.is_empty() {
            std::thread::sleep(POLL);
            continue;
        }
        for p in listening {
            match link.recv(p.endpoint, POLL).map(Frame::decode) {
                Ok(Ok(f)) if f.kind == Kind::Abort => {
                    seen.abort = Some(Error::PeerFailed {
                        party: DEALER.into(),
                        peer: p.name.clone(),
                        reason: crate::error::from_peer(&f.payload),
                    });
                    let _ = wake.send(());
                    return seen;
                }
                Ok(Ok(f)) if f.kind == Kind::Bye => seen.byes.push(p.endpoint),
                Ok(_) | Err(mpcflow_sdk::Error::Timeout(_)) => {}
                Err(_) => quiet.push(p.endpoint),
            }
        }
    }
    seen
}

/// The `Abort` that `peer` sent, if one comes within `wait` (frames queued before it, such as
/// `Alive`, are read past).
fn abort_from(link: &dyn Link, peer: &Peer, wait: Duration) -> Option<Error> {
    let deadline = Instant::now() + wait;
    loop {
        let left = deadline.checked_duration_since(Instant::now())?;
        let frame = Frame::decode(link.recv(peer.endpoint, left).ok()?).ok()?;
        if frame.kind == Kind::Abort {
            return Some(Error::PeerFailed {
                party: DEALER.into(),
                peer: peer.name.clone(),
                reason: crate::error::from_peer(&frame.payload),
            });
        }
    }
}

/// Waits for every party's last word after the material is delivered: `Bye` (sent once every
/// party has finished) or `Abort` with its reason. A party still working sends `Alive` every
/// third of the timeout, so a party silent for `quiet` is taken as stalled. Parties are polled
/// in turn so that the first failure is reported, whichever party it came from.
fn await_parties(link: &dyn Link, parties: &[Peer], quiet: Duration, byes: &[Endpoint]) -> Result<(), Error> {
    const POLL: Duration = Duration::from_millis(50);
    let mut pending: Vec<(&Peer, Instant)> =
        parties.iter().filter(|p| !byes.contains(&p.endpoint)).map(|p| (p, Instant::now())).collect();
    let mut closed: Option<Error> = None;
    while !pending.is_empty() {
        if let Some((p, _)) = pending.iter().find(|(_, heard)| heard.elapsed() > quiet) {
            return Err(Error::Transport {
                party: DEALER.into(),
                message: format!(
                    "{} did not confirm the end of the run and was silent for {:.1} s",
                    p.name,
                    quiet.as_secs_f64()
                ),
            });
        }
        let mut i = 0;
        while i < pending.len() {
            let p = pending[i].0;
            let frame = match link.recv(p.endpoint, POLL) {
                Ok(bytes) => Frame::decode(bytes),
                Err(mpcflow_sdk::Error::Timeout(_)) => {
                    i += 1;
                    continue;
                }
                Err(e) => {
                    // Another party's abort, if one comes soon, says more than a closed channel.
                    closed.get_or_insert(Error::Transport {
                        party: DEALER.into(),
                        message: format!("{} left before confirming the end of the run: {e}", p.name),
                    });
                    pending.remove(i);
                    continue;
                }
            };
            match frame {
                Ok(f) if f.kind == Kind::Alive => {
                    pending[i].1 = Instant::now();
                    i += 1;
                }
                Ok(f) if f.kind == Kind::Bye => {
                    pending.remove(i);
                }
                Ok(f) if f.kind == Kind::Abort => {
                    return Err(Error::PeerFailed {
                        party: DEALER.into(),
                        peer: p.name.clone(),
                        reason: crate::error::from_peer(&f.payload),
                    });
                }
                Ok(f) => {
                    return Err(Error::Transport {
                        party: DEALER.into(),
                        message: format!("{} sent an unexpected {:?} frame", p.name, f.kind),
                    });
                }
                Err(e) => {
                    return Err(Error::Transport {
                        party: DEALER.into(),
                        message: format!("{} sent a malformed frame: {e}", p.name),
                    });
                }
            }
        }
    }
    closed.map_or(Ok(()), Err)
}
