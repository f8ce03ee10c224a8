//! Putting tensors and nodes in the graph.
//!
//! Every family ends the same way: its inputs must be graph tensors (a weight or constant is
//! placed once, under a fresh graph-safe name) and its result is a node whose output shape the
//! sdk infers. Doing both here keeps names unique and shapes right in one place.

use super::{Converter, GeluStage, Val, clean};
use crate::ImportError;
use crate::proto::onnx::NodeProto;
use crate::values::Known;
use mpcflow_sdk::graph::{ConstSpec, NodeSpec};
use mpcflow_sdk::shape::{TensorInfo, Visibility};
use mpcflow_sdk::{DType, Op};

/// What a masking constant becomes: exporters fill masked attention scores with the float's
/// lowest value (`torch.finfo(dtype).min`, −3.4e38) or −∞, which no fixed-point word holds. Such
/// a value becomes ∓2^20: added to a score and passed to softmax or exp, it gives exactly 0 there
/// as in floating point (exp(−2^20) underflows; the secure exp clips far above it). 2^20 and not
/// more, because BERT multiplies it by the private mask, `(1 − m)·min`, and a fixed-point product
/// stays exact below 2^30 at 16 fractional bits. Any other value is kept, and one out of fixed
/// point's range is refused when planned.
pub(super) fn mask_value(v: f64) -> f64 {
    const MASK: f64 = (1u64 << 20) as f64;
    if v.abs() >= f64::from(f32::MAX) { MASK.copysign(v) } else { v }
}

/// Public constants of at least this many elements are written once per value (see
/// `Converter::constants_by_value`).
const SHARED_CONSTANT_LEN: usize = 64;

/// The key of a large public constant in `Converter::constants_by_value`: its dtype, shape and
/// values; `None` below [`SHARED_CONSTANT_LEN`] elements.
fn value_key(dtype: DType, k: &Known) -> Option<Vec<u64>> {
    (k.data.len() >= SHARED_CONSTANT_LEN).then(|| {
        let head = [dtype as u64, k.shape.len() as u64].into_iter().chain(k.shape.iter().map(|&d| d as u64));
        head.chain(k.data.iter().map(|v| v.to_bits())).collect()
    })
}

impl Converter {
    pub(super) fn fresh(&mut self, base: &str) -> String {
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

    /// The graph name of input `i`, placing a weight or constant in the graph if needed.
    pub(super) fn operand(&mut self, node: &NodeProto, i: usize) -> Result<String, ImportError> {
        let val = self.get(node, i)?.clone();
        let onnx = node.input[i].clone();
        match val {
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
    pub(super) fn place(&mut self, onnx: &str, k: Known, weight: bool) -> String {
        self.place_as(onnx, onnx, k, weight)
    }

    /// [`Self::place`] under the key `key`, named after `base`.
    pub(super) fn place_as(&mut self, key: &str, base: &str, k: Known, weight: bool) -> String {
        if let Some(name) = self.placed.get(key) {
            return name.clone();
        }
        let dtype = if k.int && !weight { DType::Int } else { DType::Fixed };
        let k = if weight { k } else { Known { data: k.data.iter().map(|&v| mask_value(v)).collect(), ..k } };
        let by_value = if weight { None } else { value_key(dtype, &k) };
        if let Some(name) = by_value.as_ref().and_then(|v| self.constants_by_value.get(v)).cloned() {
            self.placed.insert(key.to_string(), name.clone());
            return name;
        }
        let name = self.fresh(base);
        if let Some(v) = by_value {
            self.constants_by_value.insert(v, name.clone());
        }
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

    /// A public bit mask (a condition the model file fixes), once per value when large.
    pub(super) fn place_bits(&mut self, base: &str, k: Known) -> String {
        let key = value_key(DType::Bit, &k);
        if let Some(name) = key.as_ref().and_then(|v| self.constants_by_value.get(v)) {
            return name.clone();
        }
        let name = self.fresh(base);
        if let Some(v) = key {
            self.constants_by_value.insert(v, name.clone());
        }
        self.shapes.insert(name.clone(), k.shape.clone());
        self.dtypes.insert(name.clone(), DType::Bit);
        self.constants.push(ConstSpec { name: name.clone(), dtype: DType::Bit, shape: k.shape, values: k.data });
        name
    }

    /// A new weight computed at import from others (a transposed or rescaled matrix).
    pub(super) fn derived_weight(&mut self, base: &str, k: Known) -> String {
        let key = format!("\u{0}derived:{base}:{}", self.weights.len());
        self.place_as(&key, base, Known { int: false, ..k }, true)
    }

    /// Adds one graph node; its output shape comes from the sdk's own rules.
    pub(super) fn emit(
        &mut self,
        node: &NodeProto,
        base: &str,
        op: Op,
        inputs: Vec<String>,
    ) -> Result<String, ImportError> {
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
        self.nodes.push(NodeSpec::new(name.clone(), op, inputs));
        Ok(name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn known(n: usize, v: f64) -> Known {
        Known { shape: vec![n], data: vec![v; n], int: false }
    }

    #[test]
    fn large_equal_constants_are_written_once_and_weights_never_shared() {
        let mut c = Converter::new(17, false);
        let a = c.place("a", known(64, 1.0), false);
        assert_eq!(c.place("b", known(64, 1.0), false), a, "the same value under another ONNX name");
        assert_ne!(c.place("c", known(64, 2.0), false), a);
        assert_ne!(c.place("d", Known { shape: vec![8, 8], ..known(64, 1.0) }, false), a, "another shape");
        assert_ne!(
            c.place("e", known(8, 1.0), false),
            c.place("f", known(8, 1.0), false),
            "small ones keep their names"
        );
        assert_ne!(
            c.place("g", known(64, 1.0), true),
            c.place("h", known(64, 1.0), true),
            "weights are the owner's own"
        );
        let m = c.place_bits("m", known(64, 1.0));
        assert_eq!(c.place_bits("n", known(64, 1.0)), m);
        assert_ne!(m, a, "a bit mask is not the fixed-point constant of the same numbers");
        assert_eq!((c.constants.len(), c.weights.len()), (6, 2));
    }
}
