//! One module per subcommand.

pub mod bench;
pub mod certs;
pub mod check;
pub mod deal;
pub mod deal_first;
pub mod dealer;
pub mod import;
pub mod outputs;
pub mod owner;
pub mod party;
pub mod plan;
pub mod plugins;
pub mod run;

use anyhow::{Context, Result, anyhow};
use mpcflow_runtime::pipeline::Pipeline;
use std::collections::HashMap;
use std::path::Path;

/// How much of this machine the protocol's local work may use.
#[derive(clap::Args, Default)]
pub struct TuningArgs {
    /// Threads for key generation, key evaluation and ring products (default: every core).
    /// Speed only: the processes of one session may use different numbers.
    #[arg(long, value_name = "N")]
    pub threads: Option<usize>,
}

impl TuningArgs {
    /// The tuning these options ask for.
    pub fn tuning(&self) -> Result<mpcflow_sdk::protocol::Tuning> {
        let mut t = mpcflow_sdk::protocol::Tuning::default();
        match self.threads {
            Some(0) => return Err(anyhow!("--threads must be at least 1")),
            Some(n) => t.threads = n,
            None => {}
        }
        Ok(t)
    }
}

/// What shapes a plan beyond its file: the network profile it assumes and whether parties
/// compute on their own data in the clear. Every process of a session must give the same.
#[derive(clap::Args, Default, Clone, Copy)]
pub struct PlanChoices {
    /// The network between the parties: `local`, `lan` (10 Gbit/s, 0.5 ms round trips; the
    /// default) or `wan` (400 Mbit/s, 80 ms). Protocols pick each node's form from it (fss2pc:
    /// comparisons in one round or two); `plan` shows the choice. Every process of a session
    /// must give the same.
    #[arg(long, value_name = "PROFILE", value_parser = parse_network)]
    pub network: Option<mpcflow_sdk::Network>,
    /// Compute every op under the protocol, even those on one party's own data (by default
    /// that party computes them in the clear and shares the result: `plan` shows them as
    /// `in the clear on PARTY`). To measure or test the protocol's gates. Every process of a
    /// session must give the same.
    #[arg(long)]
    pub all_under_protocol: bool,
}

impl PlanChoices {
    /// The profile asked for, or the default.
    pub fn network(&self) -> mpcflow_sdk::Network {
        self.network.unwrap_or_default()
    }
}

fn parse_network(s: &str) -> std::result::Result<mpcflow_sdk::Network, String> {
    mpcflow_sdk::Network::from_name(s).ok_or_else(|| format!("unknown network profile `{s}`: use local, lan or wan"))
}

/// Third-party plugins named on the command line, added to those the pipeline file names.
#[derive(clap::Args, Default)]
pub struct PluginArgs {
    /// Load a plugin: a native library (.so/.dylib/.dll) or a WASM module (.wasm/.wat).
    /// Repeatable.
    #[arg(long = "plugin", value_name = "PATH")]
    pub plugins: Vec<std::path::PathBuf>,
}

impl PluginArgs {
    /// The built-in plugins, then the pipeline's `plugins:`, then `--plugin` arguments.
    pub fn registry(&self, pipeline: Option<&Pipeline>) -> Result<mpcflow_runtime::Registry> {
        let decls = pipeline.map(|p| p.plugins.as_slice()).unwrap_or_default();
        mpcflow::registry_with(decls, &self.plugins).map_err(|e| anyhow!("{e}"))
    }

    /// Reads the pipeline `file`, loads every plugin it and the command line name, and imports
    /// its `models:` with the importers now registered ([`mpcflow::prepare`]).
    pub fn pipeline(&self, file: &Path) -> Result<(Pipeline, mpcflow_runtime::Registry)> {
        mpcflow::prepare(load(file)?, &self.plugins).map_err(|e| anyhow!("{e}"))
    }

    /// The session of the pipeline `file` (see [`PluginArgs::pipeline`]).
    pub fn session(&self, file: &Path) -> Result<mpcflow_runtime::Session> {
        let (pipeline, registry) = self.pipeline(file)?;
        mpcflow_runtime::Session::from_pipeline(pipeline, registry).map_err(|e| anyhow!("{e}"))
    }
}

/// What `check` and `plan` share: a file, a protocol and symbolic sizes, planned.
#[derive(clap::Args)]
pub struct PlanArgs {
    /// Pipeline file.
    pub file: std::path::PathBuf,
    #[command(flatten)]
    pub plugins: PluginArgs,
    /// Use this protocol instead of the file's.
    #[arg(long)]
    pub protocol: Option<String>,
    /// Size of a symbolic dimension (NAME=SIZE); others get sample sizes.
    #[arg(long = "dim")]
    pub dims: Vec<String>,
    #[command(flatten)]
    pub choices: PlanChoices,
}

impl PlanArgs {
    /// Loads and plans the file with the built-in plugins and those it names.
    pub fn plan(&self) -> Result<(Pipeline, mpcflow_runtime::Plan)> {
        let (pipeline, registry) = self.plugins.pipeline(&self.file)?;
        let opts = mpcflow_runtime::plan::PlanOptions {
            protocol: self.protocol.clone(),
            dims: parse_dims(&self.dims)?,
            network: self.choices.network(),
            all_under_protocol: self.choices.all_under_protocol,
            ..Default::default()
        };
        let plan = mpcflow_runtime::plan::build(&pipeline.spec, &registry, &opts)
            .map_err(|e| anyhow!("{}", pipeline.locate(e)))?;
        if let Some(k) = &pipeline.kernel {
            match mpcflow_runtime::kernel::check_file_kernel(&registry, k) {
                Err(e) => return Err(anyhow!("{}", pipeline.locate(e))),
                Ok(Err(why)) => eprintln!("note: the file demands kernel `{k}`, which cannot run here: {why}"),
                Ok(Ok(())) => {}
            }
        }
        Ok((pipeline, plan))
    }
}

/// Reads a pipeline file; errors come out with `file:line:column`.
pub fn load(path: &Path) -> Result<Pipeline> {
    Pipeline::from_path(path).map_err(|e| anyhow!("{e}"))
}

/// Parses `--dim NAME=SIZE` arguments.
pub fn parse_dims(dims: &[String]) -> Result<HashMap<String, usize>> {
    dims.iter()
        .map(|d| {
            let (k, v) = d.split_once('=').with_context(|| format!("--dim `{d}`: expected NAME=SIZE"))?;
            let v: usize = v.trim().parse().with_context(|| format!("--dim `{d}`: `{v}` is not a size"))?;
            Ok((k.trim().to_string(), v))
        })
        .collect()
}

/// Private inputs on the command line (`run` and `party`).
#[derive(clap::Args)]
pub struct InputArgs {
    /// A private input: NAME=VALUE (a number or JSON array), NAME=@file.npy,
    /// NAME=@file.csv:COLUMN or NAME=@file.json. Repeat for each input.
    #[arg(long = "input", short = 'i')]
    inputs: Vec<String>,
    /// A directory of NAME.npy files for the inputs not given with --input (e.g. the weights
    /// `mpcflow import` wrote). Repeatable.
    #[arg(long = "input-dir")]
    input_dirs: Vec<std::path::PathBuf>,
}

impl InputArgs {
    /// The values given, then from the directories every input of `wanted` (see
    /// [`mpcflow_runtime::Session::inputs_to_give`]) still missing that a `DIR/NAME.npy` holds.
    /// A name given twice is an error.
    pub fn collect(
        &self,
        wanted: &[&mpcflow_sdk::graph::InputSpec],
    ) -> Result<HashMap<String, mpcflow_runtime::InputValue>> {
        let mut inputs = HashMap::new();
        for arg in &self.inputs {
            let (name, value) = mpcflow::io::input_arg::parse(arg).map_err(|e| anyhow!(e))?;
            if inputs.insert(name.clone(), value).is_some() {
                return Err(anyhow!("--input {name} is given twice"));
            }
        }
        for d in &self.input_dirs {
            if !d.is_dir() {
                return Err(anyhow!("--input-dir {}: not a directory", d.display()));
            }
        }
        for decl in wanted {
            if inputs.contains_key(&decl.name) {
                continue;
            }
            let found = self.input_dirs.iter().map(|d| d.join(format!("{}.npy", decl.name))).find(|p| p.is_file());
            if let Some(p) = found {
                inputs.insert(decl.name.clone(), mpcflow::io::npy::read(&p).map_err(|e| anyhow!(e))?);
            }
        }
        Ok(inputs)
    }
}

/// Checks a `--timeout`-style argument: a positive, finite number of seconds.
pub fn seconds(flag: &str, s: f64) -> Result<std::time::Duration> {
    match std::time::Duration::try_from_secs_f64(s) {
        Ok(d) if !d.is_zero() => Ok(d),
        _ => Err(anyhow!("{flag} must be a positive number of seconds, not {s}")),
    }
}
