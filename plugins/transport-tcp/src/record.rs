//! TLS 1.3 record protection once the handshake is done (RFC 8446 §5.2–5.5), done here rather
//! than through rustls's buffered connection.
//!
//! Why: a session moves gigabytes of dealer material, and every copy shows. Through rustls's
//! buffered API each byte was copied twice in user space per direction (into its record queue,
//! then out to our socket buffer; from our read buffer into its deframer, then out of its
//! plaintext queue), and sender and reader shared one lock on its state. Here a record is
//! sealed in the buffer that goes to the socket, and opened in the buffer the socket filled: one
//! copy per direction, and the two directions share nothing. This is what kernel TLS does with
//! the same secrets; rustls exports them for that purpose (`dangerous_extract_secrets`).
//!
//! rustls still does everything that needs judgment: the handshake, certificate checks, the
//! key schedule and the hello frames of setup. What is left is the record layer of §5.2:
//!
//! - a record is `23, 0x0303, len` (the header, also the AEAD's additional data), then the
//!   AEAD of `content ‖ content type`, `len ≤ 2^14 + 256`, content at most 2^14 bytes;
//! - the nonce is the IV xor the 64-bit record sequence number, big-endian, left-padded (§5.3);
//!   each direction counts its records from where the handshake left off;
//! - zero bytes before the true content type are padding (§5.4), which we accept and never send;
//! - §5.5 allows one AES-GCM key 2^24.5 full-size records, so a sender updates its key every
//!   [`REKEY_AT`] records: a `KeyUpdate` message (§4.6.3, `update_not_requested`) under the old
//!   key, then records under the next key from sequence number 0. rustls exports the traffic
//!   keys but not the traffic secrets TLS ratchets, so the next keys come from a chain of our
//!   own: at takeover each direction gets a 32-byte secret from the TLS exporter (§7.5, label
//!   `EXPORTER-mpcflow-key-update`, context naming the direction), and update `g` takes
//!   `S_g = HKDF-Expand(S_{g−1}, "mpcflow next secret")`, then its key and IV from `S_g`
//!   (HKDF-SHA256, RFC 5869). Exporter secrets are independent of the traffic keys, so this is
//!   as sound as TLS's own ratchet; both ends of a link are mpcflow (the hello says so), which
//!   is why a non-standard derivation is acceptable here. A key past [`RECORD_LIMIT`] records
//!   is refused outright.
//!
//! After setup a peer may send application data, alerts and such key updates; any other
//! handshake message (a session ticket) is refused: servers send none (`send_tls13_tickets = 0`).
//!
//! One more duty falls on setup: rustls must not read past the last record of the handshake and
//! hello, or the first records of the session would be stranded in its buffer when the secrets
//! are taken. [`SetupStream`] reads the socket one record at a time during setup.

use ring::aead::{AES_128_GCM, AES_256_GCM, Aad, Algorithm, CHACHA20_POLY1305, LessSafeKey, Nonce, UnboundKey};
use ring::hkdf;
use rustls::ConnectionTrafficSecrets;
use std::io::{self, Read, Write};
use std::net::TcpStream;
use zeroize::{Zeroize, Zeroizing};

/// Record header bytes: content type, legacy version, length.
pub(crate) const HEADER: usize = 5;
/// Largest plaintext per record (§5.1).
pub(crate) const MAX_PLAINTEXT: usize = 1 << 14;
/// Largest record body accepted (§5.2).
pub(crate) const MAX_BODY: usize = MAX_PLAINTEXT + 256;
/// AEAD tag bytes (all three TLS 1.3 AEADs here).
const TAG: usize = 16;
/// Records one key may protect in either direction (§5.5, rounded down for AES-GCM).
pub(crate) const RECORD_LIMIT: u64 = 1 << 24;
/// Records a sender seals under one key before it updates it (half the limit).
pub(crate) const REKEY_AT: u64 = RECORD_LIMIT / 2;
/// Handshake message type of `KeyUpdate` (§4.6.3).
const KEY_UPDATE: u8 = 24;
/// Largest record this side sends: header, a full plaintext, its content type, the tag.
pub(crate) const MAX_SEALED: usize = HEADER + MAX_PLAINTEXT + 1 + TAG;

/// Outer content type of every record after the handshake, and the inner type of data.
pub(crate) const APPLICATION_DATA: u8 = 23;
/// Inner content types.
pub(crate) const ALERT: u8 = 21;
pub(crate) const HANDSHAKE: u8 = 22;
/// Alert descriptions this side sends (§6).
pub(crate) const CLOSE_NOTIFY: u8 = 0;
pub(crate) const UNEXPECTED_MESSAGE: u8 = 10;
pub(crate) const BAD_RECORD_MAC: u8 = 20;
pub(crate) const RECORD_OVERFLOW: u8 = 22;
pub(crate) const DECODE_ERROR: u8 = 50;

/// Why a record could not be sealed or opened, and the alert that tells the peer, if any.
#[derive(Debug)]
pub(crate) struct RecordError {
    pub(crate) alert: Option<u8>,
    pub(crate) why: String,
}

fn refuse(alert: u8, why: impl Into<String>) -> RecordError {
    RecordError { alert: Some(alert), why: why.into() }
}

/// An error with nothing to tell the peer (it ended the connection, or this side cannot go on).
fn fail(why: impl Into<String>) -> RecordError {
    RecordError { alert: None, why: why.into() }
}

/// One direction's key, IV, next sequence number and the secret its next key comes from.
struct Direction {
    alg: &'static Algorithm,
    key: LessSafeKey,
    iv: [u8; 12],
    seq: u64,
    /// `S_g` of the module docs: the secret the next update's key comes from.
    chain: [u8; 32],
}

impl Drop for Direction {
    /// The secrets this side holds are wiped (ring's AES key schedule and HKDF state keep their
    /// own copies, which ring does not wipe).
    fn drop(&mut self) {
        self.chain.zeroize();
        self.iv.zeroize();
    }
}

/// An HKDF output length for ring.
struct Len(usize);

impl hkdf::KeyType for Len {
    fn len(&self) -> usize {
        self.0
    }
}

/// `HKDF-Expand(secret, info)` into `out` (RFC 5869, SHA-256).
fn expand(secret: &[u8; 32], info: &[u8], out: &mut [u8]) {
    let prk = hkdf::Prk::new_less_safe(hkdf::HKDF_SHA256, secret);
    // At most 255·32 bytes may be expanded; these are 12 to 32.
    prk.expand(&[info], Len(out.len())).and_then(|okm| okm.fill(out)).expect("HKDF-Expand of at most 32 bytes");
}

impl Direction {
    fn new(seq: u64, secrets: ConnectionTrafficSecrets, chain: &[u8; 32]) -> Result<Self, String> {
        let (alg, key, iv): (&'static Algorithm, _, _) = match secrets {
            ConnectionTrafficSecrets::Aes128Gcm { key, iv } => (&AES_128_GCM, key, iv),
            ConnectionTrafficSecrets::Aes256Gcm { key, iv } => (&AES_256_GCM, key, iv),
            ConnectionTrafficSecrets::Chacha20Poly1305 { key, iv } => (&CHACHA20_POLY1305, key, iv),
            _ => return Err("the negotiated TLS cipher suite has no record layer here".into()),
        };
        let key = UnboundKey::new(alg, key.as_ref()).map_err(|_| "the TLS traffic key has the wrong length")?;
        let iv: [u8; 12] = iv.as_ref().try_into().map_err(|_| "the TLS traffic IV has the wrong length")?;
        Ok(Direction { alg, key: LessSafeKey::new(key), iv, seq, chain: *chain })
    }

    /// Moves to the next key of the chain (a key update), from sequence number 0.
    fn update(&mut self) {
        let mut next = [0u8; 32];
        expand(&self.chain, b"mpcflow next secret", &mut next);
        let mut key = [0u8; 32];
        let key = &mut key[..self.alg.key_len()];
        expand(&next, b"mpcflow key", key);
        expand(&next, b"mpcflow iv", &mut self.iv);
        self.key = LessSafeKey::new(UnboundKey::new(self.alg, key).expect("a key of the algorithm's length"));
        key.zeroize();
        self.chain = next;
        next.zeroize();
        self.seq = 0;
    }

    /// The nonce for the next record, and the count moved on (§5.3); refused at the key's limit.
    fn next_nonce(&mut self) -> Result<Nonce, RecordError> {
        if self.seq >= RECORD_LIMIT {
            return Err(fail(format!("a key reached {RECORD_LIMIT} records, the most one key may protect")));
        }
        let mut nonce = self.iv;
        for (n, s) in nonce[4..].iter_mut().zip(self.seq.to_be_bytes()) {
            *n ^= s;
        }
        self.seq += 1;
        Ok(Nonce::assume_unique_for_key(nonce))
    }
}

/// Seals outgoing records (no `Debug`: it holds a key). Boxed, so moving it leaves no copy of
/// its secrets behind.
pub(crate) struct Sealer(Box<Direction>);

impl Sealer {
    /// Appends one record of inner type `kind` carrying the concatenated `parts` (at most
    /// [`MAX_PLAINTEXT`] bytes in all) to `out`, after a key update if one is due.
    pub(crate) fn seal(&mut self, kind: u8, parts: &[&[u8]], out: &mut Vec<u8>) -> Result<(), RecordError> {
        let content: usize = parts.iter().map(|p| p.len()).sum();
        assert!(content <= MAX_PLAINTEXT, "a record carries at most 2^14 bytes");
        if self.0.seq >= REKEY_AT {
            // KeyUpdate, `update_not_requested`, under the old key; then the next key.
            self.seal_inner(&[&[KEY_UPDATE, 0, 0, 1, 0]], &[HANDSHAKE], out)?;
            self.0.update();
        }
        self.seal_inner(parts, &[kind], out)
    }

    /// Appends one record whose inner plaintext is the concatenated `parts`, then `trailer`
    /// (the content type and any padding).
    pub(crate) fn seal_inner(&mut self, parts: &[&[u8]], trailer: &[u8], out: &mut Vec<u8>) -> Result<(), RecordError> {
        let nonce = self.0.next_nonce()?;
        let len = (parts.iter().map(|p| p.len()).sum::<usize>() + trailer.len() + TAG) as u16;
        let header = [APPLICATION_DATA, 3, 3, (len >> 8) as u8, len as u8];
        out.extend_from_slice(&header);
        let start = out.len();
        for p in parts {
            out.extend_from_slice(p);
        }
        out.extend_from_slice(trailer);
        let tag = self
            .0
            .key
            .seal_in_place_separate_tag(nonce, Aad::from(header), &mut out[start..])
            .map_err(|_| fail("a record could not be sealed"))?;
        out.extend_from_slice(tag.as_ref());
        Ok(())
    }

    /// Appends records carrying all of `data` as application data.
    pub(crate) fn seal_data(&mut self, data: &[u8], out: &mut Vec<u8>) -> Result<(), RecordError> {
        for piece in data.chunks(MAX_PLAINTEXT) {
            self.seal(APPLICATION_DATA, &[piece], out)?;
        }
        Ok(())
    }

    /// Appends an alert record (fatal unless it is `close_notify`).
    pub(crate) fn seal_alert(&mut self, description: u8, out: &mut Vec<u8>) -> Result<(), RecordError> {
        let level = if description == CLOSE_NOTIFY { 1 } else { 2 };
        self.seal(ALERT, &[&[level, description]], out)
    }
}

/// What one opened record held (`Debug` only in tests: it holds plaintext).
#[cfg_attr(test, derive(Debug, PartialEq, Eq))]
pub(crate) enum Opened<'a> {
    /// Application data (possibly empty).
    Data(&'a [u8]),
    /// A key update: later records come under the peer's next key.
    KeyUpdated,
    /// The peer's `close_notify`: nothing more will come.
    Closed,
}

/// Opens incoming records (no `Debug`: it holds a key). Boxed, as [`Sealer`].
pub(crate) struct Opener(Box<Direction>);

impl Opener {
    /// The length of the whole record at the start of `bytes`, once its header is there;
    /// refused when the header is not a TLS 1.3 application record or announces too much.
    pub(crate) fn record_len(bytes: &[u8]) -> Result<Option<usize>, RecordError> {
        let Some(header) = bytes.get(..HEADER) else { return Ok(None) };
        if header[0] != APPLICATION_DATA || header[1] != 3 || header[2] != 3 {
            return Err(refuse(UNEXPECTED_MESSAGE, "it sent something that is not a TLS 1.3 application record"));
        }
        let len = u16::from_be_bytes([header[3], header[4]]) as usize;
        if len > MAX_BODY {
            return Err(refuse(RECORD_OVERFLOW, format!("it sent a record of {len} bytes, more than TLS allows")));
        }
        Ok(Some(HEADER + len))
    }

    /// Opens the whole record `record` (header included, as [`Self::record_len`] measured it)
    /// in place.
    pub(crate) fn open<'a>(&mut self, record: &'a mut [u8]) -> Result<Opened<'a>, RecordError> {
        if record.len() < HEADER + TAG {
            return Err(refuse(DECODE_ERROR, "it sent a record too short to hold its tag"));
        }
        let (header, body) = record.split_at_mut(HEADER);
        let header = [header[0], header[1], header[2], header[3], header[4]];
        let nonce = self.0.next_nonce()?;
        let inner =
            self.0.key.open_in_place(nonce, Aad::from(header), body).map_err(|_| {
                refuse(BAD_RECORD_MAC, "it sent a record that does not authenticate (corrupted or forged)")
            })?;
        if inner.len() > MAX_PLAINTEXT + 1 {
            return Err(refuse(RECORD_OVERFLOW, "it sent a record with more than 2^14 bytes inside"));
        }
        // The content type is the last byte that is not padding (§5.4).
        let Some(at) = inner.iter().rposition(|&b| b != 0) else {
            return Err(refuse(UNEXPECTED_MESSAGE, "it sent a record without a content type"));
        };
        let (content, kind) = (&inner[..at], inner[at]);
        match kind {
            APPLICATION_DATA => Ok(Opened::Data(content)),
            ALERT if content == [1, CLOSE_NOTIFY] || content == [2, CLOSE_NOTIFY] => Ok(Opened::Closed),
            ALERT if content.len() == 2 => Err(fail(format!(
                "it ended the connection with the alert {:?}",
                rustls::AlertDescription::from(content[1])
            ))),
            ALERT => Err(refuse(DECODE_ERROR, "it sent an alert of the wrong length")),
            HANDSHAKE => match *content {
                // KeyUpdate (§4.6.3): later records come under the peer's next key.
                [KEY_UPDATE, 0, 0, 1, 0] => {
                    self.0.update();
                    Ok(Opened::KeyUpdated)
                }
                _ => Err(refuse(
                    UNEXPECTED_MESSAGE,
                    "it sent a handshake message after setup other than mpcflow's key update (a session \
                     ticket?), which mpcflow does not accept",
                )),
            },
            _ => Err(refuse(UNEXPECTED_MESSAGE, format!("it sent a record of content type {kind}"))),
        }
    }
}

/// Takes the traffic secrets and key schedule from a connection whose handshake and hello are
/// done, checking that nothing it read is left unconsumed.
pub(crate) fn take_secrets(mut tls: rustls::Connection) -> Result<(Sealer, Opener), String> {
    let state = tls.process_new_packets().map_err(|e| format!("TLS error at the end of setup: {e}"))?;
    if state.plaintext_bytes_to_read() > 0 {
        return Err("the peer sent data before the session's setup ended".into());
    }
    if state.tls_bytes_to_write() > 0 {
        return Err("TLS records of setup were left unsent".into());
    }
    let taken = |e: rustls::Error| format!("cannot take over the TLS session: {e}");
    // The key-update chains (see the module docs), one per direction, named by who sends.
    let export = |sender: &[u8]| -> Result<Zeroizing<[u8; 32]>, String> {
        let out = Zeroizing::new([0u8; 32]);
        tls.export_keying_material(out, b"EXPORTER-mpcflow-key-update", Some(sender)).map_err(taken)
    };
    let (to_server, to_client) = (export(b"client to server")?, export(b"server to client")?);
    let (tx_chain, rx_chain) =
        if matches!(tls, rustls::Connection::Server(_)) { (to_client, to_server) } else { (to_server, to_client) };
    #[allow(deprecated)] // rustls would have it replaced by its unbuffered API's kernel connection
    let secrets = tls.dangerous_extract_secrets().map_err(taken)?;
    let (tx_seq, tx) = secrets.tx;
    let (rx_seq, rx) = secrets.rx;
    let (tx, rx) = (Direction::new(tx_seq, tx, &tx_chain)?, Direction::new(rx_seq, rx, &rx_chain)?);
    Ok((Sealer(Box::new(tx)), Opener(Box::new(rx))))
}

/// The socket during setup, read one TLS record at a time so that rustls never holds bytes past
/// the last record of setup (see the module docs). Writes pass straight through.
pub(crate) struct SetupStream {
    pub(crate) sock: TcpStream,
    header: [u8; HEADER],
    have: usize,
    body_left: usize,
}

impl SetupStream {
    pub(crate) fn new(sock: TcpStream) -> Self {
        SetupStream { sock, header: [0; HEADER], have: 0, body_left: 0 }
    }

    /// The socket, once setup read whole records only (else the stream is mid-record and the
    /// session cannot start).
    pub(crate) fn into_socket(self) -> Result<TcpStream, String> {
        if self.have != 0 || self.body_left != 0 {
            return Err("the peer sent part of a TLS record past the end of setup".into());
        }
        Ok(self.sock)
    }
}

impl Read for SetupStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.body_left == 0 {
            let want = (HEADER - self.have).min(buf.len());
            let n = self.sock.read(&mut buf[..want])?;
            self.header[self.have..self.have + n].copy_from_slice(&buf[..n]);
            self.have += n;
            if self.have == HEADER {
                self.have = 0;
                self.body_left = u16::from_be_bytes([self.header[3], self.header[4]]) as usize;
            }
            return Ok(n);
        }
        let want = self.body_left.min(buf.len());
        let n = self.sock.read(&mut buf[..want])?;
        self.body_left -= n;
        Ok(n)
    }
}

impl Write for SetupStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.sock.write(buf)
    }

    fn write_vectored(&mut self, bufs: &[io::IoSlice<'_>]) -> io::Result<usize> {
        self.sock.write_vectored(bufs)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.sock.flush()
    }
}

#[cfg(test)]
mod tests;
