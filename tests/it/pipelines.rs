//! The example pipelines under `ref` give the answers a plaintext computation gives.

use crate::support::{root, rt};
use mpcflow::io::input_arg::read_csv_column;
use mpcflow::runtime::{InputValue, Session, SessionConfig};
use mpcflow_sdk::FixedPoint;

/// A session on a file from graphs/ under `ref`, whatever protocol the file names.
fn under_ref(file: &str) -> Session {
    let cfg = SessionConfig { protocol: Some("ref".into()), ..Default::default() };
    Session::from_path(&root().join("graphs").join(file), mpcflow::builtins()).unwrap().with_config(cfg)
}

fn column(file: &str) -> Vec<f64> {
    match read_csv_column(&root().join("graphs/data").join(file), "systolic_bp").unwrap() {
        InputValue::Real { values, .. } => values,
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn hospital_stats_matches_plaintext() {
    let north = column("north.csv");
    let south = column("south.csv");
    assert_ne!(north.len(), south.len(), "the hospitals have different numbers of patients");
    let session = under_ref("hospital_stats.yaml");
    let out = rt()
        .block_on(
            session.run([("north_bp", InputValue::from(north.clone())), ("south_bp", InputValue::from(south.clone()))]),
        )
        .unwrap();

    let all: Vec<f64> = north.iter().chain(&south).copied().collect();
    let n = all.len() as f64;
    let mean = all.iter().sum::<f64>() / n;
    let var = all.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / n;
    let high = all.iter().filter(|&&x| x > 140.0).count() as f64;

    let ulp = FixedPoint::default().ulp();
    assert_eq!(out.values("n_patients").unwrap(), vec![n]);
    assert_eq!(out.values("n_high").unwrap(), vec![high]);
    let got_mean = out.values("mean_bp").unwrap()[0];
    // Inputs are rounded to 1/2 ulp each; the mean is rounded once more.
    assert!((got_mean - mean).abs() <= ulp, "mean {got_mean} vs {mean}");
    let got_var = out.values("var_bp").unwrap()[0];
    // Each centred value is off by at most 1.5 ulp; squaring scales that by 2|x - mean| (< 200).
    assert!((got_var - var).abs() <= 400.0 * 1.5 * ulp, "variance {got_var} vs {var}");
    for o in &out.outputs {
        assert_eq!(o.parties, vec!["north", "south"]);
    }
}

#[test]
fn millionaires_both_ways_and_ties() {
    let session = under_ref("millionaires.yaml");
    let rt = rt();
    let top = (1i64 << 62) - 1; // the largest int input: any two inputs compare exactly
    for (a, b, expect) in [(5_000_000i64, 3_000_000i64, 1.0), (3, 5, 0.0), (7, 7, 0.0), (-top, top, 0.0), (-1, -2, 1.0)]
    {
        let out = rt
            .block_on(session.run([("alice_wealth", InputValue::from(a)), ("bob_wealth", InputValue::from(b))]))
            .unwrap();
        assert_eq!(out.values("alice_richer").unwrap(), vec![expect], "{a} vs {b}");
    }
    // Beyond it, a 64-bit sign could not tell who is richer: refused before the run.
    let e = rt
        .block_on(session.run([("alice_wealth", InputValue::from(i64::MIN)), ("bob_wealth", InputValue::from(5i64))]))
        .unwrap_err()
        .to_string();
    assert!(e.contains("input `alice_wealth`: value -9223372036854775808 is outside the range of int values"), "{e}");
    let e = rt
        .block_on(session.run([("alice_wealth", InputValue::from(1e30)), ("bob_wealth", InputValue::from(5.5))]))
        .unwrap_err()
        .to_string();
    assert!(e.contains("value 1000000000000000000000000000000 is outside the range of int values"), "{e}");
    assert!(e.contains("input `bob_wealth`: value 5.5 is not a whole number"), "{e}");
}
