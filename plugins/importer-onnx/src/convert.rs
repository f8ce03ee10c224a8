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

use crate::ImportError;
use crate::proto::onnx::{AttributeProto, GraphProto, NodeProto, attribute_proto::AttributeType};
use crate::values::Known;
use mpcflow_sdk::graph::{ConstSpec, NodeSpec};
use mpcflow_sdk::op::Pool;
use mpcflow_sdk::shape::{TensorInfo, Visibility};
use mpcflow_sdk::{DType, Op};
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
    "Div",
    "Dropout",
    "Exp",
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
    "Where",
];

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

fn attr<'a>(n: &'a NodeProto, name: &str) -> Option<&'a AttributeProto> {
    n.attribute.iter().find(|a| a.name() == name)
}

fn attr_i(n: &NodeProto, name: &str, default: i64) -> i64 {
    attr(n, name).map_or(default, |a| a.i())
}

fn attr_f(n: &NodeProto, name: &str, default: f64) -> f64 {
    attr(n, name).map_or(default, |a| f64::from(a.f()))
}

fn attr_ints(n: &NodeProto, name: &str) -> Option<Vec<i64>> {
    attr(n, name).map(|a| a.ints.clone())
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
            scaled: HashMap::new(),
            readers: HashMap::new(),
            bn_after: HashMap::new(),
            folded: Default::default(),
            nodes: vec![],
            weights: vec![],
            constants: vec![],
        }
    }

    fn fresh(&mut self, base: &str) -> String {
        let base = clean(base);
        let mut name = base.clone();
        let mut i = 1;
        while self.taken.contains(&name) {
            i += 1;
            name = format!("{base}_{i}");
        }
        self.taken.insert(name.clone());
        name
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

    /// The graph name of input `i`, placing a weight or constant in the graph if needed.
    fn operand(&mut self, node: &NodeProto, i: usize) -> Result<String, ImportError> {
        let onnx = node.input[i].clone();
        match self.get(node, i)?.clone() {
            Val::Secret(name) => Ok(name),
            Val::Known(k) => Ok(self.place(&onnx, k, false)),
            Val::Weight(k) => Ok(self.place(&onnx, k, true)),
            Val::Gelu(GeluStage::Twice { gelu, .. }) => {
                self.emit(node, &format!("{onnx}_twice"), Op::Scale { factor: 2.0 }, vec![gelu])
            }
            Val::Gelu(_) => Err(self.err(
                node,
                "uses a part of `x · 0.5 · (1 + erf(x / sqrt(2)))`: Erf is supported only inside that GELU pattern"
                    .into(),
            )),
        }
    }

    /// Puts a known value in the graph once: as a private weight or a public constant.
    fn place(&mut self, onnx: &str, k: Known, weight: bool) -> String {
        self.place_as(onnx, onnx, k, weight)
    }

    /// [`Self::place`] under the key `key`, named after `base`.
    fn place_as(&mut self, key: &str, base: &str, k: Known, weight: bool) -> String {
        if let Some(name) = self.placed.get(key) {
            return name.clone();
        }
        let name = self.fresh(base);
        let dtype = if k.int && !weight { DType::Int } else { DType::Fixed };
        self.dtypes.insert(name.clone(), dtype);
        let spec = ConstSpec { name: name.clone(), dtype, shape: k.shape.clone(), values: k.data };
        self.shapes.insert(name.clone(), k.shape);
        if weight {
            self.weights.push(spec)
        } else {
            self.constants.push(spec)
        }
        self.placed.insert(key.to_string(), name.clone());
        name
    }

    /// A new weight computed at import from others (a transposed or rescaled matrix).
    fn derived_weight(&mut self, base: &str, k: Known) -> String {
        let key = format!("\u{0}derived:{base}:{}", self.weights.len());
        self.place_as(&key, base, Known { int: false, ..k }, true)
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

    /// Adds one graph node; its output shape comes from the sdk's own rules.
    fn emit(&mut self, node: &NodeProto, base: &str, op: Op, inputs: Vec<String>) -> Result<String, ImportError> {
        let infos: Vec<TensorInfo> = inputs
            .iter()
            .map(|i| TensorInfo {
                shape: self.shape_of(i),
                dtype: self.dtypes.get(i).copied().unwrap_or(DType::Fixed),
                vis: Visibility::Secret,
            })
            .collect();
        let out = mpcflow_sdk::shape::infer(&op, &infos).map_err(|e| self.err(node, e.0))?;
        let name = self.fresh(base);
        self.shapes.insert(name.clone(), out.shape);
        if out.dtype != DType::Fixed {
            self.dtypes.insert(name.clone(), out.dtype);
        }
        self.nodes.push(NodeSpec { name: name.clone(), op, inputs });
        Ok(name)
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
            "Constant" => {
                let a = n.attribute.first().ok_or_else(|| self.err(n, "has no value".into()))?;
                let k = match a.r#type() {
                    AttributeType::Tensor => {
                        Known::from_proto(a.t.as_ref().ok_or_else(|| self.err(n, "empty tensor".into()))?, &base)?
                    }
                    AttributeType::Float => Known { shape: vec![], data: vec![f64::from(a.f())], int: false },
                    AttributeType::Int => Known { shape: vec![], data: vec![a.i() as f64], int: true },
                    AttributeType::Floats => Known {
                        shape: vec![a.floats.len()],
                        data: a.floats.iter().map(|&x| f64::from(x)).collect(),
                        int: false,
                    },
                    AttributeType::Ints => Known::ints(&a.ints),
                    t => return Err(self.err(n, format!("value of type {} is not supported", t.as_str_name()))),
                };
                self.set(n, Val::Known(k));
            }
            "Identity" | "Dropout" => {
                let v = self.get(n, 0)?.clone();
                self.set(n, v);
            }
            "Cast" => {
                // ONNX TensorProto.DataType: FLOAT 1, FLOAT16 10, DOUBLE 11, BFLOAT16 16 stay reals;
                // BOOL 9 and the integer types convert.
                let to = attr_i(n, "to", 1);
                let real = matches!(to, 1 | 10 | 11 | 16);
                let v = match self.get(n, 0)?.clone() {
                    v if real => v,
                    Val::Known(mut k) | Val::Weight(mut k) => {
                        let f: fn(f64) -> f64 = if to == 9 { |x| f64::from(u8::from(x != 0.0)) } else { f64::trunc };
                        k.data.iter_mut().for_each(|x| *x = f(*x));
                        Val::Known(Known { int: true, ..k })
                    }
                    _ => {
                        return Err(self.err(n, format!(
                            "casting a value computed from the private input to type {to} is not supported (only to float types)"
                        )));
                    }
                };
                self.set(n, v);
            }
            "Shape" => {
                let shape = self.val_shape(self.get(n, 0)?);
                let dims: Vec<i64> = shape.iter().map(|&d| d as i64).collect();
                let (start, end) = (attr_i(n, "start", 0), attr_i(n, "end", dims.len() as i64));
                let norm =
                    |v: i64| if v < 0 { (v + dims.len() as i64).max(0) } else { v.min(dims.len() as i64) } as usize;
                let (s, e) = (norm(start), norm(end).max(norm(start)));
                self.set(n, Val::Known(Known::ints(&dims[s..e])));
            }
            "ConstantOfShape" => {
                let shape: Vec<usize> =
                    self.known(n, 0, "shape")?.as_ints().iter().map(|&d| d.max(0) as usize).collect();
                let (value, int) = match attr(n, "value").and_then(|a| a.t.as_ref()) {
                    Some(t) => {
                        let k = Known::from_proto(t, &base)?;
                        (k.data.first().copied().unwrap_or(0.0), k.int)
                    }
                    None => (0.0, false),
                };
                let len = shape.iter().product();
                self.set(n, Val::Known(Known { shape, data: vec![value; len], int }));
            }
            "Add" | "Sub" | "Mul" | "Div" | "Pow" if all_known => {
                let (a, b) = (self.known(n, 0, "operand")?, self.known(n, 1, "operand")?);
                let f: fn(f64, f64) -> f64 = match op {
                    "Add" => |x, y| x + y,
                    "Sub" => |x, y| x - y,
                    "Mul" => |x, y| x * y,
                    "Div" => |x, y| x / y,
                    _ => f64::powf,
                };
                let mut k = a.zip(&b, f).map_err(|e| self.err(n, e))?;
                if k.int && op == "Div" {
                    k.data.iter_mut().for_each(|x| *x = x.trunc());
                }
                let weight = [0, 1].iter().any(|&i| matches!(self.opt(n, i), Some(Val::Weight(_))));
                self.set(n, if weight { Val::Weight(k) } else { Val::Known(k) });
            }
            "Unsqueeze" | "Squeeze" | "Reshape" | "Flatten" => self.reshape_like(n, &base)?,
            "Concat" if all_known => {
                let parts: Vec<Known> =
                    (0..n.input.len()).map(|i| self.known(n, i, "operand")).collect::<Result<_, _>>()?;
                if parts.iter().any(|p| p.shape.len() != 1) {
                    return Err(self.err(n, "folding a Concat of known values supports 1-D values only".into()));
                }
                let data: Vec<f64> = parts.iter().flat_map(|p| p.data.clone()).collect();
                let int = parts.iter().all(|p| p.int);
                self.set(n, Val::Known(Known { shape: vec![data.len()], data, int }));
            }
            "Concat" => {
                let inputs = (0..n.input.len()).map(|i| self.operand(n, i)).collect::<Result<Vec<_>, _>>()?;
                let out = self.emit(n, &base, Op::Concat { axis: attr_i(n, "axis", 0) }, inputs)?;
                self.set(n, Val::Secret(out));
            }
            "Gather" if all_known => {
                let (data, idx) = (self.known(n, 0, "data")?, self.known(n, 1, "indices")?);
                if data.shape.len() != 1 || attr_i(n, "axis", 0) != 0 {
                    return Err(self.err(n, "folding a Gather of known values supports 1-D data on axis 0 only".into()));
                }
                let len = data.data.len() as i64;
                let picked: Vec<f64> = idx
                    .as_ints()
                    .iter()
                    .map(|&i| data.data.get((if i < 0 { i + len } else { i }) as usize).copied())
                    .collect::<Option<_>>()
                    .ok_or_else(|| self.err(n, "index out of range".into()))?;
                self.set(n, Val::Known(Known { shape: idx.shape.clone(), data: picked, int: data.int }));
            }
            "Gather" => {
                // Secret data, known indices: a slice per index, then concatenate.
                let idx = self.known(n, 1, "indices")?;
                let x = self.operand(n, 0)?;
                let shape = self.shape_of(&x);
                let axis =
                    mpcflow_sdk::shape::norm_axis(attr_i(n, "axis", 0), shape.len()).map_err(|e| self.err(n, e.0))?;
                let mut parts = vec![];
                for &i in &idx.as_ints() {
                    let i = if i < 0 { i + shape[axis] as i64 } else { i };
                    let op = Op::Slice { starts: vec![i], ends: vec![i + 1], axes: vec![axis as i64], steps: vec![] };
                    parts.push(self.emit(n, &format!("{base}_pick"), op, vec![x.clone()])?);
                }
                let mut out = if parts.len() == 1 {
                    parts.remove(0)
                } else {
                    self.emit(n, &base, Op::Concat { axis: axis as i64 }, parts)?
                };
                let mut target = shape.clone();
                target.splice(axis..=axis, idx.shape.iter().copied());
                if self.shape_of(&out) != target {
                    out = self.emit(
                        n,
                        &base,
                        Op::Reshape { shape: target.iter().map(|&d| d as i64).collect() },
                        vec![out],
                    )?;
                }
                self.set(n, Val::Secret(out));
            }
            "Slice" => {
                let x = self.operand(n, 0)?;
                let rank = self.shape_of(&x).len();
                let ints = |s: &Self, i: usize, name: &str| -> Result<Option<Vec<i64>>, ImportError> {
                    if s.opset < 10 {
                        return Ok(attr_ints(n, name));
                    }
                    s.opt(n, i).map(|_| s.known(n, i, name).map(|k| k.as_ints())).transpose()
                };
                let starts = ints(self, 1, "starts")?.ok_or_else(|| self.err(n, "starts are missing".into()))?;
                let ends = ints(self, 2, "ends")?.ok_or_else(|| self.err(n, "ends are missing".into()))?;
                let axes = ints(self, 3, "axes")?.unwrap_or_else(|| (0..starts.len() as i64).collect());
                let steps = ints(self, 4, "steps")?.unwrap_or_default();
                if steps.iter().any(|&s| s <= 0) {
                    return Err(self.err(n, "only positive steps are supported".into()));
                }
                let axes = mpcflow_sdk::shape::norm_axes(&axes, rank).map_err(|e| self.err(n, e.0))?;
                let op_ = Op::Slice { starts, ends, axes: axes.iter().map(|&a| a as i64).collect(), steps };
                let out = self.emit(n, &base, op_, vec![x])?;
                self.set(n, Val::Secret(out));
            }
            "Split" => {
                let x = self.operand(n, 0)?;
                let shape = self.shape_of(&x);
                let axis =
                    mpcflow_sdk::shape::norm_axis(attr_i(n, "axis", 0), shape.len()).map_err(|e| self.err(n, e.0))?;
                let parts = n.output.len().max(1);
                let sizes: Vec<i64> = match attr_ints(n, "split") {
                    Some(v) => v,
                    None if self.opt(n, 1).is_some() => self.known(n, 1, "split")?.as_ints(),
                    None => {
                        let d = shape[axis] as i64;
                        let each = (d + parts as i64 - 1) / parts as i64;
                        (0..parts as i64).map(|i| each.min(d - i * each).max(0)).collect()
                    }
                };
                if sizes.len() != n.output.len() || sizes.iter().sum::<i64>() != shape[axis] as i64 {
                    return Err(self.err(n, format!("split sizes {sizes:?} do not fit dimension {}", shape[axis])));
                }
                let mut start = 0;
                for (out, size) in n.output.iter().zip(&sizes) {
                    let op_ = Op::Slice {
                        starts: vec![start],
                        ends: vec![start + size],
                        axes: vec![axis as i64],
                        steps: vec![],
                    };
                    let t = self.emit(n, out, op_, vec![x.clone()])?;
                    self.vals.insert(out.clone(), Val::Secret(t));
                    start += size;
                }
            }
            "Transpose" if all_known => {
                let k = self.known(n, 0, "operand")?;
                let perm = attr_ints(n, "perm").map_or_else(
                    || (0..k.shape.len()).rev().collect(),
                    |p| p.iter().map(|&x| x as usize).collect::<Vec<_>>(),
                );
                let t = k.transpose(&perm);
                let weight = matches!(self.opt(n, 0), Some(Val::Weight(_)));
                self.set(n, if weight { Val::Weight(t) } else { Val::Known(t) });
            }
            "Transpose" => {
                let x = self.operand(n, 0)?;
                let perm = attr_ints(n, "perm").map(|p| p.iter().map(|&x| x as usize).collect()).unwrap_or_default();
                let out = self.emit(n, &base, Op::Transpose { perm }, vec![x])?;
                self.set(n, Val::Secret(out));
            }
            _ if all_known => {
                return Err(self.err(
                    n,
                    "computes only from values fixed by the model file, and folding this op is not supported".into(),
                ));
            }
            "Add" | "Sub" | "Mul" | "Div" => self.binary(n, &base, op)?,
            "Pow" => {
                let e = self.known(n, 1, "exponent")?;
                if e.data.len() != 1 || e.data[0] != 2.0 {
                    return Err(self.err(n, "only the exponent 2 is supported".into()));
                }
                let x = self.operand(n, 0)?;
                let out = self.emit(n, &base, Op::Mul, vec![x.clone(), x])?;
                self.set(n, Val::Secret(out));
            }
            "Relu" | "Sigmoid" | "Tanh" | "Exp" | "Sqrt" | "Neg" | "Reciprocal" | "Gelu" => {
                let op_ = match op {
                    "Relu" => Op::Relu,
                    "Sigmoid" => Op::Sigmoid,
                    "Tanh" => Op::Tanh,
                    "Exp" => Op::Exp,
                    "Sqrt" => Op::Sqrt,
                    "Neg" => Op::Neg,
                    "Reciprocal" => Op::Reciprocal,
                    _ => {
                        if attr(n, "approximate").is_some_and(|a| a.s() != b"none") {
                            return Err(self.err(n, "only approximate=\"none\" (the erf form) is supported".into()));
                        }
                        Op::Gelu
                    }
                };
                let x = self.operand(n, 0)?;
                let out = self.emit(n, &base, op_, vec![x])?;
                self.set(n, Val::Secret(out));
            }
            "LeakyRelu" => {
                // (1 - α)·relu(x) + α·x: one comparison, no product of secrets.
                let alpha = attr_f(n, "alpha", 0.01);
                let x = self.operand(n, 0)?;
                let r = self.emit(n, &format!("{base}_relu"), Op::Relu, vec![x.clone()])?;
                let a = self.emit(n, &format!("{base}_pos"), Op::Scale { factor: 1.0 - alpha }, vec![r])?;
                let b = self.emit(n, &format!("{base}_neg"), Op::Scale { factor: alpha }, vec![x])?;
                let out = self.emit(n, &base, Op::Add, vec![a, b])?;
                self.set(n, Val::Secret(out));
            }
            "Clip" => {
                let (lo, hi) = if self.opset >= 11 {
                    let bound = |s: &Self, i| s.opt(n, i).map(|_| s.known(n, i, "bound")).transpose();
                    (bound(self, 1)?.map(|k| k.data[0]), bound(self, 2)?.map(|k| k.data[0]))
                } else {
                    (attr(n, "min").map(|a| f64::from(a.f())), attr(n, "max").map(|a| f64::from(a.f())))
                };
                let mut x = self.operand(n, 0)?;
                for (bound, is_lo) in [(lo, true), (hi, false)] {
                    if let Some(b) = bound {
                        let bound = Known { shape: vec![], data: vec![b], int: false };
                        let side = if is_lo { "min" } else { "max" };
                        let c =
                            self.place_as(&format!("\u{0}clip:{base}:{side}"), &format!("{base}_{side}"), bound, false);
                        let op_ = if is_lo { Op::Max { axis: None } } else { Op::Min { axis: None } };
                        x = self.emit(n, &base, op_, vec![x, c])?;
                    }
                }
                self.set(n, Val::Secret(x));
            }
            "MatMul" => {
                // numpy.matmul semantics: a 1-D operand is a row (left) or column (right) vector
                // whose added dimension is dropped from the result.
                let (mut a, mut b) = (self.operand(n, 0)?, self.operand(n, 1)?);
                let (ra, rb) = (self.shape_of(&a).len(), self.shape_of(&b).len());
                if ra == 1 {
                    a = self.emit(n, &format!("{base}_row"), Op::Reshape { shape: vec![1, -1] }, vec![a])?;
                }
                if rb == 1 {
                    b = self.emit(n, &format!("{base}_col"), Op::Reshape { shape: vec![-1, 1] }, vec![b])?;
                }
                let mut out = self.emit(n, &base, Op::Matmul, vec![a, b])?;
                if ra == 1 || rb == 1 {
                    let mut shape: Vec<usize> = self.shape_of(&out);
                    let r = shape.len();
                    if rb == 1 {
                        shape.remove(r - 1);
                    }
                    if ra == 1 {
                        shape.remove(r - 2);
                    }
                    let op_ = Op::Reshape { shape: shape.iter().map(|&d| d as i64).collect() };
                    out = self.emit(n, &format!("{base}_vec"), op_, vec![out])?;
                }
                self.set(n, Val::Secret(out));
            }
            "Gemm" => self.gemm(n, &base)?,
            "Conv" => self.conv(n, &base)?,
            "MaxPool" | "AveragePool" => self.pool(n, &base, op)?,
            "GlobalAveragePool" => {
                let x = self.operand(n, 0)?;
                let axes = (2..self.shape_of(&x).len() as i64).collect();
                let out = self.emit(n, &base, Op::Mean { axes, keepdims: true }, vec![x])?;
                self.set(n, Val::Secret(out));
            }
            "Softmax" if self.opset < 13 => {
                // Before opset 13, Softmax flattens to [dims before axis, dims from axis on],
                // normalises each row, and restores the shape.
                let x = self.operand(n, 0)?;
                let shape = self.shape_of(&x);
                let axis =
                    mpcflow_sdk::shape::norm_axis(attr_i(n, "axis", 1), shape.len()).map_err(|e| self.err(n, e.0))?;
                let rows: usize = shape[..axis].iter().product();
                let flat = Op::Reshape { shape: vec![rows as i64, -1] };
                let f = self.emit(n, &format!("{base}_rows"), flat, vec![x])?;
                let sm = self.emit(n, &format!("{base}_softmax"), Op::Softmax { axis: 1 }, vec![f])?;
                let back = Op::Reshape { shape: shape.iter().map(|&d| d as i64).collect() };
                let out = self.emit(n, &base, back, vec![sm])?;
                self.set(n, Val::Secret(out));
            }
            "Softmax" => {
                let axis = attr_i(n, "axis", -1);
                let x = self.operand(n, 0)?;
                let out = self.emit(n, &base, Op::Softmax { axis }, vec![x])?;
                self.set(n, Val::Secret(out));
            }
            "ReduceMean" | "ReduceSum" => {
                let axes = match attr_ints(n, "axes") {
                    Some(a) => a,
                    None if self.opt(n, 1).is_some() => self.known(n, 1, "axes")?.as_ints(),
                    None => vec![],
                };
                let keepdims = attr_i(n, "keepdims", 1) != 0;
                let x = self.operand(n, 0)?;
                if axes.is_empty() && attr_i(n, "noop_with_empty_axes", 0) != 0 {
                    self.set(n, Val::Secret(x));
                    return Ok(());
                }
                let op_ = if op == "ReduceMean" { Op::Mean { axes, keepdims } } else { Op::Sum { axes, keepdims } };
                let out = self.emit(n, &base, op_, vec![x])?;
                self.set(n, Val::Secret(out));
            }
            "Where" => {
                let mut inputs = (1..3).map(|i| self.operand(n, i)).collect::<Result<Vec<_>, _>>()?;
                inputs.insert(0, String::new());
                // A condition fixed by the file is a public bit mask.
                if let Some(Val::Known(k)) = self.opt(n, 0).cloned() {
                    if k.data.iter().any(|&b| b != 0.0 && b != 1.0) {
                        return Err(self.err(n, "the condition must hold booleans".into()));
                    }
                    let spec = ConstSpec {
                        name: self.fresh(&format!("{}_mask", n.input[0])),
                        dtype: DType::Bit,
                        shape: k.shape.clone(),
                        values: k.data,
                    };
                    self.shapes.insert(spec.name.clone(), k.shape);
                    self.dtypes.insert(spec.name.clone(), DType::Bit);
                    inputs[0] = spec.name.clone();
                    self.constants.push(spec);
                } else {
                    inputs[0] = self.operand(n, 0)?;
                }
                let out = self.emit(n, &base, Op::Select, inputs)?;
                self.set(n, Val::Secret(out));
            }
            "LayerNormalization" => {
                let axis = attr_i(n, "axis", -1);
                let epsilon = attr_f(n, "epsilon", 1e-5);
                let mut inputs = vec![self.operand(n, 0)?, self.operand(n, 1)?];
                if self.opt(n, 2).is_some() {
                    inputs.push(self.operand(n, 2)?);
                }
                let out = self.emit(n, &base, Op::Layernorm { axis, epsilon }, inputs)?;
                self.set(n, Val::Secret(out));
            }
            "BatchNormalization" => self.batchnorm(n, &base)?,
            other => {
                return Err(self.err(n, format!("op `{other}` is not supported (supported: {})", SUPPORTED.join(", "))));
            }
        }
        Ok(())
    }

    /// Recognises the GELU that PyTorch exports as `x · 0.5 · (1 + erf(x / √2))` (in either
    /// order of the two products), node by node, and makes it one `gelu` op. Returns the value
    /// of `n` if `n` continues the pattern.
    fn gelu_pattern(&mut self, n: &NodeProto, base: &str) -> Result<Option<Val>, ImportError> {
        let near = |a: f64, b: f64| (a - b).abs() < 1e-4;
        let scalar = |v: Option<&Val>| match v {
            Some(Val::Known(k)) if k.data.len() == 1 => Some(k.data[0]),
            _ => None,
        };
        let ins: Vec<Option<Val>> = (0..n.input.len()).map(|i| self.opt(n, i).cloned()).collect();
        let other = |i: usize| ins.get(1 - i).cloned().flatten();
        match n.op_type() {
            "Erf" => match ins.first().cloned().flatten() {
                Some(Val::Secret(t)) => match self.scaled.get(&t) {
                    Some(s) if near(s.factor, std::f64::consts::FRAC_1_SQRT_2) => {
                        Ok(Some(Val::Gelu(GeluStage::Erf(s.from.clone()))))
                    }
                    _ => Err(self.err(
                        n,
                        "Erf is supported only inside the GELU pattern x · 0.5 · (1 + erf(x / sqrt(2)))".into(),
                    )),
                },
                _ => Err(self
                    .err(n, "Erf is supported only inside the GELU pattern x · 0.5 · (1 + erf(x / sqrt(2)))".into())),
            },
            "Add" if ins.len() == 2 => {
                for (i, v) in ins.iter().enumerate() {
                    if let Some(Val::Gelu(GeluStage::Erf(x))) = v
                        && scalar(other(i).as_ref()).is_some_and(|c| near(c, 1.0))
                    {
                        return Ok(Some(Val::Gelu(GeluStage::OnePlusErf(x.clone()))));
                    }
                }
                Ok(None)
            }
            "Mul" if ins.len() == 2 => {
                for (i, v) in ins.iter().enumerate() {
                    match (v, other(i)) {
                        (Some(Val::Gelu(GeluStage::OnePlusErf(x))), o)
                            if scalar(o.as_ref()).is_some_and(|c| near(c, 0.5)) =>
                        {
                            return Ok(Some(Val::Gelu(GeluStage::HalfOnePlusErf(x.clone()))));
                        }
                        (Some(Val::Gelu(GeluStage::HalfOnePlusErf(x))), Some(Val::Secret(y))) if &y == x => {
                            return Ok(Some(Val::Secret(self.emit(n, base, Op::Gelu, vec![x.clone()])?)));
                        }
                        (Some(Val::Gelu(GeluStage::OnePlusErf(x))), Some(Val::Secret(y))) => {
                            if &y == x {
                                let g = self.emit(n, base, Op::Gelu, vec![x.clone()])?;
                                return Ok(Some(Val::Gelu(GeluStage::Twice { x: x.clone(), gelu: g })));
                            }
                            if self.scaled.get(&y).is_some_and(|s| &s.from == x && near(s.factor, 0.5)) {
                                return Ok(Some(Val::Secret(self.emit(n, base, Op::Gelu, vec![x.clone()])?)));
                            }
                        }
                        (Some(Val::Gelu(GeluStage::Twice { gelu, .. })), o)
                            if scalar(o.as_ref()).is_some_and(|c| near(c, 0.5)) =>
                        {
                            return Ok(Some(Val::Secret(gelu.clone())));
                        }
                        _ => {}
                    }
                }
                Ok(None)
            }
            _ => Ok(None),
        }
    }

    fn binary(&mut self, n: &NodeProto, base: &str, op: &str) -> Result<(), ImportError> {
        // A product or quotient with one known scalar is a public scale: no secure product.
        let scalar = |v: Option<&Val>| match v {
            Some(Val::Known(k)) if k.data.len() == 1 => Some(k.data[0]),
            _ => None,
        };
        let factor = match op {
            "Mul" => scalar(self.opt(n, 1)).or_else(|| scalar(self.opt(n, 0))),
            "Div" => scalar(self.opt(n, 1)).map(|d| 1.0 / d),
            _ => None,
        };
        let out = match factor {
            Some(f) => {
                let i = if op == "Mul" && scalar(self.opt(n, 1)).is_none() { 1 } else { 0 };
                let x = self.operand(n, i)?;
                let out = self.emit(n, base, Op::Scale { factor: f }, vec![x.clone()])?;
                self.scaled.insert(out.clone(), Scaled { from: x, factor: f });
                out
            }
            None => {
                let (a, b) = (self.operand(n, 0)?, self.operand(n, 1)?);
                let op_ = match op {
                    "Add" => Op::Add,
                    "Sub" => Op::Sub,
                    "Mul" => Op::Mul,
                    _ => Op::Div,
                };
                self.emit(n, base, op_, vec![a, b])?
            }
        };
        self.set(n, Val::Secret(out));
        Ok(())
    }

    fn reshape_like(&mut self, n: &NodeProto, base: &str) -> Result<(), ImportError> {
        let v = self.get(n, 0)?.clone();
        let shape = self.val_shape(&v);
        let target: Vec<usize> = match n.op_type() {
            "Flatten" => {
                let axis = attr_i(n, "axis", 1);
                let axis =
                    if axis < 0 { axis + shape.len() as i64 } else { axis }.clamp(0, shape.len() as i64) as usize;
                vec![shape[..axis].iter().product(), shape[axis..].iter().product()]
            }
            "Reshape" => {
                let spec = self.known(n, 1, "shape")?.as_ints();
                let total: usize = shape.iter().product();
                let mut out: Vec<usize> = vec![];
                let mut infer = None;
                for (i, &d) in spec.iter().enumerate() {
                    match d {
                        0 if attr_i(n, "allowzero", 0) == 0 => out.push(*shape.get(i).unwrap_or(&0)),
                        -1 => {
                            infer = Some(i);
                            out.push(1);
                        }
                        d if d > 0 => out.push(d as usize),
                        d => return Err(self.err(n, format!("shape entry {d} is not valid"))),
                    }
                }
                if let Some(i) = infer {
                    let rest: usize = out.iter().product();
                    out[i] = total.checked_div(rest).unwrap_or(0);
                }
                out
            }
            op => {
                let axes = match attr_ints(n, "axes") {
                    Some(a) => a,
                    None if self.opt(n, 1).is_some() => self.known(n, 1, "axes")?.as_ints(),
                    None => vec![],
                };
                if op == "Squeeze" {
                    let axes: Vec<usize> = if axes.is_empty() {
                        (0..shape.len()).filter(|&d| shape[d] == 1).collect()
                    } else {
                        mpcflow_sdk::shape::norm_axes(&axes, shape.len()).map_err(|e| self.err(n, e.0))?
                    };
                    shape.iter().enumerate().filter(|(d, _)| !axes.contains(d)).map(|(_, &s)| s).collect()
                } else {
                    let rank = shape.len() + axes.len();
                    let axes = mpcflow_sdk::shape::norm_axes(&axes, rank).map_err(|e| self.err(n, e.0))?;
                    let mut it = shape.iter();
                    (0..rank).map(|d| if axes.contains(&d) { 1 } else { *it.next().unwrap_or(&1) }).collect()
                }
            }
        };
        if target.iter().product::<usize>() != shape.iter().product::<usize>() {
            return Err(self.err(n, format!("cannot reshape {shape:?} to {target:?}")));
        }
        let out = match v {
            Val::Known(k) => Val::Known(Known { shape: target, ..k }),
            Val::Weight(k) => Val::Weight(Known { shape: target, ..k }),
            Val::Secret(_) | Val::Gelu(_) => {
                let x = self.operand(n, 0)?;
                if shape == target {
                    Val::Secret(x)
                } else {
                    let op = Op::Reshape { shape: target.iter().map(|&d| d as i64).collect() };
                    Val::Secret(self.emit(n, base, op, vec![x])?)
                }
            }
        };
        self.set(n, out);
        Ok(())
    }

    fn gemm(&mut self, n: &NodeProto, base: &str) -> Result<(), ImportError> {
        let alpha = attr_f(n, "alpha", 1.0);
        let beta = attr_f(n, "beta", 1.0);
        let (ta, tb) = (attr_i(n, "transA", 0) != 0, attr_i(n, "transB", 0) != 0);
        let mut a = self.operand(n, 0)?;
        if ta {
            a = self.emit(n, &format!("{base}_at"), Op::Transpose { perm: vec![1, 0] }, vec![a])?;
        }
        let secret_b = matches!(self.get(n, 1)?, Val::Secret(_) | Val::Gelu(_));
        let b = match self.get(n, 1)?.clone() {
            Val::Secret(_) | Val::Gelu(_) => {
                let b = self.operand(n, 1)?;
                if tb { self.emit(n, &format!("{base}_bt"), Op::Transpose { perm: vec![1, 0] }, vec![b])? } else { b }
            }
            Val::Known(k) | Val::Weight(k) => {
                // Fold the transpose and α into the weight.
                let mut k = if tb { k.transpose(&[1, 0]) } else { k };
                if alpha != 1.0 {
                    k.data.iter_mut().for_each(|x| *x *= alpha);
                }
                if tb || alpha != 1.0 { self.derived_weight(&n.input[1], k) } else { self.operand(n, 1)? }
            }
        };
        let mut out = self.emit(n, &format!("{base}_mm"), Op::Matmul, vec![a, b])?;
        if secret_b && alpha != 1.0 {
            out = self.emit(n, &format!("{base}_alpha"), Op::Scale { factor: alpha }, vec![out])?;
        }
        if self.opt(n, 2).is_some() {
            let c = match self.get(n, 2)?.clone() {
                Val::Known(mut k) | Val::Weight(mut k) if beta != 1.0 => {
                    k.data.iter_mut().for_each(|x| *x *= beta);
                    self.derived_weight(&n.input[2], k)
                }
                _ if beta != 1.0 => {
                    let c = self.operand(n, 2)?;
                    self.emit(n, &format!("{base}_beta"), Op::Scale { factor: beta }, vec![c])?
                }
                _ => self.operand(n, 2)?,
            };
            out = self.emit(n, base, Op::Add, vec![out, c])?;
        }
        self.set(n, Val::Secret(out));
        Ok(())
    }

    /// Symmetric 2-D pads from ONNX's `[top, left, bottom, right]`.
    fn pads(&self, n: &NodeProto) -> Result<[usize; 2], ImportError> {
        if let Some(a) = attr(n, "auto_pad")
            && !matches!(a.s(), b"NOTSET" | b"VALID" | b"")
        {
            return Err(self.err(n, "auto_pad SAME_UPPER/SAME_LOWER is not supported; give explicit pads".into()));
        }
        let p = attr_ints(n, "pads").unwrap_or_else(|| vec![0; 4]);
        if p.len() != 4 || p[0] != p[2] || p[1] != p[3] || p.iter().any(|&x| x < 0) {
            return Err(self.err(n, format!("pads {p:?} are not supported (2-D, the same on both sides)")));
        }
        Ok([p[0] as usize, p[1] as usize])
    }

    fn pair(&self, n: &NodeProto, name: &str, default: [usize; 2]) -> Result<[usize; 2], ImportError> {
        match attr_ints(n, name) {
            None => Ok(default),
            Some(v) if v.len() == 2 && v.iter().all(|&x| x > 0) => Ok([v[0] as usize, v[1] as usize]),
            Some(v) => Err(self.err(n, format!("{name} {v:?} is not supported (2-D, positive)"))),
        }
    }

    fn conv(&mut self, n: &NodeProto, base: &str) -> Result<(), ImportError> {
        if attr_i(n, "group", 1) != 1 {
            return Err(self.err(n, "only group = 1 is supported".into()));
        }
        if attr_ints(n, "dilations").is_some_and(|d| d.iter().any(|&x| x != 1)) {
            return Err(self.err(n, "only dilation 1 is supported".into()));
        }
        let stride = self.pair(n, "strides", [1, 1])?;
        let padding = self.pads(n)?;
        let x = self.operand(n, 0)?;
        let mut bias = match self.opt(n, 2) {
            Some(_) => Some(self.known(n, 2, "bias")?),
            None => None,
        };
        // A BatchNormalization that alone reads this output folds into the weight and bias:
        // y = s·(W∗x + b − mean) + β = (s·W)∗x + s·(b − mean) + β, with s = γ / sqrt(var + ε).
        let bn = n.output.first().and_then(|o| self.bn_after.get(o)).cloned();
        let fold = match (&bn, self.get(n, 1)?) {
            (Some(bn), Val::Weight(w)) if attr_i(bn, "training_mode", 0) == 0 => {
                let stats: Option<Vec<Known>> = (1..5)
                    .map(|i| match self.opt(bn, i) {
                        Some(Val::Known(k) | Val::Weight(k)) => Some(k.clone()),
                        _ => None,
                    })
                    .collect();
                stats.map(|st| (bn.clone(), w.clone(), st))
            }
            _ => None,
        };
        let (w, out_name) = match fold {
            Some((bn, mut w, st)) => {
                let eps = attr_f(&bn, "epsilon", 1e-5);
                let o = w.shape[0];
                let per = w.data.len() / o.max(1);
                let sc: Vec<f64> = (0..o).map(|c| st[0].data[c] / (st[3].data[c] + eps).sqrt()).collect();
                for (c, chunk) in w.data.chunks_mut(per).enumerate() {
                    chunk.iter_mut().for_each(|x| *x *= sc[c]);
                }
                let b0 = bias.as_ref().map_or(vec![0.0; o], |b| b.data.clone());
                let folded: Vec<f64> = (0..o).map(|c| sc[c] * (b0[c] - st[2].data[c]) + st[1].data[c]).collect();
                bias = Some(Known { shape: vec![o], data: folded, int: false });
                let bn_out = bn.output[0].clone();
                self.folded.insert(bn_out.clone());
                (self.derived_weight(&n.input[1], w), bn_out)
            }
            None => (self.operand(n, 1)?, base.to_string()),
        };
        let mut out = self.emit(n, &format!("{out_name}_conv"), Op::Conv2d { stride, padding }, vec![x, w])?;
        if let Some(b) = bias {
            let o = b.data.len();
            let named = n.input.get(2).filter(|s| !s.is_empty()).cloned();
            let bias_base = named.unwrap_or_else(|| format!("{}_bias", n.input[1]));
            let bias = self.derived_weight(&bias_base, Known { shape: vec![o, 1, 1], ..b });
            out = self.emit(n, &out_name, Op::Add, vec![out, bias])?;
        }
        self.set(n, Val::Secret(out.clone()));
        if out_name != base {
            self.vals.insert(out_name, Val::Secret(out));
        }
        Ok(())
    }

    fn pool(&mut self, n: &NodeProto, base: &str, op: &str) -> Result<(), ImportError> {
        let kernel = self.pair(n, "kernel_shape", [0, 0])?;
        if kernel.contains(&0) {
            return Err(self.err(n, "kernel_shape must be 2-D".into()));
        }
        if attr_ints(n, "dilations").is_some_and(|d| d.iter().any(|&x| x != 1)) {
            return Err(self.err(n, "only dilation 1 is supported".into()));
        }
        if attr_i(n, "ceil_mode", 0) != 0 {
            return Err(self.err(n, "ceil_mode = 1 is not supported".into()));
        }
        let stride = self.pair(n, "strides", [1, 1])?;
        let padding = self.pads(n)?;
        if op == "AveragePool" && padding != [0, 0] && attr_i(n, "count_include_pad", 0) == 0 {
            return Err(self.err(n, "padding with count_include_pad = 0 is not supported".into()));
        }
        let pool = Pool { kernel, stride, padding };
        let x = self.operand(n, 0)?;
        let op_ = if op == "MaxPool" { Op::Maxpool(pool) } else { Op::Avgpool(pool) };
        let out = self.emit(n, base, op_, vec![x])?;
        self.set(n, Val::Secret(out));
        Ok(())
    }

    /// `y = (x - mean) / sqrt(var + ε) · γ + β` as one per-channel affine map whose scale and
    /// shift are computed at import. (Folding it into the preceding `Conv`'s weight would save
    /// the secure product; not done yet.)
    fn batchnorm(&mut self, n: &NodeProto, base: &str) -> Result<(), ImportError> {
        if attr_i(n, "training_mode", 0) != 0 {
            return Err(self.err(n, "training_mode = 1 is not supported (export the model in inference mode)".into()));
        }
        let eps = attr_f(n, "epsilon", 1e-5);
        let [g, b, m, v] = [1, 2, 3, 4].map(|i| self.known(n, i, "statistics"));
        let (g, b, m, v) = (g?, b?, m?, v?);
        let c = g.data.len();
        let scale: Vec<f64> = (0..c).map(|i| g.data[i] / (v.data[i] + eps).sqrt()).collect();
        let shift: Vec<f64> = (0..c).map(|i| b.data[i] - m.data[i] * scale[i]).collect();
        let x = self.operand(n, 0)?;
        let rank = self.shape_of(&x).len();
        let bshape: Vec<usize> = std::iter::once(c).chain(std::iter::repeat_n(1, rank.saturating_sub(2))).collect();
        let s = self.derived_weight(&format!("{base}_scale"), Known { shape: bshape.clone(), data: scale, int: false });
        let t = self.derived_weight(&format!("{base}_shift"), Known { shape: bshape, data: shift, int: false });
        let y = self.emit(n, &format!("{base}_scaled"), Op::Mul, vec![x, s])?;
        let out = self.emit(n, base, Op::Add, vec![y, t])?;
        self.set(n, Val::Secret(out));
        Ok(())
    }
}

/// How errors name a node: its name, or its first output.
pub fn node_label(n: &NodeProto) -> String {
    if !n.name().is_empty() { n.name().to_string() } else { n.output.first().cloned().unwrap_or_else(|| "?".into()) }
}
