//! Dealer material at a party: a window of frames read ahead of the nodes that consume them.
//!
//! The window is bounded twice: in frames (so the dealer's small frames keep flowing) and in
//! bytes (so a model whose nodes each carry hundreds of megabytes holds a few of them, not
//! eight). The reader takes a frame permit before it reads a frame and, once it knows the
//! frame's size, permits for its bytes; a frame larger than the whole byte window waits for an
//! empty window and then enters alone. A node gives its frame's room back when it *finishes*, not
//! when it takes the frame: the window counts the material of running nodes too, so the nodes
//! that a wide layer makes ready at once (a 3-D convolution's per-depth products) run a window's
//! worth at a time instead of all holding their material and temporaries together. With the
//! transport's channel (a few frames) behind it, the dealer runs at most a fixed distance ahead
//! of the parties, in frames and in bytes.
//!
//! No deadlock: frames enter the window in plan order, so the frame of the earliest unfinished
//! node n entered before any later node's; the room it waits for, if any, is held by earlier
//! nodes, which finish (by induction on n: their inputs and their peers' halves come earlier
//! still). Its peers' n runs by the same argument.
//!
//! A node waiting for its material counts the dealer's progress as its own (a long model's
//! material arrives for minutes); while the reader waits for room, the run's progress is the
//! running nodes', whose own waits are bounded, so the waiting node does not time out.

use super::mailbox::Mailbox;
use mpcflow_sdk::Error;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, oneshot};

/// The byte window counts in units of this many bytes (a semaphore counts in `u32`s).
const UNIT: usize = 1024;

/// Material frames by node.
pub struct MaterialStore {
    frames: Mailbox,
    frame_window: Arc<Semaphore>,
    byte_window: Arc<Semaphore>,
    /// The byte window's size in units: no frame asks for more.
    byte_units: u32,
    /// When the last frame arrived (or the store was made): the dealer's progress, which a
    /// node waiting for its own material counts as progress too.
    last_arrival: Mutex<Instant>,
    /// The reader is waiting for room: the dealer is held back by the running nodes.
    full: AtomicBool,
}

/// A taken frame's room, given back when dropped.
pub struct Held {
    store: Arc<MaterialStore>,
    len: usize,
}

impl Drop for Held {
    fn drop(&mut self) {
        self.store.release(self.len);
    }
}

/// Room reserved for one frame: a frame permit, then the frame's bytes.
pub struct Room {
    frame: OwnedSemaphorePermit,
    bytes: Option<OwnedSemaphorePermit>,
}

impl MaterialStore {
    /// A store holding at most `frames` frames and (beyond a single larger frame) `bytes` bytes.
    pub fn new(frames: usize, bytes: usize) -> Self {
        let byte_units = u32::try_from(bytes.div_ceil(UNIT)).unwrap_or(u32::MAX).max(1);
        MaterialStore {
            frames: Mailbox::default(),
            frame_window: Arc::new(Semaphore::new(frames.max(1))),
            byte_window: Arc::new(Semaphore::new(byte_units as usize)),
            byte_units,
            last_arrival: Mutex::new(Instant::now()),
            full: AtomicBool::new(false),
        }
    }

    /// The units a frame of `len` bytes holds in the byte window.
    fn units(&self, len: usize) -> u32 {
        u32::try_from(len.div_ceil(UNIT)).unwrap_or(u32::MAX).min(self.byte_units)
    }

    /// When the dealer last made progress: its last frame, or now while the window is full.
    pub fn last_arrival(&self) -> Instant {
        if self.full.load(Ordering::Acquire) {
            return Instant::now();
        }
        self.last_arrival.lock().map_or_else(|_| Instant::now(), |t| *t)
    }

    /// Waits for `permits` of `window`, marking the window full meanwhile.
    fn acquire(
        &self,
        rt: &tokio::runtime::Handle,
        window: &Arc<Semaphore>,
        permits: u32,
    ) -> Option<OwnedSemaphorePermit> {
        if let Ok(p) = window.clone().try_acquire_many_owned(permits) {
            return Some(p);
        }
        self.full.store(true, Ordering::Release);
        let got = rt.block_on(window.clone().acquire_many_owned(permits)).ok();
        if let Ok(mut t) = self.last_arrival.lock() {
            *t = Instant::now();
        }
        self.full.store(false, Ordering::Release);
        got
    }

    /// Waits (blocking the reader thread) until there is room for one more frame; `None` once
    /// the store is closed.
    pub fn reserve_blocking(&self, rt: &tokio::runtime::Handle) -> Option<Room> {
        let frame = self.acquire(rt, &self.frame_window, 1)?;
        Some(Room { frame, bytes: None })
    }

    /// Waits (blocking the reader thread) until the frame read into `room` fits the byte window;
    /// `None` once the store is closed.
    pub fn fit_blocking(&self, rt: &tokio::runtime::Handle, mut room: Room, len: usize) -> Option<Room> {
        room.bytes = Some(self.acquire(rt, &self.byte_window, self.units(len))?);
        Some(room)
    }

    /// Stores a frame; its room is given back when the node that takes it finishes (see
    /// [`MaterialStore::hold`]).
    pub fn put(&self, node: u32, bytes: Vec<u8>, room: Room) -> Result<(), Error> {
        room.frame.forget();
        if let Some(b) = room.bytes {
            b.forget();
        }
        if let Ok(mut t) = self.last_arrival.lock() {
            *t = Instant::now();
        }
        self.frames.deliver((node, 0, 0), bytes)
    }

    /// The material of `node`, now or when it arrives.
    pub fn take(&self, node: u32) -> Result<oneshot::Receiver<Vec<u8>>, Error> {
        self.frames.take((node, 0, 0))
    }

    /// The room of a taken frame of `len` bytes, held until the guard is dropped (when the
    /// node that took it finishes, however it ends).
    pub fn hold(self: &Arc<Self>, len: usize) -> Held {
        Held { store: self.clone(), len }
    }

    /// Gives back the room a finished node's frame of `len` bytes held.
    fn release(&self, len: usize) {
        self.frame_window.add_permits(1);
        self.byte_window.add_permits(self.units(len) as usize);
    }

    /// Stops the reader waiting for room.
    pub fn close(&self) {
        self.frame_window.close();
        self.byte_window.close();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread().build().unwrap()
    }

    #[test]
    fn the_byte_window_holds_back_a_frame_until_room_is_given_back() {
        let rt = runtime();
        let store = Arc::new(MaterialStore::new(8, 10 * UNIT));
        let room = store.reserve_blocking(rt.handle()).unwrap();
        let room = store.fit_blocking(rt.handle(), room, 6 * UNIT).unwrap();
        store.put(0, vec![0; 6 * UNIT], room).unwrap();
        // A second frame of 6 units does not fit beside the first: a frame permit is free, the
        // bytes are not.
        let second = store.reserve_blocking(rt.handle()).unwrap();
        assert_eq!(store.byte_window.available_permits(), 4);
        assert!(store.byte_window.clone().try_acquire_many_owned(6).is_err());
        // Taking node 0's frame is not enough: the node holds the room while it runs.
        let taken = rt.block_on(store.take(0).unwrap()).unwrap();
        let held = store.hold(taken.len());
        assert_eq!(store.byte_window.available_permits(), 4);
        // Once node 0 finished, it fits.
        drop(held);
        let second = store.fit_blocking(rt.handle(), second, 6 * UNIT).unwrap();
        store.put(1, vec![0; 6 * UNIT], second).unwrap();
        assert_eq!(store.byte_window.available_permits(), 4);
        assert_eq!(store.frame_window.available_permits(), 7);
    }

    #[test]
    fn a_frame_larger_than_the_window_enters_alone_and_gives_back_what_it_took() {
        let rt = runtime();
        let store = Arc::new(MaterialStore::new(8, 10 * UNIT));
        let room = store.reserve_blocking(rt.handle()).unwrap();
        let room = store.fit_blocking(rt.handle(), room, 50 * UNIT + 1).unwrap();
        assert_eq!(store.byte_window.available_permits(), 0);
        store.put(3, vec![0; 50 * UNIT + 1], room).unwrap();
        let taken = rt.block_on(store.take(3).unwrap()).unwrap();
        drop(store.hold(taken.len()));
        assert_eq!(store.byte_window.available_permits(), 10);
        assert_eq!(store.frame_window.available_permits(), 8);
    }

    #[test]
    fn closing_the_store_releases_a_reader_waiting_for_bytes() {
        let rt = runtime();
        let store = Arc::new(MaterialStore::new(8, 4 * UNIT));
        let room = store.reserve_blocking(rt.handle()).unwrap();
        let room = store.fit_blocking(rt.handle(), room, 4 * UNIT).unwrap();
        store.put(0, vec![0; 4 * UNIT], room).unwrap();
        let waiting = {
            let store = store.clone();
            std::thread::spawn(move || {
                let rt = runtime();
                let room = store.reserve_blocking(rt.handle()).unwrap();
                store.fit_blocking(rt.handle(), room, UNIT).is_none()
            })
        };
        std::thread::sleep(std::time::Duration::from_millis(50));
        let before = Instant::now();
        assert!(store.last_arrival() >= before, "a full window counts as progress");
        store.close();
        assert!(waiting.join().unwrap(), "the reader saw the store closed");
    }
}
