//! Secure inference on an imported ONNX model: the digits CNN (tests/fixtures/onnx, made by
//! make_digits.py) on its 300 held-out images, batched, under `ref`, `fss2pc` and `rep3`, against the
//! plaintext ONNX reference evaluator's logits.

use crate::support::{root, rt};
use mpcflow::import::{Reveal, Roles, graph};
use mpcflow::runtime::{InputValue, Session, SessionConfig};
use mpcflow_importer_onnx::{ImportOptions, import};
use mpcflow_sdk::{DType, FixedPoint, Op};
use std::collections::HashMap;
use std::time::Duration;

const IMAGES: usize = 300;

fn fixture(name: &str) -> std::path::PathBuf {
    root().join("tests/fixtures/onnx").join(name)
}

fn reals(v: &InputValue) -> Vec<f64> {
    match v {
        InputValue::Real { values, .. } => values.clone(),
        InputValue::Int { values, .. } => values.iter().map(|&x| x as f64).collect(),
        InputValue::Tensor(_) => unreachable!("npy files read as numbers"),
    }
}

fn argmax(row: &[f64]) -> usize {
    (0..row.len()).fold(0, |best, i| if row[i] > row[best] { i } else { best })
}

/// Secure logits and classes for every test image under `protocol`.
fn secure(protocol: &str) -> (Vec<f64>, Vec<f64>) {
    let bytes = std::fs::read(fixture("digits_cnn.onnx")).unwrap();
    let model = import(&bytes, &ImportOptions { batch: IMAGES, ..Default::default() }).unwrap();
    let weights: Vec<(String, InputValue)> = model
        .weights
        .iter()
        .map(|w| (w.name.clone(), InputValue::Real { shape: w.shape.clone(), values: w.values.clone() }))
        .collect();
    let input = model.inputs[0].0.clone();
    let roles = Roles { input_owner: "patient".into(), model_owner: "clinic".into() };
    let logits = model.output.clone();
    let spec = graph(model, "digits", &roles, protocol, Reveal::Logits)
        .node("class", Op::Argmax { axis: -1, one_hot: false }, [logits.as_str()])
        .output("class", ["patient"]);
    let spec = with_server_for(spec, protocol);
    let images = mpcflow::io::npy::read(&fixture("digits_test_images.npy")).unwrap();
    let mut inputs: HashMap<String, InputValue> = weights.into_iter().collect();
    inputs.insert(input, images);
    let cfg = SessionConfig { timeout: Duration::from_secs(120), ..Default::default() };
    let session = Session::from_graph(spec, mpcflow::builtins()).with_config(cfg);
    let out = rt().block_on(session.run(inputs)).unwrap();
    (out.values(&logits).unwrap(), out.values("class").unwrap())
}

fn check(protocol: &str) {
    let plain = reals(&mpcflow::io::npy::read(&fixture("digits_test_logits.npy")).unwrap());
    let labels = reals(&mpcflow::io::npy::read(&fixture("digits_test_labels.npy")).unwrap());
    let (logits, classes) = secure(protocol);
    assert_eq!(logits.len(), IMAGES * 10);
    let errors: Vec<f64> = logits.iter().zip(&plain).map(|(a, b)| (a - b).abs()).collect();
    let max_err = errors.iter().cloned().fold(0.0, f64::max);
    let mean_err = errors.iter().sum::<f64>() / errors.len() as f64;
    let mut agree = 0;
    let (mut right_secure, mut right_plain) = (0, 0);
    for i in 0..IMAGES {
        let p = argmax(&plain[i * 10..(i + 1) * 10]);
        let s = classes[i] as usize;
        assert_eq!(s, argmax(&logits[i * 10..(i + 1) * 10]), "image {i}: secure argmax = argmax of secure logits");
        agree += usize::from(p == s);
        right_secure += usize::from(s as f64 == labels[i]);
        right_plain += usize::from(p as f64 == labels[i]);
    }
    let (acc_s, acc_p) = (right_secure as f64 / IMAGES as f64, right_plain as f64 / IMAGES as f64);
    eprintln!(
        "{protocol}: predictions equal plaintext ONNX on {agree}/{IMAGES}; accuracy {:.2}% secure vs {:.2}% plaintext; \
         logit error max {max_err:.2e} mean {mean_err:.2e}",
        100.0 * acc_s,
        100.0 * acc_p
    );
    assert!(agree as f64 >= 0.995 * IMAGES as f64, "{agree}/{IMAGES} predictions agree");
    assert!((acc_s - acc_p).abs() <= 0.005, "accuracy {acc_s} vs {acc_p}");
    // Weights and activations carry 16 fractional bits: errors of a few 2^-16 per product add up.
    assert!(max_err < 0.01, "max logit error {max_err}");
}

#[test]
fn digits_cnn_under_ref_matches_plaintext_onnx() {
    check("ref");
}

#[test]
fn digits_cnn_under_fss2pc_matches_plaintext_onnx() {
    check("fss2pc");
}

#[test]
fn digits_cnn_under_rep3_matches_plaintext_onnx() {
    check("rep3");
}

/// An imported model's graph with a third computing party (`server`, which owns nothing and
/// learns nothing) under rep3.
fn with_server_for(mut spec: mpcflow_sdk::graph::GraphSpec, protocol: &str) -> mpcflow_sdk::graph::GraphSpec {
    if protocol == "rep3" {
        spec.parties.push("server".into());
    }
    spec
}

fn mpcflow(args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_mpcflow")).current_dir(root()).args(args).output().unwrap()
}

/// The command a pipeline file states at its top (`#   mpcflow run ...`), as arguments.
fn stated_command(file: &str) -> Vec<String> {
    let text = std::fs::read_to_string(root().join(file)).unwrap();
    let line = text.lines().find(|l| l.starts_with("#   mpcflow run ")).unwrap_or_else(|| panic!("{file}: no command"));
    line.trim_start_matches("#   mpcflow ").split_whitespace().map(String::from).collect()
}

#[test]
fn digits_graphs_run_as_their_first_lines_say() {
    let plain = reals(&mpcflow::io::npy::read(&fixture("digits_test_logits.npy")).unwrap());
    let labels = reals(&mpcflow::io::npy::read(&fixture("digits_test_labels.npy")).unwrap());
    let args = stated_command("graphs/digits_inference.yaml");
    let out = mpcflow(&args.iter().map(String::as_str).collect::<Vec<_>>());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(text, format!("class = [{}] (shape [1])    (revealed to patient)\n", argmax(&plain[..10])));

    let args = stated_command("graphs/digits_accuracy.yaml");
    let out = mpcflow(&args.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let right = (0..IMAGES).filter(|&i| argmax(&plain[i * 10..(i + 1) * 10]) as f64 == labels[i]).count();
    assert_eq!(String::from_utf8_lossy(&out.stdout), format!("n_correct = {right}    (revealed to lab, clinic)\n"));
}

#[test]
fn committed_digits_graphs_are_what_import_writes() {
    let dir = crate::support::Scratch::new("mpcflow-import");
    let model = fixture("digits_cnn.onnx");
    let yaml = dir.join("digits_inference.yaml");
    let weights = dir.join("w");
    let out = mpcflow(&[
        "import",
        model.to_str().unwrap(),
        "--owner",
        "clinic",
        "--input-owner",
        "patient",
        "-o",
        yaml.to_str().unwrap(),
        "--weights",
        weights.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let body = |t: String| t.lines().filter(|l| !l.starts_with('#')).collect::<Vec<_>>().join("\n");
    let committed = std::fs::read_to_string(root().join("graphs/digits_inference.yaml")).unwrap();
    assert_eq!(body(std::fs::read_to_string(&yaml).unwrap()), body(committed), "run graphs/data/make_digits_graphs.sh");
    for entry in std::fs::read_dir(&weights).unwrap() {
        let p = entry.unwrap().path();
        let name = p.file_name().unwrap().to_owned();
        let committed = std::fs::read(root().join("graphs/data/digits_cnn.weights").join(&name)).unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), committed, "{name:?}: run graphs/data/make_digits_graphs.sh");
    }
}

/// `import --calibrate` records every node's range from a plaintext run on the sample (widened
/// by the margin), the planner narrows the ReLUs and max pooling by them, fss2pc's logits on the
/// sample are those of the uncalibrated pipeline, and the data owner's input outside its range
/// is refused before sharing.
#[test]
fn calibrated_ranges_narrow_the_plan_and_keep_the_results() {
    let dir = std::env::temp_dir().join(format!("mpcflow-calibrate-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let images = fixture("digits_test_images.npy");
    let import = |name: &str, calibrate: bool| {
        let yaml = dir.join(format!("{name}.yaml"));
        let mut args = vec![
            "import".to_string(),
            fixture("digits_cnn.onnx").display().to_string(),
            "--owner".into(),
            "clinic".into(),
            "--input-owner".into(),
            "patient".into(),
            "--batch".into(),
            "300".into(),
            "--reveal".into(),
            "logits".into(),
            "-o".into(),
            yaml.display().to_string(),
        ];
        if calibrate {
            args.extend(["--calibrate".into(), images.display().to_string(), "--margin".into(), "0.25".into()]);
        }
        let out = mpcflow(&args.iter().map(String::as_str).collect::<Vec<_>>());
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        mpcflow::runtime::pipeline::Pipeline::from_path(&yaml).unwrap().spec
    };
    let plain = import("plain", false);
    let calibrated = import("calibrated", true);
    // Every non-bit node has a range, which holds what the sample gave with the margin.
    assert!(calibrated.nodes.iter().all(|n| n.range.is_some()), "{:?}", calibrated.nodes);
    let input = calibrated.inputs.iter().find(|i| i.name == "input").unwrap();
    let [lo, hi] = input.range.unwrap();
    assert!(lo < 0.0 && hi > 1.0 && hi < 2.0, "pixels in [0, 1] widened: [{lo}, {hi}]");
    let cfg =
        || SessionConfig { protocol: Some("fss2pc".into()), timeout: Duration::from_secs(120), ..Default::default() };
    let widths = |g: &mpcflow_sdk::graph::GraphSpec| {
        let plan =
            Session::from_graph(g.clone(), mpcflow::builtins()).with_config(cfg()).plan(Default::default()).unwrap();
        let relus: Vec<u32> = plan
            .nodes
            .iter()
            .filter(|n| n.desc.kind.label() == "relu")
            .map(|n| n.desc.fixed_point.compare_bits)
            .collect();
        (relus, plan.nodes.iter().map(|n| n.cost.dealer_bytes.iter().sum::<u64>()).sum::<u64>())
    };
    let (plain_bits, plain_bytes) = widths(&plain);
    let (bits, bytes) = widths(&calibrated);
    assert!(plain_bits.iter().all(|&b| b == 64) && !bits.is_empty() && bits.iter().all(|&b| b < 32), "{bits:?}");
    assert!(bytes * 2 < plain_bytes, "material {bytes} against {plain_bytes}");
    // The same logits on the sample.
    let weights = |g: &mpcflow_sdk::graph::GraphSpec, dir: &std::path::Path| -> Vec<(String, InputValue)> {
        g.inputs
            .iter()
            .filter(|i| i.owner == "clinic")
            .map(|i| (i.name.clone(), mpcflow::io::npy::read(&dir.join(format!("{}.npy", i.name))).unwrap()))
            .collect()
    };
    let logits = |g: &mpcflow_sdk::graph::GraphSpec, name: &str, sample: InputValue| {
        let mut inputs = weights(g, &dir.join(format!("{name}.weights")));
        inputs.push(("input".into(), sample));
        rt().block_on(Session::from_graph(g.clone(), mpcflow::builtins()).with_config(cfg()).run(inputs))
    };
    let sample = mpcflow::io::npy::read(&images).unwrap();
    let a = logits(&plain, "plain", sample.clone()).unwrap().values("output").unwrap();
    let b = logits(&calibrated, "calibrated", sample.clone()).unwrap().values("output").unwrap();
    assert_eq!(a, b);
    // An image brighter than the calibrated range is refused by its owner.
    let InputValue::Real { shape, mut values } = sample else { panic!("real pixels") };
    values[5] = 3.0;
    let e = logits(&calibrated, "calibrated", InputValue::Real { shape, values }).unwrap_err().to_string();
    assert!(e.contains("input `input`: value 3 (element 5) is outside the declared range"), "{e}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// A model with several inputs takes one calibration sample per input, named
/// (`--calibrate ids=… --calibrate x=…`): every input and node gets its range, `ref` runs the
/// calibrated pipeline on the sample to the reference evaluator's output, and a sample that is
/// unnamed, names no input, is missing or holds another number of batches is refused by name.
#[test]
fn a_model_with_several_inputs_is_calibrated_on_a_sample_of_each() {
    let dir = std::env::temp_dir().join(format!("mpcflow-calibrate-inputs-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let (ids, x) = (fixture("dynamic_ids.npy"), fixture("dynamic_x.npy"));
    let yaml = dir.join("dynamic.yaml");
    let import = |calibrate: &[String]| {
        let mut args = vec![
            "import".to_string(),
            fixture("dynamic.onnx").display().to_string(),
            "--owner".into(),
            "vendor".into(),
            "--input-owner".into(),
            "user".into(),
            "--batch".into(),
            "3".into(),
            "--reveal".into(),
            "logits".into(),
            "-o".into(),
            yaml.display().to_string(),
        ];
        for c in calibrate {
            args.extend(["--calibrate".to_string(), c.clone()]);
        }
        mpcflow(&args.iter().map(String::as_str).collect::<Vec<_>>())
    };
    let named = |name: &str, p: &std::path::Path| format!("{name}={}", p.display());
    let out = import(&[named("x", &x), named("ids", &ids)]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let spec = mpcflow::runtime::pipeline::Pipeline::from_path(&yaml).unwrap().spec;
    for input in ["ids", "x"] {
        let i = spec.inputs.iter().find(|i| i.name == input).unwrap();
        assert!(i.range.is_some(), "{input} has no range");
    }
    let [lo, hi] = spec.inputs.iter().find(|i| i.name == "ids").unwrap().range.unwrap();
    let sample_ids = reals(&mpcflow::io::npy::read(&ids).unwrap());
    let (min, max) = sample_ids.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &v| (a.min(v), b.max(v)));
    assert!(lo < min && hi > max, "ids in [{min}, {max}] widened: [{lo}, {hi}]");
    let [lo, hi] = spec.inputs.iter().find(|i| i.name == "x").unwrap().range.unwrap();
    let sample_x = reals(&mpcflow::io::npy::read(&x).unwrap());
    let (min, max) = sample_x.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &v| (a.min(v), b.max(v)));
    assert!(lo < min && hi > max && hi - lo < 4.0 * (max - min) + 1.0, "x in [{min}, {max}] widened: [{lo}, {hi}]");
    assert!(spec.nodes.iter().filter(|n| n.range.is_some()).count() > 3, "{:?}", spec.nodes);
    let text = std::fs::read_to_string(&yaml).unwrap();
    assert!(text.contains("of `ids`, `x` calibrated on dynamic_ids.npy, dynamic_x.npy"), "{text}");
    // The pipeline goes to the other party: no local path in it (the files are given by
    // absolute paths outside the current directory here).
    let (tmp, fixtures) = (dir.display().to_string(), fixture("").display().to_string());
    assert!(!text.contains(&tmp) && !text.contains(&fixtures), "{text}");
    assert!(text.contains("--input-dir dynamic.weights") && text.contains("mpcflow run dynamic.yaml"), "{text}");
    // The calibrated pipeline runs the sample under `ref`, which enforces every range.
    let mut inputs: Vec<(String, InputValue)> = spec
        .inputs
        .iter()
        .filter(|i| i.owner == "vendor")
        .map(|i| {
            let p = dir.join("dynamic.weights").join(format!("{}.npy", i.name));
            (i.name.clone(), mpcflow::io::npy::read(&p).unwrap())
        })
        .collect();
    inputs.push(("ids".into(), mpcflow::io::npy::read(&ids).unwrap()));
    inputs.push(("x".into(), mpcflow::io::npy::read(&x).unwrap()));
    let cfg = SessionConfig { protocol: Some("ref".into()), ..Default::default() };
    let out =
        rt().block_on(Session::from_graph(spec.clone(), mpcflow::builtins()).with_config(cfg).run(inputs)).unwrap();
    let want = reals(&mpcflow::io::npy::read(&fixture("dynamic_output.npy")).unwrap());
    let (max_err, _) = errors(&out.values(&spec.outputs[0].name).unwrap(), &want);
    assert!(max_err < 1e-3, "max error {max_err}");
    // Refusals, each naming what to give.
    let refused = |calibrate: &[String]| {
        let out = import(calibrate);
        assert!(!out.status.success());
        String::from_utf8_lossy(&out.stderr).to_string()
    };
    let e = refused(&[ids.display().to_string()]);
    assert!(
        e.contains("the model has 2 inputs (`ids`, `x`): name each one's sample, --calibrate ids=SAMPLE.npy"),
        "{e}"
    );
    let e = refused(&[named("ids", &ids)]);
    assert!(e.contains("no sample for the model input `x` (--calibrate x=SAMPLE.npy)"), "{e}");
    let e = refused(&[named("ids", &ids), named("x", &x), named("mask", &x)]);
    assert!(e.contains("a sample names `mask`, which is not an input of the model (its inputs: `ids`, `x`)"), "{e}");
    let e = refused(&[named("ids", &ids), named("ids", &ids), named("x", &x)]);
    assert!(e.contains("two samples name the input `ids`"), "{e}");
    // Two batches of ids against one of x.
    let six = dir.join("six_ids.npy");
    let twice: Vec<f64> = sample_ids.iter().chain(&sample_ids).copied().collect();
    mpcflow::io::npy::write_f64(&six, &[6, 5], &twice).unwrap();
    let e = refused(&[named("ids", &six), named("x", &x)]);
    assert!(e.contains("the samples hold different numbers of batches: `ids` 2, `x` 1"), "{e}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn unsupported_ops_and_broken_files_are_named() {
    let e = import(b"not a model at all", &ImportOptions::default()).unwrap_err().to_string();
    assert!(e.starts_with("not an ONNX model"), "{e}");
    // The digits model with its first Relu renamed to an op the importer does not know.
    let bytes = std::fs::read(fixture("digits_cnn.onnx")).unwrap();
    // A NodeProto's op_type is field 4: tag 0x22, length 4.
    let at = bytes.windows(6).position(|w| w == b"\x22\x04Relu").unwrap() + 2;
    let mut broken = bytes.clone();
    broken[at..at + 4].copy_from_slice(b"Selu");
    let e = import(&broken, &ImportOptions::default()).unwrap_err().to_string();
    assert!(e.contains("(Selu): op `Selu` is not supported (supported: Add,"), "{e}");
}

/// A fixture model's output under `protocol` on its stored input, and the stored plaintext
/// ONNX output.
fn run_fixture(model: &str, input: &str, output: &str, protocol: &str) -> (Vec<f64>, Vec<f64>) {
    let bytes = std::fs::read(fixture(model)).unwrap();
    let model = import(&bytes, &ImportOptions::default()).unwrap_or_else(|e| panic!("{e}"));
    let mut inputs: HashMap<String, InputValue> = model
        .weights
        .iter()
        .map(|w| (w.name.clone(), InputValue::Real { shape: w.shape.clone(), values: w.values.clone() }))
        .collect();
    inputs.insert(model.inputs[0].0.clone(), mpcflow::io::npy::read(&fixture(input)).unwrap());
    let y = model.output.clone();
    let roles = Roles { input_owner: "user".into(), model_owner: "vendor".into() };
    let spec = with_server_for(graph(model, "fixture", &roles, protocol, Reveal::Logits), protocol);
    let cfg = SessionConfig { timeout: Duration::from_secs(120), ..Default::default() };
    let out = rt().block_on(Session::from_graph(spec, mpcflow::builtins()).with_config(cfg).run(inputs)).unwrap();
    let want = reals(&mpcflow::io::npy::read(&fixture(output)).unwrap());
    (out.values(&y).unwrap(), want)
}

/// Max and mean absolute error.
fn errors(got: &[f64], want: &[f64]) -> (f64, f64) {
    assert_eq!(got.len(), want.len());
    let err: Vec<f64> = got.iter().zip(want).map(|(a, b)| (a - b).abs()).collect();
    (err.iter().cloned().fold(0.0, f64::max), err.iter().sum::<f64>() / err.len() as f64)
}

#[test]
fn resnet_style_cnn_matches_plaintext_onnx_within_the_bound() {
    // Stated bound: logits within 5e-3 of plaintext (they are O(1)); BatchNormalization is a
    // secure per-channel product here, one more truncation per layer.
    for protocol in ["ref", "fss2pc", "rep3"] {
        let (got, want) = run_fixture("resnet_cifar.onnx", "resnet_input.npy", "resnet_output.npy", protocol);
        let (max, mean) = errors(&got, &want);
        eprintln!("resnet-style CNN under {protocol}: logit error max {max:.2e} mean {mean:.2e}");
        assert!(max < 5e-3, "{protocol}: max {max} mean {mean}");
    }
}

#[test]
fn transformer_block_matches_plaintext_onnx_within_the_bound() {
    // Stated bound: every output within 2e-3 of the plaintext float32 result (outputs are O(1)),
    // mean error below 5e-4; measured 1.2e-4 and 3e-5. Sources: 16 fractional bits in every
    // product and the table-based exp, reciprocal, rsqrt and gelu of fss2pc (their bounds are in
    // plugins/protocol-fss2pc/src/lib.rs).
    for protocol in ["ref", "fss2pc", "rep3"] {
        // Exported by PyTorch (torch.onnx.export), and written by hand in the older exporter's
        // form (Shape/Gather/Unsqueeze/Concat shapes, the GELU's products in the other order).
        for stem in ["transformer_block", "transformer_manual"] {
            let files = |s: &str| format!("{}{s}", stem.replace("_block", ""));
            let (got, want) =
                run_fixture(&format!("{stem}.onnx"), &files("_input.npy"), &files("_output.npy"), protocol);
            let (max, mean) = errors(&got, &want);
            eprintln!("{stem} under {protocol}: output error max {max:.2e} mean {mean:.2e}");
            assert!(max < 2e-3 && mean < 5e-4, "{stem} under {protocol}: max {max} mean {mean}");
        }
    }
}

#[test]
fn shape_ops_match_plaintext_onnx() {
    // Slice, Split, Squeeze, Unsqueeze, ReduceSum, Gather, ConstantOfShape: all exact moves or
    // sums, so within the fixed-point encoding error.
    for protocol in ["ref", "fss2pc", "rep3"] {
        let (got, want) = run_fixture("misc_ops.onnx", "misc_input.npy", "misc_output.npy", protocol);
        let (max, _) = errors(&got, &want);
        assert!(max < 1e-4, "{protocol}: max error {max}");
    }
}

#[test]
fn an_embedding_at_private_token_ids_and_an_exported_mask_match_plaintext_onnx() {
    // Gather of the model owner's table at the user's token ids (a one-hot product), a mask
    // folded at import from constants with the float's lowest value (softmax gives exactly 0
    // there; a mask that leaked would leave a probability of about 1/3), and x³: within a few
    // ulp of the probabilities and cubes (all below 2 in size).
    for protocol in ["ref", "fss2pc", "rep3"] {
        let (got, want) = run_fixture("embedding.onnx", "embedding_input.npy", "embedding_output.npy", protocol);
        let (max, _) = errors(&got, &want);
        assert!(max < 2e-3, "{protocol}: max error {max}");
    }
}

#[test]
fn three_d_layers_and_transposed_convolutions_match_plaintext_onnx() {
    // A 3-D UNet's layers (3-D convolutions, one strided with uneven depth padding, a 3-D max
    // pool, a 3-D transposed convolution and a skip concatenation) and a 2-D upsampling, built
    // from 2-D ops and products: within a few ulp per layer of the reference evaluator (outputs
    // of size about 1; each 3-D convolution adds one truncation per kernel depth).
    for protocol in ["ref", "fss2pc", "rep3"] {
        let (got, want) = run_fixture("volume.onnx", "volume_input.npy", "volume_output.npy", protocol);
        let (max, _) = errors(&got, &want);
        assert!(max < 5e-4, "{protocol}: volume max error {max}");
        let (got, want) = run_fixture("upsample2d.onnx", "upsample2d_input.npy", "upsample2d_output.npy", protocol);
        let (max, _) = errors(&got, &want);
        assert!(max < 5e-4, "{protocol}: upsample2d max error {max}");
    }
}

#[test]
fn resizes_three_d_average_pools_and_general_transposed_convolutions_match_plaintext_onnx() {
    // Nearest resizes move values exactly (uneven runs included); a 3-D average pool rounds
    // twice; a transposed convolution rounds once per group of taps (make_volume.py). Outputs
    // are of size about 1.
    for protocol in ["ref", "fss2pc", "rep3"] {
        for model in ["resize", "deconv2d", "deconv3d"] {
            let (got, want) = run_fixture(
                &format!("{model}.onnx"),
                &format!("{model}_input.npy"),
                &format!("{model}_output.npy"),
                protocol,
            );
            assert_eq!(got.len(), want.len(), "{protocol}: {model}");
            let (max, _) = errors(&got, &want);
            assert!(max < 5e-4, "{protocol}: {model} max error {max}");
        }
    }
}

/// A model exported with a symbolic batch (as torch writes language models with dynamic axes):
/// the shapes it computes from the private input (Shape, Gather and Slice of it, Range for the
/// positions, Concat into Reshape targets, Expand of a private value) fold at import for the
/// batch given, and a batch of 3 matches the reference evaluator under every protocol. A model
/// whose shapes are all fixed refuses a batch it cannot take.
#[test]
fn shapes_computed_from_a_symbolic_batch_fold_for_the_batch_given() {
    let bytes = std::fs::read(fixture("dynamic.onnx")).unwrap();
    let model = import(&bytes, &ImportOptions { batch: 3, ..Default::default() }).unwrap_or_else(|e| panic!("{e}"));
    let want = reals(&mpcflow::io::npy::read(&fixture("dynamic_output.npy")).unwrap());
    for protocol in ["ref", "fss2pc", "rep3"] {
        let mut inputs: HashMap<String, InputValue> = model
            .weights
            .iter()
            .map(|w| (w.name.clone(), InputValue::Real { shape: w.shape.clone(), values: w.values.clone() }))
            .collect();
        for ((name, _, _), file) in model.inputs.iter().zip(["dynamic_ids.npy", "dynamic_x.npy"]) {
            inputs.insert(name.clone(), mpcflow::io::npy::read(&fixture(file)).unwrap());
        }
        let y = model.output.clone();
        let roles = Roles { input_owner: "user".into(), model_owner: "vendor".into() };
        let spec = with_server_for(graph(model.clone(), "fixture", &roles, protocol, Reveal::Logits), protocol);
        let out = rt().block_on(Session::from_graph(spec, mpcflow::builtins()).run(inputs)).unwrap();
        let (max, _) = errors(&out.values(&y).unwrap(), &want);
        assert!(max < 1e-3, "{protocol}: max error {max}");
    }
    let fixed = std::fs::read(fixture("embedding.onnx")).unwrap();
    let e = import(&fixed, &ImportOptions { batch: 3, ..Default::default() }).unwrap_err().to_string();
    assert!(e.contains("a batch of 3 was asked for, but every input's shape is fixed"), "{e}");
}

#[test]
fn transposed_convolutions_and_resizes_the_importer_cannot_express_are_refused_by_name() {
    use mpcflow_importer_onnx::proto::onnx::{AttributeProto, ModelProto};
    use prost::Message;
    let changed = |file: &str, node: usize, attr: AttributeProto| {
        let mut m = ModelProto::decode(std::fs::read(fixture(file)).unwrap().as_slice()).unwrap();
        let n = &mut m.graph.as_mut().unwrap().node[node];
        n.attribute.retain(|a| a.name != attr.name);
        n.attribute.push(attr);
        import(&m.encode_to_vec(), &ImportOptions::default()).unwrap_err().to_string()
    };
    let ints = |name: &str, v: Vec<i64>| AttributeProto {
        name: Some(name.into()),
        ints: v,
        r#type: Some(7),
        ..Default::default()
    };
    let text = |name: &str, v: &str| AttributeProto {
        name: Some(name.into()),
        s: Some(v.into()),
        r#type: Some(3),
        ..Default::default()
    };
    let e = changed("upsample2d.onnx", 0, ints("dilations", vec![2, 2]));
    assert!(e.contains("ConvTranspose") && e.contains("only dilation 1 is supported"), "{e}");
    let e = changed("upsample2d.onnx", 0, ints("output_shape", vec![6, 12]));
    assert!(e.contains("output_shape is not supported"), "{e}");
    let e = changed("deconv2d.onnx", 0, ints("output_padding", vec![2, 2]));
    assert!(e.contains("output_padding [2, 2]: one per axis, each below its stride"), "{e}");
    let e = changed("resize.onnx", 1, text("mode", "linear"));
    assert!(e.contains("Resize") && e.contains("mode `linear` is not supported"), "{e}");
    let e = changed("resize.onnx", 2, text("coordinate_transformation_mode", "tf_crop_and_resize"));
    assert!(e.contains("coordinate_transformation_mode `tf_crop_and_resize` is not supported"), "{e}");
    let e = changed("resize.onnx", 0, ints("pads", vec![1, 0, 0, 1, 0, 0]));
    assert!(e.contains("AveragePool") && e.contains("a 3-D pool with padding is not supported"), "{e}");
    let e = changed("resize.onnx", 0, text("auto_pad", "SAME_UPPER"));
    assert!(e.contains("AveragePool") && e.contains("auto_pad SAME_UPPER/SAME_LOWER is not supported"), "{e}");
    let e = changed("volume.onnx", 4, text("auto_pad", "SAME_LOWER"));
    assert!(e.contains("MaxPool") && e.contains("auto_pad SAME_UPPER/SAME_LOWER is not supported"), "{e}");
}

#[test]
fn a_model_with_several_outputs_imports_the_one_named_and_only_what_it_needs() {
    use mpcflow_importer_onnx::proto::onnx::{ModelProto, ValueInfoProto};
    use prost::Message;
    let mut m = ModelProto::decode(std::fs::read(fixture("embedding.onnx")).unwrap().as_slice()).unwrap();
    let g = m.graph.as_mut().unwrap();
    // The softmax's output becomes a second model output, beside `y` (softmax + cube).
    g.output.push(ValueInfoProto { name: Some("probs".into()), ..g.output[0].clone() });
    let bytes = m.encode_to_vec();
    let e = import(&bytes, &ImportOptions::default()).unwrap_err().to_string();
    assert!(e.contains("2 outputs (y, probs): choose the one to import (`--output NAME`)"), "{e}");
    let e = import(&bytes, &ImportOptions { output: Some("logits".into()), ..Default::default() }).unwrap_err();
    assert!(e.to_string().contains("no output `logits` (outputs: y, probs)"), "{e}");
    let both = import(&bytes, &ImportOptions { output: Some("y".into()), ..Default::default() }).unwrap();
    let probs = import(&bytes, &ImportOptions { output: Some("probs".into()), ..Default::default() }).unwrap();
    assert!(
        probs.nodes.len() < both.nodes.len(),
        "the cube is left out: {} vs {}",
        probs.nodes.len(),
        both.nodes.len()
    );
    assert!(!probs.nodes.iter().any(|n| n.op == mpcflow_sdk::Op::Mul), "no product for x³ remains");
    assert_eq!(probs.weights.len(), both.weights.len(), "both need the tables");
}

/// `mpcflow import` on a model with two inputs (token ids and a second tensor, as BERT's ids and
/// mask): the pipeline declares both for the input owner, and runs as its header says.
#[test]
fn a_model_with_two_inputs_imports_and_runs_as_its_header_says() {
    use mpcflow_importer_onnx::proto::onnx::{ModelProto, NodeProto, ValueInfoProto};
    use prost::Message;
    let mut m = ModelProto::decode(std::fs::read(fixture("embedding.onnx")).unwrap().as_slice()).unwrap();
    let g = m.graph.as_mut().unwrap();
    // z = y + shift, with `shift` a second input of y's shape.
    let y_info = g.output[0].clone();
    g.input.push(ValueInfoProto { name: Some("shift".into()), ..y_info.clone() });
    g.node.push(NodeProto {
        op_type: Some("Add".into()),
        input: vec!["y".into(), "shift".into()],
        output: vec!["z".into()],
        ..Default::default()
    });
    g.output = vec![ValueInfoProto { name: Some("z".into()), ..y_info }];
    let dir = crate::support::Scratch::new("mpcflow-two-inputs");
    std::fs::write(dir.join("two.onnx"), m.encode_to_vec()).unwrap();
    let yaml = dir.join("two.yaml");
    let (model, out) = (dir.join("two.onnx"), yaml.to_str().unwrap().to_string());
    let args = ["import", model.to_str().unwrap(), "--owner", "vendor", "--input-owner", "user", "-o", &out];
    let done = mpcflow(&[&args[..], &["--reveal", "logits"]].concat());
    assert!(done.status.success(), "{}", String::from_utf8_lossy(&done.stderr));
    let text = std::fs::read_to_string(&yaml).unwrap();
    assert!(text.contains("user brings `ids` (shape [2, 5]), `shift` (shape [2, 5, 4])"), "{text}");
    let command = text.lines().find(|l| l.contains("mpcflow run")).unwrap();
    assert!(command.contains("--input ids=@IDS.npy --input shift=@SHIFT.npy"), "{command}");
    // Run it with the fixture's ids and a shift of 1.
    let ids = mpcflow::io::npy::read(&fixture("embedding_input.npy")).unwrap();
    mpcflow::io::npy::write(
        &dir.join("IDS.npy"),
        &ids.to_tensor(DType::Fixed, FixedPoint::default()).unwrap(),
        FixedPoint::default(),
    )
    .unwrap();
    let shift = InputValue::Real { shape: vec![2, 5, 4], values: vec![1.0; 40] };
    mpcflow::io::npy::write(
        &dir.join("SHIFT.npy"),
        &shift.to_tensor(DType::Fixed, FixedPoint::default()).unwrap(),
        FixedPoint::default(),
    )
    .unwrap();
    let run: Vec<String> = command.trim_start_matches("#   mpcflow ").split_whitespace().map(String::from).collect();
    let ran = std::process::Command::new(env!("CARGO_BIN_EXE_mpcflow"))
        .current_dir(&dir)
        .args(&run)
        .arg("--json")
        .output()
        .unwrap();
    assert!(ran.status.success(), "{}", String::from_utf8_lossy(&ran.stderr));
    let doc: serde_json::Value = serde_json::from_slice(&ran.stdout).unwrap();
    let got: Vec<f64> = doc["outputs"]["z"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|r| {
            r.as_array().unwrap().iter().flat_map(|c| c.as_array().unwrap().iter().map(|v| v.as_f64().unwrap()))
        })
        .collect();
    let want = reals(&mpcflow::io::npy::read(&fixture("embedding_output.npy")).unwrap());
    let (max, _) = errors(&got, &want.iter().map(|w| w + 1.0).collect::<Vec<_>>());
    assert!(max < 2e-3, "max error {max}");
}

#[test]
fn token_ids_outside_the_table_are_refused_under_ref() {
    let bytes = std::fs::read(fixture("embedding.onnx")).unwrap();
    let model = import(&bytes, &ImportOptions::default()).unwrap();
    let mut inputs: HashMap<String, InputValue> = model
        .weights
        .iter()
        .map(|w| (w.name.clone(), InputValue::Real { shape: w.shape.clone(), values: w.values.clone() }))
        .collect();
    let ids = InputValue::Real { shape: vec![2, 5], values: vec![0.0, 1.0, 2.0, 3.0, 12.0, 0.0, 0.0, 0.0, 0.0, 0.0] };
    inputs.insert(model.inputs[0].0.clone(), ids);
    let roles = Roles { input_owner: "user".into(), model_owner: "vendor".into() };
    let spec = graph(model, "fixture", &roles, "ref", Reveal::Logits);
    let e = rt().block_on(Session::from_graph(spec, mpcflow::builtins()).run(inputs)).unwrap_err().to_string();
    assert!(e.contains("node `tok_onehot`") && e.contains("onehot index 12 is not an integer in [0, 12)"), "{e}");
}

/// The first input of `m` that is not a weight, as a tensor type.
fn first_input(
    m: &mut mpcflow_importer_onnx::proto::onnx::ModelProto,
) -> &mut mpcflow_importer_onnx::proto::onnx::type_proto::Tensor {
    use mpcflow_importer_onnx::proto::onnx::type_proto::Value;
    let g = m.graph.as_mut().unwrap();
    let init: Vec<String> = g.initializer.iter().map(|t| t.name().to_string()).collect();
    let vi = g.input.iter_mut().find(|v| !init.iter().any(|n| n == v.name())).unwrap();
    match vi.r#type.as_mut().unwrap().value.as_mut().unwrap() {
        Value::TensorType(t) => t,
        _ => panic!("the digits model's input is a tensor"),
    }
}

/// What the importer refuses up front instead of failing later: an input of strings, explicit
/// sizes of 0 or less, a shape too large to plan, and weights fixed point cannot hold.
#[test]
fn inputs_and_weights_that_cannot_run_are_refused_at_import() {
    use mpcflow_importer_onnx::proto::onnx::ModelProto;
    use mpcflow_importer_onnx::proto::onnx::tensor_shape_proto::dimension::Value;
    use prost::Message;
    let model = ModelProto::decode(std::fs::read(fixture("digits_cnn.onnx")).unwrap().as_slice()).unwrap();
    let edit = |f: &dyn Fn(&mut ModelProto)| {
        let mut m = model.clone();
        f(&mut m);
        import(&m.encode_to_vec(), &ImportOptions::default()).unwrap_err().to_string()
    };
    let e = edit(&|m| first_input(m).elem_type = Some(8));
    assert!(e.contains("holds strings"), "{e}");
    let e = edit(&|m| first_input(m).shape.as_mut().unwrap().dim[1].value = Some(Value::DimValue(-3)));
    assert!(e.contains("dimension 1 is -3; a model input needs sizes of at least 1"), "{e}");
    let e = edit(&|m| first_input(m).shape.as_mut().unwrap().dim[1].value = Some(Value::DimValue(0)));
    assert!(e.contains("dimension 1 is 0"), "{e}");
    let e = edit(&|m| {
        for d in &mut first_input(m).shape.as_mut().unwrap().dim {
            d.value = Some(Value::DimValue(1 << 20));
        }
    });
    assert!(e.contains("more than 68719476736 elements"), "{e}");
    for bad in [f32::NAN, 1e20] {
        let e = edit(&|m| {
            let inits = &mut m.graph.as_mut().unwrap().initializer;
            match inits.iter_mut().find(|t| !t.float_data.is_empty()) {
                Some(w) => w.float_data[0] = bad,
                None => {
                    let w = inits.iter_mut().find(|t| t.raw_data().len() >= 4).unwrap();
                    w.raw_data.as_mut().unwrap()[..4].copy_from_slice(&bad.to_le_bytes());
                }
            }
        });
        assert!(e.contains("which fixed point cannot hold"), "{bad}: {e}");
    }
}
