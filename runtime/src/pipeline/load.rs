//! Raw YAML structs → [`GraphSpec`] plus [`SourceMap`], collecting every problem at once.

use super::raw::{Entries, RawDim, RawModel, RawPipeline, RawPlugin, RawValue, SStr};
use super::{Loc, ModelDecl, Pipeline, SourceMap};
use crate::error::{Error, Problem, Site};
use crate::plugin_spec::{PluginDecl, PluginSource, WasmLimits};
use mpcflow_sdk::graph::{ConstSpec, Dim, GraphSpec, InputSpec, NodeSpec, OutputSpec, TransformSpec};
use mpcflow_sdk::op::{AttrError, AttrValue, Attrs};
use mpcflow_sdk::{DType, FixedPoint, Op};
use serde_saphyr::{Location, Spanned};
use std::path::PathBuf;

fn loc(l: &Location) -> Loc {
    Loc { line: l.line() as u32, column: l.column() as u32 }
}

fn at<T>(s: &Spanned<T>) -> Loc {
    loc(&s.referenced)
}

struct Loader {
    file: String,
    sources: SourceMap,
    problems: Vec<Problem>,
}

impl Loader {
    fn problem(&mut self, site: Site, l: Loc, message: impl Into<String>) {
        let mut p = Problem::new(site, message);
        p.location = Some(format!("{}:{}:{}", self.file, l.line, l.column));
        self.problems.push(p);
    }
}

/// Parses `text` and converts it.
/// The YAML library's words for what went wrong, in the words of a pipeline file.
fn plain_yaml_error(msg: &str) -> String {
    if msg.contains("DuplicateKeyPolicy") || msg.to_ascii_lowercase().contains("duplicate") {
        return "a key appears twice in the same mapping: each key may appear once".into();
    }
    if msg.contains("budget breached") {
        return "the file is too large or too deeply nested to read (a pipeline file holds at most 250000 \
                YAML values): keep weights and data in .npy files beside it"
            .into();
    }
    if let Some((_, kind)) = msg.split_once("did not match any variant of untagged enum ") {
        let kind = kind.split_whitespace().next().unwrap_or("");
        return match kind {
            "RawValue" => "expected a number or a list of numbers (nested for more dimensions)".into(),
            "RawDim" => "expected a dimension: a whole number of 0 or more, or a name that the data fixes".into(),
            _ => "this value has the wrong form here".into(),
        };
    }
    msg.replace("missing field", "missing required field")
        .replace("expected u64", "expected a whole number of 0 or more")
        .replace("expected u32", "expected a whole number of 0 or more")
        .replace("invalid u64", "not a whole number of 0 or more")
}

pub(super) fn load(text: &str, file: &str) -> Result<Pipeline, Error> {
    // Only `true`/`false` are booleans: YAML 1.1 would read a tensor named `n` or `y` as one.
    let mut options = serde_saphyr::Options::default();
    options.strict_booleans = true;
    let raw: RawPipeline = serde_saphyr::from_str_with_options(text, options).map_err(|e| {
        let first = e.to_string().lines().next().unwrap_or_default().to_string();
        let msg = first.trim_start_matches("error: ");
        let msg = match msg.split_once(": ") {
            Some((head, rest)) if head.starts_with("line ") => rest.to_string(),
            _ => msg.to_string(),
        };
        let msg = plain_yaml_error(&msg);
        match e.location() {
            Some(l) => Error::Parse(format!("{file}:{}:{}: {msg}", l.line(), l.column())),
            None => Error::Parse(format!("{file}: {msg}")),
        }
    })?;
    let mut ld = Loader {
        file: file.to_string(),
        sources: SourceMap { file: file.to_string(), ..Default::default() },
        problems: vec![],
    };

    if raw.version.value != 1 {
        ld.problem(
            Site::Graph,
            at(&raw.version),
            format!("unsupported version {}, expected `version: 1`", raw.version.value),
        );
    }
    let fixed_point = match &raw.fixed_point {
        None => FixedPoint::default(),
        Some(fp) => {
            let fb = &fp.value.frac_bits;
            ld.sources.set(Site::FixedPoint, at(fb));
            if let Some(m) = FixedPoint::frac_bits_problem(fb.value) {
                ld.problem(Site::FixedPoint, at(fb), m);
            }
            let mut fixed = FixedPoint::new(fb.value);
            if let Some(cb) = &fp.value.compare_bits {
                if let Some(m) = FixedPoint::compare_bits_problem(cb.value) {
                    ld.problem(Site::FixedPoint, at(cb), m);
                }
                fixed = fixed.with_compare_bits(cb.value);
            }
            fixed
        }
    };
    let mut parties = vec![];
    for (i, p) in raw.parties.value.iter().enumerate() {
        ld.sources.set(Site::Party(i), at(p));
        parties.push(p.value.clone());
    }
    let mut owners = vec![];
    for (i, o) in raw.owners.iter().enumerate() {
        ld.sources.set(Site::Owner(i), at(o));
        owners.push(o.value.clone());
    }
    if let Some(p) = &raw.protocol {
        ld.sources.set(Site::Protocol, at(p));
    }
    if let Some(k) = &raw.kernel {
        ld.sources.set(Site::Kernel, at(k));
    }
    let mut spec = GraphSpec {
        name: raw.name.as_ref().map(|n| n.value.clone()).unwrap_or_else(|| stem(file)),
        parties,
        owners,
        // None named: the planner refuses the file unless the command line names one.
        protocol: raw.protocol.as_ref().map(|p| p.value.clone()).unwrap_or_default(),
        fixed_point,
        inputs: vec![],
        constants: vec![],
        nodes: vec![],
        outputs: vec![],
    };

    for (name, c) in &raw.constants.0 {
        ld.sources.set(Site::Constant(name.value.clone()), at(name));
        let dtype = match &c.value.dtype {
            None => DType::Fixed,
            Some(d) => dtype_of(&mut ld, d, Site::Constant(name.value.clone())).unwrap_or(DType::Fixed),
        };
        match flatten(&c.value.value.value) {
            Ok((shape, values)) => spec.constants.push(ConstSpec { name: name.value.clone(), dtype, shape, values }),
            Err(m) => ld.problem(Site::Constant(name.value.clone()), at(&c.value.value), m),
        }
    }

    for (name, input) in &raw.inputs.0 {
        let n = name.value.clone();
        ld.sources.set(Site::Input(n.clone()), at(name));
        ld.sources.set(Site::InputOwner(n.clone()), at(&input.value.owner));
        let dtype = dtype_of(&mut ld, &input.value.dtype, Site::Input(n.clone())).unwrap_or(DType::Fixed);
        let shape = input
            .value
            .shape
            .iter()
            .map(|d| match &d.value {
                RawDim::Size(s) => Dim::Fixed(*s as usize),
                RawDim::Name(s) => Dim::Sym(s.clone()),
            })
            .collect();
        let transform = input.value.transform.as_ref().and_then(|t| load_transform(&mut ld, &n, t));
        let range =
            input.value.range.as_ref().and_then(|r| match crate::inputs::range_problem(&r.value, dtype, fixed_point) {
                None => Some([r.value[0], r.value[1]]),
                Some(m) => {
                    ld.problem(Site::Input(n.clone()), at(r), m);
                    None
                }
            });
        spec.inputs.push(InputSpec { name: n, owner: input.value.owner.value.clone(), dtype, shape, transform, range });
    }

    for (name, body) in &raw.nodes.0 {
        if let Some(node) = load_node(&mut ld, name, body) {
            spec.nodes.push(node);
        }
    }

    for (name, out) in &raw.outputs.0 {
        let n = name.value.clone();
        ld.sources.set(Site::Output(n.clone()), at(name));
        for (i, p) in out.value.reveal_to.iter().enumerate() {
            ld.sources.set(Site::OutputParty(n.clone(), i), at(p));
        }
        if out.value.reveal_to.is_empty() {
            ld.problem(Site::Output(n.clone()), at(out), "`reveal_to` is empty: name at least one party");
        }
        spec.outputs
            .push(OutputSpec { name: n, reveal_to: out.value.reveal_to.iter().map(|p| p.value.clone()).collect() });
    }

    let mut plugins = vec![];
    for (i, entry) in raw.plugins.iter().enumerate() {
        if let Some(decl) = load_plugin(&mut ld, i, entry) {
            plugins.push(decl);
        }
    }

    let models = load_models(&mut ld, &raw.models, &spec.parties);

    if ld.problems.is_empty() {
        Ok(Pipeline {
            spec,
            sources: ld.sources,
            plugins,
            kernel: raw.kernel.as_ref().map(|k| k.value.clone()),
            models,
            weights: Default::default(),
        })
    } else {
        Err(Error::Invalid(ld.problems))
    }
}

/// The entries of `models:` (imported later, with the registry: see `models.rs`).
fn load_models(ld: &mut Loader, raw: &Entries<SStr, Spanned<RawModel>>, parties: &[String]) -> Vec<ModelDecl> {
    let mut models = vec![];
    for (name, m) in &raw.0 {
        let site = Site::Model(name.value.clone());
        ld.sources.set(site.clone(), at(name));
        let m = &m.value;
        if !parties.contains(&m.owner.value) {
            let message =
                format!("owner `{}` is not a declared party (parties: {})", m.owner.value, parties.join(", "));
            ld.problem(site, at(&m.owner), message);
        }
        models.push(ModelDecl {
            name: name.value.clone(),
            importer: m.import.value.clone(),
            path: PathBuf::from(&m.path.value),
            owner: m.owner.value.clone(),
        });
    }
    models
}

/// `transform: { op: NAME, attr: value, ... }` on an input.
fn load_transform(
    ld: &mut Loader,
    input: &str,
    body: &Spanned<Entries<SStr, Spanned<RawValue>>>,
) -> Option<TransformSpec> {
    let site = Site::InputTransform(input.to_string());
    ld.sources.set(site.clone(), at(body));
    let mut op = None;
    let mut attrs = Attrs::new();
    for (key, value) in &body.value.0 {
        match (key.value.as_str(), &value.value) {
            ("op", RawValue::Str(s)) => op = Some(s.clone()),
            ("op", _) => ld.problem(site.clone(), at(value), "`op` must be the name of a transform plugin"),
            (attr, v) => {
                attrs.insert(attr.to_string(), attr_value(v));
            }
        }
    }
    match op {
        Some(op) => Some(TransformSpec { op, attrs }),
        None => {
            ld.problem(site, at(body), "a transform needs `op`: the name of a transform plugin");
            None
        }
    }
}

/// One entry of `plugins:`.
fn load_plugin(ld: &mut Loader, i: usize, entry: &Spanned<RawPlugin>) -> Option<PluginDecl> {
    let site = Site::Plugin(i);
    let l = at(entry);
    ld.sources.set(site.clone(), l);
    let location = format!("{}:{}:{}", ld.file, l.line, l.column);
    let e = &entry.value;
    let source = match (&e.native, &e.wasm) {
        (Some(path), None) => {
            if let Some(x) = e.fuel.as_ref().map(at).or(e.memory_mib.as_ref().map(at)) {
                ld.problem(site, x, "`fuel` and `memory_mib` are limits of WASM plugins; a native library has none");
                return None;
            }
            PluginSource::Native(PathBuf::from(&path.value))
        }
        (None, Some(path)) => {
            let mut limits = WasmLimits::default();
            if let Some(f) = &e.fuel {
                if f.value == 0 {
                    ld.problem(site.clone(), at(f), "`fuel` must be at least 1");
                }
                limits.fuel = f.value;
            }
            if let Some(m) = &e.memory_mib {
                if !(1..=4096).contains(&m.value) {
                    ld.problem(site.clone(), at(m), "`memory_mib` must be 1 to 4096 (a wasm32 memory holds 4 GiB)");
                }
                limits.memory_mib = m.value;
            }
            PluginSource::Wasm { path: PathBuf::from(&path.value), limits }
        }
        _ => {
            ld.problem(site, l, "a plugin entry needs exactly one of `native: PATH` or `wasm: PATH`");
            return None;
        }
    };
    Some(PluginDecl { source, location })
}

fn stem(file: &str) -> String {
    std::path::Path::new(file)
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "pipeline".into())
}

fn dtype_of(ld: &mut Loader, d: &SStr, site: Site) -> Option<DType> {
    let r = DType::parse(&d.value);
    if r.is_none() {
        ld.problem(site, at(d), format!("unknown dtype `{}`, expected one of fixed, int, bit", d.value));
    }
    r
}

fn load_node(ld: &mut Loader, name: &SStr, body: &Spanned<Entries<SStr, Spanned<RawValue>>>) -> Option<NodeSpec> {
    let n = name.value.clone();
    ld.sources.set(Site::Node(n.clone()), at(name));
    let mut op_name: Option<(String, Loc)> = None;
    let mut inputs = vec![];
    let mut attrs = Attrs::new();
    let mut range = None;
    for (key, value) in &body.value.0 {
        match key.value.as_str() {
            "range" => {
                ld.sources.set(Site::NodeAttr(n.clone(), "range".into()), at(key));
                let numbers: Option<Vec<f64>> = match &value.value {
                    RawValue::List(items) => items
                        .iter()
                        .map(|v| match v {
                            RawValue::Int(i) => Some(*i as f64),
                            RawValue::Float(f) => Some(*f),
                            _ => None,
                        })
                        .collect(),
                    _ => None,
                };
                match numbers.as_deref() {
                    Some(&[lo, hi]) if lo.is_finite() && hi.is_finite() && lo <= hi => range = Some([lo, hi]),
                    Some(&[lo, hi]) if lo > hi => ld.problem(
                        Site::NodeAttr(n.clone(), "range".into()),
                        at(value),
                        format!("`range` [{lo}, {hi}] is empty: lo must not exceed hi"),
                    ),
                    _ => ld.problem(
                        Site::NodeAttr(n.clone(), "range".into()),
                        at(value),
                        "`range` takes two finite numbers, [lo, hi]",
                    ),
                }
            }
            "op" => match &value.value {
                RawValue::Str(s) => {
                    ld.sources.set(Site::NodeOp(n.clone()), at(value));
                    op_name = Some((s.clone(), at(value)));
                }
                _ => ld.problem(Site::NodeOp(n.clone()), at(value), "`op` must be an op name such as `add`"),
            },
            "inputs" => match &value.value {
                RawValue::List(items) => {
                    for (i, it) in items.iter().enumerate() {
                        match it {
                            RawValue::Str(s) => inputs.push(s.clone()),
                            _ => ld.problem(
                                Site::NodeInput(n.clone(), i),
                                at(value),
                                "`inputs` must be a list of tensor names",
                            ),
                        }
                    }
                    // Entries of a flow list carry no spans of their own; point at the list.
                    for i in 0..items.len() {
                        ld.sources.set(Site::NodeInput(n.clone(), i), at(value));
                    }
                }
                RawValue::Str(s) => {
                    ld.sources.set(Site::NodeInput(n.clone(), 0), at(value));
                    inputs.push(s.clone());
                }
                _ => ld.problem(Site::Node(n.clone()), at(value), "`inputs` must be a list of tensor names"),
            },
            attr => {
                ld.sources.set(Site::NodeAttr(n.clone(), attr.to_string()), at(key));
                attrs.insert(attr.to_string(), attr_value(&value.value));
            }
        }
    }
    let Some((op_name, op_loc)) = op_name else {
        ld.problem(Site::Node(n.clone()), at(name), "missing required field `op`");
        return None;
    };
    let op = match Op::from_attrs(&op_name, &attrs) {
        Ok(op) => op,
        Err(AttrError::UnknownOp { .. }) => {
            // Maybe an operator plugin; the planner decides once it sees the registry.
            Op::Custom { name: op_name.clone(), attrs }
        }
        Err(e) => {
            let site = match &e {
                AttrError::Unknown { attr, .. } | AttrError::Type { attr, .. } => {
                    Site::NodeAttr(n.clone(), attr.clone())
                }
                _ => Site::NodeOp(n.clone()),
            };
            let l = ld.sources.get(&site).unwrap_or(op_loc);
            ld.problem(site, l, e.to_string());
            return None;
        }
    };
    Some(NodeSpec { name: n, op, inputs, range })
}

fn attr_value(v: &RawValue) -> AttrValue {
    match v {
        RawValue::Bool(b) => AttrValue::Bool(*b),
        RawValue::Int(i) => AttrValue::Int(*i),
        RawValue::Float(f) => AttrValue::Float(*f),
        RawValue::Str(s) => AttrValue::Str(s.clone()),
        RawValue::List(l) => AttrValue::List(l.iter().map(attr_value).collect()),
    }
}

/// A scalar or nested list of numbers → (shape, row-major values).
fn flatten(v: &RawValue) -> Result<(Vec<usize>, Vec<f64>), String> {
    match v {
        RawValue::Int(i) => Ok((vec![], vec![*i as f64])),
        RawValue::Float(f) => Ok((vec![], vec![*f])),
        RawValue::Bool(b) => Ok((vec![], vec![f64::from(u8::from(*b))])),
        RawValue::Str(s) => {
            Err(format!("constant value must be a number or a list of numbers, found the string \"{s}\""))
        }
        RawValue::List(items) => {
            let mut shape = None;
            let mut values = vec![];
            for it in items {
                let (s, v) = flatten(it)?;
                match &shape {
                    None => shape = Some(s),
                    Some(prev) if *prev != s => {
                        return Err("constant value is a ragged list: every row must have the same shape".into());
                    }
                    _ => {}
                }
                values.extend(v);
            }
            let mut full = vec![items.len()];
            full.extend(shape.unwrap_or_default());
            Ok((full, values))
        }
    }
}
