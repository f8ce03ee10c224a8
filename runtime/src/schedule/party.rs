//! One party's online phase: run every node as soon as its inputs and material are ready.
//!
//! Reader threads pull frames from each peer (and from the dealer) and drop them into the
//! mailbox or the material store. The scheduling loop keeps a count of unfinished inputs per
//! node and spawns each node as a task the moment the count reaches zero, so a layer of
//! independent nodes sends its first-round messages together and costs one round trip. A value
//! is dropped as soon as its last consumer has finished, which keeps memory bounded on long
//! chains.

use super::frame::{Frame, Kind};
use super::local;
use super::mailbox::{Abort, AbortSignal, Mailbox, WaitError};
use super::material::MaterialStore;
use super::phases::{NotDealt, Phases};
use super::stats::NodeStats;
use crate::error::Error;
use crate::plan::Plan;
use mpcflow_sdk::protocol::{EvalInput, Message, NodeKind, NodeValue, Protocol, Step, Wire};
use mpcflow_sdk::transport::Link;
use mpcflow_sdk::{Endpoint, PartyId, Tensor};
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use tokio::task::JoinSet;
use tracing::Instrument;

/// Nodes with more elements than this run their local compute off the async workers.
const BLOCKING_NUMEL: usize = 1 << 14;
/// How often reader threads look up from a quiet channel to see if the session ended.
const POLL: Duration = Duration::from_millis(50);
/// How long a failed send or wait waits for the abort that may explain it (see [`send_failed`],
/// [`explained`]).
const SEND_FAILURE_GRACE: Duration = Duration::from_secs(1);

/// What one party needs to run.
pub struct PartyTask {
    /// The plan, identical at every party.
    pub plan: Arc<Plan>,
    /// The protocol.
    pub protocol: Arc<dyn Protocol>,
    /// This party.
    pub me: PartyId,
    /// Its connections.
    pub link: Arc<dyn Link>,
    /// Its own private inputs, by input node id.
    pub inputs: HashMap<u32, Tensor>,
    /// Bound on every wait.
    pub timeout: Duration,
    /// Dealer frames read ahead.
    pub dealer_window: usize,
    /// Bytes of dealer material read ahead (a single larger frame still enters alone).
    pub material_window_bytes: usize,
    /// Counts finished nodes, for progress bars.
    pub progress: Option<Arc<AtomicUsize>>,
    /// Whether the session has a dealer endpoint (told with a `Bye` or `Abort` how this party's
    /// run ended, so that a dealer process knows whether the run succeeded).
    pub dealer_connected: bool,
    /// The compute kernel handed to the protocol with every node.
    pub kernel: crate::kernel::KernelHandle,
    /// Dealing first in phases: a node starts once its phase is dealt, and reports its end.
    pub phases: Option<Arc<Phases>>,
}

/// What one party ends with.
#[derive(Debug, Default)]
pub struct PartyResult {
    /// Outputs revealed to this party, by tensor name.
    pub outputs: HashMap<String, Tensor>,
    /// Per-node measurements, indexed by node id.
    pub stats: Vec<NodeStats>,
}

struct Shared {
    plan: Arc<Plan>,
    protocol: Arc<dyn Protocol>,
    me: PartyId,
    name: String,
    link: Arc<dyn Link>,
    mailbox: Mailbox,
    material: Arc<MaterialStore>,
    abort: AbortSignal,
    timeout: Duration,
    /// Whether a dealer is connected (and is told how the run ended).
    dealer_connected: bool,
    /// Set when this party's own nodes are all done.
    done: AtomicBool,
    kernel: Option<Arc<dyn mpcflow_sdk::kernel::Kernel>>,
    phases: Option<Arc<Phases>>,
}

impl Shared {
    fn peer_name(&self, e: Endpoint) -> String {
        match e {
            Endpoint::Party(p) => self.plan.parties.get(p.index()).cloned().unwrap_or_else(|| p.to_string()),
            Endpoint::Dealer => mpcflow_sdk::DEALER.into(),
        }
    }

    /// Stops the session everywhere: local waits end with `reason`, and every peer and the
    /// dealer are told `for_peers` (a category and names from the plan, never a value or a
    /// path: see [`Error::peer_reason`]).
    fn fail(&self, reason: &str, for_peers: &str) {
        if self.abort.fire(Abort { who: self.name.clone(), reason: reason.to_string() }) {
            let frame = Frame::abort(for_peers);
            for to in self.notified() {
                let _ = self.link.send(to, frame.clone());
            }
        }
        self.material.close();
    }

    /// Everyone told how this party's run ended: the other parties and the dealer, if any.
    fn notified(&self) -> Vec<Endpoint> {
        let mut v: Vec<Endpoint> = (0..self.plan.parties.len())
            .filter(|&p| p != self.me.index())
            .map(|p| Endpoint::Party(PartyId(p as u16)))
            .collect();
        if self.dealer_connected {
            v.push(Endpoint::Dealer);
        }
        v
    }

    fn wait_error(&self, e: WaitError) -> Error {
        match e {
            // This party's own reader stopped the session (a peer's channel broke): say so directly.
            WaitError::Aborted(a) if a.who == self.name => Error::Transport { party: a.who, message: a.reason },
            WaitError::Aborted(a) => Error::PeerFailed { party: self.name.clone(), peer: a.who, reason: a.reason },
            WaitError::Failed(e) => Error::Transport { party: self.name.clone(), message: e.to_string() },
        }
    }
}

/// Sends `Alive` to every peer and the dealer every third of the timeout until `stop` is
/// dropped (which wakes it at once) or the session aborts.
fn heartbeat(shared: Arc<Shared>, stop: std::sync::mpsc::Receiver<()>) {
    let every = (shared.timeout / 3).max(POLL);
    while let Err(std::sync::mpsc::RecvTimeoutError::Timeout) = stop.recv_timeout(every) {
        if shared.abort.get().is_some() {
            return;
        }
        let alive = Frame::control(Kind::Alive).encode();
        for to in shared.notified() {
            let _ = shared.link.send(to, alive.clone());
        }
    }
}

/// Reads frames from one endpoint until the session ends.
///
/// A reader of another party keeps reading after this party's nodes are done, until that
/// party's `Bye`: a party shows its outputs only after every other party has finished its
/// nodes. While waiting, the peer's `Alive` frames show that it is still working; a peer
/// silent for the whole timeout fails the run.
fn read_loop(shared: Arc<Shared>, from: Endpoint, rt: tokio::runtime::Handle) {
    let who = shared.peer_name(from);
    let mut heard = Instant::now();
    let mut done_at: Option<Instant> = None;
    // The dealer deals in plan order, one frame per node that needs material: any other frame
    // (a node that takes none, a second frame, one out of order) would hold room in the window
    // that no node gives back.
    let mut material_order =
        shared.plan.nodes.iter().enumerate().filter(|(_, n)| n.needs_material).map(|(i, _)| i as u32);
    loop {
        if shared.abort.get().is_some() {
            return;
        }
        if shared.done.load(Ordering::Acquire) {
            if from == Endpoint::Dealer {
                return;
            }
            let since = *done_at.get_or_insert_with(Instant::now);
            if since.max(heard).elapsed() > shared.timeout {
                let reason = format!(
                    "{who} did not confirm the end of the run and was silent for {:.1} s",
                    shared.timeout.as_secs_f64()
                );
                shared.fail(&reason, &reason);
                return;
            }
        } else if from != Endpoint::Dealer && heard.elapsed() > shared.timeout {
            // A running party sends `Alive` every third of the timeout from a thread of its
            // own, busy or not: silence for the whole timeout means it (or its network)
            // stalled. Name it, before a wait elsewhere blames whoever it holds up.
            let reason = format!(
                "{who} has been silent for {:.1} s (no message or keepalive): it stalled, or the network to it did",
                shared.timeout.as_secs_f64()
            );
            shared.fail(&reason, &reason);
            return;
        }
        let room = if from == Endpoint::Dealer {
            match shared.material.reserve_blocking(&rt) {
                Some(p) => Some(p),
                None => return,
            }
        } else {
            None
        };
        let bytes = match shared.link.recv(from, POLL) {
            Ok(b) => b,
            Err(mpcflow_sdk::Error::Timeout(_)) => continue,
            Err(e) => {
                // The dealer may leave once its material is delivered; a party may not leave
                // before it has said goodbye.
                if from != Endpoint::Dealer || !shared.done.load(Ordering::Acquire) {
                    // A peer that stopped because a third party failed closes its channels
                    // after telling everyone why, but a reset connection loses what was unread:
                    // the channel to the third party, or its abort, usually tells us within a
                    // moment, and that is the first cause to report.
                    if from != Endpoint::Dealer && abort_within_grace_blocking(&shared) {
                        return;
                    }
                    shared.fail(&format!("lost the channel from {who}: {e}"), &format!("lost the channel from {who}"));
                }
                return;
            }
        };
        heard = Instant::now();
        let frame = match Frame::decode(bytes) {
            Ok(f) => f,
            Err(e) => {
                shared.fail(&format!("{who} sent a malformed frame: {e}"), &format!("{who} sent a malformed frame"));
                return;
            }
        };
        let result = match (frame.kind, from, room) {
            (Kind::Alive, Endpoint::Party(_), _) => Ok(()),
            (Kind::Msg, Endpoint::Party(p), _) => shared.mailbox.deliver((frame.node, frame.round, p.0), frame.payload),
            (Kind::Material, Endpoint::Dealer, Some(room)) => match material_order.next() {
                Some(next) if next == frame.node => {
                    // Wait for the frame's bytes to fit the window; `None`: the run is over.
                    let Some(room) = shared.material.fit_blocking(&rt, room, frame.payload.len()) else { return };
                    shared.material.put(frame.node, frame.payload, room)
                }
                expected => {
                    let name = |id: u32| shared.plan.nodes.get(id as usize).map_or("?", |n| n.desc.name.as_str());
                    let want = expected.map_or_else(|| "no more".to_string(), |id| format!("node `{}`'s", name(id)));
                    Err(mpcflow_sdk::Error::protocol(format!(
                        "material for node `{}` where {want} was due (the dealer deals in plan order)",
                        name(frame.node)
                    )))
                }
            },
            (Kind::Abort, _, _) => {
                let reason = crate::error::from_peer(&frame.payload);
                shared.abort.fire(Abort { who: who.clone(), reason });
                shared.material.close();
                return;
            }
            (Kind::Bye, _, _) => return,
            (kind, _, _) => Err(mpcflow_sdk::Error::protocol(format!("unexpected {kind:?} frame"))),
        };
        if let Err(e) = result {
            shared.fail(&format!("{who} sent a bad frame: {e}"), &format!("{who} sent a bad frame ({})", e.category()));
            return;
        }
    }
}

/// Runs one party to completion.
pub async fn run_party(task: PartyTask) -> Result<PartyResult, Error> {
    let plan = task.plan.clone();
    let name = plan.parties[task.me.index()].clone();
    let shared = Arc::new(Shared {
        plan: plan.clone(),
        protocol: task.protocol,
        me: task.me,
        name: name.clone(),
        link: task.link,
        mailbox: Mailbox::default(),
        material: Arc::new(MaterialStore::new(task.dealer_window, task.material_window_bytes)),
        abort: AbortSignal::default(),
        timeout: task.timeout,
        dealer_connected: task.dealer_connected,
        done: AtomicBool::new(false),
        kernel: task.kernel.0,
        phases: task.phases,
    });
    let rt = tokio::runtime::Handle::current();
    let mut readers = vec![];
    let mut sources: Vec<Endpoint> =
        (0..plan.parties.len()).filter(|&p| p != task.me.index()).map(|p| Endpoint::Party(PartyId(p as u16))).collect();
    if plan.needs_dealer && plan.nodes.iter().any(|n| n.needs_material) {
        sources.push(Endpoint::Dealer);
    }
    for from in sources {
        let (s, rt) = (shared.clone(), rt.clone());
        let spawned = std::thread::Builder::new()
            .name(format!("{name}<-{}", shared.peer_name(from)))
            .spawn(move || read_loop(s, from, rt));
        match spawned {
            Ok(h) => readers.push(h),
            Err(e) => {
                let e = Error::Internal(format!("cannot start a reader thread: {e}"));
                shared.fail(&e.to_string(), &e.peer_reason()); // stops the readers already started
                return Err(e);
            }
        }
    }
    let (stop_heartbeat, stop) = std::sync::mpsc::channel::<()>();
    let beat = {
        let s = shared.clone();
        std::thread::Builder::new().name(format!("{name}-alive")).spawn(move || heartbeat(s, stop)).ok()
    };

    let result = schedule(&shared, task.inputs, task.progress).await;
    shared.done.store(true, Ordering::Release);
    match &result {
        Ok(_) => {
            let bye = Frame::control(Kind::Bye).encode();
            for to in shared.notified().into_iter().filter(|e| *e != Endpoint::Dealer) {
                let _ = shared.link.send(to, bye.clone());
            }
        }
        Err(e) if !e.is_secondary() => shared.fail(&e.to_string(), &e.peer_reason()),
        Err(_) => {}
    }
    shared.material.close();
    // The readers end at each peer's goodbye, an abort, or the confirmation deadline.
    let _ = tokio::task::spawn_blocking(move || {
        for r in readers {
            let _ = r.join();
        }
    })
    .await;
    drop(stop_heartbeat);
    if let Some(b) = beat {
        let _ = tokio::task::spawn_blocking(move || b.join()).await;
    }
    // The dealer hears `Bye` only once every party has finished: its exit status then says
    // whether the whole run succeeded.
    if result.is_ok() && shared.abort.get().is_none() && shared.dealer_connected {
        let _ = shared.link.send(Endpoint::Dealer, Frame::control(Kind::Bye).encode());
    }
    match (result, shared.abort.get()) {
        (Ok(_), Some(a)) if a.who == name => Err(Error::Transport { party: name, message: a.reason }),
        (Ok(_), Some(a)) => Err(Error::PeerFailed { party: name, peer: a.who, reason: a.reason }),
        (result, _) => result,
    }
}

type NodeOutcome = Result<(NodeValue, NodeStats), Error>;

/// What a task ends with: a node under the protocol, or a local node in the clear.
enum Outcome {
    Protocol(NodeOutcome),
    Local(Result<(Tensor, NodeStats), Error>),
}

async fn schedule(
    shared: &Arc<Shared>,
    mut inputs: HashMap<u32, Tensor>,
    progress: Option<Arc<AtomicUsize>>,
) -> Result<PartyResult, Error> {
    let plan = &shared.plan;
    let me = shared.me;
    let n = plan.nodes.len();
    let mut result = PartyResult { outputs: HashMap::new(), stats: vec![NodeStats::default(); n] };
    // This party's values in the clear (see `local`); other parties' local nodes and its own
    // local inputs need nothing done here.
    let mut plain = local::Plain::new(plan, me, &mut inputs)?;
    let idle = |i: u32| local::idle(plan, me, i);
    let waits = |reader: u32, id: u32| local::waits(plan, me, reader, id);
    let mut pending = vec![0usize; n];
    let mut uses_left = vec![0usize; n];
    let mut consumers: Vec<Vec<u32>> = vec![vec![]; n];
    for (i, node) in plan.nodes.iter().enumerate() {
        for &j in node.inputs.iter().filter(|&&j| waits(i as u32, j)) {
            pending[i] += 1;
            uses_left[j as usize] += 1;
            consumers[j as usize].push(i as u32);
        }
    }
    let mut finished = 0usize;
    for id in (0..n as u32).filter(|&i| idle(i)) {
        finished += 1;
        if let Some(phases) = &shared.phases {
            phases.finished(id as usize);
        }
    }
    if let Some(p) = &progress {
        p.fetch_add(finished, Ordering::Relaxed);
    }
    let mut values: Vec<Option<Arc<Wire>>> = vec![None; n];
    let mut ready: Vec<u32> = (0..n as u32).filter(|&i| pending[i as usize] == 0 && !idle(i)).collect();
    let mut running: JoinSet<(u32, Outcome)> = JoinSet::new();

    while finished < n {
        for id in ready.drain(..) {
            let node = &plan.nodes[id as usize];
            let s = shared.clone();
            let span =
                tracing::info_span!("node", party = %shared.name, node = %node.desc.name, op = %node.desc.kind.label());
            if node.local.is_some() {
                let args = plain.args(plan, id);
                running.spawn(
                    async move {
                        let (p, name) = (s.plan.clone(), s.name.clone());
                        // Dealing first, a local node too runs in its phase's online time.
                        let outcome = match (wait_for_phase(&s, id).await, args) {
                            (Err(e), _) | (Ok(()), Err(e)) => Err(e),
                            (Ok(()), Ok(args)) => {
                                tokio::task::spawn_blocking(move || local::evaluate(&p, id, &name, &args))
                                    .await
                                    .unwrap_or_else(|e| Err(Error::Internal(format!("local compute task failed: {e}"))))
                            }
                        };
                        if let (Ok(_), Some(phases)) = (&outcome, &s.phases) {
                            phases.finished(id as usize);
                        }
                        (id, Outcome::Local(outcome))
                    }
                    .instrument(span),
                );
                continue;
            }
            // A gate's local value is its private input, not a wire.
            let private = if node.shares_local_value() {
                let from = node.inputs[0];
                plain.for_gate(from, uses_left[from as usize] == 1)
            } else {
                inputs.remove(&id)
            };
            let args: Option<Vec<Arc<Wire>>> = node
                .inputs
                .iter()
                .filter(|j| plan.nodes[**j as usize].local.is_none())
                .map(|&j| values[j as usize].clone())
                .collect();
            let args = args.ok_or_else(|| Error::Internal(format!("input of `{}` missing", node.desc.name)))?;
            running.spawn(
                async move {
                    let outcome = run_node(&s, id, args, private).await;
                    if let (Ok(_), Some(phases)) = (&outcome, &s.phases) {
                        phases.finished(id as usize);
                    }
                    (id, Outcome::Protocol(outcome))
                }
                .instrument(span),
            );
        }
        let Some(joined) = running.join_next().await else {
            return Err(Error::Internal(format!("{} of {n} nodes can never run", n - finished)));
        };
        let (id, outcome) = joined.map_err(|e| Error::Internal(format!("node task failed: {e}")))?;
        let outcome = match outcome {
            Outcome::Protocol(o) => o.map(|(v, s)| (Some(v), s)),
            Outcome::Local(o) => o.map(|(t, s)| {
                if uses_left[id as usize] > 0 {
                    plain.put(id, t);
                }
                (None, s)
            }),
        };
        let (value, stats) = match outcome {
            Ok(v) => v,
            Err(e) => {
                if !e.is_secondary() {
                    shared.fail(&e.to_string(), &e.peer_reason());
                }
                running.abort_all();
                return Err(e);
            }
        };
        tracing::debug!(
            party = %shared.name,
            node = %plan.nodes[id as usize].desc.name,
            wall_s = stats.wall_s,
            rounds = stats.rounds,
            bytes_sent = stats.bytes_sent,
            "node done");
        result.stats[id as usize] = stats;
        finished += 1;
        if let Some(p) = &progress {
            p.fetch_add(1, Ordering::Relaxed);
        }
        match value {
            // Kept while a node under the protocol reads it.
            Some(NodeValue::Wire(w)) if uses_left[id as usize] > 0 => values[id as usize] = Some(Arc::new(w)),
            Some(NodeValue::Wire(_)) => {}
            Some(NodeValue::Revealed(Some(t))) => {
                result.outputs.insert(plan.nodes[id as usize].origin.clone(), t);
            }
            Some(NodeValue::Revealed(None)) | None => {}
        }
        for &j in plan.nodes[id as usize].inputs.iter().filter(|&&j| waits(id, j)) {
            uses_left[j as usize] -= 1;
            if uses_left[j as usize] == 0 {
                values[j as usize] = None;
                plain.drop_value(j);
            }
        }
        for &c in &consumers[id as usize] {
            pending[c as usize] -= 1;
            if pending[c as usize] == 0 {
                ready.push(c);
            }
        }
    }
    if shared.mailbox.unclaimed() > 0 {
        return Err(Error::Transport {
            party: shared.name.clone(),
            message: format!("{} messages arrived that no node expected", shared.mailbox.unclaimed()),
        });
    }
    Ok(result)
}

/// The error of a failed wait. A wait that timed out on a peer that is itself waiting for a
/// third party (which stalled) ends about when that peer's own wait does: with three or more
/// parties the peer's abort, which names the stalled party, may arrive a moment later. So a
/// timeout waits briefly for an abort and reports that if one comes.
async fn explained(shared: &Shared, e: WaitError) -> Error {
    if let WaitError::Failed(_) = e
        && let Some(a) = abort_within_grace(shared).await
    {
        return shared.wait_error(WaitError::Aborted(a));
    }
    shared.wait_error(e)
}

/// Whether the session aborts within [`SEND_FAILURE_GRACE`] (for reader threads; with two
/// parties nothing else comes, and the lost channel is reported after the grace).
fn abort_within_grace_blocking(shared: &Shared) -> bool {
    if shared.plan.parties.len() < 3 {
        return shared.abort.get().is_some();
    }
    let deadline = Instant::now() + SEND_FAILURE_GRACE;
    while shared.abort.get().is_none() {
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    true
}

/// The session's abort, if one comes within [`SEND_FAILURE_GRACE`].
async fn abort_within_grace(shared: &Shared) -> Option<Abort> {
    let deadline = Instant::now() + SEND_FAILURE_GRACE;
    loop {
        if let Some(a) = shared.abort.get() {
            return Some(a);
        }
        if Instant::now() >= deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// The error of a failed send to `to`. A peer that failed first told everyone why in an abort
/// frame before closing its connections, and that frame may still sit unread behind the
/// connection's end: with three or more parties, a party sending to one that has just stopped
/// because of a third would otherwise blame the channel instead of the first cause. So the
/// send waits briefly for the session to abort (the readers handle buffered frames at once)
/// and reports that abort if one comes.
async fn send_failed(shared: &Shared, to: Endpoint, e: mpcflow_sdk::Error) -> Error {
    if let Some(a) = abort_within_grace(shared).await {
        return shared.wait_error(WaitError::Aborted(a));
    }
    Error::Transport {
        party: shared.name.clone(),
        message: format!("{}{}: {e}", crate::error::SENDING_TO, shared.peer_name(to)),
    }
}

/// Dealing first in phases, waits until node `id`'s phase is dealt.
async fn wait_for_phase(shared: &Arc<Shared>, id: u32) -> Result<(), Error> {
    if let Some(phases) = &shared.phases {
        match phases.wait_dealt(id as usize, &shared.abort).await {
            Ok(()) => {}
            Err(NotDealt::Aborted(a)) => return Err(shared.wait_error(WaitError::Aborted(a))),
            // This party's own failure, which it tells the others (the dealer's error, in this
            // process, is the run's).
            Err(NotDealt::DealerStopped) => {
                return Err(Error::Transport {
                    party: shared.name.clone(),
                    message: format!(
                        "the dealer stopped before the material of node `{}` was dealt",
                        shared.plan.nodes[id as usize].desc.name
                    ),
                });
            }
        }
    }
    Ok(())
}

async fn run_node(
    shared: &Arc<Shared>,
    id: u32,
    inputs: Vec<Arc<Wire>>,
    private: Option<Tensor>,
) -> Result<(NodeValue, NodeStats), Error> {
    wait_for_phase(shared, id).await?;
    let start = Instant::now();
    let node = &shared.plan.nodes[id as usize];
    let desc = &node.desc;
    let node_err = |source: mpcflow_sdk::Error| Error::Node {
        party: shared.name.clone(),
        node: desc.name.clone(),
        op: desc.kind.label(),
        source,
    };
    let mut stats = NodeStats::default();

    // `_held`: the material's room in the window, given back when this node ends, however it
    // ends.
    let (material, _held) = if node.needs_material {
        let rx = shared.material.take(id).map_err(node_err)?;
        let m = shared
            .abort
            .wait_progress(
                rx,
                shared.timeout,
                || shared.material.last_arrival(),
                || format!("dealer material for node `{}`", desc.name),
            )
            .await
            .map_err(|e| shared.wait_error(e))?;
        let held = shared.material.hold(m.len());
        stats.material_bytes = m.len() as u64;
        stats.material_wait_s = start.elapsed().as_secs_f64();
        (m, Some(held))
    } else {
        (vec![], None)
    };
    if let NodeKind::Input { owner } = &desc.kind
        && *owner == shared.me
        && private.is_none()
    {
        return Err(node_err(mpcflow_sdk::Error::invalid("this party owns the input but brought no value")));
    }
    let input = EvalInput { party: shared.me, inputs, material, private, kernel: shared.kernel.clone() };
    let mut eval = shared.protocol.begin(desc, input).map_err(node_err)?;
    let heavy = desc.output.numel().max(desc.inputs.iter().map(|t| t.numel()).max().unwrap_or(0)) > BLOCKING_NUMEL;
    let mut inbox = vec![];
    let mut round: u16 = 0;
    loop {
        let step = if heavy {
            let (back, step) = tokio::task::spawn_blocking(move || {
                let step = eval.step(inbox);
                (eval, step)
            })
            .await
            .map_err(|e| Error::Internal(format!("compute task failed: {e}")))?;
            eval = back;
            step
        } else {
            eval.step(inbox)
        };
        match step.map_err(node_err)? {
            Step::Done(value) => {
                stats.rounds = u32::from(round);
                stats.wall_s = start.elapsed().as_secs_f64();
                return Ok((value, stats));
            }
            Step::Exchange { send, expect } => {
                for m in send {
                    if m.peer == shared.me || m.peer.index() >= shared.plan.parties.len() {
                        return Err(node_err(mpcflow_sdk::Error::internal(format!("message addressed to {}", m.peer))));
                    }
                    stats.bytes_sent += m.payload.len() as u64;
                    let frame = Frame::encode_owned(Kind::Msg, id, round, m.payload);
                    if let Err(e) = shared.link.send(Endpoint::Party(m.peer), frame) {
                        return Err(send_failed(shared, Endpoint::Party(m.peer), e).await);
                    }
                }
                let mut received = Vec::with_capacity(expect.len());
                for peer in expect {
                    let rx = shared.mailbox.take((id, round, peer.0)).map_err(node_err)?;
                    let peer_name = shared.peer_name(Endpoint::Party(peer));
                    let payload = match shared
                        .abort
                        .wait(rx, shared.timeout, || {
                            format!("message from {peer_name} for node `{}` round {round}", desc.name)
                        })
                        .await
                    {
                        Ok(p) => p,
                        Err(e) => return Err(explained(shared, e).await),
                    };
                    stats.bytes_received += payload.len() as u64;
                    received.push(Message { peer, payload });
                }
                inbox = received;
                round = round
                    .checked_add(1)
                    .ok_or_else(|| node_err(mpcflow_sdk::Error::protocol("more than 65535 rounds in one node")))?;
            }
        }
    }
}
