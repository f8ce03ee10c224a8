//! Payload throughput of the `tcp` transport between two processes on loopback, against a plain
//! TCP copy and TLS 1.3 with rustls alone, all measured in the same run:
//!
//! ```sh
//! cargo bench -p mpcflow-transport-tcp --bench throughput
//! ```
//!
//! The bench runs itself a second time as the receiving process (`MPCFLOW_BENCH_ROLE=receiver`;
//! instructions and the receiver's certificate arrive on its stdin, "done" goes back on its
//! stdout). Each repetition sends the same payload three ways, one after the other:
//!
//! - plain TCP: `u64` length + bytes written to a socket and read into one reused buffer;
//! - rustls alone: the same bytes over mutually authenticated TLS 1.3 (same provider and cipher
//!   suite, same certificates), read into one reused buffer: the cost of TLS without mpcflow;
//! - the transport: `Link::send` / `Link::recv` of a `tcp` session, which also moves every
//!   frame through its reader thread and a channel and hands out a `Vec` per frame; the
//!   receiver gives each back to the buffer pool once checked, as a party's protocol gives
//!   back material, so frames land in recycled buffers as in a run.
//!
//! The clock runs from the first byte sent until the receiver reports the last byte read; the
//! connection setup is not timed. The figure is the median of the repetitions, in MB/s
//! (10^6 bytes). `MPCFLOW_BENCH_TOTAL_MIB`, `MPCFLOW_BENCH_FRAME_MIB` and `MPCFLOW_BENCH_REPS`
//! change the defaults (1024, 4, 5). Run without `--bench` (as `cargo test --benches` does),
//! it moves 16 MiB once and checks every byte instead.

use mpcflow_sdk::transport::{SessionInfo, Transport};
use mpcflow_sdk::{Endpoint, PartyId};
use mpcflow_transport_tcp::{TcpConfig, TcpTransport, generate_deployment_certs};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::server::WebPkiClientVerifier;
use rustls::{ClientConfig, ClientConnection, RootCertStore, ServerConfig, ServerConnection, StreamOwned};
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

type Res<T> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

const ROLE: &str = "MPCFLOW_BENCH_ROLE";
const A: Endpoint = Endpoint::Party(PartyId(0));
const B: Endpoint = Endpoint::Party(PartyId(1));

/// What one run moves.
#[derive(Clone, Copy)]
struct Plan {
    frames: usize,
    frame: usize,
    /// Check every byte received (smoke mode) rather than only the lengths.
    verify: bool,
}

/// One endpoint's identity: certificate, key and the CA, all PEM.
struct Identity {
    cert: String,
    key: String,
    ca: String,
}

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn payload(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i as u8).wrapping_mul(31).wrapping_add(5)).collect()
}

fn main() -> Res<()> {
    if std::env::var(ROLE).as_deref() == Ok("receiver") {
        return receiver();
    }
    let bench = std::env::args().any(|a| a == "--bench");
    let (plan, reps) = if bench {
        let frame = env_usize("MPCFLOW_BENCH_FRAME_MIB", 4) << 20;
        let total = env_usize("MPCFLOW_BENCH_TOTAL_MIB", 1024) << 20;
        (Plan { frames: (total / frame).max(1), frame, verify: false }, env_usize("MPCFLOW_BENCH_REPS", 5).max(1))
    } else {
        (Plan { frames: 16, frame: 1 << 20, verify: true }, 1)
    };
    sender(plan, reps, bench)
}

// ---------------------------------------------------------------------------------------------
// The sending process: runs the repetitions and prints the figures.

/// The receiving process, driven over its stdin and stdout.
struct Receiver {
    child: Child,
    to: ChildStdin,
    from: BufReader<ChildStdout>,
}

impl Receiver {
    fn start(plan: Plan, bob: &Identity) -> Res<Receiver> {
        let mut child = Command::new(std::env::current_exe()?)
            .env(ROLE, "receiver")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()?;
        let mut to = child.stdin.take().ok_or("no stdin")?;
        let from = BufReader::new(child.stdout.take().ok_or("no stdout")?);
        writeln!(to, "{} {} {}", plan.frames, plan.frame, u8::from(plan.verify))?;
        // The key goes through a pipe, never the command line or the environment.
        for pem in [&bob.cert, &bob.key, &bob.ca] {
            writeln!(to, "{}", pem.len())?;
            to.write_all(pem.as_bytes())?;
        }
        to.flush()?;
        Ok(Receiver { child, to, from })
    }

    fn command(&mut self, line: &str) -> Res<()> {
        writeln!(self.to, "{line}")?;
        Ok(self.to.flush()?)
    }

    fn line(&mut self) -> Res<String> {
        let mut l = String::new();
        if self.from.read_line(&mut l)? == 0 {
            return Err("the receiving process ended early".into());
        }
        Ok(l.trim().to_string())
    }

    /// Waits for "done" and returns the time since `t`.
    fn done(&mut self, t: Instant) -> Res<Duration> {
        match self.line()?.as_str() {
            "done" => Ok(t.elapsed()),
            other => Err(format!("the receiver said `{other}`").into()),
        }
    }

    fn port(&mut self) -> Res<u16> {
        let l = self.line()?;
        Ok(l.strip_prefix("port ").ok_or_else(|| format!("expected a port, got `{l}`"))?.parse()?)
    }
}

fn roots(ca: &str) -> Res<Arc<RootCertStore>> {
    let mut roots = RootCertStore::empty();
    for c in CertificateDer::pem_slice_iter(ca.as_bytes()) {
        roots.add(c?)?;
    }
    Ok(Arc::new(roots))
}

fn chain(pem: &str) -> Res<Vec<CertificateDer<'static>>> {
    Ok(CertificateDer::pem_slice_iter(pem.as_bytes()).collect::<Result<Vec<_>, _>>()?)
}

/// The transport's provider and suite.
fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    mpcflow_transport_tcp::crypto_provider()
}

fn free_addr() -> Res<SocketAddr> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?)
}

fn send_plain(rx: &mut Receiver, plan: Plan, frame: &[u8]) -> Res<Duration> {
    rx.command("plain")?;
    let mut sock = TcpStream::connect(("127.0.0.1", rx.port()?))?;
    sock.set_nodelay(true)?;
    let t = Instant::now();
    for _ in 0..plan.frames {
        sock.write_all(&(frame.len() as u64).to_le_bytes())?;
        sock.write_all(frame)?;
    }
    rx.done(t)
}

fn send_rustls(rx: &mut Receiver, plan: Plan, frame: &[u8], alice: &Identity) -> Res<Duration> {
    rx.command("rustls")?;
    let cfg = ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .with_root_certificates(roots(&alice.ca)?)
        .with_client_auth_cert(chain(&alice.cert)?, PrivateKeyDer::from_pem_slice(alice.key.as_bytes())?)?;
    let sock = TcpStream::connect(("127.0.0.1", rx.port()?))?;
    sock.set_nodelay(true)?;
    let conn = ClientConnection::new(Arc::new(cfg), ServerName::try_from("bob")?)?;
    let mut tls = StreamOwned::new(conn, sock);
    while tls.conn.is_handshaking() {
        tls.conn.complete_io(&mut tls.sock)?;
    }
    let t = Instant::now();
    for _ in 0..plan.frames {
        tls.write_all(&(frame.len() as u64).to_le_bytes())?;
        tls.write_all(frame)?;
    }
    tls.flush()?;
    rx.done(t)
}

fn session(n: usize) -> SessionInfo {
    SessionInfo {
        id: format!("throughput-{n}"),
        parties: vec!["alice".into(), "bob".into()],
        owners: vec![],
        has_dealer: false,
        dealer_window: 4,
        timeout: Duration::from_secs(60),
    }
}

fn send_link(rx: &mut Receiver, plan: Plan, frame: &[u8], alice: &Identity, n: usize) -> Res<Duration> {
    let (a, b) = (free_addr()?, free_addr()?);
    rx.command(&format!("link {a} {b} {n}"))?;
    let endpoints = BTreeMap::from([("alice".to_string(), a), ("bob".to_string(), b)]);
    let cfg = TcpConfig::new(endpoints, alice.cert.clone(), alice.key.clone(), alice.ca.clone());
    let link = TcpTransport::new(cfg)?.connect(&session(n), A)?;
    // Frames are owned by the caller of `send`: make them before the clock starts.
    let frames: Vec<Vec<u8>> = (0..plan.frames).map(|_| frame.to_vec()).collect();
    let t = Instant::now();
    for f in frames {
        link.send(B, f)?;
    }
    let took = rx.done(t)?;
    drop(link);
    Ok(took)
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn sender(plan: Plan, reps: usize, bench: bool) -> Res<()> {
    let (ca, certs) = generate_deployment_certs(&["alice", "bob"])?;
    let identity = |name: &str| -> Res<Identity> {
        let c = certs.iter().find(|c| c.name == name).ok_or("no certificate")?;
        Ok(Identity { cert: c.cert_pem.clone(), key: c.key_pem.clone(), ca: ca.clone() })
    };
    let (alice, bob) = (identity("alice")?, identity("bob")?);
    let mut rx = Receiver::start(plan, &bob)?;
    let frame = payload(plan.frame);
    let bytes = (plan.frames * plan.frame) as f64;
    let mut times: [Vec<Duration>; 3] = Default::default();
    for rep in 0..reps {
        // Interleaved, so drift on the machine touches every row alike.
        times[0].push(send_plain(&mut rx, plan, &frame)?);
        times[1].push(send_rustls(&mut rx, plan, &frame, &alice)?);
        times[2].push(send_link(&mut rx, plan, &frame, &alice, rep)?);
        if bench {
            let mbs: Vec<String> = times.iter().map(|t| format!("{:.0}", bytes / 1e6 / t[rep].as_secs_f64())).collect();
            eprintln!("  repetition {}: {} MB/s", rep + 1, mbs.join(" / "));
        }
    }
    rx.command("quit")?;
    rx.child.wait()?;
    let mbs: Vec<f64> = times.iter().map(|t| bytes / 1e6 / median(t.clone()).as_secs_f64()).collect();
    let mode = if bench { "" } else { " (smoke run: every byte checked; run with `cargo bench` for figures)" };
    println!(
        "tcp transport throughput, two processes on loopback: {} MiB in {} MiB frames, median of {reps}{mode}",
        (plan.frames * plan.frame) >> 20,
        plan.frame >> 20
    );
    for (name, v) in ["plain TCP copy", "TLS 1.3, rustls alone", "tcp transport Link (TLS 1.3)"].iter().zip(&mbs) {
        println!("  {name:<30} {v:>8.0} MB/s");
    }
    println!(
        "  ratios: rustls alone / plain TCP = {:.2}, Link / plain TCP = {:.2}, Link / rustls alone = {:.2}",
        mbs[1] / mbs[0],
        mbs[2] / mbs[0],
        mbs[2] / mbs[1]
    );
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// The receiving process.

/// Checks a received frame: its length always, its bytes in smoke mode.
fn check(got: &[u8], plan: Plan, want: &[u8]) -> Res<()> {
    if got.len() != plan.frame || (plan.verify && got != want) {
        return Err(format!("a frame of {} bytes arrived damaged", got.len()).into());
    }
    Ok(())
}

fn read_framed(r: &mut impl Read, plan: Plan, buf: &mut [u8], want: &[u8]) -> Res<()> {
    let mut len = [0u8; 8];
    for _ in 0..plan.frames {
        r.read_exact(&mut len)?;
        let n = u64::from_le_bytes(len) as usize;
        if n != buf.len() {
            return Err(format!("a frame of {n} bytes, expected {}", buf.len()).into());
        }
        r.read_exact(buf)?;
        check(buf, plan, want)?;
    }
    Ok(())
}

fn receiver() -> Res<()> {
    let mut input = BufReader::new(std::io::stdin().lock());
    let mut line = String::new();
    input.read_line(&mut line)?;
    let nums: Vec<usize> = line.split_whitespace().map(str::parse).collect::<Result<_, _>>()?;
    let [frames, frame, verify] = nums[..] else { return Err("bad header".into()) };
    let plan = Plan { frames, frame, verify: verify == 1 };
    let mut pem = || -> Res<String> {
        let mut l = String::new();
        input.read_line(&mut l)?;
        let mut buf = vec![0u8; l.trim().parse()?];
        input.read_exact(&mut buf)?;
        Ok(String::from_utf8(buf)?)
    };
    let bob = Identity { cert: pem()?, key: pem()?, ca: pem()? };
    let want = if plan.verify { payload(plan.frame) } else { vec![] };
    let mut buf = vec![0u8; plan.frame];
    let mut out = std::io::stdout().lock();
    loop {
        line.clear();
        if input.read_line(&mut line)? == 0 {
            return Ok(());
        }
        let words: Vec<&str> = line.split_whitespace().collect();
        match words[..] {
            ["plain"] => {
                let l = TcpListener::bind("127.0.0.1:0")?;
                writeln!(out, "port {}", l.local_addr()?.port())?;
                out.flush()?;
                let (mut sock, _) = l.accept()?;
                sock.set_nodelay(true)?;
                read_framed(&mut sock, plan, &mut buf, &want)?;
            }
            ["rustls"] => {
                let verifier = WebPkiClientVerifier::builder_with_provider(roots(&bob.ca)?, provider()).build()?;
                let cfg = ServerConfig::builder_with_provider(provider())
                    .with_protocol_versions(&[&rustls::version::TLS13])?
                    .with_client_cert_verifier(verifier)
                    .with_single_cert(chain(&bob.cert)?, PrivateKeyDer::from_pem_slice(bob.key.as_bytes())?)?;
                let l = TcpListener::bind("127.0.0.1:0")?;
                writeln!(out, "port {}", l.local_addr()?.port())?;
                out.flush()?;
                let (sock, _) = l.accept()?;
                sock.set_nodelay(true)?;
                let mut tls = StreamOwned::new(ServerConnection::new(Arc::new(cfg))?, sock);
                read_framed(&mut tls, plan, &mut buf, &want)?;
            }
            ["link", a, b, n] => {
                let endpoints = BTreeMap::from([("alice".to_string(), a.parse()?), ("bob".to_string(), b.parse()?)]);
                let cfg = TcpConfig::new(endpoints, bob.cert.clone(), bob.key.clone(), bob.ca.clone());
                let link = TcpTransport::new(cfg)?.connect(&session(n.parse()?), B)?;
                for _ in 0..plan.frames {
                    let frame = link.recv(A, Duration::from_secs(60))?;
                    check(&frame, plan, &want)?;
                    // As a party's protocol does with material once used: the buffer goes back
                    // for the next frame, which then lands in mapped pages.
                    mpcflow_sdk::pool::give(frame);
                }
            }
            ["quit"] => return Ok(()),
            _ => return Err(format!("unknown instruction `{}`", line.trim()).into()),
        }
        writeln!(out, "done")?;
        out.flush()?;
    }
}
