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

mod data;
mod export;
mod host;
mod traits;

pub use data::*;
pub use export::*;
pub use host::*;
pub use traits::*;

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
