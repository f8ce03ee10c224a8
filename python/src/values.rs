//! Input and output values as they cross to Python: shapes and little-endian bytes.

use mpcflow_runtime::{InputValue, RunOutput};
use mpcflow_sdk::graph::InputSpec;
use mpcflow_sdk::{DType, FixedPoint, Tensor};
use std::collections::HashMap;
use std::path::PathBuf;

/// An output: name, dtype (`float64`, `int64` or `uint8`), shape, bytes, parties it is revealed
/// to.
pub type Output = (String, &'static str, Vec<usize>, Vec<u8>, Vec<String>);

/// Input `name` from its kind (`real`: float64, `int`: int64), shape and bytes.
pub fn input(name: &str, kind: &str, shape: Vec<usize>, bytes: &[u8]) -> Result<InputValue, String> {
    let n = shape
        .iter()
        .try_fold(1usize, |a, &d| a.checked_mul(d))
        .ok_or_else(|| format!("input `{name}`: shape {shape:?} is too large"))?;
    if bytes.len() != 8 * n {
        return Err(format!("input `{name}`: {} bytes for shape {shape:?} ({n} values of 8 bytes)", bytes.len()));
    }
    let words = bytes.chunks_exact(8).map(|c| <[u8; 8]>::try_from(c).unwrap_or_default());
    match kind {
        "real" => Ok(InputValue::Real { shape, values: words.map(f64::from_le_bytes).collect() }),
        "int" => Ok(InputValue::Int { shape, values: words.map(i64::from_le_bytes).collect() }),
        other => Err(format!("input `{name}`: unknown value kind `{other}` (real or int)")),
    }
}

/// Every input of `wanted` not given yet that a `DIR/NAME.npy` of `dirs` holds.
pub fn fill_from_dirs(
    given: &mut HashMap<String, InputValue>,
    wanted: &[&InputSpec],
    dirs: &[PathBuf],
) -> Result<(), String> {
    for d in dirs {
        if !d.is_dir() {
            return Err(format!("input_dir {}: not a directory", d.display()));
        }
    }
    for decl in wanted {
        if given.contains_key(&decl.name) {
            continue;
        }
        if let Some(p) = dirs.iter().map(|d| d.join(format!("{}.npy", decl.name))).find(|p| p.is_file()) {
            given.insert(decl.name.clone(), mpcflow::io::npy::read(&p)?);
        }
    }
    Ok(())
}

/// The revealed outputs of an in-process run (see [`revealed`]).
pub fn outputs(out: &RunOutput) -> Vec<Output> {
    revealed(out.outputs.iter().map(|o| (o.name.as_str(), o.parties.as_slice(), &o.tensor)), out.fixed_point)
}

/// Revealed outputs (name, parties, value), decoded: fixed point to float64, int to int64,
/// bit to uint8.
pub fn revealed<'a>(outs: impl Iterator<Item = (&'a str, &'a [String], &'a Tensor)>, fp: FixedPoint) -> Vec<Output> {
    outs.map(|(name, parties, t)| {
        let (dtype, bytes): (&'static str, Vec<u8>) = match t.dtype {
            DType::Fixed => ("float64", t.data.iter().flat_map(|&w| fp.decode(w).to_le_bytes()).collect()),
            DType::Int => ("int64", t.data.iter().flat_map(|&w| (w as i64).to_le_bytes()).collect()),
            DType::Bit => ("uint8", t.data.iter().map(|&w| (w & 1) as u8).collect()),
        };
        (name.to_string(), dtype, t.shape.clone(), bytes, parties.to_vec())
    })
    .collect()
}

/// An op attribute as JSON.
pub fn attr_json(v: &mpcflow_sdk::op::AttrValue) -> serde_json::Value {
    use mpcflow_sdk::op::AttrValue;
    match v {
        AttrValue::Bool(b) => serde_json::json!(b),
        AttrValue::Int(i) => serde_json::json!(i),
        AttrValue::Float(f) => serde_json::json!(f),
        AttrValue::Str(s) => serde_json::json!(s),
        AttrValue::List(l) => serde_json::Value::Array(l.iter().map(attr_json).collect()),
    }
}
