//! The op set: every operator a pipeline file can name, with its attributes.
//!
//! Ops are a closed, versioned vocabulary shared by all protocols (new operations come in as
//! `operator` plugins that lower to these). Each op documents its inputs and attributes; shape
//! and dtype rules are in [`crate::shape`]. Elementwise binary ops broadcast like NumPy.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// An attribute value as written in a pipeline file.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum AttrValue {
    /// `true` / `false`.
    Bool(bool),
    /// An integer.
    Int(i64),
    /// A real number.
    Float(f64),
    /// A string.
    Str(String),
    /// A list.
    List(Vec<AttrValue>),
}

impl AttrValue {
    /// A short description of the value's type, for error messages.
    pub fn type_name(&self) -> &'static str {
        match self {
            AttrValue::Bool(_) => "a boolean",
            AttrValue::Int(_) => "an integer",
            AttrValue::Float(_) => "a number",
            AttrValue::Str(_) => "a string",
            AttrValue::List(_) => "a list",
        }
    }
}

/// Attributes of a node, by name.
pub type Attrs = BTreeMap<String, AttrValue>;

/// Pooling window: kernel, stride and zero padding, each as (height, width).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Pool {
    /// Window size.
    pub kernel: [usize; 2],
    /// Step between windows (defaults to the kernel).
    pub stride: [usize; 2],
    /// Padding on each side.
    pub padding: [usize; 2],
}

/// An operator with its attributes.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Op {
    /// `a + b` (broadcasting).
    Add,
    /// `a - b` (broadcasting).
    Sub,
    /// `-a`.
    Neg,
    /// `a * b` elementwise (broadcasting); fixed × fixed is rescaled.
    Mul,
    /// `a * factor` for a public real `factor`.
    Scale {
        /// The public factor.
        factor: f64,
    },
    /// `a * 2^bits` (left for positive `bits`, arithmetic right for negative).
    Shift {
        /// Bits to shift by.
        bits: i32,
    },
    /// Batched matrix product `[.., m, k] x [.., k, n]`; a rank-2 operand broadcasts.
    Matmul,
    /// 2-D convolution, input `[N, C, H, W]`, weight `[O, C, kh, kw]`, groups = 1.
    Conv2d {
        /// Stride (h, w).
        stride: [usize; 2],
        /// Zero padding (h, w) on each side.
        padding: [usize; 2],
    },
    /// Sum over `axes` (all axes when empty).
    Sum {
        /// Axes to reduce; negative counts from the end.
        axes: Vec<i64>,
        /// Keep reduced axes with size 1.
        keepdims: bool,
    },
    /// Mean over `axes` (all axes when empty).
    Mean {
        /// Axes to reduce.
        axes: Vec<i64>,
        /// Keep reduced axes with size 1.
        keepdims: bool,
    },
    /// Public count of elements over `axes` (all when empty), as an `int` scalar.
    Count {
        /// Axes counted.
        axes: Vec<i64>,
    },
    /// Reshape to `shape` (one entry may be -1).
    Reshape {
        /// Target shape.
        shape: Vec<i64>,
    },
    /// Permute axes (reverse them when `perm` is empty).
    Transpose {
        /// Permutation.
        perm: Vec<usize>,
    },
    /// Concatenate all inputs along `axis`.
    Concat {
        /// Axis.
        axis: i64,
    },
    /// `a[starts:ends:steps]` along `axes` (all leading axes when empty).
    Slice {
        /// Start per axis (negative counts from the end).
        starts: Vec<i64>,
        /// End per axis, exclusive (clamped).
        ends: Vec<i64>,
        /// Axes the ranges apply to.
        axes: Vec<i64>,
        /// Step per axis (1 when empty).
        steps: Vec<i64>,
    },
    /// Broadcast to `shape`.
    Broadcast {
        /// Target shape.
        shape: Vec<usize>,
    },
    /// `a > b` as bits.
    Gt,
    /// `a >= b` as bits.
    Ge,
    /// `a < b` as bits.
    Lt,
    /// `a <= b` as bits.
    Le,
    /// `a == b` as bits.
    Eq,
    /// `max(a, 0)`.
    Relu,
    /// Elementwise `max(a, b)`, or with one input the maximum over `axis`.
    Max {
        /// Reduction axis (one input only).
        axis: Option<i64>,
    },
    /// Elementwise `min(a, b)`, or with one input the minimum over `axis`.
    Min {
        /// Reduction axis (one input only).
        axis: Option<i64>,
    },
    /// Max pooling over the last two axes of `[N, C, H, W]`.
    Maxpool(Pool),
    /// Average pooling over the last two axes (padding counts as zeros).
    Avgpool(Pool),
    /// Index of the maximum along `axis` (first on ties), or a one-hot bit mask.
    Argmax {
        /// Axis.
        axis: i64,
        /// One-hot bits instead of an `int` index.
        one_hot: bool,
    },
    /// One-hot bits of integer indices along a new last axis: `[a == 0, …, a == depth − 1]`.
    /// `a` (int, or fixed holding integers) must lie in `[0, depth)`: `ref` refuses anything
    /// else, and secure protocols rely on it (fss2pc reads the index from a point function
    /// over `⌈log₂ depth⌉` bits). An embedding lookup at private token ids is
    /// `matmul(onehot(ids), table)`.
    OneHot {
        /// Number of classes (the new axis' size).
        depth: usize,
    },
    /// `select(cond, a, b)`: `a` where the bit is 1, else `b`.
    Select,
    /// `1 / a`.
    Reciprocal,
    /// `a / b`.
    Div,
    /// `sqrt(a)` (0 for negative input).
    Sqrt,
    /// `1 / sqrt(a)`.
    Rsqrt,
    /// `e^a`.
    Exp,
    /// `1 / (1 + e^-a)`.
    Sigmoid,
    /// `tanh(a)`.
    Tanh,
    /// `a * Φ(a)` (exact erf form).
    Gelu,
    /// Softmax along `axis`.
    Softmax {
        /// Axis.
        axis: i64,
    },
    /// `(a - mean) / sqrt(var + epsilon)` along `axis`, times `gamma` plus `beta` when given.
    Layernorm {
        /// Axis normalised.
        axis: i64,
        /// Added to the variance.
        epsilon: f64,
    },
    /// Counts per bin of every element (the union of the parties' data, once concatenated), as
    /// `numpy.histogram` counts them: bin `i` holds `edges[i] ≤ x < edges[i+1]`, the last bin
    /// also `x = edges[k]`; elements outside `[edges[0], edges[k]]` are not counted. The edges are
    /// public, increasing, at least two, and compared as the input's words (fixed point: as
    /// constants encode, `round(e·2^f)`; int: `x ≥ e` as `x ≥ ⌈e⌉`). An `int` vector of
    /// `edges.len() − 1` counts.
    Histogram {
        /// The bins' edges.
        edges: Vec<f64>,
    },
    /// A custom operator provided by an `operator` plugin, expanded by the planner.
    Custom {
        /// Registered operator name.
        name: String,
        /// Its attributes.
        attrs: Attrs,
    },
}

/// What is wrong with a node's attributes.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum AttrError {
    /// The op name is not in the op set.
    #[error("unknown op `{op}`{hint}")]
    UnknownOp {
        /// The name given.
        op: String,
        /// ", did you mean `x`?" or empty.
        hint: String,
    },
    /// An attribute the op does not take.
    #[error("op `{op}` has no attribute `{attr}` (it takes: {allowed})")]
    Unknown {
        /// Op name.
        op: String,
        /// The attribute given.
        attr: String,
        /// The attributes it takes.
        allowed: String,
    },
    /// An attribute has the wrong type or value.
    #[error("attribute `{attr}` of op `{op}` must be {expected}, found {found}")]
    Type {
        /// Op name.
        op: String,
        /// Attribute.
        attr: String,
        /// What was expected.
        expected: String,
        /// What was found.
        found: String,
    },
    /// A required attribute is missing.
    #[error("op `{op}` needs attribute `{attr}` ({expected})")]
    Missing {
        /// Op name.
        op: String,
        /// Attribute.
        attr: String,
        /// What it should be.
        expected: String,
    },
}

/// Every op name a pipeline file may use, with the attributes it accepts.
pub const OP_NAMES: &[(&str, &[&str])] = &[
    ("add", &[]),
    ("sub", &[]),
    ("neg", &[]),
    ("mul", &[]),
    ("scale", &["factor"]),
    ("shift", &["bits"]),
    ("matmul", &[]),
    ("conv2d", &["stride", "padding"]),
    ("sum", &["axis", "axes", "keepdims"]),
    ("mean", &["axis", "axes", "keepdims"]),
    ("count", &["axis", "axes"]),
    ("reshape", &["shape"]),
    ("transpose", &["perm"]),
    ("concat", &["axis"]),
    ("slice", &["starts", "ends", "axes", "steps"]),
    ("broadcast", &["shape"]),
    ("gt", &[]),
    ("ge", &[]),
    ("lt", &[]),
    ("le", &[]),
    ("eq", &[]),
    ("relu", &[]),
    ("max", &["axis"]),
    ("min", &["axis"]),
    ("maxpool", &["kernel", "stride", "padding"]),
    ("avgpool", &["kernel", "stride", "padding"]),
    ("argmax", &["axis", "one_hot"]),
    ("onehot", &["depth"]),
    ("select", &[]),
    ("reciprocal", &[]),
    ("div", &[]),
    ("sqrt", &[]),
    ("rsqrt", &[]),
    ("exp", &[]),
    ("sigmoid", &[]),
    ("tanh", &[]),
    ("gelu", &[]),
    ("softmax", &["axis"]),
    ("layernorm", &["axis", "epsilon"]),
    ("histogram", &["edges"]),
];

struct AttrReader<'a> {
    op: &'a str,
    attrs: &'a Attrs,
}

impl AttrReader<'_> {
    fn err(&self, attr: &str, expected: &str, found: &AttrValue) -> AttrError {
        AttrError::Type { op: self.op.into(), attr: attr.into(), expected: expected.into(), found: describe(found) }
    }

    fn int(&self, attr: &str) -> Result<Option<i64>, AttrError> {
        match self.attrs.get(attr) {
            None => Ok(None),
            Some(AttrValue::Int(v)) => Ok(Some(*v)),
            Some(v) => Err(self.err(attr, "an integer", v)),
        }
    }

    fn float(&self, attr: &str) -> Result<Option<f64>, AttrError> {
        match self.attrs.get(attr) {
            None => Ok(None),
            Some(AttrValue::Int(v)) => Ok(Some(*v as f64)),
            Some(AttrValue::Float(v)) if v.is_finite() => Ok(Some(*v)),
            Some(v) => Err(self.err(attr, "a finite number", v)),
        }
    }

    fn bool(&self, attr: &str) -> Result<Option<bool>, AttrError> {
        match self.attrs.get(attr) {
            None => Ok(None),
            Some(AttrValue::Bool(v)) => Ok(Some(*v)),
            Some(v) => Err(self.err(attr, "true or false", v)),
        }
    }

    fn floats(&self, attr: &str) -> Result<Option<Vec<f64>>, AttrError> {
        let one = |v: &AttrValue| match v {
            AttrValue::Int(i) => Ok(*i as f64),
            AttrValue::Float(f) if f.is_finite() => Ok(*f),
            _ => Err(self.err(attr, "a list of finite numbers", v)),
        };
        match self.attrs.get(attr) {
            None => Ok(None),
            Some(AttrValue::List(items)) => items.iter().map(one).collect::<Result<Vec<_>, _>>().map(Some),
            Some(v) => Err(self.err(attr, "a list of finite numbers", v)),
        }
    }

    fn ints(&self, attr: &str) -> Result<Option<Vec<i64>>, AttrError> {
        match self.attrs.get(attr) {
            None => Ok(None),
            Some(AttrValue::Int(v)) => Ok(Some(vec![*v])),
            Some(AttrValue::List(items)) => items
                .iter()
                .map(|it| match it {
                    AttrValue::Int(v) => Ok(*v),
                    _ => Err(self.err(attr, "a list of integers", it)),
                })
                .collect::<Result<Vec<_>, _>>()
                .map(Some),
            Some(v) => Err(self.err(attr, "a list of integers", v)),
        }
    }

    fn sizes(&self, attr: &str) -> Result<Option<Vec<usize>>, AttrError> {
        match self.ints(attr)? {
            None => Ok(None),
            Some(v) if v.iter().all(|&x| x >= 0) => Ok(Some(v.into_iter().map(|x| x as usize).collect())),
            Some(_) => Err(AttrError::Type {
                op: self.op.into(),
                attr: attr.into(),
                expected: "non-negative integers".into(),
                found: "a negative integer".into(),
            }),
        }
    }

    /// A pair (h, w): an integer `k` means `[k, k]`.
    fn pair(&self, attr: &str, positive: bool) -> Result<Option<[usize; 2]>, AttrError> {
        let Some(v) = self.sizes(attr)? else { return Ok(None) };
        let pair = match v.as_slice() {
            [k] => [*k, *k],
            [h, w] => [*h, *w],
            _ => {
                return Err(AttrError::Type {
                    op: self.op.into(),
                    attr: attr.into(),
                    expected: "an integer or a list of two integers".into(),
                    found: format!("a list of {} integers", v.len()),
                });
            }
        };
        if positive && pair.contains(&0) {
            return Err(AttrError::Type {
                op: self.op.into(),
                attr: attr.into(),
                expected: "positive integers".into(),
                found: "0".into(),
            });
        }
        Ok(Some(pair))
    }

    fn axes(&self) -> Result<Vec<i64>, AttrError> {
        match (self.ints("axis")?, self.ints("axes")?) {
            (Some(_), Some(_)) => Err(AttrError::Type {
                op: self.op.into(),
                attr: "axes".into(),
                expected: "given once (use either `axis` or `axes`)".into(),
                found: "both".into(),
            }),
            (Some(a), None) | (None, Some(a)) => Ok(a),
            (None, None) => Ok(vec![]),
        }
    }

    fn pool(&self) -> Result<Pool, AttrError> {
        let kernel = self.pair("kernel", true)?.ok_or_else(|| AttrError::Missing {
            op: self.op.into(),
            attr: "kernel".into(),
            expected: "an integer or [h, w]".into(),
        })?;
        Ok(Pool {
            kernel,
            stride: self.pair("stride", true)?.unwrap_or(kernel),
            padding: self.pair("padding", false)?.unwrap_or([0, 0]),
        })
    }
}

fn describe(v: &AttrValue) -> String {
    match v {
        AttrValue::Bool(b) => format!("the boolean {b}"),
        AttrValue::Int(i) => format!("the integer {i}"),
        AttrValue::Float(x) => format!("the number {x}"),
        AttrValue::Str(s) => format!("the string \"{s}\""),
        AttrValue::List(_) => "a list".into(),
    }
}

/// The closest known op name, if any is close enough to suggest.
pub fn suggest_op(name: &str) -> Option<&'static str> {
    OP_NAMES
        .iter()
        // The distance is at least the difference in length: skip what cannot be near.
        .filter(|(n, _)| name.len().abs_diff(n.len()) <= (n.len() / 3).max(1))
        .map(|(n, _)| (*n, edit_distance(name, n)))
        .filter(|(n, d)| *d < n.len() && *d <= (n.len() / 3).max(1))
        .min_by_key(|(_, d)| *d)
        .map(|(n, _)| n)
}

/// A name from a file as an error message shows it: whole up to 64 characters, else its start
/// and its length (a file may hold a name of megabytes).
pub fn shown_name(name: &str) -> std::borrow::Cow<'_, str> {
    const MAX: usize = 64;
    match name.char_indices().nth(MAX) {
        None => std::borrow::Cow::Borrowed(name),
        Some((at, _)) => std::borrow::Cow::Owned(format!("{}… ({} bytes)", &name[..at], name.len())),
    }
}

/// Levenshtein distance, for "did you mean" hints.
pub fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != *cb);
            cur.push(sub.min(prev[j + 1] + 1).min(cur[j] + 1));
        }
        prev = cur;
    }
    prev[b.len()]
}

impl Op {
    /// Builds an op from its pipeline-file name and attributes.
    pub fn from_attrs(name: &str, attrs: &Attrs) -> Result<Op, AttrError> {
        let Some((_, allowed)) = OP_NAMES.iter().find(|(n, _)| *n == name) else {
            return Err(AttrError::UnknownOp {
                op: shown_name(name).into_owned(),
                hint: suggest_op(name).map(|s| format!(", did you mean `{s}`?")).unwrap_or_default(),
            });
        };
        if let Some(attr) = attrs.keys().find(|k| !allowed.contains(&k.as_str())) {
            return Err(AttrError::Unknown {
                op: name.into(),
                attr: attr.clone(),
                allowed: if allowed.is_empty() { "no attributes".into() } else { allowed.join(", ") },
            });
        }
        let r = AttrReader { op: name, attrs };
        let missing = |attr: &str, expected: &str| AttrError::Missing {
            op: name.into(),
            attr: attr.into(),
            expected: expected.into(),
        };
        Ok(match name {
            "add" => Op::Add,
            "sub" => Op::Sub,
            "neg" => Op::Neg,
            "mul" => Op::Mul,
            "scale" => Op::Scale { factor: r.float("factor")?.ok_or_else(|| missing("factor", "a number"))? },
            "shift" => {
                let bits = r.int("bits")?.ok_or_else(|| missing("bits", "an integer"))?;
                if !(-62..=62).contains(&bits) {
                    return Err(AttrError::Type {
                        op: name.into(),
                        attr: "bits".into(),
                        expected: "an integer in -62..=62".into(),
                        found: format!("the integer {bits}"),
                    });
                }
                Op::Shift { bits: bits as i32 }
            }
            "matmul" => Op::Matmul,
            "conv2d" => Op::Conv2d {
                stride: r.pair("stride", true)?.unwrap_or([1, 1]),
                padding: r.pair("padding", false)?.unwrap_or([0, 0]),
            },
            "sum" => Op::Sum { axes: r.axes()?, keepdims: r.bool("keepdims")?.unwrap_or(false) },
            "mean" => Op::Mean { axes: r.axes()?, keepdims: r.bool("keepdims")?.unwrap_or(false) },
            "count" => Op::Count { axes: r.axes()? },
            "histogram" => {
                let edges = r.floats("edges")?.ok_or_else(|| missing("edges", "a list of numbers"))?;
                if edges.len() < 2 || edges.windows(2).any(|w| w[0] >= w[1]) {
                    return Err(AttrError::Type {
                        op: name.into(),
                        attr: "edges".into(),
                        expected: "at least two numbers, each above the one before".into(),
                        found: format!("{edges:?}"),
                    });
                }
                Op::Histogram { edges }
            }
            "reshape" => Op::Reshape { shape: r.ints("shape")?.ok_or_else(|| missing("shape", "a list of integers"))? },
            "transpose" => Op::Transpose { perm: r.sizes("perm")?.unwrap_or_default() },
            "concat" => Op::Concat { axis: r.int("axis")?.unwrap_or(0) },
            "slice" => Op::Slice {
                starts: r.ints("starts")?.ok_or_else(|| missing("starts", "a list of integers"))?,
                ends: r.ints("ends")?.ok_or_else(|| missing("ends", "a list of integers"))?,
                axes: r.ints("axes")?.unwrap_or_default(),
                steps: r.ints("steps")?.unwrap_or_default(),
            },
            "broadcast" => {
                Op::Broadcast { shape: r.sizes("shape")?.ok_or_else(|| missing("shape", "a list of sizes"))? }
            }
            "gt" => Op::Gt,
            "ge" => Op::Ge,
            "lt" => Op::Lt,
            "le" => Op::Le,
            "eq" => Op::Eq,
            "relu" => Op::Relu,
            "max" => Op::Max { axis: r.int("axis")? },
            "min" => Op::Min { axis: r.int("axis")? },
            "maxpool" => Op::Maxpool(r.pool()?),
            "avgpool" => Op::Avgpool(r.pool()?),
            "argmax" => Op::Argmax { axis: r.int("axis")?.unwrap_or(-1), one_hot: r.bool("one_hot")?.unwrap_or(false) },
            "onehot" => {
                let depth = r.int("depth")?.ok_or_else(|| missing("depth", "a positive integer"))?;
                if !(1..=1 << 24).contains(&depth) {
                    return Err(r.err("depth", "an integer in 1..=16777216", &AttrValue::Int(depth)));
                }
                Op::OneHot { depth: depth as usize }
            }
            "select" => Op::Select,
            "reciprocal" => Op::Reciprocal,
            "div" => Op::Div,
            "sqrt" => Op::Sqrt,
            "rsqrt" => Op::Rsqrt,
            "exp" => Op::Exp,
            "sigmoid" => Op::Sigmoid,
            "tanh" => Op::Tanh,
            "gelu" => Op::Gelu,
            "softmax" => Op::Softmax { axis: r.int("axis")?.unwrap_or(-1) },
            "layernorm" => {
                let epsilon = r.float("epsilon")?.unwrap_or(1e-5);
                if epsilon < 0.0 {
                    return Err(r.err("epsilon", "a number ≥ 0", &AttrValue::Float(epsilon)));
                }
                Op::Layernorm { axis: r.int("axis")?.unwrap_or(-1), epsilon }
            }
            other => return Err(AttrError::UnknownOp { op: other.into(), hint: String::new() }),
        })
    }

    /// The op's attributes as written in pipeline files: `Op::from_attrs(op.name(), &op.attrs())`
    /// gives the op back. Used to write pipeline files (`mpcflow import`).
    pub fn attrs(&self) -> Attrs {
        let int = |v: i64| AttrValue::Int(v);
        let ints = |v: &[i64]| AttrValue::List(v.iter().map(|&x| AttrValue::Int(x)).collect());
        let sizes = |v: &[usize]| AttrValue::List(v.iter().map(|&x| AttrValue::Int(x as i64)).collect());
        let mut a = Attrs::new();
        let mut put = |k: &str, v: AttrValue| {
            a.insert(k.to_string(), v);
        };
        match self {
            Op::Scale { factor } => put("factor", AttrValue::Float(*factor)),
            Op::Shift { bits } => put("bits", int(i64::from(*bits))),
            Op::Conv2d { stride, padding } => {
                put("stride", sizes(stride));
                put("padding", sizes(padding));
            }
            Op::Sum { axes, keepdims } | Op::Mean { axes, keepdims } => {
                put("axes", ints(axes));
                put("keepdims", AttrValue::Bool(*keepdims));
            }
            Op::Count { axes } => put("axes", ints(axes)),
            Op::Histogram { edges } => {
                put("edges", AttrValue::List(edges.iter().map(|&e| AttrValue::Float(e)).collect()))
            }
            Op::Reshape { shape } => put("shape", ints(shape)),
            Op::Transpose { perm } => put("perm", sizes(perm)),
            Op::Concat { axis } | Op::Softmax { axis } => put("axis", int(*axis)),
            Op::Slice { starts, ends, axes, steps } => {
                put("starts", ints(starts));
                put("ends", ints(ends));
                put("axes", ints(axes));
                put("steps", ints(steps));
            }
            Op::Broadcast { shape } => put("shape", sizes(shape)),
            Op::Max { axis: Some(x) } | Op::Min { axis: Some(x) } => put("axis", int(*x)),
            Op::Maxpool(p) | Op::Avgpool(p) => {
                put("kernel", sizes(&p.kernel));
                put("stride", sizes(&p.stride));
                put("padding", sizes(&p.padding));
            }
            Op::Argmax { axis, one_hot } => {
                put("axis", int(*axis));
                put("one_hot", AttrValue::Bool(*one_hot));
            }
            Op::OneHot { depth } => put("depth", int(*depth as i64)),
            Op::Layernorm { axis, epsilon } => {
                put("axis", int(*axis));
                put("epsilon", AttrValue::Float(*epsilon));
            }
            Op::Custom { attrs, .. } => return attrs.clone(),
            _ => {}
        }
        a
    }

    /// The op's name as written in pipeline files.
    pub fn name(&self) -> &str {
        match self {
            Op::Add => "add",
            Op::Sub => "sub",
            Op::Neg => "neg",
            Op::Mul => "mul",
            Op::Scale { .. } => "scale",
            Op::Shift { .. } => "shift",
            Op::Matmul => "matmul",
            Op::Conv2d { .. } => "conv2d",
            Op::Sum { .. } => "sum",
            Op::Mean { .. } => "mean",
            Op::Count { .. } => "count",
            Op::Histogram { .. } => "histogram",
            Op::Reshape { .. } => "reshape",
            Op::Transpose { .. } => "transpose",
            Op::Concat { .. } => "concat",
            Op::Slice { .. } => "slice",
            Op::Broadcast { .. } => "broadcast",
            Op::Gt => "gt",
            Op::Ge => "ge",
            Op::Lt => "lt",
            Op::Le => "le",
            Op::Eq => "eq",
            Op::Relu => "relu",
            Op::Max { .. } => "max",
            Op::Min { .. } => "min",
            Op::Maxpool(_) => "maxpool",
            Op::Avgpool(_) => "avgpool",
            Op::Argmax { .. } => "argmax",
            Op::OneHot { .. } => "onehot",
            Op::Select => "select",
            Op::Reciprocal => "reciprocal",
            Op::Div => "div",
            Op::Sqrt => "sqrt",
            Op::Rsqrt => "rsqrt",
            Op::Exp => "exp",
            Op::Sigmoid => "sigmoid",
            Op::Tanh => "tanh",
            Op::Gelu => "gelu",
            Op::Softmax { .. } => "softmax",
            Op::Layernorm { .. } => "layernorm",
            Op::Custom { name, .. } => name,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attrs(pairs: &[(&str, AttrValue)]) -> Attrs {
        pairs.iter().map(|(k, v)| (k.to_string(), v.clone())).collect()
    }

    #[test]
    fn attrs_give_the_op_back() {
        let pool = Pool { kernel: [3, 2], stride: [1, 2], padding: [1, 0] };
        let ops = [
            Op::Scale { factor: -0.25 },
            Op::Shift { bits: -3 },
            Op::Conv2d { stride: [2, 1], padding: [1, 1] },
            Op::Sum { axes: vec![0, -1], keepdims: true },
            Op::Mean { axes: vec![], keepdims: false },
            Op::Count { axes: vec![1] },
            Op::Histogram { edges: vec![-1.5, 0.0, 140.0] },
            Op::Reshape { shape: vec![-1, 4] },
            Op::Transpose { perm: vec![1, 0] },
            Op::Concat { axis: -2 },
            Op::Slice { starts: vec![1], ends: vec![3], axes: vec![0], steps: vec![2] },
            Op::Broadcast { shape: vec![2, 3] },
            Op::Max { axis: Some(1) },
            Op::Min { axis: None },
            Op::Maxpool(pool.clone()),
            Op::Avgpool(pool),
            Op::Argmax { axis: 1, one_hot: true },
            Op::OneHot { depth: 30522 },
            Op::Softmax { axis: -1 },
            Op::Layernorm { axis: -1, epsilon: 1e-6 },
            Op::Relu,
            Op::Gelu,
        ];
        for op in ops {
            assert_eq!(Op::from_attrs(op.name(), &op.attrs()), Ok(op.clone()), "{op:?}");
        }
    }

    #[test]
    fn parses_every_listed_op_with_defaults() {
        for (name, _) in OP_NAMES {
            let a = match *name {
                "scale" => attrs(&[("factor", AttrValue::Float(0.5))]),
                "shift" => attrs(&[("bits", AttrValue::Int(-2))]),
                "reshape" => attrs(&[("shape", AttrValue::List(vec![AttrValue::Int(-1)]))]),
                "slice" => attrs(&[("starts", AttrValue::Int(0)), ("ends", AttrValue::Int(1))]),
                "broadcast" => attrs(&[("shape", AttrValue::List(vec![AttrValue::Int(2)]))]),
                "maxpool" | "avgpool" => attrs(&[("kernel", AttrValue::Int(2))]),
                "histogram" => attrs(&[("edges", AttrValue::List(vec![AttrValue::Int(0), AttrValue::Float(0.5)]))]),
                "onehot" => attrs(&[("depth", AttrValue::Int(10))]),
                _ => Attrs::new(),
            };
            let op = Op::from_attrs(name, &a).unwrap();
            assert_eq!(op.name(), *name);
        }
    }

    #[test]
    fn explains_bad_attributes() {
        let e = Op::from_attrs("softmax", &attrs(&[("axis", AttrValue::Str("x".into()))])).unwrap_err();
        assert_eq!(e.to_string(), "attribute `axis` of op `softmax` must be an integer, found the string \"x\"");
        let e = Op::from_attrs("relu", &attrs(&[("axis", AttrValue::Int(0))])).unwrap_err();
        assert!(e.to_string().contains("has no attribute `axis`"), "{e}");
        let e = Op::from_attrs("sigmod", &Attrs::new()).unwrap_err();
        assert_eq!(e.to_string(), "unknown op `sigmod`, did you mean `sigmoid`?");
        // A name of megabytes is shown by its start and length, and found unknown at once.
        let huge = "x".repeat(3 << 20);
        let start = std::time::Instant::now();
        let e = Op::from_attrs(&huge, &Attrs::new()).unwrap_err().to_string();
        assert!(start.elapsed() < std::time::Duration::from_secs(1), "took {:?}", start.elapsed());
        assert!(e.len() < 200 && e.contains("(3145728 bytes)"), "{e}");
        let e = Op::from_attrs("scale", &Attrs::new()).unwrap_err();
        assert!(matches!(e, AttrError::Missing { .. }));
        let e = Op::from_attrs("onehot", &attrs(&[("depth", AttrValue::Int(0))])).unwrap_err();
        assert!(e.to_string().contains("`depth`") && e.to_string().contains("1..=16777216"), "{e}");
        let e = Op::from_attrs("layernorm", &attrs(&[("epsilon", AttrValue::Float(-1e-5))])).unwrap_err();
        assert!(e.to_string().contains("`epsilon`") && e.to_string().contains("a number ≥ 0"), "{e}");
    }
}
