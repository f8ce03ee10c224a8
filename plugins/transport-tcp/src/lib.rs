//! The `tcp` transport: one process per party and per dealer, connected pairwise by TCP with
//! mutually authenticated TLS 1.3 (rustls, ring provider only).
//!
//! # Connections
//!
//! Endpoints are ordered as the session lists them: the parties in `SessionInfo::parties`
//! order, then the dealer. Every process listens on its own configured address, and the
//! lower-ordered side of each pair dials the higher-ordered side, retrying with exponential
//! backoff until the connect deadline. A process first dials every higher endpoint, then
//! accepts every lower one, so the handshakes complete in descending order and never wait on
//! each other in a cycle. Parties talk to every other party; the dealer talks to every party.
//!
//! Both sides present a certificate issued by the deployment's CA. The dialer checks that the
//! listener's certificate names the endpoint it dialed (subject alternative name = endpoint
//! name); the listener finds which expected endpoint the dialer's certificate names. Any
//! refused certificate is an [`Error::Transport`] that names the expected and the presented
//! identity. After the handshake each side sends a hello frame with the session id, so links of
//! one session never see another's frames.
//!
//! # Frames
//!
//! Each frame is `length: u64 little endian ‖ bytes`. A length above the configured maximum
//! (default 1 GiB) is refused before anything is allocated, with an error naming the peer.
//!
//! # Threads
//!
//! The transport uses plain std threads and blocking sockets rather than a tokio runtime:
//! [`Link::send`] is called from inside the runtime's tokio tasks, where blocking on another
//! runtime (`block_on`) would panic, while a blocking socket write is what the `mem`
//! transport's blocking channel send already does there. Each connection has one reader
//! thread that decrypts and pushes whole frames into a per-peer channel (bounded by the
//! session's `dealer_window` for frames from the dealer, so a slow party pushes back on the
//! dealer through TCP), and `send` encrypts and writes under a per-connection write lock. The
//! rustls state sits behind its own mutex that is never held across socket I/O, so a reader
//! never waits on a writer that is blocked on a full socket (which would deadlock two peers
//! sending large frames to each other).

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender, bounded, unbounded};
use mpcflow_sdk::transport::{Link, SessionInfo, Transport};
use mpcflow_sdk::{Endpoint, Error, PartyId, Result};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::{WebPkiServerVerifier, verify_server_name};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::server::{ParsedCertificate, WebPkiClientVerifier};
use rustls::{CertificateError, ClientConfig, DigitallySignedStruct, DistinguishedName, RootCertStore};
use rustls::{ServerConfig, SignatureScheme};
use std::collections::{BTreeMap, HashMap};
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// The default largest frame a link accepts: 1 GiB.
pub const DEFAULT_MAX_FRAME: u64 = 1 << 30;

/// The name of the dealer endpoint in [`TcpConfig::endpoints`] and in its certificate.
pub const DEALER: &str = "dealer";

/// Plaintext bytes encrypted per lock of the TLS state when sending.
const CHUNK: usize = 256 * 1024;
/// The longest one incoming handshake may take. (A refused certificate still fails the
/// connect at once: a misconfigured deployment is the common case, and failing fast names it.)
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);
/// Largest hello frame.
const MAX_HELLO: u64 = 64 * 1024;
/// Protocol tag in the hello frame.
const HELLO_TAG: &str = "mpcflow-tcp/1";

/// Everything one process needs to connect: where every endpoint listens, its own identity
/// and the deployment's CA. `Debug` never shows the private key.
#[derive(Clone)]
pub struct TcpConfig {
    /// Socket address of every endpoint, by name: each party by its name in the pipeline
    /// file, and the dealer as [`DEALER`]. This process listens on its own entry.
    pub endpoints: BTreeMap<String, SocketAddr>,
    /// This process's certificate chain (PEM, leaf first).
    pub cert_chain_pem: String,
    /// This process's private key (PEM: PKCS#8, PKCS#1 or SEC1).
    pub key_pem: String,
    /// The deployment CA's certificate (PEM); peers must present certificates it issued.
    pub ca_pem: String,
    /// How long `connect` may take in all, dialing retries and handshakes included.
    pub connect_timeout: Duration,
    /// First wait between two dialing attempts.
    pub backoff_initial: Duration,
    /// Longest wait between two dialing attempts (the wait doubles up to it).
    pub backoff_max: Duration,
    /// Largest frame sent or accepted, in bytes.
    pub max_frame: u64,
}

impl TcpConfig {
    /// A configuration with the default deadline (30 s), backoff (10 ms doubling to 1 s) and
    /// frame limit ([`DEFAULT_MAX_FRAME`]).
    pub fn new(
        endpoints: BTreeMap<String, SocketAddr>,
        cert_chain_pem: impl Into<String>,
        key_pem: impl Into<String>,
        ca_pem: impl Into<String>,
    ) -> Self {
        TcpConfig {
            endpoints,
            cert_chain_pem: cert_chain_pem.into(),
            key_pem: key_pem.into(),
            ca_pem: ca_pem.into(),
            connect_timeout: Duration::from_secs(30),
            backoff_initial: Duration::from_millis(10),
            backoff_max: Duration::from_secs(1),
            max_frame: DEFAULT_MAX_FRAME,
        }
    }
}

impl std::fmt::Debug for TcpConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TcpConfig")
            .field("endpoints", &self.endpoints)
            .field("connect_timeout", &self.connect_timeout)
            .field("max_frame", &self.max_frame)
            .finish_non_exhaustive()
    }
}

/// One endpoint's identity as PEM. `Debug` never shows the private key.
#[derive(Clone)]
pub struct EndpointCert {
    /// Endpoint name (its certificate's subject alternative name).
    pub name: String,
    /// Certificate, PEM.
    pub cert_pem: String,
    /// Private key, PEM.
    pub key_pem: String,
}

impl std::fmt::Debug for EndpointCert {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EndpointCert").field("name", &self.name).finish_non_exhaustive()
    }
}

/// A fresh deployment CA and one certificate per endpoint name, all PEM:
/// `(ca_cert_pem, [(name, cert_pem, key_pem)])`. Each certificate names its endpoint as its
/// only subject alternative name and may be used both to dial and to accept. The CA's private
/// key is discarded, so no further certificate can be issued under this CA.
pub fn generate_deployment_certs(names: &[&str]) -> Result<(String, Vec<EndpointCert>)> {
    use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair, KeyUsagePurpose};
    let fail = |e: rcgen::Error| Error::Transport(format!("cannot generate certificates: {e}"));
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).map_err(fail)?;
    let ca_key = KeyPair::generate().map_err(fail)?;
    // A name of its own, so a certificate of another deployment reads as "unknown issuer".
    let tag: String = ca_key.public_key_raw().iter().rev().take(6).map(|b| format!("{b:02x}")).collect();
    ca_params.distinguished_name.push(DnType::CommonName, format!("mpcflow deployment CA {tag}"));
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca = CertifiedIssuer::self_signed(ca_params, ca_key).map_err(fail)?;
    let mut out = Vec::with_capacity(names.len());
    for name in names {
        ServerName::try_from(name.to_string())
            .map_err(|_| Error::Transport(format!("`{name}` cannot be a certificate name (it must be a DNS name)")))?;
        let mut params = CertificateParams::new(vec![name.to_string()]).map_err(fail)?;
        params.distinguished_name.push(DnType::CommonName, *name);
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages =
            vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth, rcgen::ExtendedKeyUsagePurpose::ClientAuth];
        let key = KeyPair::generate().map_err(fail)?;
        let cert = params.signed_by(&key, &ca).map_err(fail)?;
        out.push(EndpointCert { name: name.to_string(), cert_pem: cert.pem(), key_pem: key.serialize_pem() });
    }
    Ok((ca.pem(), out))
}

/// The TCP + TLS transport of one process. One instance serves any number of sessions, one
/// after another (each `connect` binds the process's address for the time it accepts).
pub struct TcpTransport {
    config: TcpConfig,
    provider: Arc<CryptoProvider>,
    roots: Arc<RootCertStore>,
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
}

impl std::fmt::Debug for TcpTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TcpTransport").field("endpoints", &self.config.endpoints).finish_non_exhaustive()
    }
}

fn tls_err(what: &str, e: impl std::fmt::Display) -> Error {
    Error::Transport(format!("{what}: {e}"))
}

impl TcpTransport {
    /// A transport for `config`; fails if a PEM cannot be read.
    pub fn new(config: TcpConfig) -> Result<Self> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut roots = RootCertStore::empty();
        for c in CertificateDer::pem_slice_iter(config.ca_pem.as_bytes()) {
            let c = c.map_err(|e| tls_err("cannot read the CA certificate", e))?;
            roots.add(c).map_err(|e| tls_err("cannot use the CA certificate", e))?;
        }
        if roots.is_empty() {
            return Err(Error::Transport("the CA PEM holds no certificate".into()));
        }
        let chain = CertificateDer::pem_slice_iter(config.cert_chain_pem.as_bytes())
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(|e| tls_err("cannot read this endpoint's certificate chain", e))?;
        if chain.is_empty() {
            return Err(Error::Transport("this endpoint's certificate PEM holds no certificate".into()));
        }
        let key = PrivateKeyDer::from_pem_slice(config.key_pem.as_bytes())
            .map_err(|e| tls_err("cannot read this endpoint's private key", e))?;
        Ok(TcpTransport { config, provider, roots: Arc::new(roots), chain, key })
    }

    fn client_config(&self, seen: &Refusal) -> Result<Arc<ClientConfig>> {
        let inner = WebPkiServerVerifier::builder_with_provider(self.roots.clone(), self.provider.clone())
            .build()
            .map_err(|e| tls_err("cannot build the certificate verifier", e))?;
        let verifier = Arc::new(Recording { inner, refusal: seen.clone(), expected: vec![] });
        let cfg = ClientConfig::builder_with_provider(self.provider.clone())
            .with_protocol_versions(&[&rustls::version::TLS13])
            .map_err(|e| tls_err("cannot configure TLS 1.3", e))?
            .dangerous()
            .with_custom_certificate_verifier(verifier)
            .with_client_auth_cert(self.chain.clone(), self.key.clone_key())
            .map_err(|e| tls_err("cannot use this endpoint's certificate and key", e))?;
        Ok(Arc::new(cfg))
    }

    fn server_config(&self, seen: &Refusal, expected: Vec<String>) -> Result<Arc<ServerConfig>> {
        let inner = WebPkiClientVerifier::builder_with_provider(self.roots.clone(), self.provider.clone())
            .build()
            .map_err(|e| tls_err("cannot build the certificate verifier", e))?;
        let verifier = Arc::new(Recording { inner, refusal: seen.clone(), expected });
        let cfg = ServerConfig::builder_with_provider(self.provider.clone())
            .with_protocol_versions(&[&rustls::version::TLS13])
            .map_err(|e| tls_err("cannot configure TLS 1.3", e))?
            .with_client_cert_verifier(verifier)
            .with_single_cert(self.chain.clone(), self.key.clone_key())
            .map_err(|e| tls_err("cannot use this endpoint's certificate and key", e))?;
        Ok(Arc::new(cfg))
    }
}

/// A session endpoint with its order, name and address.
#[derive(Clone, Debug)]
struct Peer {
    endpoint: Endpoint,
    name: String,
    addr: SocketAddr,
}

impl Peer {
    /// How errors name it: `bob (party 1)` or `dealer`.
    fn label(&self) -> String {
        match self.endpoint {
            Endpoint::Party(_) => format!("{} ({})", self.name, self.endpoint),
            Endpoint::Dealer => self.name.clone(),
        }
    }
}

fn talks(a: Endpoint, b: Endpoint) -> bool {
    a != b && !(a == Endpoint::Dealer && b == Endpoint::Dealer)
}

impl Transport for TcpTransport {
    fn name(&self) -> &str {
        "tcp"
    }

    fn connect(&self, session: &SessionInfo, me: Endpoint) -> Result<Box<dyn Link>> {
        let mut all: Vec<(Endpoint, String)> =
            session.parties.iter().enumerate().map(|(i, n)| (Endpoint::Party(PartyId(i as u16)), n.clone())).collect();
        if session.has_dealer {
            all.push((Endpoint::Dealer, DEALER.to_string()));
        }
        let mut order = Vec::with_capacity(all.len());
        for (endpoint, name) in all {
            if endpoint != Endpoint::Dealer && name == DEALER {
                return Err(Error::Transport(format!("a party may not be named `{DEALER}`")));
            }
            if ServerName::try_from(name.clone()).is_err() {
                return Err(Error::Transport(format!("`{name}` cannot be a certificate name (it must be a DNS name)")));
            }
            let addr = *self
                .config
                .endpoints
                .get(&name)
                .ok_or_else(|| Error::Transport(format!("no address configured for `{name}`")))?;
            order.push(Peer { endpoint, name, addr });
        }
        let my_pos = order
            .iter()
            .position(|p| p.endpoint == me)
            .ok_or_else(|| Error::Transport(format!("{me} is not an endpoint of session {}", session.id)))?;
        let deadline = Instant::now() + self.config.connect_timeout;
        let mine = order[my_pos].clone();
        let listener = if order[..my_pos].iter().any(|p| talks(p.endpoint, me)) {
            Some(
                TcpListener::bind(mine.addr)
                    .map_err(|e| Error::Transport(format!("{} cannot listen on {}: {e}", mine.label(), mine.addr)))?,
            )
        } else {
            None
        };
        let mut conns: Vec<(Peer, TcpStream, rustls::Connection)> = vec![];
        for peer in order[my_pos + 1..].iter().filter(|p| talks(p.endpoint, me)) {
            let (sock, tls) = self.dial(session, &mine, peer, deadline)?;
            conns.push((peer.clone(), sock, tls));
        }
        if let Some(listener) = listener {
            let expected: Vec<Peer> = order[..my_pos].iter().filter(|p| talks(p.endpoint, me)).cloned().collect();
            conns.extend(self.accept_all(session, &mine, &listener, expected, deadline)?);
        }
        TcpLink::start(session, mine, conns, self.config.max_frame)
    }
}

/// What a recording verifier saw when it refused a certificate.
type Refusal = Arc<Mutex<Option<String>>>;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Whether a certificate names the endpoint `name`.
fn certifies(parsed: &ParsedCertificate<'_>, name: &str) -> bool {
    ServerName::try_from(name).is_ok_and(|n| verify_server_name(parsed, &n).is_ok())
}

/// The subject alternative names of a certificate, read by webpki.
fn presented_names(cert: &CertificateDer<'_>) -> String {
    let Ok(parsed) = ParsedCertificate::try_from(cert) else {
        return "an unparsable certificate".into();
    };
    let probe = ServerName::try_from("mpcflow-probe.invalid").expect("valid DNS name");
    match verify_server_name(&parsed, &probe) {
        Err(rustls::Error::InvalidCertificate(CertificateError::NotValidForNameContext { presented, .. })) => {
            // webpki writes `DnsName("bob")`; show `bob`.
            let names: Vec<&str> = presented
                .iter()
                .map(|n| n.strip_prefix("DnsName(\"").and_then(|n| n.strip_suffix("\")")).unwrap_or(n))
                .collect();
            format!("a certificate for {names:?}")
        }
        _ => "a certificate without names".into(),
    }
}

/// Wraps a webpki verifier and records which names a refused certificate presented.
#[derive(Debug)]
struct Recording<V: ?Sized> {
    inner: Arc<V>,
    refusal: Refusal,
    /// For a listener: the names a dialer's certificate may carry.
    expected: Vec<String>,
}

impl<V: ?Sized> Recording<V> {
    fn note<T>(
        &self,
        cert: &CertificateDer<'_>,
        r: std::result::Result<T, rustls::Error>,
    ) -> std::result::Result<T, rustls::Error> {
        if let Err(e) = &r {
            *lock(&self.refusal) = Some(format!("presented {} ({e})", presented_names(cert)));
        }
        r
    }
}

impl ServerCertVerifier for Recording<WebPkiServerVerifier> {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        let r = self.inner.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now);
        self.note(end_entity, r)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

impl ClientCertVerifier for Recording<dyn ClientCertVerifier> {
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        self.inner.root_hint_subjects()
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> std::result::Result<ClientCertVerified, rustls::Error> {
        let r = self.inner.verify_client_cert(end_entity, intermediates, now).and_then(|ok| {
            // Refuse an unexpected name inside the handshake, so the dialer gets an alert.
            let parsed = ParsedCertificate::try_from(end_entity)?;
            let named = self.expected.iter().any(|name| certifies(&parsed, name));
            if named { Ok(ok) } else { Err(rustls::Error::InvalidCertificate(CertificateError::NotValidForName)) }
        });
        self.note(end_entity, r)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// Why one connection attempt failed.
enum Attempt {
    /// Worth another try before the deadline (refused, reset, stale peer).
    Retry(String),
    /// Final (a refused certificate).
    Fatal(Error),
}

fn remaining(deadline: Instant) -> Option<Duration> {
    deadline.checked_duration_since(Instant::now()).filter(|d| !d.is_zero())
}

fn set_timeouts(sock: &TcpStream, t: Option<Duration>) -> io::Result<()> {
    sock.set_read_timeout(t)?;
    sock.set_write_timeout(t)
}

/// Writes one frame on a connection still in setup (blocking, single-threaded).
fn write_frame_blocking(tls: &mut rustls::Connection, sock: &mut TcpStream, bytes: &[u8]) -> io::Result<()> {
    tls.writer().write_all(&(bytes.len() as u64).to_le_bytes())?;
    tls.writer().write_all(bytes)?;
    while tls.wants_write() {
        tls.write_tls(sock)?;
    }
    Ok(())
}

/// Reads exactly `buf.len()` plaintext bytes on a connection still in setup.
fn read_exact_blocking(tls: &mut rustls::Connection, sock: &mut TcpStream, buf: &mut [u8]) -> io::Result<()> {
    let mut got = 0;
    while got < buf.len() {
        match tls.reader().read(&mut buf[got..]) {
            Ok(0) => return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "the peer closed the connection")),
            Ok(k) => got += k,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                tls.read_tls(sock)?;
                if let Err(e) = tls.process_new_packets() {
                    while tls.wants_write() && tls.write_tls(sock).is_ok() {}
                    return Err(io::Error::new(io::ErrorKind::InvalidData, e.to_string()));
                }
                while tls.wants_write() {
                    tls.write_tls(sock)?;
                }
            }
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Reads one frame of at most `max` bytes on a connection still in setup.
fn read_frame_blocking(tls: &mut rustls::Connection, sock: &mut TcpStream, max: u64) -> io::Result<Vec<u8>> {
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

fn hello(session: &SessionInfo, name: &str) -> Vec<u8> {
    format!("{HELLO_TAG}\n{}\n{name}", session.id).into_bytes()
}

fn complete_handshake(tls: &mut rustls::Connection, sock: &mut TcpStream) -> io::Result<()> {
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
    /// Dials `peer` until the deadline and completes the handshake and hello.
    fn dial(
        &self,
        session: &SessionInfo,
        me: &Peer,
        peer: &Peer,
        deadline: Instant,
    ) -> Result<(TcpStream, rustls::Connection)> {
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
    ) -> std::result::Result<(TcpStream, rustls::Connection), Attempt> {
        let mut sock = TcpStream::connect_timeout(&peer.addr, left.min(Duration::from_secs(5)))
            .map_err(|e| Attempt::Retry(e.to_string()))?;
        let left = remaining(deadline).ok_or_else(|| Attempt::Retry("deadline passed".into()))?;
        let io = |e: io::Error| Attempt::Retry(e.to_string());
        set_timeouts(&sock, Some(left)).map_err(io)?;
        let _ = sock.set_nodelay(true);
        let refusal: Refusal = Arc::default();
        let cfg = self.client_config(&refusal).map_err(Attempt::Fatal)?;
        let name = ServerName::try_from(peer.name.clone())
            .map_err(|_| Attempt::Fatal(Error::Transport(format!("`{}` is not a DNS name", peer.name))))?;
        let mut tls: rustls::Connection = rustls::ClientConnection::new(cfg, name)
            .map_err(|e| Attempt::Fatal(tls_err("cannot start TLS", e)))?
            .into();
        let refused = |e: &dyn std::fmt::Display| -> Attempt {
            match lock(&refusal).take() {
                Some(seen) => Attempt::Fatal(Error::Transport(format!(
                    "{} refused the certificate of {} at {}: expected `{}` issued by the deployment CA, {} {seen}",
                    me.label(),
                    peer.label(),
                    peer.addr,
                    peer.name,
                    peer.name
                ))),
                None => match e.to_string() {
                    s if s.contains("alert") => Attempt::Fatal(Error::Transport(format!(
                        "{} at {} refused the certificate of {} (`{}`): {s}",
                        peer.label(),
                        peer.addr,
                        me.label(),
                        me.name
                    ))),
                    s => Attempt::Retry(format!("TLS with {}: {s}", peer.label())),
                },
            }
        };
        complete_handshake(&mut tls, &mut sock).map_err(|e| refused(&e))?;
        write_frame_blocking(&mut tls, &mut sock, &hello(session, &me.name)).map_err(|e| refused(&e))?;
        let back = read_frame_blocking(&mut tls, &mut sock, MAX_HELLO).map_err(|e| refused(&e))?;
        if back != hello(session, &peer.name) {
            return Err(Attempt::Retry(format!(
                "{} answered for another session: {:?}",
                peer.label(),
                String::from_utf8_lossy(&back)
            )));
        }
        Ok((sock, tls))
    }

    /// Accepts one connection from every endpoint in `expected` before the deadline.
    fn accept_all(
        &self,
        session: &SessionInfo,
        me: &Peer,
        listener: &TcpListener,
        mut expected: Vec<Peer>,
        deadline: Instant,
    ) -> Result<Vec<(Peer, TcpStream, rustls::Connection)>> {
        listener.set_nonblocking(true).map_err(|e| tls_err("cannot poll the listener", e))?;
        let mut out = vec![];
        let mut last = String::from("nobody connected");
        while !expected.is_empty() {
            let Some(left) = remaining(deadline) else {
                let names: Vec<String> = expected.iter().map(Peer::label).collect();
                return Err(Error::Transport(format!(
                    "{} heard nothing valid from {} on {} within {:.1} s: {last}",
                    me.label(),
                    names.join(", "),
                    me.addr,
                    self.config.connect_timeout.as_secs_f64()
                )));
            };
            let (mut sock, from) = match listener.accept() {
                Ok(s) => s,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    std::thread::sleep(left.min(Duration::from_millis(5)));
                    continue;
                }
                Err(e) => {
                    last = e.to_string();
                    continue;
                }
            };
            let expected_names: Vec<&str> = expected.iter().map(|p| p.name.as_str()).collect();
            let setup = (|| -> io::Result<()> {
                sock.set_nonblocking(false)?;
                let _ = sock.set_nodelay(true);
                // One silent client must not hold the others up for the whole deadline.
                set_timeouts(&sock, Some(left.min(HANDSHAKE_TIMEOUT)))
            })();
            if let Err(e) = setup {
                last = e.to_string();
                continue;
            }
            let refusal: Refusal = Arc::default();
            let cfg = self.server_config(&refusal, expected.iter().map(|p| p.name.clone()).collect())?;
            let mut tls: rustls::Connection =
                rustls::ServerConnection::new(cfg).map_err(|e| tls_err("cannot start TLS", e))?.into();
            if let Err(e) = complete_handshake(&mut tls, &mut sock) {
                if let Some(seen) = lock(&refusal).take() {
                    return Err(Error::Transport(format!(
                        "{} refused the certificate of the connection from {from}: expected one of {expected_names:?} \
                         issued by the deployment CA, it {seen}",
                        me.label()
                    )));
                }
                if e.to_string().contains("alert") {
                    return Err(Error::Transport(format!(
                        "the connection from {from} (expected one of {expected_names:?}) refused the certificate \
                         of {} (`{}`): {e}",
                        me.label(),
                        me.name
                    )));
                }
                last = format!("TLS with {from}: {e}");
                continue;
            }
            let Some(cert) = tls.peer_certificates().and_then(|c| c.first()).cloned() else {
                last = format!("{from} presented no certificate");
                continue;
            };
            let parsed =
                ParsedCertificate::try_from(&cert).map_err(|e| tls_err("cannot parse a peer certificate", e))?;
            let found = expected.iter().position(|p| certifies(&parsed, &p.name));
            let Some(i) = found else {
                return Err(Error::Transport(format!(
                    "{} refused the certificate of the connection from {from}: expected one of {expected_names:?}, \
                     it presented {}",
                    me.label(),
                    presented_names(&cert)
                )));
            };
            let peer = expected[i].clone();
            let hello_in = match read_frame_blocking(&mut tls, &mut sock, MAX_HELLO) {
                Ok(h) => h,
                Err(e) => {
                    last = format!("{} sent no hello: {e}", peer.label());
                    continue;
                }
            };
            if hello_in != hello(session, &peer.name) {
                last = format!("{} is in another session: {:?}", peer.label(), String::from_utf8_lossy(&hello_in));
                continue;
            }
            if let Err(e) = write_frame_blocking(&mut tls, &mut sock, &hello(session, &me.name)) {
                last = format!("hello to {}: {e}", peer.label());
                continue;
            }
            expected.remove(i);
            out.push((peer, sock, tls));
        }
        Ok(out)
    }
}

/// Reassembles length-prefixed frames from a byte stream (no `Debug`: it holds frame bytes).
struct Deframer {
    max: u64,
    header: [u8; 8],
    have: usize,
    /// The frame being filled and its length, once the header is complete.
    body: Option<(Vec<u8>, usize)>,
}

impl Deframer {
    fn new(max: u64) -> Self {
        Deframer { max, header: [0; 8], have: 0, body: None }
    }

    /// Whether a frame is partly read.
    fn mid_frame(&self) -> bool {
        self.have > 0 || self.body.is_some()
    }

    /// Feeds bytes; whole frames go to `out`. Fails on a length above the limit, before any
    /// allocation for it.
    fn feed(&mut self, mut bytes: &[u8], out: &mut Vec<Vec<u8>>) -> std::result::Result<(), u64> {
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
                        // Grow with the data rather than trusting the length for the whole buffer.
                        self.body = Some((Vec::with_capacity(len.min(16 << 20)), len));
                    }
                }
                Some((buf, len)) => {
                    let take = (*len - buf.len()).min(bytes.len());
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
struct TcpLink {
    me: Peer,
    max_frame: u64,
    conns: HashMap<Endpoint, Arc<Conn>>,
    inbox: HashMap<Endpoint, Inbox>,
}

impl TcpLink {
    fn start(
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
    let mut plain = vec![0u8; 256 * 1024];
    let (mut start, mut end) = (0usize, 0usize);
    let mut sock_eof = false;
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
                let mut out = vec![];
                let _ = tls.write_tls(&mut out);
                break 'outer Err(format!("TLS error from {label}: {e}"));
            }
            loop {
                match tls.reader().read(&mut plain) {
                    Ok(0) => {
                        closed = true;
                        break;
                    }
                    Ok(n) => {
                        if let Err(len) = deframer.feed(&plain[..n], &mut frames) {
                            break 'outer Err(format!(
                                "{label} sent a frame of {len} bytes, more than the limit of {max_frame} bytes"
                            ));
                        }
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
        conn.send(&frame, self.max_frame)
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

#[cfg(test)]
mod tests;
