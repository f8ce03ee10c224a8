//! Ops that move or cut secret tensors without computing on their elements: `Reshape`,
//! `Flatten`, `Squeeze`, `Unsqueeze`, `Transpose`, `Concat`, `Gather`, `Slice` and `Split`.
//!
//! They are free in the secure graph (each party rearranges its shares), so the importer maps
//! them one to one onto the graph's `reshape`, `transpose`, `concat` and `slice`; the target
//! shapes and indices must be fixed by the model file and are worked out here.

use super::attrs::{attr_i, attr_ints};
use super::{Converter, Val};
use crate::ImportError;
use crate::proto::onnx::NodeProto;
use crate::values::Known;
use mpcflow_sdk::Op;
use mpcflow_sdk::shape::checked_numel;

impl Converter {
    pub(super) fn reshape_like(&mut self, n: &NodeProto, base: &str) -> Result<(), ImportError> {
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
                    let rest =
                        checked_numel(&out).ok_or_else(|| self.err(n, format!("shape {spec:?} is too large")))?;
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
        if checked_numel(&target) != checked_numel(&shape) {
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

    /// `Concat` of secret (or placed) tensors.
    pub(super) fn concat(&mut self, n: &NodeProto, base: &str) -> Result<(), ImportError> {
        let inputs = (0..n.input.len()).map(|i| self.operand(n, i)).collect::<Result<Vec<_>, _>>()?;
        let out = self.emit(n, base, Op::Concat { axis: attr_i(n, "axis", 0) }, inputs)?;
        self.set(n, Val::Secret(out));
        Ok(())
    }

    /// `Gather` from secret data at known indices.
    pub(super) fn gather(&mut self, n: &NodeProto, base: &str) -> Result<(), ImportError> {
        // Secret data, known indices: a slice per index, then concatenate.
        let idx = self.known(n, 1, "indices")?;
        let x = self.operand(n, 0)?;
        let shape = self.shape_of(&x);
        let axis = mpcflow_sdk::shape::norm_axis(attr_i(n, "axis", 0), shape.len()).map_err(|e| self.err(n, e.0))?;
        let mut parts = vec![];
        for &i in &idx.as_ints() {
            let i = if i < 0 { i + shape[axis] as i64 } else { i };
            let op = Op::Slice { starts: vec![i], ends: vec![i + 1], axes: vec![axis as i64], steps: vec![] };
            parts.push(self.emit(n, &format!("{base}_pick"), op, vec![x.clone()])?);
        }
        let mut out = if parts.len() == 1 {
            parts.remove(0)
        } else {
            self.emit(n, base, Op::Concat { axis: axis as i64 }, parts)?
        };
        let mut target = shape.clone();
        target.splice(axis..=axis, idx.shape.iter().copied());
        if self.shape_of(&out) != target {
            out = self.emit(n, base, Op::Reshape { shape: target.iter().map(|&d| d as i64).collect() }, vec![out])?;
        }
        self.set(n, Val::Secret(out));
        Ok(())
    }

    /// `Gather` on axis 0 of a table fixed by the model file (a weight or a constant) at secret
    /// indices: an embedding lookup on private token ids. It becomes a one-hot product,
    /// `onehot(ids, V) · table`, with nothing revealed about the ids: fss2pc makes each one-hot
    /// row from one point-function key (`gates::onehot` in mpcflow-fss-gates), rep3 from equality
    /// tests. `onehot` holds the ids to integers in `[0, V)`, a contract `ref` enforces: an index
    /// outside the table is refused there rather than looked up as zeros.
    pub(super) fn gather_at_secret_indices(&mut self, n: &NodeProto, base: &str) -> Result<(), ImportError> {
        let (table, weight) = match self.get(n, 0)?.clone() {
            Val::Known(k) => (k, false),
            Val::Weight(k) => (k, true),
            Val::Secret(_) | Val::Gelu(_) => {
                return Err(self.err(
                    n,
                    "looks up a tensor computed from the private input at indices also computed from it; only a \
                     table fixed by the model file can be looked up at private indices"
                        .into(),
                ));
            }
        };
        if attr_i(n, "axis", 0) != 0 || table.shape.is_empty() {
            return Err(self.err(n, "private indices are supported on axis 0 of a table of rank 1 or more".into()));
        }
        let ids = self.operand(n, 1)?;
        let ids_shape = self.shape_of(&ids);
        let vocab = table.shape[0];
        let rows: usize = table.shape[1..].iter().product();
        let matrix = Known { shape: vec![vocab, rows], ..table.clone() };
        let table_name = if weight {
            self.derived_weight(&n.input[0], matrix)
        } else {
            self.place_as(&format!("\u{0}rows:{}", n.input[0]), &n.input[0], Known { int: false, ..matrix }, false)
        };
        // A single id as [1], so that the one-hot rows and the product have rank 2.
        let ids = if ids_shape.is_empty() {
            self.emit(n, &format!("{base}_ids"), Op::Reshape { shape: vec![1] }, vec![ids])?
        } else {
            ids
        };
        let onehot = self.emit(n, &format!("{base}_onehot"), Op::OneHot { depth: vocab }, vec![ids])?;
        let mut out = self.emit(n, base, Op::Matmul, vec![onehot, table_name])?;
        let mut target = ids_shape;
        target.extend(&table.shape[1..]);
        if self.shape_of(&out) != target {
            out = self.emit(n, base, Op::Reshape { shape: target.iter().map(|&d| d as i64).collect() }, vec![out])?;
        }
        self.set(n, Val::Secret(out));
        Ok(())
    }

    /// `Slice` with known starts, ends, axes and steps.
    pub(super) fn slice(&mut self, n: &NodeProto, base: &str) -> Result<(), ImportError> {
        // A value the model file fixes (a shape, say) is sliced here, so it stays known.
        if let Val::Known(k) | Val::Weight(k) = self.get(n, 0)?.clone()
            && (1..n.input.len()).all(|i| self.opt(n, i).is_none_or(|v| matches!(v, Val::Known(_))))
        {
            let weight = matches!(self.get(n, 0)?, Val::Weight(_));
            let ints = |s: &Self, i: usize| -> Result<Option<Vec<i64>>, ImportError> {
                if s.opset < 10 {
                    let name = ["", "starts", "ends", "axes", "steps"][i];
                    return Ok(attr_ints(n, name));
                }
                s.opt(n, i).map(|_| s.known(n, i, "bound").map(|k| k.as_ints())).transpose()
            };
            let starts = ints(self, 1)?.ok_or_else(|| self.err(n, "starts are missing".into()))?;
            let ends = ints(self, 2)?.ok_or_else(|| self.err(n, "ends are missing".into()))?;
            let axes = ints(self, 3)?.unwrap_or_else(|| (0..starts.len() as i64).collect());
            let axes = mpcflow_sdk::shape::norm_axes(&axes, k.shape.len()).map_err(|e| self.err(n, e.0))?;
            let steps = ints(self, 4)?.unwrap_or_default();
            let out = k.slice(&starts, &ends, &axes, &steps).map_err(|e| self.err(n, e))?;
            self.set(n, if weight { Val::Weight(out) } else { Val::Known(out) });
            return Ok(());
        }
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
        let out = self.emit(n, base, op_, vec![x])?;
        self.set(n, Val::Secret(out));
        Ok(())
    }

    /// `Split`: one slice per output.
    pub(super) fn split(&mut self, n: &NodeProto) -> Result<(), ImportError> {
        let x = self.operand(n, 0)?;
        let shape = self.shape_of(&x);
        let axis = mpcflow_sdk::shape::norm_axis(attr_i(n, "axis", 0), shape.len()).map_err(|e| self.err(n, e.0))?;
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
            let op_ =
                Op::Slice { starts: vec![start], ends: vec![start + size], axes: vec![axis as i64], steps: vec![] };
            let t = self.emit(n, out, op_, vec![x.clone()])?;
            self.vals.insert(out.clone(), Val::Secret(t));
            start += size;
        }
        Ok(())
    }

    /// `Transpose` of a secret tensor.
    pub(super) fn transpose(&mut self, n: &NodeProto, base: &str) -> Result<(), ImportError> {
        let x = self.operand(n, 0)?;
        let perm = attr_ints(n, "perm").map(|p| p.iter().map(|&x| x as usize).collect()).unwrap_or_default();
        let out = self.emit(n, base, Op::Transpose { perm }, vec![x])?;
        self.set(n, Val::Secret(out));
        Ok(())
    }
}
