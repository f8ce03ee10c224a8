//! `mpcflow import MODEL.onnx --owner NAME --input-owner NAME -o graph.yaml`: a model becomes a
//! pipeline file that runs as it is, and its weights become the model owner's input files.
//! `--importer NAME --plugin PATH` reads another format through an importer plugin.

use anyhow::{Context, Result, anyhow};
use mpcflow::import::{Reveal, Roles, graph};
use mpcflow::io::npy;
use mpcflow_importer_onnx::{ImportOptions, import};
use std::path::{Path, PathBuf};

/// Arguments.
#[derive(clap::Args)]
pub struct Args {
    /// The model file (ONNX unless --importer says otherwise).
    model: PathBuf,
    /// The importer to read it with: `onnx` (built in) or one a --plugin provides.
    #[arg(long, default_value = "onnx")]
    importer: String,
    #[command(flatten)]
    plugins: super::PluginArgs,
    /// The party that owns the model (its weights are that party's private inputs).
    #[arg(long)]
    owner: String,
    /// The party that owns the model's input.
    #[arg(long)]
    input_owner: String,
    /// The pipeline file to write.
    #[arg(short, long)]
    out: PathBuf,
    /// Where to write the weights, one NAME.npy each (default: next to the pipeline, in
    /// STEM.weights/).
    #[arg(long)]
    weights: Option<PathBuf>,
    /// Inputs per run (the size given to the model's symbolic batch dimension).
    #[arg(long, default_value_t = 1)]
    batch: usize,
    /// What a run reveals: the predicted class or the logits (to the input owner), or the
    /// number of correct predictions on labelled inputs (to both).
    #[arg(long, value_enum, default_value_t = Reveal::Class)]
    reveal: Reveal,
    /// Protocol of the pipeline.
    #[arg(long, default_value = "fss2pc")]
    protocol: String,
    /// Keep one-element float initializers private like every other weight (by default they
    /// are public constants, as exporters store √2, 0.5 and attention scales that way).
    #[arg(long)]
    private_scalars: bool,
    /// Name of the computation (default: the pipeline file's stem).
    #[arg(long)]
    name: Option<String>,
    /// An input file to name in the run command written at the top of the pipeline.
    #[arg(long)]
    sample_input: Option<PathBuf>,
    /// A labels file to name in that command (with --reveal accuracy).
    #[arg(long)]
    sample_labels: Option<PathBuf>,
    /// Record activation ranges: run the model in the clear on this sample of its input (the
    /// input's shape, or a whole number of batches of it along the first axis; .npy), and write
    /// each node's range, widened by --margin, into the pipeline. The planner narrows the
    /// comparisons and lookups they feed; `ref` enforces them (see the README).
    #[arg(long, value_name = "SAMPLE.npy")]
    calibrate: Option<PathBuf>,
    /// How much --calibrate widens each observed interval [lo, hi]: by MARGIN·max(|lo|, |hi|)
    /// on each side, plus a floor (2^(−f/2) for fixed point, 1 for int).
    #[arg(long, default_value_t = mpcflow::calibrate::DEFAULT_MARGIN, requires = "calibrate")]
    margin: f64,
}

fn relative(path: &Path, to_dir: &Path) -> String {
    match (path.canonicalize(), to_dir.canonicalize()) {
        (Ok(p), Ok(d)) => p.strip_prefix(&d).map_or(p.clone(), Path::to_path_buf).display().to_string(),
        _ => path.display().to_string(),
    }
}

pub fn run(a: Args) -> Result<()> {
    if a.owner == a.input_owner {
        return Err(anyhow!("--owner and --input-owner must be two different parties"));
    }
    if a.batch == 0 {
        return Err(anyhow!("--batch must be at least 1"));
    }
    let bytes = std::fs::read(&a.model).with_context(|| format!("cannot read {}", a.model.display()))?;
    let model = if a.importer == "onnx" {
        import(&bytes, &ImportOptions { batch: a.batch, private_scalars: a.private_scalars }).map_err(|e| e.to_string())
    } else {
        let registry = a.plugins.registry(None)?;
        let importer = registry.importer(&a.importer).ok_or_else(|| {
            anyhow!("unknown importer `{}` (importers: {})", a.importer, registry.importer_names().join(", "))
        })?;
        importer.import(&bytes).map_err(|e| e.to_string())
    }
    .map_err(|e| anyhow!("{}: {e}", a.model.display()))?;
    let stem = a.out.file_stem().and_then(|s| s.to_str()).unwrap_or("model").to_string();
    let name = a.name.clone().unwrap_or_else(|| mpcflow_importer_onnx::clean(&stem));
    let dir = a.out.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let weights_dir = a.weights.clone().unwrap_or_else(|| dir.join(format!("{stem}.weights")));
    std::fs::create_dir_all(&weights_dir).with_context(|| format!("cannot create {}", weights_dir.display()))?;
    for w in &model.weights {
        let p = weights_dir.join(format!("{}.npy", w.name));
        npy::write_f64(&p, &w.shape, &w.values).with_context(|| format!("cannot write {}", p.display()))?;
    }
    let (n_weights, n_params) = (model.weights.len(), model.weights.iter().map(|w| w.values.len()).sum::<usize>());
    if model.inputs.len() != 1 {
        let names: Vec<&str> = model.inputs.iter().map(|i| i.0.as_str()).collect();
        return Err(anyhow!(
            "{}: the model has {} inputs ({}); `mpcflow import` writes pipelines for models with one input",
            a.model.display(),
            names.len(),
            names.join(", ")
        ));
    }
    let input = model.inputs.first().map(|i| (i.0.clone(), i.2.clone())).unwrap_or_default();
    let roles = Roles { input_owner: a.input_owner.clone(), model_owner: a.owner.clone() };
    let ranges = match &a.calibrate {
        Some(path) => {
            let sample = npy::read(path).map_err(|e| anyhow!("--calibrate {}: {e}", path.display()))?;
            let r = mpcflow::calibrate::calibrate(&model, &roles, &sample, a.margin)
                .map_err(|e| anyhow!("--calibrate {}: {e}", path.display()))?;
            Some((path, r))
        }
        None => None,
    };
    let mut spec = graph(model, &name, &roles, &a.protocol, a.reveal);
    if let Some((_, r)) = &ranges {
        r.apply(&mut spec, &input.0);
    }
    // Commands in the header are relative to the current directory, as the user typed them.
    let wdir = relative(&weights_dir, Path::new("."));
    let out_shown = a.out.display();
    let shown = |p: &Option<PathBuf>, placeholder: &str| {
        p.as_ref().map_or(placeholder.to_string(), |p| p.display().to_string())
    };
    let labels = if a.reveal == Reveal::Accuracy {
        format!(" --input labels=@{}", shown(&a.sample_labels, "LABELS.npy"))
    } else {
        String::new()
    };
    let header = vec![
        format!(
            "Imported by `mpcflow import` from {} ({n_weights} weight tensors, {n_params} parameters).",
            a.model.display()
        ),
        format!(
            "{} brings `{}` (shape {:?}); {} brings the weights in {wdir}/.",
            a.input_owner, input.0, input.1, a.owner
        ),
        match &ranges {
            // The file's name only: the pipeline goes to the other party, a local path does not.
            Some((path, r)) => format!(
                "Ranges of {} nodes and of `{}` calibrated on {} in the clear, widened by a margin of {}: \
                 contracts that ref enforces and fss2pc relies on.",
                r.nodes.len(),
                input.0,
                path.file_name().map_or_else(|| "the sample".into(), |n| n.to_string_lossy()),
                a.margin
            ),
            None => String::new(),
        },
        "Run it (every party and the dealer in this process):".into(),
        format!(
            "  mpcflow run {out_shown} --input {}=@{}{labels} --input-dir {wdir}",
            input.0,
            shown(&a.sample_input, "INPUT.npy")
        ),
    ];
    let header: Vec<String> = header.into_iter().filter(|h| !h.is_empty()).collect();
    let text = mpcflow_runtime::pipeline::to_yaml(&spec, &header);
    mpcflow_runtime::pipeline::Pipeline::from_yaml(&text, &a.out.display().to_string())
        .map_err(|e| anyhow!("internal error: the written pipeline does not load back: {e}"))?;
    std::fs::write(&a.out, text).with_context(|| format!("cannot write {}", a.out.display()))?;
    eprintln!(
        "wrote {} ({} nodes) and {n_weights} weight files in {}",
        a.out.display(),
        spec.nodes.len(),
        weights_dir.display()
    );
    Ok(())
}
