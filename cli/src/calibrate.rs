//! Activation ranges from a plaintext run on sample data: `mpcflow import --calibrate SAMPLE.npy`,
//! or `--calibrate NAME=SAMPLE.npy` for each input of a model with several (BERT's token ids and
//! attention mask).
//!
//! What CrypTFlow's Athos does for its scales, done for widths: the model owner runs the imported
//! model in the clear (`ref`, in this process) on its own sample inputs, records every node's
//! smallest and largest value over the sample, widens each interval by a stated margin, and
//! writes the result into the pipeline as each node's `range:` (and the model input's). The
//! planner then narrows the comparisons (ReLU, max pooling, argmax) and lookups those values
//! feed: fewer tree levels, smaller keys.
//!
//! **Margin.** An observed interval `[lo, hi]` becomes
//! `[lo − m·max(|lo|, |hi|) − u, hi + m·max(|lo|, |hi|) + u]` with `m` the margin (0.5 by
//! default) and `u` a floor of `2^(−f/2)` for fixed point (1/256 at `f = 16`: room for the
//! secure protocols' few-ulp errors around values the sample showed as exact) and 1 for int,
//! rounded outward to the dtype and kept within what the dtype holds (`2^(61−f)`, strictly
//! inside `2^(62−f)`).
//! Bit-valued nodes (comparisons) get no range.
//!
//! **Several inputs.** Each input's sample holds the same number of batches; batch `i` of every
//! sample makes one run. A sample should hold what runs will see: an attention mask with padded
//! positions, or the masked scores (the importer's −2^20) fall outside the recorded ranges and
//! `ref` refuses the run; token ids across the vocabulary runs use, since an input's range is
//! recorded too and its owner refuses ids past it.
//!
//! **A declared range is a contract.** `ref` stops a run whose node leaves its range, naming
//! the node and the value; a secure protocol cannot see the values, and a value past a narrowed
//! width makes its result wrong. The ranges are public (both parties read the pipeline): they
//! tell the data owner the bounds of the model's activations on the sample, with the margin.

use crate::import::{Roles, model_inputs};
use mpcflow_runtime::{InputValue, Session, SessionConfig};
use mpcflow_sdk::graph::{GraphSpec, OutputSpec};
use mpcflow_sdk::importer::ImportedModel;
use mpcflow_sdk::{DType, Tensor};
use std::collections::HashMap;
use std::path::PathBuf;

/// A sample file for `--calibrate`: `SAMPLE.npy` for a model's only input, or `NAME=SAMPLE.npy`
/// for its input `NAME`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SampleFile {
    /// The model input it samples (`None`: the model's only input).
    pub input: Option<String>,
    /// The `.npy` file.
    pub path: PathBuf,
}

impl std::str::FromStr for SampleFile {
    type Err = String;

    /// `NAME=PATH` when the text before the first `=` is a name (no path separator), else a path.
    fn from_str(s: &str) -> Result<SampleFile, String> {
        match s.split_once('=') {
            Some((name, path)) if !name.is_empty() && !name.contains(['/', '\\']) => {
                if path.is_empty() {
                    return Err(format!("`{s}`: give the sample's file after `{name}=`"));
                }
                Ok(SampleFile { input: Some(name.to_string()), path: PathBuf::from(path) })
            }
            _ if s.is_empty() => Err("give a sample file (SAMPLE.npy or INPUT=SAMPLE.npy)".into()),
            _ => Ok(SampleFile { input: None, path: PathBuf::from(s) }),
        }
    }
}

/// Pairs each of `inputs` (the model's, in order) with its sample file, refusing a sample for no
/// input, two for one, an input without one, and an unnamed sample for a model with several.
pub fn match_samples<'a>(files: &'a [SampleFile], inputs: &[&str]) -> Result<Vec<(String, &'a SampleFile)>, String> {
    let listed = inputs.iter().map(|n| format!("`{n}`")).collect::<Vec<_>>().join(", ");
    if let [one] = files
        && one.input.is_none()
    {
        return match inputs {
            [input] => Ok(vec![(input.to_string(), one)]),
            _ => Err(format!(
                "the model has {} inputs ({listed}): name each one's sample, {}",
                inputs.len(),
                inputs.iter().map(|n| format!("--calibrate {n}=SAMPLE.npy")).collect::<Vec<_>>().join(" ")
            )),
        };
    }
    let mut by_name: HashMap<&str, &SampleFile> = HashMap::new();
    for f in files {
        let name = f.input.as_deref().ok_or_else(|| {
            format!("name the input of each sample when there are several (`{}`: INPUT=SAMPLE.npy)", f.path.display())
        })?;
        if !inputs.contains(&name) {
            // `lr=0.1.npy` may be a file's name: say how to give it as one.
            let bare = f.path.to_str().filter(|p| !p.contains(['/', '\\']));
            let hint = bare.map(|p| format!("; a file named so is given as ./{name}={p}")).unwrap_or_default();
            return Err(format!(
                "a sample names `{name}`, which is not an input of the model (its inputs: {listed}{hint})"
            ));
        }
        if by_name.insert(name, f).is_some() {
            return Err(format!("two samples name the input `{name}`"));
        }
    }
    inputs
        .iter()
        .map(|&n| {
            by_name
                .get(n)
                .map(|f| (n.to_string(), *f))
                .ok_or_else(|| format!("no sample for the model input `{n}` (--calibrate {n}=SAMPLE.npy)"))
        })
        .collect()
}

/// The default margin (see the module docs).
pub const DEFAULT_MARGIN: f64 = 0.5;

/// What a calibration found: the declared ranges of the model's inputs and of its nodes.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Ranges {
    /// Each model input's range, by name.
    pub inputs: HashMap<String, [f64; 2]>,
    /// Each calibrated node's range, by name.
    pub nodes: HashMap<String, [f64; 2]>,
}

impl Ranges {
    /// Writes the ranges into `g` (inputs and nodes the model does not have are left alone).
    pub fn apply(&self, g: &mut GraphSpec) {
        for i in &mut g.inputs {
            if let Some(r) = self.inputs.get(&i.name) {
                i.range = Some(*r);
            }
        }
        for n in &mut g.nodes {
            if let Some(r) = self.nodes.get(&n.name) {
                n.range = Some(*r);
            }
        }
    }
}

/// Smallest and largest value seen per tensor.
#[derive(Default)]
struct Seen {
    bounds: HashMap<String, (f64, f64, DType)>,
}

impl Seen {
    fn add(&mut self, name: &str, t: &Tensor, fp: mpcflow_sdk::FixedPoint) {
        let values = t.data.iter().map(|&w| if t.dtype == DType::Fixed { fp.decode(w) } else { w as i64 as f64 });
        let (lo, hi) = values.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| (lo.min(v), hi.max(v)));
        if lo > hi {
            return;
        }
        let e = self.bounds.entry(name.to_string()).or_insert((lo, hi, t.dtype));
        e.0 = e.0.min(lo);
        e.1 = e.1.max(hi);
    }
}

/// `[lo, hi]` widened by the margin and the floor, rounded outward to the dtype's grid, within
/// the dtype's range.
fn widened(lo: f64, hi: f64, dtype: DType, margin: f64, fp: mpcflow_sdk::FixedPoint) -> [f64; 2] {
    let (unit, floor) = match dtype {
        DType::Fixed => (1.0 / fp.scale(), 2f64.powf(-f64::from(fp.frac_bits) / 2.0)),
        _ => (1.0, 1.0),
    };
    let pad = margin * lo.abs().max(hi.abs()) + floor;
    // Values of a dtype stay below 2^62 words (see the runtime's input checks); 2^61 keeps the
    // bound exact in f64 and strictly inside.
    let limit = 2f64.powi(61) * unit;
    let grid = |v: f64, up: bool| {
        let k = v / unit;
        ((if up { k.ceil() } else { k.floor() }) * unit).clamp(-limit, limit)
    };
    [grid(lo - pad, false), grid(hi + pad, true)]
}

/// The sample as runs of the model input's shape: the sample itself, or `k` batches of it
/// along the first axis.
fn batches(sample: &InputValue, shape: &[usize]) -> Result<Vec<Vec<f64>>, String> {
    let (sshape, values): (&[usize], Vec<f64>) = match sample {
        InputValue::Real { shape, values } => (shape, values.clone()),
        InputValue::Int { shape, values } => (shape, values.iter().map(|&v| v as f64).collect()),
        InputValue::Tensor(t) => return Err(format!("an encoded {} tensor; give real numbers", t.dtype)),
    };
    let per: usize = shape.iter().product();
    let fits = sshape == shape
        || (sshape.len() == shape.len()
            && sshape.get(1..) == shape.get(1..)
            && shape.first().is_some_and(|&b| b > 0 && sshape.first().is_some_and(|&n| n > 0 && n % b == 0)));
    if !fits || per == 0 {
        return Err(format!(
            "its shape {sshape:?} is neither the model input's {shape:?} nor a whole number of batches of it \
             along the first axis"
        ));
    }
    Ok(values.chunks(per).map(<[f64]>::to_vec).collect())
}

/// Runs `model` in the clear on `samples` (each model input's values by name: its shape, or a
/// whole number of batches of it, the same number for every input) and returns the widened
/// ranges of its inputs and of every node that is not bit-valued.
pub fn calibrate(
    model: &ImportedModel,
    roles: &Roles,
    samples: &[(String, InputValue)],
    margin: f64,
) -> Result<Ranges, String> {
    if !(margin >= 0.0 && margin.is_finite()) {
        return Err(format!("the margin must be a number of 0 or more, not {margin}"));
    }
    if model.inputs.is_empty() {
        return Err("the model has no input".into());
    }
    // Per model input: its name, dtype, shape and the sample's batches.
    let mut runs = vec![];
    for (input, dtype, shape) in &model.inputs {
        let sample = samples
            .iter()
            .find(|(n, _)| n == input)
            .map(|(_, v)| v)
            .ok_or_else(|| format!("no sample for the model input `{input}`"))?;
        let b = batches(sample, shape).map_err(|e| format!("the sample of `{input}`: {e}"))?;
        runs.push((input.clone(), *dtype, shape.clone(), b));
    }
    if let Some((first, .., b0)) = runs.first()
        && let Some((other, .., b)) = runs.iter().find(|r| r.3.len() != b0.len())
    {
        return Err(format!(
            "the samples hold different numbers of batches: `{first}` {}, `{other}` {} (batch i of every sample \
             makes one run)",
            b0.len(),
            b.len()
        ));
    }
    // The model alone, every node revealed, in the clear.
    let mut g = GraphSpec::new("calibration", [roles.input_owner.clone(), roles.model_owner.clone()]).protocol("ref");
    g.inputs = model_inputs(model, roles);
    g.constants = model.constants.clone();
    g.nodes = model.nodes.clone();
    g.outputs = model
        .nodes
        .iter()
        .map(|n| OutputSpec { name: n.name.clone(), reveal_to: vec![roles.input_owner.clone()] })
        .collect();
    let fp = g.fixed_point;
    let config = SessionConfig { protocol: Some("ref".into()), ..Default::default() };
    let session = Session::from_graph(g, crate::builtins()).with_config(config);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the async runtime: {e}"))?;
    let mut seen = Seen::default();
    for batch in 0..runs.first().map_or(0, |r| r.3.len()) {
        let mut inputs: Vec<(String, InputValue)> = runs
            .iter()
            .map(|(name, _, shape, b)| {
                (name.clone(), InputValue::Real { shape: shape.clone(), values: b[batch].clone() })
            })
            .collect();
        for w in &model.weights {
            inputs.push((w.name.clone(), InputValue::Real { shape: w.shape.clone(), values: w.values.clone() }));
        }
        // The run is in the clear on purpose, in the model owner's process on its own sample:
        // the runtime's warning about an insecure protocol (logged on this thread, once per
        // process) would only alarm. Its other messages still go to the global subscriber.
        let out = tracing::subscriber::with_default(tracing::subscriber::NoSubscriber::default(), || {
            rt.block_on(session.run(inputs))
        })
        .map_err(|e| format!("the plaintext run failed: {e}"))?;
        for o in &out.outputs {
            seen.add(&o.name, &o.tensor, out.fixed_point);
        }
        for (name, dtype, shape, b) in &runs {
            let word = |v: f64| if *dtype == DType::Fixed { fp.encode(v) } else { v.round() as i64 as u64 };
            let t = Tensor { dtype: *dtype, shape: shape.clone(), data: b[batch].iter().map(|&v| word(v)).collect() };
            seen.add(name, &t, fp);
        }
    }
    let mut ranges = Ranges::default();
    for (name, (lo, hi, dtype)) in seen.bounds {
        if dtype == DType::Bit {
            continue;
        }
        let r = widened(lo, hi, dtype, margin, fp);
        if runs.iter().any(|(input, ..)| *input == name) {
            ranges.inputs.insert(name, r);
        } else {
            ranges.nodes.insert(name, r);
        }
    }
    Ok(ranges)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intervals_widen_by_the_margin_and_a_unit_onto_the_grid() {
        let fp = mpcflow_sdk::FixedPoint::default();
        assert_eq!(widened(0.0, 4.0, DType::Fixed, 0.5, fp), [-2.0 - 1.0 / 256.0, 6.0 + 1.0 / 256.0]);
        assert_eq!(widened(0.0, 0.0, DType::Fixed, 0.5, fp), [-1.0 / 256.0, 1.0 / 256.0], "exact zeros get room");
        assert_eq!(widened(-3.0, 1.0, DType::Int, 0.5, fp), [-6.0, 4.0]);
        assert_eq!(widened(2.0, 2.0, DType::Int, 0.0, fp), [1.0, 3.0]);
        let [lo, hi] = widened(0.1, 0.3, DType::Fixed, 0.25, fp);
        assert!(lo <= 0.1 - 0.075 && hi >= 0.3 + 0.075, "{lo} {hi}");
        assert_eq!((lo * 65536.0).fract(), 0.0);
        let [lo, hi] = widened(-6e13, 6e13, DType::Fixed, 0.5, fp);
        assert_eq!([lo, hi], [-2f64.powi(45), 2f64.powi(45)], "within what fixed point holds");
    }

    #[test]
    fn a_sample_file_is_a_path_or_a_named_path() {
        let f = |s: &str| s.parse::<SampleFile>();
        assert_eq!(f("a.npy").unwrap(), SampleFile { input: None, path: "a.npy".into() });
        assert_eq!(f("ids=x/a.npy").unwrap(), SampleFile { input: Some("ids".into()), path: "x/a.npy".into() });
        assert_eq!(f("dir/a=b.npy").unwrap(), SampleFile { input: None, path: "dir/a=b.npy".into() }, "a path");
        assert!(f("ids=").unwrap_err().contains("after `ids=`"));
        assert!(f("").is_err());
        let files = [f("x=1.npy").unwrap(), f("ids=2.npy").unwrap()];
        let m = match_samples(&files, &["ids", "x"]).unwrap();
        assert_eq!(
            m.iter().map(|(n, f)| (n.as_str(), f.path.to_str().unwrap())).collect::<Vec<_>>(),
            [("ids", "2.npy"), ("x", "1.npy")]
        );
        let one = [f("s.npy").unwrap()];
        assert_eq!(match_samples(&one, &["input"]).unwrap()[0].0, "input");
        let odd = [f("lr=0.1.npy").unwrap()];
        let e = match_samples(&odd, &["input"]).unwrap_err();
        assert!(e.contains("a sample names `lr`") && e.contains("given as ./lr=0.1.npy"), "{e}");
        assert_eq!(f("./lr=0.1.npy").unwrap().input, None);
        let mixed = [f("ids=1.npy").unwrap(), f("2.npy").unwrap()];
        assert!(match_samples(&mixed, &["ids", "x"]).unwrap_err().contains("name the input of each sample"));
    }

    #[test]
    fn a_sample_is_one_batch_or_several_or_refused() {
        let real = |shape: Vec<usize>| InputValue::Real { values: vec![0.5; shape.iter().product()], shape };
        assert_eq!(batches(&real(vec![2, 3]), &[2, 3]).unwrap().len(), 1);
        assert_eq!(batches(&real(vec![6, 3]), &[2, 3]).unwrap().len(), 3);
        let e = batches(&real(vec![5, 3]), &[2, 3]).unwrap_err();
        assert!(e.contains("neither the model input's [2, 3]"), "{e}");
        assert!(batches(&real(vec![2, 4]), &[2, 3]).is_err());
    }
}
