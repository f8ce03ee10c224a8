//! Established connections: framing, sending, the reader thread and the [`Link`] itself.
//!
//! This is the hot path, kept apart from setup so its locking can be read in one place. Each
//! connection has one reader thread that decrypts and pushes whole frames into a per-peer
//! channel (bounded by the session's `dealer_window` for frames from the dealer, so a slow party
//! pushes back on the dealer through TCP), and `send` encrypts and writes under a
//! per-connection write lock. The rustls state sits behind its own mutex that is never held
//! across socket I/O, so a reader never waits on a writer that is blocked on a full socket
//! (which would deadlock two peers sending large frames to each other).

use crate::{Peer, lock, tls_err};
use crossbeam_channel::{Receiver, RecvTimeoutError, Sender, bounded, unbounded};
use mpcflow_sdk::transport::{Link, SessionInfo};
use mpcflow_sdk::{Endpoint, Error, Result};
use std::collections::HashMap;
use std::io::{self, BufRead, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Plaintext bytes encrypted per lock of the TLS state when sending.
const CHUNK: usize = 256 * 1024;

/// Reassembles length-prefixed frames from a byte stream (no `Debug`: it holds frame bytes).
pub(crate) struct Deframer {
    max: u64,
    header: [u8; 8],
    have: usize,
    /// The frame being filled and its length, once the header is complete.
    body: Option<(Vec<u8>, usize)>,
}

impl Deframer {
    pub(crate) fn new(max: u64) -> Self {
        Deframer { max, header: [0; 8], have: 0, body: None }
    }

    /// Whether a frame is partly read.
    pub(crate) fn mid_frame(&self) -> bool {
        self.have > 0 || self.body.is_some()
    }

    /// Feeds bytes; whole frames go to `out`. Fails on a length above the limit, before any
    /// allocation for it.
    pub(crate) fn feed(&mut self, mut bytes: &[u8], out: &mut Vec<Vec<u8>>) -> std::result::Result<(), u64> {
        while !bytes.is_empty() {
            match &mut self.body {
                None => {
                    let take = (8 - self.have).min(bytes.len());
                    self.header[self.have..self.have + take].copy_from_slice(&bytes[..take]);
                    self.have += take;
                    bytes = &bytes[take..];
                    if self.have == 8 {
                        let len = u64::from_le_bytes(self.header);
                        if len > self.max {
                            return Err(len);
                        }
                        self.have = 0;
                        let len = len as usize;
                        // Grow with the data rather than trusting the length for the whole
                        // buffer; a large frame (material) takes a recycled buffer if one fits,
                        // which the protocol hands back once the material is used.
                        let buf = match mpcflow_sdk::pool::take_recycled(len) {
                            Some(mut v) => {
                                v.clear();
                                v
                            }
                            None => Vec::with_capacity(len.min(16 << 20)),
                        };
                        self.body = Some((buf, len));
                    }
                }
                Some((buf, len)) => {
                    let take = (*len - buf.len()).min(bytes.len());
                    if buf.len() + take > buf.capacity() {
                        // Past the first 16 MiB the peer has sent that much of the frame: room
                        // for the rest at once, rather than doubling (each doubling copies all
                        // that came before; a 200 MB frame was copied about twice over).
                        buf.reserve_exact(*len - buf.len());
                    }
                    buf.extend_from_slice(&bytes[..take]);
                    bytes = &bytes[take..];
                }
            }
            if self.body.as_ref().is_some_and(|(buf, len)| buf.len() == *len)
                && let Some((buf, _)) = self.body.take()
            {
                out.push(buf);
            }
        }
        Ok(())
    }
}

/// One established connection.
struct Conn {
    peer: Peer,
    tls: Mutex<rustls::Connection>,
    /// The write side of the socket; held for a whole frame so frames never interleave.
    sock: Mutex<TcpStream>,
    /// Set once a send failed mid-frame: the stream cannot be used again.
    broken: Mutex<Option<String>>,
}

impl Conn {
    /// Writes out TLS records the reader's processing queued (key updates), unless a sender
    /// holds the socket: that sender writes them out with its own records.
    fn flush_queued(&self) {
        if let Ok(mut sock) = self.sock.try_lock() {
            let mut out = vec![];
            {
                let mut tls = lock(&self.tls);
                while tls.wants_write() {
                    if tls.write_tls(&mut out).is_err() {
                        break;
                    }
                }
            }
            if !out.is_empty() {
                let _ = sock.write_all(&out);
            }
        }
    }

    fn send(&self, frame: &[u8], max: u64) -> Result<()> {
        let label = self.peer.label();
        if frame.len() as u64 > max {
            return Err(Error::Transport(format!(
                "a frame of {} bytes to {label} is larger than the limit of {max} bytes",
                frame.len()
            )));
        }
        let mut sock = lock(&self.sock);
        if let Some(why) = lock(&self.broken).clone() {
            return Err(Error::Transport(format!("the connection to {label} is unusable: {why}")));
        }
        let mut head = Vec::with_capacity(8 + frame.len().min(16 * 1024 - 8));
        head.extend_from_slice(&(frame.len() as u64).to_le_bytes());
        let first = frame.len().min(16 * 1024 - 8);
        head.extend_from_slice(&frame[..first]);
        let mut rest = &frame[first..];
        let mut head = Some(head);
        let mut out = Vec::with_capacity(CHUNK + 4096);
        loop {
            out.clear();
            {
                let mut tls = lock(&self.tls);
                let r = (|| -> io::Result<()> {
                    if let Some(h) = head.take() {
                        tls.writer().write_all(&h)?;
                    }
                    let take = rest.len().min(CHUNK);
                    tls.writer().write_all(&rest[..take])?;
                    rest = &rest[take..];
                    while tls.wants_write() {
                        tls.write_tls(&mut out)?;
                    }
                    Ok(())
                })();
                if let Err(e) = r {
                    return Err(self.break_with(&sock, format!("TLS error: {e}")));
                }
            }
            if let Err(e) = sock.write_all(&out) {
                return Err(match e.kind() {
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => {
                        let t = sock.write_timeout().ok().flatten().unwrap_or_default();
                        let _ = self.break_with(&sock, format!("a send timed out after {:.1} s", t.as_secs_f64()));
                        Error::Timeout(format!("{label} accepted nothing for {:.1} s", t.as_secs_f64()))
                    }
                    _ => self.break_with(&sock, format!("{label} closed the connection ({e})")),
                });
            }
            if rest.is_empty() {
                return Ok(());
            }
        }
    }

    /// Marks the connection unusable and shuts the socket so both readers stop.
    fn break_with(&self, sock: &TcpStream, why: String) -> Error {
        *lock(&self.broken) = Some(why.clone());
        let _ = sock.shutdown(Shutdown::Both);
        Error::Transport(why)
    }
}

/// Frames from one peer, and why its connection ended if it failed.
struct Inbox {
    rx: Receiver<Vec<u8>>,
    failure: Arc<Mutex<Option<String>>>,
}

/// One endpoint's connections to all the endpoints it talks to.
pub(crate) struct TcpLink {
    me: Peer,
    max_frame: u64,
    conns: HashMap<Endpoint, Arc<Conn>>,
    inbox: HashMap<Endpoint, Inbox>,
}

impl TcpLink {
    pub(crate) fn start(
        session: &SessionInfo,
        me: Peer,
        established: Vec<(Peer, TcpStream, rustls::Connection)>,
        max_frame: u64,
    ) -> Result<Box<dyn Link>> {
        let mut conns = HashMap::new();
        let mut inbox = HashMap::new();
        for (peer, sock, mut tls) in established {
            tls.set_buffer_limit(None);
            let send_timeout = (!session.timeout.is_zero()).then_some(session.timeout);
            let io = |e: io::Error| tls_err(&format!("cannot set up the socket to {}", peer.label()), e);
            sock.set_read_timeout(None).map_err(io)?;
            sock.set_write_timeout(send_timeout).map_err(io)?;
            let read_sock = sock.try_clone().map_err(io)?;
            let (tx, rx) =
                if peer.endpoint == Endpoint::Dealer { bounded(session.dealer_window.max(1)) } else { unbounded() };
            let failure: Arc<Mutex<Option<String>>> = Arc::default();
            let conn = Arc::new(Conn {
                peer: peer.clone(),
                tls: Mutex::new(tls),
                sock: Mutex::new(sock),
                broken: Mutex::default(),
            });
            let (c, f) = (conn.clone(), failure.clone());
            std::thread::Builder::new()
                .name(format!("tcp-rx-{}", peer.name))
                .spawn(move || read_loop(c, read_sock, tx, f, max_frame))
                .map_err(|e| Error::Internal(format!("cannot start a reader thread: {e}")))?;
            conns.insert(peer.endpoint, conn);
            inbox.insert(peer.endpoint, Inbox { rx, failure });
        }
        Ok(Box::new(TcpLink { me, max_frame, conns, inbox }))
    }
}

/// Decrypts everything from one peer and pushes whole frames into `tx` until the connection
/// ends; a failure is left in `failure` for `recv` to report.
fn read_loop(
    conn: Arc<Conn>,
    mut sock: TcpStream,
    tx: Sender<Vec<u8>>,
    failure: Arc<Mutex<Option<String>>>,
    max_frame: u64,
) {
    let label = conn.peer.label();
    let mut deframer = Deframer::new(max_frame);
    let mut buf = vec![0u8; 256 * 1024];
    let (mut start, mut end) = (0usize, 0usize);
    let mut sock_eof = false;
    // The alert rustls queues when the peer's data is bad, sent once the TLS lock is released.
    let mut alert = vec![];
    let outcome: std::result::Result<(), String> = 'outer: loop {
        // Feed what was read to rustls in steps, draining plaintext between steps so its
        // buffers stay bounded; frames are pushed without holding the TLS lock.
        let mut frames = vec![];
        let mut closed = false;
        let queued;
        {
            let mut tls = lock(&conn.tls);
            if start < end {
                match tls.read_tls(&mut &buf[start..end]) {
                    Ok(k) => start += k,
                    Err(e) => break 'outer Err(format!("TLS error from {label}: {e}")),
                }
            } else if sock_eof {
                let _ = tls.read_tls(&mut io::empty());
            }
            if let Err(e) = tls.process_new_packets() {
                let _ = tls.write_tls(&mut alert);
                break 'outer Err(format!("TLS error from {label}: {e}"));
            }
            loop {
                // Frames are filled straight from rustls's plaintext buffer.
                let mut reader = tls.reader();
                match reader.fill_buf() {
                    Ok([]) => {
                        closed = true;
                        break;
                    }
                    Ok(chunk) => {
                        let n = chunk.len();
                        if let Err(len) = deframer.feed(chunk, &mut frames) {
                            break 'outer Err(format!(
                                "{label} sent a frame of {len} bytes, more than the limit of {max_frame} bytes"
                            ));
                        }
                        reader.consume(n);
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
                        closed = true;
                        break;
                    }
                    Err(e) => break 'outer Err(format!("reading from {label}: {e}")),
                }
            }
            queued = tls.wants_write();
        }
        for f in frames {
            if tx.send(f).is_err() {
                break 'outer Ok(()); // our link is gone
            }
        }
        if queued {
            conn.flush_queued();
        }
        if closed || (sock_eof && start >= end) {
            if deframer.mid_frame() {
                break Err(format!("{label} closed the connection in the middle of a frame"));
            }
            break Ok(());
        }
        if start < end {
            continue;
        }
        match sock.read(&mut buf) {
            Ok(0) => sock_eof = true,
            Ok(n) => (start, end) = (0, n),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => {
                let broken = lock(&conn.broken).clone();
                break Err(broken.unwrap_or_else(|| format!("{label} closed the connection ({e})")));
            }
        }
    };
    if let Err(why) = outcome {
        *lock(&failure) = Some(why);
        // Tell the peer why (a TLS alert), unless a sender is mid-frame on the socket: the
        // alert would land inside its frame.
        if !alert.is_empty()
            && let Ok(mut w) = conn.sock.try_lock()
        {
            let _ = w.set_write_timeout(Some(std::time::Duration::from_millis(200)));
            let _ = w.write_all(&alert);
        }
        let _ = sock.shutdown(Shutdown::Both);
    }
    // Dropping `tx` tells `recv` that nothing more will come.
}

impl Link for TcpLink {
    fn send(&self, to: Endpoint, frame: Vec<u8>) -> Result<()> {
        let conn = self
            .conns
            .get(&to)
            .ok_or_else(|| Error::Transport(format!("{} has no connection to {to}", self.me.label())))?;
        let sent = conn.send(&frame, self.max_frame);
        // Written out: a large buffer (dealer material) goes back for the next one.
        mpcflow_sdk::pool::give(frame);
        sent
    }

    fn recv(&self, from: Endpoint, timeout: Duration) -> Result<Vec<u8>> {
        let inbox = self
            .inbox
            .get(&from)
            .ok_or_else(|| Error::Transport(format!("{} has no connection from {from}", self.me.label())))?;
        inbox.rx.recv_timeout(timeout).map_err(|e| match e {
            RecvTimeoutError::Timeout => {
                Error::Timeout(format!("nothing from {from} within {:.1} s", timeout.as_secs_f64()))
            }
            RecvTimeoutError::Disconnected => Error::Transport(lock(&inbox.failure).clone().unwrap_or_else(|| {
                let label = self.conns.get(&from).map(|c| c.peer.label()).unwrap_or_else(|| from.to_string());
                format!("{label} closed the connection")
            })),
        })
    }
}

impl Drop for TcpLink {
    fn drop(&mut self) {
        for conn in self.conns.values() {
            let sock = lock(&conn.sock);
            let mut out = vec![];
            {
                let mut tls = lock(&conn.tls);
                tls.send_close_notify();
                while tls.wants_write() {
                    if tls.write_tls(&mut out).is_err() {
                        break;
                    }
                }
            }
            let _ = sock.set_write_timeout(Some(Duration::from_millis(100)));
            let _ = (&*sock).write_all(&out);
            // Also ends our reader thread, whose read returns at once.
            let _ = sock.shutdown(Shutdown::Both);
        }
    }
}
