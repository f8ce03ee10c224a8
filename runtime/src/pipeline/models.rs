//! `models:` in a pipeline file: a model file, read by an importer plugin, becomes part of the
//! graph where a node says `{ op: model, model: NAME, inputs: [...] }`.
//!
//! ```yaml
//! models:
//!   cnn: { import: onnx, path: digits.onnx, owner: clinic }
//! nodes:
//!   logits: { op: model, model: cnn, inputs: [image] }
//! ```
//!
//! The importer ([`mpcflow_sdk::importer::Importer`], looked up in the registry, so a
//! third-party importer serves pipeline files as the built-in `onnx` does) turns the file into a
//! subgraph. [`Pipeline::import_models`] splices it in place of each `model` node:
//! - the model's inputs are the node's inputs, in order;
//! - its weights become private inputs of the model's `owner`, named `MODEL.WEIGHT`, whose
//!   values come from the file ([`ModelWeights`]): a run takes them from there, and only the
//!   owner's process ever encodes them;
//! - its constants become public constants named `MODEL.CONSTANT`;
//! - its nodes are named `NODE.NAME`, except the one that computes the model's output, which
//!   takes the node's own name, so the rest of the pipeline uses it like any other node.
//!
//! Every process reads the model's structure (its ops and shapes, which are public) from the
//! file at `path`; only the owner's process uses the weights. A party other than the owner may
//! therefore be given a copy whose weights are replaced (by zeros, say): the plan, and so the
//! session's fingerprint, depends only on the structure and the public constants. Which
//! tensors are weights is the importer's choice: the built-in `onnx` importer keeps every
//! float initializer of more than one element private and makes one-element ones public
//! constants (as `mpcflow import` does without `--private-scalars`: exporters store √2, 0.5 and
//! attention scales that way), so such a copy must keep those; a model whose one-element
//! initializers are secret (a `Linear(n, 1)` bias) should be imported with `mpcflow import
//! --private-scalars` instead.

use super::{Loc, Pipeline};
use crate::error::{Error, Problem, Site};
use crate::inputs::InputValue;
use crate::registry::Registry;
use mpcflow_sdk::graph::{ConstSpec, Dim, InputSpec, NodeSpec};
use mpcflow_sdk::importer::ImportedModel;
use mpcflow_sdk::op::AttrValue;
use mpcflow_sdk::{DType, Op};
use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::Arc;

/// The op name of a node that runs a model.
pub const MODEL_OP: &str = "model";

/// One entry of `models:`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ModelDecl {
    /// Its name in the file.
    pub name: String,
    /// The importer that reads it (`onnx`, or a plugin's).
    pub importer: String,
    /// The model file (relative paths resolved against the pipeline file's directory when the
    /// pipeline is read from a file, against the current directory when it is parsed from text).
    pub path: PathBuf,
    /// The party whose private inputs the weights are.
    pub owner: String,
}

/// The weights of the pipeline's models, by input name: private inputs of each model's owner
/// that the run takes from the model files. `Debug` shows names and shapes only.
#[derive(Clone, Default)]
pub struct ModelWeights(Arc<BTreeMap<String, (String, InputValue)>>);

impl ModelWeights {
    /// The value of input `name` if it is a model weight owned by `owner` (any owner: `None`).
    pub fn get(&self, name: &str, owner: Option<&str>) -> Option<&InputValue> {
        self.0.get(name).filter(|(o, _)| owner.is_none_or(|x| x == o)).map(|(_, v)| v)
    }

    /// Whether input `name` is a model weight.
    pub fn contains(&self, name: &str) -> bool {
        self.0.contains_key(name)
    }

    /// How many weight tensors there are.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl std::fmt::Debug for ModelWeights {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_map().entries(self.0.iter().map(|(name, (owner, v))| (name, (owner, v.shape())))).finish()
    }
}

impl Pipeline {
    /// Replaces every `model` node by the subgraph its model's importer makes of the model file,
    /// and records the weights (see the module docs). Call it once the registry holds the
    /// pipeline's plugins; [`crate::Session`]'s constructors do. Reports every problem at once,
    /// each at its place in the file. A pipeline without models is left as it is.
    pub fn import_models(&mut self, registry: &Registry) -> Result<(), Error> {
        if !self.spec.nodes.iter().any(is_model) {
            return Ok(());
        }
        let mut problems = vec![];
        let mut imported: HashMap<String, ImportedModel> = HashMap::new();
        for node in self.spec.nodes.iter().filter(|n| is_model(n)) {
            let Some(wanted) = self.model_name(node, &mut problems) else { continue };
            if imported.contains_key(&wanted) {
                continue;
            }
            if let Some(decl) = self.models.iter().find(|d| d.name == wanted) {
                match import(registry, decl) {
                    Ok(m) => {
                        imported.insert(wanted, m);
                    }
                    Err(m) => problems.push(self.problem(Site::Model(wanted), &m)),
                }
            }
        }
        if !problems.is_empty() {
            return Err(Error::Invalid(problems));
        }
        let mut weights = BTreeMap::new();
        let mut added_model: Vec<String> = vec![];
        let mut nodes = Vec::with_capacity(self.spec.nodes.len());
        for node in std::mem::take(&mut self.spec.nodes) {
            let name = match &node.op {
                Op::Custom { name, attrs } if name == MODEL_OP => match attrs.get("model") {
                    Some(AttrValue::Str(s)) => s.clone(),
                    _ => continue,
                },
                _ => {
                    nodes.push(node);
                    continue;
                }
            };
            let owner = self.models.iter().find(|d| d.name == name).map(|d| d.owner.clone());
            let (Some(model), Some(owner)) = (imported.get(&name), owner) else {
                continue;
            };
            if model.inputs.len() != node.inputs.len() {
                let wants: Vec<&str> = model.inputs.iter().map(|i| i.0.as_str()).collect();
                problems.push(self.problem(
                    Site::Node(node.name.clone()),
                    &format!(
                        "model `{name}` takes {} input{} ({}); the node gives {}",
                        wants.len(),
                        if wants.len() == 1 { "" } else { "s" },
                        wants.join(", "),
                        node.inputs.len()
                    ),
                ));
                continue;
            }
            if let Some(m) = self.shape_problem(model, &name, &node) {
                problems.push(self.problem(Site::Node(node.name.clone()), &m));
                continue;
            }
            let at_model = self.sources.get(&Site::Model(name.clone()));
            let at_node = self.sources.get(&Site::Node(node.name.clone()));
            if !added_model.contains(&name) {
                added_model.push(name.clone());
                for w in &model.weights {
                    let input = format!("{name}.{}", w.name);
                    self.spec.inputs.push(InputSpec {
                        name: input.clone(),
                        owner: owner.clone(),
                        dtype: DType::Fixed,
                        shape: w.shape.iter().map(|&d| Dim::Fixed(d)).collect(),
                        transform: None,
                        range: None,
                    });
                    let value = InputValue::Real { shape: w.shape.clone(), values: w.values.clone() };
                    weights.insert(input.clone(), (owner.clone(), value));
                    self.locate_at(Site::Input(input), at_model);
                }
                for c in &model.constants {
                    let constant = ConstSpec { name: format!("{name}.{}", c.name), ..c.clone() };
                    self.locate_at(Site::Constant(constant.name.clone()), at_model);
                    self.spec.constants.push(constant);
                }
            }
            match splice(model, &name, &node) {
                Ok(sub) => {
                    for n in sub {
                        self.locate_at(Site::Node(n.name.clone()), at_node);
                        nodes.push(n);
                    }
                }
                Err(m) => problems.push(self.problem(Site::Node(node.name.clone()), &m)),
            }
        }
        self.spec.nodes = nodes;
        let mut all = (*self.weights.0).clone();
        all.extend(weights);
        self.weights = ModelWeights(Arc::new(all));
        if problems.is_empty() { Ok(()) } else { Err(Error::Invalid(problems)) }
    }

    /// The model a `model` node names, or a problem: the attribute is missing or no string,
    /// other attributes are given, or no entry of `models:` has that name.
    fn model_name(&self, node: &NodeSpec, problems: &mut Vec<Problem>) -> Option<String> {
        let Op::Custom { attrs, .. } = &node.op else { return None };
        let site = Site::NodeAttr(node.name.clone(), "model".into());
        if let Some(other) = attrs.keys().find(|k| k.as_str() != "model") {
            problems.push(self.problem(
                Site::NodeAttr(node.name.clone(), other.clone()),
                &format!("op `model` has no attribute `{other}` (it takes `model` and `inputs`)"),
            ));
        }
        let wanted = match attrs.get("model") {
            Some(AttrValue::Str(s)) => s.as_str(),
            Some(_) => {
                problems.push(self.problem(site, "`model` must be the name of an entry of `models:`"));
                return None;
            }
            None => {
                problems.push(self.problem(
                    Site::NodeOp(node.name.clone()),
                    "op `model` needs `model: NAME`, naming an entry of `models:`",
                ));
                return None;
            }
        };
        if self.models.iter().any(|d| d.name == wanted) {
            return Some(wanted.to_string());
        }
        let names: Vec<String> = self.models.iter().map(|d| d.name.clone()).collect();
        let m = if names.is_empty() {
            format!("unknown model `{wanted}`: the file has no `models:` section")
        } else {
            let near = crate::plan::validate::hint(wanted, names.iter());
            format!("unknown model `{wanted}`{near} (models: {})", names.join(", "))
        };
        problems.push(self.problem(site, &m));
        None
    }

    /// A node input declared as a private input of fixed shape must have the shape the model
    /// takes (other inputs' shapes are known only once planned, where the model's first op
    /// checks them).
    fn shape_problem(&self, model: &ImportedModel, name: &str, node: &NodeSpec) -> Option<String> {
        model.inputs.iter().zip(&node.inputs).find_map(|((wanted, _, shape), given)| {
            let decl = self.spec.inputs.iter().find(|i| &i.name == given)?;
            let fixed: Option<Vec<usize>> =
                decl.shape.iter().map(|d| if let Dim::Fixed(s) = d { Some(*s) } else { None }).collect();
            let fixed = fixed?;
            (&fixed != shape).then(|| {
                format!("model `{name}` takes `{wanted}` of shape {shape:?}; input `{given}` has shape {fixed:?}")
            })
        })
    }

    fn locate_at(&mut self, site: Site, at: Option<Loc>) {
        if let Some(l) = at {
            self.sources.set(site, l);
        }
    }
}

/// Whether `node` runs a model (`op: model`).
fn is_model(node: &NodeSpec) -> bool {
    matches!(&node.op, Op::Custom { name, .. } if name == MODEL_OP)
}

/// Reads and imports one model file.
fn import(registry: &Registry, decl: &ModelDecl) -> Result<ImportedModel, String> {
    let importer = registry.importer(&decl.importer).ok_or_else(|| {
        format!(
            "unknown importer `{}` (available: {}; a plugin's importer is available once `plugins:` loads it)",
            decl.importer,
            registry.importer_names().join(", ")
        )
    })?;
    let bytes = std::fs::read(&decl.path).map_err(|e| format!("cannot read {}: {e}", decl.path.display()))?;
    importer.import(&bytes).map_err(|e| format!("{}: {e}", decl.path.display()))
}

/// The model's nodes, renamed for the node `node` that uses model `model` (see the module
/// docs).
fn splice(m: &ImportedModel, model: &str, node: &NodeSpec) -> Result<Vec<NodeSpec>, String> {
    if !m.nodes.iter().any(|n| n.name == m.output) {
        return Err(format!("model `{model}`'s output `{}` is not computed by any of its operators", m.output));
    }
    let mut rename: HashMap<&str, String> = HashMap::new();
    for ((input, ..), given) in m.inputs.iter().zip(&node.inputs) {
        rename.insert(input, given.clone());
    }
    for c in m.weights.iter().chain(&m.constants) {
        rename.insert(&c.name, format!("{model}.{}", c.name));
    }
    for n in &m.nodes {
        let name = if n.name == m.output { node.name.clone() } else { format!("{}.{}", node.name, n.name) };
        rename.insert(&n.name, name);
    }
    let renamed = |s: &String| rename.get(s.as_str()).cloned().unwrap_or_else(|| s.clone());
    Ok(m.nodes
        .iter()
        .map(|n| NodeSpec {
            name: renamed(&n.name),
            op: n.op.clone(),
            inputs: n.inputs.iter().map(renamed).collect(),
            range: if n.name == m.output { node.range.or(n.range) } else { n.range },
        })
        .collect())
}
