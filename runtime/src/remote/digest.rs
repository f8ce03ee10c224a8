//! Pipeline digests: what two processes compare before they agree to run together.
//!
//! A process reads its own copy of the pipeline file, so two copies can drift apart (an edited
//! node, another protocol). Comparing one hash would only say *that* they differ; the digest is
//! a list of named parts (the header fields, each input, constant, node and output) with one
//! SHA-256 each and a short public summary, so an error can say *what* differs: ``node `richer`:
//! `{"op":"ge"}(a, b)` in bob's file, `{"op":"gt"}(a, b)` in alice's``. Everything here is
//! public: the pipeline file holds no private values.

use mpcflow_sdk::graph::GraphSpec;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Longest summary kept for one part.
const SUMMARY_CHARS: usize = 160;

/// One named part of a pipeline.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Part {
    /// What it is: `protocol`, `input \`x\``, `node \`y\``.
    pub part: String,
    /// SHA-256 of its canonical JSON form (hex).
    pub sha: String,
    /// A short readable form for error messages.
    pub summary: String,
}

fn sha_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

fn part(name: String, value: serde_json::Value, summary: String) -> Part {
    let mut summary = summary;
    if summary.chars().count() > SUMMARY_CHARS {
        summary = summary.chars().take(SUMMARY_CHARS).collect::<String>() + "…";
    }
    Part { part: name, sha: sha_hex(value.to_string().as_bytes()), summary }
}

/// The parts of a graph, in file order.
pub fn parts(spec: &GraphSpec) -> Vec<Part> {
    let mut v = vec![
        part("name".into(), serde_json::json!(spec.name), spec.name.clone()),
        part("parties".into(), serde_json::json!(spec.parties), spec.parties.join(", ")),
        part("owners".into(), serde_json::json!(spec.owners), spec.owners.join(", ")),
        part("protocol".into(), serde_json::json!(spec.protocol), spec.protocol.clone()),
        part(
            "fixed_point".into(),
            serde_json::json!(spec.fixed_point),
            serde_json::json!(spec.fixed_point).to_string(),
        ),
    ];
    for i in &spec.inputs {
        let value = serde_json::json!(i);
        let summary = format!("owner {}, {} {}", i.owner, i.dtype, dims(&i.shape));
        v.push(part(format!("input `{}`", i.name), value, summary));
    }
    for c in &spec.constants {
        let value = serde_json::json!(c);
        let summary = format!("{} {:?}, {} values", c.dtype, c.shape, c.values.len());
        v.push(part(format!("constant `{}`", c.name), value, summary));
    }
    for n in &spec.nodes {
        let value = serde_json::json!(n);
        let summary = format!("{}({})", serde_json::json!(n.op), n.inputs.join(", "));
        v.push(part(format!("node `{}`", n.name), value, summary));
    }
    for o in &spec.outputs {
        let value = serde_json::json!(o);
        v.push(part(format!("output `{}`", o.name), value, format!("revealed to {}", o.reveal_to.join(", "))));
    }
    v
}

/// A declared shape as a pipeline file writes it: `[1, n_rows]`.
fn dims(shape: &[mpcflow_sdk::graph::Dim]) -> String {
    let d: Vec<String> = shape
        .iter()
        .map(|d| match d {
            mpcflow_sdk::graph::Dim::Fixed(n) => n.to_string(),
            mpcflow_sdk::graph::Dim::Sym(s) => s.clone(),
        })
        .collect();
    format!("[{}]", d.join(", "))
}

/// The digest of the whole graph: SHA-256 over its parts in order.
pub fn digest(parts: &[Part]) -> String {
    let mut h = Sha256::new();
    h.update(b"mpcflow-graph-v1\0");
    for p in parts {
        h.update(p.part.as_bytes());
        h.update(b"\0");
        h.update(p.sha.as_bytes());
        h.update(b"\n");
    }
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// Says how `theirs` (of `peer`) differs from `mine` (of `me`): at most a few parts, each
/// named, with both sides' summaries.
pub fn describe_difference(me: &str, mine: &[Part], peer: &str, theirs: &[Part]) -> String {
    const SHOWN: usize = 4;
    let mut lines = vec![];
    for m in mine {
        match theirs.iter().find(|t| t.part == m.part) {
            None => lines.push(format!("{} is only in {me}'s file", m.part)),
            Some(t) if t.sha != m.sha => {
                lines.push(format!("{}: `{}` in {peer}'s file, `{}` in {me}'s", m.part, t.summary, m.summary))
            }
            Some(_) => {}
        }
    }
    for t in theirs {
        if !mine.iter().any(|m| m.part == t.part) {
            lines.push(format!("{} is only in {peer}'s file", t.part));
        }
    }
    if lines.is_empty() {
        return "the same inputs, nodes and outputs in a different order".into();
    }
    let more = lines.len().saturating_sub(SHOWN);
    lines.truncate(SHOWN);
    if more > 0 {
        lines.push(format!("and {more} more difference{}", if more == 1 { "" } else { "s" }));
    }
    lines.join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use mpcflow_sdk::graph::GraphSpec;
    use mpcflow_sdk::{DType, Op};

    fn graph(op: Op) -> GraphSpec {
        GraphSpec::new("m", ["alice", "bob"])
            .input("a", "alice", DType::Int, vec![])
            .input("b", "bob", DType::Int, vec![])
            .node("richer", op, ["a", "b"])
            .output("richer", ["alice", "bob"])
    }

    #[test]
    fn equal_graphs_have_equal_digests() {
        assert_eq!(digest(&parts(&graph(Op::Gt))), digest(&parts(&graph(Op::Gt))));
    }

    #[test]
    fn a_changed_node_is_named_with_both_forms() {
        let (a, b) = (parts(&graph(Op::Gt)), parts(&graph(Op::Lt)));
        assert_ne!(digest(&a), digest(&b));
        let d = describe_difference("alice", &a, "bob", &b);
        assert!(d.starts_with("node `richer`:"), "{d}");
        assert!(d.contains("in bob's file") && d.contains("in alice's"), "{d}");
    }

    #[test]
    fn missing_parts_and_protocols_are_named() {
        let a = parts(&graph(Op::Gt));
        let b = parts(&graph(Op::Gt).protocol("fss2pc").node("extra", Op::Add, ["a", "b"]));
        let d = describe_difference("alice", &a, "bob", &b);
        assert!(d.contains("protocol: `fss2pc` in bob's file, `ref` in alice's"), "{d}");
        assert!(d.contains("node `extra` is only in bob's file"), "{d}");
    }

    #[test]
    fn order_alone_is_a_difference() {
        let g = graph(Op::Gt);
        let mut h = g.clone();
        h.inputs.reverse();
        let (a, b) = (parts(&g), parts(&h));
        assert_ne!(digest(&a), digest(&b));
        assert!(describe_difference("alice", &a, "bob", &b).contains("different order"));
    }
}
