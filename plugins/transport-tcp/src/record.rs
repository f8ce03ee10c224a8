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
//! - one key protects at most [`RECORD_LIMIT`] records: §5.5 allows AES-GCM 2^24.5 full-size
//!   records. mpcflow does not rekey (a key update needs the traffic secret, which rustls does
//!   not export), so a connection stops with a clear error after 2^24 records (256 GiB).
//!
//! After setup the only records a peer may send are application data and alerts; a handshake
//! message (a key update or session ticket) is refused. Servers send no tickets
//! (`send_tls13_tickets = 0`), and mpcflow never asks for a key update.
//!
//! One more duty falls on setup: rustls must not read past the last record of the handshake and
//! hello, or the first records of the session would be stranded in its buffer when the secrets
//! are taken. [`SetupStream`] reads the socket one record at a time during setup.

use ring::aead::{AES_128_GCM, AES_256_GCM, Aad, Algorithm, CHACHA20_POLY1305, LessSafeKey, Nonce, UnboundKey};
use rustls::ConnectionTrafficSecrets;
use std::io::{self, Read, Write};
use std::net::TcpStream;

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
/// Largest record this side sends: header, a full plaintext, its content type, the tag.
pub(crate) const MAX_SEALED: usize = HEADER + MAX_PLAINTEXT + 1 + TAG;

/// Outer content type of every record after the handshake, and the inner type of data.
pub(crate) const APPLICATION_DATA: u8 = 23;
/// Inner content types.
pub(crate) const ALERT: u8 = 21;
const HANDSHAKE: u8 = 22;
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

/// One direction's key, IV and next sequence number.
struct Direction {
    key: LessSafeKey,
    iv: [u8; 12],
    seq: u64,
}

impl Direction {
    fn new(seq: u64, secrets: ConnectionTrafficSecrets) -> Result<Self, String> {
        let (alg, key, iv): (&'static Algorithm, _, _) = match secrets {
            ConnectionTrafficSecrets::Aes128Gcm { key, iv } => (&AES_128_GCM, key, iv),
            ConnectionTrafficSecrets::Aes256Gcm { key, iv } => (&AES_256_GCM, key, iv),
            ConnectionTrafficSecrets::Chacha20Poly1305 { key, iv } => (&CHACHA20_POLY1305, key, iv),
            _ => return Err("the negotiated TLS cipher suite has no record layer here".into()),
        };
        let key = UnboundKey::new(alg, key.as_ref()).map_err(|_| "the TLS traffic key has the wrong length")?;
        let iv: [u8; 12] = iv.as_ref().try_into().map_err(|_| "the TLS traffic IV has the wrong length")?;
        Ok(Direction { key: LessSafeKey::new(key), iv, seq })
    }

    /// The nonce for the next record, and the count moved on (§5.3); refused at the key's limit.
    fn next_nonce(&mut self) -> Result<Nonce, RecordError> {
        if self.seq >= RECORD_LIMIT {
            return Err(fail(format!(
                "the connection carried {RECORD_LIMIT} records (256 GiB), the most one key may protect, \
                 and mpcflow does not rekey a connection"
            )));
        }
        let mut nonce = self.iv;
        for (n, s) in nonce[4..].iter_mut().zip(self.seq.to_be_bytes()) {
            *n ^= s;
        }
        self.seq += 1;
        Ok(Nonce::assume_unique_for_key(nonce))
    }
}

/// Seals outgoing records (no `Debug`: it holds a key).
pub(crate) struct Sealer(Direction);

impl Sealer {
    /// Appends one record of inner type `kind` carrying the concatenated `parts` (at most
    /// [`MAX_PLAINTEXT`] bytes in all) to `out`.
    pub(crate) fn seal(&mut self, kind: u8, parts: &[&[u8]], out: &mut Vec<u8>) -> Result<(), RecordError> {
        let content: usize = parts.iter().map(|p| p.len()).sum();
        assert!(content <= MAX_PLAINTEXT, "a record carries at most 2^14 bytes");
        let nonce = self.0.next_nonce()?;
        let len = (content + 1 + TAG) as u16;
        let header = [APPLICATION_DATA, 3, 3, (len >> 8) as u8, len as u8];
        out.extend_from_slice(&header);
        let start = out.len();
        for p in parts {
            out.extend_from_slice(p);
        }
        out.push(kind);
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

/// What one opened record held.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Opened<'a> {
    /// Application data (possibly empty).
    Data(&'a [u8]),
    /// The peer's `close_notify`: nothing more will come.
    Closed,
}

/// Opens incoming records (no `Debug`: it holds a key).
pub(crate) struct Opener(Direction);

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
        let (header, body) = record.split_at_mut(HEADER);
        let header: [u8; HEADER] = header.try_into().map_err(|_| refuse(DECODE_ERROR, "it sent a short record"))?;
        let nonce = self.0.next_nonce()?;
        let inner =
            self.0.key.open_in_place(nonce, Aad::from(header), body).map_err(|_| {
                refuse(BAD_RECORD_MAC, "it sent a record that does not authenticate (corrupted or forged)")
            })?;
        // The content type is the last byte that is not padding (§5.4).
        let Some(at) = inner.iter().rposition(|&b| b != 0) else {
            return Err(refuse(UNEXPECTED_MESSAGE, "it sent a record without a content type"));
        };
        let (content, kind) = (&inner[..at], inner[at]);
        if content.len() > MAX_PLAINTEXT {
            return Err(refuse(RECORD_OVERFLOW, "it sent a record with more than 2^14 bytes of content"));
        }
        match kind {
            APPLICATION_DATA => Ok(Opened::Data(content)),
            ALERT if content == [1, CLOSE_NOTIFY] || content == [2, CLOSE_NOTIFY] => Ok(Opened::Closed),
            ALERT if content.len() == 2 => Err(fail(format!(
                "it ended the connection with the alert {:?}",
                rustls::AlertDescription::from(content[1])
            ))),
            HANDSHAKE => Err(refuse(
                UNEXPECTED_MESSAGE,
                "it sent a handshake message (a key update or ticket) after setup, which mpcflow does not accept",
            )),
            _ => Err(refuse(UNEXPECTED_MESSAGE, format!("it sent a record of content type {kind}"))),
        }
    }
}

/// Takes the traffic secrets from a connection whose handshake and hello are done, checking
/// that nothing it read is left unconsumed.
pub(crate) fn take_secrets(mut tls: rustls::Connection) -> Result<(Sealer, Opener), String> {
    let state = tls.process_new_packets().map_err(|e| format!("TLS error at the end of setup: {e}"))?;
    if state.plaintext_bytes_to_read() > 0 || state.tls_bytes_to_write() > 0 {
        return Err("the peer sent data before the session's setup ended".into());
    }
    let secrets = tls.dangerous_extract_secrets().map_err(|e| format!("cannot take over the TLS session: {e}"))?;
    let (tx_seq, tx) = secrets.tx;
    let (rx_seq, rx) = secrets.rx;
    Ok((Sealer(Direction::new(tx_seq, tx)?), Opener(Direction::new(rx_seq, rx)?)))
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
