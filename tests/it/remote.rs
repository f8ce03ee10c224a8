//! One process per endpoint, simulated in one test: each party and the dealer run their own
//! `Session` with only their own inputs (`run_as_party` / `run_as_dealer`) over the `mem`
//! transport. The handshake must agree on everything, or every endpoint stops and says why.

use crate::support::{root, rt};
use mpcflow::runtime::{Error, InputValue, Session, SessionConfig};
use mpcflow_sdk::transport::Transport;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

fn session_from(yaml: &str) -> Session {
    let cfg = SessionConfig { timeout: Duration::from_secs(10), ..Default::default() };
    Session::from_yaml(yaml, "remote.yaml", mpcflow::builtins()).unwrap().with_config(cfg)
}

fn millionaires() -> String {
    std::fs::read_to_string(root().join("graphs/millionaires.yaml")).unwrap()
}

/// Each endpoint's outcome: Ok(outputs as text) for parties, Ok("") for the dealer.
type Outcome = Result<HashMap<String, Vec<f64>>, Error>;

/// Runs alice, bob and the dealer concurrently, each from its own YAML and inputs.
fn run_three(yaml: [&str; 3], inputs: [Vec<(&str, InputValue)>; 2]) -> [Outcome; 3] {
    let rt = rt();
    let transport: Arc<dyn Transport> = Arc::new(mpcflow_transport_mem::MemTransport::new());
    let [ya, yb, yd] = yaml.map(session_from);
    let [ia, ib] = inputs.map(|v| v.into_iter().map(|(k, v)| (k.to_string(), v)).collect::<HashMap<_, _>>());
    let party = |s: Session, name: &'static str, inputs, t: Arc<dyn Transport>| async move {
        let out = s.run_as_party(name, t, inputs).await?;
        let fp = out.plan.fixed_point;
        Ok(out.outputs.into_iter().map(|(n, _, t)| (n, t.to_f64(fp))).collect())
    };
    rt.block_on(async {
        let a = tokio::spawn(party(ya, "alice", ia, transport.clone()));
        let b = tokio::spawn(party(yb, "bob", ib, transport.clone()));
        let t = transport.clone();
        let d = tokio::spawn(async move { yd.run_as_dealer(t).await.map(|_| HashMap::new()) });
        [a.await.unwrap(), b.await.unwrap(), d.await.unwrap()]
    })
}

#[test]
fn each_endpoint_runs_with_only_its_own_inputs() {
    let y = millionaires();
    let [a, b, d] = run_three(
        [&y, &y, &y],
        [vec![("alice_wealth", 5_000_000i64.into())], vec![("bob_wealth", 3_000_000i64.into())]],
    );
    assert_eq!(a.unwrap()["alice_richer"], vec![1.0]);
    assert_eq!(b.unwrap()["alice_richer"], vec![1.0]);
    d.unwrap();
}

#[test]
fn outputs_reach_only_the_parties_named() {
    let y = millionaires().replace("reveal_to: [alice, bob]", "reveal_to: [bob]");
    let [a, b, d] = run_three([&y, &y, &y], [vec![("alice_wealth", 1i64.into())], vec![("bob_wealth", 2i64.into())]]);
    assert!(a.unwrap().is_empty(), "alice learns nothing");
    assert_eq!(b.unwrap()["alice_richer"], vec![0.0]);
    d.unwrap();
}

#[test]
fn a_different_pipeline_on_one_side_stops_everyone_and_names_the_node() {
    let y = millionaires();
    let other = y.replace("op: gt", "op: lt");
    let [a, b, d] =
        run_three([&y, &other, &y], [vec![("alice_wealth", 1i64.into())], vec![("bob_wealth", 2i64.into())]]);
    let a = a.unwrap_err().to_string();
    assert!(a.contains("alice: cannot run with bob: bob runs a different pipeline: node `alice_richer`"), "{a}");
    let b = b.unwrap_err().to_string();
    assert!(b.contains("bob: cannot run with alice") || b.contains("bob: cannot run with dealer"), "{b}");
    let d = d.unwrap_err().to_string();
    assert!(d.contains("dealer: cannot run with bob: bob runs a different pipeline"), "{d}");
}

#[test]
fn another_partys_input_is_refused_before_connecting() {
    let y = millionaires();
    let s = session_from(&y);
    let inputs: HashMap<String, InputValue> = [("bob_wealth".to_string(), 3i64.into())].into();
    let e = s.encode_party_inputs("alice", inputs).unwrap_err().to_string();
    assert!(e.contains("input `bob_wealth` belongs to bob; alice cannot bring it"), "{e}");
    assert!(e.contains("no value given for input `alice_wealth` of alice"), "{e}");
    assert!(e.contains("remote.yaml:"), "located in the file: {e}");
}

#[test]
fn data_sizes_travel_in_the_handshake() {
    // Symbolic sizes differ per party: each side learns the other's from the handshake.
    let y = std::fs::read_to_string(root().join("graphs/hospital_stats.yaml")).unwrap();
    let north: Vec<f64> = (0..7).map(|i| 120.0 + i as f64).collect();
    let south: Vec<f64> = (0..4).map(|i| 150.0 + i as f64).collect();
    let rt = rt();
    let transport: Arc<dyn Transport> = Arc::new(mpcflow_transport_mem::MemTransport::new());
    let go = |name: &'static str, input: &'static str, v: Vec<f64>| {
        let (s, t) = (session_from(&y), transport.clone());
        async move {
            let inputs = [(input.to_string(), InputValue::from(v))].into();
            s.run_as_party(name, t, inputs).await
        }
    };
    let (n, s, d) = rt.block_on(async {
        let n = tokio::spawn(go("north", "north_bp", north.clone()));
        let s = tokio::spawn(go("south", "south_bp", south.clone()));
        let (ds, t) = (session_from(&y), transport.clone());
        let d = tokio::spawn(async move { ds.run_as_dealer(t).await });
        (n.await.unwrap(), s.await.unwrap(), d.await.unwrap())
    });
    let (n, s) = (n.unwrap(), s.unwrap());
    d.unwrap();
    let count = |r: &mpcflow::runtime::remote::PartyRun| {
        r.outputs.iter().find(|o| o.0 == "n_patients").map(|o| o.2.to_f64(r.plan.fixed_point))
    };
    assert_eq!(count(&n), Some(vec![11.0]));
    assert_eq!(count(&n), count(&s));
}

/// Runs alice (with `alice_inputs`), bob and the dealer on a pipeline where alice owns a bit,
/// a fixed and an int input; returns what bob and the dealer report.
fn peers_of_a_refused_alice(alice_inputs: Vec<(&str, InputValue)>) -> (String, [String; 2]) {
    let y = "version: 1\nparties: [alice, bob]\nprotocol: fss2pc\ninputs:\n  \
             a: { owner: alice, dtype: bit, shape: [3] }\n  f: { owner: alice, dtype: fixed, shape: [2] }\n  \
             n: { owner: alice, dtype: int, shape: [2] }\n  b: { owner: bob, dtype: bit, shape: [3] }\n\
             nodes:\n  c: { op: xor, inputs: [a, b] }\n  g: { op: add, inputs: [f, f] }\n  m: { op: add, inputs: [n, n] }\n\
             outputs:\n  c: { reveal_to: [alice, bob] }\n  g: { reveal_to: [alice] }\n  m: { reveal_to: [alice] }\n";
    let bob = vec![("b", InputValue::from(vec![1.0, 0.0, 1.0]))];
    let [a, b, d] = run_three([y, y, y], [alice_inputs, bob]);
    let a = a.unwrap_err().to_string();
    let [b, d] = [b.unwrap_err().to_string(), d.unwrap_err().to_string()];
    (a, [b, d])
}

#[test]
fn a_refused_input_reaches_the_peers_as_its_name_never_its_value_or_path() {
    let good_a = || ("a", InputValue::from(vec![1.0, 0.0, 1.0]));
    let good_f = || ("f", InputValue::from(vec![1.5, 2.5]));
    let good_n = || ("n", InputValue::from(vec![3i64, 4]));
    let tensor = mpcflow_sdk::Tensor { dtype: mpcflow_sdk::DType::Int, shape: vec![2], data: vec![987654, 1] };
    // (alice's inputs, the input named, the secret that must stay with alice)
    type Case<'a> = (Vec<(&'a str, InputValue)>, &'a str, &'a str);
    let cases: Vec<Case> = vec![
        (vec![("a", vec![1.0, 0.0, 987654.0].into()), good_f(), good_n()], "input `a`", "987654"),
        (vec![("a", vec![1i64, 0, 987654].into()), good_f(), good_n()], "input `a`", "987654"),
        (vec![good_a(), ("f", vec![1.5, 9.876543e20].into()), good_n()], "input `f`", "9876543"),
        (vec![good_a(), ("f", vec![1.5, f64::NAN, 9876.54].into()), good_n()], "input `f`", "NaN"),
        (vec![good_a(), good_f(), ("n", vec![3.0, 987654.25].into())], "input `n`", "987654"),
        (vec![good_a(), good_f(), ("n", vec![3.0, 9.876543e30].into())], "input `n`", "9876543"),
        (vec![good_a(), ("f", tensor.into()), good_n()], "input `f`", "the tensor is int"),
        (vec![good_a(), good_f()], "input `n`", "no value given"),
        (vec![good_a(), good_f(), good_n(), ("secret_987654", 1.0.into())], "the pipeline", "987654"),
    ];
    for (inputs, site, secret) in cases {
        let (alice, peers) = peers_of_a_refused_alice(inputs);
        assert!(alice.contains(secret), "alice keeps the full reason: {alice}");
        assert!(alice.contains("remote.yaml:"), "alice's error is located in her file: {alice}");
        for (who, e) in ["bob", "dealer"].iter().zip(&peers) {
            assert!(e.contains(&format!("{who}: stopped because alice failed")), "{who}: {e}");
            assert!(e.contains(site), "{who} hears which input: {e}");
            assert!(!e.contains(secret), "{who} must not hear `{secret}`: {e}");
            assert!(!e.contains("remote.yaml"), "{who} must not hear alice's file: {e}");
        }
    }
}

#[test]
fn a_different_input_declaration_is_described_as_a_pipeline_file_writes_it() {
    let y = millionaires();
    let other = y.replace(
        "alice_wealth: { owner: alice, dtype: int, shape: [] }",
        "alice_wealth: { owner: alice, dtype: fixed, shape: [] }",
    );
    assert_ne!(y, other);
    let [a, _, _] =
        run_three([&y, &other, &y], [vec![("alice_wealth", 1i64.into())], vec![("bob_wealth", 2i64.into())]]);
    let a = a.unwrap_err().to_string();
    assert!(a.contains("input `alice_wealth`"), "{a}");
    assert!(a.contains("owner alice, int []") && a.contains("owner alice, fixed []"), "{a}");
    assert!(!a.contains("Fixed(") && !a.contains("Int "), "no Rust debug output: {a}");
}
