//! Recycling of large material buffers within one process.
//!
//! A million ReLUs are about 4 GB of dealer material, written into fresh buffers chunk by chunk
//! and freed by the parties once used. Fresh memory costs a page fault and a zeroed page per
//! 4 KiB on first touch: measured, that was more than the key generation's AES on this
//! project's 2-core machine (1M DCF2 keys: 1.44 µs per key into reused buffers, 2.13 µs into
//! fresh ones, on two threads). When the dealer and the parties share a process, the parties
//! hand their material buffers back here and the dealer's next chunk is written into them.
//!
//! The pool keeps a returned buffer only while this process's dealer has buffers out that it
//! has not seen come back ([`take`] counts them): a party process whose dealer runs elsewhere
//! keeps nothing, and a dealer process whose buffers leave through a socket finds the pool
//! empty and allocates as before. Idle buffers are bounded by [`MAX_IDLE_BYTES`].

use std::sync::Mutex;

/// Buffers smaller than this are not worth recycling (the allocator reuses them anyway).
pub const MIN_BYTES: usize = 1 << 20;

/// At most this many bytes of idle buffers are kept.
pub const MAX_IDLE_BYTES: usize = 1 << 30;

#[derive(Default)]
struct Pool {
    idle: Vec<Vec<u8>>,
    idle_bytes: usize,
    /// Large buffers handed out by [`take`] and not yet returned by [`give`].
    outstanding: usize,
}

static POOL: Mutex<Pool> = Mutex::new(Pool { idle: Vec::new(), idle_bytes: 0, outstanding: 0 });

/// An empty buffer with room for at least `capacity` bytes: a recycled one if one fits
/// (`true`: its pages are mapped already), else a new one (`false`: its pages are not touched
/// yet).
pub fn take(capacity: usize) -> (Vec<u8>, bool) {
    if capacity < MIN_BYTES {
        return (Vec::with_capacity(capacity), false);
    }
    let recycled = POOL.lock().ok().and_then(|mut p| {
        p.outstanding += 1;
        // The smallest idle buffer that fits.
        let at =
            (0..p.idle.len()).filter(|&i| p.idle[i].capacity() >= capacity).min_by_key(|&i| p.idle[i].capacity())?;
        let v = p.idle.swap_remove(at);
        p.idle_bytes -= v.capacity();
        Some(v)
    });
    match recycled {
        Some(mut v) => {
            v.clear();
            (v, true)
        }
        None => (Vec::with_capacity(capacity), false),
    }
}

/// Returns a buffer for reuse; it is dropped if nobody here is waiting for buffers (see the
/// module docs) or the pool is full.
pub fn give(v: Vec<u8>) {
    if v.capacity() < MIN_BYTES {
        return;
    }
    let Ok(mut p) = POOL.lock() else { return };
    if p.outstanding == 0 || p.idle_bytes + v.capacity() > MAX_IDLE_BYTES {
        return;
    }
    p.outstanding -= 1;
    p.idle_bytes += v.capacity();
    p.idle.push(v);
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
        // Tests share the process-wide pool, so work with a size nothing else uses.
        let size = MIN_BYTES + 12_345;
        let (a, _) = take(size);
        assert!(a.capacity() >= size && a.is_empty());
        let ptr = a.as_ptr();
        give(a);
        let (b, recycled) = take(size);
        assert!(recycled);
        assert_eq!(b.as_ptr(), ptr, "the returned buffer is reused");
        give(b);
        // Nothing outstanding now: a buffer from elsewhere is not kept.
        let mut p = POOL.lock().unwrap();
        let before = p.idle.len();
        p.outstanding = 0;
        drop(p);
        give(Vec::with_capacity(size));
        assert_eq!(POOL.lock().unwrap().idle.len(), before);
        // Small buffers are never pooled.
        let (s, recycled) = take(100);
        assert!(s.capacity() >= 100 && !recycled);
    }
}
