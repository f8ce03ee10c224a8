//! `mpcflow import MODEL.onnx --owner NAME --input-owner NAME -o graph.yaml`: a model becomes a
//! pipeline file that runs as it is, and its weights become the model owner's input files.
//! `--importer NAME --plugin PATH` reads another format through an importer plugin.

use anyhow::{Result, anyhow};
use mpcflow::import::Reveal;
use mpcflow::import_files::{ImportRequest, import_to_files};
use std::path::PathBuf;

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
    /// The output to import, for a model with several (by its ONNX name); the rest of the
    /// model that it does not need is left out.
    #[arg(long, value_name = "NAME")]
    output: Option<String>,
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
    /// comparisons and lookups they feed; `ref` enforces them (see the README). A model with
    /// several inputs takes one per input, named: --calibrate input_ids=IDS.npy --calibrate
    /// attention_mask=MASK.npy (the same number of batches in each).
    #[arg(long, value_name = "[INPUT=]SAMPLE.npy")]
    calibrate: Vec<mpcflow::calibrate::SampleFile>,
    /// How much --calibrate widens each observed interval [lo, hi]: by MARGIN·max(|lo|, |hi|)
    /// on each side, plus a floor (2^(−f/2) for fixed point, 1 for int).
    #[arg(long, default_value_t = mpcflow::calibrate::DEFAULT_MARGIN, requires = "calibrate")]
    margin: f64,
}

pub fn run(a: Args) -> Result<()> {
    if a.owner == a.input_owner {
        return Err(anyhow!("--owner and --input-owner must be two different parties"));
    }
    if a.batch == 0 {
        return Err(anyhow!("--batch must be at least 1"));
    }
    let registry = if a.importer == "onnx" { mpcflow::builtins() } else { a.plugins.registry(None)? };
    let req = ImportRequest {
        model: a.model,
        importer: a.importer,
        owner: a.owner,
        input_owner: a.input_owner,
        out: a.out,
        weights: a.weights,
        batch: a.batch,
        reveal: a.reveal,
        protocol: a.protocol,
        private_scalars: a.private_scalars,
        output: a.output,
        name: a.name,
        sample_input: a.sample_input,
        sample_labels: a.sample_labels,
        calibrate: a.calibrate,
        margin: a.margin,
    };
    let done = import_to_files(&req, &registry).map_err(|e| anyhow!(e))?;
    eprintln!(
        "wrote {} ({} nodes) and {} weight files in {}",
        done.pipeline.display(),
        done.nodes,
        done.weights,
        done.weights_dir.display()
    );
    Ok(())
}
