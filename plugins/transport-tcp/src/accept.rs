//! Accepting the peers that dial this endpoint, while strangers may be connecting too.
//!
//! Anyone who can reach the listening port can open a connection, without a certificate. So
//! each incoming connection runs its TLS handshake and hello on a thread of its own, bounded
//! by [`HANDSHAKE_TIMEOUT`]: a silent or garbling connection holds up nobody else. At most
//! [`MAX_PENDING`] connections may be in setup at once; one more evicts the oldest (its socket
//! is shut, so its thread ends at once). A real peer finishes its handshake in milliseconds, so
//! a flood of idle connections delays it by little and can no longer keep a session from
//! starting. Once every expected peer has authenticated, the connections still in setup are
//! shut and their threads joined before this returns.
//!
//! A certificate that the deployment CA did not issue still fails the connect at once, as in
//! [`crate::setup`]: a misconfigured deployment is the common case, and failing fast names it.

use crate::setup::{
    HANDSHAKE_TIMEOUT, MAX_HELLO, alert_of, complete_handshake, hello, read_frame_blocking, remaining, set_timeouts,
    write_frame_blocking,
};
use crate::verify::{Refusal, certifies, presented_names};
use crate::{Peer, TcpTransport, lock, tls_err};
use mpcflow_sdk::transport::SessionInfo;
use mpcflow_sdk::{Error, Result};
use rustls::server::ParsedCertificate;
use std::collections::VecDeque;
use std::io;
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Most connections in setup at once; a new one past this evicts the oldest.
pub(crate) const MAX_PENDING: usize = 32;

/// How one incoming connection's setup ended.
enum Admitted {
    /// `peer` authenticated and sent the right hello; the answer is not yet sent.
    Ready { peer: Peer, sock: TcpStream, tls: Box<rustls::Connection> },
    /// It failed in a way a stranger could cause: remembered as the last reason, not fatal.
    Failed(String),
    /// A certificate was refused: the deployment is misconfigured, so the connect fails.
    Fatal(Error),
}

/// The expected peers, this endpoint and the session, as every setup thread needs them.
struct Context<'a> {
    transport: &'a TcpTransport,
    session: &'a SessionInfo,
    me: &'a Peer,
    expected: Vec<Peer>,
}

impl Context<'_> {
    /// The TLS handshake and hello of one incoming connection (run on its own thread).
    fn admit(&self, mut sock: TcpStream, from: SocketAddr, deadline: Instant) -> Admitted {
        let me = self.me;
        let Some(left) = remaining(deadline) else { return Admitted::Failed("deadline passed".into()) };
        let setup = (|| -> io::Result<()> {
            sock.set_nonblocking(false)?;
            let _ = sock.set_nodelay(true);
            // One silent client must not hold this thread for the whole deadline.
            set_timeouts(&sock, Some(left.min(HANDSHAKE_TIMEOUT)))
        })();
        if let Err(e) = setup {
            return Admitted::Failed(e.to_string());
        }
        let expected_names: Vec<&str> = self.expected.iter().map(|p| p.name.as_str()).collect();
        let refusal: Refusal = Arc::default();
        let cfg = match self.transport.server_config(&refusal, self.expected.iter().map(|p| p.name.clone()).collect()) {
            Ok(c) => c,
            Err(e) => return Admitted::Fatal(e),
        };
        let mut tls: rustls::Connection = match rustls::ServerConnection::new(cfg) {
            Ok(c) => c.into(),
            Err(e) => return Admitted::Fatal(tls_err("cannot start TLS", e)),
        };
        if let Err(e) = complete_handshake(&mut tls, &mut sock) {
            if let Some(seen) = lock(&refusal).take() {
                let who = self.expected.iter().find(|p| seen.names(&p.name));
                return Admitted::Fatal(Error::Transport(match (seen.validity_problem(), who) {
                    (Some(problem), Some(peer)) => format!(
                        "{} refused the certificate of {} connecting from {from}: {problem}",
                        me.label(),
                        peer.label()
                    ),
                    (Some(problem), None) => format!(
                        "{} refused the certificate of the connection from {from}: expected one of \
                         {expected_names:?}, it presented {}, and {problem}",
                        me.label(),
                        seen.presented()
                    ),
                    (None, _) => format!(
                        "{} refused the certificate of the connection from {from}: expected one of \
                         {expected_names:?} issued by the deployment CA, it presented {} ({})",
                        me.label(),
                        seen.presented(),
                        seen.error
                    ),
                }));
            }
            if alert_of(&e).is_some() || e.to_string().contains("alert") {
                let by = format!("the connection from {from} (expected one of {expected_names:?})");
                return Admitted::Fatal(self.transport.refused_by(&by, me, &e));
            }
            return Admitted::Failed(format!("TLS with {from}: {e}"));
        }
        let Some(cert) = tls.peer_certificates().and_then(|c| c.first()).cloned() else {
            return Admitted::Failed(format!("{from} presented no certificate"));
        };
        let parsed = match ParsedCertificate::try_from(&cert) {
            Ok(p) => p,
            Err(e) => return Admitted::Failed(format!("{from} presented an unreadable certificate: {e}")),
        };
        let Some(peer) = self.expected.iter().find(|p| certifies(&parsed, &p.name)).cloned() else {
            return Admitted::Fatal(Error::Transport(format!(
                "{} refused the certificate of the connection from {from}: expected one of {expected_names:?}, \
                 it presented {}",
                me.label(),
                presented_names(&cert)
            )));
        };
        match read_frame_blocking(&mut tls, &mut sock, MAX_HELLO) {
            Ok(h) if h == hello(self.session, &peer.name) => Admitted::Ready { peer, sock, tls: Box::new(tls) },
            Ok(_) => Admitted::Failed(format!("{} is in another session", peer.label())),
            Err(e) => Admitted::Failed(format!("{} sent no hello: {e}", peer.label())),
        }
    }
}

impl TcpTransport {
    /// Accepts one connection from every endpoint in `expected` before the deadline, each
    /// incoming connection set up on its own thread (see the module docs).
    pub(crate) fn accept_all(
        &self,
        session: &SessionInfo,
        me: &Peer,
        listener: &TcpListener,
        mut expected: Vec<Peer>,
        deadline: Instant,
    ) -> Result<Vec<(Peer, TcpStream, rustls::Connection)>> {
        listener.set_nonblocking(true).map_err(|e| tls_err("cannot poll the listener", e))?;
        let ctx = Context { transport: self, session, me, expected: expected.clone() };
        let (done, results) = mpsc::channel::<(u64, Admitted)>();
        std::thread::scope(|scope| {
            // Connections in setup, oldest first, with a handle to shut each one.
            let mut pending: VecDeque<(u64, TcpStream)> = VecDeque::new();
            let mut next_id = 0u64;
            let mut out = vec![];
            let mut last = String::from("nobody connected");
            let outcome = loop {
                if expected.is_empty() {
                    break Ok(());
                }
                let Some(left) = remaining(deadline) else {
                    let names: Vec<String> = expected.iter().map(Peer::label).collect();
                    break Err(Error::Transport(format!(
                        "{} heard nothing valid from {} on {} within {:.1} s: {last}",
                        me.label(),
                        names.join(", "),
                        me.addr,
                        self.config.connect_timeout.as_secs_f64()
                    )));
                };
                let mut accepted = false;
                match listener.accept() {
                    Ok((sock, from)) => {
                        accepted = true;
                        if pending.len() >= MAX_PENDING
                            && let Some((_, oldest)) = pending.pop_front()
                        {
                            let _ = oldest.shutdown(Shutdown::Both);
                        }
                        let Ok(handle) = sock.try_clone() else { continue };
                        let (id, tx, ctx) = (next_id, done.clone(), &ctx);
                        next_id += 1;
                        let spawned = std::thread::Builder::new().name(format!("{}-accept", me.name)).spawn_scoped(
                            scope,
                            move || {
                                let _ = tx.send((id, ctx.admit(sock, from, deadline)));
                            },
                        );
                        match spawned {
                            Ok(_) => pending.push_back((id, handle)),
                            Err(e) => last = format!("cannot start a thread for the connection from {from}: {e}"),
                        }
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                    Err(e) => last = e.to_string(),
                }
                // Right after an accept, only look (more connections may be queued); else wait a little.
                let wait = if accepted { Duration::ZERO } else { left.min(Duration::from_millis(5)) };
                let Ok((id, admitted)) = results.recv_timeout(wait) else { continue };
                pending.retain(|(p, _)| *p != id);
                match admitted {
                    Admitted::Ready { peer, mut sock, mut tls } => {
                        // A second connection for a peer already accepted is dropped.
                        let Some(i) = expected.iter().position(|p| p.name == peer.name) else { continue };
                        if let Err(e) = write_frame_blocking(&mut tls, &mut sock, &hello(session, &me.name)) {
                            last = format!("hello to {}: {e}", peer.label());
                            continue;
                        }
                        expected.remove(i);
                        out.push((peer, sock, *tls));
                    }
                    Admitted::Failed(why) => last = why,
                    Admitted::Fatal(e) => break Err(e),
                }
            };
            // Strangers still in setup: shut their sockets so their threads end now.
            for (_, sock) in pending {
                let _ = sock.shutdown(Shutdown::Both);
            }
            outcome.map(|()| out)
        })
    }
}
