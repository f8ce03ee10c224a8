//! WASM plugins: core modules speaking the sdk's ABI ([`mpcflow_sdk::plugin::wasm_abi`]), run by
//! wasmtime in a sandbox.
//!
//! The sandbox is what the module is *not* given: it may import nothing, so it has no files,
//! network, clock or randomness (a module that imports anything, WASI included, is refused at
//! load). What it is given is bounded: fuel per call (wasm instructions, so an endless loop
//! ends) and a cap on its linear memory (growing past it traps). A trap, running out of fuel
//! or memory, or a malformed answer becomes [`Error::Plugin`] naming the plugin, the file and
//! what it was doing; the instance is then thrown away and the next call starts a fresh one.

use crate::{LoadError, Loaded, check_free};
use mpcflow_runtime::Registry;
use mpcflow_runtime::plugin_spec::WasmLimits;
use mpcflow_sdk::importer::{ImportedModel, Importer};
use mpcflow_sdk::op::Attrs;
use mpcflow_sdk::operator::{Operator, OperatorKind, PlainTensor};
use mpcflow_sdk::plugin::PluginKind;
use mpcflow_sdk::plugin::wasm_abi::*;
use mpcflow_sdk::protocol::Lowering;
use mpcflow_sdk::shape::TensorInfo;
use mpcflow_sdk::{Error, FixedPoint, Result};
use std::path::Path;
use std::sync::{Arc, Mutex, OnceLock};
use wasmtime::{Config, Engine, Instance, Memory, Module, Store, StoreLimits, StoreLimitsBuilder, Trap, TypedFunc};

/// One engine per process: it holds the compiler and its settings (fuel metering on).
fn engine() -> std::result::Result<&'static Engine, String> {
    static ENGINE: OnceLock<std::result::Result<Engine, String>> = OnceLock::new();
    ENGINE
        .get_or_init(|| {
            let mut config = Config::new();
            config.consume_fuel(true);
            Engine::new(&config).map_err(|e| format!("cannot start the WASM engine: {e:#}"))
        })
        .as_ref()
        .map_err(Clone::clone)
}

/// Compiles `bytes`, or returns the module compiled from the same bytes before in this process
/// (compiling is the slow part of loading: a pipeline planned many times, as in a benchmark or
/// a test, compiles its plugins once).
fn compiled(bytes: &[u8]) -> std::result::Result<Module, String> {
    use std::collections::HashMap;
    use std::hash::{Hash, Hasher};
    /// Compiled modules by a hash of their bytes (the bytes are kept to rule out collisions).
    type Cache = Mutex<HashMap<u64, (Vec<u8>, Module)>>;
    static CACHE: OnceLock<Cache> = OnceLock::new();
    let mut h = std::collections::hash_map::DefaultHasher::new();
    bytes.hash(&mut h);
    let key = h.finish();
    let cache = CACHE.get_or_init(Default::default);
    if let Ok(map) = cache.lock()
        && let Some((b, m)) = map.get(&key)
        && b == bytes
    {
        return Ok(m.clone());
    }
    let module = Module::new(engine()?, bytes).map_err(|e| format!("not a valid WASM module: {e:#}"))?;
    if let Ok(mut map) = cache.lock() {
        map.insert(key, (bytes.to_vec(), module.clone()));
    }
    Ok(module)
}

/// Loads the module at `path` (binary `.wasm`, or `.wat` text) and registers its plugins.
pub fn load(path: &Path, limits: WasmLimits, registry: &mut Registry, source: &str) -> Result<Vec<Loaded>, LoadError> {
    let not_a_plugin = |message: String| LoadError::NotAPlugin { path: path.to_path_buf(), message };
    let bytes =
        std::fs::read(path).map_err(|e| LoadError::Missing { path: path.to_path_buf(), message: e.to_string() })?;
    let module = compiled(&bytes).map_err(not_a_plugin)?;
    if let Some(import) = module.imports().next() {
        return Err(not_a_plugin(format!(
            "it imports `{}::{}`, but the sandbox provides no imports at all (no WASI: no files, network, \
             clock or randomness); build it for wasm32-unknown-unknown",
            import.module(),
            import.name()
        )));
    }
    for export in std::iter::once("memory").chain(REQUIRED_EXPORTS) {
        if module.get_export(export).is_none() {
            return Err(not_a_plugin(format!(
                "it does not export `{export}` (a WASM plugin exports memory and {}; see \
                 mpcflow_sdk::export_wasm_plugins!)",
                REQUIRED_EXPORTS.join(", ")
            )));
        }
    }
    let host = Arc::new(WasmModule { module, limits, instance: Mutex::new(None), label: path.display().to_string() });
    let version = host.abi_version().map_err(|e| not_a_plugin(e.to_string()))?;
    if version != ABI_VERSION {
        return Err(LoadError::Incompatible {
            path: path.to_path_buf(),
            message: format!("it speaks WASM plugin ABI version {version}; this mpcflow speaks version {ABI_VERSION}"),
        });
    }
    let manifest: Manifest = {
        let body = host.call(METHOD_DESCRIBE, &[], "describe").map_err(|e| not_a_plugin(e.to_string()))?;
        serde_json::from_slice(&body).map_err(|e| not_a_plugin(format!("its description is not valid: {e}")))?
    };
    if !compatible(&manifest.sdk, mpcflow_sdk::SDK_VERSION) {
        return Err(LoadError::Incompatible {
            path: path.to_path_buf(),
            message: format!(
                "it was built against mpcflow-sdk {}; this mpcflow is built with {} (rebuild the plugin)",
                manifest.sdk,
                mpcflow_sdk::SDK_VERSION
            ),
        });
    }
    let mut loaded = vec![];
    for p in manifest.plugins {
        check_free(registry, path, p.kind, &p.name)?;
        match p.kind {
            PluginKind::Operator => {
                let kind = p.operator.unwrap_or(OperatorKind::Secure);
                registry.add_operator(Arc::new(WasmOperator {
                    module: host.clone(),
                    name: p.name.clone(),
                    version: p.version,
                    kind,
                }));
            }
            PluginKind::Importer => {
                registry.add_importer(Arc::new(WasmImporter {
                    module: host.clone(),
                    name: p.name.clone(),
                    version: p.version,
                }));
            }
            other => {
                return Err(not_a_plugin(format!(
                    "it declares a {other} `{}`; WASM plugins are operators or importers",
                    p.name
                )));
            }
        }
        registry.set_source(p.kind, &p.name, source);
        tracing::info!(path = %path.display(), kind = %p.kind, name = %p.name, fuel = limits.fuel,
            memory_mib = limits.memory_mib, "loaded WASM plugin");
        loaded.push(Loaded { kind: p.kind, name: p.name });
    }
    Ok(loaded)
}

/// Semver compatibility as cargo sees it: same major, and same minor while the major is 0.
fn compatible(theirs: &str, ours: &str) -> bool {
    let parts = |v: &str| v.split('.').take(2).map(str::to_string).collect::<Vec<_>>();
    let (a, b) = (parts(theirs), parts(ours));
    match (a.first(), b.first()) {
        (Some(x), Some(y)) if x == "0" && y == "0" => a.get(1) == b.get(1),
        (Some(x), Some(y)) => x == y,
        _ => false,
    }
}

/// What a store carries: its limits.
struct StoreState {
    limits: StoreLimits,
}

/// A live instance and its exports.
struct Live {
    store: Store<StoreState>,
    memory: Memory,
    alloc: TypedFunc<i32, i32>,
    free: TypedFunc<(i32, i32), ()>,
    call: TypedFunc<(i32, i32, i32), i64>,
    last_panic: TypedFunc<(), i64>,
    abi_version: TypedFunc<(), i32>,
}

/// A compiled module and (at most) one instance of it, shared by its plugins. `label` is its
/// file, as messages show it.
struct WasmModule {
    module: Module,
    limits: WasmLimits,
    instance: Mutex<Option<Live>>,
    label: String,
}

impl WasmModule {
    fn instantiate(&self) -> Result<Live> {
        let engine = engine().map_err(Error::Plugin)?;
        let limits = StoreLimitsBuilder::new()
            .memory_size((self.limits.memory_mib as usize).saturating_mul(1 << 20))
            .trap_on_grow_failure(true)
            .instances(1)
            .build();
        let mut store = Store::new(engine, StoreState { limits });
        store.limiter(|s| &mut s.limits);
        store.set_fuel(self.limits.fuel).map_err(|e| self.fail("start", e))?;
        let instance = Instance::new(&mut store, &self.module, &[]).map_err(|e| self.fail("start", e))?;
        let bad = |e: wasmtime::Error| Error::Plugin(format!("WASM plugin {}: wrong interface: {e:#}", self.label));
        let memory = instance
            .get_memory(&mut store, "memory")
            .ok_or_else(|| Error::Plugin(format!("WASM plugin {}: `memory` is not a memory", self.label)))?;
        Ok(Live {
            alloc: instance.get_typed_func(&mut store, "mpcflow_alloc").map_err(bad)?,
            free: instance.get_typed_func(&mut store, "mpcflow_free").map_err(bad)?,
            call: instance.get_typed_func(&mut store, "mpcflow_call").map_err(bad)?,
            last_panic: instance.get_typed_func(&mut store, "mpcflow_last_panic").map_err(bad)?,
            abi_version: instance.get_typed_func(&mut store, "mpcflow_abi_version").map_err(bad)?,
            memory,
            store,
        })
    }

    /// Runs `f` on the live instance (starting one if needed) with a full tank of fuel. On any
    /// error the instance is dropped: after a trap its state cannot be trusted.
    fn with_instance<T>(&self, what: &str, f: impl FnOnce(&mut Live) -> Result<T>) -> Result<T> {
        let mut guard =
            self.instance.lock().map_err(|_| Error::Plugin(format!("WASM plugin {}: poisoned", self.label)))?;
        if guard.is_none() {
            *guard = Some(self.instantiate()?);
        }
        let Some(live) = guard.as_mut() else { return Err(Error::internal("no live WASM instance")) };
        live.store.set_fuel(self.limits.fuel).map_err(|e| self.fail(what, e))?;
        let result = f(live);
        if result.is_err() {
            *guard = None;
        }
        result
    }

    fn abi_version(&self) -> Result<i32> {
        self.with_instance("abi version", |live| {
            live.abi_version.call(&mut live.store, ()).map_err(|e| self.fail("abi version", e))
        })
    }

    /// One request/response through `mpcflow_call`.
    fn call(&self, method: i32, request: &[u8], what: &str) -> Result<Vec<u8>> {
        self.with_instance(what, |live| {
            let len = i32::try_from(request.len()).map_err(|_| {
                Error::Plugin(format!("WASM plugin {}: a {}-byte request is too large", self.label, request.len()))
            })?;
            let trap = |live: &mut Live, e: wasmtime::Error| self.trap(live, what, e);
            let ptr = match live.alloc.call(&mut live.store, len) {
                Ok(p) => p,
                Err(e) => return Err(trap(live, e)),
            };
            live.memory.write(&mut live.store, ptr as u32 as usize, request).map_err(|_| {
                Error::Plugin(format!(
                    "WASM plugin {}: `mpcflow_alloc` returned a buffer outside its memory",
                    self.label
                ))
            })?;
            let packed = match live.call.call(&mut live.store, (method, ptr, len)) {
                Ok(p) => p,
                Err(e) => return Err(trap(live, e)),
            };
            let (rptr, rlen) = unpack(packed);
            let response = live
                .memory
                .data(&live.store)
                .get(rptr as usize..rptr as usize + rlen as usize)
                .map(<[u8]>::to_vec)
                .ok_or_else(|| {
                    Error::Plugin(format!("WASM plugin {}: {what} returned a response outside its memory", self.label))
                })?;
            if let Err(e) = live.free.call(&mut live.store, (rptr as i32, rlen as i32)) {
                return Err(trap(live, e));
            }
            match response.split_first() {
                Some((&STATUS_OK, body)) => Ok(body.to_vec()),
                Some((&STATUS_ERR, msg)) => Err(Error::Plugin(String::from_utf8_lossy(msg).into_owned())),
                _ => Err(Error::Plugin(format!("WASM plugin {}: {what} returned a malformed response", self.label))),
            }
        })
    }

    /// An error from outside a call (instantiation, fuel).
    fn fail(&self, what: &str, e: wasmtime::Error) -> Error {
        Error::Plugin(format!("WASM plugin {} failed in {what}: {e:#}", self.label))
    }

    /// Explains a failed call: fuel, memory, or a trap (with the guest's panic message).
    fn trap(&self, live: &mut Live, what: &str, e: wasmtime::Error) -> Error {
        let text = format!("{e:#}");
        if let Some(Trap::OutOfFuel) = e.downcast_ref::<Trap>() {
            return Error::ResourcesExhausted(format!(
                "WASM plugin {} ran out of fuel in {what} (limit {} per call): it does not finish; if it \
                 needs more, raise `fuel:` in its `plugins:` entry",
                self.label, self.limits.fuel
            ));
        }
        if text.contains("forcing trap when growing memory") {
            return Error::ResourcesExhausted(format!(
                "WASM plugin {} exceeded its memory limit of {} MiB in {what}; if it needs more, raise \
                 `memory_mib:` in its `plugins:` entry",
                self.label, self.limits.memory_mib
            ));
        }
        let reason = e.downcast_ref::<Trap>().map_or_else(|| e.root_cause().to_string(), Trap::to_string);
        match self.panic_message(live) {
            Some(msg) => Error::Plugin(format!("WASM plugin {} trapped in {what}: {msg}", self.label)),
            None => Error::Plugin(format!("WASM plugin {} trapped in {what}: {reason}", self.label)),
        }
    }

    /// The guest's last panic message, if it recorded one before trapping.
    fn panic_message(&self, live: &mut Live) -> Option<String> {
        live.store.set_fuel(1_000_000).ok()?;
        let packed = live.last_panic.call(&mut live.store, ()).ok()?;
        let (ptr, len) = unpack(packed);
        if packed == 0 || len > 64 * 1024 {
            return None;
        }
        let bytes = live.memory.data(&live.store).get(ptr as usize..ptr as usize + len as usize)?;
        Some(String::from_utf8_lossy(bytes).into_owned())
    }
}

impl std::fmt::Debug for WasmModule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WasmModule").field("file", &self.label).field("limits", &self.limits).finish()
    }
}

/// An operator inside a WASM module.
struct WasmOperator {
    module: Arc<WasmModule>,
    name: String,
    version: String,
    kind: OperatorKind,
}

impl Operator for WasmOperator {
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
        let req =
            LowerRequest { operator: self.name.clone(), attrs: attrs.clone(), inputs: inputs.to_vec(), fixed_point };
        let body = serde_json::to_vec(&req).map_err(|e| Error::internal(format!("encoding a lower request: {e}")))?;
        let out = self.module.call(METHOD_LOWER, &body, &format!("`{}` lower", self.name))?;
        serde_json::from_slice(&out).map_err(|e| {
            Error::Plugin(format!(
                "WASM plugin {}: `{}` returned a malformed lowering: {e}",
                self.module.label, self.name
            ))
        })
    }
    fn transform(&self, attrs: &Attrs, input: PlainTensor) -> Result<PlainTensor> {
        let header = TransformHeader { operator: self.name.clone(), attrs: attrs.clone(), shape: input.shape };
        let header = serde_json::to_vec(&header).map_err(|e| Error::internal(format!("encoding a header: {e}")))?;
        let out = self.module.call(
            METHOD_TRANSFORM,
            &frame_f64(&header, &input.values),
            &format!("`{}` transform", self.name),
        )?;
        let malformed = |m: String| {
            Error::Plugin(format!(
                "WASM plugin {}: `{}` returned a malformed result: {m}",
                self.module.label, self.name
            ))
        };
        let (head, body) = unframe(&out).map_err(malformed)?;
        let shape: Vec<usize> = serde_json::from_slice(head).map_err(|e| malformed(e.to_string()))?;
        Ok(PlainTensor { shape, values: bytes_to_f64(body).map_err(malformed)? })
    }
}

/// An importer inside a WASM module.
struct WasmImporter {
    module: Arc<WasmModule>,
    name: String,
    version: String,
}

impl Importer for WasmImporter {
    fn name(&self) -> &str {
        &self.name
    }
    fn version(&self) -> &str {
        &self.version
    }
    fn import(&self, bytes: &[u8]) -> Result<ImportedModel> {
        let header = serde_json::to_vec(&ImportHeader { importer: self.name.clone() })
            .map_err(|e| Error::internal(format!("encoding a header: {e}")))?;
        let out = self.module.call(METHOD_IMPORT, &frame(&header, bytes), &format!("`{}` import", self.name))?;
        serde_json::from_slice(&out).map_err(|e| {
            Error::Plugin(format!("WASM plugin {}: `{}` returned a malformed model: {e}", self.module.label, self.name))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sdk_versions_are_compatible_as_cargo_sees_them() {
        assert!(compatible("0.1.0", "0.1.7"));
        assert!(!compatible("0.2.0", "0.1.0"));
        assert!(compatible("1.2.0", "1.0.0"));
        assert!(!compatible("2.0.0", "1.0.0"));
        assert!(!compatible("", "0.1.0"));
    }
}
