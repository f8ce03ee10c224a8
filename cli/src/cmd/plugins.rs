//! `mpcflow plugins list [FILE] [--plugin PATH]`: every plugin a run would have, with its kind,
//! version and where it comes from.

use super::PluginArgs;
use anyhow::Result;
use std::path::PathBuf;

/// Subcommands.
#[derive(clap::Subcommand)]
pub enum Command {
    /// List the built-in plugins, and those a pipeline file and --plugin arguments load.
    List(ListArgs),
}

/// Arguments of `plugins list`.
#[derive(clap::Args)]
pub struct ListArgs {
    /// A pipeline file whose `plugins:` to load too.
    file: Option<PathBuf>,
    #[command(flatten)]
    plugins: PluginArgs,
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
}

pub fn run(c: Command) -> Result<()> {
    let Command::List(a) = c;
    let pipeline = a.file.as_deref().map(super::load).transpose()?;
    let registry = a.plugins.registry(pipeline.as_ref())?;
    let entries = registry.entries();
    if a.json {
        let list: Vec<serde_json::Value> = entries
            .iter()
            .map(|e| {
                serde_json::json!({
                    "kind": e.kind.to_string(), "name": e.name, "version": e.version,
                    "source": e.source, "detail": e.detail,
                })
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&list)?);
        return Ok(());
    }
    let rows: Vec<[String; 5]> = entries
        .iter()
        .map(|e| [e.kind.to_string(), e.name.clone(), e.version.clone(), e.source.clone(), e.detail.clone()])
        .collect();
    let header = ["KIND", "NAME", "VERSION", "SOURCE", "DETAIL"].map(String::from);
    let mut widths = header.clone().map(|h| h.len());
    for r in &rows {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    for r in std::iter::once(&header).chain(&rows) {
        let line: Vec<String> = r.iter().zip(widths).map(|(c, w)| format!("{c:<w$}")).collect();
        println!("{}", line.join("  ").trim_end());
    }
    Ok(())
}
