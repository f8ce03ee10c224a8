//! Data owners who only bring inputs (`owners:`): the five-hospitals pipelines under rep3 and
//! fss2pc against the statistics of the records themselves, and the refusals of what an
//! owner cannot do. Every op with owners is checked in `fss2pc.rs` (`with_owners`), the
//! privacy of an owner's input in `privacy.rs`, owners in their own processes in
//! `multiprocess.rs`.

use crate::support::{root, rt};
use mpcflow::runtime::{InputValue, Session, SessionConfig};
use mpcflow_sdk::DType;
use mpcflow_sdk::graph::{Dim, GraphSpec};

const HOSPITALS: [&str; 5] = ["north", "south", "east", "west", "central"];

/// The systolic blood pressures in `graphs/data/NAME.csv`.
fn pressures(name: &str) -> Vec<f64> {
    let text = std::fs::read_to_string(root().join(format!("graphs/data/{name}.csv"))).unwrap();
    text.lines().skip(1).map(|l| l.rsplit(',').next().unwrap().parse().unwrap()).collect()
}

fn run_hospitals(file: &str, protocol: Option<&str>) -> mpcflow::runtime::RunOutput {
    let cfg = SessionConfig { protocol: protocol.map(String::from), ..Default::default() };
    let s = Session::from_path(&root().join(file), mpcflow::builtins()).unwrap().with_config(cfg);
    let inputs: Vec<(String, InputValue)> =
        HOSPITALS.iter().map(|h| (format!("{h}_bp"), InputValue::from(pressures(h)))).collect();
    rt().block_on(s.run(inputs)).unwrap_or_else(|e| panic!("{file}: {e}"))
}

#[test]
fn five_hospitals_get_the_statistics_of_their_records_from_two_or_three_servers() {
    let all: Vec<f64> = HOSPITALS.iter().flat_map(|h| pressures(h)).collect();
    let n = all.len() as f64;
    let mean = all.iter().sum::<f64>() / n;
    let var = all.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n;
    let high = all.iter().filter(|&&x| x > 140.0).count() as f64;
    for (file, protocol) in [
        ("graphs/five_hospitals.yaml", None),
        ("graphs/five_hospitals_2pc.yaml", None),
        ("graphs/five_hospitals.yaml", Some("ref")),
    ] {
        let out = run_hospitals(file, protocol);
        let one = |name: &str| out.values(name).unwrap()[0];
        assert_eq!(one("n_patients"), n, "{file}");
        assert_eq!(one("n_high"), high, "{file}");
        // A mean rounds once (1 ulp); the variance adds a product's rounding (a few ulp).
        assert!((one("mean_bp") - mean).abs() < 2e-4, "{file}: {} vs {mean}", one("mean_bp"));
        assert!((one("var_bp") - var).abs() < 2e-3, "{file}: {} vs {var}", one("var_bp"));
        for o in &out.outputs {
            assert_eq!(o.parties, HOSPITALS, "{file}: `{}` is revealed to the hospitals only", o.name);
        }
        let names: Vec<&str> = out.outputs.iter().map(|o| o.name.as_str()).collect();
        assert_eq!(names, ["n_patients", "mean_bp", "var_bp", "n_high"], "{file}: in the pipeline's order");
        // The servers' view: shares and masked results, no output of their own.
        assert!(out.outputs.iter().all(|o| !o.name.contains('#')), "{file}: a masked value was shown");
    }
}

/// The problems the planner reports for `g`, as one string.
fn problems(g: GraphSpec) -> String {
    let s = Session::from_graph(g, mpcflow::builtins());
    s.plan(Default::default()).map(|_| ()).unwrap_err().to_string()
}

fn base() -> GraphSpec {
    GraphSpec::new("t", ["s1", "s2"])
        .protocol("fss2pc")
        .owners(["olga"])
        .input("x", "olga", DType::Fixed, vec![Dim::Fixed(2)])
        .node("y", mpcflow_sdk::Op::Relu, ["x"])
        .output("y", ["olga"])
}

#[test]
fn what_an_owner_cannot_be_or_bring_is_refused_before_the_run() {
    let e = problems(base().owners(["olga", "s1"]));
    assert!(e.contains("`s1` is a computing party already"), "{e}");
    let e = problems(base().owners(["olga", "olga"]));
    assert!(e.contains("owner `olga` is listed twice"), "{e}");
    let e = problems(base().owners(["olga", "dealer"]));
    assert!(e.contains("`dealer` is reserved"), "{e}");
    let mut g = base().protocol("ref");
    g.parties = vec!["s1".into()];
    let e = problems(g);
    assert!(e.contains("name at least two parties"), "{e}");
    let e = problems(base().owners(["olga", "bad name"]));
    assert!(e.contains("owner name `bad name` must be letters"), "{e}");
    let mut g = base();
    g.inputs[0].dtype = DType::Bit;
    let e = problems(g);
    assert!(e.contains("is a bit brought by data owner olga") && e.contains("dtype: int"), "{e}");
    let e = problems(base().output("x", ["olgq"]));
    assert!(e.contains("`olgq` is not a declared party (parties: s1, s2, owners: olga)"), "{e}");
    assert!(e.contains("did you mean `olga`"), "{e}");
    let mut g = base();
    g.nodes[0].name = "y#share:s1".into();
    g.outputs[0].name = "y#share:s1".into();
    let e = problems(g);
    assert!(e.contains("a name with `#` is reserved for data owners' shares"), "{e}");
}

#[test]
fn an_owners_input_outside_its_declared_range_is_refused_at_the_owner() {
    let g = base().input_range("x", 0.0, 10.0);
    let s = Session::from_graph(g, mpcflow::builtins());
    let e = rt().block_on(s.run([("x", InputValue::from(vec![1.0, 11.0]))])).unwrap_err().to_string();
    // The owner's own message names its value; what reaches the parties is checked in
    // `multiprocess.rs`.
    assert!(e.contains("input `x`: value 11 (element 1) is outside the declared range [0, 10]"), "{e}");
}

#[test]
fn the_plan_shows_the_shares_and_masks_and_a_pipeline_file_keeps_its_owners() {
    let s = Session::from_graph(base(), mpcflow::builtins());
    let plan = s.plan(Default::default()).unwrap();
    let names: Vec<&str> = plan.nodes.iter().map(|n| n.desc.name.as_str()).collect();
    for n in ["x#share:s1", "x#share:s2", "x", "y#mask:olga:s1", "y#mask:olga:s2", "output:y#for:olga"] {
        assert!(names.contains(&n), "{n} in {names:?}");
    }
    assert_eq!(plan.owner_io.owners, ["olga"]);
    let yaml = mpcflow::runtime::pipeline::to_yaml(&base(), &[]);
    assert!(yaml.contains("owners: [olga]"), "{yaml}");
    let back = mpcflow::runtime::pipeline::Pipeline::from_yaml(&yaml, "t.yaml").unwrap();
    assert_eq!(back.spec.owners, ["olga"]);
}
