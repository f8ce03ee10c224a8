//! `mpcflow import` as a library call: a model file becomes a pipeline file that runs as it is,
//! and its weights become the model owner's `NAME.npy` input files. The command line and the
//! Python package's `import_onnx` both call [`import_to_files`].

use crate::import::{Reveal, Roles, graph};
use crate::io::npy;
use mpcflow_importer_onnx::{ImportOptions, import};
use mpcflow_runtime::Registry;
use std::path::{Path, PathBuf};

/// What to import and where to write it.
#[derive(Clone, Debug)]
pub struct ImportRequest {
    /// The model file.
    pub model: PathBuf,
    /// The importer to read it with: `onnx` (built in) or one in the registry.
    pub importer: String,
    /// The party that owns the model (its weights are that party's private inputs).
    pub owner: String,
    /// The party that owns the model's input.
    pub input_owner: String,
    /// The pipeline file to write.
    pub out: PathBuf,
    /// Where to write the weights (default: next to the pipeline, in `STEM.weights/`).
    pub weights: Option<PathBuf>,
    /// Inputs per run (the size given to the model's symbolic batch dimension).
    pub batch: usize,
    /// What a run reveals.
    pub reveal: Reveal,
    /// Protocol of the pipeline.
    pub protocol: String,
    /// Keep one-element float initializers private.
    pub private_scalars: bool,
    /// The output to import, for a model with several.
    pub output: Option<String>,
    /// Name of the computation (default: the pipeline file's stem).
    pub name: Option<String>,
    /// An input file to name in the run command written at the top of the pipeline.
    pub sample_input: Option<PathBuf>,
    /// A labels file to name in that command.
    pub sample_labels: Option<PathBuf>,
    /// Record activation ranges from these samples (one per model input), widened by `margin`
    /// (see [`crate::calibrate`]); none: no calibration.
    pub calibrate: Vec<crate::calibrate::SampleFile>,
    /// How much calibration widens each observed interval.
    pub margin: f64,
}

impl ImportRequest {
    /// An ONNX model, imported with the defaults of `mpcflow import`.
    pub fn new(model: PathBuf, owner: &str, input_owner: &str, out: PathBuf) -> ImportRequest {
        ImportRequest {
            model,
            importer: "onnx".into(),
            owner: owner.into(),
            input_owner: input_owner.into(),
            out,
            weights: None,
            batch: 1,
            reveal: Reveal::Class,
            protocol: "fss2pc".into(),
            private_scalars: false,
            output: None,
            name: None,
            sample_input: None,
            sample_labels: None,
            calibrate: Vec::new(),
            margin: crate::calibrate::DEFAULT_MARGIN,
        }
    }
}

/// What [`import_to_files`] wrote.
#[derive(Clone, Debug)]
pub struct Imported {
    /// The pipeline file.
    pub pipeline: PathBuf,
    /// The directory of the weights' `NAME.npy` files.
    pub weights_dir: PathBuf,
    /// Nodes of the pipeline.
    pub nodes: usize,
    /// Weight tensors written.
    pub weights: usize,
}

/// A path as given (see [`header_path`]), or a placeholder.
fn shown_path(p: &Option<PathBuf>, placeholder: &str) -> String {
    p.as_ref().map_or(placeholder.to_string(), |p| header_path(p))
}

/// `path` as the pipeline's header may show it: the pipeline goes to the other party, and a
/// local path must not. A relative path is shown as given (the commands in the header are typed
/// from the current directory); an absolute one relative to the current directory when it lies
/// inside it, else by its file name only.
fn header_path(path: &Path) -> String {
    if path.is_relative() {
        return path.display().to_string();
    }
    let inside = match (path.canonicalize(), Path::new(".").canonicalize()) {
        (Ok(p), Ok(d)) => p.strip_prefix(&d).ok().map(Path::to_path_buf),
        _ => None,
    };
    match inside {
        Some(p) if !p.as_os_str().is_empty() => p.display().to_string(),
        _ => path.file_name().map_or_else(|| "DIR".into(), |n| n.to_string_lossy().into_owned()),
    }
}

/// Imports `req.model` and writes the pipeline and the weights. Errors name the file.
pub fn import_to_files(req: &ImportRequest, registry: &Registry) -> Result<Imported, String> {
    if req.owner == req.input_owner {
        return Err("the model's owner and its input's owner must be two different parties".into());
    }
    if req.batch == 0 {
        return Err("the batch must be at least 1".into());
    }
    let shown = req.model.display();
    let bytes = std::fs::read(&req.model).map_err(|e| format!("cannot read {shown}: {e}"))?;
    let model = if req.importer == "onnx" {
        let opts = ImportOptions { batch: req.batch, private_scalars: req.private_scalars, output: req.output.clone() };
        import(&bytes, &opts).map_err(|e| e.to_string())
    } else {
        let importer = registry.importer(&req.importer).ok_or_else(|| {
            format!("unknown importer `{}` (importers: {})", req.importer, registry.importer_names().join(", "))
        })?;
        importer.import(&bytes).map_err(|e| e.to_string())
    }
    .map_err(|e| format!("{shown}: {e}"))?;
    let stem = req.out.file_stem().and_then(|s| s.to_str()).unwrap_or("model").to_string();
    let name = req.name.clone().unwrap_or_else(|| mpcflow_importer_onnx::clean(&stem));
    let dir = req.out.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let weights_dir = req.weights.clone().unwrap_or_else(|| dir.join(format!("{stem}.weights")));
    let input_names: Vec<&str> = model.inputs.iter().map(|i| i.0.as_str()).collect();
    let sample_files = match req.calibrate.as_slice() {
        [] => vec![],
        files => crate::calibrate::match_samples(files, &input_names).map_err(|e| format!("{shown}: {e}"))?,
    };
    std::fs::create_dir_all(&weights_dir).map_err(|e| format!("cannot create {}: {e}", weights_dir.display()))?;
    for w in &model.weights {
        let p = weights_dir.join(format!("{}.npy", w.name));
        npy::write_f64(&p, &w.shape, &w.values).map_err(|e| format!("cannot write {}: {e}", p.display()))?;
    }
    let (n_weights, n_params) = (model.weights.len(), model.weights.iter().map(|w| w.values.len()).sum::<usize>());
    // Every input the input owner brings, as the header names them.
    let brought: Vec<String> = model.inputs.iter().map(|i| format!("`{}` (shape {:?})", i.0, i.2)).collect();
    let given: Vec<String> = match model.inputs.as_slice() {
        [one] => vec![format!("--input {}=@{}", one.0, shown_path(&req.sample_input, "INPUT.npy"))],
        many => many.iter().map(|i| format!("--input {}=@{}.npy", i.0, i.0.to_uppercase())).collect(),
    };
    let roles = Roles { input_owner: req.input_owner.clone(), model_owner: req.owner.clone() };
    let ranges = if sample_files.is_empty() {
        None
    } else {
        let mut samples = vec![];
        for (input, f) in &sample_files {
            let v = npy::read(&f.path).map_err(|e| format!("calibration sample {}: {e}", f.path.display()))?;
            samples.push((input.clone(), v));
        }
        let r = crate::calibrate::calibrate(&model, &roles, &samples, req.margin).map_err(|e| {
            let files: Vec<String> = sample_files.iter().map(|(_, f)| f.path.display().to_string()).collect();
            format!("calibration on {}: {e}", files.join(", "))
        })?;
        Some(r)
    };
    let mut spec = graph(model, &name, &roles, &req.protocol, req.reveal);
    if let Some(r) = &ranges {
        r.apply(&mut spec);
    }
    // Commands in the header are relative to the current directory, as the user typed them;
    // no absolute path is written (see `header_path`).
    let wdir = header_path(&weights_dir);
    let out_shown = header_path(&req.out);
    let labels = if req.reveal == Reveal::Accuracy {
        format!(" --input labels=@{}", shown_path(&req.sample_labels, "LABELS.npy"))
    } else {
        String::new()
    };
    let header = vec![
        format!(
            "Imported by `mpcflow import` from {} ({n_weights} weight tensors, {n_params} parameters).",
            // The file's name only: the pipeline goes to the other party, a local path does not.
            req.model.file_name().map_or_else(|| "the model".into(), |n| n.to_string_lossy())
        ),
        format!("{} brings {}; {} brings the weights in {wdir}/.", req.input_owner, brought.join(", "), req.owner),
        match &ranges {
            // The file's name only: the pipeline goes to the other party, a local path does not.
            Some(r) => format!(
                "Ranges of {} nodes and of {} calibrated on {} in the clear, widened by a margin of {}: \
                 contracts that ref enforces and fss2pc relies on.",
                r.nodes.len(),
                sample_files.iter().map(|(input, _)| format!("`{input}`")).collect::<Vec<_>>().join(", "),
                sample_files
                    .iter()
                    .map(|(_, f)| f.path.file_name().map_or_else(|| "the sample".into(), |n| n.to_string_lossy()))
                    .collect::<Vec<_>>()
                    .join(", "),
                req.margin
            ),
            None => String::new(),
        },
        "Run it (every party and the dealer in this process):".into(),
        format!("  mpcflow run {out_shown} {}{labels} --input-dir {wdir}", given.join(" ")),
    ];
    let header: Vec<String> = header.into_iter().filter(|h| !h.is_empty()).collect();
    let text = mpcflow_runtime::pipeline::to_yaml(&spec, &header);
    mpcflow_runtime::pipeline::Pipeline::from_yaml(&text, &req.out.display().to_string())
        .map_err(|e| format!("internal error: the written pipeline does not load back: {e}"))?;
    std::fs::write(&req.out, text).map_err(|e| format!("cannot write {}: {e}", req.out.display()))?;
    Ok(Imported { pipeline: req.out.clone(), weights_dir, nodes: spec.nodes.len(), weights: n_weights })
}
