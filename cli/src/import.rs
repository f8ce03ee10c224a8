//! An imported model as a pipeline: who brings what, and what is revealed to whom.
//!
//! The model's input belongs to the *input owner* (a patient, a data owner), its weights to the
//! *model owner*; the input owner is party 0. What the run reveals is chosen here:
//! - `class`: the predicted class (argmax of the model's output), to the input owner only;
//! - `logits`: the model's output itself, to the input owner only;
//! - `accuracy`: the input owner also brings `labels` (one class index per input), and both
//!   parties learn only how many predictions match (`n_correct`); the accuracy is that over the
//!   batch size, which is public.

use mpcflow_sdk::graph::{Dim, GraphSpec, InputSpec, NodeSpec};
use mpcflow_sdk::importer::ImportedModel;
use mpcflow_sdk::{DType, Op};

/// What a run of the imported model reveals.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Reveal {
    /// The predicted class, to the input owner.
    Class,
    /// The model's output, to the input owner.
    Logits,
    /// How many predictions match the input owner's labels, to both parties.
    Accuracy,
}

/// Who the parties are.
#[derive(Clone, Debug)]
pub struct Roles {
    /// Owner of the model's input (party 0).
    pub input_owner: String,
    /// Owner of the weights (party 1).
    pub model_owner: String,
}

/// The private inputs of `model`: its inputs, the input owner's; its weights, the model
/// owner's.
pub fn model_inputs(model: &ImportedModel, roles: &Roles) -> Vec<InputSpec> {
    let spec = |name: &str, owner: &str, dtype: DType, shape: &[usize]| InputSpec {
        name: name.to_string(),
        owner: owner.to_string(),
        dtype,
        shape: shape.iter().map(|&d| Dim::Fixed(d)).collect(),
        transform: None,
        range: None,
    };
    let inputs = model.inputs.iter().map(|(n, dtype, shape)| spec(n, &roles.input_owner, *dtype, shape));
    let weights = model.weights.iter().map(|w| spec(&w.name, &roles.model_owner, DType::Fixed, &w.shape));
    inputs.chain(weights).collect()
}

/// The graph of `model` under `protocol`.
pub fn graph(model: ImportedModel, name: &str, roles: &Roles, protocol: &str, reveal: Reveal) -> GraphSpec {
    let mut g = GraphSpec::new(name, [roles.input_owner.clone(), roles.model_owner.clone()]).protocol(protocol);
    let batch = model.inputs.first().and_then(|i| i.2.first().copied()).unwrap_or(1);
    g.inputs = model_inputs(&model, roles);
    g.constants = model.constants;
    g.nodes = model.nodes;
    let unique = |g: &GraphSpec, base: &str| {
        let taken = |n: &str| g.inputs.iter().any(|i| i.name == n) || g.nodes.iter().any(|x| x.name == n);
        let mut name = base.to_string();
        let mut i = 1;
        while taken(&name) {
            i += 1;
            name = format!("{base}_{i}");
        }
        name
    };
    match reveal {
        Reveal::Logits => g
            .outputs
            .push(mpcflow_sdk::graph::OutputSpec { name: model.output, reveal_to: vec![roles.input_owner.clone()] }),
        Reveal::Class | Reveal::Accuracy => {
            let class = unique(&g, "class");
            g.nodes.push(NodeSpec::new(class.clone(), Op::Argmax { axis: -1, one_hot: false }, vec![model.output]));
            if reveal == Reveal::Class {
                g = g.output(&class, [roles.input_owner.clone()]);
            } else {
                let labels = unique(&g, "labels");
                g = g.input(&labels, &roles.input_owner, DType::Int, vec![Dim::Fixed(batch)]);
                let hit = unique(&g, "hit");
                let n = unique(&g, "n_correct");
                g = g
                    .node(&hit, Op::Eq, [class, labels])
                    .node(&n, Op::Sum { axes: vec![0], keepdims: false }, [hit])
                    .output(&n, [roles.input_owner.clone(), roles.model_owner.clone()]);
            }
        }
    }
    g
}
