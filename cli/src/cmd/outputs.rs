//! Showing revealed outputs: as text, as one JSON document, and as `.npy` files. Shared by
//! `run` (every output) and `party` (the outputs revealed to that party).

use anyhow::{Context, Result};
use mpcflow::io::{json, npy, print};
use mpcflow_sdk::{FixedPoint, Tensor};
use std::path::{Path, PathBuf};

/// How `run` and `party` give their results.
#[derive(clap::Args)]
pub struct OutputArgs {
    /// Write each output shown as DIR/NAME.npy.
    #[arg(long)]
    pub output_dir: Option<PathBuf>,
    /// Write the run report (per-node time, bytes, rounds) as JSON to FILE.
    #[arg(long)]
    pub report: Option<PathBuf>,
    /// Print one JSON object {"outputs": {NAME: VALUE}, ...} instead of text.
    #[arg(long)]
    pub json: bool,
}

impl OutputArgs {
    /// Shows `outputs` (see [`show`]), then writes `report` if asked (after the outputs: it may
    /// go into the output directory).
    pub fn give(
        &self,
        outputs: &[Shown<'_>],
        fp: FixedPoint,
        report: &mpcflow_runtime::RunReport,
        extra: serde_json::Value,
    ) -> Result<()> {
        show(outputs, fp, self.output_dir.as_deref(), self.json, extra)?;
        if let Some(path) = &self.report {
            let text = serde_json::to_string_pretty(report)?;
            std::fs::write(path, text).with_context(|| format!("cannot write the report to {}", path.display()))?;
        }
        Ok(())
    }
}

/// One revealed output.
pub struct Shown<'a> {
    /// Tensor name.
    pub name: &'a str,
    /// Parties that learn it.
    pub parties: &'a [String],
    /// Its value.
    pub tensor: &'a Tensor,
}

/// Writes `outputs` as DIR/NAME.npy when `dir` is given, then prints them: one line each, or,
/// with `json`, one JSON object `{"outputs": {...}, "revealed_to": {...}, ...extra}`.
pub fn show(
    outputs: &[Shown<'_>],
    fp: FixedPoint,
    dir: Option<&Path>,
    json: bool,
    extra: serde_json::Value,
) -> Result<()> {
    if let Some(dir) = dir {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        for o in outputs {
            let p = dir.join(format!("{}.npy", o.name));
            npy::write(&p, o.tensor, fp).with_context(|| format!("cannot write {}", p.display()))?;
        }
    }
    if json {
        let values: serde_json::Map<String, serde_json::Value> =
            outputs.iter().map(|o| (o.name.to_string(), json::tensor_to_json(o.tensor, fp))).collect();
        let revealed: serde_json::Map<String, serde_json::Value> =
            outputs.iter().map(|o| (o.name.to_string(), serde_json::json!(o.parties))).collect();
        let mut doc = serde_json::json!({ "outputs": values, "revealed_to": revealed });
        if let (Some(d), serde_json::Value::Object(more)) = (doc.as_object_mut(), extra) {
            d.extend(more);
        }
        println!("{doc}");
    } else {
        for o in outputs {
            println!("{} = {}    (revealed to {})", o.name, print::format_tensor(o.tensor, fp), o.parties.join(", "));
        }
    }
    Ok(())
}
