use super::*;
use crate::link::Deframer;
use std::net::TcpStream;
use std::thread;
use std::time::{SystemTime, UNIX_EPOCH};

const A: Endpoint = Endpoint::Party(PartyId(0));
const B: Endpoint = Endpoint::Party(PartyId(1));
const D: Endpoint = Endpoint::Dealer;
const WAIT: Duration = Duration::from_secs(5);

fn free_addr() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap()
}

/// Certificates and loopback addresses for a deployment.
struct Deploy {
    ca: String,
    certs: Vec<EndpointCert>,
    addrs: BTreeMap<String, SocketAddr>,
}

fn deploy(names: &[&str]) -> Deploy {
    let (ca, certs) = generate_deployment_certs(names).unwrap();
    let addrs = names.iter().map(|n| (n.to_string(), free_addr())).collect();
    Deploy { ca, certs, addrs }
}

impl Deploy {
    /// The configuration of the process that runs as `who`, holding `cert_of`'s certificate.
    fn config_with(&self, cert_of: &str) -> TcpConfig {
        let c = self.certs.iter().find(|c| c.name == cert_of).unwrap();
        let (cert, key) = (&c.cert_pem, &c.key_pem);
        let mut cfg = TcpConfig::new(self.addrs.clone(), cert.clone(), key.clone(), self.ca.clone());
        cfg.connect_timeout = Duration::from_secs(5);
        cfg
    }

    fn config(&self, who: &str) -> TcpConfig {
        self.config_with(who)
    }
}

fn session(dealer: bool) -> SessionInfo {
    SessionInfo {
        id: "test-session".into(),
        parties: vec!["alice".into(), "bob".into()],
        owners: vec![],
        has_dealer: dealer,
        dealer_window: 4,
        timeout: Duration::from_secs(5),
    }
}

/// Connects every endpoint concurrently, as separate processes would.
fn connect_all(s: &SessionInfo, who: Vec<(Endpoint, TcpConfig)>) -> Vec<Result<Box<dyn Link>>> {
    thread::scope(|sc| {
        let hs: Vec<_> = who
            .into_iter()
            .map(|(e, cfg)| sc.spawn(move || TcpTransport::new(cfg).and_then(|t| t.connect(s, e))))
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    })
}

fn three() -> (Box<dyn Link>, Box<dyn Link>, Box<dyn Link>) {
    let d = deploy(&["alice", "bob", "dealer"]);
    let s = session(true);
    let mut links =
        connect_all(&s, vec![(A, d.config("alice")), (B, d.config("bob")), (D, d.config("dealer"))]).into_iter();
    let a = links.next().unwrap().unwrap();
    let b = links.next().unwrap().unwrap();
    let dl = links.next().unwrap().unwrap();
    (a, b, dl)
}

fn pattern(n: usize, seed: u8) -> Vec<u8> {
    (0..n).map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed)).collect()
}

#[test]
fn three_endpoints_exchange_frames_in_order() {
    let (a, b, d) = three();
    assert_eq!(TcpTransport::new(deploy(&["x"]).config("x")).unwrap().name(), "tcp");
    let pairs = [(&a, A, &b, B), (&b, B, &a, A), (&d, D, &a, A), (&d, D, &b, B), (&a, A, &d, D), (&b, B, &d, D)];
    for (tx, from, _, to) in pairs {
        let n = if from == D { 4 } else { 50 }; // the dealer's window is 4
        for i in 0..n {
            tx.send(to, format!("{from}->{to} #{i}").into_bytes()).unwrap();
        }
        tx.send(to, vec![]).unwrap();
    }
    for (_, from, rx, to) in pairs {
        let n = if from == D { 4 } else { 50 };
        for i in 0..n {
            assert_eq!(rx.recv(from, WAIT).unwrap(), format!("{from}->{to} #{i}").into_bytes());
        }
        assert_eq!(rx.recv(from, WAIT).unwrap(), Vec::<u8>::new(), "empty frames arrive too");
    }
    assert!(matches!(a.send(A, vec![1]), Err(Error::Transport(_))), "no channel to oneself");
}

#[test]
fn fifty_megabytes_arrive_intact_both_ways_at_once() {
    let d = deploy(&["alice", "bob"]);
    let s = session(false);
    let mut links = connect_all(&s, vec![(A, d.config("alice")), (B, d.config("bob"))]).into_iter();
    let a = links.next().unwrap().unwrap();
    let b = links.next().unwrap().unwrap();
    let big_a = pattern(50 << 20, 1);
    let big_b = pattern(50 << 20, 2);
    thread::scope(|sc| {
        // Both send before either reads: the readers must drain while the writers block.
        let ta = sc.spawn(|| a.send(B, big_a.clone()).unwrap());
        let tb = sc.spawn(|| b.send(A, big_b.clone()).unwrap());
        let got_b = b.recv(A, Duration::from_secs(30)).unwrap();
        let got_a = a.recv(B, Duration::from_secs(30)).unwrap();
        ta.join().unwrap();
        tb.join().unwrap();
        assert!(got_b == big_a, "alice's 50 MB arrived intact");
        assert!(got_a == big_b, "bob's 50 MB arrived intact");
    });
    a.send(B, vec![7]).unwrap();
    assert_eq!(b.recv(A, WAIT).unwrap(), vec![7], "the stream is still in step");
}

#[test]
fn recv_times_out_cleanly() {
    let (a, _b, d) = three();
    let t = Instant::now();
    assert!(matches!(a.recv(B, Duration::from_millis(50)), Err(Error::Timeout(_))));
    assert!(matches!(a.recv(D, Duration::from_millis(50)), Err(Error::Timeout(_))));
    assert!(t.elapsed() < Duration::from_secs(1));
    d.send(A, vec![3]).unwrap();
    assert_eq!(a.recv(D, WAIT).unwrap(), vec![3], "a timeout loses nothing");
}

#[test]
fn dropping_a_link_closes_the_peers_channel_quickly() {
    let (a, b, d) = three();
    a.send(B, vec![9]).unwrap();
    drop(a);
    let t = Instant::now();
    assert_eq!(b.recv(A, WAIT).unwrap(), vec![9], "frames sent before the close still arrive");
    match b.recv(A, WAIT) {
        Err(Error::Transport(m)) => assert!(m.contains("alice") && m.contains("closed the connection"), "{m}"),
        other => panic!("expected a transport error, got {other:?}"),
    }
    match d.recv(A, WAIT) {
        Err(Error::Transport(m)) => assert!(m.contains("closed the connection"), "{m}"),
        other => panic!("expected a transport error, got {other:?}"),
    }
    assert!(t.elapsed() < Duration::from_secs(1), "took {:?}", t.elapsed());
    match b.send(A, vec![1]) {
        Err(Error::Transport(m)) => assert!(m.contains("alice") && m.contains("closed the connection"), "{m}"),
        other => panic!("a send after the close fails at once, got {other:?}"),
    }
    // The others still talk.
    d.send(B, vec![4]).unwrap();
    assert_eq!(b.recv(D, WAIT).unwrap(), vec![4]);
}

fn expect_refusal(r: &Result<Box<dyn Link>>, needles: &[&str]) {
    match r {
        Err(Error::Transport(m)) => {
            for n in needles {
                assert!(m.contains(n), "`{n}` missing from: {m}");
            }
        }
        Err(e) => panic!("expected a transport error, got {e}"),
        Ok(_) => panic!("expected a refusal, got a link"),
    }
}

#[test]
fn certificate_from_another_ca_is_refused() {
    let d = deploy(&["alice", "bob"]);
    let rogue = deploy(&["alice", "bob"]);
    let s = session(false);
    let t = Instant::now();

    // bob (listening) holds a certificate from a foreign CA: alice, dialing, refuses it.
    let mut bob = rogue.config("bob");
    bob.endpoints = d.addrs.clone();
    bob.ca_pem = d.ca.clone();
    bob.connect_timeout = Duration::from_secs(2);
    let r = connect_all(&s, vec![(A, d.config("alice")), (B, bob)]);
    expect_refusal(&r[0], &["expected `bob`", "[\"bob\"]", "UnknownIssuer"]);
    assert!(r[1].is_err());

    // alice (dialing) holds a certificate from a foreign CA: bob, accepting, refuses it. Anyone
    // can make such a certificate, so bob keeps listening and names it at his deadline; alice,
    // refused, fails at once.
    let mut alice = rogue.config("alice");
    alice.endpoints = d.addrs.clone();
    alice.ca_pem = d.ca.clone();
    let mut bob = d.config("bob");
    bob.connect_timeout = Duration::from_secs(2);
    let r = connect_all(&s, vec![(A, alice), (B, bob)]);
    expect_refusal(&r[1], &["heard nothing valid from alice", "expected one of [\"alice\"]", "UnknownIssuer"]);
    expect_refusal(&r[0], &["refused the certificate of alice"]);
    assert!(t.elapsed() < Duration::from_secs(6), "took {:?}", t.elapsed());
}

#[test]
fn certificate_for_the_wrong_name_is_refused() {
    let d = deploy(&["alice", "bob", "mallory"]);
    let s = session(false);
    let t = Instant::now();

    // bob listens with mallory's certificate.
    let mut bob = d.config_with("mallory");
    bob.connect_timeout = Duration::from_secs(2);
    let r = connect_all(&s, vec![(A, d.config("alice")), (B, bob)]);
    expect_refusal(&r[0], &["expected `bob`", "mallory"]);

    // alice dials with mallory's certificate.
    let r = connect_all(&s, vec![(A, d.config_with("mallory")), (B, d.config("bob"))]);
    expect_refusal(&r[1], &["expected one of [\"alice\"]", "mallory"]);
    assert!(r[0].is_err());
    assert!(t.elapsed() < Duration::from_secs(4), "took {:?}", t.elapsed());
}

#[test]
fn oversized_frame_is_refused_naming_the_peer() {
    let d = deploy(&["alice", "bob"]);
    let s = session(false);
    let mut bob = d.config("bob");
    bob.max_frame = 1024;
    let mut links = connect_all(&s, vec![(A, d.config("alice")), (B, bob)]).into_iter();
    let a = links.next().unwrap().unwrap();
    let b = links.next().unwrap().unwrap();
    a.send(B, vec![0; 1024]).unwrap();
    assert_eq!(b.recv(A, WAIT).unwrap().len(), 1024, "the limit itself is allowed");
    a.send(B, vec![0; 2000]).unwrap();
    match b.recv(A, WAIT) {
        Err(Error::Transport(m)) => assert!(m.contains("alice") && m.contains("2000 bytes"), "{m}"),
        other => panic!("expected a transport error, got {other:?}"),
    }
    // bob's sends are checked against bob's limit before anything is written.
    match b.send(A, vec![0; 1025]) {
        Err(Error::Transport(m)) => assert!(m.contains("limit"), "{m}"),
        other => panic!("expected a transport error, got {other:?}"),
    }
    // A send to alice reports the first cause, not the closed socket it would meet.
    match b.send(A, vec![1]) {
        Err(Error::Transport(m)) => assert!(m.contains("2000 bytes"), "{m}"),
        other => panic!("expected a transport error, got {other:?}"),
    }
    // And bob shut the connection, so alice learns too.
    assert!(matches!(a.recv(B, WAIT), Err(Error::Transport(_))));
}

#[test]
fn deframer_refuses_huge_lengths_without_allocating() {
    let mut d = Deframer::new(DEFAULT_MAX_FRAME);
    let mut out = vec![];
    assert_eq!(d.feed(&u64::MAX.to_le_bytes(), &mut out), Err(u64::MAX));
    let mut d = Deframer::new(100);
    // Frames split at every byte boundary reassemble.
    let mut bytes = vec![];
    for f in [&b"hello"[..], b"", b"world!"] {
        bytes.extend_from_slice(&(f.len() as u64).to_le_bytes());
        bytes.extend_from_slice(f);
    }
    for b in &bytes {
        d.feed(std::slice::from_ref(b), &mut out).unwrap();
    }
    assert_eq!(out, vec![b"hello".to_vec(), vec![], b"world!".to_vec()]);
    assert!(!d.mid_frame());
}

#[test]
fn missing_peer_times_out_at_the_deadline() {
    let d = deploy(&["alice", "bob"]);
    let mut alice = d.config("alice");
    alice.connect_timeout = Duration::from_millis(300);
    let t = Instant::now();
    let r = TcpTransport::new(alice).unwrap().connect(&session(false), A);
    expect_refusal(&r, &["could not connect to bob"]);
    assert!(t.elapsed() < Duration::from_secs(2));
}

/// A moment given as UTC date.
fn date(y: i32, m: u8, d: u8) -> SystemTime {
    let days = time::Date::from_calendar_date(y, time::Month::try_from(m).unwrap(), d).unwrap().to_julian_day()
        - time::Date::from_calendar_date(1970, time::Month::January, 1).unwrap().to_julian_day();
    UNIX_EPOCH + Duration::from_secs(days as u64 * 86_400)
}

/// Certificates under one (valid) CA, `stale`'s valid over `stale_validity` only.
fn deploy_with_stale(names: &[&str], stale: &str, stale_validity: Validity) -> Deploy {
    let (ca, certs) =
        certs::generate(names, Validity::default(), |n| if n == stale { stale_validity } else { Validity::default() })
            .unwrap();
    let addrs = names.iter().map(|n| (n.to_string(), free_addr())).collect();
    Deploy { ca, certs, addrs }
}

#[test]
fn validity_reads_in_utc() {
    let v = Validity { not_before: date(2020, 1, 1), not_after: date(2025, 1, 1) + Duration::from_secs(3661) };
    assert_eq!(v.to_string(), "from 2020-01-01 00:00:00 UTC to 2025-01-01 01:01:01 UTC");
    let d = Validity::default();
    let days = d.not_after.duration_since(d.not_before).unwrap().as_secs() / 86_400;
    assert_eq!(days, u64::from(DEFAULT_VALIDITY_DAYS), "ten years, plus the hour of clock skew");
}

#[test]
fn an_expired_certificate_is_refused_saying_when_it_expired() {
    let past = Validity { not_before: date(2020, 1, 1), not_after: date(2025, 1, 1) };
    let s = session(false);
    let t = Instant::now();

    // Every certificate expired: alice, dialing, refuses bob's and says when it expired.
    let (ca, certs) = generate_deployment_certs_with(&["alice", "bob"], past).unwrap();
    let d = Deploy { ca, certs, addrs: ["alice", "bob"].iter().map(|n| (n.to_string(), free_addr())).collect() };
    let r = connect_all(&s, vec![(A, d.config("alice")), (B, d.config("bob"))]);
    let bob_addr = d.addrs["bob"];
    match &r[0] {
        Err(Error::Transport(m)) => assert_eq!(
            m,
            &format!(
                "alice (party 0) refused the certificate of bob (party 1) at {bob_addr}: it expired on 2025-01-01 \
                 00:00:00 UTC"
            )
        ),
        other => panic!("expected a transport error, got {:?}", other.as_ref().map(|_| "a link")),
    }
    // bob learns from alice's alert, and reads its own certificate's date.
    expect_refusal(&r[1], &["refused the certificate of bob (party 1): it expired on 2025-01-01 00:00:00 UTC"]);

    // Only alice's expired: bob, accepting, refuses it and names alice.
    let d = deploy_with_stale(&["alice", "bob"], "alice", past);
    let r = connect_all(&s, vec![(A, d.config("alice")), (B, d.config("bob"))]);
    expect_refusal(
        &r[1],
        &["bob (party 1) refused the certificate of alice (party 0)", "it expired on 2025-01-01 00:00:00 UTC"],
    );
    expect_refusal(
        &r[0],
        &["bob (party 1) at", "refused the certificate of alice (party 0): it expired on 2025-01-01"],
    );

    // Not valid yet.
    let future = Validity { not_before: date(2100, 1, 1), not_after: date(2101, 1, 1) };
    let d = deploy_with_stale(&["alice", "bob"], "bob", future);
    let r = connect_all(&s, vec![(A, d.config("alice")), (B, d.config("bob"))]);
    expect_refusal(
        &r[0],
        &["refused the certificate of bob (party 1)", "it is not valid before 2100-01-01 00:00:00 UTC"],
    );
    assert!(t.elapsed() < Duration::from_secs(4), "a refusal is not retried: {:?}", t.elapsed());
}

#[test]
fn certificates_cannot_be_made_with_a_backwards_validity() {
    let v = Validity { not_before: date(2025, 1, 1), not_after: date(2020, 1, 1) };
    match generate_deployment_certs_with(&["alice"], v) {
        Err(Error::Transport(m)) => assert!(m.contains("ends (2020-01-01 00:00:00 UTC) before it starts"), "{m}"),
        other => panic!("expected an error, got {other:?}"),
    }
}

/// Waits until something listens on `addr`.
fn wait_listening(addr: SocketAddr) {
    let t = Instant::now();
    while TcpStream::connect(addr).is_err() {
        assert!(t.elapsed() < WAIT, "nobody listens on {addr}");
        thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn strangers_idle_or_garbling_on_the_port_do_not_keep_the_session_from_starting() {
    use std::io::Write;
    let d = deploy(&["alice", "bob"]);
    let s = session(false);
    // bob (second by name) listens; alice dials him.
    let bob_addr = d.addrs["bob"];
    let bob = TcpTransport::new(d.config("bob")).unwrap();
    let stop = std::sync::atomic::AtomicBool::new(false);
    thread::scope(|sc| {
        let listening = sc.spawn(|| bob.connect(&s, B));
        wait_listening(bob_addr);
        // 100 connections that never say anything, 100 that send garbage, all kept open.
        let idle: Vec<TcpStream> = (0..100).map(|_| TcpStream::connect(bob_addr).unwrap()).collect();
        let garbage: Vec<TcpStream> = (0..100u32)
            .map(|i| {
                let mut c = TcpStream::connect(bob_addr).unwrap();
                let junk: Vec<u8> =
                    (0..512u32).map(|k| (k.wrapping_mul(2654435761).wrapping_add(i) >> 7) as u8).collect();
                let _ = c.write_all(&junk);
                c
            })
            .collect();
        // Strangers with a certificate of their own CA, dialing bob as `alice`: one that refuses
        // bob's certificate (bob hears an alert) and one that trusts it (bob refuses theirs).
        let rogue = deploy(&["alice", "bob"]);
        let mut refusing = rogue.config("alice");
        refusing.endpoints = d.addrs.clone();
        refusing.connect_timeout = Duration::from_millis(500);
        let mut trusting = refusing.clone();
        trusting.ca_pem = d.ca.clone();
        for cfg in [refusing, trusting] {
            assert!(TcpTransport::new(cfg).unwrap().connect(&s, A).is_err(), "the stranger is refused");
        }
        // And more idle connections keep coming while alice connects.
        let stop = &stop;
        let flood = sc.spawn(move || {
            let mut held = vec![];
            while !stop.load(std::sync::atomic::Ordering::Relaxed) && held.len() < 400 {
                if let Ok(c) = TcpStream::connect(bob_addr) {
                    held.push(c);
                }
                thread::sleep(Duration::from_millis(1));
            }
            held.len()
        });
        let t = Instant::now();
        let a = TcpTransport::new(d.config("alice")).unwrap().connect(&s, A).expect("alice connects");
        let b = listening.join().unwrap().expect("bob accepts alice");
        // Before, bob served connections one at a time, 5 s for each idle one, and a stranger's
        // certificate or alert ended his connect at once.
        assert!(t.elapsed() < Duration::from_secs(4), "took {:?}", t.elapsed());
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        assert!(flood.join().unwrap() > 0);
        a.send(B, vec![7; 10]).unwrap();
        assert_eq!(b.recv(A, WAIT).unwrap(), vec![7; 10]);
        drop((idle, garbage));
    });
}

#[test]
fn a_wrong_hello_is_explained_not_echoed() {
    let s = session(false);
    let as_bob = crate::setup::hello(&s, "bob");
    let e = crate::setup::hello_mismatch("alice (party 0)", &as_bob, &s, "alice");
    assert!(e.contains("answered as `bob`, not `alice`"), "{e}");
    assert!(!e.contains("mpcflow-tcp/") && !e.contains('\n'), "{e}");
    let other = SessionInfo { id: "other".into(), ..s.clone() };
    let e = crate::setup::hello_mismatch("bob", &crate::setup::hello(&other, "bob"), &s, "bob");
    assert!(e.contains("in another session"), "{e}");
    let e = crate::setup::hello_mismatch("bob", b"HTTP/1.1 400 Bad Request", &s, "bob");
    assert!(e.contains("does not speak mpcflow's session protocol"), "{e}");
    // The previous transport version (which protected records through rustls) is named as such.
    let e = crate::setup::hello_mismatch("bob", b"mpcflow-tcp/1\ntest-session\nbob", &s, "bob");
    assert!(e.contains("speaks version 1 of mpcflow's transport, this endpoint 2"), "{e}");
}

/// A peer that completes TLS and then drops the connection without ending the TLS session is
/// reported in our words, not with the TLS library's message and a link to its manual, nor as
/// the OS's reset (what a close with unread data becomes).
#[test]
fn a_peer_that_hangs_up_during_setup_is_named_plainly() {
    let d = deploy(&["alice", "bob"]);
    for unread in [false, true] {
        let alice = TcpTransport::new(d.config("alice")).unwrap();
        let bob = TcpTransport::new(d.config("bob")).unwrap();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
        let server = std::thread::spawn(move || {
            let (mut sock, _) = listener.accept().unwrap();
            let cfg = alice.server_config(&Default::default(), vec!["bob".into()]).unwrap();
            let mut tls: rustls::Connection = rustls::ServerConnection::new(cfg).unwrap().into();
            crate::setup::complete_handshake(&mut tls, &mut sock).unwrap();
            if unread {
                // Bytes the peer never reads: its close becomes a reset.
                crate::setup::write_frame_blocking(&mut tls, &mut sock, &[7; 1024]).unwrap();
            }
            let _ = done_rx.recv();
            crate::setup::read_frame_blocking(&mut tls, &mut sock, 1 << 20).unwrap_err().to_string()
        });
        let mut sock = std::net::TcpStream::connect(addr).unwrap();
        let cfg = bob.client_config(&Default::default()).unwrap();
        let name = rustls::pki_types::ServerName::try_from("alice".to_string()).unwrap();
        let mut tls: rustls::Connection = rustls::ClientConnection::new(cfg, name).unwrap().into();
        crate::setup::complete_handshake(&mut tls, &mut sock).unwrap();
        if unread {
            std::thread::sleep(Duration::from_millis(100));
        }
        drop(sock);
        done_tx.send(()).unwrap();
        let e = server.join().unwrap();
        assert_eq!(e, "the peer closed the connection in the middle of the session's setup", "unread data: {unread}");
    }
}

#[test]
fn data_owners_connect_to_the_computing_parties_only() {
    let [p0, p1, o2, o3] = [0, 1, 2, 3].map(|i| Endpoint::Party(PartyId(i)));
    let k = 2;
    assert!(crate::talks(p0, p1, k) && crate::talks(p0, Endpoint::Dealer, k));
    assert!(crate::talks(o2, p0, k) && crate::talks(p1, o3, k));
    assert!(!crate::talks(o2, o3, k), "owners do not know each other");
    assert!(!crate::talks(o2, Endpoint::Dealer, k) && !crate::talks(Endpoint::Dealer, o3, k), "nor the dealer");
    assert!(!crate::talks(o2, o2, k) && !crate::talks(Endpoint::Dealer, Endpoint::Dealer, k));
}
