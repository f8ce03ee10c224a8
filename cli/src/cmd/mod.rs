//! One module per subcommand.

pub mod bench;
pub mod check;
pub mod deal;
pub mod plan;
pub mod run;

use anyhow::{Context, Result, anyhow};
use mpcflow_runtime::pipeline::Pipeline;
use std::collections::HashMap;
use std::path::Path;

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
