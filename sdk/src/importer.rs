//! The `importer` plugin kind: a model file becomes a subgraph plus its owner's private weights.
//!
//! The subgraph's free tensor names are the model's inputs (bound to graph tensors by the
//! `model` node) and its weights (private inputs of the model owner); `output` names the result.
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

use crate::graph::NodeSpec;
use crate::{DType, Result, Tensor};

/// A model as a subgraph.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ImportedModel {
    /// The model's inputs: name, dtype, shape.
    pub inputs: Vec<(String, DType, Vec<usize>)>,
    /// Its weights: private inputs of the model owner.
    pub weights: Vec<(String, Tensor)>,
    /// Its operators, in evaluation order.
    pub nodes: Vec<NodeSpec>,
    /// Name of the tensor the model produces.
    pub output: String,
}

/// An importer plugin.
pub trait Importer: Send + Sync {
    /// Name used in pipeline files (`import: onnx`).
    fn name(&self) -> &str;
    /// Converts a model file. Malformed files return an error, never panic.
    fn import(&self, bytes: &[u8]) -> Result<ImportedModel>;
}
