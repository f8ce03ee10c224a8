//! Where messages wait for the node that expects them, and the session-wide abort signal.
//!
//! Reader threads deliver frames as they arrive, in any order relative to the nodes; a node
//! takes its message for (node, round, peer) when it gets there. Every wait is bounded by the
//! session timeout and ends early if the session aborts.

use mpcflow_sdk::Error;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;
use tokio::sync::{oneshot, watch};

/// Why a session stopped: who failed and their reason.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Abort {
    /// The endpoint that failed (a party name or `dealer`).
    pub who: String,
    /// Its reason.
    pub reason: String,
}

/// The session's abort signal: fired once, seen by every wait.
#[derive(Clone)]
pub struct AbortSignal(watch::Sender<Option<Abort>>);

impl Default for AbortSignal {
    fn default() -> Self {
        AbortSignal(watch::channel(None).0)
    }
}

impl AbortSignal {
    /// Fires the signal (the first reason wins). Returns whether this call fired it.
    pub fn fire(&self, abort: Abort) -> bool {
        self.0.send_if_modified(|cur| {
            if cur.is_none() {
                *cur = Some(abort);
                true
            } else {
                false
            }
        })
    }

    /// The abort, if fired.
    pub fn get(&self) -> Option<Abort> {
        self.0.borrow().clone()
    }

    /// Waits until the signal fires, and returns why.
    pub async fn fired(&self) -> Abort {
        let mut sub = self.0.subscribe();
        loop {
            if let Some(a) = sub.borrow_and_update().clone() {
                return a;
            }
            // `changed` fails only once the sender is dropped, which `&self` rules out.
            if sub.changed().await.is_err() {
                std::future::pending::<()>().await;
            }
        }
    }

    /// Waits for `rx` until `timeout` or an abort.
    pub async fn wait<T>(
        &self,
        rx: oneshot::Receiver<T>,
        timeout: Duration,
        what: impl FnOnce() -> String,
    ) -> Result<T, WaitError> {
        let mut sub = self.0.subscribe();
        if let Some(a) = sub.borrow_and_update().clone() {
            return Err(WaitError::Aborted(a));
        }
        tokio::select! {
            r = rx => r.map_err(|_| WaitError::Failed(Error::internal(format!("{} was dropped", what())))),
            _ = sub.changed() => Err(WaitError::Aborted(self.get().unwrap_or(Abort { who: "?".into(), reason: "aborted".into() }))),
            _ = tokio::time::sleep(timeout) => Err(WaitError::Failed(Error::Timeout(format!("{} did not arrive within {:.1} s", what(), timeout.as_secs_f64())))),
        }
    }
}

impl AbortSignal {
    /// Waits for `rx` while there is progress: until an abort, or until `timeout` has passed
    /// both since the wait began and since `progress()` last moved. A node waiting for its
    /// material behind other nodes' material is not stalled while that material arrives.
    pub async fn wait_progress<T>(
        &self,
        mut rx: oneshot::Receiver<T>,
        timeout: Duration,
        progress: impl Fn() -> std::time::Instant,
        what: impl Fn() -> String,
    ) -> Result<T, WaitError> {
        let start = std::time::Instant::now();
        let mut sub = self.0.subscribe();
        if let Some(a) = sub.borrow_and_update().clone() {
            return Err(WaitError::Aborted(a));
        }
        loop {
            let deadline = start.max(progress()) + timeout;
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            tokio::select! {
                r = &mut rx => return r.map_err(|_| WaitError::Failed(Error::internal(format!("{} was dropped", what())))),
                _ = sub.changed() => return Err(WaitError::Aborted(self.get().unwrap_or(Abort { who: "?".into(), reason: "aborted".into() }))),
                _ = tokio::time::sleep(left) => {
                    if start.max(progress()) + timeout <= std::time::Instant::now() {
                        return Err(WaitError::Failed(Error::Timeout(format!(
                            "{} did not arrive, and nothing else came from the dealer, within {:.1} s",
                            what(),
                            timeout.as_secs_f64()
                        ))));
                    }
                }
            }
        }
    }
}

/// Why a wait ended without its value.
#[derive(Debug)]
pub enum WaitError {
    /// The session aborted.
    Aborted(Abort),
    /// Timed out or failed here.
    Failed(Error),
}

enum Slot {
    Ready(Vec<u8>),
    Waiting(oneshot::Sender<Vec<u8>>),
}

/// Messages keyed by (node, round, peer).
#[derive(Default)]
pub struct Mailbox {
    slots: Mutex<HashMap<(u32, u16, u16), Slot>>,
}

impl Mailbox {
    /// Delivers a message; a second message for the same key is a protocol violation.
    pub fn deliver(&self, key: (u32, u16, u16), bytes: Vec<u8>) -> Result<(), Error> {
        let mut slots = self.slots.lock().map_err(|_| Error::internal("mailbox lock poisoned"))?;
        match slots.remove(&key) {
            None => {
                slots.insert(key, Slot::Ready(bytes));
                Ok(())
            }
            Some(Slot::Waiting(tx)) => {
                let _ = tx.send(bytes);
                Ok(())
            }
            Some(Slot::Ready(first)) => {
                slots.insert(key, Slot::Ready(first));
                Err(Error::protocol(format!("second message for node {} round {}", key.0, key.1)))
            }
        }
    }

    /// Takes the message for `key`, now or when it arrives.
    pub fn take(&self, key: (u32, u16, u16)) -> Result<oneshot::Receiver<Vec<u8>>, Error> {
        let mut slots = self.slots.lock().map_err(|_| Error::internal("mailbox lock poisoned"))?;
        let (tx, rx) = oneshot::channel();
        match slots.remove(&key) {
            Some(Slot::Ready(bytes)) => {
                let _ = tx.send(bytes);
            }
            Some(Slot::Waiting(_)) => {
                return Err(Error::internal(format!("two waiters for node {} round {}", key.0, key.1)));
            }
            None => {
                slots.insert(key, Slot::Waiting(tx));
            }
        }
        Ok(rx)
    }

    /// Messages that arrived but were never taken (a sign of a confused peer).
    pub fn unclaimed(&self) -> usize {
        self.slots.lock().map(|s| s.values().filter(|v| matches!(v, Slot::Ready(_))).count()).unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};
    use std::time::Instant;

    /// A value that comes after 600 ms, with a timeout of 200 ms: it arrives while something
    /// else keeps arriving, and times out when nothing does.
    #[test]
    fn a_wait_lasts_while_there_is_progress() {
        let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
        rt.block_on(async {
            let signal = AbortSignal::default();
            let timeout = Duration::from_millis(200);
            let run = |progressing: bool| {
                let (tx, rx) = oneshot::channel::<u32>();
                let last = Arc::new(Mutex::new(Instant::now()));
                let ticker = last.clone();
                tokio::spawn(async move {
                    for _ in 0..30 {
                        tokio::time::sleep(Duration::from_millis(20)).await;
                        if progressing {
                            *ticker.lock().unwrap() = Instant::now();
                        }
                    }
                    let _ = tx.send(7);
                });
                let signal = signal.clone();
                async move {
                    signal.wait_progress(rx, timeout, || *last.lock().unwrap(), || "the value".to_string()).await
                }
            };
            assert_eq!(run(true).await.unwrap(), 7);
            match run(false).await {
                Err(WaitError::Failed(e)) => {
                    assert!(e.to_string().contains("the value did not arrive, and nothing else came"), "{e}")
                }
                other => panic!("expected a timeout, got {other:?}"),
            }
        });
    }
}
