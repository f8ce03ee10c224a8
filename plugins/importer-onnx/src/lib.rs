//! # The ONNX importer
//!
//! Turns an ONNX model (as PyTorch, TensorFlow or scikit-learn converters export it) into an
//! mpcflow subgraph: the model's input, its weights as the model owner's private inputs, the
//! public constants the file fixes, and the nodes in between. `mpcflow import` writes the
//! result as a pipeline file that runs as it is.
//!
//! Everything that depends only on the model file is computed at import (shape arithmetic,
//! transposed or rescaled weights, batch-norm statistics), so the secure graph holds only the
//! work that touches the private input. An op, opset or element type that is not supported is
//! an error naming the node, the op and what is supported ([`SUPPORTED`]).
//!
//! The schema is `proto/onnx/onnx-ml.proto` from the onnx 1.22.0 wheel, compiled by `build.rs`.

mod convert;
pub mod values;

/// The ONNX schema as Rust types.
pub mod proto {
    /// Generated from `onnx-ml.proto`.
    #[allow(missing_docs, clippy::all, clippy::pedantic)]
    pub mod onnx {
        include!(concat!(env!("OUT_DIR"), "/onnx.rs"));
    }
}

pub use convert::{FOLDED_ONLY, IN_PATTERNS, SUPPORTED, clean};

use mpcflow_sdk::DType;
use mpcflow_sdk::importer::{ImportedModel, Importer};
use prost::Message;
use proto::onnx::ModelProto;
use values::Known;

/// Default-domain opsets the importer reads.
pub const OPSETS: std::ops::RangeInclusive<i64> = 7..=25;

/// Why a model cannot be imported.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// Not a readable ONNX model.
    #[error("not an ONNX model: {0}")]
    Decode(String),
    /// The model as a whole is not supported.
    #[error("{0}")]
    Model(String),
    /// One node cannot be converted.
    #[error("node `{node}` ({op}): {message}")]
    Node {
        /// Node name (or its first output).
        node: String,
        /// ONNX op type.
        op: String,
        /// What is wrong.
        message: String,
    },
    /// A stored tensor cannot be read.
    #[error("tensor `{name}`: {message}")]
    Tensor {
        /// Tensor name.
        name: String,
        /// What is wrong.
        message: String,
    },
}

/// How to import.
#[derive(Clone, Debug)]
pub struct ImportOptions {
    /// Size given to every symbolic (or zero) input dimension, the batch.
    pub batch: usize,
    /// Keep float initializers of one element private like every other weight. By default they
    /// are public constants: exporters store constants such as √2, 0.5 or an attention scale as
    /// scalar initializers, and only as public constants do they cost nothing (a public scale
    /// instead of a secure product) and let patterns such as GELU's be recognised.
    pub private_scalars: bool,
    /// The output to import, for a model with several (BERT's `last_hidden_state` and
    /// `pooler_output`): only what it needs is imported.
    pub output: Option<String>,
}

impl Default for ImportOptions {
    fn default() -> Self {
        ImportOptions { batch: 1, private_scalars: false, output: None }
    }
}

/// Imports an ONNX model from its bytes.
pub fn import(bytes: &[u8], opts: &ImportOptions) -> Result<ImportedModel, ImportError> {
    let model = ModelProto::decode(bytes).map_err(|e| ImportError::Decode(e.to_string()))?;
    let opset = model
        .opset_import
        .iter()
        .find(|o| o.domain().is_empty() || o.domain() == "ai.onnx")
        .map(|o| o.version())
        .ok_or_else(|| ImportError::Model("the model imports no default-domain opset".into()))?;
    if !OPSETS.contains(&opset) {
        return Err(ImportError::Model(format!(
            "opset {opset} is not supported (supported: {} to {})",
            OPSETS.start(),
            OPSETS.end()
        )));
    }
    let graph = model.graph.as_ref().ok_or_else(|| ImportError::Model("the model has no graph".into()))?;
    let mut conv = convert::Converter::new(opset, opts.private_scalars);
    let initializers: std::collections::HashSet<&str> = graph.initializer.iter().map(|t| t.name()).collect();
    for t in &graph.initializer {
        conv.initializer(t.name(), Known::from_proto(t, t.name())?);
    }
    let mut inputs = vec![];
    let mut symbolic = false;
    for vi in graph.input.iter().filter(|vi| !initializers.contains(vi.name())) {
        let tensor = match vi.r#type.as_ref().and_then(|t| t.value.as_ref()) {
            Some(proto::onnx::type_proto::Value::TensorType(t)) => t,
            _ => return Err(ImportError::Model(format!("input `{}` is not a tensor", vi.name()))),
        };
        check_input_type(vi.name(), tensor.elem_type())?;
        symbolic |= tensor.shape.as_ref().is_some_and(|s| {
            s.dim
                .iter()
                .any(|d| !matches!(d.value, Some(proto::onnx::tensor_shape_proto::dimension::Value::DimValue(_))))
        });
        let shape = input_shape(vi.name(), tensor, opts.batch)?;
        let name = conv.input(vi.name(), shape.clone());
        inputs.push((name, DType::Fixed, shape));
    }
    if inputs.is_empty() {
        return Err(ImportError::Model("the model has no input besides its weights".into()));
    }
    // A batch size with nowhere to go would import the model for another batch, silently (a
    // model exported for this very batch is fine).
    let fixed_for_it = inputs.iter().all(|(_, _, s)| s.first() == Some(&opts.batch));
    if opts.batch != 1 && !symbolic && !fixed_for_it {
        let shapes: Vec<String> = inputs.iter().map(|(n, _, s)| format!("`{n}` is {s:?}")).collect();
        return Err(ImportError::Model(format!(
            "a batch of {} was asked for, but every input's shape is fixed ({}): export the model with a \
             symbolic batch dimension (torch.onnx.export(..., dynamic_axes={{NAME: {{0: \"batch\"}}}}))",
            opts.batch,
            shapes.join(", ")
        )));
    }
    let names: Vec<&str> = graph.output.iter().map(|o| o.name()).collect();
    let out = match (&opts.output, names.as_slice()) {
        (None, []) => return Err(ImportError::Model("the model has no output".into())),
        (None, [one]) => *one,
        (None, _) => {
            return Err(ImportError::Model(format!(
                "the model has {} outputs ({}): choose the one to import (`--output NAME`)",
                names.len(),
                names.join(", ")
            )));
        }
        (Some(o), _) if names.contains(&o.as_str()) => o.as_str(),
        (Some(o), _) => {
            return Err(ImportError::Model(format!("the model has no output `{o}` (outputs: {})", names.join(", "))));
        }
    };
    conv.graph(graph)?;
    let output = conv.output(out)?;
    // Only what the output needs (a model with several outputs computes the others too).
    let needed = needed(&conv.nodes, &output);
    let nodes: Vec<_> = conv.nodes.into_iter().filter(|n| needed.contains(&n.name)).collect();
    let weights: Vec<_> = conv.weights.into_iter().filter(|w| needed.contains(&w.name)).collect();
    let constants = conv.constants.into_iter().filter(|c| needed.contains(&c.name)).collect();
    check_weights(&weights)?;
    Ok(ImportedModel { inputs, weights, constants, nodes, output })
}

/// The names `output` depends on (itself included), through `nodes`.
fn needed(nodes: &[mpcflow_sdk::graph::NodeSpec], output: &str) -> std::collections::HashSet<String> {
    let by_name: std::collections::HashMap<&str, &mpcflow_sdk::graph::NodeSpec> =
        nodes.iter().map(|n| (n.name.as_str(), n)).collect();
    let mut seen = std::collections::HashSet::from([output.to_string()]);
    let mut todo = vec![output.to_string()];
    while let Some(name) = todo.pop() {
        for i in by_name.get(name.as_str()).map(|n| n.inputs.as_slice()).unwrap_or_default() {
            if seen.insert(i.clone()) {
                todo.push(i.clone());
            }
        }
    }
    seen
}

/// Most elements of a model input (the planner's bound on any tensor).
const MAX_INPUT_ELEMENTS: usize = 1 << 36;

/// Largest weight magnitude imported: what fixed point with 16 fractional bits (the default)
/// holds as an input, 2^46 ≈ 7.0e13.
const MAX_WEIGHT: f64 = (1u64 << 46) as f64;

/// A model input must hold numbers: ONNX strings and complex numbers have no fixed-point form.
fn check_input_type(name: &str, elem_type: i32) -> Result<(), ImportError> {
    // TensorProto.DataType: 8 STRING, 14 COMPLEX64, 15 COMPLEX128.
    let what = match elem_type {
        8 => "strings",
        14 | 15 => "complex numbers",
        _ => return Ok(()),
    };
    Err(ImportError::Model(format!(
        "input `{name}` holds {what}, which a secure computation on fixed-point numbers cannot take"
    )))
}

/// The input's shape: symbolic (or unnamed) dimensions take the batch size; an explicit size
/// of 0 or less, or a shape too large to plan, is refused here rather than failing later.
fn input_shape(name: &str, tensor: &proto::onnx::type_proto::Tensor, batch: usize) -> Result<Vec<usize>, ImportError> {
    use proto::onnx::tensor_shape_proto::dimension::Value;
    let Some(shape) = tensor.shape.as_ref() else { return Ok(vec![]) };
    let mut out = Vec::with_capacity(shape.dim.len());
    for (i, d) in shape.dim.iter().enumerate() {
        out.push(match &d.value {
            Some(Value::DimValue(v)) if *v >= 1 => usize::try_from(*v).map_err(|_| {
                ImportError::Model(format!("input `{name}`: dimension {i} is {v}, too large for this machine"))
            })?,
            Some(Value::DimValue(v)) => {
                return Err(ImportError::Model(format!(
                    "input `{name}`: dimension {i} is {v}; a model input needs sizes of at least 1 \
                     (leave a dimension symbolic to give it the batch size)"
                )));
            }
            _ => batch,
        });
    }
    let elements = out.iter().try_fold(1usize, |n, &d| n.checked_mul(d));
    if elements.is_none_or(|n| n > MAX_INPUT_ELEMENTS) {
        return Err(ImportError::Model(format!(
            "input `{name}` has shape {out:?}, more than {MAX_INPUT_ELEMENTS} elements"
        )));
    }
    Ok(out)
}

/// Every weight is a finite number that fixed point holds (NaN, infinities and magnitudes past
/// [`MAX_WEIGHT`] would fail only when the model owner's inputs are encoded).
fn check_weights(weights: &[mpcflow_sdk::graph::ConstSpec]) -> Result<(), ImportError> {
    for w in weights {
        if let Some(v) = w.values.iter().find(|v| !v.is_finite() || v.abs() >= MAX_WEIGHT) {
            return Err(ImportError::Model(format!(
                "weight `{}` holds {v}, which fixed point cannot hold (finite numbers below {MAX_WEIGHT:.1e} in \
                 magnitude): check the model's training or export",
                w.name
            )));
        }
    }
    Ok(())
}

/// The `onnx` importer plugin (batch size 1).
#[derive(Debug, Default)]
pub struct OnnxImporter;

impl Importer for OnnxImporter {
    fn name(&self) -> &str {
        "onnx"
    }

    fn import(&self, bytes: &[u8]) -> mpcflow_sdk::Result<ImportedModel> {
        import(bytes, &ImportOptions::default()).map_err(|e| mpcflow_sdk::Error::invalid(e.to_string()))
    }
}
