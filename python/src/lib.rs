//! # `mpcflow._mpcflow`: the native half of the Python package
//!
//! The Python package (`python/mpcflow/`) gives the API users see: `mpcflow.run`,
//! `Pipeline`, `Plan` and the exception classes. This module is what it stands on: a pipeline
//! loaded as the command line loads it ([`mpcflow::prepare`]: built-in plugins, the file's
//! `plugins:`, its `models:` imported), planned, and run with every party and the dealer in
//! this process.
//!
//! Values cross as plain bytes: an input is `(kind, shape, little-endian bytes)` with kind
//! `real` (float64) or `int` (int64), and an output comes back as `(name, dtype, shape, bytes,
//! reveal_to)`, fixed point decoded to float64, int as int64 and bit as uint8. NumPy stays on the
//! Python side, so this module needs no NumPy headers and builds for every CPython from 3.9
//! (abi3).
//!
//! A run releases the GIL and waits for the result in slices of 50 ms, checking for signals
//! between them: Ctrl-C cancels the run and raises `KeyboardInterrupt`. Each slice also calls
//! the progress callback with the nodes finished and the total.

mod errors;
mod values;

use errors::{Stage, to_py};
use mpcflow_runtime::pipeline::Pipeline;
use mpcflow_runtime::plan::PlanOptions;
use mpcflow_runtime::{Registry, Session, SessionConfig};
use pyo3::prelude::*;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

/// A pipeline with its plugins loaded and its models imported, ready to plan and run.
#[pyclass(module = "mpcflow._mpcflow", name = "Prepared", frozen)]
struct Prepared {
    pipeline: Pipeline,
    registry: Registry,
}

/// How a plan or a run is asked for from Python.
struct Settings {
    protocol: Option<String>,
    network: Option<String>,
    all_under_protocol: bool,
}

impl Settings {
    fn config(&self) -> PyResult<SessionConfig> {
        let network = match &self.network {
            None => Default::default(),
            Some(n) => mpcflow_sdk::Network::from_name(n).ok_or_else(|| {
                errors::Error::new_err(format!("unknown network profile `{n}`: use local, lan or wan"))
            })?,
        };
        Ok(SessionConfig {
            protocol: self.protocol.clone(),
            network,
            all_under_protocol: self.all_under_protocol,
            ..Default::default()
        })
    }
}

impl Prepared {
    fn session(&self, config: SessionConfig) -> PyResult<Session> {
        let s =
            Session::from_pipeline(self.pipeline.clone(), self.registry.clone()).map_err(|e| to_py(&e, Stage::Load))?;
        Ok(s.with_config(config))
    }
}

fn prepare(pipeline: Result<Pipeline, mpcflow_runtime::Error>, plugins: Vec<PathBuf>) -> PyResult<Prepared> {
    let pipeline = pipeline.map_err(|e| to_py(&e, Stage::Load))?;
    let (pipeline, registry) = mpcflow::prepare(pipeline, &plugins).map_err(|e| to_py(&e, Stage::Load))?;
    Ok(Prepared { pipeline, registry })
}

#[pymethods]
impl Prepared {
    /// Reads a pipeline file.
    #[staticmethod]
    #[pyo3(signature = (path, plugins = Vec::new()))]
    fn load(path: PathBuf, plugins: Vec<PathBuf>) -> PyResult<Prepared> {
        prepare(Pipeline::from_path(&path), plugins)
    }

    /// Parses pipeline YAML; `name` stands for the file in messages.
    #[staticmethod]
    #[pyo3(signature = (text, name, plugins = Vec::new()))]
    fn from_yaml(text: &str, name: &str, plugins: Vec<PathBuf>) -> PyResult<Prepared> {
        prepare(Pipeline::from_yaml(text, name), plugins)
    }

    /// The graph's declarations as JSON: name, parties, protocol, inputs, outputs.
    fn summary(&self) -> String {
        let g = &self.pipeline.spec;
        let inputs: Vec<_> = g
            .inputs
            .iter()
            .map(|i| {
                let shape: Vec<serde_json::Value> = i
                    .shape
                    .iter()
                    .map(|d| match d {
                        mpcflow_sdk::graph::Dim::Fixed(n) => serde_json::json!(n),
                        mpcflow_sdk::graph::Dim::Sym(s) => serde_json::json!(s),
                    })
                    .collect();
                let from_model = self.pipeline.weights.contains(&i.name);
                serde_json::json!({
                    "name": i.name, "owner": i.owner, "dtype": i.dtype.name(), "shape": shape, "from_model": from_model,
                })
            })
            .collect();
        let outputs: Vec<_> =
            g.outputs.iter().map(|o| serde_json::json!({ "name": o.name, "reveal_to": o.reveal_to })).collect();
        let nodes: Vec<_> = g
            .nodes
            .iter()
            .map(|n| {
                let attrs: serde_json::Map<String, serde_json::Value> =
                    n.op.attrs().iter().map(|(k, v)| (k.clone(), values::attr_json(v))).collect();
                serde_json::json!({ "name": n.name, "op": n.op.name(), "inputs": n.inputs, "attrs": attrs })
            })
            .collect();
        serde_json::json!({
            "name": g.name, "parties": g.parties, "protocol": g.protocol, "inputs": inputs, "outputs": outputs,
            "nodes": nodes,
        })
        .to_string()
    }

    /// The plan as JSON (as `mpcflow plan --json` prints it), or as Graphviz text with `dot`.
    #[pyo3(signature = (protocol = None, dims = HashMap::new(), network = None, dot = false, all_under_protocol = false))]
    fn plan(
        &self,
        protocol: Option<String>,
        dims: HashMap<String, usize>,
        network: Option<String>,
        dot: bool,
        all_under_protocol: bool,
    ) -> PyResult<String> {
        let config = Settings { protocol, network, all_under_protocol }.config()?;
        let session = self.session(config)?;
        let plan = session.plan(PlanOptions { dims, ..Default::default() }).map_err(|e| to_py(&e, Stage::Load))?;
        Ok(if dot { mpcflow_runtime::plan::to_dot(&plan) } else { plan.to_json().to_string() })
    }

    /// Runs every party and the dealer in this process; see the module docs for the forms of
    /// `inputs` and of the result.
    #[pyo3(signature = (inputs, protocol = None, input_dirs = Vec::new(), timeout = 600.0, network = None,
                        transport = String::from("mem"), progress = None, all_under_protocol = false))]
    #[allow(clippy::too_many_arguments)]
    fn run(
        &self,
        py: Python<'_>,
        inputs: HashMap<String, (String, Vec<usize>, Vec<u8>)>,
        protocol: Option<String>,
        input_dirs: Vec<PathBuf>,
        timeout: f64,
        network: Option<String>,
        transport: String,
        progress: Option<Py<PyAny>>,
        all_under_protocol: bool,
    ) -> PyResult<Vec<values::Output>> {
        let timeout = match Duration::try_from_secs_f64(timeout) {
            Ok(d) if !d.is_zero() => d,
            _ => {
                return Err(errors::Error::new_err(format!(
                    "timeout must be a positive number of seconds, not {timeout}"
                )));
            }
        };
        let done = Arc::new(AtomicUsize::new(0));
        let mut config = Settings { protocol, network, all_under_protocol }.config()?;
        config.timeout = timeout;
        config.transport = transport;
        config.progress = Some(done.clone());
        let session = self.session(config)?;
        let mut given = HashMap::new();
        for (name, (kind, shape, bytes)) in inputs {
            let v = values::input(&name, &kind, shape, &bytes).map_err(errors::InputError::new_err)?;
            given.insert(name, v);
        }
        values::fill_from_dirs(&mut given, &session.inputs_to_give(None), &input_dirs)
            .map_err(errors::InputError::new_err)?;
        let tensors = session.encode_inputs(given).map_err(|e| to_py(&e, Stage::Inputs))?;
        let opts = PlanOptions {
            input_shapes: tensors.iter().map(|(k, t)| (k.clone(), t.shape.clone())).collect(),
            ..Default::default()
        };
        let plan = Arc::new(session.plan(opts).map_err(|e| to_py(&e, Stage::Shapes))?);
        let total = plan.nodes.len();
        let report = |py: Python<'_>| match &progress {
            Some(cb) => cb.call1(py, (done.load(Ordering::Relaxed), total)).map(|_| ()),
            None => Ok(()),
        };
        let out = wait(py, async move { session.run_plan(plan, tensors).await }, report)?;
        Ok(values::outputs(&out))
    }
}

/// Runs `run` on a runtime of its own and waits with the GIL released, checking for signals
/// and calling `report` between slices of 50 ms; Ctrl-C aborts the run.
fn wait<T: Send + 'static>(
    py: Python<'_>,
    run: impl std::future::Future<Output = Result<T, mpcflow_runtime::Error>> + Send + 'static,
    report: impl Fn(Python<'_>) -> PyResult<()>,
) -> PyResult<T> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| errors::Error::new_err(format!("cannot start the async runtime: {e}")))?;
    let (tx, rx) = std::sync::mpsc::channel();
    let task = rt.spawn(async move {
        let out = run.await;
        let _ = tx.send(out);
    });
    let mut rx = rx;
    // Every way out (a result, Ctrl-C, a progress callback that raises) ends the run and shuts
    // the runtime down with the GIL released: its blocking threads may still be finishing.
    let outcome = (|| loop {
        let (got, back) = py.detach(move || (rx.recv_timeout(Duration::from_millis(50)), rx));
        rx = back;
        report(py)?;
        py.check_signals()?;
        match got {
            Ok(out) => return Ok(out),
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => continue,
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
                return Err(errors::ProtocolError::new_err(
                    "the run stopped without a result (a bug, please report it)",
                ));
            }
        }
    })();
    task.abort();
    py.detach(|| rt.shutdown_timeout(Duration::from_secs(2)));
    outcome?.map_err(|e| to_py(&e, Stage::Run))
}

/// `calibrate=`: a sample for a model's only input, or one per input by name.
#[derive(FromPyObject)]
enum Calibrate {
    One(PathBuf),
    Each(std::collections::BTreeMap<String, PathBuf>),
}

/// Imports a model file into a pipeline file and the owner's weight files (what `mpcflow
/// import` does); returns the pipeline's path and the weights' directory.
#[pyfunction]
#[pyo3(signature = (model, owner, input_owner, out, reveal = "class", batch = 1, weights = None,
                    protocol = "fss2pc", importer = "onnx", plugins = Vec::new(), calibrate = None, margin = None))]
#[allow(clippy::too_many_arguments)]
fn import_model(
    model: PathBuf,
    owner: &str,
    input_owner: &str,
    out: PathBuf,
    reveal: &str,
    batch: usize,
    weights: Option<PathBuf>,
    protocol: &str,
    importer: &str,
    plugins: Vec<PathBuf>,
    calibrate: Option<Calibrate>,
    margin: Option<f64>,
) -> PyResult<(PathBuf, PathBuf)> {
    use mpcflow::import::Reveal;
    let reveal = match reveal {
        "class" => Reveal::Class,
        "logits" => Reveal::Logits,
        "accuracy" => Reveal::Accuracy,
        other => return Err(errors::Error::new_err(format!("reveal=`{other}`: use class, logits or accuracy"))),
    };
    let mut req = mpcflow::import_files::ImportRequest::new(model, owner, input_owner, out);
    req.reveal = reveal;
    req.batch = batch;
    req.weights = weights;
    req.protocol = protocol.into();
    req.importer = importer.into();
    req.calibrate = match calibrate {
        None => vec![],
        Some(Calibrate::One(path)) => vec![mpcflow::calibrate::SampleFile { input: None, path }],
        Some(Calibrate::Each(each)) => {
            each.into_iter().map(|(input, path)| mpcflow::calibrate::SampleFile { input: Some(input), path }).collect()
        }
    };
    if let Some(m) = margin {
        req.margin = m;
    }
    let registry = mpcflow::registry_with(&[], &plugins).map_err(|e| to_py(&e, Stage::Load))?;
    let done = mpcflow::import_files::import_to_files(&req, &registry).map_err(errors::Error::new_err)?;
    Ok((done.pipeline, done.weights_dir))
}

/// How `party` and `dealer` connect: a deployment file and the waits' bounds.
fn connect(
    deployment: PathBuf,
    protocol: Option<String>,
    timeout: f64,
    connect_timeout: f64,
) -> PyResult<mpcflow::deploy::Connect> {
    let secs = |what: &str, s: f64| match Duration::try_from_secs_f64(s) {
        Ok(d) if !d.is_zero() => Ok(d),
        _ => Err(errors::Error::new_err(format!("{what} must be a positive number of seconds, not {s}"))),
    };
    let mut c = mpcflow::deploy::Connect::new(deployment);
    c.protocol = protocol;
    c.timeout = secs("timeout", timeout)?;
    c.connect_timeout = secs("connect_timeout", connect_timeout)?;
    Ok(c)
}

/// Runs this process as party `name` of a deployment: its own inputs only; returns the outputs
/// revealed to it (as `Prepared.run` does).
#[pyfunction]
#[pyo3(signature = (name, deployment, pipeline, inputs = HashMap::new(), protocol = None, input_dirs = Vec::new(),
                    timeout = 60.0, connect_timeout = 60.0, insecure = false))]
#[allow(clippy::too_many_arguments)]
fn party(
    py: Python<'_>,
    name: String,
    deployment: PathBuf,
    pipeline: PathBuf,
    inputs: HashMap<String, (String, Vec<usize>, Vec<u8>)>,
    protocol: Option<String>,
    input_dirs: Vec<PathBuf>,
    timeout: f64,
    connect_timeout: f64,
    insecure: bool,
) -> PyResult<Vec<values::Output>> {
    let mut c = connect(deployment, protocol, timeout, connect_timeout)?;
    c.allow_insecure = insecure;
    let (session, transport, given) = open_with_inputs(&name, &pipeline, &c, inputs, &input_dirs)?;
    let out = wait(py, async move { session.run_as_party(&name, transport, given).await }, |_| Ok(()))?;
    let fp = out.plan.fixed_point;
    Ok(values::revealed(out.outputs.iter().map(|(n, p, t)| (n.as_str(), p.as_slice(), t)), fp))
}

/// A party's or owner's session, transport and inputs (given, and found in `input_dirs`).
#[allow(clippy::type_complexity)] // what one process needs, returned together
fn open_with_inputs(
    name: &str,
    pipeline: &std::path::Path,
    c: &mpcflow::deploy::Connect,
    inputs: HashMap<String, (String, Vec<usize>, Vec<u8>)>,
    input_dirs: &[PathBuf],
) -> PyResult<(Session, Arc<dyn mpcflow_sdk::transport::Transport>, HashMap<String, mpcflow_runtime::InputValue>)> {
    let (session, transport) = mpcflow::deploy::open(pipeline, name, c).map_err(|m| errors::opening(pipeline, m))?;
    let mut given = HashMap::new();
    for (input, (kind, shape, bytes)) in inputs {
        let v = values::input(&input, &kind, shape, &bytes).map_err(errors::InputError::new_err)?;
        given.insert(input, v);
    }
    values::fill_from_dirs(&mut given, &session.inputs_to_give(Some(name)), input_dirs)
        .map_err(errors::InputError::new_err)?;
    Ok((session, transport, given))
}

/// Runs this process as data owner `name` of a deployment: shares its inputs with the parties
/// and returns the outputs revealed to it.
#[pyfunction]
#[pyo3(signature = (name, deployment, pipeline, inputs, protocol = None, input_dirs = vec![], timeout = 60.0, connect_timeout = 60.0, insecure = false))]
#[allow(clippy::too_many_arguments)]
fn owner(
    py: Python<'_>,
    name: String,
    deployment: PathBuf,
    pipeline: PathBuf,
    inputs: HashMap<String, (String, Vec<usize>, Vec<u8>)>,
    protocol: Option<String>,
    input_dirs: Vec<PathBuf>,
    timeout: f64,
    connect_timeout: f64,
    insecure: bool,
) -> PyResult<Vec<values::Output>> {
    let mut c = connect(deployment, protocol, timeout, connect_timeout)?;
    c.allow_insecure = insecure;
    let (session, transport, given) = open_with_inputs(&name, &pipeline, &c, inputs, &input_dirs)?;
    let graph = session.graph().clone();
    let out = wait(py, async move { session.run_as_owner(&name, transport, given).await }, |_| Ok(()))?;
    let reveal_to =
        |n: &str| graph.outputs.iter().find(|o| o.name == n).map(|o| o.reveal_to.clone()).unwrap_or_default();
    let shown: Vec<(String, Vec<String>, &mpcflow_sdk::Tensor)> =
        out.outputs.iter().map(|(n, t)| (n.clone(), reveal_to(n), t)).collect();
    Ok(values::revealed(shown.iter().map(|(n, p, t)| (n.as_str(), p.as_slice(), *t)), graph.fixed_point))
}

/// Runs this process as the dealer of a deployment; returns the bytes of material sent to each
/// party.
#[pyfunction]
#[pyo3(signature = (deployment, pipeline, protocol = None, timeout = 60.0, connect_timeout = 60.0))]
fn dealer(
    py: Python<'_>,
    deployment: PathBuf,
    pipeline: PathBuf,
    protocol: Option<String>,
    timeout: f64,
    connect_timeout: f64,
) -> PyResult<HashMap<String, u64>> {
    let c = connect(deployment, protocol, timeout, connect_timeout)?;
    let (session, transport) = mpcflow::deploy::open(&pipeline, mpcflow_runtime::remote::DEALER, &c)
        .map_err(|m| errors::opening(&pipeline, m))?;
    let out = wait(py, async move { session.run_as_dealer(transport).await }, |_| Ok(()))?;
    Ok(out
        .plan
        .parties
        .iter()
        .enumerate()
        .map(|(p, n)| (n.clone(), out.stats.bytes.iter().map(|b| b[p]).sum::<u64>()))
        .collect())
}

/// The version of the mpcflow this module was built from.
#[pyfunction]
fn version() -> &'static str {
    env!("CARGO_PKG_VERSION")
}

#[pymodule]
fn _mpcflow(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<Prepared>()?;
    m.add_function(wrap_pyfunction!(version, m)?)?;
    m.add_function(wrap_pyfunction!(import_model, m)?)?;
    m.add_function(wrap_pyfunction!(party, m)?)?;
    m.add_function(wrap_pyfunction!(dealer, m)?)?;
    m.add_function(wrap_pyfunction!(owner, m)?)?;
    errors::register(m)
}
