//! Every pipeline in `graphs/` under rep3, against `ref`: the inputs its first lines name, a
//! third computing party (`carol`, who brings nothing and learns nothing) added to the
//! two-party ones.

use crate::support::{root, rt};
use mpcflow::runtime::pipeline::Pipeline;
use mpcflow::runtime::{InputValue, RunOutput, Session, SessionConfig};
use std::collections::HashMap;

/// The inputs of the `run` command in `file`'s first lines, paths made absolute.
fn stated_inputs(file: &str, pipeline: &Pipeline) -> HashMap<String, InputValue> {
    let text = std::fs::read_to_string(root().join(file)).unwrap();
    let line =
        text.lines().find(|l| l.contains(&format!(" run {file} "))).unwrap_or_else(|| panic!("{file}: no command"));
    let args: Vec<&str> = line.split_whitespace().collect();
    let mut inputs = HashMap::new();
    let mut dirs = vec![];
    for pair in args.windows(2) {
        match pair {
            ["--input", arg] => {
                let arg = arg.replace("=@", &format!("=@{}/", root().display()));
                let (name, value) = mpcflow::io::input_arg::parse(&arg).unwrap();
                inputs.insert(name, value);
            }
            ["--input-dir", dir] => dirs.push(root().join(dir)),
            _ => {}
        }
    }
    for decl in &pipeline.spec.inputs {
        if let Some(p) = dirs.iter().map(|d| d.join(format!("{}.npy", decl.name))).find(|p| p.is_file()) {
            inputs.insert(decl.name.clone(), mpcflow::io::npy::read(&p).unwrap());
        }
    }
    inputs
}

fn run(pipeline: Pipeline, protocol: &str, inputs: &HashMap<String, InputValue>) -> RunOutput {
    let cfg = SessionConfig { protocol: Some(protocol.into()), ..Default::default() };
    let s = Session::from_pipeline(pipeline, mpcflow::builtins()).unwrap().with_config(cfg);
    rt().block_on(s.run(inputs.clone())).unwrap_or_else(|e| panic!("{protocol}: {e}"))
}

#[test]
fn every_graph_runs_under_rep3_as_under_ref() {
    let mut files: Vec<String> = std::fs::read_dir(root().join("graphs"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|f| f.ends_with(".yaml"))
        .map(|f| format!("graphs/{f}"))
        .collect();
    files.sort();
    assert!(files.len() >= 9, "{files:?}");
    for file in &files {
        let pipeline = Pipeline::from_path(&root().join(file)).unwrap();
        let inputs = stated_inputs(file, &pipeline);
        let plain = run(pipeline.clone(), "ref", &inputs);
        let mut three = pipeline;
        if three.spec.parties.len() == 2 {
            three.spec.parties.push("carol".into());
        }
        let secure = run(three, "rep3", &inputs);
        assert_eq!(secure.outputs.len(), plain.outputs.len(), "{file}");
        for o in &plain.outputs {
            let (want, got) = (plain.values(&o.name).unwrap(), secure.values(&o.name).unwrap());
            assert_eq!(want.len(), got.len(), "{file}: `{}`", o.name);
            for (a, b) in want.iter().zip(&got) {
                // Products and means round once or twice (a few ulp of 2^-16); classes and
                // counts are exact.
                assert!((a - b).abs() <= 1e-3 * a.abs().max(1.0), "{file}: `{}`: ref {a}, rep3 {b}", o.name);
            }
        }
    }
}
