//! The example pipelines under fss2pc over the registered `tcp` transport: mutually
//! authenticated TLS on loopback, every endpoint in this process, with the answers of the
//! in-memory run; and `mpcflow run --transport tcp`.

use crate::support::{root, rt};
use mpcflow::runtime::{InputValue, Session, SessionConfig};
use std::process::Command;

fn session(file: &str, transport: &str) -> Session {
    let cfg = SessionConfig { transport: transport.into(), ..Default::default() };
    Session::from_path(&root().join("graphs").join(file), mpcflow::builtins()).unwrap().with_config(cfg)
}

#[test]
fn example_graphs_over_tls_give_the_in_memory_answers() {
    let rt = rt();
    let mill = |t| session("millionaires.yaml", t);
    let inputs = || [("alice_wealth", InputValue::from(7_000_001i64)), ("bob_wealth", InputValue::from(7_000_000i64))];
    let over_tls = rt.block_on(mill("tcp").run(inputs())).unwrap();
    let in_mem = rt.block_on(mill("mem").run(inputs())).unwrap();
    assert_eq!(over_tls.values("alice_richer"), Some(vec![1.0]));
    assert_eq!(over_tls.report.totals.bytes_sent, in_mem.report.totals.bytes_sent);

    let col =
        |f: &str| mpcflow::io::input_arg::read_csv_column(&root().join("graphs/data").join(f), "systolic_bp").unwrap();
    let inputs = || [("north_bp", col("north.csv")), ("south_bp", col("south.csv"))];
    let hosp = |t| session("hospital_stats.yaml", t);
    let over_tls = rt.block_on(hosp("tcp").run(inputs())).unwrap();
    let in_mem = rt.block_on(hosp("mem").run(inputs())).unwrap();
    // fss2pc's results do not depend on its randomness (truncation is exact): equal answers.
    for name in ["n_patients", "n_high", "mean_bp", "var_bp"] {
        assert_eq!(over_tls.values(name), in_mem.values(name), "{name}");
    }
    for n in &over_tls.report.nodes {
        assert_eq!(n.bytes_sent, n.predicted_bytes_sent, "{}", n.name);
    }
}

#[test]
fn run_takes_the_transport_by_name() {
    let run = |transport: &str| {
        Command::new(env!("CARGO_BIN_EXE_mpcflow"))
            .current_dir(root())
            .args(["run", "graphs/millionaires.yaml", "--transport", transport, "--json"])
            .args(["--input", "alice_wealth=5000000", "--input", "bob_wealth=3000000"])
            .output()
            .unwrap()
    };
    let out = run("tcp");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["outputs"]["alice_richer"], serde_json::json!(1));
    let out = run("carrier-pigeon");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("unknown transport `carrier-pigeon` (available: mem, tcp)"), "{err}");
}
