//! The `operator` plugin kind: a custom op, in one of two forms.
//!
//! - **Secure** ([`OperatorKind::Secure`]): a node names it like any op
//!   (`{ op: clip, inputs: [x], lo: 0.0, hi: 1.0 }`). The planner asks the operator to lower
//!   itself, for inputs with these public facts, into a [`Lowering`] of op-set primitives (add,
//!   mul, compare, select, relu, ...), which every protocol already evaluates. The plugin runs
//!   once per node at plan time on every party, never on data, so it works under every protocol
//!   and costs nothing per element. [`Compose`] builds lowerings without index bookkeeping.
//! - **Transform** ([`OperatorKind::Transform`]): a plaintext function that a party applies to
//!   its own private input before it is shared (a hospital normalising its column). An input
//!   names it: `{ owner: north, dtype: fixed, shape: [n], transform: { op: normalize, mean: 120 } }`.
//!   Only the owner runs it, on real numbers; the declared dtype and shape describe its result.
//!
//! ```
//! use mpcflow_sdk::operator::*;
//! use mpcflow_sdk::op::{Attrs, Op};
//! use mpcflow_sdk::protocol::Lowering;
//! use mpcflow_sdk::shape::TensorInfo;
//! use mpcflow_sdk::{FixedPoint, Result};
//! /// `square(x) = x * x`.
//! struct Square;
//! impl Operator for Square {
//!     fn name(&self) -> &str { "square" }
//!     fn lower(&self, _attrs: &Attrs, _inputs: &[TensorInfo], fp: FixedPoint) -> Result<Lowering> {
//!         let mut c = Compose::new(fp);
//!         let x = c.input(0);
//!         c.op(Op::Mul, [x.clone(), x]);
//!         Ok(c.finish())
//!     }
//! }
//! ```

use crate::op::{AttrValue, Attrs, Op};
use crate::protocol::{LRef, LoweredNode, Lowering};
use crate::shape::TensorInfo;
use crate::{DType, Error, FixedPoint, Result, Tensor};
use serde::{Deserialize, Serialize};

/// Which form an operator takes (see the module docs).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OperatorKind {
    /// Lowered into op-set primitives; runs under every protocol on secret values.
    Secure,
    /// A plaintext function an input's owner applies before sharing.
    Transform,
}

impl std::fmt::Display for OperatorKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            OperatorKind::Secure => "secure",
            OperatorKind::Transform => "transform",
        })
    }
}

/// Real numbers a transform reads and returns (row-major).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct PlainTensor {
    /// Dimensions.
    pub shape: Vec<usize>,
    /// Row-major values.
    pub values: Vec<f64>,
}

/// An operator plugin.
pub trait Operator: Send + Sync {
    /// Name used as `op:` in pipeline files.
    fn name(&self) -> &str;

    /// Version, shown by `mpcflow plugins list`.
    fn version(&self) -> &str {
        "0.1.0"
    }

    /// Secure (lowered) or a transform. Defaults to secure.
    fn kind(&self) -> OperatorKind {
        OperatorKind::Secure
    }

    /// Secure operators: rewrites the op, applied to inputs with these public facts, into
    /// op-set nodes; constants are encoded with `fixed_point`, the graph's setting. Bad
    /// attributes return [`Error::Invalid`] with a message naming them.
    fn lower(&self, attrs: &Attrs, inputs: &[TensorInfo], fixed_point: FixedPoint) -> Result<Lowering> {
        let _ = (attrs, inputs, fixed_point);
        Err(Error::Unsupported { what: "lowering".into(), plugin: self.name().into() })
    }

    /// Transforms: the owner's plaintext value after the transform.
    fn transform(&self, attrs: &Attrs, input: PlainTensor) -> Result<PlainTensor> {
        let _ = (attrs, input);
        Err(Error::Unsupported { what: "transform".into(), plugin: self.name().into() })
    }
}

/// A value inside a [`Compose`]: an input of the node, a constant or an earlier result.
#[derive(Clone, Debug, PartialEq)]
pub struct Value(LRef);

/// Builds a [`Lowering`] step by step: the host interface a secure operator composes with.
///
/// Every method appends one op-set node and returns its result; the last node appended is the
/// operator's output.
#[derive(Debug)]
pub struct Compose {
    nodes: Vec<LoweredNode>,
    fixed_point: FixedPoint,
}

impl Compose {
    /// An empty composition for a graph with this fixed-point setting.
    pub fn new(fixed_point: FixedPoint) -> Self {
        Compose { nodes: vec![], fixed_point }
    }

    /// The `i`-th input of the node being lowered.
    pub fn input(&self, i: usize) -> Value {
        Value(LRef::Input(i))
    }

    /// A public scalar of `dtype`, encoded with the graph's fixed point.
    pub fn constant(&self, dtype: DType, value: f64) -> Value {
        Value(LRef::Const(Tensor::scalar(dtype, value, self.fixed_point)))
    }

    /// Appends `op` applied to `inputs`.
    pub fn op(&mut self, op: Op, inputs: impl IntoIterator<Item = Value>) -> Value {
        self.nodes.push(LoweredNode { op, inputs: inputs.into_iter().map(|v| v.0).collect() });
        Value(LRef::Node(self.nodes.len() - 1))
    }

    /// `a + b`.
    pub fn add(&mut self, a: Value, b: Value) -> Value {
        self.op(Op::Add, [a, b])
    }

    /// `a - b`.
    pub fn sub(&mut self, a: Value, b: Value) -> Value {
        self.op(Op::Sub, [a, b])
    }

    /// `a * b` (elementwise, secret times secret costs a multiplication).
    pub fn mul(&mut self, a: Value, b: Value) -> Value {
        self.op(Op::Mul, [a, b])
    }

    /// `a * factor` for a public factor (local, no communication).
    pub fn scale(&mut self, a: Value, factor: f64) -> Value {
        self.op(Op::Scale { factor }, [a])
    }

    /// `a > b` as a bit.
    pub fn gt(&mut self, a: Value, b: Value) -> Value {
        self.op(Op::Gt, [a, b])
    }

    /// `a < b` as a bit.
    pub fn lt(&mut self, a: Value, b: Value) -> Value {
        self.op(Op::Lt, [a, b])
    }

    /// `if bit { a } else { b }`, elementwise.
    pub fn select(&mut self, bit: Value, a: Value, b: Value) -> Value {
        self.op(Op::Select, [bit, a, b])
    }

    /// `max(a, 0)`.
    pub fn relu(&mut self, a: Value) -> Value {
        self.op(Op::Relu, [a])
    }

    /// `table[index]`, elementwise, for a secret integer tensor `index` of shape `index_shape`
    /// (entries `0..table.len()`) and a public table of `dtype` values. Built from primitives
    /// every protocol has: each index is compared with every key (one-hot), the hits select
    /// their entries, and a sum over the keys gives the value: `table.len()` comparisons per
    /// element, so meant for small tables. An index outside the table gives 0.
    pub fn lookup(&mut self, index: Value, index_shape: &[usize], table: &[f64], dtype: DType) -> Result<Value> {
        let n = table.len();
        let keys: Vec<f64> = (0..n).map(|k| k as f64).collect();
        let keys = Tensor::from_f64(DType::Int, vec![n], &keys, self.fixed_point)
            .ok_or_else(|| Error::internal("lookup keys"))?;
        let entries =
            Tensor::from_f64(dtype, vec![n], table, self.fixed_point).ok_or_else(|| Error::internal("lookup table"))?;
        let mut column: Vec<i64> = index_shape.iter().map(|&d| d as i64).collect();
        column.push(1);
        let column = self.op(Op::Reshape { shape: column }, [index]);
        let hot = self.op(Op::Eq, [column, Value(LRef::Const(keys))]);
        let zero = self.constant(dtype, 0.0);
        let picked = self.op(Op::Select, [hot, Value(LRef::Const(entries)), zero]);
        Ok(self.op(Op::Sum { axes: vec![-1], keepdims: false }, [picked]))
    }

    /// The finished lowering.
    pub fn finish(self) -> Lowering {
        Lowering { nodes: self.nodes }
    }
}

/// Reads a number attribute (an integer is accepted), or `default` when it is absent.
pub fn number_attr(op: &str, attrs: &Attrs, key: &str, default: Option<f64>) -> Result<f64> {
    match (attrs.get(key), default) {
        (Some(AttrValue::Float(v)), _) => Ok(*v),
        (Some(AttrValue::Int(v)), _) => Ok(*v as f64),
        (Some(other), _) => {
            Err(Error::invalid(format!("`{op}`: attribute `{key}` must be a number, not {}", other.type_name())))
        }
        (None, Some(d)) => Ok(d),
        (None, None) => Err(Error::invalid(format!("`{op}` needs a number attribute `{key}`"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compose_numbers_nodes_in_order() {
        let mut c = Compose::new(FixedPoint::default());
        let x = c.input(0);
        let zero = c.constant(DType::Fixed, 0.0);
        let pos = c.gt(x.clone(), zero);
        let scaled = c.scale(x.clone(), 0.5);
        c.select(pos, x, scaled);
        let l = c.finish();
        assert_eq!(l.nodes.len(), 3);
        assert_eq!(l.nodes[2].inputs, vec![LRef::Node(0), LRef::Input(0), LRef::Node(1)]);
    }

    #[test]
    fn number_attrs_say_what_is_wrong() {
        let mut a = Attrs::new();
        a.insert("alpha".into(), AttrValue::Str("x".into()));
        assert_eq!(
            number_attr("leaky_relu", &a, "alpha", None).unwrap_err().to_string(),
            "`leaky_relu`: attribute `alpha` must be a number, not a string"
        );
        assert_eq!(number_attr("n", &Attrs::new(), "alpha", Some(0.1)).unwrap(), 0.1);
        assert!(number_attr("n", &Attrs::new(), "alpha", None).unwrap_err().to_string().contains("needs"));
    }
}
