//! The `mpcflow` binary and the embedding example, run as a user runs them.

use crate::support::root;
use std::process::{Command, Output};

fn mpcflow(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_mpcflow")).current_dir(root()).args(args).output().unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// `mpcflow run graphs/hospital_stats.yaml` on the example data, printing JSON, with `extra`.
fn run_hospitals(extra: &[&str]) -> Output {
    let mut args = vec![
        "run",
        "graphs/hospital_stats.yaml",
        "--input",
        "north_bp=@graphs/data/north.csv:systolic_bp",
        "--input",
        "south_bp=@graphs/data/south.csv:systolic_bp",
        "--json",
    ];
    args.extend_from_slice(extra);
    mpcflow(&args)
}

#[test]
fn run_millionaires_prints_who_is_richer() {
    let out = mpcflow(&[
        "run",
        "graphs/millionaires.yaml",
        "--input",
        "alice_wealth=5000000",
        "--input",
        "bob_wealth=3000000",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "alice_richer = 1 (true)    (revealed to alice, bob)\n");
    assert!(!text(&out.stderr).contains("INSECURE"), "the example runs the secure protocol");
    let out = mpcflow(&[
        "run",
        "graphs/millionaires.yaml",
        "--protocol",
        "ref",
        "--input",
        "alice_wealth=1",
        "--input",
        "bob_wealth=2",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "alice_richer = 0 (false)    (revealed to alice, bob)\n");
    assert!(text(&out.stderr).contains("INSECURE"), "ref warns loudly");
}

#[test]
fn run_json_output_dir_and_report() {
    let dir = std::env::temp_dir().join(format!("mpcflow-cli-{}", std::process::id()));
    let report = dir.join("report.json");
    let out = run_hospitals(&["--output-dir", dir.to_str().unwrap(), "--report", report.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["outputs"]["n_patients"], serde_json::json!(413));
    assert!(doc["outputs"]["mean_bp"].is_f64());
    assert_eq!(doc["revealed_to"]["n_high"], serde_json::json!(["north", "south"]));
    for name in ["n_patients", "mean_bp", "var_bp", "n_high"] {
        let bytes = std::fs::read(dir.join(format!("{name}.npy"))).unwrap();
        assert!(bytes.starts_with(b"\x93NUMPY"), "{name}.npy");
    }
    let rep: serde_json::Value = serde_json::from_slice(&std::fs::read(&report).unwrap()).unwrap();
    let nodes = rep["nodes"].as_array().unwrap();
    assert!(nodes.iter().any(|n| n["name"] == "mean_bp" && n["wall_s"].is_f64()));
    for n in nodes {
        assert_eq!(n["rounds"], n["predicted_rounds"], "{}", n["name"]);
        assert_eq!(n["bytes_sent"], n["predicted_bytes_sent"], "{}", n["name"]);
        assert_eq!(n["dealer_bytes"], n["predicted_dealer_bytes"], "{}", n["name"]);
    }
    assert_eq!(rep["protocol"], "fss2pc");
    // Layers: the plan's nodes added up by the pipeline node they came from.
    let layers = rep["layers"].as_array().unwrap();
    let origins: std::collections::BTreeSet<&str> = nodes.iter().map(|n| n["origin"].as_str().unwrap()).collect();
    assert_eq!(layers.len(), origins.len(), "one layer per pipeline node");
    let count: u64 = layers.iter().map(|l| l["nodes"].as_u64().unwrap()).sum();
    assert_eq!(count, nodes.len() as u64);
    for party in 0..2 {
        let sum =
            |rows: &[serde_json::Value], key: &str| rows.iter().map(|r| r[key][party].as_u64().unwrap()).sum::<u64>();
        assert_eq!(sum(layers, "bytes_sent"), sum(nodes, "bytes_sent"));
        assert_eq!(sum(layers, "dealer_bytes"), sum(nodes, "dealer_bytes"));
        assert_eq!(sum(layers, "bytes_sent"), rep["totals"]["bytes_sent"][party].as_u64().unwrap());
    }
    let mean = layers.iter().find(|l| l["name"] == "mean_bp").unwrap();
    assert!(mean["node_s"].is_f64() && mean["critical_rounds"].as_u64().unwrap() >= 1, "{mean}");
    std::fs::remove_dir_all(&dir).ok();
}

/// `--deal-first` deals all the material before the parties start: the same results, every
/// frame as planned, and an online phase (the report's `online_wall_s`) that starts after the
/// dealer has finished, so it is shorter than the run. `--deal-first=SIZE` below the material
/// deals and runs it in phases, with the same results.
#[test]
fn run_deal_first_times_the_online_phase_alone() {
    let dir = std::env::temp_dir().join(format!("mpcflow-cli-deal-first-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let report = dir.join("report.json");
    let out = run_hospitals(&["--deal-first", "--report", report.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["outputs"]["n_patients"], serde_json::json!(413));
    let rep: serde_json::Value = serde_json::from_slice(&std::fs::read(&report).unwrap()).unwrap();
    let (wall, online, dealer) = (
        rep["wall_s"].as_f64().unwrap(),
        rep["online_wall_s"].as_f64().unwrap(),
        rep["dealer_wall_s"].as_f64().unwrap(),
    );
    assert!(online + dealer <= wall + 1e-3, "online {online} s after dealing {dealer} s, within the run's {wall} s");
    for n in rep["nodes"].as_array().unwrap() {
        assert_eq!(n["dealer_bytes"], n["predicted_dealer_bytes"], "{}", n["name"]);
    }
    assert_eq!(doc["online_phases"], serde_json::json!(1), "the hospitals' 97 KiB of material fit in memory");
    // With less room than the material, it is dealt and run in phases: the same results.
    let out = run_hospitals(&["--deal-first=16KiB", "--report", report.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let phased: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(phased["outputs"], doc["outputs"]);
    assert!(phased["online_phases"].as_u64().unwrap() > 1, "{phased}");
    let rep: serde_json::Value = serde_json::from_slice(&std::fs::read(&report).unwrap()).unwrap();
    let (wall, online, dealer) = (
        rep["wall_s"].as_f64().unwrap(),
        rep["online_wall_s"].as_f64().unwrap(),
        rep["dealer_wall_s"].as_f64().unwrap(),
    );
    assert!(
        online + dealer <= wall + 1e-3,
        "phases: online {online} s and dealing {dealer} s within the run's {wall} s"
    );
    let out = run_hospitals(&["--deal-first=lots"]);
    assert!(
        !out.status.success() && text(&out.stderr).contains("--deal-first=lots: give a size"),
        "{}",
        text(&out.stderr)
    );
    let out = mpcflow(&["run", "graphs/hospital_stats.yaml", "--deal-first", "--material", dir.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("--deal-first") && text(&out.stderr).contains("--material"),
        "{}",
        text(&out.stderr)
    );
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn run_errors_are_clear_and_exit_non_zero() {
    let out = mpcflow(&["run", "graphs/millionaires.yaml", "--input", "alice_wealth=5"]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains(
            "graphs/millionaires.yaml:10:3: input `bob_wealth`: no value given for input `bob_wealth` of bob"
        ),
        "{}",
        text(&out.stderr)
    );
    let out = mpcflow(&[
        "run",
        "graphs/millionaires.yaml",
        "--input",
        "alice_wealth=5",
        "--input",
        "bob_wealth=@nowhere.csv:x",
    ]);
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("--input bob_wealth: cannot read nowhere.csv"), "{}", text(&out.stderr));
    let out = mpcflow(&[
        "run",
        "graphs/millionaires.yaml",
        "--protocol",
        "nope",
        "--input",
        "alice_wealth=1",
        "--input",
        "bob_wealth=2",
    ]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("--protocol nope: unknown protocol (available: fss2pc, ref, rep3)"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn plan_prints_costs_and_dot() {
    let out = mpcflow(&[
        "plan",
        "graphs/hospital_stats.yaml",
        "--protocol",
        "ref",
        "--dim",
        "n_north=240",
        "--dim",
        "n_south=173",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let s = text(&out.stdout);
    assert!(s.contains("TOTAL"), "{s}");
    assert!(s.contains("online latency: 1 round on the critical path"), "{s}");
    let out = mpcflow(&["plan", "graphs/hospital_stats.yaml", "--dot"]);
    let dot = text(&out.stdout);
    assert!(
        dot.starts_with("digraph \"hospital_stats\" {") && dot.contains("->") && dot.trim_end().ends_with('}'),
        "{dot}"
    );
    let out = mpcflow(&["plan", "graphs/millionaires.yaml", "--protocol", "ref", "--json"]);
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["total"]["online_bytes"], serde_json::json!([8, 8]));
}

#[test]
fn deal_then_run_from_material_once() {
    let dir = std::env::temp_dir().join(format!("mpcflow-cli-deal-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let d = dir.to_str().unwrap();
    let out = mpcflow(&["deal", "graphs/millionaires.yaml", "--out", d]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("alice.mpcmat") && text(&out.stdout).contains("bob.mpcmat"),
        "{}",
        text(&out.stdout)
    );
    let run = || {
        mpcflow(&[
            "run",
            "graphs/millionaires.yaml",
            "--material",
            d,
            "--input",
            "alice_wealth=7",
            "--input",
            "bob_wealth=9",
        ])
    };
    let out = run();
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "alice_richer = 0 (false)    (revealed to alice, bob)\n");
    let out = run();
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("already used"), "{}", text(&out.stderr));
    // Symbolic dimensions must be given: the material depends on them.
    let out = mpcflow(&["deal", "graphs/hospital_stats.yaml", "--out", d]);
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("--dim n_north=SIZE --dim n_south=SIZE"), "{}", text(&out.stderr));
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn check_summarises_a_good_file() {
    let out = mpcflow(&["check", "graphs/hospital_stats.yaml"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let s = text(&out.stdout);
    assert!(s.contains("graphs/hospital_stats.yaml: ok") && s.contains("fingerprint:"), "{s}");
}

#[test]
fn embed_host_example_builds_and_runs() {
    // `cargo test` builds the examples next to the test binaries: target/<profile>/examples.
    let exe = std::env::current_exe().unwrap();
    let profile_dir = exe.parent().and_then(|d| d.parent()).unwrap();
    let example = profile_dir.join("examples").join(format!("embed_host{}", std::env::consts::EXE_SUFFIX));
    assert!(example.exists(), "{} was not built", example.display());
    let out = Command::new(example).output().unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let s = text(&out.stdout);
    assert!(s.contains("alice is richer: false"), "{s}");
    assert!(s.contains("joint mean: 7.2000"), "{s}");
}

#[test]
fn bench_reports_less_dealer_material_over_fewer_compare_bits() {
    let dealer_bytes = |bits: &str| {
        let out = mpcflow(&[
            "bench",
            "--protocol",
            "fss2pc",
            "--repeat",
            "1",
            "--json",
            "--compare-bits",
            bits,
            "relu:2000",
            "cmp:2000",
        ]);
        assert!(out.status.success(), "{}", text(&out.stderr));
        text(&out.stdout)
            .lines()
            .map(|l| {
                let doc: serde_json::Value = serde_json::from_str(l).unwrap();
                assert_eq!(doc["runs"], 1);
                // The online phase alone, and its estimates on a LAN and a WAN (which add at
                // least the critical path's round trips).
                let (online, lan, wan) =
                    (doc["online_s"].as_f64(), doc["lan_online_s"].as_f64(), doc["wan_online_s"].as_f64());
                let (online, lan, wan) = (online.unwrap(), lan.unwrap(), wan.unwrap());
                let rounds = doc["critical_rounds"].as_f64().unwrap();
                assert!(online > 0.0 && lan >= online + rounds * 0.5e-3 && wan >= online + rounds * 80e-3, "{doc}");
                (
                    doc["scenario"].as_str().unwrap().to_string(),
                    doc["dealer_bytes_per_element_per_party"].as_f64().unwrap(),
                )
            })
            .collect::<Vec<_>>()
    };
    let (full, narrow) = (dealer_bytes("64"), dealer_bytes("25"));
    assert_eq!(full.len(), 2);
    for ((scenario, wide), (same, small)) in full.iter().zip(&narrow) {
        assert_eq!(scenario, same);
        // One tree level fewer per bit: at 2000 elements on `lan` both take the two-round form,
        // whose half-tree keys have one 16-byte correction word per level: 39 levels fewer.
        assert!((wide - small - 39.0 * 16.0).abs() < 0.5, "{scenario}: {wide} B at 64 bits, {small} B at 25");
    }
    let out = mpcflow(&["bench", "--compare-bits", "1", "relu:10"]);
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("--compare-bits"), "{}", text(&out.stderr));
}

#[test]
fn threads_are_a_setting_of_every_computing_command() {
    let out = mpcflow(&[
        "run",
        "graphs/millionaires.yaml",
        "--threads",
        "1",
        "--input",
        "alice_wealth=5",
        "--input",
        "bob_wealth=3",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("alice_richer = 1"), "{}", text(&out.stdout));
    let out = mpcflow(&["run", "graphs/millionaires.yaml", "--threads", "0", "--input", "alice_wealth=5"]);
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("--threads must be at least 1"), "{}", text(&out.stderr));
    for cmd in ["party", "dealer", "deal", "bench"] {
        let help = text(&mpcflow(&[cmd, "--help"]).stdout);
        assert!(help.contains("--threads <N>"), "{cmd}: {help}");
    }
}

#[test]
fn a_protocol_named_on_the_command_line_is_reported_as_the_option() {
    for cmd in ["check", "plan"] {
        let out = mpcflow(&[cmd, "graphs/millionaires.yaml", "--protocol", "yao3000"]);
        assert!(!out.status.success());
        let err = text(&out.stderr);
        assert!(err.contains("--protocol yao3000: unknown protocol (available: fss2pc, ref, rep3)"), "{cmd}: {err}");
        assert!(!err.contains("millionaires.yaml:"), "not located in the file: {err}");
        // A protocol for another number of parties: the option is at fault, not the file's line.
        let out = mpcflow(&[cmd, "graphs/millionaires.yaml", "--protocol", "rep3"]);
        let err = text(&out.stderr);
        assert!(!out.status.success());
        assert!(
            err.contains("--protocol rep3: it runs with exactly 3 parties, the graph declares 2 (alice, bob)"),
            "{cmd}: {err}"
        );
        assert!(!err.contains("millionaires.yaml:"), "not located in the file: {err}");
    }
}
