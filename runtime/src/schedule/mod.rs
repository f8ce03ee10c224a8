//! Running a plan: the dealer's offline stream and each party's online phase.
//!
//! [`run_local`] runs every party and the dealer in one process over any transport (the `mem`
//! transport by default); separate processes run [`party::run_party`] and
//! [`dealer::run_dealer`] themselves.

pub mod dealer;
pub mod frame;
mod local;
pub mod mailbox;
pub mod material;
pub mod party;
pub mod phases;
pub mod stats;

use crate::error::Error;
use crate::plan::Plan;
use dealer::DealerStats;
use mpcflow_sdk::protocol::Protocol;
use mpcflow_sdk::transport::{SessionInfo, Transport};
use mpcflow_sdk::{Endpoint, PartyId, Tensor};
use party::{PartyResult, PartyTask};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

/// Default number of dealer frames a party reads ahead: enough to keep the dealer busy on small
/// nodes.
pub const DEALER_WINDOW: usize = 8;

/// Default bytes of dealer material a party reads ahead: a few of a large model's biggest frames
/// (a 3-D UNet's ReLUs carry about 220 MB each), so that they do not pile up eight deep.
pub const MATERIAL_WINDOW_BYTES: usize = 256 << 20;

/// Frames from the dealer a transport holds for a party before its reader takes them (the
/// session's `dealer_window` as the transport sees it): the reader's own window does the
/// read-ahead, so the channel only needs to keep a frame ready.
pub const DEALER_CHANNEL_FRAMES: usize = 2;

/// How to run: the session's settings, and what was resolved from them.
#[derive(Clone, Debug, Default)]
pub struct RunConfig {
    /// The session's settings, as the embedding program or the command line gave them.
    pub session: crate::session::SessionConfig,
    /// The compute kernel handed to the protocol with every node (chosen from the settings'
    /// kernel name and the pipeline's `kernel:`).
    pub kernel: crate::kernel::KernelHandle,
}

/// Deals `plan`'s material into one file per party in `dir`; returns the files' sizes.
pub fn deal_to_files(plan: &Plan, protocol: &Arc<dyn Protocol>, dir: &std::path::Path) -> Result<Vec<u64>, Error> {
    std::fs::create_dir_all(dir).map_err(|e| Error::Dealer(format!("{}: {e}", dir.display())))?;
    let sink = crate::material_file::FileSink::create(dir, plan)?;
    dealer::run_dealer(plan, protocol, &sink, dealer::os_seed()?, None)?;
    sink.finish()
}

/// Everything a local run produced.
#[derive(Debug)]
pub struct LocalRun {
    /// Per party, in party order.
    pub parties: Vec<PartyResult>,
    /// The dealer's measurements (empty without a dealer).
    pub dealer: DealerStats,
    /// Seconds from start to the last party finishing.
    pub wall_s: f64,
    /// Seconds from the parties' start to the last party finishing, or with the material dealt
    /// first ([`crate::SessionConfig::deal_first`]) the online phase alone: the sum of its
    /// phases' times from their dealing to their last node (see [`phases`]).
    pub online_wall_s: f64,
    /// How many phases the material was dealt in ahead of the parties (0: it streamed, or the
    /// run had no material).
    pub online_phases: usize,
}

fn session_id() -> Result<String, Error> {
    let mut b = [0u8; 8];
    getrandom::fill(&mut b).map_err(|e| Error::Internal(format!("no randomness for a session id: {e}")))?;
    Ok(b.iter().map(|x| format!("{x:02x}")).collect())
}

/// Runs all parties and the dealer in this process. `inputs` are all parties' private inputs
/// by input node id; each party is handed only its own.
pub async fn run_local(
    plan: Arc<Plan>,
    protocol: Arc<dyn Protocol>,
    transport: Arc<dyn Transport>,
    inputs: HashMap<u32, Tensor>,
    cfg: &RunConfig,
) -> Result<LocalRun, Error> {
    let start = Instant::now();
    let with_dealer = plan.needs_dealer && plan.nodes.iter().any(|n| n.needs_material);
    let deal_first = with_dealer && cfg.session.deal_first;
    let info = SessionInfo {
        id: session_id()?,
        parties: plan.parties.clone(),
        owners: vec![],
        has_dealer: with_dealer,
        // Dealing everything first needs room for every frame: one per node and a goodbye.
        dealer_window: if deal_first { plan.nodes.len() + 2 } else { DEALER_CHANNEL_FRAMES },
        timeout: cfg.session.timeout,
    };
    let connect = |e: Endpoint| {
        transport
            .connect(&info, e)
            .map_err(|err| Error::Transport { party: e.to_string(), message: format!("cannot connect: {err}") })
    };

    // Material files are checked before anything connects or runs.
    let sources = match (&cfg.session.material_dir, with_dealer) {
        (Some(dir), true) => Some(crate::material_file::open_all(dir, &plan)?),
        _ => None,
    };
    // Every endpoint connects at once: a network transport's endpoints wait for each other.
    let mut endpoints: Vec<Endpoint> = (0..plan.parties.len()).map(|p| Endpoint::Party(PartyId(p as u16))).collect();
    if with_dealer {
        endpoints.push(Endpoint::Dealer);
    }
    let mut connected = std::thread::scope(|s| {
        let handles: Vec<_> = endpoints.iter().map(|&e| s.spawn(move || connect(e))).collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|_| Err(Error::Internal("a connecting thread panicked".into()))))
            .collect::<Result<Vec<_>, Error>>()
    })?;
    let dealer_link = if with_dealer { connected.pop() } else { None };
    let links: Vec<Arc<dyn mpcflow_sdk::transport::Link>> = connected.into_iter().map(Arc::from).collect();
    // Dealing first, the parties run each phase once its material waits in their channels;
    // material read back from files is replayed whole, in one phase.
    let phases = deal_first.then(|| {
        let budget = if sources.is_some() { u64::MAX } else { cfg.session.deal_first_phase_bytes };
        Arc::new(phases::Phases::new(&plan, budget))
    });
    let dealer = match (sources, dealer_link) {
        (_, None) => None,
        (Some(sources), Some(link)) => {
            let (plan, phases) = (plan.clone(), phases.clone());
            Some(tokio::task::spawn_blocking(move || {
                let ends = phases::DealingEnds(phases);
                let replayed = crate::material_file::replay(&plan, sources, link.as_ref());
                match (&replayed, &ends.0) {
                    (Ok(_), Some(phases)) => phases.mark_dealt(0),
                    (Err(_), _) => ends.failed(),
                    _ => {}
                }
                Ok(DealerStats { bytes: replayed?, wall_s: 0.0 })
            }))
        }
        (None, Some(link)) => {
            let (plan, protocol, phases) = (plan.clone(), protocol.clone(), phases.clone());
            let master = dealer::os_seed()?;
            Some(tokio::task::spawn_blocking(move || {
                let ends = phases::DealingEnds(phases);
                let dealt = dealer::run_dealer(&plan, &protocol, link.as_ref(), master, ends.0.as_deref());
                if dealt.is_err() {
                    ends.failed();
                }
                dealt
            }))
        }
    };
    let online_start = Instant::now();

    let mut per_party: Vec<HashMap<u32, Tensor>> = vec![HashMap::new(); plan.parties.len()];
    for (id, t) in inputs {
        if let mpcflow_sdk::protocol::NodeKind::Input { owner } = &plan.nodes[id as usize].desc.kind {
            per_party[owner.index()].insert(id, t);
        }
    }
    let mut tasks = vec![];
    for (p, (link, own)) in links.into_iter().zip(per_party).enumerate() {
        let task = PartyTask {
            plan: plan.clone(),
            protocol: protocol.clone(),
            me: PartyId(p as u16),
            link,
            inputs: own,
            timeout: cfg.session.timeout,
            dealer_window: cfg.session.dealer_window,
            material_window_bytes: cfg.session.material_window_bytes,
            progress: if p == 0 { cfg.session.progress.clone() } else { None },
            dealer_connected: with_dealer,
            kernel: cfg.kernel.clone(),
            phases: phases.clone(),
        };
        tasks.push(tokio::spawn(party::run_party(task)));
    }

    let mut results = vec![];
    let mut errors = vec![];
    for t in tasks {
        match t.await {
            Ok(Ok(r)) => results.push(r),
            Ok(Err(e)) => errors.push(e),
            Err(e) => errors.push(Error::Internal(format!("party task failed: {e}"))),
        }
    }
    let online_wall_s = match &phases {
        Some(phases) => {
            // A dealer waiting for a phase that a failed party will not finish stops here.
            phases.close();
            phases.online().as_secs_f64()
        }
        None => online_start.elapsed().as_secs_f64(),
    };
    let dealer_stats = match dealer {
        None => DealerStats { bytes: vec![vec![0; plan.parties.len()]; plan.nodes.len()], wall_s: 0.0 },
        Some(h) => match h.await {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => {
                // A party's own failure explains a dealer that could not deliver; report that.
                errors.push(e);
                DealerStats::default()
            }
            Err(e) => return Err(Error::Internal(format!("dealer task failed: {e}"))),
        },
    };
    if !errors.is_empty() {
        // Report the root cause: a node's own failure, then the dealer's, then a broken channel;
        // never a party that only stopped because another failed.
        let rank = |e: &Error| match e {
            Error::Node { .. } | Error::Input { .. } | Error::Invalid(_) | Error::Internal(_) | Error::Parse(_) => 0,
            Error::Dealer(_) => 1,
            Error::Transport { .. } => 2,
            _ => 3,
        };
        let pos = (0..errors.len()).min_by_key(|&i| rank(&errors[i])).unwrap_or(0);
        return Err(errors.swap_remove(pos));
    }
    Ok(LocalRun {
        parties: results,
        dealer: dealer_stats,
        wall_s: start.elapsed().as_secs_f64(),
        online_wall_s,
        online_phases: phases.map_or(0, |p| p.count()),
    })
}
