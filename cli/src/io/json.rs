//! Numbers and nested arrays in JSON, both ways.

use mpcflow_runtime::InputValue;
use mpcflow_sdk::{DType, FixedPoint, Tensor};
use serde_json::Value;

/// A JSON number or nested array of numbers → an input value. Integers stay exact.
pub fn parse_value(v: &Value) -> Result<InputValue, String> {
    let mut shape = vec![];
    let mut cur = v;
    while let Value::Array(items) = cur {
        shape.push(items.len());
        match items.first() {
            Some(first) => cur = first,
            None => break,
        }
    }
    let mut leaves = vec![];
    collect(v, 0, &shape, &mut leaves)?;
    if leaves.iter().all(|n| n.is_i64()) {
        let values = leaves.iter().filter_map(|n| n.as_i64()).collect();
        Ok(InputValue::Int { shape, values })
    } else {
        let values = leaves.iter().map(|n| n.as_f64().unwrap_or(f64::NAN)).collect();
        Ok(InputValue::Real { shape, values })
    }
}

fn collect<'a>(
    v: &'a Value,
    depth: usize,
    shape: &[usize],
    out: &mut Vec<&'a serde_json::Number>,
) -> Result<(), String> {
    match v {
        Value::Number(n) if depth == shape.len() => {
            out.push(n);
            Ok(())
        }
        Value::Bool(_) if depth == shape.len() => Err("booleans are not numbers: write 1 or 0".into()),
        Value::Array(items) if depth < shape.len() && items.len() == shape[depth] => {
            items.iter().try_for_each(|it| collect(it, depth + 1, shape, out))
        }
        Value::Array(_) | Value::Number(_) => Err("ragged array: every row must have the same length and depth".into()),
        other => Err(format!("expected a number or an array of numbers, found {other}")),
    }
}

/// A tensor as a JSON number (scalar) or nested arrays; fixed point as floats.
pub fn tensor_to_json(t: &Tensor, fp: FixedPoint) -> Value {
    fn build(vals: &[Value], shape: &[usize]) -> Value {
        match shape.split_first() {
            None => vals.first().cloned().unwrap_or(Value::Null),
            Some((&n, rest)) => {
                let stride: usize = rest.iter().product();
                Value::Array((0..n).map(|i| build(&vals[i * stride..(i + 1) * stride], rest)).collect())
            }
        }
    }
    let vals: Vec<Value> = t
        .data
        .iter()
        .map(|&w| match t.dtype {
            DType::Fixed => serde_json::Number::from_f64(fp.decode(w)).map(Value::Number).unwrap_or(Value::Null),
            DType::Int => Value::from(w as i64),
            DType::Bit => Value::from(w & 1),
        })
        .collect();
    build(&vals, &t.shape)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_nested_and_rejects_ragged() {
        let v: Value = serde_json::from_str("[[1, 2], [3, 4]]").unwrap();
        assert_eq!(parse_value(&v).unwrap(), InputValue::Int { shape: vec![2, 2], values: vec![1, 2, 3, 4] });
        let v: Value = serde_json::from_str("[1.5, 2]").unwrap();
        assert_eq!(parse_value(&v).unwrap(), InputValue::Real { shape: vec![2], values: vec![1.5, 2.0] });
        let v: Value = serde_json::from_str("[[1], [2, 3]]").unwrap();
        assert!(parse_value(&v).is_err());
        let t = Tensor::from_f64(DType::Fixed, vec![2, 1], &[0.5, -1.0], FixedPoint::default()).unwrap();
        assert_eq!(tensor_to_json(&t, FixedPoint::default()).to_string(), "[[0.5],[-1.0]]");
    }
}
