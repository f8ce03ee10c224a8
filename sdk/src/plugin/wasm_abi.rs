//! The WASM plugin interface, version [`ABI_VERSION`]: a core module with a documented ABI.
//!
//! **Why core modules and not the component model.** A plugin here exchanges a few values per
//! call (a JSON request, an array of numbers), so a byte-buffer ABI is all it needs. A core
//! module builds with plain `cargo build --target wasm32-unknown-unknown` (no wit-bindgen, no
//! adapter), it has *no imports at all*, so the sandbox grants nothing by construction (no
//! WASI: no files, network, clock or randomness), and the host can check the exports and say
//! exactly which one is missing. Authors never see this ABI: `export_wasm_plugins!` (sdk
//! feature `guest`) writes it.
//!
//! Exports a module must have (all integers are wasm `i32`/`i64`):
//!
//! | export | signature | does |
//! |---|---|---|
//! | `memory` | memory | the guest's linear memory |
//! | `mpcflow_abi_version` | `() -> i32` | returns [`ABI_VERSION`] |
//! | `mpcflow_alloc` | `(len) -> ptr` | a buffer the host writes a request into |
//! | `mpcflow_free` | `(ptr, len)` | frees a response buffer |
//! | `mpcflow_call` | `(method, ptr, len) -> i64` | handles a request (taking its buffer); returns `ptr << 32 \| len` of the response |
//! | `mpcflow_last_panic` | `() -> i64` | `ptr << 32 \| len` of the last panic message (0 if none), read after a trap |
//!
//! A response starts with a status byte ([`STATUS_OK`] or [`STATUS_ERR`]); an error carries a
//! UTF-8 message. Methods:
//!
//! | method | request | response |
//! |---|---|---|
//! | [`METHOD_DESCRIBE`] | empty | JSON [`Manifest`] |
//! | [`METHOD_LOWER`] | JSON [`LowerRequest`] | JSON [`crate::protocol::Lowering`] |
//! | [`METHOD_TRANSFORM`] | framed: JSON [`TransformHeader`], then the values as f64 LE | framed: JSON shape, then f64 LE |
//! | [`METHOD_IMPORT`] | framed: JSON [`ImportHeader`], then the model file's bytes | JSON [`crate::importer::ImportedModel`] |
//!
//! "Framed" is a u32 LE header length, the header, then the body ([`frame`], [`unframe`]).

use crate::FixedPoint;
use crate::op::Attrs;
use crate::operator::OperatorKind;
use crate::plugin::PluginKind;
use crate::shape::TensorInfo;
use serde::{Deserialize, Serialize};

/// The ABI version this sdk speaks.
pub const ABI_VERSION: i32 = 1;

/// Response status: success.
pub const STATUS_OK: u8 = 0;
/// Response status: an error message follows.
pub const STATUS_ERR: u8 = 1;

/// What the module provides.
pub const METHOD_DESCRIBE: i32 = 0;
/// A secure operator's lowering.
pub const METHOD_LOWER: i32 = 1;
/// A transform applied to plaintext values.
pub const METHOD_TRANSFORM: i32 = 2;
/// An importer converting a model file.
pub const METHOD_IMPORT: i32 = 3;

/// Names of the exports, for the host's checks.
pub const REQUIRED_EXPORTS: [&str; 5] =
    ["mpcflow_abi_version", "mpcflow_alloc", "mpcflow_free", "mpcflow_call", "mpcflow_last_panic"];

/// What a module provides.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    /// The sdk version the module was built against.
    pub sdk: String,
    /// Its plugins.
    pub plugins: Vec<GuestPlugin>,
}

/// One plugin inside a module.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GuestPlugin {
    /// `operator` or `importer`.
    pub kind: PluginKind,
    /// Name used in pipelines.
    pub name: String,
    /// Version.
    pub version: String,
    /// For operators: secure or transform.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operator: Option<OperatorKind>,
}

/// Request of [`METHOD_LOWER`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LowerRequest {
    /// The operator's name.
    pub operator: String,
    /// The node's attributes.
    pub attrs: Attrs,
    /// Its inputs' public facts.
    pub inputs: Vec<TensorInfo>,
    /// The graph's fixed point.
    pub fixed_point: FixedPoint,
}

/// Header of a [`METHOD_TRANSFORM`] request.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TransformHeader {
    /// The operator's name.
    pub operator: String,
    /// The input's attributes.
    pub attrs: Attrs,
    /// Shape of the values that follow.
    pub shape: Vec<usize>,
}

/// Header of a [`METHOD_IMPORT`] request.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ImportHeader {
    /// The importer's name.
    pub importer: String,
}

/// `len(header) as u32 LE ‖ header ‖ body`.
pub fn frame(header: &[u8], body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(4 + header.len() + body.len());
    out.extend_from_slice(&(header.len() as u32).to_le_bytes());
    out.extend_from_slice(header);
    out.extend_from_slice(body);
    out
}

/// Splits a framed buffer into header and body.
pub fn unframe(bytes: &[u8]) -> Result<(&[u8], &[u8]), String> {
    let len = bytes
        .get(..4)
        .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize)
        .ok_or("a framed message shorter than its 4-byte header length")?;
    let rest = &bytes[4..];
    if len > rest.len() {
        return Err(format!("a framed message announces a {len}-byte header but holds {} bytes", rest.len()));
    }
    Ok(rest.split_at(len))
}

/// f64 values as little-endian bytes.
pub fn f64_to_bytes(values: &[f64]) -> Vec<u8> {
    let mut out = Vec::with_capacity(values.len() * 8);
    for v in values {
        out.extend_from_slice(&v.to_le_bytes());
    }
    out
}

/// `frame(header, f64_to_bytes(values))` in one pass (no intermediate copy of the values).
pub fn frame_f64(header: &[u8], values: &[f64]) -> Vec<u8> {
    let mut out = Vec::with_capacity(4 + header.len() + values.len() * 8);
    out.extend_from_slice(&(header.len() as u32).to_le_bytes());
    out.extend_from_slice(header);
    for v in values {
        out.extend_from_slice(&v.to_le_bytes());
    }
    out
}

/// Little-endian bytes as f64 values.
pub fn bytes_to_f64(bytes: &[u8]) -> Result<Vec<f64>, String> {
    if !bytes.len().is_multiple_of(8) {
        return Err(format!("{} bytes are not a whole number of f64 values", bytes.len()));
    }
    Ok(bytes.chunks_exact(8).map(|c| f64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]])).collect())
}

/// Packs a pointer and a length into the i64 `mpcflow_call` returns.
pub fn pack(ptr: u32, len: u32) -> i64 {
    (((ptr as u64) << 32) | len as u64) as i64
}

/// The pointer and length inside a packed i64.
pub fn unpack(packed: i64) -> (u32, u32) {
    let p = packed as u64;
    ((p >> 32) as u32, p as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn framing_round_trips_and_rejects_short_buffers() {
        let f = frame(b"{\"a\":1}", &[1, 2, 3]);
        assert_eq!(unframe(&f).unwrap(), (&b"{\"a\":1}"[..], &[1u8, 2, 3][..]));
        assert!(unframe(&[1, 0]).is_err());
        assert!(unframe(&[9, 0, 0, 0, 1]).unwrap_err().contains("9-byte header"));
        assert_eq!(bytes_to_f64(&f64_to_bytes(&[1.5, -2.0])).unwrap(), vec![1.5, -2.0]);
        assert_eq!(frame_f64(b"h", &[1.5]), frame(b"h", &f64_to_bytes(&[1.5])));
        assert!(bytes_to_f64(&[0; 7]).is_err());
        assert_eq!(unpack(pack(0xdead_beef, 7)), (0xdead_beef, 7));
    }
}
