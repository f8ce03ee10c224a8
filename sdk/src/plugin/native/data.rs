//! Plain data that crosses the boundary: errors, tensors, wires, messages, steps, seeds,
//! plaintext tensors and the session a transport plugin is asked to connect.
// abi_stable's expansions contain unsafe blocks and impls (see the parent module).
#![allow(non_local_definitions, missing_docs, unsafe_code)]

use super::*;

/// An [`Error`] across the boundary: its kind and message survive the trip.
#[repr(C)]
#[derive(StableAbi, Clone, Debug)]
pub struct FfiError {
    pub(super) kind: u8,
    pub(super) message: RString,
    pub(super) plugin: RString,
}

impl From<Error> for FfiError {
    fn from(e: Error) -> Self {
        let (kind, message, plugin) = match e {
            Error::Invalid(m) => (0, m, String::new()),
            Error::Unsupported { what, plugin } => (1, what, plugin),
            Error::Protocol(m) => (2, m, String::new()),
            Error::Material(m) => (3, m, String::new()),
            Error::Transport(m) => (4, m, String::new()),
            Error::Timeout(m) => (5, m, String::new()),
            Error::ResourcesExhausted(m) => (6, m, String::new()),
            Error::Internal(m) => (7, m, String::new()),
            Error::Plugin(m) => (8, m, String::new()),
        };
        FfiError { kind, message: message.into(), plugin: plugin.into() }
    }
}

impl From<FfiError> for Error {
    fn from(e: FfiError) -> Self {
        let m = e.message.into_string();
        match e.kind {
            0 => Error::Invalid(m),
            1 => Error::Unsupported { what: m, plugin: e.plugin.into_string() },
            2 => Error::Protocol(m),
            3 => Error::Material(m),
            4 => Error::Transport(m),
            5 => Error::Timeout(m),
            6 => Error::ResourcesExhausted(m),
            8 => Error::Plugin(m),
            _ => Error::Internal(m),
        }
    }
}

pub(super) type FfiResult<T> = RResult<T, FfiError>;

/// A tensor of ring elements.
#[repr(C)]
#[derive(StableAbi, Clone, Debug)]
pub struct FfiTensor {
    pub(super) dtype: u8,
    pub(super) shape: RVec<u64>,
    pub(super) data: RVec<u64>,
}

/// A party's wire.
#[repr(C)]
#[derive(StableAbi, Clone, Debug)]
pub struct FfiWire {
    pub(super) dtype: u8,
    pub(super) shape: RVec<u64>,
    pub(super) planes: RVec<RVec<u64>>,
}

/// A message of one round.
#[repr(C)]
#[derive(StableAbi, Clone, Debug)]
pub struct FfiMessage {
    pub(super) peer: u16,
    pub(super) payload: RVec<u8>,
}

/// What a node evaluation wants next ([`Step`]).
#[repr(u8)]
#[derive(StableAbi, Debug)]
pub enum FfiStep {
    Exchange { send: RVec<FfiMessage>, expect: RVec<u16> },
    Wire(FfiWire),
    Revealed(ROption<FfiTensor>),
}

/// A dealer seed.
#[repr(C)]
#[derive(StableAbi, Clone, Copy, Debug)]
pub struct FfiSeed(pub(super) [u8; 32]);

/// Real numbers a transform reads and returns.
#[repr(C)]
#[derive(StableAbi, Clone, Debug)]
pub struct FfiPlain {
    pub(super) shape: RVec<u64>,
    pub(super) values: RVec<f64>,
}

/// The public facts of a session a transport needs.
#[repr(C)]
#[derive(StableAbi, Clone, Debug)]
pub struct FfiSession {
    pub(super) id: RString,
    pub(super) parties: RVec<RString>,
    pub(super) owners: RVec<RString>,
    pub(super) has_dealer: bool,
    pub(super) dealer_window: u64,
    pub(super) timeout_ms: u64,
}

/// An endpoint: a party index, or `u32::MAX` for the dealer.
pub(super) fn endpoint_to_ffi(e: Endpoint) -> u32 {
    match e {
        Endpoint::Party(p) => p.0 as u32,
        Endpoint::Dealer => u32::MAX,
    }
}

pub(super) fn endpoint_from_ffi(e: u32) -> Endpoint {
    if e == u32::MAX { Endpoint::Dealer } else { Endpoint::Party(PartyId(e as u16)) }
}

/// The byte codes of a fieldless enum across the boundary: `$to` encodes, `$from` decodes and
/// refuses an unknown code with `$err`.
macro_rules! byte_codes {
    ($ty:ty, $to:ident, $from:ident, $err:expr, { $($variant:path = $code:literal),+ $(,)? }) => {
        pub(super) fn $to(v: $ty) -> u8 {
            match v {
                $($variant => $code,)+
            }
        }

        pub(super) fn $from(b: u8) -> Result<$ty> {
            match b {
                $($code => Ok($variant),)+
                b => Err($err(b)),
            }
        }
    };
}

byte_codes!(DType, dtype_to_ffi, dtype_from_ffi,
    |d| Error::protocol(format!("unknown dtype code {d} from a native plugin")), {
    DType::Fixed = 0,
    DType::Int = 1,
    DType::Bit = 2,
});

byte_codes!(FssScheme, scheme_to_ffi, scheme_from_ffi,
    |b| Error::invalid(format!("unknown FSS scheme {b} across the plugin boundary")), {
    FssScheme::Dpf = 0,
    FssScheme::Dcf = 1,
    FssScheme::Dcf2 = 2,
});

pub(super) fn shape_to_ffi(s: &[usize]) -> RVec<u64> {
    s.iter().map(|&d| d as u64).collect()
}

pub(super) fn shape_from_ffi(s: &[u64]) -> Vec<usize> {
    s.iter().map(|&d| d as usize).collect()
}

pub(super) fn tensor_to_ffi(t: Tensor) -> FfiTensor {
    FfiTensor { dtype: dtype_to_ffi(t.dtype), shape: shape_to_ffi(&t.shape), data: t.data.into() }
}

pub(super) fn tensor_from_ffi(t: FfiTensor) -> Result<Tensor> {
    Ok(Tensor { dtype: dtype_from_ffi(t.dtype)?, shape: shape_from_ffi(&t.shape), data: t.data.into_vec() })
}

pub(super) fn wire_to_ffi(w: &Wire) -> FfiWire {
    FfiWire {
        dtype: dtype_to_ffi(w.dtype),
        shape: shape_to_ffi(&w.shape),
        planes: w.planes.iter().map(|p| RVec::from(p.as_slice())).collect(),
    }
}

pub(super) fn wire_from_ffi(w: FfiWire) -> Result<Wire> {
    Ok(Wire {
        dtype: dtype_from_ffi(w.dtype)?,
        shape: shape_from_ffi(&w.shape),
        planes: w.planes.into_iter().map(RVec::into_vec).collect(),
    })
}

pub(super) fn message_to_ffi(m: Message) -> FfiMessage {
    FfiMessage { peer: m.peer.0, payload: m.payload.into() }
}

pub(super) fn message_from_ffi(m: FfiMessage) -> Message {
    Message { peer: PartyId(m.peer), payload: m.payload.into_vec() }
}

pub(super) fn to_json<T: serde::Serialize>(value: &T) -> Result<RString> {
    serde_json::to_string(value).map(RString::from).map_err(|e| Error::internal(format!("cannot encode: {e}")))
}

pub(super) fn from_json<T: serde::de::DeserializeOwned>(text: RStr<'_>, what: &str) -> Result<T> {
    serde_json::from_str(text.as_str())
        .map_err(|e| Error::protocol(format!("a native plugin sent a malformed {what}: {e}")))
}

/// Runs plugin code, turning a panic into an error (the plugin's side of every method).
pub(super) fn guarded<T>(what: &str, f: impl FnOnce() -> Result<T>) -> FfiResult<T> {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(Ok(v)) => RResult::ROk(v),
        Ok(Err(e)) => RResult::RErr(e.into()),
        Err(panic) => {
            let msg = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "a panic".into());
            RResult::RErr(Error::internal(format!("the plugin panicked in {what}: {msg}")).into())
        }
    }
}

pub(super) fn lift<T>(r: FfiResult<T>) -> Result<T> {
    r.into_result().map_err(Error::from)
}
