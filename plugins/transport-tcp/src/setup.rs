//! Connection setup: dialing with backoff, accepting, the TLS handshake and the hello frame.
//!
//! Setup is single-threaded and blocking, with deadlines on every socket, and it is where a
//! misconfigured deployment shows: a peer that is not up yet is retried until the connect
//! deadline, while a refused certificate (another CA, the wrong name, expired) fails at once
//! with an error that names both endpoints and the reason, because waiting would not fix it.
//! Once every connection has exchanged hellos, [`crate::link`] takes the sockets over.

use crate::record::SetupStream;
use crate::verify::{Recording, Refusal, own_validity_problem};
use crate::{Peer, TcpTransport, lock, tls_err};
use mpcflow_sdk::transport::SessionInfo;
use mpcflow_sdk::{Error, Result};
use rustls::client::WebPkiServerVerifier;
use rustls::pki_types::ServerName;
use rustls::server::WebPkiClientVerifier;
use rustls::{AlertDescription, ClientConfig, ServerConfig};
use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The longest one incoming handshake may take. (A refused certificate still fails the
/// connect at once: a misconfigured deployment is the common case, and failing fast names it.)
pub(crate) const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);
/// Largest hello frame.
pub(crate) const MAX_HELLO: u64 = 64 * 1024;
/// Protocol tag in the hello frame. Version 2: after setup the link protects records itself,
/// with key updates of its own (see `crate::record`), which a version 1 peer would misread.
const HELLO_TAG: &str = "mpcflow-tcp/2";

/// Why one connection attempt failed.
enum Attempt {
    /// Worth another try before the deadline (refused, reset, stale peer).
    Retry(String),
    /// Final (a refused certificate).
    Fatal(Error),
}

pub(crate) fn remaining(deadline: Instant) -> Option<Duration> {
    deadline.checked_duration_since(Instant::now()).filter(|d| !d.is_zero())
}

pub(crate) fn set_timeouts(sock: &TcpStream, t: Option<Duration>) -> io::Result<()> {
    sock.set_read_timeout(t)?;
    sock.set_write_timeout(t)
}

/// The TLS alert inside an error from the connection, if the peer sent one.
pub(crate) fn alert_of(e: &io::Error) -> Option<AlertDescription> {
    match e.get_ref()?.downcast_ref::<rustls::Error>()? {
        rustls::Error::AlertReceived(a) => Some(*a),
        _ => None,
    }
}

/// Writes one frame on a connection still in setup (blocking, single-threaded).
pub(crate) fn write_frame_blocking(
    tls: &mut rustls::Connection,
    sock: &mut impl Write,
    bytes: &[u8],
) -> io::Result<()> {
    tls.writer().write_all(&(bytes.len() as u64).to_le_bytes())?;
    tls.writer().write_all(bytes)?;
    while tls.wants_write() {
        tls.write_tls(sock)?;
    }
    Ok(())
}

/// A peer gone during setup, in the user's words: rustls says it with a link to its manual
/// (a close without `close_notify`), the OS as a reset (a close with data unread); both mean
/// the peer hung up. Other errors pass unchanged.
fn hung_up(e: io::Error) -> io::Error {
    match e.kind() {
        io::ErrorKind::UnexpectedEof | io::ErrorKind::ConnectionReset | io::ErrorKind::ConnectionAborted => {
            io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the peer closed the connection in the middle of the session's setup",
            )
        }
        _ => e,
    }
}

/// Reads exactly `buf.len()` plaintext bytes on a connection still in setup.
fn read_exact_blocking(tls: &mut rustls::Connection, sock: &mut (impl Read + Write), buf: &mut [u8]) -> io::Result<()> {
    let mut got = 0;
    while got < buf.len() {
        match tls.reader().read(&mut buf[got..]) {
            Ok(0) => return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "the peer closed the connection")),
            Ok(k) => got += k,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                tls.read_tls(sock).map_err(hung_up)?;
                if let Err(e) = tls.process_new_packets() {
                    while tls.wants_write() && tls.write_tls(sock).is_ok() {}
                    // Keep the rustls error inside, so an alert can be told apart.
                    return Err(io::Error::new(io::ErrorKind::InvalidData, e));
                }
                while tls.wants_write() {
                    tls.write_tls(sock)?;
                }
            }
            Err(e) => return Err(hung_up(e)),
        }
    }
    Ok(())
}

/// Reads one frame of at most `max` bytes on a connection still in setup.
pub(crate) fn read_frame_blocking(
    tls: &mut rustls::Connection,
    sock: &mut (impl Read + Write),
    max: u64,
) -> io::Result<Vec<u8>> {
    let mut len = [0u8; 8];
    read_exact_blocking(tls, sock, &mut len)?;
    let len = u64::from_le_bytes(len);
    if len > max {
        return Err(io::Error::new(io::ErrorKind::InvalidData, format!("hello of {len} bytes")));
    }
    let mut buf = vec![0u8; len as usize];
    read_exact_blocking(tls, sock, &mut buf)?;
    Ok(buf)
}

pub(crate) fn hello(session: &SessionInfo, name: &str) -> Vec<u8> {
    format!("{HELLO_TAG}\n{}\n{name}", session.id).into_bytes()
}

/// What a wrong hello means, in words: another endpoint behind this address, another session,
/// or not mpcflow at all.
pub(crate) fn hello_mismatch(who: &str, got: &[u8], session: &SessionInfo, expected: &str) -> String {
    let text = String::from_utf8_lossy(got);
    let mut parts = text.splitn(3, '\n');
    let (tag, id, name) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let name: String = name.chars().take(64).filter(|c| !c.is_control()).collect();
    if let Some(version) = tag.strip_prefix("mpcflow-tcp/").filter(|_| tag != HELLO_TAG) {
        let version: String = version.chars().take(16).filter(|c| c.is_ascii_alphanumeric()).collect();
        format!(
            "{who} speaks version {version} of mpcflow's transport, this endpoint {}: run the same mpcflow \
             release everywhere",
            &HELLO_TAG["mpcflow-tcp/".len()..]
        )
    } else if tag != HELLO_TAG {
        format!("{who} does not speak mpcflow's session protocol (is another program on that port?)")
    } else if id != session.id {
        format!("{who} is in another session")
    } else {
        format!(
            "{who} answered as `{name}`, not `{expected}`: it runs with {name}'s identity; check which \
             endpoint the deployment file puts at that address"
        )
    }
}

pub(crate) fn complete_handshake(tls: &mut rustls::Connection, sock: &mut (impl Read + Write)) -> io::Result<()> {
    let r = (|| {
        while tls.is_handshaking() {
            tls.complete_io(sock)?;
        }
        while tls.wants_write() {
            tls.write_tls(sock)?;
        }
        Ok(())
    })();
    if r.is_err() {
        // Send the alert that says why, if rustls queued one.
        while tls.wants_write() {
            if tls.write_tls(sock).is_err() {
                break;
            }
        }
    }
    r
}

impl TcpTransport {
    fn server_verifier(&self) -> Result<Arc<WebPkiServerVerifier>> {
        WebPkiServerVerifier::builder_with_provider(self.roots.clone(), self.provider.clone())
            .build()
            .map_err(|e| tls_err("cannot build the certificate verifier", e))
    }

    pub(crate) fn client_config(&self, seen: &Refusal) -> Result<Arc<ClientConfig>> {
        let verifier = Arc::new(Recording { inner: self.server_verifier()?, refusal: seen.clone(), expected: vec![] });
        let mut cfg = ClientConfig::builder_with_provider(self.provider.clone())
            .with_protocol_versions(&[&rustls::version::TLS13])
            .map_err(|e| tls_err("cannot configure TLS 1.3", e))?
            .dangerous()
            .with_custom_certificate_verifier(verifier)
            .with_client_auth_cert(self.chain.clone(), self.key.clone_key())
            .map_err(|e| tls_err("cannot use this endpoint's certificate and key", e))?;
        // The link protects records itself once setup is done (see `crate::record`).
        cfg.enable_secret_extraction = true;
        Ok(Arc::new(cfg))
    }

    pub(crate) fn server_config(&self, seen: &Refusal, expected: Vec<String>) -> Result<Arc<ServerConfig>> {
        let inner = WebPkiClientVerifier::builder_with_provider(self.roots.clone(), self.provider.clone())
            .build()
            .map_err(|e| tls_err("cannot build the certificate verifier", e))?;
        let verifier = Arc::new(Recording { inner, refusal: seen.clone(), expected });
        let mut cfg = ServerConfig::builder_with_provider(self.provider.clone())
            .with_protocol_versions(&[&rustls::version::TLS13])
            .map_err(|e| tls_err("cannot configure TLS 1.3", e))?
            .with_client_cert_verifier(verifier)
            .with_single_cert(self.chain.clone(), self.key.clone_key())
            .map_err(|e| tls_err("cannot use this endpoint's certificate and key", e))?;
        // The link protects records itself once setup is done (see `crate::record`), and takes
        // no handshake messages after it: no session tickets (every session is a fresh handshake).
        cfg.enable_secret_extraction = true;
        cfg.send_tls13_tickets = 0;
        Ok(Arc::new(cfg))
    }

    /// Why this endpoint's own certificate is out of date now, if it is.
    pub(crate) fn own_certificate_problem(&self, me: &Peer) -> Option<String> {
        self.server_verifier().ok().and_then(|v| own_validity_problem(&v, &self.chain, &me.name))
    }

    /// The error when `by` (the peer, in words) ended the handshake with an alert, which
    /// means it refused this endpoint's certificate.
    pub(crate) fn refused_by(&self, by: &str, me: &Peer, e: &io::Error) -> Error {
        if alert_of(e) == Some(AlertDescription::CertificateExpired) {
            let own = self.server_verifier().ok().and_then(|v| own_validity_problem(&v, &self.chain, &me.name));
            return Error::Transport(match own {
                Some(problem) => format!("{by} refused the certificate of {}: {problem} ({e})", me.label()),
                None => format!(
                    "{by} refused the certificate of {} (`{}`) as expired or not yet valid, though this host's clock \
                     finds it valid: compare the two hosts' clocks ({e})",
                    me.label(),
                    me.name
                ),
            });
        }
        Error::Transport(format!("{by} refused the certificate of {} (`{}`): {e}", me.label(), me.name))
    }

    /// Dials `peer` until the deadline and completes the handshake and hello.
    pub(crate) fn dial(
        &self,
        session: &SessionInfo,
        me: &Peer,
        peer: &Peer,
        deadline: Instant,
    ) -> Result<(SetupStream, rustls::Connection)> {
        let mut backoff = self.config.backoff_initial.max(Duration::from_millis(1));
        let mut last = String::from("no attempt");
        loop {
            let Some(left) = remaining(deadline) else {
                return Err(Error::Transport(format!(
                    "{} could not connect to {} at {} within {:.1} s: {last}",
                    me.label(),
                    peer.label(),
                    peer.addr,
                    self.config.connect_timeout.as_secs_f64()
                )));
            };
            match self.dial_once(session, me, peer, deadline, left) {
                Ok(c) => return Ok(c),
                Err(Attempt::Fatal(e)) => return Err(e),
                Err(Attempt::Retry(why)) => last = why,
            }
            let Some(left) = remaining(deadline) else { continue };
            std::thread::sleep(backoff.min(left));
            backoff = (backoff * 2).min(self.config.backoff_max.max(Duration::from_millis(1)));
        }
    }

    fn dial_once(
        &self,
        session: &SessionInfo,
        me: &Peer,
        peer: &Peer,
        deadline: Instant,
        left: Duration,
    ) -> std::result::Result<(SetupStream, rustls::Connection), Attempt> {
        let sock = TcpStream::connect_timeout(&peer.addr, left.min(Duration::from_secs(5)))
            .map_err(|e| Attempt::Retry(e.to_string()))?;
        let left = remaining(deadline).ok_or_else(|| Attempt::Retry("deadline passed".into()))?;
        let io = |e: io::Error| Attempt::Retry(e.to_string());
        set_timeouts(&sock, Some(left)).map_err(io)?;
        let _ = sock.set_nodelay(true);
        let mut sock = SetupStream::new(sock);
        let refusal: Refusal = Arc::default();
        let cfg = self.client_config(&refusal).map_err(Attempt::Fatal)?;
        let name = ServerName::try_from(peer.name.clone())
            .map_err(|_| Attempt::Fatal(Error::Transport(format!("`{}` is not a DNS name", peer.name))))?;
        let mut tls: rustls::Connection = rustls::ClientConnection::new(cfg, name)
            .map_err(|e| Attempt::Fatal(tls_err("cannot start TLS", e)))?
            .into();
        let refused = |e: io::Error| -> Attempt {
            if let Some(seen) = lock(&refusal).take() {
                let why = match seen.validity_problem() {
                    Some(problem) if seen.names(&peer.name) => problem,
                    Some(problem) => format!("{problem}, and it is {}, not `{}`", seen.presented(), peer.name),
                    None => format!(
                        "expected `{}` issued by the deployment CA, {} presented {} ({})",
                        peer.name,
                        peer.name,
                        seen.presented(),
                        seen.error
                    ),
                };
                return Attempt::Fatal(Error::Transport(format!(
                    "{} refused the certificate of {} at {}: {why}",
                    me.label(),
                    peer.label(),
                    peer.addr
                )));
            }
            if alert_of(&e).is_some() || e.to_string().contains("alert") {
                return Attempt::Fatal(self.refused_by(&format!("{} at {}", peer.label(), peer.addr), me, &e));
            }
            Attempt::Retry(format!("TLS with {}: {e}", peer.label()))
        };
        complete_handshake(&mut tls, &mut sock).map_err(refused)?;
        write_frame_blocking(&mut tls, &mut sock, &hello(session, &me.name)).map_err(refused)?;
        let back = read_frame_blocking(&mut tls, &mut sock, MAX_HELLO).map_err(refused)?;
        if back != hello(session, &peer.name) {
            return Err(Attempt::Retry(hello_mismatch(&peer.label(), &back, session, &peer.name)));
        }
        Ok((sock, tls))
    }
}
