//! Every broken pipeline file in tests/fixtures/bad/ is refused with file:line:column and a
//! message that says what is wrong, both through the library and by `mpcflow check`.

use crate::support::root;
use mpcflow::runtime::pipeline::Pipeline;
use mpcflow::runtime::plan::{PlanOptions, build};
use std::process::Command;

/// (fixture, line:column, what the message must say)
const CASES: &[(&str, &str, &str)] = &[
    ("malformed_yaml.yaml", "3:7", "illegal placement of ':' indicator"),
    ("unknown_op.yaml", "7:12", "unknown op `sigmod`, did you mean `sigmoid`?"),
    ("unknown_tensor.yaml", "8:29", "unknown tensor `welth_b`, did you mean `wealth_b`?"),
    ("cycle.yaml", "7:3", "cycle: a -> b -> c -> a"),
    (
        "shape_mismatch.yaml",
        "8:3",
        "`matmul` inner dimensions differ: [2, 3] x [4, 5] (3 vs 4) (inputs: x [2, 3] fixed, w [4, 5] fixed)",
    ),
    ("undeclared_party.yaml", "6:15", "owner `carol` is not a declared party (parties: alice, bob)"),
    (
        "reveal_undeclared.yaml",
        "10:27",
        "revealed to an undeclared party: `eve` is not a declared party (parties: alice, bob)",
    ),
    ("unknown_protocol.yaml", "3:11", "unknown protocol `yao3000` (available: fss2pc, ref, rep3)"),
    ("wrong_attr_type.yaml", "7:34", "attribute `axis` of op `softmax` must be an integer, found the string \"last\""),
    ("unknown_field.yaml", "5:45", "unknown field `secret`, expected one of owner, dtype, shape, transform, range"),
    ("empty_range.yaml", "5:55", "input `x`: `range` [300, 0] is empty: lo must not exceed hi"),
    ("range_of_three.yaml", "5:55", "input `x`: `range` takes two numbers, [lo, hi]; 3 given"),
    ("node_empty_range.yaml", "7:52", "node `s`: `range` [10, -10] is empty: lo must not exceed hi"),
    (
        "node_range_too_wide.yaml",
        "7:45",
        "node `s`: `range` [-100000000000000000000, 100000000000000000000] reaches past what a fixed value can hold",
    ),
    ("bad_version.yaml", "1:10", "unsupported version 2, expected `version: 1`"),
    ("unknown_dtype.yaml", "5:29", "unknown dtype `float32`, expected one of fixed, int, bit"),
    ("duplicate_name.yaml", "8:3", "the name `a` is defined more than once"),
    ("unknown_attr.yaml", "7:31", "op `relu` has no attribute `alpha`"),
    ("missing_parties.yaml", "", "missing required field `parties`"),
    ("dtype_mismatch.yaml", "9:3", "`gt` needs operands of one dtype, got int and fixed"),
    ("missing_protocol.yaml", "", "the pipeline names no protocol: add `protocol: fss2pc`"),
    ("duplicate_key.yaml", "4:1", "a key appears twice in the same mapping: each key may appear once"),
    ("negative_dim.yaml", "5:42", "expected a dimension: a whole number of 0 or more, or a name that the data fixes"),
    ("fractional_int_constant.yaml", "5:3", "constant `limit`: value 5.5 is not a whole number, as dtype int requires"),
    ("model_unknown.yaml", "9:24", "node `logits`: unknown model `ccn`, did you mean `cnn`? (models: cnn)"),
    ("model_unknown_importer.yaml", "5:3", "model `cnn`: unknown importer `tflite` (available: onnx;"),
    ("model_missing_file.yaml", "5:3", "tests/fixtures/onnx/no_such_model.onnx: No such file"),
    ("model_input_count.yaml", "9:3", "node `logits`: model `cnn` takes 1 input (input); the node gives 2"),
    (
        "model_owner_undeclared.yaml",
        "5:62",
        "model `cnn`: owner `hospital` is not a declared party (parties: patient, clinic)",
    ),
    (
        "model_shape_mismatch.yaml",
        "9:3",
        "node `logits`: model `cnn` takes `input` of shape [1, 1, 8, 8]; input `image` has shape [1, 1, 6, 6]",
    ),
];

fn check_via_library(path: &std::path::Path) -> String {
    let registry = mpcflow::builtins();
    match Pipeline::from_path(path) {
        Err(e) => e.to_string(),
        Ok(mut p) => match p.import_models(&registry).and_then(|()| build(&p.spec, &registry, &PlanOptions::default()))
        {
            Err(e) => p.locate(e).to_string(),
            Ok(_) => String::from("(accepted)"),
        },
    }
}

#[test]
fn every_bad_file_has_a_case_and_every_case_a_file() {
    let dir = root().join("tests/fixtures/bad");
    let mut files: Vec<String> =
        std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    files.sort();
    let mut cases: Vec<String> = CASES.iter().map(|c| c.0.to_string()).collect();
    cases.sort();
    assert_eq!(files, cases);
    assert!(files.len() >= 12);
}

#[test]
fn library_reports_location_and_problem() {
    for (file, at, what) in CASES {
        let path = root().join("tests/fixtures/bad").join(file);
        let msg = check_via_library(&path);
        let expected_prefix = format!("{}:{at}", path.display());
        assert!(msg.starts_with(&expected_prefix), "{file}: expected location {expected_prefix}, got: {msg}");
        assert!(msg.contains(what), "{file}: expected `{what}` in: {msg}");
    }
}

#[test]
fn check_command_exits_non_zero_with_the_message() {
    for (file, at, what) in CASES {
        let rel = format!("tests/fixtures/bad/{file}");
        let out =
            Command::new(env!("CARGO_BIN_EXE_mpcflow")).current_dir(root()).args(["check", &rel]).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{file}: check succeeded");
        assert!(stderr.contains(&format!("{rel}:{at}")), "{file}: no location {rel}:{at} in: {stderr}");
        assert!(stderr.contains(what), "{file}: expected `{what}` in: {stderr}");
    }
}

#[test]
fn all_problems_are_reported_at_once() {
    let yaml = "version: 1\nparties: [a, b]\ninputs:\n  x: { owner: c, dtype: int, shape: [] }\nnodes:\n  y: { op: neg, inputs: [z] }\noutputs:\n  y: { reveal_to: [d] }\n";
    let p = Pipeline::from_yaml(yaml, "multi.yaml").unwrap();
    let err = p.locate(build(&p.spec, &mpcflow::builtins(), &PlanOptions::default()).unwrap_err()).to_string();
    assert!(err.contains("multi.yaml:4:15: input `x`: owner `c` is not a declared party"), "{err}");
    assert!(err.contains("multi.yaml:6:25: node `y`: unknown tensor `z`"), "{err}");
    assert!(!err.contains("did you mean"), "no far-fetched hints for one-letter names: {err}");
    assert!(err.contains("multi.yaml:8:20: output `y`: revealed to an undeclared party: `d`"), "{err}");
}
