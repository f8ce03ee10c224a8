//! ONNX nodes to mpcflow ops, one node at a time in the model's (topological) order.
//!
//! Every ONNX tensor is one of three things here:
//! - **known**: fixed by the model file alone (a `Constant`, an integer initializer, a `Shape`
//!   of a tensor with a static shape, anything computed only from those). Known values are
//!   folded at import and enter the graph, where a secure op needs them, as public constants;
//! - **weight**: a float initializer, the model owner's private input. Weights are folded too
//!   (a `Gemm` with `transB` gets its weight transposed, `alpha` multiplied in) because the
//!   importer runs at the model owner's;
//! - **secret**: computed from the private model input; these become the graph's nodes.
//!
//! `Converter::node` is only the dispatch: it routes each op type to the module of its
//! family, so that each module converts one kind of op and can be read on its own:
//! - `known`: ops on values the file fixes (constants, shapes, casts), folded at import;
//! - `arith`: elementwise arithmetic and selection on secrets;
//! - `activation`: nonlinear functions, one secure op each;
//! - `gelu`: recognising the GELU pattern that PyTorch exports through `Erf`;
//! - `shape`: reshapes, transposes and the ops that cut or join tensors;
//! - `linear`: products with weights (`MatMul`, `Gemm`, `Conv`) and batch-norm folding;
//! - `pool`: windowed and global pooling;
//! - `reduce`: reductions and layer normalisation over axes;
//! - `attrs` and `place`: the helpers they share, reading node attributes and putting
//!   tensors and nodes in the graph.

mod activation;
mod arith;
mod attrs;
mod gelu;
mod known;
mod linear;
mod place;
mod pool;
mod reduce;
mod resize;
mod shape;
mod volume;

use crate::ImportError;
use crate::proto::onnx::{GraphProto, NodeProto};
use crate::values::Known;
use attrs::attr_ints;
use mpcflow_sdk::DType;
use mpcflow_sdk::graph::{ConstSpec, NodeSpec};
use std::collections::{BTreeSet, HashMap};

/// Every op type the importer converts (the default ONNX domain).
pub const SUPPORTED: &[&str] = &[
    "Add",
    "AveragePool",
    "BatchNormalization",
    "Cast",
    "Clip",
    "Concat",
    "Constant",
    "ConstantOfShape",
    "Conv",
    "ConvTranspose",
    "Div",
    "Dropout",
    "Exp",
    "Expand",
    "Flatten",
    "Gather",
    "Gelu",
    "Gemm",
    "GlobalAveragePool",
    "Identity",
    "LayerNormalization",
    "LeakyRelu",
    "MatMul",
    "MaxPool",
    "Mul",
    "Neg",
    "Pow",
    "Reciprocal",
    "ReduceMean",
    "ReduceSum",
    "Relu",
    "Resize",
    "Reshape",
    "Shape",
    "Sigmoid",
    "Slice",
    "Softmax",
    "Split",
    "Sqrt",
    "Squeeze",
    "Sub",
    "Tanh",
    "Transpose",
    "Unsqueeze",
    "Upsample",
    "Where",
];

/// Op types converted only when every input is fixed by the model file (folded at import): the
/// masks and shapes that exporters compute.
pub const FOLDED_ONLY: &[&str] =
    &["And", "Equal", "Greater", "GreaterOrEqual", "Less", "LessOrEqual", "Not", "Or", "Range", "Xor"];

/// Op types accepted only as part of a recognised pattern: `Erf` inside the GELU that PyTorch
/// exports as `x · 0.5 · (1 + erf(x / √2))`.
pub const IN_PATTERNS: &[&str] = &["Erf"];

/// What an ONNX tensor is at import.
#[derive(Clone, Debug)]
enum Val {
    Known(Known),
    Weight(Known),
    /// A graph tensor (its name in the graph) computed from the private input.
    Secret(String),
    /// Part of the exported GELU pattern `x · ½ · (1 + erf(x / √2))`, not yet a tensor.
    Gelu(GeluStage),
}

/// How far the GELU pattern has come, with `x` (a graph tensor).
#[derive(Clone, Debug)]
enum GeluStage {
    /// `erf(x / √2)`.
    Erf(String),
    /// `1 + erf(x / √2)`.
    OnePlusErf(String),
    /// `0.5 · (1 + erf(x / √2))`.
    HalfOnePlusErf(String),
    /// `x · (1 + erf(x / √2))`, which is twice the graph tensor `gelu`.
    Twice { x: String, gelu: String },
}

/// What a graph tensor made by a public `scale` node was scaled from.
#[derive(Clone, Debug)]
struct Scaled {
    from: String,
    factor: f64,
}

/// The converter's state.
pub struct Converter {
    opset: i64,
    /// Whether float initializers of one element are model secrets rather than public
    /// constants.
    private_scalars: bool,
    vals: HashMap<String, Val>,
    /// Shapes of graph tensors (secret ones and materialised constants and weights).
    shapes: HashMap<String, Vec<usize>>,
    /// Element types of graph tensors that are not `fixed` (integer constants, bits).
    dtypes: HashMap<String, DType>,
    /// Graph names in use.
    taken: BTreeSet<String>,
    /// Weights and constants already placed in the graph, by ONNX name.
    placed: HashMap<String, String>,
    /// Large public constants by value (dtype, shape and words), so that a value the model
    /// computes again and again (a causal mask per layer) is written to the pipeline once.
    constants_by_value: HashMap<Vec<u64>, String>,
    /// Graph tensors made by `scale` nodes (to recognise `x / √2` and `0.5 · x` in patterns).
    scaled: HashMap<String, Scaled>,
    /// For every ONNX tensor, the nodes that read it (and 1 more for a graph output).
    readers: HashMap<String, usize>,
    /// The single `BatchNormalization` that reads each tensor read by nothing else.
    bn_after: HashMap<String, NodeProto>,
    /// Outputs of `BatchNormalization` nodes already folded into the convolution before them.
    folded: std::collections::HashSet<String>,
    pub(crate) nodes: Vec<NodeSpec>,
    pub(crate) weights: Vec<ConstSpec>,
    pub(crate) constants: Vec<ConstSpec>,
}

/// A graph-safe name: letters, digits and `_`, not starting with a digit.
pub fn clean(name: &str) -> String {
    let mut s: String = name.chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '_' }).collect();
    s = s.trim_matches('_').to_string();
    while s.contains("__") {
        s = s.replace("__", "_");
    }
    if s.is_empty() || s.starts_with(|c: char| c.is_ascii_digit()) {
        s.insert_str(0, "t_");
    }
    s
}

impl Converter {
    /// A converter for a model of default-domain opset `opset`.
    pub fn new(opset: i64, private_scalars: bool) -> Converter {
        Converter {
            opset,
            private_scalars,
            vals: HashMap::new(),
            shapes: HashMap::new(),
            dtypes: HashMap::new(),
            taken: BTreeSet::new(),
            placed: HashMap::new(),
            constants_by_value: HashMap::new(),
            scaled: HashMap::new(),
            readers: HashMap::new(),
            bn_after: HashMap::new(),
            folded: Default::default(),
            nodes: vec![],
            weights: vec![],
            constants: vec![],
        }
    }

    /// Declares a model input of `shape`; returns its graph name.
    pub fn input(&mut self, onnx: &str, shape: Vec<usize>) -> String {
        let name = self.fresh(onnx);
        self.shapes.insert(name.clone(), shape);
        self.vals.insert(onnx.to_string(), Val::Secret(name.clone()));
        name
    }

    /// Records an initializer: integers (shapes, axes) and, unless scalars are private, float
    /// scalars (exporters store constants such as √2 and 0.5 this way) are public; other floats
    /// are weights.
    pub fn initializer(&mut self, onnx: &str, k: Known) {
        let public = k.int || (k.data.len() == 1 && !self.private_scalars);
        let v = if public { Val::Known(k) } else { Val::Weight(k) };
        self.vals.insert(onnx.to_string(), v);
    }

    fn get(&self, node: &NodeProto, i: usize) -> Result<&Val, ImportError> {
        let name = node
            .input
            .get(i)
            .filter(|s| !s.is_empty())
            .ok_or_else(|| self.err(node, format!("input {i} is missing")))?;
        self.vals.get(name).ok_or_else(|| self.err(node, format!("input `{name}` is not produced before this node")))
    }

    fn opt(&self, node: &NodeProto, i: usize) -> Option<&Val> {
        node.input.get(i).filter(|s| !s.is_empty()).and_then(|n| self.vals.get(n))
    }

    fn err(&self, node: &NodeProto, message: String) -> ImportError {
        ImportError::Node { node: node_label(node), op: node.op_type().to_string(), message }
    }

    /// A value known at import (constant or weight), or an error naming the node.
    fn known(&self, node: &NodeProto, i: usize, what: &str) -> Result<Known, ImportError> {
        match self.get(node, i)? {
            Val::Known(k) | Val::Weight(k) => Ok(k.clone()),
            Val::Secret(_) | Val::Gelu(_) => {
                Err(self.err(node, format!("its {what} (input {i}) must be fixed by the model file")))
            }
        }
    }

    fn shape_of(&self, graph_name: &str) -> Vec<usize> {
        self.shapes.get(graph_name).cloned().unwrap_or_default()
    }

    fn val_shape(&self, v: &Val) -> Vec<usize> {
        match v {
            Val::Known(k) | Val::Weight(k) => k.shape.clone(),
            Val::Secret(n)
            | Val::Gelu(
                GeluStage::Erf(n)
                | GeluStage::OnePlusErf(n)
                | GeluStage::HalfOnePlusErf(n)
                | GeluStage::Twice { x: n, .. },
            ) => self.shape_of(n),
        }
    }

    fn set(&mut self, node: &NodeProto, v: Val) {
        if let Some(out) = node.output.first() {
            self.vals.insert(out.clone(), v);
        }
    }

    /// The graph name of a model output.
    pub fn output(&self, onnx: &str) -> Result<String, ImportError> {
        match self.vals.get(onnx) {
            Some(Val::Secret(n)) => Ok(n.clone()),
            Some(_) => Err(ImportError::Model(format!(
                "output `{onnx}` does not depend on the model input: nothing to compute securely"
            ))),
            None => Err(ImportError::Model(format!("output `{onnx}` is produced by no node"))),
        }
    }

    /// Converts every node of `graph`.
    pub fn graph(&mut self, graph: &GraphProto) -> Result<(), ImportError> {
        for n in &graph.node {
            for i in n.input.iter().filter(|i| !i.is_empty()) {
                *self.readers.entry(i.clone()).or_default() += 1;
            }
        }
        for o in &graph.output {
            *self.readers.entry(o.name().to_string()).or_default() += 1;
        }
        for n in graph.node.iter().filter(|n| n.op_type() == "BatchNormalization") {
            if let Some(x) = n.input.first()
                && self.readers.get(x) == Some(&1)
            {
                self.bn_after.insert(x.clone(), n.clone());
            }
        }
        for n in &graph.node {
            if !n.domain().is_empty() && n.domain() != "ai.onnx" {
                return Err(
                    self.err(n, format!("domain `{}` is not supported (only the default ONNX domain)", n.domain()))
                );
            }
            self.node(n)?;
        }
        Ok(())
    }

    /// Converts one node: the GELU pattern and folded batch norms first, then by op type to
    /// the function of its family. The order of the arms matters: ops that fold known values
    /// come before the catch-all refusal of other all-known nodes.
    fn node(&mut self, n: &NodeProto) -> Result<(), ImportError> {
        let op = n.op_type();
        let base = n.output.first().cloned().unwrap_or_else(|| op.to_string());
        if let Some(v) = self.gelu_pattern(n, &base)? {
            self.set(n, v);
            return Ok(());
        }
        if op == "BatchNormalization" && n.output.first().is_some_and(|o| self.folded.contains(o)) {
            return Ok(()); // its convolution already produced its output
        }
        // Fold nodes whose inputs are all known at import.
        // (An empty input name is an omitted optional input; a name not produced yet is an
        // error the op's own handling reports.)
        let all_known = !n.input.is_empty()
            && n.input.iter().all(|i| i.is_empty() || matches!(self.vals.get(i), Some(Val::Known(_) | Val::Weight(_))));
        match op {
            "Constant" => self.constant(n, &base)?,
            "Identity" | "Dropout" => self.identity(n)?,
            "Cast" => self.cast(n)?,
            "Shape" => self.shape(n)?,
            "ConstantOfShape" => self.constant_of_shape(n, &base)?,
            "Add" | "Sub" | "Mul" | "Div" | "Pow" if all_known => self.fold_arith(n, op)?,
            "Unsqueeze" | "Squeeze" | "Reshape" | "Flatten" => self.reshape_like(n, &base)?,
            "Concat" if all_known => self.fold_concat(n)?,
            "Concat" => self.concat(n, &base)?,
            "Gather" if all_known => self.fold_gather(n)?,
            "Gather" if matches!(self.get(n, 1)?, Val::Secret(_)) => self.gather_at_secret_indices(n, &base)?,
            "Gather" => self.gather(n, &base)?,
            "Slice" => self.slice(n, &base)?,
            "Split" => self.split(n)?,
            "Transpose" if all_known => self.fold_transpose(n)?,
            "Equal" | "Less" | "LessOrEqual" | "Greater" | "GreaterOrEqual" | "And" | "Or" | "Xor" | "Not"
                if all_known =>
            {
                self.fold_logic(n, op)?
            }
            "Where" if all_known => self.fold_where(n)?,
            "Expand" if all_known => self.fold_expand(n)?,
            "Expand" => self.expand(n, &base)?,
            "Range" if all_known => self.fold_range(n)?,
            "Transpose" => self.transpose(n, &base)?,
            _ if all_known => {
                return Err(self.err(
                    n,
                    "computes only from values fixed by the model file, and folding this op is not supported".into(),
                ));
            }
            "Add" | "Sub" | "Mul" | "Div" => self.binary(n, &base, op)?,
            "Pow" => self.pow(n, &base)?,
            "Relu" | "Sigmoid" | "Tanh" | "Exp" | "Sqrt" | "Neg" | "Reciprocal" | "Gelu" => self.unary(n, &base, op)?,
            "LeakyRelu" => self.leaky_relu(n, &base)?,
            "Clip" => self.clip(n, &base)?,
            "MatMul" => self.matmul(n, &base)?,
            "Gemm" => self.gemm(n, &base)?,
            "Conv" if self.layer_rank(n) == Some(5) => self.conv3d(n, &base)?,
            "Conv" => self.conv(n, &base)?,
            "ConvTranspose" => self.conv_transpose(n, &base)?,
            "MaxPool" | "AveragePool" if attr_ints(n, "kernel_shape").is_some_and(|k| k.len() == 3) => {
                self.pool3d(n, &base, op == "MaxPool")?
            }
            "MaxPool" | "AveragePool" => self.pool(n, &base, op)?,
            "GlobalAveragePool" => self.global_average_pool(n, &base)?,
            "Resize" | "Upsample" => self.resize(n, &base, op)?,
            "Softmax" if self.opset < 13 => self.softmax_rows(n, &base)?,
            "Softmax" => self.softmax(n, &base)?,
            "ReduceMean" | "ReduceSum" => self.reduce(n, &base, op)?,
            "Where" => self.select(n, &base)?,
            "LayerNormalization" => self.layer_norm(n, &base)?,
            "BatchNormalization" => self.batchnorm(n, &base)?,
            other if FOLDED_ONLY.contains(&other) => {
                return Err(self.err(
                    n,
                    format!(
                        "`{other}` is folded when the model file fixes every input; of values computed from the \
                         private input it is not supported"
                    ),
                ));
            }
            other => {
                return Err(self.err(n, format!("op `{other}` is not supported (supported: {})", SUPPORTED.join(", "))));
            }
        }
        Ok(())
    }
}

/// How errors name a node: its name, or its first output.
pub fn node_label(n: &NodeProto) -> String {
    if !n.name().is_empty() { n.name().to_string() } else { n.output.first().cloned().unwrap_or_else(|| "?".into()) }
}
