//! Pipeline files: YAML → [`GraphSpec`] with a [`SourceMap`] that locates every part of it.
//!
//! The format (version 1) is documented in the README; `graphs/*.yaml` are examples. Parsing is
//! strict: unknown fields, wrong types and malformed YAML are errors with `file:line:column`.
//! Problems found later, by the planner, name a [`Site`] that [`Pipeline::locate`] turns into a
//! location in the same file.

mod load;
mod models;
mod raw;
mod write;

pub use models::{MODEL_OP, ModelDecl, ModelWeights};
pub use write::to_yaml;

use crate::error::{Error, Problem, Site};
use mpcflow_sdk::graph::GraphSpec;
use std::collections::HashMap;
use std::path::Path;

/// A line and column in a file (1-based).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Loc {
    /// Line.
    pub line: u32,
    /// Column.
    pub column: u32,
}

/// Where each part of a graph was written.
#[derive(Clone, Debug, Default)]
pub struct SourceMap {
    /// The file's name as shown in messages.
    pub file: String,
    sites: HashMap<Site, Loc>,
}

impl SourceMap {
    fn set(&mut self, site: Site, loc: Loc) {
        self.sites.entry(site).or_insert(loc);
    }

    /// The location of `site`, falling back to the enclosing node, input or output.
    pub fn get(&self, site: &Site) -> Option<Loc> {
        self.sites.get(site).copied().or_else(|| match site {
            Site::NodeOp(n) | Site::NodeInput(n, _) | Site::NodeAttr(n, _) => {
                self.sites.get(&Site::Node(n.clone())).copied()
            }
            Site::OutputParty(n, _) => self.sites.get(&Site::Output(n.clone())).copied(),
            Site::InputOwner(n) => self.sites.get(&Site::Input(n.clone())).copied(),
            Site::InputTransform(n) => {
                self.sites.get(site).or_else(|| self.sites.get(&Site::Input(n.clone()))).copied()
            }
            _ => None,
        })
    }

    /// `file:line:column` of a site, or just the file.
    pub fn describe(&self, site: &Site) -> String {
        match self.get(site) {
            Some(l) => format!("{}:{}:{}", self.file, l.line, l.column),
            None => self.file.clone(),
        }
    }
}

/// `a/b/../c` → `a/c`, lexically (no file system access), so messages show short paths.
fn tidy(path: &Path) -> std::path::PathBuf {
    use std::path::Component;
    let mut out: Vec<Component<'_>> = vec![];
    for c in path.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir if matches!(out.last(), Some(Component::Normal(_))) => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    if out.is_empty() { std::path::PathBuf::from(".") } else { out.iter().collect() }
}

/// A parsed pipeline file.
#[derive(Clone, Debug)]
pub struct Pipeline {
    /// The graph it describes.
    pub spec: GraphSpec,
    /// Where each part of it is in the file.
    pub sources: SourceMap,
    /// Plugins it loads (`plugins:`), relative paths resolved against the file's directory.
    pub plugins: Vec<crate::plugin_spec::PluginDecl>,
    /// The compute kernel the file demands (`kernel:`), if any. Not part of the graph: each
    /// party may run on its own hardware.
    pub kernel: Option<String>,
    /// The models it imports (`models:`), relative paths resolved against the file's directory.
    pub models: Vec<ModelDecl>,
    /// The weights of the models [`Pipeline::import_models`] spliced in: the owners' inputs
    /// that the model files hold.
    pub weights: ModelWeights,
}

impl Pipeline {
    /// Parses YAML text; `file` names it in messages. Reports every problem it finds.
    pub fn from_yaml(text: &str, file: &str) -> Result<Pipeline, Error> {
        load::load(text, file)
    }

    /// Reads and parses a file. Its `models:` are not imported yet: that needs the registry
    /// ([`Pipeline::import_models`]).
    pub fn from_path(path: &Path) -> Result<Pipeline, Error> {
        let text =
            std::fs::read_to_string(path).map_err(|e| Error::Parse(format!("{}: cannot read: {e}", path.display())))?;
        let mut p = Self::from_yaml(&text, &path.display().to_string())?;
        let dir = path.parent().unwrap_or(Path::new(""));
        for d in &mut p.plugins {
            let resolved = tidy(&dir.join(d.source.path()));
            match &mut d.source {
                crate::plugin_spec::PluginSource::Native(p)
                | crate::plugin_spec::PluginSource::Wasm { path: p, .. } => *p = resolved,
            }
        }
        for m in &mut p.models {
            m.path = tidy(&dir.join(&m.path));
        }
        Ok(p)
    }

    /// Adds `file:line:column` to problems found in this pipeline's graph.
    pub fn locate(&self, err: Error) -> Error {
        match err {
            Error::Invalid(problems) => Error::Invalid(
                problems
                    .into_iter()
                    .map(|mut p| {
                        if p.location.is_none() {
                            p.location = Some(self.sources.describe(&p.site));
                        }
                        p
                    })
                    .collect(),
            ),
            other => other,
        }
    }

    /// The located problem list, for callers that only need messages.
    pub fn problem(&self, site: Site, message: &str) -> Problem {
        let mut p = Problem::new(site, message);
        p.location = Some(self.sources.describe(&p.site));
        p
    }
}
