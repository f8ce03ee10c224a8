//! Graph → Plan.

use super::fingerprint::fingerprint;
use super::lower::Builder;
use super::validate::{Source, validate};
use super::{Plan, PlanNode};
use crate::error::{Error, Problem, Site};
use crate::owners::{self, OwnerInput, OwnerIo, OwnerOutput};
use crate::registry::Registry;
use mpcflow_sdk::graph::{Dim, GraphSpec, InputSpec};
use mpcflow_sdk::protocol::{Cost, NodeKind};
use mpcflow_sdk::shape::{TensorInfo, Visibility};
use mpcflow_sdk::{DType, Op, PartyId, Tensor};
use std::collections::{BTreeMap, HashMap};

/// Choices made when planning.
#[derive(Clone, Debug, Default)]
pub struct PlanOptions {
    /// Use this protocol instead of the graph's.
    pub protocol: Option<String>,
    /// Sizes of symbolic dimensions given by hand (`--dim n=1000`).
    pub dims: HashMap<String, usize>,
    /// Shapes of the inputs at hand, which fix symbolic dimensions.
    pub input_shapes: HashMap<String, Vec<usize>>,
    /// The network the plan assumes (`--network`); protocols pick node forms from it.
    pub network: mpcflow_sdk::Network,
    /// Compute every op under the protocol, even those on one party's own data, which that
    /// party otherwise computes in the clear (see [`super::local`]): to measure or test the
    /// protocol's gates.
    pub all_under_protocol: bool,
}

/// Sample sizes for unbound symbolic dimensions: distinct, so that two different names never
/// look compatible by accident, and not 1, so that they never broadcast.
const SAMPLE_DIMS: [usize; 8] = [11, 13, 17, 19, 23, 29, 31, 37];

fn bind_dims(
    spec: &GraphSpec,
    opts: &PlanOptions,
    problems: &mut Vec<Problem>,
) -> (BTreeMap<String, usize>, Vec<String>) {
    let mut dims: BTreeMap<String, usize> = opts.dims.iter().map(|(k, v)| (k.clone(), *v)).collect();
    for inp in &spec.inputs {
        let Some(actual) = opts.input_shapes.get(&inp.name) else { continue };
        if actual.len() != inp.shape.len() {
            problems.push(Problem::new(
                Site::Input(inp.name.clone()),
                format!(
                    "the data has shape {actual:?} (rank {}) but the input is declared with rank {}",
                    actual.len(),
                    inp.shape.len()
                ),
            ));
            continue;
        }
        for (d, &a) in inp.shape.iter().zip(actual) {
            match d {
                Dim::Fixed(f) if *f != a => problems.push(Problem::new(
                    Site::Input(inp.name.clone()),
                    format!("the data has shape {actual:?} but the declared shape is {}", show_dims(&inp.shape)),
                )),
                Dim::Sym(s) => match dims.get(s) {
                    Some(&prev) if prev != a => problems.push(Problem::new(
                        Site::Input(inp.name.clone()),
                        format!("dimension `{s}` is {a} in this input's data but {prev} elsewhere"),
                    )),
                    _ => {
                        dims.insert(s.clone(), a);
                    }
                },
                _ => {}
            }
        }
    }
    let mut sampled = vec![];
    for inp in &spec.inputs {
        for d in &inp.shape {
            if let Dim::Sym(s) = d
                && !dims.contains_key(s)
            {
                let v = SAMPLE_DIMS[sampled.len() % SAMPLE_DIMS.len()] + 40 * (sampled.len() / SAMPLE_DIMS.len());
                dims.insert(s.clone(), v);
                sampled.push(s.clone());
            }
        }
    }
    (dims, sampled)
}

fn show_dims(d: &[Dim]) -> String {
    let parts: Vec<String> = d
        .iter()
        .map(|x| match x {
            Dim::Fixed(n) => n.to_string(),
            Dim::Sym(s) => s.clone(),
        })
        .collect();
    format!("[{}]", parts.join(", "))
}

/// Validates `spec` and turns it into a plan. Every problem found is reported at once.
pub fn build(spec: &GraphSpec, registry: &Registry, opts: &PlanOptions) -> Result<Plan, Error> {
    let protocol_name = opts.protocol.clone().unwrap_or_else(|| spec.protocol.clone());
    // A protocol named on the command line is no line of the file: say where it came from.
    if let Some(p) = &opts.protocol
        && registry.protocol(p).is_none()
    {
        return Err(Error::Setting(format!(
            "--protocol {p}: unknown protocol (available: {})",
            registry.protocol_names().join(", ")
        )));
    }
    if let Some(p) = opts.protocol.as_ref().and_then(|p| registry.protocol(p))
        && !spec.parties.is_empty()
        && !p.descriptor().parties.accepts(spec.parties.len())
    {
        return Err(Error::Setting(format!(
            "--protocol {}: it runs with {} parties, the graph declares {} ({})",
            p.descriptor().name,
            p.descriptor().parties,
            spec.parties.len(),
            spec.parties.join(", ")
        )));
    }
    let mut problems = vec![];
    // A file's values were checked where they stand; a graph built in code is checked here.
    let fp = spec.fixed_point;
    let fp_problems = [
        mpcflow_sdk::FixedPoint::frac_bits_problem(fp.frac_bits),
        mpcflow_sdk::FixedPoint::compare_bits_problem(fp.compare_bits),
    ];
    problems.extend(fp_problems.into_iter().flatten().map(|m| Problem::new(Site::FixedPoint, m)));
    let validated = validate(spec, registry, &protocol_name, &mut problems);
    let (names, order) = match validated {
        Some(v) if problems.is_empty() => v,
        _ => return Err(Error::Invalid(problems)),
    };
    let protocol =
        registry.protocol(&protocol_name).ok_or_else(|| Error::Internal("validated protocol vanished".into()))?;
    let descriptor = protocol.descriptor();
    let (dims, sampled) = bind_dims(spec, opts, &mut problems);
    if !problems.is_empty() {
        return Err(Error::Invalid(problems));
    }
    let party_id = |name: &str| PartyId(spec.parties.iter().position(|p| p == name).unwrap_or(0) as u16);

    let mut owner_io = OwnerIo { owners: spec.owners.clone(), ..Default::default() };
    let mut b = Builder {
        nodes: vec![],
        by_name: HashMap::new(),
        fixed_point: spec.fixed_point,
        network: opts.network,
        parties: spec.parties.len(),
        protocol: protocol.clone(),
        registry,
        local_evaluation: !opts.all_under_protocol,
        protocol_lowering: 0,
        gates: HashMap::new(),
        bypassed: vec![],
        pieces_of: HashMap::new(),
    };
    for c in &spec.constants {
        let t = Tensor::from_f64(c.dtype, c.shape.clone(), &c.values, spec.fixed_point)
            .ok_or_else(|| Error::Internal(format!("constant `{}` does not fill its shape", c.name)))?;
        b.constant(c.name.clone(), &c.name, t);
    }
    for inp in &spec.inputs {
        let shape: Vec<usize> = inp
            .shape
            .iter()
            .map(|d| match d {
                Dim::Fixed(n) => *n,
                Dim::Sym(s) => dims.get(s).copied().unwrap_or(1),
            })
            .collect();
        // A party's input is its own (below); an owner's is shared by share (`share_owner_input`).
        let info = TensorInfo { shape, dtype: inp.dtype, vis: Visibility::Secret };
        if info.numel() > super::lower::MAX_ELEMENTS {
            problems.push(Problem::new(
                Site::Input(inp.name.clone()),
                format!("shape {:?} has more than {} elements", info.shape, super::lower::MAX_ELEMENTS),
            ));
            return Err(Error::Invalid(problems));
        }
        if spec.owners.contains(&inp.owner) {
            owner_io.inputs.push(OwnerInput {
                name: inp.name.clone(),
                owner: inp.owner.clone(),
                dtype: inp.dtype,
                shape: info.shape.clone(),
            });
            if let Err(p) = share_owner_input(&mut b, spec, inp, info) {
                problems.push(p);
                return Err(Error::Invalid(problems));
            }
        } else {
            let owner = party_id(&inp.owner);
            let info = TensorInfo { vis: Visibility::Private(owner), ..info };
            b.push(inp.name.clone(), &inp.name, NodeKind::Input { owner }, vec![], info);
        }
    }
    for &i in &order {
        let n = &spec.nodes[i];
        let ids: Vec<u32> = n
            .inputs
            .iter()
            .map(|name| match names.get(name) {
                Some(Source::Input(_) | Source::Constant(_) | Source::Node(_)) => b.by_name.get(name).copied(),
                None => None,
            })
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| Error::Internal(format!("node `{}` input vanished", n.name)))?;
        match b.op(&n.name, &n.name, n.op.clone(), ids, 0) {
            Ok(id) => {
                if let Some(r) = n.range {
                    let dtype = b.info(id).dtype;
                    match crate::inputs::range_problem(&r, dtype, spec.fixed_point) {
                        None => {
                            b.nodes[id as usize].desc.range = Some(r);
                            // Rewritten over a concatenation's pieces, the op's range holds for each
                            // piece, where a local one checks it.
                            for piece in b.pieces_of.get(&id).cloned().unwrap_or_default() {
                                b.nodes[piece as usize].desc.range = Some(r);
                            }
                        }
                        Some(m) => problems.push(Problem::new(Site::NodeAttr(n.name.clone(), "range".into()), m)),
                    }
                }
            }
            Err(p) => {
                problems.push(p);
                // Later nodes would only repeat the failure; report what we have.
                return Err(Error::Invalid(problems));
            }
        }
    }
    for o in &spec.outputs {
        let src = *b.by_name.get(&o.name).ok_or_else(|| Error::Internal(format!("output `{}` vanished", o.name)))?;
        // Outputs are revealed by the protocol: a local value enters it first.
        let src = b.shared(src);
        let (to_owners, to_parties): (Vec<&String>, Vec<&String>) =
            o.reveal_to.iter().partition(|p| spec.owners.contains(p));
        if !to_parties.is_empty() || to_owners.is_empty() {
            let mut reveal_to: Vec<PartyId> = to_parties.iter().map(|p| party_id(p)).collect();
            reveal_to.sort();
            reveal_to.dedup();
            let info = b.info(src).clone();
            b.push(format!("output:{}", o.name), &o.name, NodeKind::Output { reveal_to }, vec![src], info);
        }
        let mut done: Vec<&String> = vec![];
        for owner in to_owners {
            if done.contains(&owner) {
                continue;
            }
            done.push(owner);
            let info = b.info(src).clone();
            owner_io.outputs.push(OwnerOutput {
                name: o.name.clone(),
                owner: owner.clone(),
                dtype: info.dtype,
                shape: info.shape.clone(),
            });
            if let Err(p) = mask_owner_output(&mut b, spec, &o.name, owner, src) {
                problems.push(p);
                return Err(Error::Invalid(problems));
            }
        }
    }

    let nodes = super::local::prune_bypassed(b.nodes, &b.bypassed);
    let mut nodes = inputs_where_first_used(nodes);
    super::ranges::narrow_comparisons(&mut nodes, spec);
    for n in nodes.iter().filter(|n| n.local.is_none()) {
        if let Err(why) = protocol.check(&n.desc) {
            problems.push(Problem::new(Site::Node(n.origin.clone()), format!("`{}`: {why}", n.desc.kind.label())));
        }
    }
    if !problems.is_empty() {
        return Err(Error::Invalid(problems));
    }
    for n in &mut nodes {
        if let Some(p) = n.local {
            let party = spec.parties.get(p.index()).map_or("?", |s| s.as_str());
            n.cost =
                Cost { form: format!("in the clear on {party}, from its own data"), ..Cost::zero(spec.parties.len()) };
            continue;
        }
        n.cost = protocol.cost(&n.desc);
        n.needs_material = protocol.needs_material(&n.desc);
    }
    let mut plan = Plan {
        name: spec.name.clone(),
        parties: spec.parties.clone(),
        protocol: descriptor.name,
        plugin: super::PlanProtocol(protocol.clone()),
        protocol_version: descriptor.version,
        needs_dealer: descriptor.needs_dealer,
        secure: descriptor.secure,
        fixed_point: spec.fixed_point,
        network: opts.network,
        nodes,
        dims: dims.into_iter().collect(),
        sampled_dims: sampled,
        owner_io,
        fingerprint: [0; 32],
    };
    plan.fingerprint = fingerprint(&plan);
    Ok(plan)
}

/// `nodes` with every private input moved to just before its first consumer (unused ones stay
/// where they are). The dealer deals in plan order and each party drops a value after its last
/// use, so a model's weights are then shared layer by layer, as the layers need them, and freed
/// after: BERT-base's and GPT-2's weights (0.9 and 1.3 GB per copy) are no longer held by both
/// parties, masked and as mask shares, for the whole run.
fn inputs_where_first_used(nodes: Vec<PlanNode>) -> Vec<PlanNode> {
    let n = nodes.len();
    let mut first_use = vec![usize::MAX; n];
    for (i, node) in nodes.iter().enumerate() {
        for &j in &node.inputs {
            first_use[j as usize] = first_use[j as usize].min(i);
        }
    }
    // An input gate of a local value already stands right before its first reader.
    let moved = |i: usize| {
        matches!(nodes[i].desc.kind, NodeKind::Input { .. }) && nodes[i].inputs.is_empty() && first_use[i] != usize::MAX
    };
    // The new order: each moved input right before the first node that reads it.
    let mut before: Vec<Vec<usize>> = vec![vec![]; n];
    for i in (0..n).filter(|&i| moved(i)) {
        before[first_use[i]].push(i);
    }
    let order: Vec<usize> =
        (0..n).filter(|&i| !moved(i)).flat_map(|i| before[i].iter().copied().chain(std::iter::once(i))).collect();
    let mut new_id = vec![0u32; n];
    for (to, &from) in order.iter().enumerate() {
        new_id[from] = to as u32;
    }
    let mut slots: Vec<Option<PlanNode>> = nodes.into_iter().map(Some).collect();
    order
        .iter()
        .filter_map(|&from| slots[from].take())
        .enumerate()
        .map(|(to, mut node)| {
            node.desc.id = to as u32;
            for j in &mut node.inputs {
                *j = new_id[*j as usize];
            }
            node
        })
        .collect()
}

/// An owner's input `x` as one input per computing party and their sum, named `x` (see
/// [`crate::owners`]); the sum carries the input's declared range.
fn share_owner_input(b: &mut Builder<'_>, spec: &GraphSpec, inp: &InputSpec, info: TensorInfo) -> Result<(), Problem> {
    let mut sum: Option<u32> = None;
    for (i, p) in spec.parties.iter().enumerate() {
        let name = owners::share_name(&inp.name, p);
        // Each party's share is its own value; their sum is secret.
        let mine = TensorInfo { vis: Visibility::Private(PartyId(i as u16)), ..info.clone() };
        let share = b.push(name, &inp.name, NodeKind::Input { owner: PartyId(i as u16) }, vec![], mine);
        sum = Some(match sum {
            None => share,
            Some(acc) => {
                let last = i + 1 == spec.parties.len();
                let name = if last { inp.name.clone() } else { format!("{}#sum:{i}", inp.name) };
                b.op(&name, &inp.name, Op::Add, vec![acc, share], 0)?
            }
        });
    }
    let sum = sum.ok_or_else(|| Problem::new(Site::Graph, "`parties` is empty"))?;
    b.by_name.insert(inp.name.clone(), sum);
    if let Some(r) = inp.range {
        b.nodes[sum as usize].desc.range = Some(r);
    }
    Ok(())
}

/// Output `name` (node `src`) for owner `owner`: `src` plus a mask the parties input share by
/// share, revealed to every party (see [`crate::owners`]).
fn mask_owner_output(b: &mut Builder<'_>, spec: &GraphSpec, name: &str, owner: &str, src: u32) -> Result<(), Problem> {
    let info = b.info(src).clone();
    let dtype = if info.dtype == DType::Fixed { DType::Fixed } else { DType::Int };
    let mut acc = src;
    for (i, p) in spec.parties.iter().enumerate() {
        let mask = owners::mask_name(name, owner, p);
        let m_info = TensorInfo { shape: info.shape.clone(), dtype, vis: Visibility::Private(PartyId(i as u16)) };
        let m = b.push(mask, name, NodeKind::Input { owner: PartyId(i as u16) }, vec![], m_info);
        acc = b.op(&format!("{name}#masked:{owner}:{i}"), name, Op::Add, vec![acc, m], 0)?;
    }
    let all = (0..spec.parties.len()).map(|i| PartyId(i as u16)).collect();
    // Outputs are known by their origin: the masked one by its own name.
    let masked = owners::masked_name(name, owner);
    let out_info = b.info(acc).clone();
    b.push(format!("output:{masked}"), &masked, NodeKind::Output { reveal_to: all }, vec![acc], out_info);
    Ok(())
}
