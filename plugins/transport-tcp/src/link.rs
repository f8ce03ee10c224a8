//! Established connections: framing, sending, the reader thread and the [`Link`] itself.
//!
//! This is the hot path, kept apart from setup so its locking can be read in one place. Each
//! connection has one reader thread that opens records and pushes whole frames into a per-peer
//! channel (bounded by the session's `dealer_window` for frames from the dealer, so a slow party
//! pushes back on the dealer through TCP), and `send` seals and writes under a per-connection
//! write lock. The two directions have separate keys and sequence numbers (see
//! [`crate::record`]), so they share no state: a reader never waits on a writer that is blocked
//! on a full socket (which would deadlock two peers sending large frames to each other).

use crate::record::{
    APPLICATION_DATA, HEADER, MAX_BODY, MAX_PLAINTEXT, MAX_SEALED, Opened, Opener, RecordError, Sealer, SetupStream,
};
use crate::{Peer, lock, tls_err};
use crossbeam_channel::{Receiver, RecvTimeoutError, Sender, bounded, unbounded};
use mpcflow_sdk::transport::{Link, SessionInfo};
use mpcflow_sdk::{Endpoint, Error, Result};
use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Sealed bytes gathered before one socket write when sending.
const CHUNK: usize = 256 * 1024;
/// Bytes one socket read asks for when receiving (beyond room for a partial record).
const READ: usize = 256 * 1024;

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

/// The sending side of a connection: socket, key and the buffer records are sealed into.
struct Sending {
    sock: TcpStream,
    sealer: Sealer,
    out: Vec<u8>,
}

impl Sending {
    /// Writes one alert record, waiting at most `wait` for the socket (the connection is
    /// ending, so nothing else will be sent).
    fn write_alert(&mut self, description: u8, wait: Duration) {
        self.out.clear();
        if self.sealer.seal_alert(description, &mut self.out).is_ok() {
            let _ = self.sock.set_write_timeout(Some(wait));
            let _ = self.sock.write_all(&self.out);
        }
    }
}

/// One established connection.
struct Conn {
    peer: Peer,
    /// Held for a whole frame so frames never interleave.
    tx: Mutex<Sending>,
    /// The first cause once the connection cannot be used again: a send that failed mid-frame,
    /// or the reader's end (a refused record, the peer's close).
    broken: Mutex<Option<String>>,
}

impl Conn {
    fn send(&self, frame: &[u8], max: u64) -> Result<()> {
        let label = self.peer.label();
        if frame.len() as u64 > max {
            return Err(Error::Transport(format!(
                "a frame of {} bytes to {label} is larger than the limit of {max} bytes",
                frame.len()
            )));
        }
        let mut tx = lock(&self.tx);
        if let Some(why) = lock(&self.broken).clone() {
            return Err(Error::Transport(format!("the connection to {label} is unusable: {why}")));
        }
        let Sending { sock, sealer, out } = &mut *tx;
        // The first record carries the length and the frame's first bytes; each later one a
        // whole record's worth of the frame, sealed straight into the buffer the socket takes.
        let length = (frame.len() as u64).to_le_bytes();
        let first = frame.len().min(MAX_PLAINTEXT - length.len());
        out.clear();
        if let Err(e) = sealer.seal(APPLICATION_DATA, &[&length, &frame[..first]], out) {
            return Err(self.break_with(sock, format!("TLS error sending to {label}: {}", e.why)));
        }
        let mut rest = &frame[first..];
        loop {
            while out.len() < CHUNK && !rest.is_empty() {
                let take = rest.len().min(MAX_PLAINTEXT);
                if let Err(e) = sealer.seal_data(&rest[..take], out) {
                    return Err(self.break_with(sock, format!("TLS error sending to {label}: {}", e.why)));
                }
                rest = &rest[take..];
            }
            if let Err(e) = sock.write_all(out) {
                return Err(match e.kind() {
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => {
                        let t = sock.write_timeout().ok().flatten().unwrap_or_default();
                        let _ = self.break_with(sock, format!("a send timed out after {:.1} s", t.as_secs_f64()));
                        Error::Timeout(format!("{label} accepted nothing for {:.1} s", t.as_secs_f64()))
                    }
                    _ => self.break_with(sock, format!("{label} closed the connection ({e})")),
                });
            }
            out.clear();
            if rest.is_empty() {
                return Ok(());
            }
        }
    }

    /// Marks the connection unusable and shuts the socket so both readers stop; the error is
    /// the first cause (the reader's, when it failed first and the write met the closed socket).
    fn break_with(&self, sock: &TcpStream, why: String) -> Error {
        let why = lock(&self.broken).get_or_insert(why).clone();
        let _ = sock.shutdown(Shutdown::Both);
        Error::Transport(why)
    }

    /// Tells the peer why this side ends the connection (a fatal alert), unless a sender is
    /// mid-frame on the socket: the alert would land inside its frame.
    fn alert(&self, description: u8) {
        if let Ok(mut tx) = self.tx.try_lock() {
            tx.write_alert(description, Duration::from_millis(200));
        }
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
        established: Vec<(Peer, SetupStream, rustls::Connection)>,
        max_frame: u64,
    ) -> Result<Box<dyn Link>> {
        // Every connection is taken over from rustls and its sockets set up before any reader
        // starts, so a failure here leaves no thread behind (the sockets close as they drop).
        let mut taken = Vec::with_capacity(established.len());
        for (peer, stream, tls) in established {
            let takeover = |why: String| Error::Transport(format!("the connection to {}: {why}", peer.label()));
            let sock = stream.into_socket().map_err(takeover)?;
            let (sealer, opener) = crate::record::take_secrets(tls).map_err(takeover)?;
            let send_timeout = (!session.timeout.is_zero()).then_some(session.timeout);
            let io = |e: io::Error| tls_err(&format!("cannot set up the socket to {}", peer.label()), e);
            sock.set_read_timeout(None).map_err(io)?;
            sock.set_write_timeout(send_timeout).map_err(io)?;
            let read_sock = sock.try_clone().map_err(io)?;
            taken.push((peer, sock, read_sock, sealer, opener));
        }
        let mut conns: HashMap<Endpoint, Arc<Conn>> = HashMap::new();
        let mut inbox = HashMap::new();
        for (peer, sock, read_sock, sealer, opener) in taken {
            let (tx, rx) =
                if peer.endpoint == Endpoint::Dealer { bounded(session.dealer_window.max(1)) } else { unbounded() };
            let failure: Arc<Mutex<Option<String>>> = Arc::default();
            let conn = Arc::new(Conn {
                peer: peer.clone(),
                tx: Mutex::new(Sending { sock, sealer, out: Vec::with_capacity(CHUNK + MAX_SEALED) }),
                broken: Mutex::default(),
            });
            let (c, f) = (conn.clone(), failure.clone());
            let spawned = std::thread::Builder::new()
                .name(format!("tcp-rx-{}", peer.name))
                .spawn(move || read_loop(c, read_sock, opener, tx, f, max_frame));
            if let Err(e) = spawned {
                // The readers already started end once their sockets are shut.
                for started in conns.values().chain([&conn]) {
                    let _ = lock(&started.tx).sock.shutdown(Shutdown::Both);
                }
                return Err(Error::Internal(format!("cannot start a reader thread: {e}")));
            }
            conns.insert(peer.endpoint, conn);
            inbox.insert(peer.endpoint, Inbox { rx, failure });
        }
        Ok(Box::new(TcpLink { me, max_frame, conns, inbox }))
    }
}

/// Opens every record from one peer and pushes whole frames into `tx` until the connection
/// ends; a failure is left in `failure` for `recv` to report.
fn read_loop(
    conn: Arc<Conn>,
    mut sock: TcpStream,
    mut opener: Opener,
    tx: Sender<Vec<u8>>,
    failure: Arc<Mutex<Option<String>>>,
    max_frame: u64,
) {
    let label = conn.peer.label();
    let mut deframer = Deframer::new(max_frame);
    // Room for one read beside a partial record kept from the last (at most a whole record).
    let mut buf = vec![0u8; READ + HEADER + MAX_BODY];
    let (mut start, mut end) = (0usize, 0usize);
    let refused = |e: RecordError| (e.alert, format!("TLS error from {label}: {}", e.why));
    let outcome: std::result::Result<(), (Option<u8>, String)> = 'outer: loop {
        // Open every whole record read so far; frames are filled straight from the opened
        // records and pushed once the read is used up (those before a bad record too).
        let mut frames = vec![];
        let mut closed = false;
        let mut bad = None;
        loop {
            let len = match Opener::record_len(&buf[start..end]) {
                Ok(Some(len)) if len <= end - start => len,
                Ok(_) => break,
                Err(e) => break bad = Some(refused(e)),
            };
            let record = &mut buf[start..start + len];
            start += len;
            match opener.open(record) {
                Ok(Opened::Data(bytes)) => {
                    if let Err(len) = deframer.feed(bytes, &mut frames) {
                        break bad = Some((
                            None,
                            format!("{label} sent a frame of {len} bytes, more than the limit of {max_frame} bytes"),
                        ));
                    }
                }
                Ok(Opened::KeyUpdated) => {}
                Ok(Opened::Closed) => break closed = true,
                Err(e) => break bad = Some(refused(e)),
            }
        }
        for f in frames {
            if tx.send(f).is_err() {
                break 'outer Ok(()); // our link is gone
            }
        }
        if let Some(bad) = bad {
            break Err(bad);
        }
        if closed {
            if deframer.mid_frame() {
                break Err((None, format!("{label} closed the connection in the middle of a frame")));
            }
            break Ok(());
        }
        // Keep the partial record at the front, then read behind it.
        buf.copy_within(start..end, 0);
        (start, end) = (0, end - start);
        match sock.read(&mut buf[end..]) {
            Ok(0) => {
                if end > 0 || deframer.mid_frame() {
                    break Err((None, format!("{label} closed the connection in the middle of a frame")));
                }
                break Ok(());
            }
            Ok(n) => end += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => break Err((None, format!("{label} closed the connection ({e})"))),
        }
    };
    // A send that broke the connection (a timeout) shut the socket, which this reader then saw
    // as an end: that first cause is what `recv` reports. A clean end from the peer still
    // makes later sends fail plainly.
    let (why, failed) = match outcome {
        Ok(()) => (format!("{label} closed the connection"), false),
        Err((alert, why)) => {
            if let Some(description) = alert {
                conn.alert(description);
            }
            (why, true)
        }
    };
    let (first, earlier) = {
        let mut broken = lock(&conn.broken);
        let earlier = broken.is_some();
        (broken.get_or_insert(why).clone(), earlier)
    };
    if failed || earlier {
        *lock(&failure) = Some(first);
    }
    let _ = sock.shutdown(Shutdown::Both);
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
            let mut tx = lock(&conn.tx);
            tx.write_alert(crate::record::CLOSE_NOTIFY, Duration::from_millis(100));
            // Also ends our reader thread, whose read returns at once.
            let _ = tx.sock.shutdown(Shutdown::Both);
        }
    }
}
