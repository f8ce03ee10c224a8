//! `models:` in pipeline files: a model named in the pipeline runs as the graph that
//! `mpcflow import` makes of it, its weights come from the file at the owner only, and what is
//! wrong with a model entry is refused before the run.

use crate::support::{root, rt};
use mpcflow::import::{Reveal, Roles, graph};
use mpcflow::runtime::{InputValue, Session, SessionConfig};
use mpcflow_sdk::importer::Importer;
use std::collections::HashMap;

fn image() -> InputValue {
    mpcflow::io::npy::read(&root().join("tests/fixtures/onnx/digits_sample_image.npy")).unwrap()
}

fn digits_model(protocol: &str) -> Session {
    let cfg = SessionConfig { protocol: Some(protocol.into()), ..Default::default() };
    Session::from_path(&root().join("graphs/digits_model.yaml"), mpcflow::builtins()).unwrap().with_config(cfg)
}

#[test]
fn a_model_in_the_pipeline_computes_what_the_imported_pipeline_computes() {
    let rt = rt();
    let bytes = std::fs::read(root().join("tests/fixtures/onnx/digits_cnn.onnx")).unwrap();
    let model = mpcflow_importer_onnx::OnnxImporter.import(&bytes).unwrap();
    let roles = Roles { input_owner: "patient".into(), model_owner: "clinic".into() };
    let weights: Vec<(String, InputValue)> = model
        .weights
        .iter()
        .map(|w| (w.name.clone(), InputValue::Real { shape: w.shape.clone(), values: w.values.clone() }))
        .collect();
    let input_name = model.inputs[0].0.clone();
    let imported = Session::from_graph(graph(model, "digits", &roles, "fss2pc", Reveal::Logits), mpcflow::builtins());
    let want = rt.block_on(imported.run(weights.into_iter().chain([(input_name, image())]))).unwrap();
    let want = want.outputs[0].tensor.clone();

    let got = rt.block_on(digits_model("fss2pc").run([("image", image())])).unwrap();
    // Truncation in fss2pc is exact, so the same graph gives the same words.
    assert_eq!(got.get("logits").unwrap().tensor, want);
    assert_eq!(got.values("class"), Some(vec![4.0]));
    let plain = rt.block_on(digits_model("ref").run([("image", image())])).unwrap();
    for (g, r) in got.values("logits").unwrap().iter().zip(plain.values("logits").unwrap()) {
        assert!((g - r).abs() < 1e-3, "fss2pc {g} against ref {r}");
    }
}

#[test]
fn model_weights_come_from_the_file_at_their_owner_only() {
    let s = digits_model("fss2pc");
    let weights: Vec<&str> = s.graph().inputs.iter().filter(|i| i.owner == "clinic").map(|i| i.name.as_str()).collect();
    assert_eq!(
        weights,
        ["cnn.conv1_weight", "cnn.conv1_bias", "cnn.fc1_weight", "cnn.fc1_bias", "cnn.fc2_weight", "cnn.fc2_bias"]
    );
    let clinic = s.encode_party_inputs("clinic", HashMap::new()).unwrap();
    assert_eq!(clinic.len(), 6, "the owner's process encodes every weight from the file");
    let patient = s.encode_party_inputs("patient", HashMap::from([("image".to_string(), image())])).unwrap();
    assert_eq!(patient.keys().collect::<Vec<_>>(), ["image"], "the other party encodes only its own input");

    // A weight given by hand is refused: its value is the file's.
    let w = InputValue::Real { shape: vec![10], values: vec![0.0; 10] };
    let e = s
        .encode_party_inputs("clinic", HashMap::from([("cnn.fc2_bias".to_string(), w.clone())]))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("`cnn.fc2_bias` is a weight of a model in `models:`: its value comes from the model file"),
        "{e}"
    );
    let e = rt().block_on(s.run([("image", image()), ("cnn.fc2_bias", w)])).unwrap_err().to_string();
    assert!(e.contains("graphs/digits_model.yaml:12:3: input `cnn.fc2_bias`: `cnn.fc2_bias` is a weight"), "{e}");
}

#[test]
fn a_pipeline_shows_model_weights_by_name_and_shape_only() {
    let mut p = mpcflow::runtime::pipeline::Pipeline::from_path(&root().join("graphs/digits_model.yaml")).unwrap();
    p.import_models(&mpcflow::builtins()).unwrap();
    assert_eq!(p.weights.len(), 6);
    let shown = format!("{p:?}");
    assert!(shown.contains("\"cnn.fc2_bias\": (\"clinic\", [10])"), "{shown}");
    assert!(!shown.contains("values"), "no weight value in Debug output");
}

#[test]
fn a_model_node_left_unimported_is_named_by_the_planner() {
    let p = mpcflow::runtime::pipeline::Pipeline::from_path(&root().join("graphs/digits_model.yaml")).unwrap();
    let e = mpcflow::runtime::plan::build(&p.spec, &mpcflow::builtins(), &Default::default()).unwrap_err();
    let e = p.locate(e).to_string();
    assert!(e.contains("digits_model.yaml:16:17: node `logits`: this node runs a model, but the pipeline's models were not imported"), "{e}");
}

#[test]
fn an_input_directory_never_supplies_a_model_weight() {
    let dir = std::env::temp_dir().join(format!("mpcflow-models-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    // A file named like a weight next to the image: the weight still comes from the model file.
    mpcflow::io::npy::write_f64(&dir.join("cnn.fc2_bias.npy"), &[10], &[100.0; 10]).unwrap();
    std::fs::copy(root().join("tests/fixtures/onnx/digits_sample_image.npy"), dir.join("image.npy")).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_mpcflow"))
        .current_dir(root())
        .args(["run", "graphs/digits_model.yaml", "--json", "--input-dir"])
        .arg(&dir)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["outputs"]["class"], serde_json::json!([4]));
    let _ = std::fs::remove_dir_all(&dir);
}
