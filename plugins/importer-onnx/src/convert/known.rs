//! Ops on values the model file fixes: `Constant`, `ConstantOfShape`, `Shape`, `Cast`,
//! `Identity`/`Dropout`, and the folding of `Add`, `Sub`, `Mul`, `Div`, `Pow`, `Concat`,
//! `Gather` and `Transpose` when every input is known.
//!
//! Exporters compute shapes, axes and scales with small subgraphs of these ops. Evaluating
//! them here, at import, keeps that bookkeeping out of the secure graph, where it would cost
//! communication for values that are not secret at all.

use super::attrs::{attr, attr_i, attr_ints};
use super::{Converter, Val};
use crate::ImportError;
use crate::proto::onnx::{NodeProto, attribute_proto::AttributeType};
use crate::values::Known;

impl Converter {
    /// `Constant`: its value attribute, as a known value.
    pub(super) fn constant(&mut self, n: &NodeProto, base: &str) -> Result<(), ImportError> {
        let a = n.attribute.first().ok_or_else(|| self.err(n, "has no value".into()))?;
        let k = match a.r#type() {
            AttributeType::Tensor => {
                Known::from_proto(a.t.as_ref().ok_or_else(|| self.err(n, "empty tensor".into()))?, base)?
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
        Ok(())
    }

    /// `Identity` and `Dropout` (inference): the input itself.
    pub(super) fn identity(&mut self, n: &NodeProto) -> Result<(), ImportError> {
        let v = self.get(n, 0)?.clone();
        self.set(n, v);
        Ok(())
    }

    /// `Cast`: float types keep the value; known values convert to integers or bits.
    pub(super) fn cast(&mut self, n: &NodeProto) -> Result<(), ImportError> {
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
        Ok(())
    }

    /// `Shape`: the (static) shape of its input, a known value.
    pub(super) fn shape(&mut self, n: &NodeProto) -> Result<(), ImportError> {
        let shape = self.val_shape(self.get(n, 0)?);
        let dims: Vec<i64> = shape.iter().map(|&d| d as i64).collect();
        let (start, end) = (attr_i(n, "start", 0), attr_i(n, "end", dims.len() as i64));
        let norm = |v: i64| if v < 0 { (v + dims.len() as i64).max(0) } else { v.min(dims.len() as i64) } as usize;
        let (s, e) = (norm(start), norm(end).max(norm(start)));
        self.set(n, Val::Known(Known::ints(&dims[s..e])));
        Ok(())
    }

    /// `ConstantOfShape`: a known tensor of one repeated value.
    pub(super) fn constant_of_shape(&mut self, n: &NodeProto, base: &str) -> Result<(), ImportError> {
        let shape: Vec<usize> = self.known(n, 0, "shape")?.as_ints().iter().map(|&d| d.max(0) as usize).collect();
        let (value, int) = match attr(n, "value").and_then(|a| a.t.as_ref()) {
            Some(t) => {
                let k = Known::from_proto(t, base)?;
                (k.data.first().copied().unwrap_or(0.0), k.int)
            }
            None => (0.0, false),
        };
        let len = crate::values::generated_len(&shape).map_err(|e| self.err(n, e))?;
        self.set(n, Val::Known(Known { shape, data: vec![value; len], int }));
        Ok(())
    }

    /// `Add`, `Sub`, `Mul`, `Div` or `Pow` of known values, computed at import.
    pub(super) fn fold_arith(&mut self, n: &NodeProto, op: &str) -> Result<(), ImportError> {
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
        Ok(())
    }

    /// Comparisons and logic of known values (the masks that exporters build from shapes):
    /// `Equal`, `Less`, `LessOrEqual`, `Greater`, `GreaterOrEqual`, `And`, `Or`, `Xor`, `Not`.
    pub(super) fn fold_logic(&mut self, n: &NodeProto, op: &str) -> Result<(), ImportError> {
        let a = self.known(n, 0, "operand")?;
        if op == "Not" {
            let data = a.data.iter().map(|&x| f64::from(u8::from(x == 0.0))).collect();
            self.set(n, Val::Known(Known { data, int: true, ..a }));
            return Ok(());
        }
        let b = self.known(n, 1, "operand")?;
        let f: fn(f64, f64) -> bool = match op {
            "Equal" => |x, y| x == y,
            "Less" => |x, y| x < y,
            "LessOrEqual" => |x, y| x <= y,
            "Greater" => |x, y| x > y,
            "GreaterOrEqual" => |x, y| x >= y,
            "And" => |x, y| x != 0.0 && y != 0.0,
            "Or" => |x, y| x != 0.0 || y != 0.0,
            _ => |x, y| (x != 0.0) != (y != 0.0),
        };
        let mut k = a.zip(&b, |x, y| f64::from(u8::from(f(x, y)))).map_err(|e| self.err(n, e))?;
        k.int = true;
        self.set(n, Val::Known(k));
        Ok(())
    }

    /// `Where` of known values.
    pub(super) fn fold_where(&mut self, n: &NodeProto) -> Result<(), ImportError> {
        let (c, a, b) = (self.known(n, 0, "condition")?, self.known(n, 1, "operand")?, self.known(n, 2, "operand")?);
        let shape = mpcflow_sdk::shape::broadcast_shapes(&c.shape, &a.shape)
            .and_then(|s| mpcflow_sdk::shape::broadcast_shapes(&s, &b.shape))
            .map_err(|e| self.err(n, e.0))?;
        let [c, a, b] = [c, a, b].map(|k| k.broadcast_to(&shape));
        let (c, a, b) =
            (c.map_err(|e| self.err(n, e))?, a.map_err(|e| self.err(n, e))?, b.map_err(|e| self.err(n, e))?);
        let data =
            c.data.iter().zip(a.data.iter().zip(&b.data)).map(|(&c, (&x, &y))| if c != 0.0 { x } else { y }).collect();
        let weight = [1, 2].iter().any(|&i| matches!(self.opt(n, i), Some(Val::Weight(_))));
        let k = Known { shape, data, int: a.int && b.int };
        self.set(n, if weight { Val::Weight(k) } else { Val::Known(k) });
        Ok(())
    }

    /// `Expand` of a known value to a known shape.
    pub(super) fn fold_expand(&mut self, n: &NodeProto) -> Result<(), ImportError> {
        let (x, shape) = (self.known(n, 0, "operand")?, self.known(n, 1, "shape")?);
        let dims: Vec<usize> = shape.as_ints().iter().map(|&d| d.max(0) as usize).collect();
        let target = mpcflow_sdk::shape::broadcast_shapes(&x.shape, &dims).map_err(|e| self.err(n, e.0))?;
        let k = x.broadcast_to(&target).map_err(|e| self.err(n, e))?;
        let weight = matches!(self.opt(n, 0), Some(Val::Weight(_)));
        self.set(n, if weight { Val::Weight(k) } else { Val::Known(k) });
        Ok(())
    }

    /// `Range(start, limit, delta)` of known scalars (the position ids an exporter computes from
    /// a sequence length), capped like every value computed at import.
    pub(super) fn fold_range(&mut self, n: &NodeProto) -> Result<(), ImportError> {
        let [start, limit, delta] = [0, 1, 2].map(|i| self.known(n, i, "bound"));
        let (start, limit, delta) = (start?, limit?, delta?);
        let scalar = |k: &Known| (k.data.len() == 1).then(|| k.data[0]);
        let (Some(a), Some(b), Some(d)) = (scalar(&start), scalar(&limit), scalar(&delta)) else {
            return Err(self.err(n, "start, limit and delta must be scalars".into()));
        };
        if d == 0.0 || !(a.is_finite() && b.is_finite() && d.is_finite()) {
            return Err(self.err(n, format!("Range({a}, {b}, {d}) has no finite length")));
        }
        let count = ((b - a) / d).ceil().max(0.0);
        let len = crate::values::generated_len(&[count.min(usize::MAX as f64) as usize]).map_err(|e| self.err(n, e))?;
        let data: Vec<f64> = (0..len).map(|i| a + d * i as f64).collect();
        let int = start.int && limit.int && delta.int;
        self.set(n, Val::Known(Known { shape: vec![len], data, int }));
        Ok(())
    }

    /// `Expand` of a value computed from the private input to a shape the model file fixes: a
    /// broadcast, which moves no secret.
    pub(super) fn expand(&mut self, n: &NodeProto, base: &str) -> Result<(), ImportError> {
        let x = self.operand(n, 0)?;
        let shape = self.known(n, 1, "shape")?;
        let dims: Vec<usize> = shape.as_ints().iter().map(|&d| d.max(0) as usize).collect();
        let target = mpcflow_sdk::shape::broadcast_shapes(&self.shape_of(&x), &dims).map_err(|e| self.err(n, e.0))?;
        let out = self.emit(n, base, mpcflow_sdk::Op::Broadcast { shape: target }, vec![x])?;
        self.set(n, Val::Secret(out));
        Ok(())
    }

    /// `Concat` of known 1-D values.
    pub(super) fn fold_concat(&mut self, n: &NodeProto) -> Result<(), ImportError> {
        let parts: Vec<Known> = (0..n.input.len()).map(|i| self.known(n, i, "operand")).collect::<Result<_, _>>()?;
        if parts.iter().any(|p| p.shape.len() != 1) {
            return Err(self.err(n, "folding a Concat of known values supports 1-D values only".into()));
        }
        let data: Vec<f64> = parts.iter().flat_map(|p| p.data.clone()).collect();
        let int = parts.iter().all(|p| p.int);
        self.set(n, Val::Known(Known { shape: vec![data.len()], data, int }));
        Ok(())
    }

    /// `Gather` of known data at known indices, on any axis (a weight stays a weight).
    pub(super) fn fold_gather(&mut self, n: &NodeProto) -> Result<(), ImportError> {
        let (data, idx) = (self.known(n, 0, "data")?, self.known(n, 1, "indices")?);
        let axis =
            mpcflow_sdk::shape::norm_axis(attr_i(n, "axis", 0), data.shape.len()).map_err(|e| self.err(n, e.0))?;
        let (outer, len): (usize, usize) = (data.shape[..axis].iter().product(), data.shape[axis]);
        let inner: usize = data.shape[axis + 1..].iter().product();
        let mut shape = data.shape[..axis].to_vec();
        shape.extend(&idx.shape);
        shape.extend(&data.shape[axis + 1..]);
        crate::values::generated_len(&shape).map_err(|e| self.err(n, e))?;
        let picks: Vec<usize> = idx
            .as_ints()
            .iter()
            .map(|&i| usize::try_from(if i < 0 { i + len as i64 } else { i }).ok().filter(|&i| i < len))
            .collect::<Option<_>>()
            .ok_or_else(|| self.err(n, "index out of range".into()))?;
        let mut picked = Vec::with_capacity(outer * picks.len() * inner);
        for o in 0..outer {
            for &i in &picks {
                let at = (o * len + i) * inner;
                picked.extend_from_slice(&data.data[at..at + inner]);
            }
        }
        let k = Known { shape, data: picked, int: data.int };
        let weight = matches!(self.opt(n, 0), Some(Val::Weight(_)));
        self.set(n, if weight { Val::Weight(k) } else { Val::Known(k) });
        Ok(())
    }

    /// `Transpose` of a known value or weight.
    pub(super) fn fold_transpose(&mut self, n: &NodeProto) -> Result<(), ImportError> {
        let k = self.known(n, 0, "operand")?;
        let perm = attr_ints(n, "perm")
            .map_or_else(|| (0..k.shape.len()).rev().collect(), |p| p.iter().map(|&x| x as usize).collect::<Vec<_>>());
        let t = k.transpose(&perm).map_err(|e| self.err(n, e))?;
        let weight = matches!(self.opt(n, 0), Some(Val::Weight(_)));
        self.set(n, if weight { Val::Weight(t) } else { Val::Known(t) });
        Ok(())
    }
}
