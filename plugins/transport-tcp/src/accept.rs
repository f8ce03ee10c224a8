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
//! A certificate that the deployment CA issued but that is refused (out of date, or naming an
//! endpoint not expected here) fails the connect at once, as in [`crate::setup`]: a
//! misconfigured deployment is the common case, and failing fast names it. A certificate of
//! anyone else's making, an alert or garbage only becomes the reason reported if no expected
//! peer has connected by the deadline: a stranger must not be able to end the session. (The
//! dialing side still fails at once on a refused certificate, since it chose the address.)

use crate::record::SetupStream;
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
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

/// Most connections in setup at once; a new one past this evicts the oldest.
pub(crate) const MAX_PENDING: usize = 32;

/// How one incoming connection's setup ended.
enum Admitted {
    /// `peer` authenticated and sent the right hello; the answer is not yet sent.
    Ready { peer: Peer, sock: SetupStream, tls: Box<rustls::Connection> },
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
    /// `authenticated` is set once the dialer's certificate names an expected peer: such a
    /// connection is no longer a candidate for eviction.
    fn admit(&self, sock: TcpStream, from: SocketAddr, deadline: Instant, authenticated: &AtomicBool) -> Admitted {
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
        let mut sock = SetupStream::new(sock);
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
                let why = match (seen.validity_problem(), who) {
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
                };
                // Only a certificate of the deployment's own CA says the deployment is wrong;
                // anyone can present one of their own making.
                return if seen.from_deployment {
                    Admitted::Fatal(Error::Transport(why))
                } else {
                    Admitted::Failed(why)
                };
            }
            if alert_of(&e).is_some() || e.to_string().contains("alert") {
                // The dialer refused this endpoint's certificate. Final when this host finds its
                // own certificate out of date; otherwise a stranger may have sent the alert.
                let by = format!("the connection from {from} (expected one of {expected_names:?})");
                let refused = self.transport.refused_by(&by, me, &e);
                return if self.transport.own_certificate_problem(me).is_some() {
                    Admitted::Fatal(refused)
                } else {
                    Admitted::Failed(match refused {
                        Error::Transport(m) => m,
                        other => other.to_string(),
                    })
                };
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
        authenticated.store(true, Ordering::Release);
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
    ) -> Result<Vec<(Peer, SetupStream, rustls::Connection)>> {
        listener.set_nonblocking(true).map_err(|e| tls_err("cannot poll the listener", e))?;
        let ctx = Context { transport: self, session, me, expected: expected.clone() };
        let (done, results) = mpsc::channel::<(u64, Admitted)>();
        std::thread::scope(|scope| {
            // Connections in setup, oldest first: id, a handle to shut it, whether it authenticated.
            let mut pending: VecDeque<(u64, TcpStream, Arc<AtomicBool>)> = VecDeque::new();
            let mut next_id = 0u64;
            let mut out = vec![];
            let mut last = String::from("nobody connected");
            let mut wait = Duration::ZERO;
            let outcome = loop {
                // Every finished setup first, so none is taken for one still running.
                while let Ok((id, admitted)) = results.recv_timeout(wait) {
                    wait = Duration::ZERO;
                    pending.retain(|(p, _, _)| *p != id);
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
                        Admitted::Fatal(e) => return self.close(pending, Err(e)),
                    }
                }
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
                match listener.accept() {
                    Ok((sock, from)) => {
                        if pending.len() >= MAX_PENDING {
                            // The oldest that has not authenticated (a peer that has is kept).
                            let victim = pending.iter().position(|(_, _, auth)| !auth.load(Ordering::Acquire));
                            if let Some((_, oldest, _)) = pending.remove(victim.unwrap_or(0)) {
                                let _ = oldest.shutdown(Shutdown::Both);
                            }
                        }
                        let Ok(handle) = sock.try_clone() else { continue };
                        let (id, tx, ctx) = (next_id, done.clone(), &ctx);
                        let auth = Arc::new(AtomicBool::new(false));
                        let flag = auth.clone();
                        next_id += 1;
                        let spawned = std::thread::Builder::new().name(format!("{}-accept", me.name)).spawn_scoped(
                            scope,
                            move || {
                                let admitted = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                                    ctx.admit(sock, from, deadline, &flag)
                                }))
                                .unwrap_or_else(|_| Admitted::Failed(format!("setting up {from} failed")));
                                let _ = tx.send((id, admitted));
                            },
                        );
                        match spawned {
                            Ok(_) => pending.push_back((id, handle, auth)),
                            Err(e) => last = format!("cannot start a thread for the connection from {from}: {e}"),
                        }
                    }
                    // Nobody waiting to be accepted: wait a little for a setup to finish.
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => wait = left.min(Duration::from_millis(5)),
                    Err(e) => last = e.to_string(),
                }
            };
            self.close(pending, outcome.map(|()| out))
        })
    }

    /// Shuts the connections still in setup (strangers, or a peer's duplicate), so their
    /// threads end now and the scope can close, and returns `outcome`.
    fn close<T>(&self, pending: VecDeque<(u64, TcpStream, Arc<AtomicBool>)>, outcome: Result<T>) -> Result<T> {
        for (_, sock, _) in pending {
            let _ = sock.shutdown(Shutdown::Both);
        }
        outcome
    }
}
