//! Sessions: the embedding API. A host program builds a session from a pipeline file, a YAML
//! string or a graph built in code, passes its inputs as Rust values and awaits the outputs.
//!
//! ```no_run
//! # async fn demo(registry: mpcflow_runtime::Registry) -> Result<(), mpcflow_runtime::Error> {
//! use mpcflow_runtime::Session;
//! let yaml = "version: 1\nparties: [alice, bob]\nprotocol: ref\n\
//!     inputs:\n  a: { owner: alice, dtype: int, shape: [] }\n  b: { owner: bob, dtype: int, shape: [] }\n\
//!     nodes:\n  richer: { op: gt, inputs: [a, b] }\noutputs:\n  richer: { reveal_to: [alice, bob] }\n";
//! let session = Session::from_yaml(yaml, "inline.yaml", registry)?;
//! let out = session.run([("a", 5i64.into()), ("b", 3i64.into())]).await?;
//! assert_eq!(out.values("richer"), Some(vec![1.0]));
//! # Ok(()) }
//! ```

use crate::error::{Error, Problem, Site};
use crate::inputs::InputValue;
use crate::owners::{self, OwnerKeys};
use crate::pipeline::Pipeline;
use crate::plan::{Plan, PlanOptions, build};
use crate::registry::Registry;
use crate::report::RunReport;
use crate::schedule::{RunConfig, run_local};
use mpcflow_sdk::graph::{GraphSpec, InputSpec};
use mpcflow_sdk::operator::PlainTensor;
use mpcflow_sdk::plugin::PluginKind;
use mpcflow_sdk::{FixedPoint, Tensor};
use std::borrow::Cow;
use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::AtomicUsize;
use std::time::Duration;

/// How a session runs.
#[derive(Clone, Debug)]
pub struct SessionConfig {
    /// Use this protocol instead of the graph's.
    pub protocol: Option<String>,
    /// Transport for the in-process run.
    pub transport: String,
    /// Bound on every wait.
    pub timeout: Duration,
    /// Dealer frames a party reads ahead of the nodes that consume them.
    pub dealer_window: usize,
    /// Bytes of dealer material a party reads ahead (a single larger frame still enters alone).
    pub material_window_bytes: usize,
    /// Counts finished nodes (of party 0) while running.
    pub progress: Option<Arc<AtomicUsize>>,
    /// Read dealer material from these files (written by [`Session::deal`]) instead of dealing.
    pub material_dir: Option<std::path::PathBuf>,
    /// Let [`Session::run_as_party`] run an insecure protocol (`ref`), which sends this party's
    /// inputs to the other processes in the clear. For tests only; off by default.
    pub allow_insecure: bool,
    /// Use this compute kernel (`cpu`, `cuda`, …) instead of the file's `kernel:`. Asked for
    /// here, an unavailable kernel falls back to `cpu` with a warning; demanded by the file, it
    /// stops the run.
    pub kernel: Option<String>,
    /// Threads and buffer memory of the protocol's local work in this process (`--threads`);
    /// speed only, never results. Defaults from the machine.
    pub tuning: mpcflow_sdk::protocol::Tuning,
    /// In-process runs only: deal the material before the parties use it (the offline phase
    /// ahead of the online one, held in memory), so the report's `online_wall_s` is the online
    /// phase alone. Off by default: the dealer streams material while the parties run.
    pub deal_first: bool,
    /// Dealing first, the most material (bytes, all parties together) held at once: a plan
    /// with more is dealt and run in phases of consecutive nodes (see
    /// [`crate::schedule::phases`]). Unlimited by default.
    pub deal_first_phase_bytes: u64,
    /// The network every plan of this session assumes (`--network`); all processes of a
    /// session must use the same (it is part of the plan's fingerprint).
    pub network: mpcflow_sdk::Network,
    /// How long the processes of a deployment wait for each other to connect: a data owner,
    /// connected early, allows this beside `timeout` for the parties' answer.
    pub connect_timeout: Duration,
    /// Compute every op under the protocol, even those on one party's own data, which that
    /// party otherwise computes in the clear (see [`crate::plan::local`]); part of the plan, so
    /// every process of a session must give the same. Off by default.
    pub all_under_protocol: bool,
}

impl Default for SessionConfig {
    fn default() -> Self {
        SessionConfig {
            protocol: None,
            transport: "mem".into(),
            timeout: Duration::from_secs(60),
            dealer_window: crate::schedule::DEALER_WINDOW,
            material_window_bytes: crate::schedule::MATERIAL_WINDOW_BYTES,
            progress: None,
            material_dir: None,
            allow_insecure: false,
            kernel: None,
            tuning: Default::default(),
            deal_first: false,
            deal_first_phase_bytes: u64::MAX,
            network: Default::default(),
            connect_timeout: Duration::from_secs(60),
            all_under_protocol: false,
        }
    }
}

/// An output revealed by a run.
#[derive(Clone, Debug, PartialEq)]
pub struct Revealed {
    /// Tensor name.
    pub name: String,
    /// Parties that learned it.
    pub parties: Vec<String>,
    /// The value.
    pub tensor: Tensor,
}

/// What a run returns.
#[derive(Clone, Debug)]
pub struct RunOutput {
    /// Outputs in the order the graph lists them.
    pub outputs: Vec<Revealed>,
    /// Fixed-point encoding, to decode fixed outputs.
    pub fixed_point: FixedPoint,
    /// Times, bytes and rounds.
    pub report: RunReport,
}

impl RunOutput {
    /// An output by name.
    pub fn get(&self, name: &str) -> Option<&Revealed> {
        self.outputs.iter().find(|o| o.name == name)
    }

    /// An output decoded to real numbers.
    pub fn values(&self, name: &str) -> Option<Vec<f64>> {
        self.get(name).map(|o| o.tensor.to_f64(self.fixed_point))
    }
}

/// Whether this process has warned that it runs an insecure protocol: once is enough (a
/// benchmark runs many sessions).
static INSECURE_WARNED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// A computation ready to plan and run.
pub struct Session {
    registry: Arc<Registry>,
    /// The graph, with where each part stands in its file (nowhere for a graph built in code).
    pipeline: Pipeline,
    config: SessionConfig,
}

impl Session {
    /// From YAML text; `file` names it in error messages.
    pub fn from_yaml(text: &str, file: &str, registry: Registry) -> Result<Session, Error> {
        Session::from_pipeline(Pipeline::from_yaml(text, file)?, registry)
    }

    /// From a pipeline file.
    pub fn from_path(path: &Path, registry: Registry) -> Result<Session, Error> {
        Session::from_pipeline(Pipeline::from_path(path)?, registry)
    }

    /// From a pipeline already read (so its `plugins:` could be loaded into `registry` first).
    /// Imports its `models:` with the registry's importers ([`Pipeline::import_models`]).
    pub fn from_pipeline(mut p: Pipeline, registry: Registry) -> Result<Session, Error> {
        p.import_models(&registry)?;
        Ok(Session { registry: Arc::new(registry), pipeline: p, config: SessionConfig::default() })
    }

    /// From a graph built in code.
    pub fn from_graph(spec: GraphSpec, registry: Registry) -> Session {
        let pipeline = Pipeline {
            spec,
            sources: Default::default(),
            plugins: vec![],
            kernel: None,
            models: vec![],
            weights: Default::default(),
        };
        Session { registry: Arc::new(registry), pipeline, config: SessionConfig::default() }
    }

    /// Sets the configuration.
    pub fn with_config(mut self, config: SessionConfig) -> Self {
        self.config = config;
        self
    }

    /// The graph.
    pub fn graph(&self) -> &GraphSpec {
        &self.pipeline.spec
    }

    /// The inputs a caller brings (those of `owner` when given): every declared input but the
    /// weights of the pipeline's models, which come from the model files.
    pub fn inputs_to_give(&self, owner: Option<&str>) -> Vec<&InputSpec> {
        let spec = &self.pipeline.spec;
        spec.inputs
            .iter()
            .filter(|i| owner.is_none_or(|o| o == i.owner) && !self.pipeline.weights.contains(&i.name))
            .collect()
    }

    fn locate(&self, e: Error) -> Error {
        // A graph built in code has no file to point into.
        if self.pipeline.sources.file.is_empty() { e } else { self.pipeline.locate(e) }
    }

    /// Plans with the given options (the session's protocol override applies).
    pub fn plan(&self, mut opts: PlanOptions) -> Result<Plan, Error> {
        if opts.protocol.is_none() {
            opts.protocol = self.config.protocol.clone();
        }
        opts.network = self.config.network;
        opts.all_under_protocol |= self.config.all_under_protocol;
        build(&self.pipeline.spec, &self.registry, &opts).map_err(|e| self.locate(e))
    }

    /// Deals the material of `plan` into one file per party in `dir` (the offline phase ahead of
    /// time). Returns each file's size in bytes.
    pub fn deal(&self, plan: &Plan, dir: &Path) -> Result<Vec<u64>, Error> {
        let protocol = self.tuned(plan.plugin.0.clone());
        crate::schedule::deal_to_files(plan, &protocol, dir)
    }

    /// Encodes `inputs` against the declarations; every input must be given, none unknown. The
    /// weights of the pipeline's models come from the model files, not from `inputs`.
    pub fn encode_inputs(&self, inputs: HashMap<String, InputValue>) -> Result<HashMap<String, Tensor>, Error> {
        let mut problems = self.weights_given(&inputs);
        for name in inputs.keys() {
            if !self.pipeline.spec.inputs.iter().any(|i| &i.name == name) {
                let declared: Vec<&str> = self.pipeline.spec.inputs.iter().map(|i| i.name.as_str()).collect();
                problems.push(Problem::new(
                    Site::Graph,
                    format!("`{name}` is not an input of the graph (inputs: {})", declared.join(", ")),
                ));
            }
        }
        let mut out = HashMap::new();
        for decl in &self.pipeline.spec.inputs {
            match inputs.get(&decl.name).or_else(|| self.pipeline.weights.get(&decl.name, None)) {
                None => problems.push(Problem::new(
                    Site::Input(decl.name.clone()),
                    format!("no value given for input `{}` of {}", decl.name, decl.owner),
                )),
                Some(v) => match self.transformed(decl, v) {
                    Err(p) => problems.push(p),
                    Ok(v) => match self.encode(decl, &v) {
                        Ok(t) => {
                            out.insert(decl.name.clone(), t);
                        }
                        Err(m) => problems.push(Problem::new(Site::Input(decl.name.clone()), m)),
                    },
                },
            }
        }
        if problems.is_empty() { Ok(out) } else { Err(self.locate(Error::Invalid(problems))) }
    }

    /// One input value encoded as its declaration says, within its declared range.
    fn encode(&self, decl: &mpcflow_sdk::graph::InputSpec, v: &InputValue) -> Result<Tensor, String> {
        let fp = self.pipeline.spec.fixed_point;
        let t = v.to_tensor(decl.dtype, fp)?;
        if let Some(range) = decl.range {
            crate::inputs::check_range(&t, range, fp)?;
        }
        Ok(t)
    }

    /// The problems of `inputs` that name a model's weight, which the model file gives.
    fn weights_given(&self, inputs: &HashMap<String, InputValue>) -> Vec<Problem> {
        let mut given: Vec<&String> = inputs.keys().filter(|n| self.pipeline.weights.contains(n)).collect();
        given.sort();
        given
            .into_iter()
            .map(|n| {
                Problem::new(
                    Site::Input(n.clone()),
                    format!("`{n}` is a weight of a model in `models:`: its value comes from the model file"),
                )
            })
            .collect()
    }

    /// Encodes the inputs of party `party` only: each must be declared as that party's input,
    /// and every input of that party must be given (other parties bring their own). The weights
    /// of the models `party` owns come from the model files.
    pub fn encode_party_inputs(
        &self,
        party: &str,
        mut inputs: HashMap<String, InputValue>,
    ) -> Result<HashMap<String, Tensor>, Error> {
        let mut problems = self.weights_given(&inputs);
        if !problems.is_empty() {
            return Err(self.locate(Error::Invalid(problems)));
        }
        for decl in self.pipeline.spec.inputs.iter().filter(|i| i.owner == party) {
            if let Some(w) = self.pipeline.weights.get(&decl.name, Some(party)) {
                inputs.insert(decl.name.clone(), w.clone());
            }
        }
        let mut out = HashMap::new();
        for (name, v) in &inputs {
            match self.pipeline.spec.inputs.iter().find(|i| &i.name == name) {
                None => {
                    let own: Vec<&str> = self
                        .pipeline
                        .spec
                        .inputs
                        .iter()
                        .filter(|i| i.owner == party)
                        .map(|i| i.name.as_str())
                        .collect();
                    problems.push(Problem::new(
                        Site::Graph,
                        format!("`{name}` is not an input of the graph ({party}'s inputs: {})", own.join(", ")),
                    ));
                }
                Some(decl) if decl.owner != party => problems.push(Problem::new(
                    Site::InputOwner(name.clone()),
                    format!("input `{name}` belongs to {}; {party} cannot bring it", decl.owner),
                )),
                Some(decl) => match self.transformed(decl, v) {
                    Err(p) => problems.push(p),
                    Ok(v) => match self.encode(decl, &v) {
                        Ok(t) => {
                            out.insert(name.clone(), t);
                        }
                        Err(m) => problems.push(Problem::new(Site::Input(name.clone()), m)),
                    },
                },
            }
        }
        for decl in self.pipeline.spec.inputs.iter().filter(|i| i.owner == party) {
            if !inputs.contains_key(&decl.name) {
                problems.push(Problem::new(
                    Site::Input(decl.name.clone()),
                    format!("no value given for input `{}` of {party}", decl.name),
                ));
            }
        }
        if problems.is_empty() { Ok(out) } else { Err(self.locate(Error::Invalid(problems))) }
    }

    /// The value of `decl` after its `transform` (the value itself when it has none). The
    /// transform runs here, at the owner, on plaintext, before anything is shared.
    fn transformed<'v>(&self, decl: &InputSpec, v: &'v InputValue) -> Result<Cow<'v, InputValue>, Problem> {
        let Some(t) = &decl.transform else { return Ok(Cow::Borrowed(v)) };
        let site = Site::InputTransform(decl.name.clone());
        let op = self.registry.operator(&t.op).ok_or_else(|| {
            Problem::new(site.clone(), format!("unknown transform `{}`: load its plugin first", t.op))
        })?;
        let fp = self.pipeline.spec.fixed_point;
        let plain = match v {
            InputValue::Real { shape, values } => PlainTensor { shape: shape.clone(), values: values.clone() },
            InputValue::Int { shape, values } => {
                PlainTensor { shape: shape.clone(), values: values.iter().map(|&x| x as f64).collect() }
            }
            InputValue::Tensor(t) => PlainTensor { shape: t.shape.clone(), values: t.to_f64(fp) },
        };
        let (n, start) = (plain.values.len(), std::time::Instant::now());
        let source = self.registry.source(PluginKind::Operator, &t.op);
        let out = op
            .transform(&t.attrs, plain)
            .map_err(|e| Problem::new(site.clone(), format!("transform `{}` ({source}) failed: {e}", t.op)))?;
        if mpcflow_sdk::tensor::numel(&out.shape) != out.values.len() {
            return Err(Problem::new(
                site,
                format!(
                    "transform `{}` ({source}) returned {} values for shape {:?}",
                    t.op,
                    out.values.len(),
                    out.shape
                ),
            ));
        }
        tracing::info!(
            input = %decl.name,
            transform = %t.op,
            elements_in = n,
            elements_out = out.values.len(),
            ms = start.elapsed().as_secs_f64() * 1e3,
            "applied transform"
        );
        Ok(Cow::Owned(InputValue::Real { shape: out.shape, values: out.values }))
    }

    /// The graph with the session's protocol override applied.
    fn effective_spec(&self) -> GraphSpec {
        let mut spec = self.pipeline.spec.clone();
        if let Some(p) = &self.config.protocol {
            spec.protocol = p.clone();
        }
        spec
    }

    /// `protocol` with this session's tuning applied (see [`mpcflow_sdk::protocol::Tuning`]).
    fn tuned(&self, protocol: Arc<dyn mpcflow_sdk::protocol::Protocol>) -> Arc<dyn mpcflow_sdk::protocol::Protocol> {
        protocol.tuned(&self.config.tuning).unwrap_or(protocol)
    }

    fn protocol_of(&self, spec: &GraphSpec) -> Result<Arc<dyn mpcflow_sdk::protocol::Protocol>, Error> {
        self.registry
            .protocol(&spec.protocol)
            .map(|p| self.tuned(p))
            .ok_or_else(|| {
                let message = if spec.protocol.is_empty() {
                    crate::plan::validate::NO_PROTOCOL.to_string()
                } else {
                    format!(
                        "unknown protocol `{}` (available: {})",
                        spec.protocol,
                        self.registry.protocol_names().join(", ")
                    )
                };
                Error::Invalid(vec![Problem::new(Site::Protocol, message)])
            })
            .map_err(|e| self.locate(e))
    }

    /// How a party runs: the session's settings and its kernel ([`crate::kernel::choose`]).
    fn run_config(&self) -> Result<RunConfig, Error> {
        let file_kernel = self.pipeline.kernel.as_deref();
        let kernel = crate::kernel::choose(&self.registry, self.config.kernel.as_deref(), file_kernel)
            .map_err(|e| self.locate(e))?;
        Ok(RunConfig { kernel, ..self.dealer_config() })
    }

    /// How a dealer process runs: the dealer computes on no kernel, so none is chosen (a
    /// dealer machine without the parties' GPU is fine).
    fn dealer_config(&self) -> RunConfig {
        RunConfig { session: self.config.clone(), kernel: Default::default() }
    }

    /// Runs this process as party `me` of a session whose other parties and dealer run
    /// elsewhere, connected through `transport`. `inputs` are this party's own; the result
    /// holds only the outputs revealed to it. See [`crate::remote`] for the handshake.
    pub async fn run_as_party(
        &self,
        me: &str,
        transport: Arc<dyn mpcflow_sdk::transport::Transport>,
        inputs: HashMap<String, InputValue>,
    ) -> Result<crate::remote::PartyRun, Error> {
        // Encoding runs a transform plugin, which may fail; the failure goes to the peers once
        // connected, so nobody waits for this party until the timeout.
        let tensors = self.encode_party_inputs(me, inputs);
        let spec = self.effective_spec();
        let protocol = self.protocol_of(&spec)?;
        let plan = |shapes| self.plan(PlanOptions { input_shapes: shapes, ..Default::default() });
        crate::remote::run_remote_party(&spec, protocol, transport, me, tensors, &self.run_config()?, &plan)
            .await
            .map_err(|e| self.locate(e))
    }

    /// Runs this process as data owner `me` of a session whose parties run elsewhere: shares
    /// `inputs` (this owner's own) with the parties and returns the outputs revealed to it. See
    /// [`crate::remote`] and [`crate::owners`].
    pub async fn run_as_owner(
        &self,
        me: &str,
        transport: Arc<dyn mpcflow_sdk::transport::Transport>,
        inputs: HashMap<String, InputValue>,
    ) -> Result<crate::remote::OwnerRun, Error> {
        let tensors = self.encode_party_inputs(me, inputs);
        let spec = self.effective_spec();
        let protocol = self.protocol_of(&spec)?;
        crate::remote::run_remote_owner(&spec, protocol, transport, me, tensors, &self.dealer_config())
            .await
            .map_err(|e| self.locate(e))
    }

    /// Runs this process as the dealer of a session whose parties run elsewhere.
    pub async fn run_as_dealer(
        &self,
        transport: Arc<dyn mpcflow_sdk::transport::Transport>,
    ) -> Result<crate::remote::DealerRun, Error> {
        let spec = self.effective_spec();
        let protocol = self.protocol_of(&spec)?;
        let plan = |shapes| self.plan(PlanOptions { input_shapes: shapes, ..Default::default() });
        crate::remote::run_remote_dealer(&spec, protocol, transport, &self.dealer_config(), &plan)
            .await
            .map_err(|e| self.locate(e))
    }

    /// Runs every party and the dealer in this process and returns the revealed outputs.
    pub async fn run<S: Into<String>>(
        &self,
        inputs: impl IntoIterator<Item = (S, InputValue)>,
    ) -> Result<RunOutput, Error> {
        let inputs: HashMap<String, InputValue> = inputs.into_iter().map(|(k, v)| (k.into(), v)).collect();
        let tensors = self.encode_inputs(inputs)?;
        let opts = PlanOptions {
            input_shapes: tensors.iter().map(|(k, t)| (k.clone(), t.shape.clone())).collect(),
            ..Default::default()
        };
        let plan = Arc::new(self.plan(opts)?);
        // `encode_inputs` checked the declared ranges already.
        self.run_encoded(plan, tensors).await
    }

    /// Runs an already built plan with encoded inputs.
    pub async fn run_plan(&self, plan: Arc<Plan>, inputs: HashMap<String, Tensor>) -> Result<RunOutput, Error> {
        // Narrowed comparison widths rely on the declared ranges: check them on encoded inputs.
        let problems: Vec<Problem> = self
            .pipeline
            .spec
            .inputs
            .iter()
            .filter_map(|d| Some((d, d.range?, inputs.get(&d.name)?)))
            .filter_map(|(d, range, t)| {
                let m = crate::inputs::check_range(t, range, self.pipeline.spec.fixed_point).err()?;
                Some(Problem::new(Site::Input(d.name.clone()), m))
            })
            .collect();
        if !problems.is_empty() {
            return Err(self.locate(Error::Invalid(problems)));
        }
        self.run_encoded(plan, inputs).await
    }

    /// Runs a plan with encoded inputs whose declared ranges were checked.
    async fn run_encoded(&self, plan: Arc<Plan>, inputs: HashMap<String, Tensor>) -> Result<RunOutput, Error> {
        let protocol = self.tuned(plan.plugin.0.clone());
        let transport = self.registry.transport(&self.config.transport).ok_or_else(|| Error::Transport {
            party: "session".into(),
            message: format!(
                "unknown transport `{}` (available: {})",
                self.config.transport,
                self.registry.transport_names().join(", ")
            ),
        })?;
        if !plan.secure && !INSECURE_WARNED.swap(true, std::sync::atomic::Ordering::Relaxed) {
            tracing::warn!(protocol = %plan.protocol, "protocol is INSECURE: every party sees every value; use it only to test");
        }
        // The data owners' part, in this process: each owner's keys, the parties' shares of its
        // inputs and of its outputs' masks.
        let (inputs, keys) = share_owner_inputs(&plan, inputs)?;
        let ids = plan.input_nodes();
        let by_id = inputs.into_iter().filter_map(|(k, t)| ids.get(&k).map(|&id| (id, t))).collect();
        let cfg = self.run_config()?;
        let run = run_local(plan.clone(), protocol, transport, by_id, &cfg).await?;
        let report = RunReport::new(&plan, &run);
        let mut outputs = vec![];
        for (name, _, parties) in plan.outputs() {
            let mut value: Option<Tensor> = None;
            for pname in &parties {
                let idx = plan.parties.iter().position(|p| p == pname).unwrap_or(0);
                let got = run.parties.get(idx).and_then(|r| r.outputs.get(&name));
                match (got, &value) {
                    (None, _) => return Err(Error::Internal(format!("{pname} did not receive output `{name}`"))),
                    (Some(t), Some(v)) if t != v => {
                        return Err(Error::Internal(format!("parties disagree on output `{name}`")));
                    }
                    (Some(t), _) => value = Some(t.clone()),
                }
            }
            if let Some(tensor) = value {
                outputs.push(Revealed { name, parties, tensor });
            }
        }
        unmask_owner_outputs(&plan, &keys, &mut outputs)?;
        Ok(RunOutput { outputs, fixed_point: plan.fixed_point, report })
    }
}

/// Each data owner's keys, by owner.
type KeysByOwner = HashMap<String, OwnerKeys>;

/// Splits each data owner's inputs into the parties' shares and adds the parties' shares of
/// the owners' masks (see [`crate::owners`]), as the owners and parties would in their own
/// processes. Returns the parties' inputs and each owner's keys.
fn share_owner_inputs(
    plan: &Plan,
    mut inputs: HashMap<String, Tensor>,
) -> Result<(HashMap<String, Tensor>, KeysByOwner), Error> {
    let io = &plan.owner_io;
    let mut keys = HashMap::new();
    if !io.has_owners() {
        return Ok((inputs, keys));
    }
    for owner in &io.owners {
        keys.insert(owner.clone(), OwnerKeys::fresh(plan.parties.len())?);
    }
    let mut last = HashMap::new();
    for i in &io.inputs {
        let x = inputs.remove(&i.name).ok_or_else(|| Error::Internal(format!("no value for `{}`", i.name)))?;
        last.insert(i.name.clone(), owners::last_share(&keys[&i.owner], &i.name, &x));
    }
    for p in 0..plan.parties.len() {
        let mine = keys.iter().map(|(o, k)| (o.clone(), k.key(p))).collect();
        inputs.extend(owners::party_tensors(io, &plan.parties, p, &mine, &last)?);
    }
    Ok((inputs, keys))
}

/// Replaces the masked outputs the parties saw by what each owner recovers from them.
fn unmask_owner_outputs(plan: &Plan, keys: &KeysByOwner, outputs: &mut Vec<Revealed>) -> Result<(), Error> {
    let io = &plan.owner_io;
    let (masked, mut kept): (Vec<Revealed>, Vec<Revealed>) =
        std::mem::take(outputs).into_iter().partition(|r| io.is_masked_output(&r.name));
    for o in &io.outputs {
        let name = owners::masked_name(&o.name, &o.owner);
        let m = masked.iter().find(|r| r.name == name).ok_or_else(|| Error::Internal(format!("no `{name}`")))?;
        let tensor = owners::unmask(&keys[&o.owner], o, &m.tensor)?;
        match kept.iter_mut().find(|r| r.name == o.name) {
            Some(r) if r.tensor != tensor => {
                return Err(Error::Internal(format!("{} and the parties disagree on output `{}`", o.owner, o.name)));
            }
            Some(r) => r.parties.push(o.owner.clone()),
            None => kept.push(Revealed { name: o.name.clone(), parties: vec![o.owner.clone()], tensor }),
        }
    }
    // In the pipeline's order.
    let order = |name: &str| plan.outputs().iter().position(|(n, _, _)| n == name).unwrap_or(usize::MAX);
    kept.sort_by_key(|r| {
        let masked = io.outputs.iter().find(|o| o.name == r.name).map(|o| owners::masked_name(&o.name, &o.owner));
        order(masked.as_deref().unwrap_or(&r.name)).min(order(&r.name))
    });
    *outputs = kept;
    Ok(())
}
