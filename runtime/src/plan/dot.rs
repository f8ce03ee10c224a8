//! The plan as a Graphviz graph: one box per node with its op, shape and cost, inputs in
//! blue, constants in grey, outputs in green, and lowered nodes grouped under their origin.

use super::Plan;
use mpcflow_sdk::protocol::NodeKind;
use std::fmt::Write;

fn esc(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"")
}

/// Renders `plan` in the DOT language.
pub fn to_dot(plan: &Plan) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "digraph \"{}\" {{", esc(&plan.name));
    let _ = writeln!(s, "  rankdir=TB; node [shape=box, fontname=\"Helvetica\", fontsize=10];");
    let _ = writeln!(
        s,
        "  label=\"{} · protocol {} · fingerprint {}\";",
        esc(&plan.name),
        esc(&plan.protocol),
        &plan.fingerprint_hex()[..16]
    );
    for (i, n) in plan.nodes.iter().enumerate() {
        let d = &n.desc;
        let (color, what) = match (&d.kind, n.local) {
            // What a party computes from its own data, in the clear.
            (NodeKind::Input { owner }, Some(_)) => {
                ("lightyellow", format!("{}'s own input", plan.parties[owner.index()]))
            }
            (NodeKind::Op(op), Some(p)) => {
                ("lightyellow", format!("{} in the clear on {}", op.name(), plan.parties[p.index()]))
            }
            (NodeKind::Input { owner }, _) if n.shares_local_value() => {
                ("lightblue", format!("{}'s value shared", plan.parties[owner.index()]))
            }
            (NodeKind::Input { owner }, _) => ("lightblue", format!("input of {}", plan.parties[owner.index()])),
            (NodeKind::Constant { .. }, _) => ("lightgrey", "constant".to_string()),
            (NodeKind::Op(op), None) => ("white", op.name().to_string()),
            (NodeKind::Output { reveal_to }, _) => (
                "palegreen",
                format!(
                    "reveal to {}",
                    reveal_to.iter().map(|p| plan.parties[p.index()].as_str()).collect::<Vec<_>>().join(", ")
                ),
            ),
        };
        let sent: u64 = n.cost.online_bytes.iter().sum();
        let label = format!(
            "{}\\n{} · {} {:?}\\n{} rounds · {} B online",
            esc(&d.name),
            esc(&what),
            d.output.dtype,
            d.output.shape,
            n.cost.rounds,
            sent
        );
        let _ = writeln!(s, "  n{i} [label=\"{label}\", style=filled, fillcolor={color}];");
        for &j in &n.inputs {
            let _ = writeln!(s, "  n{j} -> n{i};");
        }
    }
    s.push_str("}\n");
    s
}
