//! The `importer` plugin kind: a model file becomes a subgraph plus its owner's private weights.
//!
//! The subgraph's free tensor names are the model's inputs, its weights (private inputs of the
//! model owner) and its public constants (shapes, axes and the like that the model file fixes);
//! `output` names the result. Values are real numbers: the pipeline encodes them with its own
//! fixed-point setting.
//!
//! ```
//! use mpcflow_sdk::importer::*;
//! use mpcflow_sdk::Result;
//! struct Empty;
//! impl Importer for Empty {
//!     fn name(&self) -> &str { "empty" }
//!     fn import(&self, _bytes: &[u8]) -> Result<ImportedModel> {
//!         Ok(ImportedModel::default())
//!     }
//! }
//! ```

use crate::graph::{ConstSpec, NodeSpec};
use crate::{DType, Result};

/// A model as a subgraph.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ImportedModel {
    /// The model's inputs: name, dtype, shape.
    pub inputs: Vec<(String, DType, Vec<usize>)>,
    /// Its weights: private inputs of the model owner.
    pub weights: Vec<ConstSpec>,
    /// Public constants the subgraph uses.
    pub constants: Vec<ConstSpec>,
    /// Its operators, in evaluation order.
    pub nodes: Vec<NodeSpec>,
    /// Name of the tensor the model produces.
    pub output: String,
}

/// An importer plugin.
pub trait Importer: Send + Sync {
    /// Name used in pipeline files (`import: onnx`).
    fn name(&self) -> &str;
    /// Version, shown by `mpcflow plugins list`.
    fn version(&self) -> &str {
        "0.1.0"
    }
    /// Converts a model file. Malformed files return an error, never panic.
    fn import(&self, bytes: &[u8]) -> Result<ImportedModel>;
}
