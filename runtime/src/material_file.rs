//! Dealer material stored in files: `mpcflow deal` writes one file per party, `mpcflow run
//! --material DIR` streams them to the parties exactly as a live dealer would.
//!
//! A file is bound to a plan (its fingerprint), a party, and one deal (a random id shared by
//! all parties' files of that deal). Reading refuses a file for another plan or party, files
//! from different deals, a truncated or altered file (a SHA-256 trailer covers everything
//! before it, verified before any frame is streamed), and a file already used: correlated
//! randomness used twice breaks security, so a `NAME.used` marker is written beside the file
//! before the first frame is read. (The marker guards against running the same file twice; a
//! copy of the file elsewhere is not caught.)
//!
//! Layout: `MAGIC ‖ version u16 ‖ deal id [16] ‖ fingerprint [32] ‖ party u16 ‖ parties u16 ‖
//! dims length u32 ‖ dims (text) ‖ (1u8 ‖ length u64 ‖ frame)* ‖ 0u8 ‖ frame count u64 ‖
//! SHA-256 [32]`, little endian.

use crate::error::Error;
use crate::plan::Plan;
use mpcflow_sdk::transport::Link;
use mpcflow_sdk::{Endpoint, PartyId};
use sha2::{Digest, Sha256};
use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

const MAGIC: &[u8; 16] = b"MPCFLOW-MATERIAL";
const VERSION: u16 = 3;
const FRAME: u8 = 1;
const END: u8 = 0;

/// The file of `party` in `dir`.
pub fn path_for(dir: &Path, party: &str) -> PathBuf {
    dir.join(format!("{party}.mpcmat"))
}

/// Where a party's file is written until the deal is complete (then renamed to its path), so an
/// interrupted deal never leaves a file that looks like material.
fn partial_path(path: &Path) -> PathBuf {
    path.with_extension("mpcmat.partial")
}

/// Refuses anything but a regular file before opening it: a FIFO would block the open past
/// every timeout, and a device or directory is no material.
fn regular_file(path: &Path, what: &str) -> Result<(), Error> {
    let meta = std::fs::metadata(path).map_err(|e| Error::Dealer(format!("{what}: {}: {e}", path.display())))?;
    if meta.is_file() {
        Ok(())
    } else {
        Err(Error::Dealer(format!(
            "{what}: {} is not a regular file (a FIFO, device or directory): give the files `mpcflow deal` wrote",
            path.display()
        )))
    }
}

fn used_marker(path: &Path) -> PathBuf {
    let mut p = path.as_os_str().to_owned();
    p.push(".used");
    PathBuf::from(p)
}

fn dims_text(plan: &Plan) -> String {
    plan.dims.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(", ")
}

fn io_err(path: &Path, e: std::io::Error) -> Error {
    Error::Dealer(format!("{}: {e}", path.display()))
}

struct Sink {
    /// Written here while the deal runs ([`partial_path`]).
    path: PathBuf,
    /// Renamed to this when it is complete.
    done: PathBuf,
    out: BufWriter<File>,
    hash: Sha256,
    frames: u64,
}

impl Sink {
    fn write(&mut self, bytes: &[u8]) -> Result<(), Error> {
        self.hash.update(bytes);
        self.out.write_all(bytes).map_err(|e| io_err(&self.path, e))
    }
}

/// A [`Link`] for the dealer that writes each party's frames to its file.
pub struct FileSink {
    sinks: Vec<Mutex<Sink>>,
}

impl FileSink {
    /// Creates one file per party in `dir` (which must exist) for `plan`.
    pub fn create(dir: &Path, plan: &Plan) -> Result<FileSink, Error> {
        let mut id = [0u8; 16];
        getrandom::fill(&mut id).map_err(|e| Error::Dealer(format!("no randomness for a deal id: {e}")))?;
        let dims = dims_text(plan);
        let mut sinks = vec![];
        for (p, name) in plan.parties.iter().enumerate() {
            let done = path_for(dir, name);
            let path = partial_path(&done);
            let f = File::create(&path).map_err(|e| io_err(&path, e))?;
            let mut sink = Sink { path, done, out: BufWriter::new(f), hash: Sha256::new(), frames: 0 };
            let mut head = MAGIC.to_vec();
            head.extend_from_slice(&VERSION.to_le_bytes());
            head.extend_from_slice(&id);
            head.extend_from_slice(&plan.fingerprint);
            head.extend_from_slice(&(p as u16).to_le_bytes());
            head.extend_from_slice(&(plan.parties.len() as u16).to_le_bytes());
            head.extend_from_slice(&(dims.len() as u32).to_le_bytes());
            head.extend_from_slice(dims.as_bytes());
            sink.write(&head)?;
            sinks.push(Mutex::new(sink));
        }
        Ok(FileSink { sinks })
    }

    /// Writes the trailers and flushes. Returns each file's size.
    pub fn finish(mut self) -> Result<Vec<u64>, Error> {
        let mut sizes = vec![];
        for s in &self.sinks {
            let mut s = s.lock().map_err(|_| Error::Internal("material file lock poisoned".into()))?;
            let mut tail = vec![END];
            tail.extend_from_slice(&s.frames.to_le_bytes());
            s.write(&tail)?;
            let digest = s.hash.clone().finalize();
            s.out.write_all(&digest).map_err(|e| io_err(&s.path, e))?;
            s.out.flush().map_err(|e| io_err(&s.path, e))?;
            sizes.push(std::fs::metadata(&s.path).map_err(|e| io_err(&s.path, e))?.len());
        }
        // Complete: every file takes its name (a fresh deal has not been used yet).
        for s in &self.sinks {
            let s = s.lock().map_err(|_| Error::Internal("material file lock poisoned".into()))?;
            let _ = std::fs::remove_file(used_marker(&s.done));
            std::fs::rename(&s.path, &s.done).map_err(|e| io_err(&s.done, e))?;
        }
        self.sinks.clear();
        Ok(sizes)
    }
}

impl Drop for FileSink {
    /// A deal that did not finish removes its partial files.
    fn drop(&mut self) {
        for s in &self.sinks {
            if let Ok(s) = s.lock() {
                let _ = std::fs::remove_file(&s.path);
            }
        }
    }
}

impl Link for FileSink {
    fn send(&self, to: Endpoint, frame: Vec<u8>) -> mpcflow_sdk::Result<()> {
        let Endpoint::Party(p) = to else {
            return Err(mpcflow_sdk::Error::Transport("material goes to parties only".into()));
        };
        let sink =
            self.sinks.get(p.index()).ok_or_else(|| mpcflow_sdk::Error::Transport(format!("no file for {p}")))?;
        let mut s = sink.lock().map_err(|_| mpcflow_sdk::Error::internal("material file lock poisoned"))?;
        // The dealer's end-of-stream frame is implied by the trailer.
        if crate::schedule::frame::peek(&frame).map(|t| t.0) == Some(crate::schedule::frame::Kind::Bye as u8) {
            return Ok(());
        }
        s.frames += 1;
        let mut head = vec![FRAME];
        head.extend_from_slice(&(frame.len() as u64).to_le_bytes());
        s.write(&head).and_then(|_| s.write(&frame)).map_err(|e| mpcflow_sdk::Error::Transport(e.to_string()))
    }

    fn recv(&self, from: Endpoint, _timeout: Duration) -> mpcflow_sdk::Result<Vec<u8>> {
        Err(mpcflow_sdk::Error::Transport(format!("material files receive nothing (from {from})")))
    }
}

/// One party's material file, opened and checked, ready to stream.
pub struct Source {
    path: PathBuf,
    input: BufReader<File>,
    hash: Sha256,
    frames: u64,
    deal_id: [u8; 16],
}

impl Source {
    fn read_exact(&mut self, buf: &mut [u8], what: &str) -> Result<(), Error> {
        self.input.read_exact(buf).map_err(|e| {
            if e.kind() == std::io::ErrorKind::UnexpectedEof {
                Error::Dealer(format!("{}: truncated (ends inside the {what}); deal again", self.path.display()))
            } else {
                io_err(&self.path, e)
            }
        })?;
        self.hash.update(&*buf);
        Ok(())
    }

    /// Opens `party`'s file in `dir` for `plan`, checking its header.
    pub fn open(dir: &Path, plan: &Plan, party: usize) -> Result<Source, Error> {
        let name = &plan.parties[party];
        let path = path_for(dir, name);
        regular_file(&path, &format!("material for {name}"))?;
        let f =
            File::open(&path).map_err(|e| Error::Dealer(format!("material for {name}: {}: {e}", path.display())))?;
        let mut s =
            Source { path: path.clone(), input: BufReader::new(f), hash: Sha256::new(), frames: 0, deal_id: [0; 16] };
        let mut head = [0u8; 16 + 2 + 16 + 32 + 2 + 2 + 4];
        s.read_exact(&mut head, "header")?;
        if &head[..16] != MAGIC {
            return Err(Error::Dealer(format!("{}: not an mpcflow material file", path.display())));
        }
        let version = u16::from_le_bytes([head[16], head[17]]);
        if version != VERSION {
            return Err(Error::Dealer(format!(
                "{}: material format version {version}, this build reads {VERSION}",
                path.display()
            )));
        }
        s.deal_id.copy_from_slice(&head[18..34]);
        let fingerprint = &head[34..66];
        let file_party = u16::from_le_bytes([head[66], head[67]]) as usize;
        let dims_len = u32::from_le_bytes([head[70], head[71], head[72], head[73]]) as usize;
        if dims_len > 1 << 20 {
            return Err(Error::Dealer(format!("{}: corrupt header", path.display())));
        }
        let mut dims = vec![0u8; dims_len];
        s.read_exact(&mut dims, "header")?;
        if fingerprint != plan.fingerprint {
            let hex: String = fingerprint.iter().take(8).map(|b| format!("{b:02x}")).collect();
            return Err(Error::Dealer(format!(
                "{}: dealt for another plan (fingerprint {hex}…, dimensions [{}]); this run's plan is {}… with \
                 dimensions [{}] for the `{}` network: deal again with the same pipeline, sizes and --network",
                path.display(),
                String::from_utf8_lossy(&dims),
                &plan.fingerprint_hex()[..16],
                dims_text(plan),
                plan.network
            )));
        }
        if file_party != party {
            let other = plan.parties.get(file_party).map(String::as_str).unwrap_or("another party");
            return Err(Error::Dealer(format!("{}: this is {other}'s material, not {name}'s", path.display())));
        }
        let marker = used_marker(&path);
        if let Ok(used) = std::fs::read(&marker)
            && used == s.deal_id
        {
            return Err(Error::Dealer(format!(
                "{}: this material was already used ({} exists); correlated randomness must never be used twice: deal again",
                path.display(),
                marker.display()
            )));
        }
        Ok(s)
    }

    /// Records that this material is being used.
    pub fn mark_used(&self) -> Result<(), Error> {
        std::fs::write(used_marker(&self.path), self.deal_id).map_err(|e| io_err(&self.path, e))
    }

    /// The next frame, or `None` at the (verified) end.
    pub fn next_frame(&mut self) -> Result<Option<Vec<u8>>, Error> {
        let mut tag = [0u8; 1];
        self.read_exact(&mut tag, "record tag")?;
        if tag[0] == END {
            let mut count = [0u8; 8];
            self.read_exact(&mut count, "trailer")?;
            let expected = self.hash.clone().finalize();
            let mut digest = [0u8; 32];
            self.input
                .read_exact(&mut digest)
                .map_err(|_| Error::Dealer(format!("{}: truncated (no checksum); deal again", self.path.display())))?;
            if digest[..] != expected[..] || u64::from_le_bytes(count) != self.frames {
                return Err(Error::Dealer(format!(
                    "{}: checksum mismatch: the file was altered or corrupted",
                    self.path.display()
                )));
            }
            return Ok(None);
        }
        if tag[0] != FRAME {
            return Err(Error::Dealer(format!("{}: corrupt record", self.path.display())));
        }
        let mut len = [0u8; 8];
        self.read_exact(&mut len, "frame length")?;
        let len = u64::from_le_bytes(len);
        if len > 1 << 40 {
            return Err(Error::Dealer(format!("{}: corrupt frame length", self.path.display())));
        }
        let mut frame = vec![0u8; len as usize];
        self.read_exact(&mut frame, "frame")?;
        self.frames += 1;
        Ok(Some(frame))
    }
}

/// Checks a file's SHA-256 trailer over its whole content, before anything is used.
fn verify(path: &Path) -> Result<(), Error> {
    regular_file(path, "material")?;
    let len = std::fs::metadata(path).map_err(|e| io_err(path, e))?.len();
    if len < 32 {
        return Err(Error::Dealer(format!("{}: truncated; deal again", path.display())));
    }
    let mut input = BufReader::new(File::open(path).map_err(|e| io_err(path, e))?);
    let mut hash = Sha256::new();
    let mut left = len - 32;
    let mut buf = vec![0u8; 1 << 20];
    while left > 0 {
        let n = (left as usize).min(buf.len());
        input.read_exact(&mut buf[..n]).map_err(|e| io_err(path, e))?;
        hash.update(&buf[..n]);
        left -= n as u64;
    }
    let mut digest = [0u8; 32];
    input.read_exact(&mut digest).map_err(|e| io_err(path, e))?;
    if hash.finalize()[..] != digest[..] {
        return Err(Error::Dealer(format!(
            "{}: checksum mismatch: the file is truncated, altered or corrupted; deal again",
            path.display()
        )));
    }
    Ok(())
}

/// Opens every party's file and checks they come from one deal.
pub fn open_all(dir: &Path, plan: &Plan) -> Result<Vec<Source>, Error> {
    // Checksums first: a flipped byte anywhere is reported as corruption, not as whatever the
    // damaged header happens to say (another plan, another deal).
    for name in &plan.parties {
        verify(&path_for(dir, name))?;
    }
    let sources: Vec<Source> = (0..plan.parties.len()).map(|p| Source::open(dir, plan, p)).collect::<Result<_, _>>()?;
    if let Some(first) = sources.first()
        && let Some(other) = sources.iter().find(|s| s.deal_id != first.deal_id)
    {
        return Err(Error::Dealer(format!(
            "{} and {} come from different deals; use the files of one `mpcflow deal`",
            first.path.display(),
            other.path.display()
        )));
    }
    for s in &sources {
        s.mark_used()?;
    }
    Ok(sources)
}

/// Streams the files to the parties through the dealer's link, checking each frame belongs to
/// the next node that needs material. Blocking: run it on a dedicated thread.
pub fn replay(plan: &Plan, mut sources: Vec<Source>, link: &dyn Link) -> Result<Vec<Vec<u64>>, Error> {
    let mut bytes = vec![vec![0u64; plan.parties.len()]; plan.nodes.len()];
    for (id, node) in plan.nodes.iter().enumerate() {
        if !node.needs_material {
            continue;
        }
        for (p, src) in sources.iter_mut().enumerate() {
            let frame = src.next_frame()?.ok_or_else(|| {
                Error::Dealer(format!("{}: ends before the material of node `{}`", src.path.display(), node.desc.name))
            })?;
            let header_node = crate::schedule::frame::peek(&frame).map(|t| t.1);
            if header_node != Some(id as u32) {
                return Err(Error::Dealer(format!(
                    "{}: frame out of order at node `{}`",
                    src.path.display(),
                    node.desc.name
                )));
            }
            bytes[id][p] = frame.len().saturating_sub(crate::schedule::frame::TAG) as u64;
            link.send(Endpoint::Party(PartyId(p as u16)), frame)
                .map_err(|e| Error::Dealer(format!("sending material of node `{}`: {e}", node.desc.name)))?;
        }
    }
    for src in &mut sources {
        if src.next_frame()?.is_some() {
            return Err(Error::Dealer(format!("{}: holds more material than the plan needs", src.path.display())));
        }
    }
    crate::schedule::dealer::end_of_material(link, plan.parties.len());
    Ok(bytes)
}
