//! Structural checks of a graph before shapes: names, parties, protocol, references, cycles.
//! Every problem is collected, so one `mpcflow check` shows them all.

use crate::error::{Problem, Site};
use crate::registry::Registry;
use mpcflow_sdk::graph::GraphSpec;
use mpcflow_sdk::op::{Op, edit_distance};
use mpcflow_sdk::operator::OperatorKind;
use petgraph::graph::DiGraph;
use std::collections::HashMap;

/// What a tensor name refers to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Source {
    Input(usize),
    Constant(usize),
    Node(usize),
}

pub(crate) fn hint<'a>(name: &str, known: impl Iterator<Item = &'a String>) -> String {
    known
        // The distance is at least the difference in length: skip what cannot be near.
        .filter(|k| name.len().abs_diff(k.len()) <= (k.len() / 3).max(1))
        .map(|k| (k, edit_distance(name, k)))
        .filter(|(k, d)| *d < k.len() && *d <= (k.len() / 3).max(1))
        .min_by_key(|(_, d)| *d)
        .map(|(k, _)| format!(", did you mean `{k}`?"))
        .unwrap_or_default()
}

/// Checks names and references and returns the node order (topological), or every problem.
/// What to say when neither the file nor the command line names a protocol: a silent default
/// would be `ref`, which shows every private value to every party.
pub const NO_PROTOCOL: &str = "the pipeline names no protocol: add `protocol: fss2pc` to compute on private data, \
     or `protocol: ref` to test the pipeline in the clear (insecure: every party sees every value); \
     `--protocol NAME` on the command line does the same";

pub(super) fn validate(
    spec: &GraphSpec,
    registry: &Registry,
    protocol: &str,
    problems: &mut Vec<Problem>,
) -> Option<(HashMap<String, Source>, Vec<usize>)> {
    let mut parties = check_parties(spec, problems);
    // Inputs and outputs may name a data owner as they name a party.
    parties.extend(check_owners(spec, &parties, problems));
    check_protocol(spec, registry, protocol, problems);
    let names = declare_names(spec, registry, &parties, problems);
    check_references(spec, &names, &parties, problems);
    let order = operator_order(spec, &names, problems);
    if problems.is_empty() { order.map(|o| (names, o)) } else { None }
}

/// The declared parties by name; problems with their names.
fn check_parties(spec: &GraphSpec, problems: &mut Vec<Problem>) -> HashMap<String, usize> {
    if spec.parties.is_empty() {
        problems.push(Problem::new(Site::Graph, "`parties` is empty: name the parties taking part"));
    }
    let mut party_seen = HashMap::new();
    for (i, p) in spec.parties.iter().enumerate() {
        check_name("party", p, Site::Party(i), problems);
        if party_seen.insert(p.clone(), i).is_some() {
            problems.push(Problem::new(Site::Party(i), format!("party `{p}` is listed twice")));
        }
    }
    party_seen
}

/// A party's or owner's name: a certificate name, not the dealer's.
fn check_name(what: &str, name: &str, site: Site, problems: &mut Vec<Problem>) {
    if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-') {
        problems.push(Problem::new(site.clone(), format!("{what} name `{name}` must be letters, digits, `_` or `-`")));
    }
    if name == mpcflow_sdk::DEALER {
        problems.push(Problem::new(
            site,
            format!("`dealer` is reserved for the offline dealer; choose another {what} name"),
        ));
    }
}

/// The declared data owners by name (numbered after the parties); problems with their names
/// and with the inputs they bring.
fn check_owners(
    spec: &GraphSpec,
    parties: &HashMap<String, usize>,
    problems: &mut Vec<Problem>,
) -> HashMap<String, usize> {
    let mut seen = HashMap::new();
    for (i, o) in spec.owners.iter().enumerate() {
        check_name("owner", o, Site::Owner(i), problems);
        if parties.contains_key(o) {
            problems.push(Problem::new(
                Site::Owner(i),
                format!("`{o}` is a computing party already: a party brings its own inputs, list it once"),
            ));
        } else if seen.insert(o.clone(), spec.parties.len() + i).is_some() {
            problems.push(Problem::new(Site::Owner(i), format!("owner `{o}` is listed twice")));
        }
    }
    if !spec.owners.is_empty() && spec.parties.len() < 2 {
        problems.push(Problem::new(
            Site::Owner(0),
            "data owners split their inputs among the computing parties: name at least two parties",
        ));
    }
    // The plan names the owners' shares and masks `NAME#…`.
    if !spec.owners.is_empty() {
        let declared = spec.inputs.iter().map(|i| (&i.name, Site::Input(i.name.clone())));
        let constants = spec.constants.iter().map(|c| (&c.name, Site::Constant(c.name.clone())));
        let nodes = spec.nodes.iter().map(|n| (&n.name, Site::Node(n.name.clone())));
        for (name, site) in declared.chain(constants).chain(nodes).filter(|(n, _)| n.contains('#')) {
            problems.push(Problem::new(
                site,
                format!("`{name}`: a name with `#` is reserved for data owners' shares in a pipeline with owners"),
            ));
        }
    }
    for inp in spec.inputs.iter().filter(|i| seen.contains_key(&i.owner)) {
        if inp.dtype == mpcflow_sdk::DType::Bit {
            problems.push(Problem::new(
                Site::Input(inp.name.clone()),
                format!(
                    "`{}` is a bit brought by data owner {}: an owner's input is shared as words that add \
                     up to it, so declare it `dtype: int` (0 or 1)",
                    inp.name, inp.owner
                ),
            ));
        }
    }
    seen
}

/// `name` is not a declared party or owner, with them and a "did you mean".
fn party_hint(spec: &GraphSpec, name: &str) -> String {
    let owners = if spec.owners.is_empty() { String::new() } else { format!(", owners: {}", spec.owners.join(", ")) };
    format!(
        "`{name}` is not a declared party (parties: {}{owners}){}",
        spec.parties.join(", "),
        hint(name, spec.parties.iter().chain(&spec.owners))
    )
}

/// The protocol is named, registered and runs with this many parties.
fn check_protocol(spec: &GraphSpec, registry: &Registry, protocol: &str, problems: &mut Vec<Problem>) {
    match registry.protocol(protocol) {
        None if protocol.is_empty() => problems.push(Problem::new(Site::Protocol, NO_PROTOCOL)),
        None => problems.push(Problem::new(
            Site::Protocol,
            format!("unknown protocol `{protocol}` (available: {})", registry.protocol_names().join(", ")),
        )),
        Some(p) => {
            let d = p.descriptor();
            if !spec.parties.is_empty() && !d.parties.accepts(spec.parties.len()) {
                problems.push(Problem::new(
                    Site::Protocol,
                    format!(
                        "protocol `{protocol}` runs with {} parties, the graph declares {}",
                        d.parties,
                        spec.parties.len()
                    ),
                ));
            }
        }
    }
}

/// Every constant, input and node by name (each name once), with the checks of each
/// declaration: constant values, input owners and transforms, node ops.
fn declare_names(
    spec: &GraphSpec,
    registry: &Registry,
    parties: &HashMap<String, usize>,
    problems: &mut Vec<Problem>,
) -> HashMap<String, Source> {
    let mut names: HashMap<String, Source> = HashMap::new();
    let mut declare = |name: &str, src: Source, site: Site, problems: &mut Vec<Problem>| {
        if names.insert(name.to_string(), src).is_some() {
            problems.push(Problem::new(site, format!("the name `{name}` is defined more than once")));
        }
    };
    for (i, c) in spec.constants.iter().enumerate() {
        declare(&c.name, Source::Constant(i), Site::Constant(c.name.clone()), problems);
        if c.shape.iter().product::<usize>() != c.values.len() {
            problems.push(Problem::new(Site::Constant(c.name.clone()), "constant values do not fill its shape"));
        } else {
            // The rules of inputs: whole ints, bits 0 or 1, magnitudes that compare exactly.
            let value = crate::inputs::InputValue::Real { shape: c.shape.clone(), values: c.values.clone() };
            if let Err(m) = value.to_tensor(c.dtype, spec.fixed_point) {
                problems.push(Problem::new(Site::Constant(c.name.clone()), m));
            }
        }
    }
    for (i, inp) in spec.inputs.iter().enumerate() {
        declare(&inp.name, Source::Input(i), Site::Input(inp.name.clone()), problems);
        if let Some(m) = inp.range.and_then(|r| crate::inputs::range_problem(&r, inp.dtype, spec.fixed_point)) {
            problems.push(Problem::new(Site::Input(inp.name.clone()), m));
        }
        if !parties.contains_key(&inp.owner) {
            problems.push(Problem::new(
                Site::InputOwner(inp.name.clone()),
                format!("owner {}", party_hint(spec, &inp.owner)),
            ));
        }
    }
    for inp in &spec.inputs {
        if let Some(t) = &inp.transform {
            check_transform(registry, &inp.name, &t.op, problems);
        }
    }
    for (i, n) in spec.nodes.iter().enumerate() {
        declare(&n.name, Source::Node(i), Site::Node(n.name.clone()), problems);
        if let Op::Custom { name, .. } = &n.op {
            check_custom_op(registry, &n.name, name, problems);
        }
    }
    names
}

/// An input's `transform` names a loaded transform plugin.
fn check_transform(registry: &Registry, input: &str, op: &str, problems: &mut Vec<Problem>) {
    let site = Site::InputTransform(input.to_string());
    match registry.operator(op) {
        None => {
            let known: Vec<String> = registry
                .operator_names()
                .into_iter()
                .filter(|n| registry.operator(n).is_some_and(|o| o.kind() == OperatorKind::Transform))
                .collect();
            let hint = if known.is_empty() {
                " (no transform plugin is loaded: name its file under `plugins:` or with --plugin)".to_string()
            } else {
                format!(" (transform plugins: {})", known.join(", "))
            };
            problems.push(Problem::new(site, format!("unknown transform `{op}`{hint}")));
        }
        Some(o) if o.kind() != OperatorKind::Transform => problems
            .push(Problem::new(site, format!("`{op}` is a secure operator, not a transform: use it as a node's `op`"))),
        Some(_) => {}
    }
}

/// A node's op that is not built in names a loaded secure operator plugin.
fn check_custom_op(registry: &Registry, node: &str, name: &str, problems: &mut Vec<Problem>) {
    match registry.operator(name) {
        Some(o) if o.kind() == OperatorKind::Transform => problems.push(Problem::new(
            Site::NodeOp(node.to_string()),
            format!(
                "`{name}` is a transform: it runs on one party's plaintext before sharing, so it goes on an \
                 input (`transform: {{ op: {name} }}`), not on a node"
            ),
        )),
        Some(_) => {}
        None if name == crate::pipeline::MODEL_OP => problems.push(Problem::new(
            Site::NodeOp(node.to_string()),
            "this node runs a model, but the pipeline's models were not imported: load it with \
             `Session::from_path` or call `Pipeline::import_models` before planning",
        )),
        None => {
            let builtin = mpcflow_sdk::op::suggest_op(name).map(|s| format!(", did you mean `{s}`?"));
            let plug = registry.operator_names();
            problems.push(Problem::new(
                Site::NodeOp(node.to_string()),
                format!(
                    "unknown op `{}`{}{}",
                    mpcflow_sdk::op::shown_name(name),
                    builtin.unwrap_or_default(),
                    if plug.is_empty() { String::new() } else { format!(" (operator plugins: {})", plug.join(", ")) }
                ),
            ));
        }
    }
}

/// Every node input and output names a declared tensor; outputs go to declared parties.
fn check_references(
    spec: &GraphSpec,
    names: &HashMap<String, Source>,
    parties: &HashMap<String, usize>,
    problems: &mut Vec<Problem>,
) {
    for n in &spec.nodes {
        for (i, inp) in n.inputs.iter().enumerate() {
            if !names.contains_key(inp) {
                problems.push(Problem::new(
                    Site::NodeInput(n.name.clone(), i),
                    format!("unknown tensor `{}`{}", mpcflow_sdk::op::shown_name(inp), hint(inp, names.keys())),
                ));
            }
        }
    }
    for o in &spec.outputs {
        if !names.contains_key(&o.name) {
            problems.push(Problem::new(
                Site::Output(o.name.clone()),
                format!("unknown tensor `{}`{}", o.name, hint(&o.name, names.keys())),
            ));
        }
        for (i, p) in o.reveal_to.iter().enumerate() {
            if !parties.contains_key(p) {
                problems.push(Problem::new(
                    Site::OutputParty(o.name.clone(), i),
                    format!("revealed to an undeclared party: {}", party_hint(spec, p)),
                ));
            }
        }
    }
}

/// The operator nodes in an order where each comes after its inputs; `None` (and a problem per
/// cycle) when there is a cycle.
fn operator_order(
    spec: &GraphSpec,
    names: &HashMap<String, Source>,
    problems: &mut Vec<Problem>,
) -> Option<Vec<usize>> {
    let mut g: DiGraph<usize, ()> = DiGraph::new();
    let idx: Vec<_> = (0..spec.nodes.len()).map(|i| g.add_node(i)).collect();
    for (i, n) in spec.nodes.iter().enumerate() {
        for inp in &n.inputs {
            if let Some(Source::Node(j)) = names.get(inp) {
                g.add_edge(idx[*j], idx[i], ());
            }
        }
    }
    match petgraph::algo::toposort(&g, None) {
        Ok(o) => Some(o.into_iter().map(|ix| g[ix]).collect::<Vec<_>>()),
        Err(_) => {
            for scc in petgraph::algo::tarjan_scc(&g) {
                let is_cycle = scc.len() > 1 || g.contains_edge(scc[0], scc[0]);
                if is_cycle {
                    let members: Vec<usize> = scc.iter().map(|ix| g[*ix]).collect();
                    let chain = cycle_chain(spec, names, &members);
                    problems.push(Problem::new(
                        Site::Node(spec.nodes[chain[0]].name.clone()),
                        format!(
                            "cycle: {}",
                            chain
                                .iter()
                                .chain(std::iter::once(&chain[0]))
                                .map(|&i| spec.nodes[i].name.as_str())
                                .collect::<Vec<_>>()
                                .join(" -> ")
                        ),
                    ));
                }
            }
            None
        }
    }
}

/// Walks a strongly connected component into one cycle, in data-flow order.
fn cycle_chain(spec: &GraphSpec, names: &HashMap<String, Source>, members: &[usize]) -> Vec<usize> {
    let start = *members.iter().min_by_key(|&&i| &spec.nodes[i].name).unwrap_or(&members[0]);
    let mut chain = vec![start];
    let mut cur = start;
    // Follow consumers that stay inside the component until we come back.
    for _ in 0..members.len() {
        let next = members.iter().copied().find(|&m| {
            spec.nodes[m].inputs.iter().any(|inp| names.get(inp) == Some(&Source::Node(cur)))
                && (m == start || !chain.contains(&m))
        });
        match next {
            Some(m) if m == start => break,
            Some(m) => {
                chain.push(m);
                cur = m;
            }
            None => break,
        }
    }
    chain
}
