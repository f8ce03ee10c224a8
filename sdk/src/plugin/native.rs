//! The native plugin interface (feature `abi`): every plugin kind as an abi_stable trait object,
//! and the root module a plugin library exports.
//!
//! A plugin author never touches these types: they implement the ordinary sdk traits and write
//!
//! ```ignore
//! mpcflow_sdk::export_native_plugins! { operators: [LeakyRelu] }
//! ```
//!
//! in a `cdylib` crate. The macro exports a [`PluginLibrary`] root module whose layout and sdk
//! version abi_stable checks when the host loads it, so a library built against another sdk is
//! refused with an error, never run. On the host side, [`into_registry_plugins`] turns the
//! library's trait objects back into `Arc<dyn Operator>`, `Arc<dyn Protocol>`, ... that go into
//! the same registry as the built-in plugins.
//!
//! Structure crosses the boundary in abi_stable types (`RVec`, `RString`, `RResult`, trait
//! objects); descriptors with many variants (ops, lowerings, node descriptions, costs, models)
//! cross as JSON of the sdk's serde types, which both sides share because their sdk versions
//! match. A panic inside a plugin method becomes an error at the boundary instead of unwinding
//! through foreign frames.
// abi_stable's `#[sabi_trait]` and `StableAbi` expansions contain unsafe blocks and impls (and trip
// `non_local_definitions`); the code written here has no unsafe block of its own.
#![allow(non_local_definitions, missing_docs, unsafe_code)]

pub use abi_stable;

use crate::importer::{ImportedModel, Importer};
use crate::kernel::{Conv2dGeometry, FssKeys, FssScheme, Kernel, KernelDescriptor};
use crate::op::{Attrs, Op};
use crate::operator::{Operator, OperatorKind, PlainTensor};
use crate::protocol::{
    Cost, Dealer, EvalInput, Lowering, Message, NodeDesc, NodeEval, NodeValue, Protocol, ProtocolDescriptor, Step, Wire,
};
use crate::shape::TensorInfo;
use crate::transport::{Link, SessionInfo, Transport};
use crate::{DType, Endpoint, Error, FixedPoint, PartyId, Result, Tensor};
use abi_stable::library::RootModule;
use abi_stable::sabi_trait::TD_Opaque;
use abi_stable::sabi_types::VersionStrings;
use abi_stable::std_types::{RBox, ROption, RResult, RSlice, RSliceMut, RStr, RString, RVec};
use abi_stable::{StableAbi, declare_root_module_statics, package_version_strings, sabi_trait};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::time::Duration;

// ---------------------------------------------------------------------------------------------
// Plain data
// ---------------------------------------------------------------------------------------------

/// An [`Error`] across the boundary: its kind and message survive the trip.
#[repr(C)]
#[derive(StableAbi, Clone, Debug)]
pub struct FfiError {
    kind: u8,
    message: RString,
    plugin: RString,
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

type FfiResult<T> = RResult<T, FfiError>;

/// A tensor of ring elements.
#[repr(C)]
#[derive(StableAbi, Clone, Debug)]
pub struct FfiTensor {
    dtype: u8,
    shape: RVec<u64>,
    data: RVec<u64>,
}

/// A party's wire.
#[repr(C)]
#[derive(StableAbi, Clone, Debug)]
pub struct FfiWire {
    dtype: u8,
    shape: RVec<u64>,
    planes: RVec<RVec<u64>>,
}

/// A message of one round.
#[repr(C)]
#[derive(StableAbi, Clone, Debug)]
pub struct FfiMessage {
    peer: u16,
    payload: RVec<u8>,
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
pub struct FfiSeed([u8; 32]);

/// Real numbers a transform reads and returns.
#[repr(C)]
#[derive(StableAbi, Clone, Debug)]
pub struct FfiPlain {
    shape: RVec<u64>,
    values: RVec<f64>,
}

/// The public facts of a session a transport needs.
#[repr(C)]
#[derive(StableAbi, Clone, Debug)]
pub struct FfiSession {
    id: RString,
    parties: RVec<RString>,
    has_dealer: bool,
    dealer_window: u64,
    timeout_ms: u64,
}

/// An endpoint: a party index, or `u32::MAX` for the dealer.
fn endpoint_to_ffi(e: Endpoint) -> u32 {
    match e {
        Endpoint::Party(p) => p.0 as u32,
        Endpoint::Dealer => u32::MAX,
    }
}

fn endpoint_from_ffi(e: u32) -> Endpoint {
    if e == u32::MAX { Endpoint::Dealer } else { Endpoint::Party(PartyId(e as u16)) }
}

/// The byte codes of a fieldless enum across the boundary: `$to` encodes, `$from` decodes and
/// refuses an unknown code with `$err`.
macro_rules! byte_codes {
    ($ty:ty, $to:ident, $from:ident, $err:expr, { $($variant:path = $code:literal),+ $(,)? }) => {
        fn $to(v: $ty) -> u8 {
            match v {
                $($variant => $code,)+
            }
        }

        fn $from(b: u8) -> Result<$ty> {
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

fn shape_to_ffi(s: &[usize]) -> RVec<u64> {
    s.iter().map(|&d| d as u64).collect()
}

fn shape_from_ffi(s: &[u64]) -> Vec<usize> {
    s.iter().map(|&d| d as usize).collect()
}

fn tensor_to_ffi(t: Tensor) -> FfiTensor {
    FfiTensor { dtype: dtype_to_ffi(t.dtype), shape: shape_to_ffi(&t.shape), data: t.data.into() }
}

fn tensor_from_ffi(t: FfiTensor) -> Result<Tensor> {
    Ok(Tensor { dtype: dtype_from_ffi(t.dtype)?, shape: shape_from_ffi(&t.shape), data: t.data.into_vec() })
}

fn wire_to_ffi(w: &Wire) -> FfiWire {
    FfiWire {
        dtype: dtype_to_ffi(w.dtype),
        shape: shape_to_ffi(&w.shape),
        planes: w.planes.iter().map(|p| RVec::from(p.as_slice())).collect(),
    }
}

fn wire_from_ffi(w: FfiWire) -> Result<Wire> {
    Ok(Wire {
        dtype: dtype_from_ffi(w.dtype)?,
        shape: shape_from_ffi(&w.shape),
        planes: w.planes.into_iter().map(RVec::into_vec).collect(),
    })
}

fn message_to_ffi(m: Message) -> FfiMessage {
    FfiMessage { peer: m.peer.0, payload: m.payload.into() }
}

fn message_from_ffi(m: FfiMessage) -> Message {
    Message { peer: PartyId(m.peer), payload: m.payload.into_vec() }
}

fn to_json<T: serde::Serialize>(value: &T) -> Result<RString> {
    serde_json::to_string(value).map(RString::from).map_err(|e| Error::internal(format!("cannot encode: {e}")))
}

fn from_json<T: serde::de::DeserializeOwned>(text: RStr<'_>, what: &str) -> Result<T> {
    serde_json::from_str(text.as_str())
        .map_err(|e| Error::protocol(format!("a native plugin sent a malformed {what}: {e}")))
}

/// Runs plugin code, turning a panic into an error (the plugin's side of every method).
fn guarded<T>(what: &str, f: impl FnOnce() -> Result<T>) -> FfiResult<T> {
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

fn lift<T>(r: FfiResult<T>) -> Result<T> {
    r.into_result().map_err(Error::from)
}

// ---------------------------------------------------------------------------------------------
// The traits as abi_stable trait objects
// ---------------------------------------------------------------------------------------------

/// [`Operator`] across the boundary.
#[sabi_trait]
pub trait FfiOperator: Send + Sync {
    fn name(&self) -> RString;
    fn version(&self) -> RString;
    /// 0 secure, 1 transform.
    fn kind(&self) -> u8;
    /// JSON attrs, JSON input infos, JSON fixed point → JSON lowering.
    fn lower(&self, attrs: RStr<'_>, inputs: RStr<'_>, fixed_point: RStr<'_>) -> FfiResult<RString>;
    #[sabi(last_prefix_field)]
    fn transform(&self, attrs: RStr<'_>, input: FfiPlain) -> FfiResult<FfiPlain>;
}

/// [`Importer`] across the boundary.
#[sabi_trait]
pub trait FfiImporter: Send + Sync {
    fn name(&self) -> RString;
    fn version(&self) -> RString;
    /// Model bytes → JSON [`ImportedModel`].
    #[sabi(last_prefix_field)]
    fn import(&self, bytes: RSlice<'_, u8>) -> FfiResult<RString>;
}

/// [`Conv2dGeometry`] across the boundary.
#[repr(C)]
#[derive(StableAbi, Clone, Copy, Debug)]
pub struct FfiConv2d {
    batch: u64,
    channels: u64,
    input: [u64; 2],
    out_channels: u64,
    kernel: [u64; 2],
    stride: [u64; 2],
    padding: [u64; 2],
    output: [u64; 2],
}

impl From<&Conv2dGeometry> for FfiConv2d {
    fn from(g: &Conv2dGeometry) -> Self {
        let pair = |p: [usize; 2]| p.map(|v| v as u64);
        FfiConv2d {
            batch: g.batch as u64,
            channels: g.channels as u64,
            input: pair(g.input),
            out_channels: g.out_channels as u64,
            kernel: pair(g.kernel),
            stride: pair(g.stride),
            padding: pair(g.padding),
            output: pair(g.output),
        }
    }
}

impl TryFrom<FfiConv2d> for Conv2dGeometry {
    type Error = Error;
    fn try_from(g: FfiConv2d) -> Result<Self> {
        let one = |v: u64| usize::try_from(v).map_err(|_| Error::invalid("conv2d geometry does not fit this machine"));
        let pair = |p: [u64; 2]| -> Result<[usize; 2]> { Ok([one(p[0])?, one(p[1])?]) };
        Ok(Conv2dGeometry {
            batch: one(g.batch)?,
            channels: one(g.channels)?,
            input: pair(g.input)?,
            out_channels: one(g.out_channels)?,
            kernel: pair(g.kernel)?,
            stride: pair(g.stride)?,
            padding: pair(g.padding)?,
            output: pair(g.output)?,
        })
    }
}

/// [`Kernel`] across the boundary: every method, so a native kernel plugin can take all the
/// work the runtime offers (a method it does not implement answers "unsupported", as in-process).
#[sabi_trait]
pub trait FfiKernel: Send + Sync {
    fn name(&self) -> RString;
    fn device(&self) -> RString;
    /// `ROk` when the kernel can run here, else why not.
    fn available(&self) -> RResult<(), RString>;
    fn ring_matmul(
        &self,
        a: RSlice<'_, u64>,
        b: RSlice<'_, u64>,
        m: u64,
        k: u64,
        n: u64,
        out: RSliceMut<'_, u64>,
    ) -> FfiResult<()>;
    fn ring_conv2d(
        &self,
        x: RSlice<'_, u64>,
        w: RSlice<'_, u64>,
        g: FfiConv2d,
        out: RSliceMut<'_, u64>,
    ) -> FfiResult<()>;
    fn fss_eval(
        &self,
        scheme: u8,
        party: u8,
        n_bits: u32,
        keys: RSlice<'_, u8>,
        xs: RSlice<'_, u64>,
        out: RSliceMut<'_, u64>,
    ) -> FfiResult<()>;
    #[sabi(last_prefix_field)]
    fn pack_bits(&self, values: RSlice<'_, u64>, bits: u32, out: RSliceMut<'_, u64>) -> FfiResult<()>;
}

/// [`NodeEval`] across the boundary.
#[sabi_trait]
pub trait FfiNodeEval: Send {
    #[sabi(last_prefix_field)]
    fn step(&mut self, inbox: RVec<FfiMessage>) -> FfiResult<FfiStep>;
}

/// [`Dealer`] across the boundary.
#[sabi_trait]
pub trait FfiDealer: Send {
    /// JSON node, input ids, seed → each party's material.
    fn deal(&mut self, node: RStr<'_>, inputs: RSlice<'_, u32>, seed: FfiSeed) -> FfiResult<RVec<RVec<u8>>>;
    #[sabi(last_prefix_field)]
    fn forget(&mut self, id: u32);
}

/// [`Protocol`] across the boundary. Descriptors, ops, nodes and costs are JSON.
#[sabi_trait]
pub trait FfiProtocol: Send + Sync {
    fn descriptor(&self) -> RString;
    fn supports(&self, op: RStr<'_>) -> bool;
    /// JSON `Option<Lowering>`.
    fn lower(&self, op: RStr<'_>, inputs: RStr<'_>, fixed_point: RStr<'_>) -> RString;
    fn check(&self, node: RStr<'_>) -> RResult<(), RString>;
    fn cost(&self, node: RStr<'_>) -> RString;
    fn needs_material(&self, node: RStr<'_>) -> bool;
    fn dealer(&self) -> FfiDealerBox;
    #[sabi(last_prefix_field)]
    fn begin(
        &self,
        node: RStr<'_>,
        party: u16,
        inputs: RVec<FfiWire>,
        material: RVec<u8>,
        private: ROption<FfiTensor>,
    ) -> FfiResult<FfiNodeEvalBox>;
}

/// [`Link`] across the boundary.
#[sabi_trait]
pub trait FfiLink: Send + Sync {
    fn send(&self, to: u32, frame: RVec<u8>) -> FfiResult<()>;
    #[sabi(last_prefix_field)]
    fn recv(&self, from: u32, timeout_ms: u64) -> FfiResult<RVec<u8>>;
}

/// [`Transport`] across the boundary.
#[sabi_trait]
pub trait FfiTransport: Send + Sync {
    fn name(&self) -> RString;
    #[sabi(last_prefix_field)]
    fn connect(&self, session: FfiSession, me: u32) -> FfiResult<FfiLinkBox>;
}

pub type FfiOperatorBox = FfiOperator_TO<'static, RBox<()>>;
pub type FfiImporterBox = FfiImporter_TO<'static, RBox<()>>;
pub type FfiKernelBox = FfiKernel_TO<'static, RBox<()>>;
pub type FfiNodeEvalBox = FfiNodeEval_TO<'static, RBox<()>>;
pub type FfiDealerBox = FfiDealer_TO<'static, RBox<()>>;
pub type FfiProtocolBox = FfiProtocol_TO<'static, RBox<()>>;
pub type FfiLinkBox = FfiLink_TO<'static, RBox<()>>;
pub type FfiTransportBox = FfiTransport_TO<'static, RBox<()>>;

/// One plugin of a library.
#[repr(u8)]
#[derive(StableAbi)]
pub enum FfiPlugin {
    Protocol(FfiProtocolBox),
    Transport(FfiTransportBox),
    Kernel(FfiKernelBox),
    Importer(FfiImporterBox),
    Operator(FfiOperatorBox),
}

// ---------------------------------------------------------------------------------------------
// The root module
// ---------------------------------------------------------------------------------------------

/// The root module of a native plugin library.
#[repr(C)]
#[derive(StableAbi)]
#[sabi(kind(Prefix(prefix_ref = PluginLibraryRef)))]
#[sabi(missing_field(panic))]
pub struct PluginLibrary {
    /// The sdk version the library was built against (abi_stable checks compatibility; the
    /// host also shows it).
    pub sdk_version: extern "C" fn() -> RStr<'static>,
    /// Every plugin the library provides.
    #[sabi(last_prefix_field)]
    pub plugins: extern "C" fn() -> RVec<FfiPlugin>,
}

impl RootModule for PluginLibraryRef {
    declare_root_module_statics! {PluginLibraryRef}
    const BASE_NAME: &'static str = "mpcflow_plugin";
    const NAME: &'static str = "mpcflow_plugin";
    const VERSION_STRINGS: VersionStrings = package_version_strings!();
}

/// `sdk_version` of libraries built against this sdk.
pub extern "C" fn sdk_version() -> RStr<'static> {
    RStr::from_str(crate::SDK_VERSION)
}

/// The exported symbol name abi_stable looks up; `export_native_plugins!` must use exactly this
/// (a test checks it against abi_stable's own constant).
pub const ROOT_MODULE_SYMBOL: &str = "_1as_0lib_1header_0root_bmodule_bloader";

/// Exports a native plugin library: the listed plugins, each an expression of a type that
/// implements the kind's trait. Any list may be left out.
#[macro_export]
macro_rules! export_native_plugins {
    ($($kind:ident: [$($plugin:expr),* $(,)?]),* $(,)?) => {
        extern "C" fn __mpcflow_native_plugins()
            -> $crate::plugin::native::abi_stable::std_types::RVec<$crate::plugin::native::FfiPlugin>
        {
            let mut list = $crate::plugin::native::abi_stable::std_types::RVec::new();
            $($(
                list.push($crate::export_native_plugins!(@one $kind, $plugin));
            )*)*
            list
        }

        fn __mpcflow_root_module() -> $crate::plugin::native::PluginLibraryRef {
            use $crate::plugin::native::abi_stable::prefix_type::PrefixTypeTrait;
            $crate::plugin::native::PluginLibrary {
                sdk_version: $crate::plugin::native::sdk_version,
                plugins: __mpcflow_native_plugins,
            }
            .leak_into_prefix()
        }

        /// The root module abi_stable looks up when mpcflow opens this library.
        #[allow(unsafe_code, non_upper_case_globals)]
        #[unsafe(no_mangle)]
        pub static _1as_0lib_1header_0root_bmodule_bloader: $crate::plugin::native::abi_stable::library::LibHeader = {
            extern "C" fn erased() -> $crate::plugin::native::abi_stable::library::RootModuleResult {
                $crate::plugin::native::abi_stable::library::__call_root_module_loader(__mpcflow_root_module)
            }
            // SAFETY: `erased` returns the root module of type `PluginLibraryRef`, as abi_stable's
            // own `#[export_root_module]` writes it.
            unsafe {
                $crate::plugin::native::abi_stable::library::LibHeader::from_constructor::<
                    $crate::plugin::native::PluginLibraryRef,
                >(erased, $crate::plugin::native::abi_stable::library::CheckTypeLayout::Yes)
            }
        };
    };
    (@one protocols, $p:expr) => { $crate::plugin::native::export_protocol(::std::sync::Arc::new($p)) };
    (@one transports, $p:expr) => { $crate::plugin::native::export_transport(::std::sync::Arc::new($p)) };
    (@one kernels, $p:expr) => { $crate::plugin::native::export_kernel(::std::sync::Arc::new($p)) };
    (@one importers, $p:expr) => { $crate::plugin::native::export_importer(::std::sync::Arc::new($p)) };
    (@one operators, $p:expr) => { $crate::plugin::native::export_operator(::std::sync::Arc::new($p)) };
}

// ---------------------------------------------------------------------------------------------
// Plugin side: sdk trait → abi_stable trait object
// ---------------------------------------------------------------------------------------------

struct ExportOperator(Arc<dyn Operator>);

impl FfiOperator for ExportOperator {
    fn name(&self) -> RString {
        self.0.name().into()
    }
    fn version(&self) -> RString {
        self.0.version().into()
    }
    fn kind(&self) -> u8 {
        match self.0.kind() {
            OperatorKind::Secure => 0,
            OperatorKind::Transform => 1,
        }
    }
    fn lower(&self, attrs: RStr<'_>, inputs: RStr<'_>, fixed_point: RStr<'_>) -> FfiResult<RString> {
        guarded("lower", || {
            let attrs: Attrs = from_json(attrs, "attribute map")?;
            let inputs: Vec<TensorInfo> = from_json(inputs, "input list")?;
            let fp: FixedPoint = from_json(fixed_point, "fixed point")?;
            to_json(&self.0.lower(&attrs, &inputs, fp)?)
        })
    }
    fn transform(&self, attrs: RStr<'_>, input: FfiPlain) -> FfiResult<FfiPlain> {
        guarded("transform", || {
            let attrs: Attrs = from_json(attrs, "attribute map")?;
            let plain = PlainTensor { shape: shape_from_ffi(&input.shape), values: input.values.into_vec() };
            let out = self.0.transform(&attrs, plain)?;
            Ok(FfiPlain { shape: shape_to_ffi(&out.shape), values: out.values.into() })
        })
    }
}

/// Wraps an operator for export.
pub fn export_operator(op: Arc<dyn Operator>) -> FfiPlugin {
    FfiPlugin::Operator(FfiOperator_TO::from_value(ExportOperator(op), TD_Opaque))
}

struct ExportImporter(Arc<dyn Importer>);

impl FfiImporter for ExportImporter {
    fn name(&self) -> RString {
        self.0.name().into()
    }
    fn version(&self) -> RString {
        self.0.version().into()
    }
    fn import(&self, bytes: RSlice<'_, u8>) -> FfiResult<RString> {
        guarded("import", || to_json(&self.0.import(bytes.as_slice())?))
    }
}

/// Wraps an importer for export.
pub fn export_importer(i: Arc<dyn Importer>) -> FfiPlugin {
    FfiPlugin::Importer(FfiImporter_TO::from_value(ExportImporter(i), TD_Opaque))
}

struct ExportKernel(Arc<dyn Kernel>);

impl FfiKernel for ExportKernel {
    fn name(&self) -> RString {
        self.0.descriptor().name.into()
    }
    fn device(&self) -> RString {
        self.0.descriptor().device.into()
    }
    fn available(&self) -> RResult<(), RString> {
        match guarded("available", || Ok(self.0.available())) {
            RResult::ROk(Ok(())) => RResult::ROk(()),
            RResult::ROk(Err(why)) => RResult::RErr(why.into()),
            RResult::RErr(e) => RResult::RErr(Error::from(e).to_string().into()),
        }
    }
    fn ring_matmul(
        &self,
        a: RSlice<'_, u64>,
        b: RSlice<'_, u64>,
        m: u64,
        k: u64,
        n: u64,
        mut out: RSliceMut<'_, u64>,
    ) -> FfiResult<()> {
        guarded("ring_matmul", || {
            self.0.ring_matmul(a.as_slice(), b.as_slice(), m as usize, k as usize, n as usize, out.as_mut_slice())
        })
    }
    fn ring_conv2d(
        &self,
        x: RSlice<'_, u64>,
        w: RSlice<'_, u64>,
        g: FfiConv2d,
        mut out: RSliceMut<'_, u64>,
    ) -> FfiResult<()> {
        guarded("ring_conv2d", || self.0.ring_conv2d(x.as_slice(), w.as_slice(), &g.try_into()?, out.as_mut_slice()))
    }
    fn fss_eval(
        &self,
        scheme: u8,
        party: u8,
        n_bits: u32,
        keys: RSlice<'_, u8>,
        xs: RSlice<'_, u64>,
        mut out: RSliceMut<'_, u64>,
    ) -> FfiResult<()> {
        guarded("fss_eval", || {
            let keys = FssKeys { scheme: scheme_from_ffi(scheme)?, party, n_bits, bytes: keys.as_slice() };
            self.0.fss_eval(&keys, xs.as_slice(), out.as_mut_slice())
        })
    }
    fn pack_bits(&self, values: RSlice<'_, u64>, bits: u32, mut out: RSliceMut<'_, u64>) -> FfiResult<()> {
        guarded("pack_bits", || self.0.pack_bits(values.as_slice(), bits, out.as_mut_slice()))
    }
}

/// Wraps a kernel for export.
pub fn export_kernel(k: Arc<dyn Kernel>) -> FfiPlugin {
    FfiPlugin::Kernel(FfiKernel_TO::from_value(ExportKernel(k), TD_Opaque))
}

struct ExportNodeEval(Box<dyn NodeEval>);

impl FfiNodeEval for ExportNodeEval {
    fn step(&mut self, inbox: RVec<FfiMessage>) -> FfiResult<FfiStep> {
        guarded("step", || {
            let inbox = inbox.into_iter().map(message_from_ffi).collect();
            Ok(match self.0.step(inbox)? {
                Step::Exchange { send, expect } => FfiStep::Exchange {
                    send: send.into_iter().map(message_to_ffi).collect(),
                    expect: expect.iter().map(|p| p.0).collect(),
                },
                Step::Done(NodeValue::Wire(w)) => FfiStep::Wire(wire_to_ffi(&w)),
                Step::Done(NodeValue::Revealed(t)) => FfiStep::Revealed(t.map(tensor_to_ffi).into()),
            })
        })
    }
}

struct ExportDealer(Box<dyn Dealer>);

impl FfiDealer for ExportDealer {
    fn deal(&mut self, node: RStr<'_>, inputs: RSlice<'_, u32>, seed: FfiSeed) -> FfiResult<RVec<RVec<u8>>> {
        guarded("deal", || {
            let node: NodeDesc = from_json(node, "node")?;
            let material = self.0.deal(&node, inputs.as_slice(), seed.0)?;
            Ok(material.into_iter().map(RVec::from).collect())
        })
    }
    fn forget(&mut self, id: u32) {
        self.0.forget(id)
    }
}

struct ExportProtocol(Arc<dyn Protocol>);

impl FfiProtocol for ExportProtocol {
    fn descriptor(&self) -> RString {
        to_json(&self.0.descriptor()).unwrap_or_default()
    }
    fn supports(&self, op: RStr<'_>) -> bool {
        from_json::<Op>(op, "op").is_ok_and(|op| self.0.supports(&op))
    }
    fn lower(&self, op: RStr<'_>, inputs: RStr<'_>, fixed_point: RStr<'_>) -> RString {
        let lowering = (|| -> Result<Option<Lowering>> {
            let op: Op = from_json(op, "op")?;
            let inputs: Vec<TensorInfo> = from_json(inputs, "input list")?;
            let fp: FixedPoint = from_json(fixed_point, "fixed point")?;
            Ok(self.0.lower(&op, &inputs, fp))
        })();
        to_json(&lowering.ok().flatten()).unwrap_or_else(|_| "null".into())
    }
    fn check(&self, node: RStr<'_>) -> RResult<(), RString> {
        match from_json::<NodeDesc>(node, "node") {
            Ok(node) => self.0.check(&node).map_err(RString::from).into(),
            Err(e) => RResult::RErr(e.to_string().into()),
        }
    }
    fn cost(&self, node: RStr<'_>) -> RString {
        let cost = from_json::<NodeDesc>(node, "node").map(|n| self.0.cost(&n)).unwrap_or_default();
        to_json(&cost).unwrap_or_default()
    }
    fn needs_material(&self, node: RStr<'_>) -> bool {
        from_json::<NodeDesc>(node, "node").is_ok_and(|n| self.0.needs_material(&n))
    }
    fn dealer(&self) -> FfiDealerBox {
        FfiDealer_TO::from_value(ExportDealer(self.0.dealer()), TD_Opaque)
    }
    fn begin(
        &self,
        node: RStr<'_>,
        party: u16,
        inputs: RVec<FfiWire>,
        material: RVec<u8>,
        private: ROption<FfiTensor>,
    ) -> FfiResult<FfiNodeEvalBox> {
        guarded("begin", || {
            let node: NodeDesc = from_json(node, "node")?;
            let inputs = inputs.into_iter().map(|w| wire_from_ffi(w).map(Arc::new)).collect::<Result<_>>()?;
            let private = private.into_option().map(tensor_from_ffi).transpose()?;
            let input =
                EvalInput { party: PartyId(party), inputs, material: material.into_vec(), private, kernel: None };
            let eval = self.0.begin(&node, input)?;
            Ok(FfiNodeEval_TO::from_value(ExportNodeEval(eval), TD_Opaque))
        })
    }
}

/// Wraps a protocol for export.
pub fn export_protocol(p: Arc<dyn Protocol>) -> FfiPlugin {
    FfiPlugin::Protocol(FfiProtocol_TO::from_value(ExportProtocol(p), TD_Opaque))
}

struct ExportLink(Box<dyn Link>);

impl FfiLink for ExportLink {
    fn send(&self, to: u32, frame: RVec<u8>) -> FfiResult<()> {
        guarded("send", || self.0.send(endpoint_from_ffi(to), frame.into_vec()))
    }
    fn recv(&self, from: u32, timeout_ms: u64) -> FfiResult<RVec<u8>> {
        guarded("recv", || self.0.recv(endpoint_from_ffi(from), Duration::from_millis(timeout_ms)).map(RVec::from))
    }
}

struct ExportTransport(Arc<dyn Transport>);

impl FfiTransport for ExportTransport {
    fn name(&self) -> RString {
        self.0.name().into()
    }
    fn connect(&self, session: FfiSession, me: u32) -> FfiResult<FfiLinkBox> {
        guarded("connect", || {
            let info = SessionInfo {
                id: session.id.into_string(),
                parties: session.parties.into_iter().map(RString::into_string).collect(),
                has_dealer: session.has_dealer,
                dealer_window: session.dealer_window as usize,
                timeout: Duration::from_millis(session.timeout_ms),
            };
            let link = self.0.connect(&info, endpoint_from_ffi(me))?;
            Ok(FfiLink_TO::from_value(ExportLink(link), TD_Opaque))
        })
    }
}

/// Wraps a transport for export.
pub fn export_transport(t: Arc<dyn Transport>) -> FfiPlugin {
    FfiPlugin::Transport(FfiTransport_TO::from_value(ExportTransport(t), TD_Opaque))
}

// ---------------------------------------------------------------------------------------------
// Host side: abi_stable trait object → sdk trait
// ---------------------------------------------------------------------------------------------

/// A plugin from a library, as the sdk trait the registry holds.
pub enum HostPlugin {
    /// A protocol.
    Protocol(Arc<dyn Protocol>),
    /// A transport.
    Transport(Arc<dyn Transport>),
    /// A kernel.
    Kernel(Arc<dyn Kernel>),
    /// An importer.
    Importer(Arc<dyn Importer>),
    /// An operator.
    Operator(Arc<dyn Operator>),
}

/// Turns a library's plugins into registry plugins.
pub fn into_registry_plugins(list: RVec<FfiPlugin>) -> Result<Vec<HostPlugin>> {
    list.into_iter()
        .map(|p| {
            Ok(match p {
                FfiPlugin::Protocol(p) => {
                    let descriptor: ProtocolDescriptor = from_json(p.descriptor().as_rstr(), "protocol descriptor")?;
                    HostPlugin::Protocol(Arc::new(NativeProtocol { inner: p, descriptor }))
                }
                FfiPlugin::Transport(t) => {
                    HostPlugin::Transport(Arc::new(NativeTransport { name: t.name().into(), inner: t }))
                }
                FfiPlugin::Kernel(k) => HostPlugin::Kernel(Arc::new(NativeKernel {
                    descriptor: KernelDescriptor { name: k.name().into(), device: k.device().into() },
                    inner: k,
                })),
                FfiPlugin::Importer(i) => HostPlugin::Importer(Arc::new(NativeImporter {
                    name: i.name().into(),
                    version: i.version().into(),
                    inner: i,
                })),
                FfiPlugin::Operator(o) => HostPlugin::Operator(Arc::new(NativeOperator {
                    name: o.name().into(),
                    version: o.version().into(),
                    kind: if o.kind() == 1 { OperatorKind::Transform } else { OperatorKind::Secure },
                    inner: o,
                })),
            })
        })
        .collect()
}

struct NativeOperator {
    inner: FfiOperatorBox,
    name: String,
    version: String,
    kind: OperatorKind,
}

impl Operator for NativeOperator {
    fn name(&self) -> &str {
        &self.name
    }
    fn version(&self) -> &str {
        &self.version
    }
    fn kind(&self) -> OperatorKind {
        self.kind
    }
    fn lower(&self, attrs: &Attrs, inputs: &[TensorInfo], fixed_point: FixedPoint) -> Result<Lowering> {
        let (a, i, f) = (to_json(attrs)?, to_json(&inputs)?, to_json(&fixed_point)?);
        let out = lift(self.inner.lower(a.as_rstr(), i.as_rstr(), f.as_rstr()))?;
        from_json(out.as_rstr(), "lowering")
    }
    fn transform(&self, attrs: &Attrs, input: PlainTensor) -> Result<PlainTensor> {
        let a = to_json(attrs)?;
        let plain = FfiPlain { shape: shape_to_ffi(&input.shape), values: input.values.into() };
        let out = lift(self.inner.transform(a.as_rstr(), plain))?;
        Ok(PlainTensor { shape: shape_from_ffi(&out.shape), values: out.values.into_vec() })
    }
}

struct NativeImporter {
    inner: FfiImporterBox,
    name: String,
    version: String,
}

impl Importer for NativeImporter {
    fn name(&self) -> &str {
        &self.name
    }
    fn version(&self) -> &str {
        &self.version
    }
    fn import(&self, bytes: &[u8]) -> Result<ImportedModel> {
        let json = lift(self.inner.import(bytes.into()))?;
        from_json(json.as_rstr(), "model")
    }
}

struct NativeKernel {
    inner: FfiKernelBox,
    descriptor: KernelDescriptor,
}

impl Kernel for NativeKernel {
    fn descriptor(&self) -> KernelDescriptor {
        self.descriptor.clone()
    }
    fn available(&self) -> std::result::Result<(), String> {
        self.inner.available().into_result().map_err(RString::into_string)
    }
    fn ring_matmul(&self, a: &[u64], b: &[u64], m: usize, k: usize, n: usize, out: &mut [u64]) -> Result<()> {
        lift(self.inner.ring_matmul(a.into(), b.into(), m as u64, k as u64, n as u64, out.into()))
    }
    fn ring_conv2d(&self, x: &[u64], w: &[u64], g: &Conv2dGeometry, out: &mut [u64]) -> Result<()> {
        lift(self.inner.ring_conv2d(x.into(), w.into(), g.into(), out.into()))
    }
    fn fss_eval(&self, keys: &FssKeys<'_>, xs: &[u64], out: &mut [u64]) -> Result<()> {
        let scheme = scheme_to_ffi(keys.scheme);
        lift(self.inner.fss_eval(scheme, keys.party, keys.n_bits, keys.bytes.into(), xs.into(), out.into()))
    }
    fn pack_bits(&self, values: &[u64], bits: u32, out: &mut [u64]) -> Result<()> {
        lift(self.inner.pack_bits(values.into(), bits, out.into()))
    }
}

struct NativeNodeEval(FfiNodeEvalBox);

impl NodeEval for NativeNodeEval {
    fn step(&mut self, inbox: Vec<Message>) -> Result<Step> {
        let inbox = inbox.into_iter().map(message_to_ffi).collect();
        Ok(match lift(self.0.step(inbox))? {
            FfiStep::Exchange { send, expect } => Step::Exchange {
                send: send.into_iter().map(message_from_ffi).collect(),
                expect: expect.iter().map(|&p| PartyId(p)).collect(),
            },
            FfiStep::Wire(w) => Step::Done(NodeValue::Wire(wire_from_ffi(w)?)),
            FfiStep::Revealed(t) => Step::Done(NodeValue::Revealed(t.into_option().map(tensor_from_ffi).transpose()?)),
        })
    }
}

struct NativeDealer(FfiDealerBox);

impl Dealer for NativeDealer {
    fn deal(&mut self, node: &NodeDesc, inputs: &[u32], seed: [u8; 32]) -> Result<Vec<Vec<u8>>> {
        let json = to_json(node)?;
        let out = lift(self.0.deal(json.as_rstr(), inputs.into(), FfiSeed(seed)))?;
        Ok(out.into_iter().map(RVec::into_vec).collect())
    }
    fn forget(&mut self, id: u32) {
        self.0.forget(id)
    }
}

struct NativeProtocol {
    inner: FfiProtocolBox,
    descriptor: ProtocolDescriptor,
}

impl NativeProtocol {
    fn node_json(node: &NodeDesc) -> RString {
        to_json(node).unwrap_or_default()
    }
}

impl Protocol for NativeProtocol {
    fn descriptor(&self) -> ProtocolDescriptor {
        self.descriptor.clone()
    }
    fn supports(&self, op: &Op) -> bool {
        to_json(op).is_ok_and(|j| self.inner.supports(j.as_rstr()))
    }
    fn lower(&self, op: &Op, inputs: &[TensorInfo], fixed_point: FixedPoint) -> Option<Lowering> {
        let (o, i, f) = (to_json(op).ok()?, to_json(&inputs).ok()?, to_json(&fixed_point).ok()?);
        let out = self.inner.lower(o.as_rstr(), i.as_rstr(), f.as_rstr());
        from_json::<Option<Lowering>>(out.as_rstr(), "lowering").ok().flatten()
    }
    fn check(&self, node: &NodeDesc) -> std::result::Result<(), String> {
        self.inner.check(Self::node_json(node).as_rstr()).into_result().map_err(RString::into_string)
    }
    fn cost(&self, node: &NodeDesc) -> Cost {
        let json = self.inner.cost(Self::node_json(node).as_rstr());
        from_json(json.as_rstr(), "cost").unwrap_or_else(|_| Cost::zero(node.parties))
    }
    fn needs_material(&self, node: &NodeDesc) -> bool {
        self.inner.needs_material(Self::node_json(node).as_rstr())
    }
    fn dealer(&self) -> Box<dyn Dealer> {
        Box::new(NativeDealer(self.inner.dealer()))
    }
    fn begin(&self, node: &NodeDesc, input: EvalInput) -> Result<Box<dyn NodeEval>> {
        let inputs = input.inputs.iter().map(|w| wire_to_ffi(w)).collect();
        let private = input.private.map(tensor_to_ffi).into();
        let eval = lift(self.inner.begin(
            Self::node_json(node).as_rstr(),
            input.party.0,
            inputs,
            input.material.into(),
            private,
        ))?;
        Ok(Box::new(NativeNodeEval(eval)))
    }
}

struct NativeLink(FfiLinkBox);

impl Link for NativeLink {
    fn send(&self, to: Endpoint, frame: Vec<u8>) -> Result<()> {
        lift(self.0.send(endpoint_to_ffi(to), frame.into()))
    }
    fn recv(&self, from: Endpoint, timeout: Duration) -> Result<Vec<u8>> {
        lift(self.0.recv(endpoint_to_ffi(from), timeout.as_millis() as u64)).map(RVec::into_vec)
    }
}

struct NativeTransport {
    inner: FfiTransportBox,
    name: String,
}

impl Transport for NativeTransport {
    fn name(&self) -> &str {
        &self.name
    }
    fn connect(&self, session: &SessionInfo, me: Endpoint) -> Result<Box<dyn Link>> {
        let s = FfiSession {
            id: session.id.as_str().into(),
            parties: session.parties.iter().map(|p| RString::from(p.as_str())).collect(),
            has_dealer: session.has_dealer,
            dealer_window: session.dealer_window as u64,
            timeout_ms: session.timeout.as_millis() as u64,
        };
        let link = lift(self.inner.connect(s, endpoint_to_ffi(me)))?;
        Ok(Box::new(NativeLink(link)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_export_macro_uses_abi_stables_symbol_name() {
        assert_eq!(ROOT_MODULE_SYMBOL, abi_stable::library::ROOT_MODULE_LOADER_NAME);
    }

    #[test]
    fn errors_keep_their_kind_across_the_boundary() {
        for e in [
            Error::invalid("bad attr"),
            Error::Unsupported { what: "x".into(), plugin: "p".into() },
            Error::ResourcesExhausted("fuel".into()),
            Error::Timeout("t".into()),
        ] {
            assert_eq!(Error::from(FfiError::from(e.clone())), e);
        }
    }
}
