//! Dealer material at a party: a window of frames read ahead of the nodes that consume them.
//!
//! The reader takes a permit before it reads each frame and the node that consumes the frame
//! gives it back, so at most `window` frames wait here; with the transport's bounded channel
//! behind it, the dealer can run at most a fixed distance ahead of the parties. No deadlock:
//! material arrives in plan order, and the earliest unconsumed frame always belongs to a node
//! whose inputs come earlier in the plan.

use super::mailbox::Mailbox;
use mpcflow_sdk::Error;
use std::sync::{Arc, Mutex};
use std::time::Instant;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, oneshot};

/// Material frames by node.
pub struct MaterialStore {
    frames: Mailbox,
    window: Arc<Semaphore>,
    /// When the last frame arrived (or the store was made): the dealer's progress, which a
    /// node waiting for its own material counts as progress too.
    last_arrival: Mutex<Instant>,
}

impl MaterialStore {
    /// A store holding at most `window` frames.
    pub fn new(window: usize) -> Self {
        MaterialStore {
            frames: Mailbox::default(),
            window: Arc::new(Semaphore::new(window.max(1))),
            last_arrival: Mutex::new(Instant::now()),
        }
    }

    /// When the dealer last delivered a frame.
    pub fn last_arrival(&self) -> Instant {
        self.last_arrival.lock().map_or_else(|_| Instant::now(), |t| *t)
    }

    /// Waits (blocking the reader thread) until there is room for one more frame.
    pub fn reserve_blocking(&self, rt: &tokio::runtime::Handle) -> Option<OwnedSemaphorePermit> {
        rt.block_on(self.window.clone().acquire_owned()).ok()
    }

    /// Stores a frame; the permit is returned when the node takes it.
    pub fn put(&self, node: u32, bytes: Vec<u8>, permit: OwnedSemaphorePermit) -> Result<(), Error> {
        permit.forget();
        if let Ok(mut t) = self.last_arrival.lock() {
            *t = Instant::now();
        }
        self.frames.deliver((node, 0, 0), bytes)
    }

    /// The material of `node`, now or when it arrives.
    pub fn take(&self, node: u32) -> Result<oneshot::Receiver<Vec<u8>>, Error> {
        self.frames.take((node, 0, 0))
    }

    /// Gives back the room a consumed frame held.
    pub fn consumed(&self) {
        self.window.add_permits(1);
    }

    /// Stops the reader waiting for room.
    pub fn close(&self) {
        self.window.close();
    }
}
