//! Dealing first, in phases: the online phase timed alone, in bounded memory.
//!
//! The papers' "online time" is the parties' run with every node's material already dealt and
//! the dealer idle ([`crate::SessionConfig::deal_first`]). A full-size model's material does not
//! fit in memory (BERT-base's is 25 to 33 GiB for the two parties), so the plan is cut into
//! phases of consecutive nodes, each holding at most a budget of material: the dealer deals
//! phase `k` while the parties wait, then the parties run phase `k`'s nodes while the dealer
//! waits, and so on. The online time is the sum, over the phases, of the time from the end of a
//! phase's dealing to the last party finishing the phase's last node.
//!
//! A node's inputs come before it in plan order (the order the dealer deals in), so a phase
//! depends only on itself and earlier phases and can always finish. What the phases lose against
//! one run with all the material held is the overlap at their boundaries: the parties drain a
//! phase before the next one starts, so the sum bounds the online time from above. With a budget
//! at least the plan's material there is one phase, which is that run.
//!
//! The dealer's side blocks (a dealing thread); the parties' side is async and ends early when
//! the session aborts. [`Phases::close`] releases both: the dealer stops dealing at its next
//! node, and waiting parties go on (at the end of a run every phase is dealt). When the dealing
//! failed ([`Phases::fail`]), waiting parties stop at once instead of computing what was dealt.

use super::mailbox::{Abort, AbortSignal};
use crate::plan::Plan;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// The phases of one deal-first run, shared by the dealer and the parties of one process.
pub struct Phases {
    /// The phase of each node, by node id (non-decreasing).
    phase_of: Vec<usize>,
    /// How many phases.
    count: usize,
    state: Mutex<State>,
    /// Wakes the dealer when a phase is complete or the run is closed.
    progress: Condvar,
    /// How many phases are dealt (phases `0..n` may run); `usize::MAX` once closed.
    dealt: watch::Sender<usize>,
}

struct State {
    /// Per phase: node completions still due (its nodes times the parties).
    left: Vec<usize>,
    /// Phases every party has finished.
    completed: usize,
    /// When the phase now running was dealt.
    dealt_at: Option<Instant>,
    /// The finished phases' online time.
    online: Duration,
    closed: bool,
    /// Set when the dealing failed, to the phases it had dealt: parties waiting for a later
    /// phase stop.
    failed_after: Option<usize>,
}

impl Phases {
    /// Cuts `plan` into phases of consecutive nodes with at most `budget` bytes of material for
    /// all parties together (a node with more is a phase of its own).
    pub fn new(plan: &Plan, budget: u64) -> Phases {
        let parties = plan.parties.len();
        let mut phase_of = Vec::with_capacity(plan.nodes.len());
        let (mut phase, mut held) = (0usize, 0u64);
        for (id, node) in plan.nodes.iter().enumerate() {
            debug_assert!(node.inputs.iter().all(|&j| (j as usize) < id), "plan order is topological");
            let bytes: u64 = if node.needs_material { node.cost.dealer_bytes.iter().sum() } else { 0 };
            if held > 0 && held.saturating_add(bytes) > budget {
                phase += 1;
                held = 0;
            }
            held = held.saturating_add(bytes);
            phase_of.push(phase);
        }
        Phases::from_cut(phase_of, parties)
    }

    /// Phases with the given phase of each node (non-decreasing, from 0).
    fn from_cut(phase_of: Vec<usize>, parties: usize) -> Phases {
        let count = phase_of.last().map_or(1, |&p| p + 1);
        let mut left = vec![0; count];
        for &p in &phase_of {
            left[p] += parties;
        }
        Phases {
            phase_of,
            count,
            state: Mutex::new(State {
                left,
                completed: 0,
                dealt_at: None,
                online: Duration::ZERO,
                closed: false,
                failed_after: None,
            }),
            progress: Condvar::new(),
            dealt: watch::channel(0).0,
        }
    }

    /// How many phases.
    pub fn count(&self) -> usize {
        self.count
    }

    /// The phase of node `id`.
    pub fn phase_of(&self, id: usize) -> usize {
        self.phase_of.get(id).copied().unwrap_or(self.count - 1)
    }

    /// Dealer: whether node `id` is the first node of a phase after the first.
    pub fn starts_later_phase(&self, id: usize) -> bool {
        id > 0 && self.phase_of.get(id) != self.phase_of.get(id - 1)
    }

    /// Dealer: every frame of `phase` has been handed to the transport; the parties may run it.
    pub fn mark_dealt(&self, phase: usize) {
        if let Ok(mut s) = self.state.lock() {
            if s.closed {
                return;
            }
            s.dealt_at = Some(Instant::now());
        }
        self.dealt.send_if_modified(|d| {
            let next = (*d).max(phase + 1);
            std::mem::replace(d, next) != next
        });
    }

    /// Dealer: waits until every party has finished `phase`; `false` if the run was closed
    /// first (the dealer then stops).
    pub fn wait_completed(&self, phase: usize) -> bool {
        let Ok(mut s) = self.state.lock() else { return false };
        while s.completed <= phase && !s.closed {
            s = match self.progress.wait(s) {
                Ok(s) => s,
                Err(_) => return false,
            };
        }
        !s.closed
    }

    /// Party: waits until node `id`'s phase is dealt (or the run is closed); ends early with the
    /// session's abort, or when the dealing failed.
    pub async fn wait_dealt(&self, id: usize, abort: &AbortSignal) -> Result<(), NotDealt> {
        let phase = self.phase_of(id);
        let mut dealt = self.dealt.subscribe();
        tokio::select! {
            // An error means the sender is gone, which `&self` rules out.
            _ = dealt.wait_for(|&d| d > phase) => {}
            a = abort.fired() => return Err(NotDealt::Aborted(a)),
        }
        match self.state.lock().map(|s| s.failed_after) {
            Ok(Some(dealt)) if phase >= dealt => Err(NotDealt::DealerStopped),
            _ => Ok(()),
        }
    }

    /// Party: one party has finished node `id`. The last of a phase's completions ends the
    /// phase's online time and wakes the dealer.
    pub fn finished(&self, id: usize) {
        let phase = self.phase_of(id);
        let Ok(mut s) = self.state.lock() else { return };
        let Some(left) = s.left.get_mut(phase) else { return };
        *left = left.saturating_sub(1);
        if *left == 0 && s.completed == phase {
            s.completed = phase + 1;
            if let Some(at) = s.dealt_at.take() {
                s.online += at.elapsed();
            }
            self.progress.notify_all();
        }
    }

    /// The dealing failed: parties waiting for a phase not yet dealt stop with an abort that
    /// names the dealer (the dealer's own error is the run's).
    pub fn fail(&self) {
        if let Ok(mut s) = self.state.lock() {
            s.failed_after = Some(*self.dealt.borrow());
        }
        self.close();
    }

    /// Whether [`Phases::close`] was called.
    pub fn is_closed(&self) -> bool {
        *self.dealt.borrow() == usize::MAX
    }

    /// Ends the run's phases: the dealer stops waiting and dealing, parties stop waiting.
    pub fn close(&self) {
        if let Ok(mut s) = self.state.lock() {
            s.closed = true;
        }
        self.progress.notify_all();
        self.dealt.send_replace(usize::MAX);
    }

    /// The online time of the phases finished so far.
    pub fn online(&self) -> Duration {
        self.state.lock().map(|s| s.online).unwrap_or_default()
    }
}

/// Why a party's node will not get its phase's material.
#[derive(Debug)]
pub enum NotDealt {
    /// The session aborted.
    Aborted(Abort),
    /// The dealing failed before the phase was dealt.
    DealerStopped,
}

/// Ends the phases when the dealing ends, however it ends (a panic included): held by the task
/// that deals or replays the material.
pub struct DealingEnds(pub Option<Arc<Phases>>);

impl DealingEnds {
    /// The dealing failed (see [`Phases::fail`]).
    pub fn failed(&self) {
        if let Some(p) = &self.0 {
            p.fail();
        }
    }
}

impl Drop for DealingEnds {
    fn drop(&mut self) {
        if let Some(p) = &self.0 {
            if std::thread::panicking() { p.fail() } else { p.close() }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Phase bookkeeping on a hand-made cut: the dealer waits for a phase's every completion,
    /// parties wait for its dealing, and close releases both.
    #[test]
    fn a_phase_runs_only_once_dealt_and_the_next_is_dealt_only_once_it_is_done() {
        let phases = Phases::from_cut(vec![0, 0, 1], 2);
        assert_eq!(phases.count(), 2);
        assert!(!phases.starts_later_phase(0) && !phases.starts_later_phase(1) && phases.starts_later_phase(2));
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let abort = AbortSignal::default();
        let quick = |id| {
            rt.block_on(async {
                tokio::time::timeout(Duration::from_millis(50), phases.wait_dealt(id, &abort)).await.is_ok()
            })
        };
        assert!(!quick(0), "phase 0 runs before it is dealt");
        phases.mark_dealt(0);
        assert!(quick(0) && quick(1));
        assert!(!quick(2), "phase 1 runs before it is dealt");
        std::thread::scope(|s| {
            let dealer = s.spawn(|| phases.wait_completed(0));
            for id in [0, 0, 1] {
                phases.finished(id);
            }
            std::thread::sleep(Duration::from_millis(20));
            assert!(!dealer.is_finished(), "the dealer went on before phase 0 was done");
            phases.finished(1);
            assert!(dealer.join().unwrap());
        });
        assert!(phases.online() > Duration::ZERO);
        phases.close();
        assert!(quick(2), "closing releases the parties");
        assert!(!phases.wait_completed(1), "closing stops the dealer");
    }

    /// An aborted session ends a party's wait with the abort.
    #[test]
    fn a_party_waiting_for_its_phase_sees_the_abort() {
        let phases = Phases::from_cut(vec![0], 2);
        let abort = AbortSignal::default();
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let got = rt.block_on(async {
            let wait = phases.wait_dealt(0, &abort);
            abort.fire(Abort { who: "alice".into(), reason: "stopped".into() });
            wait.await
        });
        assert!(matches!(got, Err(NotDealt::Aborted(a)) if a.who == "alice"));
        phases.fail();
        let got = rt.block_on(phases.wait_dealt(0, &AbortSignal::default()));
        assert!(matches!(got, Err(NotDealt::DealerStopped)), "{got:?}");
    }
}
