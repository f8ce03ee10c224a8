//! A host program that embeds mpcflow: it builds sessions from a YAML string and from a graph
//! built in code, passes its inputs as Rust values and awaits the outputs.
//!
//! Run it with `cargo run --example embed_host`.

use mpcflow::runtime::{InputValue, Session};
use mpcflow::sdk::graph::{Dim, GraphSpec};
use mpcflow::sdk::{DType, Op};

const MILLIONAIRES: &str = r#"
version: 1
name: millionaires
parties: [alice, bob]
protocol: ref
inputs:
  alice_wealth: { owner: alice, dtype: int, shape: [] }
  bob_wealth:   { owner: bob,   dtype: int, shape: [] }
nodes:
  alice_richer: { op: gt, inputs: [alice_wealth, bob_wealth] }
outputs:
  alice_richer: { reveal_to: [alice, bob] }
"#;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // 1. From YAML text.
    let session = Session::from_yaml(MILLIONAIRES, "millionaires (inline)", mpcflow::builtins())?;
    let out = session
        .run([("alice_wealth", InputValue::from(7_000_000i64)), ("bob_wealth", InputValue::from(9_500_000i64))])
        .await?;
    let richer = out.values("alice_richer").and_then(|v| v.first().copied()).ok_or("no output")?;
    println!("alice is richer: {}", richer == 1.0);

    // 2. From a graph built in code: the mean of two parties' private vectors, revealed to both.
    let graph = GraphSpec::new("joint_mean", ["north", "south"])
        .input("a", "north", DType::Fixed, vec![Dim::from("n_a")])
        .input("b", "south", DType::Fixed, vec![Dim::from("n_b")])
        .node("all", Op::Concat { axis: 0 }, ["a", "b"])
        .node("mean", Op::Mean { axes: vec![0], keepdims: false }, ["all"])
        .output("mean", ["north", "south"]);
    let session = Session::from_graph(graph, mpcflow::builtins());
    let out =
        session.run([("a", InputValue::from(vec![1.0, 2.0, 3.0])), ("b", InputValue::from(vec![10.0, 20.0]))]).await?;
    let mean = out.values("mean").and_then(|v| v.first().copied()).ok_or("no output")?;
    println!("joint mean: {mean:.4}");
    println!(
        "online bytes per party: {:?}, rounds: {}",
        out.report.totals.bytes_sent, out.report.totals.critical_rounds
    );
    Ok(())
}
