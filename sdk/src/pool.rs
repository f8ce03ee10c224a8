//! Recycling of large buffers (dealer material, frames) within one process.
//!
//! A million ReLUs are about 2 GB of dealer material, written into fresh buffers chunk by chunk
//! and freed by the parties once used. Fresh memory costs a page fault and a zeroed page per
//! 4 KiB on first touch: measured, that was more than the key generation's AES on this
//! project's 2-core machine (1M DCF2 keys: 1.44 µs per key into reused buffers, 2.13 µs into
//! fresh ones, on two threads). A buffer taken here ([`take`]) comes back ([`give`]) from
//! whoever is done with it, in this process:
//! - dealer and parties in one process: the parties hand their material back, and the dealer's
//!   next chunk is written into it;
//! - a dealer process: a transport hands a material frame back once it has written it out;
//! - a party process: a transport takes the buffer of an incoming frame here, and the protocol
//!   hands it back once the material is used.
//!
//! The pool keeps a returned buffer only while buffers it handed out have not all come back
//! ([`take`] counts them): a process that never takes keeps nothing.
//! A taken buffer still holds the bytes of its last use (its length says how many): the
//! taker overwrites or truncates them, and they never leave the process.
//!
//! Idle buffers are bounded by the session's `Tuning::pool_bytes` ([`MAX_IDLE_BYTES`] by
//! default); when a returned
//! buffer would pass the bound, the buffers idle longest make room for it (a run's material
//! sizes change from node to node: a 1024³ matmul's 450 MB buffers, kept idle, used to shut a
//! following million ReLUs' 65 MB chunks out of the pool, and the ReLUs ran 50 % slower).

use std::sync::Mutex;

/// Buffers smaller than this are not worth recycling (the allocator reuses them anyway).
pub const MIN_BYTES: usize = 1 << 20;

/// At most this many bytes of idle buffers are kept.
pub const MAX_IDLE_BYTES: usize = 1 << 30;

struct Pool {
    /// Idle buffers, the longest idle first.
    idle: Vec<Vec<u8>>,
    idle_bytes: usize,
    /// At most this many idle bytes (the session's `Tuning::pool_bytes`).
    max_idle: usize,
    /// Large buffers handed out by [`take`] and not yet returned by [`give`].
    outstanding: usize,
}

/// A recycled buffer is used only if it is at most this many times larger than asked for (a
/// small node's material must not pin a huge buffer).
const MAX_OVERSIZE: usize = 4;

impl Default for Pool {
    fn default() -> Self {
        Pool { idle: Vec::new(), idle_bytes: 0, max_idle: MAX_IDLE_BYTES, outstanding: 0 }
    }
}

impl Pool {
    fn take(&mut self, capacity: usize) -> Option<Vec<u8>> {
        self.outstanding += 1;
        let fits = |v: &Vec<u8>| v.capacity() >= capacity && v.capacity() <= capacity.saturating_mul(MAX_OVERSIZE);
        match (0..self.idle.len()).filter(|&i| fits(&self.idle[i])).min_by_key(|&i| self.idle[i].capacity()) {
            Some(at) => {
                let v = self.idle.remove(at);
                self.idle_bytes -= v.capacity();
                Some(v)
            }
            None => {
                // Nothing fits: idle buffers too small for this size are likely stale sizes;
                // let them go rather than hold memory nobody takes.
                self.idle.retain(|v| v.capacity() >= capacity);
                self.idle_bytes = self.idle.iter().map(Vec::capacity).sum();
                None
            }
        }
    }

    /// Takes `v` back, evicting the longest idle buffers if it needs their room; returns what
    /// is to be dropped (`v` itself when it is not kept).
    fn give(&mut self, v: Vec<u8>) -> Vec<Vec<u8>> {
        if self.outstanding == 0 {
            return vec![v];
        }
        // It came back, kept or not.
        self.outstanding -= 1;
        if v.capacity() > self.max_idle {
            return vec![v];
        }
        let mut evicted = vec![];
        while self.idle_bytes + v.capacity() > self.max_idle && !self.idle.is_empty() {
            let old = self.idle.remove(0);
            self.idle_bytes -= old.capacity();
            evicted.push(old);
        }
        self.idle_bytes += v.capacity();
        self.idle.push(v);
        evicted
    }
}

static POOL: Mutex<Pool> =
    Mutex::new(Pool { idle: Vec::new(), idle_bytes: 0, max_idle: MAX_IDLE_BYTES, outstanding: 0 });

/// Sets the most idle bytes kept (the session's tuning; [`MAX_IDLE_BYTES`] until set). The pool
/// serves the whole process, so the last session to start sets it; idle buffers over the new
/// bound are let go.
pub fn set_max_idle(bytes: usize) {
    let dropped = match POOL.lock() {
        Ok(mut p) => {
            p.max_idle = bytes;
            let mut out = vec![];
            while p.idle_bytes > bytes && !p.idle.is_empty() {
                let old = p.idle.remove(0);
                p.idle_bytes -= old.capacity();
                out.push(old);
            }
            out
        }
        Err(_) => vec![],
    };
    drop(dropped);
}

/// A buffer with room for at least `capacity` bytes: a recycled one if one fits (`true`: its
/// pages are mapped already, and it still holds the bytes of its last use, which the caller
/// must overwrite or truncate: fss2pc's material writer writes over them in place, so dealing
/// into it costs no zero-filling), else a new empty one (`false`: its pages are not
/// touched yet).
pub fn take(capacity: usize) -> (Vec<u8>, bool) {
    if capacity < MIN_BYTES {
        return (Vec::with_capacity(capacity), false);
    }
    match POOL.lock().ok().and_then(|mut p| p.take(capacity)) {
        Some(v) => (v, true),
        None => (Vec::with_capacity(capacity), false),
    }
}

/// A recycled buffer with room for at least `capacity` bytes if one fits (holding the bytes of
/// its last use, as with [`take`]), else `None`: the caller allocates its own, which counts as
/// taken all the same (whoever is done with it gives it back).
pub fn take_recycled(capacity: usize) -> Option<Vec<u8>> {
    if capacity < MIN_BYTES {
        return None;
    }
    POOL.lock().ok().and_then(|mut p| p.take(capacity))
}

/// Returns a buffer for reuse; it is dropped if nobody here is waiting for buffers (see the
/// module docs) or the pool is full.
pub fn give(v: Vec<u8>) {
    if v.capacity() < MIN_BYTES {
        return;
    }
    // Dropped outside the lock.
    let dropped = match POOL.lock() {
        Ok(mut p) => p.give(v),
        Err(_) => vec![v],
    };
    drop(dropped);
}

/// A party's material for one node, given back to the pool when the last reference goes.
#[derive(Debug, Default)]
pub struct Recycled(Vec<u8>);

impl Recycled {
    /// Wraps a material buffer.
    pub fn new(v: Vec<u8>) -> Recycled {
        Recycled(v)
    }
}

impl AsRef<[u8]> for Recycled {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

impl std::ops::Deref for Recycled {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.0
    }
}

impl Drop for Recycled {
    fn drop(&mut self) {
        give(std::mem::take(&mut self.0));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buffers_come_back_only_while_taken_ones_are_out() {
        // A pool of its own: the process-wide one is shared with concurrent tests.
        let mut p = Pool::default();
        let size = MIN_BYTES;
        assert!(p.take(size).is_none(), "empty at first");
        let v = Vec::with_capacity(size);
        let ptr = v.as_ptr();
        assert!(p.give(v).is_empty(), "kept: one buffer was out");
        let w = p.take(size).expect("recycled");
        assert_eq!(w.as_ptr(), ptr);
        assert!(p.give(w).is_empty());
        // Nothing outstanding now: a buffer from elsewhere is not kept.
        assert_eq!(p.give(Vec::with_capacity(size)).len(), 1);
        // Far larger than asked for: not used, a new buffer instead.
        assert!(p.take(size / MAX_OVERSIZE / 2).is_none());
        // Nothing fits a larger size: the smaller idle buffers are let go.
        assert!(p.take(2 * size).is_none());
        assert_eq!((p.idle.len(), p.idle_bytes), (0, 0));
    }

    #[test]
    fn a_full_pool_makes_room_by_evicting_the_longest_idle() {
        let mut p = Pool::default();
        let (big, small) = (MAX_IDLE_BYTES / 2, MIN_BYTES);
        for _ in 0..4 {
            p.take(small);
        }
        // Two stale large buffers fill the pool.
        for _ in 0..2 {
            assert!(p.give(Vec::with_capacity(big)).is_empty());
        }
        assert_eq!(p.idle_bytes, MAX_IDLE_BYTES);
        // A small one comes back: the longest idle large one goes, the small one stays.
        let dropped = p.give(Vec::with_capacity(small));
        assert_eq!(dropped.iter().map(Vec::capacity).collect::<Vec<_>>(), vec![big]);
        assert_eq!((p.idle.len(), p.idle_bytes), (2, big + small));
        // Taking one moves nothing else; the one given back goes to the end of the line.
        let s = p.take(small).expect("the small one is recycled");
        assert_eq!(s.capacity(), small);
        assert!(p.give(s).is_empty());
        assert_eq!(p.idle.iter().map(Vec::capacity).collect::<Vec<_>>(), vec![big, small]);
        // A buffer larger than the whole pool is never kept, but counts as returned.
        let out = p.outstanding;
        assert_eq!(p.give(Vec::with_capacity(MAX_IDLE_BYTES + 1)).len(), 1);
        assert_eq!(p.outstanding, out - 1);
    }

    #[test]
    fn small_buffers_are_never_pooled() {
        let (s, recycled) = take(100);
        assert!(s.capacity() >= 100 && !recycled);
    }
}
