//! One assisted gate dealt at a time per process.
//!
//! A large elementwise op is lowered into chunks that all become ready together, and each
//! chunk's dealing party generates both evaluators' material at once: dealt all together, a
//! million ReLUs held about 2 GB of material in flight and spent 40% of their time faulting in
//! fresh pages. Dealing one chunk at a time (key generation is itself parallel over the
//! session's threads) keeps the material in flight to what the evaluators are working on, and
//! lets the buffer pool hand the same pages from one chunk to the next. Dealing is local
//! computation only, so a permit is never held across a wait for a peer.

use std::sync::{Condvar, Mutex};

static BUSY: Mutex<bool> = Mutex::new(false);
static FREED: Condvar = Condvar::new();

/// Held while a gate is dealt.
pub struct Permit(());

/// Waits until no other gate of this process is being dealt.
pub fn acquire() -> Permit {
    let mut busy = BUSY.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    while *busy {
        busy = FREED.wait(busy).unwrap_or_else(std::sync::PoisonError::into_inner);
    }
    *busy = true;
    Permit(())
}

impl Drop for Permit {
    fn drop(&mut self) {
        *BUSY.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = false;
        FREED.notify_one();
    }
}
