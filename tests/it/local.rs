//! Local evaluation (`runtime/src/plan/local.rs`): what a party computes from its own data
//! alone, it computes in the clear, and the value enters the protocol through an input gate.
//! Checked against `ref` and against the same runs with every op under the protocol; the plan
//! shows who computes what; a local node's failure stops every party; dealing first, in phases
//! or from files, skips local nodes; a data owner's outputs from one party's data unmask.

use crate::support::rt;
use mpcflow::runtime::plan::{Plan, PlanOptions};
use mpcflow::runtime::{InputValue, RunOutput, Session, SessionConfig};
use mpcflow_sdk::graph::{Dim, GraphSpec};
use mpcflow_sdk::protocol::NodeKind;
use mpcflow_sdk::{DType, Op};
use proptest::prelude::*;

fn session(g: &GraphSpec, protocol: &str, all_under_protocol: bool) -> Session {
    let cfg = SessionConfig { protocol: Some(protocol.into()), all_under_protocol, ..Default::default() };
    Session::from_graph(g.clone(), mpcflow::builtins()).with_config(cfg)
}

fn run(g: &GraphSpec, protocol: &str, all_under_protocol: bool, inputs: &[(String, InputValue)]) -> RunOutput {
    rt().block_on(session(g, protocol, all_under_protocol).run(inputs.to_vec()))
        .unwrap_or_else(|e| panic!("{protocol}: {e}"))
}

fn plan(g: &GraphSpec, protocol: &str, all_under_protocol: bool, inputs: &[(String, InputValue)]) -> Plan {
    let shapes = inputs.iter().map(|(k, v)| (k.clone(), v.shape().to_vec())).collect();
    session(g, protocol, all_under_protocol).plan(PlanOptions { input_shapes: shapes, ..Default::default() }).unwrap()
}

fn real(v: &[f64]) -> InputValue {
    InputValue::Real { shape: vec![v.len()], values: v.to_vec() }
}

/// The party that computes node `name` in the clear, if any.
fn local_party(p: &Plan, name: &str) -> Option<String> {
    let n = p.nodes.iter().find(|n| n.desc.name == name).unwrap_or_else(|| panic!("no node `{name}`"));
    n.local.map(|q| p.parties[q.index()].clone())
}

/// `y = f(a) + b`: `f(a)` is alice's alone, the sum is not.
fn unary_then_mixed(op: Op, n: usize) -> GraphSpec {
    GraphSpec::new("t", ["alice", "bob"])
        .input("a", "alice", DType::Fixed, vec![Dim::Fixed(n)])
        .input("b", "bob", DType::Fixed, vec![Dim::Fixed(n)])
        .node("fa", op, ["a"])
        .node("y", Op::Add, ["fa", "b"])
        .output("y", ["alice", "bob"])
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 6, max_shrink_iters: 10, ..ProptestConfig::default() })]

    /// A function of one party's input is that party's exact plaintext value: fss2pc's result
    /// equals `ref`'s word for word (under the protocol, exp or gelu would carry the lookup
    /// tables' error), and the party computes it in the clear.
    #[test]
    fn a_function_of_one_partys_input_is_exact(
        a in proptest::collection::vec(0.5f64..8.0, 8),
        b in proptest::collection::vec(-100.0f64..100.0, 8),
    ) {
        let inputs = vec![("a".to_string(), real(&a)), ("b".to_string(), real(&b))];
        for op in [Op::Exp, Op::Gelu, Op::Sigmoid, Op::Tanh, Op::Sqrt, Op::Reciprocal, Op::Relu, Op::Scale { factor: 0.3 }] {
            let g = unary_then_mixed(op.clone(), a.len());
            let want = run(&g, "ref", true, &inputs);
            for protocol in ["fss2pc", "ref"] {
                let got = run(&g, protocol, false, &inputs);
                prop_assert_eq!(&got.get("y").unwrap().tensor, &want.get("y").unwrap().tensor, "{} {:?}", protocol, op);
                let p = plan(&g, protocol, false, &inputs);
                prop_assert_eq!(local_party(&p, "fa"), Some("alice".to_string()), "{:?}", op);
                prop_assert_eq!(local_party(&p, "y"), None);
                // `a` is read by `fa` alone: no input gate runs for it.
                prop_assert_eq!(local_party(&p, "a"), Some("alice".to_string()));
                prop_assert!(p.nodes.iter().any(|n| n.desc.name == "fa#shared" && n.local.is_none()));
            }
        }
    }
}

/// The hospitals' statistics as `graphs/hospital_stats.yaml` computes them, on `n` and `m`
/// rows: the comparison with the threshold and the count of those above it distribute over
/// the concatenation of the two hospitals' rows.
fn hospitals(n: usize, m: usize) -> (GraphSpec, Vec<(String, InputValue)>) {
    let g = GraphSpec::new("hosp", ["north", "south"])
        .input("north_bp", "north", DType::Fixed, vec![Dim::Fixed(n)])
        .input("south_bp", "south", DType::Fixed, vec![Dim::Fixed(m)])
        .constant("threshold", DType::Fixed, vec![], vec![140.0])
        .node("all_bp", Op::Concat { axis: 0 }, ["north_bp", "south_bp"])
        .node("mean_bp", Op::Mean { axes: vec![0], keepdims: false }, ["all_bp"])
        .node("high", Op::Gt, ["all_bp", "threshold"])
        .node("n_high", Op::Sum { axes: vec![0], keepdims: false }, ["high"])
        .node("low", Op::Lt, ["all_bp", "threshold"])
        .node("bands", Op::Histogram { edges: vec![100.0, 120.0, 140.0, 160.0] }, ["all_bp"])
        .node("top", Op::Max { axis: Some(0) }, ["all_bp"])
        .node("bottom", Op::Min { axis: Some(-1) }, ["all_bp"])
        .output("bands", ["north", "south"])
        .output("top", ["north", "south"])
        .output("bottom", ["south"])
        .output("mean_bp", ["north", "south"])
        .output("n_high", ["north", "south"])
        .output("low", ["north"]);
    let rows = |k: usize, at: f64| (0..k).map(|i| at + ((i * 37) % 41) as f64 - 20.0 + 0.25).collect::<Vec<_>>();
    let inputs = vec![("north_bp".to_string(), real(&rows(n, 135.0))), ("south_bp".to_string(), real(&rows(m, 142.0)))];
    (g, inputs)
}

#[test]
fn comparisons_over_two_hospitals_rows_are_computed_by_each_hospital() {
    let (g, inputs) = hospitals(300, 200);
    let want = run(&g, "ref", true, &inputs);
    let local = run(&g, "fss2pc", false, &inputs);
    let secure = run(&g, "fss2pc", true, &inputs);
    for name in ["n_high", "low", "bands", "top", "bottom"] {
        assert_eq!(local.get(name).unwrap().tensor, want.get(name).unwrap().tensor, "{name}");
        assert_eq!(secure.get(name).unwrap().tensor, want.get(name).unwrap().tensor, "{name}");
    }
    let (m, w) = (local.values("mean_bp").unwrap()[0], want.values("mean_bp").unwrap()[0]);
    assert!((m - w).abs() < 1e-3, "mean {m} against {w}");

    // The run's report says who computed what in the clear, and that it sent nothing.
    let reported = local.report.nodes.iter().find(|n| n.name == "high/1.gt").expect("reported");
    assert_eq!(reported.local.as_deref(), Some("south"));
    assert!(reported.bytes_sent.iter().all(|&b| b == 0) && reported.rounds == 0);
    assert!(local.report.nodes.iter().all(|n| n.bytes_sent == n.predicted_bytes_sent), "measured as planned");
    let p = plan(&g, "fss2pc", false, &inputs);
    // Each hospital compares its own rows and counts them; the count enters as one word.
    assert_eq!(local_party(&p, "high/0.gt").as_deref(), Some("north"));
    assert_eq!(local_party(&p, "high/1.gt").as_deref(), Some("south"));
    assert_eq!(local_party(&p, "n_high/0.sum").as_deref(), Some("north"));
    assert_eq!(local_party(&p, "n_high/1.sum").as_deref(), Some("south"));
    // Each hospital bins its own rows, and finds its highest and lowest: one comparison each
    // is left to the protocol.
    assert_eq!(local_party(&p, "bands/1.histogram").as_deref(), Some("south"));
    assert_eq!(local_party(&p, "top/0.max").as_deref(), Some("north"));
    assert_eq!(local_party(&p, "bottom/1.min").as_deref(), Some("south"));
    assert_eq!(local_party(&p, "top"), None, "the two maxima are compared under the protocol");
    assert!(p.nodes.iter().any(|n| n.desc.name == "top/1.max#shared"));
    let gate = p.nodes.iter().find(|n| n.desc.name == "n_high/0.sum#shared").expect("the count's input gate");
    assert!(gate.desc.output.shape.is_empty(), "the count enters as one word");
    // `high` itself is read by nothing once the count is rewritten: it is gone, and so are its
    // input gates. No comparison is left to the protocol.
    assert!(p.nodes.iter().all(|n| n.desc.name != "high"), "the unread concatenation was pruned");
    let compared = |p: &Plan| {
        p.nodes.iter().filter(|n| n.local.is_none() && matches!(n.desc.kind, NodeKind::Op(Op::Gt | Op::Lt))).count()
    };
    assert_eq!(compared(&p), 0);
    assert!(compared(&plan(&g, "fss2pc", true, &inputs)) > 0);
    let dealt = |p: &Plan| p.total_cost().dealer_bytes.iter().sum::<u64>();
    let all = plan(&g, "fss2pc", true, &inputs);
    assert!(dealt(&p) * 10 < dealt(&all), "material: {} against {} under the protocol", dealt(&p), dealt(&all));
    assert!(p.nodes.iter().all(|n| n.local.is_none() || n.cost.form.contains("in the clear on")));
    assert_ne!(p.fingerprint, all.fingerprint, "the choice is part of the plan");
}

#[test]
fn a_broken_contract_in_a_local_node_stops_every_party_and_names_the_node() {
    let g = GraphSpec::new("t", ["alice", "bob"])
        .input("a", "alice", DType::Fixed, vec![Dim::Fixed(3)])
        .input("b", "bob", DType::Fixed, vec![Dim::Fixed(3)])
        .node("r", Op::Relu, ["a"])
        .node_range("r", 0.0, 1.0)
        .node("y", Op::Add, ["r", "b"])
        .output("y", ["alice", "bob"]);
    let inputs = vec![("a".to_string(), real(&[0.5, 12345.5, 0.25])), ("b".to_string(), real(&[1.0, 2.0, 3.0]))];
    let p = plan(&g, "fss2pc", false, &inputs);
    assert_eq!(local_party(&p, "r").as_deref(), Some("alice"));
    let err = rt().block_on(session(&g, "fss2pc", false).run(inputs.clone())).unwrap_err().to_string();
    assert!(err.contains("alice") && err.contains("node `r`") && err.contains("range"), "{err}");
    // The same refusal as `ref`'s.
    let under_ref = rt().block_on(session(&g, "ref", true).run(inputs)).unwrap_err().to_string();
    assert!(under_ref.contains("node `r`") && under_ref.contains("range"), "{under_ref}");
}

#[test]
fn dealing_first_in_phases_and_from_files_skips_local_nodes() {
    let (g, inputs) = hospitals(3000, 2000);
    let want = run(&g, "fss2pc", false, &inputs);
    let phased = SessionConfig {
        protocol: Some("fss2pc".into()),
        deal_first: true,
        deal_first_phase_bytes: 1,
        ..Default::default()
    };
    let s = Session::from_graph(g.clone(), mpcflow::builtins()).with_config(phased);
    let got = rt().block_on(s.run(inputs.clone())).unwrap();
    assert!(got.report.online_phases > 1, "{} phases", got.report.online_phases);
    for name in ["n_high", "low", "bands", "top", "bottom"] {
        assert_eq!(got.get(name).unwrap().tensor, want.get(name).unwrap().tensor, "{name}");
    }

    let dir = std::env::temp_dir().join(format!("mpcflow-local-mat-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let s = session(&g, "fss2pc", false);
    let p = plan(&g, "fss2pc", false, &inputs);
    s.deal(&p, &dir).unwrap();
    let cfg = SessionConfig { protocol: Some("fss2pc".into()), material_dir: Some(dir.clone()), ..Default::default() };
    let from_files = Session::from_graph(g.clone(), mpcflow::builtins()).with_config(cfg);
    let got = rt().block_on(from_files.run(inputs)).unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    for name in ["n_high", "low", "bands", "top", "bottom"] {
        assert_eq!(got.get(name).unwrap().tensor, want.get(name).unwrap().tensor, "{name}");
    }
}

#[test]
fn an_owner_gets_an_output_computed_from_one_partys_data() {
    // `e` is alice's alone: it enters through its gate, and the parties mask it for olivia.
    let g = GraphSpec::new("t", ["alice", "bob"])
        .owners(["olivia"])
        .input("a", "alice", DType::Fixed, vec![Dim::Fixed(4)])
        .node("e", Op::Exp, ["a"])
        .output("e", ["olivia", "bob"]);
    let inputs = vec![("a".to_string(), real(&[0.5, -1.0, 2.0, 0.0]))];
    let want = run(&g, "ref", true, &inputs);
    for protocol in ["fss2pc", "rep3"] {
        let g = if protocol == "rep3" {
            let mut g = g.clone();
            g.parties.push("carol".into());
            g
        } else {
            g.clone()
        };
        let got = run(&g, protocol, false, &inputs);
        let e = got.get("e").unwrap();
        assert_eq!(e.tensor, want.get("e").unwrap().tensor, "{protocol}");
        assert!(e.parties.contains(&"olivia".to_string()), "{protocol}: {:?}", e.parties);
        assert_eq!(local_party(&plan(&g, protocol, false, &inputs), "e").as_deref(), Some("alice"));
    }
}

#[test]
fn comparisons_over_deeply_nested_concatenations_plan_and_are_exact() {
    // 20 levels of concatenation, deeper than a lowering may nest: the rewrite over the pieces
    // is no lowering, and each level's pieces are each party's own.
    let mut g = GraphSpec::new("t", ["alice", "bob"]).constant("t", DType::Fixed, vec![], vec![1.5]);
    let mut inputs = vec![];
    let mut whole = String::new();
    for i in 0..20 {
        let (name, owner) = (format!("x{i}"), if i % 2 == 0 { "alice" } else { "bob" });
        g = g.input(&name, owner, DType::Fixed, vec![Dim::Fixed(3)]);
        inputs.push((name.clone(), real(&[i as f64 * 0.25, 1.5, 3.0 - i as f64 * 0.2])));
        whole = if i == 0 {
            name
        } else {
            let c = format!("c{i}");
            g = g.node(&c, Op::Concat { axis: 0 }, [whole.as_str(), name.as_str()]);
            c
        };
    }
    let g = g.node("y", Op::Ge, [whole.as_str(), "t"]).output("y", ["alice", "bob"]);
    let want = run(&g, "ref", true, &inputs);
    let got = run(&g, "fss2pc", false, &inputs);
    assert_eq!(got.get("y").unwrap().tensor, want.get("y").unwrap().tensor);
    let p = plan(&g, "fss2pc", false, &inputs);
    let under_protocol =
        p.nodes.iter().filter(|n| n.local.is_none() && matches!(n.desc.kind, NodeKind::Op(Op::Ge))).count();
    assert_eq!(under_protocol, 0, "every comparison is a party's own");
}

#[test]
fn three_parties_rows_reduce_without_clashing_names_and_a_declared_range_binds_each_piece() {
    let mut g = GraphSpec::new("t", ["alice", "bob", "carol"]);
    let mut inputs = vec![];
    for (i, p) in ["alice", "bob", "carol"].iter().enumerate() {
        let name = format!("x{i}");
        g = g.input(&name, p, DType::Fixed, vec![Dim::Fixed(4)]);
        inputs.push((name, real(&[i as f64, 2.5, -1.0 - i as f64, 0.75])));
    }
    let g = g
        .constant("two", DType::Fixed, vec![], vec![2.0])
        .node("all", Op::Concat { axis: 0 }, ["x0", "x1", "x2"])
        .node("top", Op::Max { axis: Some(0) }, ["all"])
        .node("n", Op::Sum { axes: vec![], keepdims: false }, ["all"])
        .node("scaled", Op::Mul, ["all", "two"])
        .output("top", ["alice", "bob", "carol"])
        .output("n", ["alice"])
        .output("scaled", ["bob"]);
    let want = run(&g, "ref", true, &inputs);
    let got = run(&g, "rep3", false, &inputs);
    for name in ["top", "n", "scaled"] {
        assert_eq!(got.get(name).unwrap().tensor, want.get(name).unwrap().tensor, "{name}");
    }
    let p = plan(&g, "rep3", false, &inputs);
    let mut names: Vec<&str> = p.nodes.iter().map(|n| n.desc.name.as_str()).collect();
    names.sort_unstable();
    let before = names.len();
    names.dedup();
    assert_eq!(names.len(), before, "every plan node has its own name");
    assert_eq!(local_party(&p, "top/2.max").as_deref(), Some("carol"));

    // `scaled` is declared within [-4, 4]: each party's piece holds 2.5 · 2 = 5, and the first
    // to check it in the clear stops the run, naming its piece.
    let mut ranged = g.clone().node_range("scaled", -4.0, 4.0);
    ranged.parties = g.parties.clone();
    let err = rt().block_on(session(&ranged, "rep3", false).run(inputs.clone())).unwrap_err().to_string();
    assert!(err.contains("node `scaled/") && err.contains("range"), "{err}");
    let under_ref = rt().block_on(session(&ranged, "ref", true).run(inputs)).unwrap_err().to_string();
    assert!(under_ref.contains("`scaled`") && under_ref.contains("range"), "{under_ref}");
}
