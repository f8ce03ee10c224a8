//! The plugin side of the WASM interface (feature `guest`): an author implements
//! [`Operator`] or [`Importer`] as usual and names the plugins once.
//!
//! ```ignore
//! use mpcflow_sdk::export_wasm_plugins;
//! export_wasm_plugins! {
//!     operators: [Normalize, Clip],
//!     importers: [TinyFormat],
//! }
//! ```
//! Then `cargo build --release --target wasm32-unknown-unknown` gives a `.wasm` the host
//! loads with `plugins: [{ wasm: PATH }]`. The macro writes the exports of
//! [`super::wasm_abi`]; this module holds the code behind them.
#![allow(unsafe_code)]

use super::wasm_abi::*;
use crate::importer::Importer;
use crate::operator::{Operator, PlainTensor};
use crate::plugin::PluginKind;
use std::sync::Mutex;

/// The plugins of one module.
pub struct GuestPlugins {
    /// Operators.
    pub operators: Vec<Box<dyn Operator>>,
    /// Importers.
    pub importers: Vec<Box<dyn Importer>>,
}

static LAST_PANIC: Mutex<Option<Box<[u8]>>> = Mutex::new(None);

/// Installs a panic hook that keeps the message for the host to read after the trap.
pub fn install_panic_hook() {
    std::panic::set_hook(Box::new(|info| {
        if let Ok(mut last) = LAST_PANIC.lock() {
            *last = Some(info.to_string().into_bytes().into_boxed_slice());
        }
    }));
}

/// `mpcflow_last_panic`: where the last panic message lies (0 when there was none).
pub fn last_panic() -> i64 {
    match LAST_PANIC.lock().ok().as_deref() {
        Some(Some(msg)) => pack(msg.as_ptr() as usize as u32, msg.len() as u32),
        _ => 0,
    }
}

/// `mpcflow_alloc`: a buffer of `len` bytes the host fills.
pub fn alloc(len: i32) -> i32 {
    let buf = vec![0u8; len.max(0) as usize].into_boxed_slice();
    Box::into_raw(buf) as *mut u8 as usize as i32
}

/// `mpcflow_free`: frees a buffer this module handed out.
///
/// # Safety
/// `ptr` and `len` must be a buffer returned by [`alloc`] or [`call`] and not freed yet.
pub unsafe fn free(ptr: i32, len: i32) {
    let slice = std::ptr::slice_from_raw_parts_mut(ptr as usize as *mut u8, len.max(0) as usize);
    // SAFETY: the caller passes a boxed slice of exactly this length that we leaked.
    drop(unsafe { Box::from_raw(slice) });
}

/// `mpcflow_call`: handles one request and leaks the response for the host to read and free.
///
/// # Safety
/// `ptr` and `len` must be a buffer returned by [`alloc`]; this call takes it.
pub unsafe fn call(plugins: &GuestPlugins, method: i32, ptr: i32, len: i32) -> i64 {
    let slice = std::ptr::slice_from_raw_parts_mut(ptr as usize as *mut u8, len.max(0) as usize);
    // SAFETY: the host passes back the buffer `alloc` leaked, with its length.
    let request = unsafe { Box::from_raw(slice) };
    let mut response = match dispatch(plugins, method, &request) {
        Ok(body) => {
            let mut r = vec![STATUS_OK];
            r.extend_from_slice(&body);
            r
        }
        Err(msg) => {
            let mut r = vec![STATUS_ERR];
            r.extend_from_slice(msg.as_bytes());
            r
        }
    }
    .into_boxed_slice();
    let (p, n) = (response.as_mut_ptr() as usize as u32, response.len() as u32);
    std::mem::forget(response);
    pack(p, n)
}

fn operator<'a>(plugins: &'a GuestPlugins, name: &str) -> Result<&'a dyn Operator, String> {
    plugins
        .operators
        .iter()
        .find(|o| o.name() == name)
        .map(|o| o.as_ref())
        .ok_or_else(|| format!("this module has no operator `{name}`"))
}

fn json<T: serde::de::DeserializeOwned>(bytes: &[u8], what: &str) -> Result<T, String> {
    serde_json::from_slice(bytes).map_err(|e| format!("bad {what} request: {e}"))
}

fn dispatch(plugins: &GuestPlugins, method: i32, request: &[u8]) -> Result<Vec<u8>, String> {
    match method {
        METHOD_DESCRIBE => {
            let mut list: Vec<GuestPlugin> = plugins
                .operators
                .iter()
                .map(|o| GuestPlugin {
                    kind: PluginKind::Operator,
                    name: o.name().into(),
                    version: o.version().into(),
                    operator: Some(o.kind()),
                })
                .collect();
            list.extend(plugins.importers.iter().map(|i| GuestPlugin {
                kind: PluginKind::Importer,
                name: i.name().into(),
                version: i.version().into(),
                operator: None,
            }));
            to_json(&Manifest { sdk: crate::SDK_VERSION.into(), plugins: list })
        }
        METHOD_LOWER => {
            let req: LowerRequest = json(request, "lower")?;
            let op = operator(plugins, &req.operator)?;
            let lowering = op.lower(&req.attrs, &req.inputs, req.fixed_point).map_err(|e| e.to_string())?;
            to_json(&lowering)
        }
        METHOD_TRANSFORM => {
            let (header, body) = unframe(request)?;
            let h: TransformHeader = json(header, "transform")?;
            let op = operator(plugins, &h.operator)?;
            let values = bytes_to_f64(body)?;
            let out = op.transform(&h.attrs, PlainTensor { shape: h.shape, values }).map_err(|e| e.to_string())?;
            let shape = serde_json::to_vec(&out.shape).map_err(|e| e.to_string())?;
            Ok(frame_f64(&shape, &out.values))
        }
        METHOD_IMPORT => {
            let (header, body) = unframe(request)?;
            let h: ImportHeader = json(header, "import")?;
            let importer = plugins
                .importers
                .iter()
                .find(|i| i.name() == h.importer)
                .ok_or_else(|| format!("this module has no importer `{}`", h.importer))?;
            let model = importer.import(body).map_err(|e| e.to_string())?;
            to_json(&model)
        }
        other => Err(format!("unknown method {other}")),
    }
}

fn to_json<T: serde::Serialize>(value: &T) -> Result<Vec<u8>, String> {
    serde_json::to_vec(value).map_err(|e| format!("cannot encode the response: {e}"))
}

/// Writes the exports of a WASM plugin module (see [`super::wasm_abi`]) for the listed plugins.
///
/// Each list holds expressions of types implementing [`Operator`] and [`Importer`]; either list
/// may be left out.
#[macro_export]
macro_rules! export_wasm_plugins {
    ($($kind:ident: [$($plugin:expr),* $(,)?]),* $(,)?) => {
        // The exports exist only in the WASM build: the pointer arithmetic is 32-bit, and a
        // host build of the crate (for its tests) must not export these names.
        #[cfg(target_family = "wasm")]
        fn __mpcflow_plugins() -> &'static $crate::plugin::guest::GuestPlugins {
            static PLUGINS: ::std::sync::OnceLock<$crate::plugin::guest::GuestPlugins> = ::std::sync::OnceLock::new();
            PLUGINS.get_or_init(|| {
                $crate::plugin::guest::install_panic_hook();
                let mut plugins = $crate::plugin::guest::GuestPlugins { operators: vec![], importers: vec![] };
                $($($crate::export_wasm_plugins!(@add plugins, $kind, $plugin);)*)*
                plugins
            })
        }

        /// The WASM plugin ABI version this module speaks.
        #[cfg(target_family = "wasm")]
        #[allow(unsafe_code)]
        #[unsafe(no_mangle)]
        pub extern "C" fn mpcflow_abi_version() -> i32 {
            $crate::plugin::wasm_abi::ABI_VERSION
        }

        /// A buffer for the host to write a request into.
        #[cfg(target_family = "wasm")]
        #[allow(unsafe_code)]
        #[unsafe(no_mangle)]
        pub extern "C" fn mpcflow_alloc(len: i32) -> i32 {
            $crate::plugin::guest::alloc(len)
        }

        /// Frees a response buffer.
        #[cfg(target_family = "wasm")]
        #[allow(unsafe_code)]
        #[unsafe(no_mangle)]
        pub extern "C" fn mpcflow_free(ptr: i32, len: i32) {
            // SAFETY: the host frees only buffers this module handed out, once.
            unsafe { $crate::plugin::guest::free(ptr, len) }
        }

        /// Handles one request.
        #[cfg(target_family = "wasm")]
        #[allow(unsafe_code)]
        #[unsafe(no_mangle)]
        pub extern "C" fn mpcflow_call(method: i32, ptr: i32, len: i32) -> i64 {
            // SAFETY: the host passes a buffer from `mpcflow_alloc`, once.
            unsafe { $crate::plugin::guest::call(__mpcflow_plugins(), method, ptr, len) }
        }

        /// Where the last panic message lies, for the host to read after a trap.
        #[cfg(target_family = "wasm")]
        #[allow(unsafe_code)]
        #[unsafe(no_mangle)]
        pub extern "C" fn mpcflow_last_panic() -> i64 {
            $crate::plugin::guest::last_panic()
        }
    };
    (@add $p:ident, operators, $x:expr) => {
        $p.operators.push(::std::boxed::Box::new($x))
    };
    (@add $p:ident, importers, $x:expr) => {
        $p.importers.push(::std::boxed::Box::new($x))
    };
}
