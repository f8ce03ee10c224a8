//! Writing a graph as a pipeline file: the inverse of loading, for tools that generate
//! pipelines (`mpcflow import`). What it writes loads back into the same graph.

use mpcflow_sdk::graph::{Dim, GraphSpec};
use mpcflow_sdk::op::AttrValue;
use mpcflow_sdk::{DType, FixedPoint};
use std::fmt::Write;

fn dtype(d: DType) -> &'static str {
    match d {
        DType::Fixed => "fixed",
        DType::Int => "int",
        DType::Bit => "bit",
    }
}

/// A real number as YAML reads it back exactly.
fn num(x: f64) -> String {
    if x.is_finite() { format!("{x:?}") } else { "0.0".into() }
}

fn attr(v: &AttrValue) -> String {
    match v {
        AttrValue::Bool(b) => b.to_string(),
        AttrValue::Int(i) => i.to_string(),
        AttrValue::Float(f) => num(*f),
        AttrValue::Str(s) => format!("{s:?}"),
        AttrValue::List(l) => format!("[{}]", l.iter().map(attr).collect::<Vec<_>>().join(", ")),
    }
}

/// Row-major `values` of `shape` as nested YAML flow lists.
fn nested(values: &[f64], shape: &[usize]) -> String {
    match shape {
        [] => values.first().map_or("0.0".into(), |&v| num(v)),
        [_] => format!("[{}]", values.iter().map(|&v| num(v)).collect::<Vec<_>>().join(", ")),
        [n, rest @ ..] => {
            let step: usize = rest.iter().product();
            let parts: Vec<String> = (0..*n).map(|i| nested(&values[i * step..(i + 1) * step], rest)).collect();
            format!("[{}]", parts.join(", "))
        }
    }
}

/// The pipeline file of `spec`, after `header` (comment lines, each without the `# `).
pub fn to_yaml(spec: &GraphSpec, header: &[String]) -> String {
    let mut y = String::new();
    for h in header {
        // A file name with a line break must not end the comment.
        let h: String = h.chars().map(|c| if c.is_control() { '?' } else { c }).collect();
        let _ = writeln!(y, "# {h}");
    }
    let _ = writeln!(y, "version: 1");
    let _ = writeln!(y, "name: {}", spec.name);
    let _ = writeln!(y, "parties: [{}]", spec.parties.join(", "));
    if !spec.owners.is_empty() {
        let _ = writeln!(y, "owners: [{}]", spec.owners.join(", "));
    }
    let _ = writeln!(y, "protocol: {}", spec.protocol);
    let fp = spec.fixed_point;
    if fp != FixedPoint::default() {
        let _ = writeln!(y, "fixed_point: {{ frac_bits: {}, compare_bits: {} }}", fp.frac_bits, fp.compare_bits);
    }
    if !spec.constants.is_empty() {
        let _ = writeln!(y, "constants:");
        for c in &spec.constants {
            let _ =
                writeln!(y, "  {}: {{ value: {}, dtype: {} }}", c.name, nested(&c.values, &c.shape), dtype(c.dtype));
        }
    }
    if !spec.inputs.is_empty() {
        let _ = writeln!(y, "inputs:");
        for i in &spec.inputs {
            let shape: Vec<String> = i
                .shape
                .iter()
                .map(|d| match d {
                    Dim::Fixed(n) => n.to_string(),
                    Dim::Sym(s) => s.clone(),
                })
                .collect();
            let transform = match &i.transform {
                None => String::new(),
                Some(t) => {
                    let mut s = format!(", transform: {{ op: {}", t.op);
                    for (k, v) in &t.attrs {
                        let _ = write!(s, ", {k}: {}", attr(v));
                    }
                    s + " }"
                }
            };
            let range = i.range.map(|[lo, hi]| format!(", range: [{}, {}]", num(lo), num(hi))).unwrap_or_default();
            let _ = writeln!(
                y,
                "  {}: {{ owner: {}, dtype: {}, shape: [{}]{range}{transform} }}",
                i.name,
                i.owner,
                dtype(i.dtype),
                shape.join(", ")
            );
        }
    }
    let _ = writeln!(y, "nodes:");
    for n in &spec.nodes {
        let mut line = format!("  {}: {{ op: {}, inputs: [{}]", n.name, n.op.name(), n.inputs.join(", "));
        for (k, v) in n.op.attrs() {
            let _ = write!(line, ", {k}: {}", attr(&v));
        }
        if let Some([lo, hi]) = n.range {
            let _ = write!(line, ", range: [{}, {}]", num(lo), num(hi));
        }
        let _ = writeln!(y, "{line} }}");
    }
    let _ = writeln!(y, "outputs:");
    for o in &spec.outputs {
        let _ = writeln!(y, "  {}: {{ reveal_to: [{}] }}", o.name, o.reveal_to.join(", "));
    }
    y
}

#[cfg(test)]
mod tests {
    use super::*;
    use mpcflow_sdk::Op;
    use mpcflow_sdk::op::Pool;

    #[test]
    fn a_written_graph_loads_back_the_same() {
        let g = GraphSpec::new("t", ["alice", "bob"])
            .protocol("fss2pc")
            .input("x", "alice", DType::Fixed, vec![Dim::Fixed(2), Dim::Fixed(1), Dim::Fixed(4), Dim::Fixed(4)])
            .input("w", "bob", DType::Fixed, vec![Dim::Fixed(3), Dim::Fixed(1), Dim::Fixed(3), Dim::Fixed(3)])
            .constant("b", DType::Fixed, vec![3, 1, 1], vec![0.5, -1.25, 1e-3])
            .constant("k", DType::Int, vec![], vec![7.0])
            .node("c", Op::Conv2d { stride: [1, 1], padding: [1, 1] }, ["x", "w"])
            .node("cb", Op::Add, ["c", "b"])
            .node("p", Op::Maxpool(Pool { kernel: [2, 2], stride: [2, 2], padding: [0, 0] }), ["cb"])
            .node("f", Op::Reshape { shape: vec![2, -1] }, ["p"])
            .node("cls", Op::Argmax { axis: -1, one_hot: false }, ["f"])
            .node_range("cb", -2.5, 1e3)
            .node_range("cls", 0.0, 7.0)
            .output("cls", ["alice"]);
        let mut g = g;
        let mut attrs = mpcflow_sdk::op::Attrs::new();
        attrs.insert("mean".into(), mpcflow_sdk::op::AttrValue::Float(120.5));
        attrs.insert("label".into(), mpcflow_sdk::op::AttrValue::Str("bp".into()));
        g.inputs[0].transform = Some(mpcflow_sdk::graph::TransformSpec { op: "normalize".into(), attrs });
        let text = to_yaml(&g, &["made by a test".into()]);
        let back = crate::pipeline::Pipeline::from_yaml(&text, "w.yaml").unwrap_or_else(|e| panic!("{e}\n{text}"));
        assert_eq!(back.spec, g, "{text}");
    }

    #[test]
    fn a_header_line_stays_one_comment() {
        let g = GraphSpec::new("t", ["alice", "bob"])
            .input("x", "alice", DType::Int, vec![Dim::Fixed(1)])
            .output("x", ["bob"]);
        let text = to_yaml(&g, &["from evil\nname: other.onnx\r".into()]);
        assert!(text.starts_with("# from evil?name: other.onnx?\nversion: 1\n"), "{text}");
        let back = crate::pipeline::Pipeline::from_yaml(&text, "w.yaml").unwrap_or_else(|e| panic!("{e}\n{text}"));
        assert_eq!(back.spec.name, "t");
    }
}
