//! The record layer against rustls's own: records each side seals, the other opens; tampered,
//! replayed and unexpected records are refused; setup reads stop at record boundaries.

use super::*;
use crate::{TcpConfig, TcpTransport, generate_deployment_certs};
use std::collections::BTreeMap;
use std::net::TcpListener;

/// A client (bob) and server (alice) of one deployment, handshaken in memory with the
/// transport's own configurations.
fn handshaken() -> (rustls::Connection, rustls::Connection) {
    let (mut client, mut server) = fresh();
    for _ in 0..10 {
        pump(&mut client, &mut server);
        pump(&mut server, &mut client);
    }
    assert!(!client.is_handshaking() && !server.is_handshaking());
    (client, server)
}

/// A client (bob) and a server (alice) of one deployment, not yet handshaken, with the
/// transport's own configurations.
fn fresh() -> (rustls::Connection, rustls::Connection) {
    let (ca, certs) = generate_deployment_certs(&["alice", "bob"]).unwrap();
    let transport = |who: &str| {
        let c = certs.iter().find(|c| c.name == who).unwrap();
        TcpTransport::new(TcpConfig::new(BTreeMap::new(), c.cert_pem.clone(), c.key_pem.clone(), ca.clone())).unwrap()
    };
    let (alice, bob) = (transport("alice"), transport("bob"));
    let server = rustls::ServerConnection::new(alice.server_config(&Default::default(), vec!["bob".into()]).unwrap());
    let name = rustls::pki_types::ServerName::try_from("alice".to_string()).unwrap();
    let client = rustls::ClientConnection::new(bob.client_config(&Default::default()).unwrap(), name);
    (client.unwrap().into(), server.unwrap().into())
}

/// Moves what `from` has to send into `to`.
fn pump(from: &mut rustls::Connection, to: &mut rustls::Connection) {
    let mut wire = vec![];
    while from.wants_write() {
        from.write_tls(&mut wire).unwrap();
    }
    let mut rd = &wire[..];
    while !rd.is_empty() {
        to.read_tls(&mut rd).unwrap();
        to.process_new_packets().unwrap();
    }
}

/// Splits a byte stream into whole records, as the reader does.
fn records(mut wire: &[u8]) -> Vec<Vec<u8>> {
    let mut out = vec![];
    while !wire.is_empty() {
        let n = Opener::record_len(wire).unwrap().unwrap();
        out.push(wire[..n].to_vec());
        wire = &wire[n..];
    }
    out
}

fn pattern(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i as u8).wrapping_mul(73).wrapping_add(5)).collect()
}

#[test]
fn the_cipher_suite_is_aes_128_gcm() {
    let (client, _) = handshaken();
    assert_eq!(client.negotiated_cipher_suite().unwrap().suite(), rustls::CipherSuite::TLS13_AES_128_GCM_SHA256);
}

#[test]
fn records_rustls_seals_open_here() {
    let (mut client, server) = handshaken();
    let (_, mut opener) = take_secrets(server).unwrap();
    // Sizes around the record size, so rustls splits some across records.
    let data = pattern(3 * MAX_PLAINTEXT + 77);
    let mut sent = vec![];
    for piece in [&data[..1], &data[1..MAX_PLAINTEXT + 1], &data[MAX_PLAINTEXT + 1..]] {
        client.writer().write_all(piece).unwrap();
        while client.wants_write() {
            client.write_tls(&mut sent).unwrap();
        }
    }
    let mut got = vec![];
    for mut r in records(&sent) {
        match opener.open(&mut r).unwrap() {
            Opened::Data(d) => got.extend_from_slice(d),
            other => panic!("only data was sent: {other:?}"),
        }
    }
    assert_eq!(got, data);
    // rustls's close_notify reads as the end.
    client.send_close_notify();
    let mut wire = vec![];
    client.write_tls(&mut wire).unwrap();
    let mut r = records(&wire).remove(0);
    assert_eq!(opener.open(&mut r).unwrap(), Opened::Closed);
}

#[test]
fn records_sealed_here_open_in_rustls() {
    let (mut client, server) = handshaken();
    let (mut sealer, _) = take_secrets(server).unwrap();
    let data = pattern(2 * MAX_PLAINTEXT + 5);
    let mut wire = vec![];
    sealer.seal_data(&data, &mut wire).unwrap();
    assert_eq!(records(&wire).len(), 3, "whole records of 2^14 bytes, then the rest");
    sealer.seal(APPLICATION_DATA, &[], &mut wire).unwrap();
    sealer.seal_alert(CLOSE_NOTIFY, &mut wire).unwrap();
    let mut rd = &wire[..];
    let (mut got, mut closed) = (vec![], false);
    while !rd.is_empty() {
        client.read_tls(&mut rd).unwrap();
        client.process_new_packets().unwrap();
        let mut piece = [0u8; 4096];
        loop {
            match client.reader().read(&mut piece) {
                Ok(0) => break closed = true,
                Ok(n) => got.extend_from_slice(&piece[..n]),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) => panic!("{e}"),
            }
        }
    }
    assert_eq!(got, data);
    assert!(closed, "the close_notify reads as a clean end");
}

#[test]
fn a_fatal_alert_sealed_here_reaches_rustls_as_that_alert() {
    let (mut client, server) = handshaken();
    let (mut sealer, _) = take_secrets(server).unwrap();
    let mut wire = vec![];
    sealer.seal_alert(BAD_RECORD_MAC, &mut wire).unwrap();
    client.read_tls(&mut &wire[..]).unwrap();
    let e = client.process_new_packets().unwrap_err();
    assert_eq!(e, rustls::Error::AlertReceived(rustls::AlertDescription::BadRecordMac));
}

#[test]
fn tampered_replayed_and_misplaced_records_are_refused() {
    let (mut client, server) = handshaken();
    let (_, mut opener) = take_secrets(server).unwrap();
    let mut wire = vec![];
    client.writer().write_all(b"first").unwrap();
    client.write_tls(&mut wire).unwrap();
    client.writer().write_all(b"second").unwrap();
    client.write_tls(&mut wire).unwrap();
    let rs = records(&wire);
    let first = opener.0.seq;
    // One bit of the ciphertext, the tag or the header (the additional data) breaks the tag.
    for at in [3, HEADER + 2, rs[0].len() - 1] {
        let mut r = rs[0].clone();
        r[at] ^= 1;
        assert_eq!(opener.open(&mut r).unwrap_err().alert, Some(BAD_RECORD_MAC), "flipped byte {at}");
        opener.0.seq = first;
    }
    // Out of order: the second record under the first sequence number.
    assert_eq!(opener.open(&mut rs[1].clone()).unwrap_err().alert, Some(BAD_RECORD_MAC));
    opener.0.seq = first;
    // The genuine records open in order, and the first cannot be replayed.
    assert_eq!(opener.open(&mut rs[0].clone()).unwrap(), Opened::Data(b"first"));
    assert_eq!(opener.open(&mut rs[0].clone()).unwrap_err().alert, Some(BAD_RECORD_MAC), "replayed");
    opener.0.seq = first + 1;
    assert_eq!(opener.open(&mut rs[1].clone()).unwrap(), Opened::Data(b"second"));
    // Another session's keys open nothing of this one.
    let (_, mut other) = take_secrets(handshaken().1).unwrap();
    other.0.seq = first;
    assert_eq!(other.open(&mut rs[0].clone()).unwrap_err().alert, Some(BAD_RECORD_MAC));
    // Headers that are not an application record of a size TLS allows.
    let mut bad = rs[0].clone();
    bad[0] = 22;
    assert_eq!(Opener::record_len(&bad).unwrap_err().alert, Some(UNEXPECTED_MESSAGE));
    let too_long = (MAX_BODY as u16 + 1).to_be_bytes();
    let e = Opener::record_len(&[23, 3, 3, too_long[0], too_long[1]]).unwrap_err();
    assert_eq!(e.alert, Some(RECORD_OVERFLOW));
    assert_eq!(Opener::record_len(&rs[0][..4]).unwrap(), None, "a header still arriving");
}

/// Both ends of one session taken over: (client's sealer, opener), (server's sealer, opener).
fn both() -> ((Sealer, Opener), (Sealer, Opener)) {
    let (client, server) = handshaken();
    (take_secrets(client).unwrap(), take_secrets(server).unwrap())
}

/// Opens every record of `wire` in turn.
fn open_all(opener: &mut Opener, wire: &[u8]) -> Vec<Result<String, RecordError>> {
    records(wire)
        .into_iter()
        .map(|mut r| {
            opener.open(&mut r).map(|o| match o {
                Opened::Data(d) => String::from_utf8(d.to_vec()).unwrap(),
                Opened::KeyUpdated => "<key update>".into(),
                Opened::Closed => "<close>".into(),
            })
        })
        .collect()
}

fn texts(opened: Vec<Result<String, RecordError>>) -> Vec<String> {
    opened.into_iter().map(|r| r.unwrap()).collect()
}

#[test]
fn both_ends_taken_over_talk_both_ways() {
    let ((mut c_tx, mut c_rx), (mut s_tx, mut s_rx)) = both();
    let (mut up, mut down) = (vec![], vec![]);
    c_tx.seal_data(b"to the server", &mut up).unwrap();
    s_tx.seal_data(b"to the client", &mut down).unwrap();
    assert_eq!(texts(open_all(&mut s_rx, &up)), ["to the server"]);
    assert_eq!(texts(open_all(&mut c_rx, &down)), ["to the client"]);
    // Each direction has a key-update chain of its own, the same at both of its ends.
    assert!(c_tx.0.chain == s_rx.0.chain && s_tx.0.chain == c_rx.0.chain);
    assert_ne!(c_tx.0.chain, s_tx.0.chain, "the two directions' chains differ");
    // Both update, and each direction still talks.
    for dir in [&mut c_tx.0, &mut s_tx.0, &mut c_rx.0, &mut s_rx.0] {
        dir.seq = REKEY_AT;
    }
    let (mut up, mut down) = (vec![], vec![]);
    c_tx.seal_data(b"up", &mut up).unwrap();
    s_tx.seal_data(b"down", &mut down).unwrap();
    assert_eq!(texts(open_all(&mut s_rx, &up)), ["<key update>", "up"]);
    assert_eq!(texts(open_all(&mut c_rx, &down)), ["<key update>", "down"]);
    assert_ne!(c_tx.0.chain, s_tx.0.chain);
}

#[test]
fn a_sender_updates_its_key_and_the_receiver_follows() {
    let ((mut tx, _), (_, mut rx)) = both();
    // Skip ahead to the update, as if REKEY_AT records had passed.
    tx.0.seq = REKEY_AT;
    rx.0.seq = REKEY_AT;
    let mut wire = vec![];
    tx.seal_data(b"after", &mut wire).unwrap();
    tx.seal_data(b"again", &mut wire).unwrap();
    assert_eq!(tx.0.seq, 2, "the new key counts from 0");
    assert_eq!(texts(open_all(&mut rx, &wire)), ["<key update>", "after", "again"]);
    // A second update: what follows it does not open under the key before it.
    tx.0.seq = REKEY_AT;
    let mut wire = vec![];
    tx.seal_data(b"third key", &mut wire).unwrap();
    rx.0.seq = 0;
    let e = rx.open(&mut records(&wire)[1].clone()).unwrap_err();
    assert_eq!(e.alert, Some(BAD_RECORD_MAC), "the update skipped");
    rx.0.seq = REKEY_AT;
    assert_eq!(texts(open_all(&mut rx, &wire)), ["<key update>", "third key"]);
}

#[test]
fn a_tls_key_update_is_refused_in_words() {
    // rustls ratchets its own traffic secret, which the link does not follow.
    let (mut client, server) = handshaken();
    let (_, mut opener) = take_secrets(server).unwrap();
    client.refresh_traffic_keys().unwrap();
    let mut wire = vec![];
    client.write_tls(&mut wire).unwrap();
    let e = opener.open(&mut records(&wire).remove(0)).unwrap_err();
    assert_eq!(e.alert, Some(UNEXPECTED_MESSAGE));
    assert!(e.why.contains("other than mpcflow's key update"), "{}", e.why);
}

#[test]
fn a_key_stops_at_its_record_limit() {
    let ((mut tx, _), (_, mut rx)) = both();
    let mut wire = vec![];
    tx.seal_data(b"one", &mut wire).unwrap();
    rx.0.seq = RECORD_LIMIT;
    let e = open_all(&mut rx, &wire).remove(0).unwrap_err();
    assert!(e.why.contains("the most one key may protect"), "{}", e.why);
}

#[test]
fn padding_is_stripped_and_malformed_insides_are_refused() {
    let ((mut tx, _), (_, mut rx)) = both();
    let full = vec![0u8; MAX_PLAINTEXT];
    // Each inner plaintext (content, type, padding) and what opening it gives: text or an alert.
    type Case<'a> = (&'a [&'a [u8]], Result<&'a str, u8>);
    let cases: [Case; 6] = [
        (&[b"padded", &[APPLICATION_DATA, 0, 0, 0]], Ok("padded")),
        (&[&[APPLICATION_DATA]], Ok("")),
        (&[&[0, 0, 0]], Err(UNEXPECTED_MESSAGE)),
        (&[&full, &[APPLICATION_DATA, 0]], Err(RECORD_OVERFLOW)),
        (&[&[2], &[ALERT]], Err(DECODE_ERROR)),
        (&[&[1, 2, 3], &[99]], Err(UNEXPECTED_MESSAGE)),
    ];
    for (inner, expected) in cases {
        let mut wire = vec![];
        tx.seal_inner(inner, &[], &mut wire).unwrap();
        let got = open_all(&mut rx, &wire).remove(0);
        match expected {
            Ok(text) => assert_eq!(got.unwrap(), text),
            Err(alert) => assert_eq!(got.unwrap_err().alert, Some(alert)),
        }
    }
    // The peer's fatal alert ends the connection with its name, and nothing is sent back.
    let mut wire = vec![];
    tx.seal_alert(BAD_RECORD_MAC, &mut wire).unwrap();
    let e = open_all(&mut rx, &wire).remove(0).unwrap_err();
    assert_eq!(e.alert, None);
    assert!(e.why.contains("BadRecordMac"), "{}", e.why);
}

#[test]
fn unread_plaintext_at_the_end_of_setup_stops_the_takeover() {
    let (mut client, mut server) = handshaken();
    client.writer().write_all(b"early").unwrap();
    pump(&mut client, &mut server);
    let e = take_secrets(server).err().unwrap();
    assert!(e.contains("before the session's setup ended"), "{e}");
}

#[test]
fn setup_reads_stop_at_the_end_of_each_record() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let mut writer = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    let (sock, _) = listener.accept().unwrap();
    // Two records, and the header of a third, all in the socket before the first read.
    let mut wire = vec![23, 3, 3, 0, 4, 1, 2, 3, 4, 23, 3, 3, 0, 0];
    wire.extend_from_slice(&[23, 3, 3, 0, 2]);
    writer.write_all(&wire).unwrap();
    std::thread::sleep(std::time::Duration::from_millis(50));
    let mut stream = SetupStream::new(sock);
    let mut buf = [0u8; 64];
    let mut got = vec![];
    while got.len() < 9 {
        let n = stream.read(&mut buf).unwrap();
        got.extend_from_slice(&buf[..n]);
    }
    assert_eq!(got, wire[..9], "exactly the first record");
    while got.len() < 14 {
        let n = stream.read(&mut buf).unwrap();
        got.extend_from_slice(&buf[..n]);
    }
    assert_eq!(got, wire[..14], "the empty record ends with its header");
    let n = stream.read(&mut buf[..3]).unwrap();
    assert!(n > 0, "part of the third record's header");
    let e = stream.into_socket().err().unwrap();
    assert!(e.contains("part of a TLS record"), "{e}");
}

#[test]
fn a_frame_right_behind_the_hello_is_not_stranded_in_rustls() {
    let (mut client, mut server) = fresh();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let peer = std::thread::spawn(move || {
        let mut sock = TcpStream::connect(addr).unwrap();
        crate::setup::complete_handshake(&mut client, &mut sock).unwrap();
        // The hello and the session's first frame leave in one write, as when a peer starts
        // its link at once.
        let mut wire = vec![];
        crate::setup::write_frame_blocking(&mut client, &mut wire, b"hello").unwrap();
        client.writer().write_all(b"first frame").unwrap();
        while client.wants_write() {
            client.write_tls(&mut wire).unwrap();
        }
        sock.write_all(&wire).unwrap();
        sock
    });
    let (sock, _) = listener.accept().unwrap();
    let mut stream = SetupStream::new(sock);
    crate::setup::complete_handshake(&mut server, &mut stream).unwrap();
    assert_eq!(crate::setup::read_frame_blocking(&mut server, &mut stream, 1024).unwrap(), b"hello");
    let _peer = peer.join().unwrap();
    let mut sock = stream.into_socket().unwrap();
    let (_, mut opener) = take_secrets(server).unwrap();
    let mut wire = vec![];
    while Opener::record_len(&wire).unwrap().is_none_or(|n| wire.len() < n) {
        let mut buf = [0u8; 4096];
        let n = sock.read(&mut buf).unwrap();
        assert!(n > 0, "the frame's record is still in the socket");
        wire.extend_from_slice(&buf[..n]);
    }
    assert_eq!(texts(open_all(&mut opener, &wire)), ["first frame"]);
}
