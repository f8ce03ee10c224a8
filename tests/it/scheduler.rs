//! The scheduler: exact cost accounting, concurrency, dealer streaming, lowering, failures.
//! Runs are planned with `all_under_protocol`: their graphs compute on one party's input,
//! which that party would otherwise compute on in the clear, and they are about the protocol's
//! messages and material.

use crate::support::*;
use mpcflow::runtime::plan::PlanOptions;
use mpcflow::runtime::{Error, InputValue, Session, SessionConfig};
use mpcflow_sdk::graph::{Dim, GraphSpec};
use mpcflow_sdk::op::Attrs;
use mpcflow_sdk::operator::Operator;
use mpcflow_sdk::protocol::{LRef, LoweredNode, Lowering};
use mpcflow_sdk::shape::TensorInfo;
use mpcflow_sdk::{DType, Op};
use std::sync::Arc;
use std::time::{Duration, Instant};

const THREE_PARTY: &str = r#"
version: 1
parties: [a, b, c]
inputs:
  x: { owner: a, dtype: fixed, shape: [4] }
  y: { owner: b, dtype: fixed, shape: [4] }
  z: { owner: c, dtype: fixed, shape: [2, 2] }
nodes:
  s:  { op: add, inputs: [x, y] }
  r:  { op: reshape, inputs: [s], shape: [2, 2] }
  m:  { op: matmul, inputs: [r, z] }
  sm: { op: softmax, inputs: [m], axis: -1 }
outputs:
  m:  { reveal_to: [a] }
  sm: { reveal_to: [b, c] }
"#;

fn three_party_inputs() -> Vec<(&'static str, InputValue)> {
    vec![
        ("x", InputValue::from(vec![1.0, -2.0, 0.5, 3.0])),
        ("y", InputValue::from(vec![0.25, 1.0, -1.5, 0.0])),
        ("z", InputValue::Real { shape: vec![2, 2], values: vec![1.0, 0.0, -0.5, 2.0] }),
    ]
}

#[test]
fn measured_bytes_and_rounds_equal_the_cost_model() {
    let s = session(THREE_PARTY, mpcflow::builtins(), "ref", 10_000);
    let out = rt().block_on(s.run(three_party_inputs())).unwrap();
    for n in &out.report.nodes {
        assert_eq!(n.rounds, n.predicted_rounds, "rounds of {}", n.name);
        assert_eq!(n.bytes_sent, n.predicted_bytes_sent, "bytes of {}", n.name);
        assert_eq!(n.dealer_bytes, n.predicted_dealer_bytes, "dealer bytes of {}", n.name);
    }
    // Each owner sends its 4 elements to the two others.
    assert_eq!(out.report.totals.bytes_sent, vec![64, 64, 64]);
    // The three inputs are shared concurrently: one round on the critical path.
    assert_eq!(out.report.totals.critical_rounds, 1);
    assert_eq!(out.get("m").unwrap().parties, vec!["a"]);
    assert_eq!(out.get("sm").unwrap().parties, vec!["b", "c"]);
    let m = decode(&out.get("m").unwrap().tensor);
    // r = [[1.25, -1], [-1, 3]], z = [[1, 0], [-0.5, 2]]
    assert_eq!(m, vec![1.75, -2.0, -2.5, 6.0]);
}

#[test]
fn a_layer_of_independent_nodes_costs_one_round_trip() {
    let mut g = GraphSpec::new("wide", ["a", "b"]);
    let mut inputs = vec![];
    for i in 0..200 {
        let name = format!("x{i}");
        g = g.input(&name, if i % 2 == 0 { "a" } else { "b" }, DType::Int, vec![Dim::Fixed(1)]);
        inputs.push((name, InputValue::from(vec![i as i64])));
    }
    let names: Vec<String> = (0..200).map(|i| format!("x{i}")).collect();
    g = g
        .node("all", Op::Concat { axis: 0 }, names.iter().map(String::as_str))
        .node("total", Op::Sum { axes: vec![], keepdims: false }, ["all"])
        .output("total", ["a"]);
    let s = Session::from_graph(g, mpcflow::builtins());
    let out = rt().block_on(s.run(inputs)).unwrap();
    assert_eq!(out.values("total").unwrap(), vec![(0..200).sum::<i64>() as f64]);
    assert_eq!(out.report.totals.rounds, 200, "every input node takes one round");
    assert_eq!(out.report.totals.critical_rounds, 1, "but they all run in the same round");
}

#[test]
fn dealer_material_streams_in_plan_order_through_a_small_window() {
    stream_a_chain_of_dealt_nodes(2, mpcflow::runtime::schedule::MATERIAL_WINDOW_BYTES);
}

/// A byte window smaller than any frame lets each frame in alone, after the one before it was
/// taken: the run still flows in plan order.
#[test]
fn dealer_material_streams_through_a_byte_window_smaller_than_a_frame() {
    stream_a_chain_of_dealt_nodes(8, 1);
}

/// `x` negated 300 times (`n0` … `n299`), revealed to both parties; the last node's name.
fn chain_of_negations() -> (GraphSpec, String) {
    let mut g = GraphSpec::new("chain", ["a", "b"]).input("x", "a", DType::Int, vec![Dim::Fixed(3)]);
    let mut prev = "x".to_string();
    for i in 0..300 {
        let name = format!("n{i}");
        g = g.node(&name, Op::Neg, [prev.as_str()]);
        prev = name;
    }
    (g.output(&prev, ["a", "b"]), prev)
}

fn stream_a_chain_of_dealt_nodes(dealer_window: usize, material_window_bytes: usize) {
    let (g, prev) = chain_of_negations();
    let reg = registry_with(vec![Arc::new(DealtRef)]);
    let cfg = SessionConfig {
        all_under_protocol: true,
        protocol: Some("ref-dealt".into()),
        dealer_window,
        material_window_bytes,
        timeout: Duration::from_secs(20),
        ..Default::default()
    };
    let s = Session::from_graph(g, reg).with_config(cfg);
    let out = rt().block_on(s.run([("x", InputValue::from(vec![1i64, -2, 3]))])).unwrap();
    assert_eq!(out.values(&prev).unwrap(), vec![1.0, -2.0, 3.0], "an even number of negations");
    assert_eq!(out.report.totals.dealer_bytes, vec![300 * DEALT_BYTES, 300 * DEALT_BYTES]);
    for n in &out.report.nodes {
        assert_eq!(n.dealer_bytes, n.predicted_dealer_bytes, "{}", n.name);
    }
}

/// Each private input sits in the plan right before its first consumer, so weights are dealt and
/// shared layer by layer (and dropped after their last use) rather than all at the start; with a
/// dealer window of two frames the run still flows and gives the right sum.
#[test]
fn inputs_are_planned_where_first_used_and_stream_through_a_small_window() {
    let mut g = GraphSpec::new("layers", ["a", "b"]).input("x", "a", DType::Int, vec![Dim::Fixed(3)]);
    let mut prev = "x".to_string();
    for i in 0..12 {
        let (w, l) = (format!("w{i}"), format!("l{i}"));
        g = g.input(&w, "b", DType::Int, vec![Dim::Fixed(3)]).node(&l, Op::Add, [prev.as_str(), w.as_str()]);
        prev = l;
    }
    g = g.output(&prev, ["a"]);
    let cfg = SessionConfig {
        all_under_protocol: true,
        protocol: Some("fss2pc".into()),
        dealer_window: 2,
        timeout: Duration::from_secs(20),
        ..Default::default()
    };
    let s = Session::from_graph(g, mpcflow::builtins()).with_config(cfg);
    let plan = s.plan(PlanOptions::default()).unwrap();
    for i in 0..12 {
        let (w, l) = (plan.node_id(&format!("w{i}")).unwrap(), plan.node_id(&format!("l{i}")).unwrap());
        assert_eq!(w + 1, l, "w{i} right before l{i}");
    }
    assert_eq!(plan.node_id("x"), Some(0));
    let mut inputs = vec![("x".to_string(), InputValue::from(vec![1i64, -2, 3]))];
    inputs.extend((0..12).map(|i| (format!("w{i}"), InputValue::from(vec![i as i64, 1, -1]))));
    let out = rt().block_on(s.run(inputs)).unwrap();
    assert_eq!(out.values(&prev).unwrap(), vec![67.0, 10.0, -9.0]);
}

#[test]
fn protocol_lowering_matches_the_direct_op() {
    let reg = registry_with(vec![Arc::new(LoweringRef)]);
    let direct = rt().block_on(session(THREE_PARTY, reg.clone(), "ref", 10_000).run(three_party_inputs())).unwrap();
    let s = session(THREE_PARTY, reg, "ref-lowered", 10_000);
    let plan = s.plan(PlanOptions::default()).unwrap();
    let lowered: Vec<String> = plan.nodes.iter().filter(|n| n.origin == "sm").map(|n| n.desc.kind.label()).collect();
    assert_eq!(lowered, vec!["exp", "sum", "div", "output"]);
    let out = rt().block_on(s.run(three_party_inputs())).unwrap();
    let (a, b) = (decode(&direct.get("sm").unwrap().tensor), decode(&out.get("sm").unwrap().tensor));
    for (x, y) in a.iter().zip(&b) {
        // exp and div each round once: within a few ulp of the direct softmax.
        assert!((x - y).abs() <= 4.0 / 65536.0, "{x} vs {y}");
    }
}

/// `clip(x) = min(max(x, lo), hi)` as an operator plugin.
struct Clip;
impl Operator for Clip {
    fn name(&self) -> &str {
        "clip"
    }
    fn lower(
        &self,
        attrs: &Attrs,
        inputs: &[TensorInfo],
        fp: mpcflow_sdk::FixedPoint,
    ) -> mpcflow_sdk::Result<Lowering> {
        use mpcflow_sdk::op::AttrValue;
        let num = |k: &str| match attrs.get(k) {
            Some(AttrValue::Float(v)) => Ok(*v),
            Some(AttrValue::Int(v)) => Ok(*v as f64),
            _ => Err(mpcflow_sdk::Error::invalid(format!("clip needs a number `{k}`"))),
        };
        let dt = inputs.first().map(|t| t.dtype).unwrap_or(DType::Fixed);
        let c = |v: f64| LRef::Const(mpcflow_sdk::Tensor::scalar(dt, v, fp));
        Ok(Lowering {
            nodes: vec![
                LoweredNode { op: Op::Max { axis: None }, inputs: vec![LRef::Input(0), c(num("lo")?)] },
                LoweredNode { op: Op::Min { axis: None }, inputs: vec![LRef::Node(0), c(num("hi")?)] },
            ],
        })
    }
}

#[test]
fn operator_plugins_expand_into_the_op_set() {
    let yaml = "version: 1\nparties: [a, b]\ninputs:\n  x: { owner: a, dtype: fixed, shape: [4] }\nnodes:\n  y: { op: clip, inputs: [x], lo: -1, hi: 0.5 }\noutputs:\n  y: { reveal_to: [b] }\n";
    let mut reg = mpcflow::builtins();
    reg.add_operator(Arc::new(Clip));
    let s = session(yaml, reg, "ref", 10_000);
    let out = rt().block_on(s.run([("x", InputValue::from(vec![-3.0, -0.25, 0.5, 9.0]))])).unwrap();
    assert_eq!(out.values("y").unwrap(), vec![-1.0, -0.25, 0.5, 0.5]);
    // Without the plugin the op is unknown, with a location.
    let err = session(yaml, mpcflow::builtins(), "ref", 1000).plan(PlanOptions::default()).unwrap_err().to_string();
    assert!(err.contains("test.yaml:6:12: node `y`: unknown op `clip`"), "{err}");
}

#[test]
fn a_failure_on_one_party_reaches_all_and_names_party_and_node() {
    let fault = Faulty { name: "faulty".into(), fault: Fault::FailAt { node: "m".into(), party: 2 } };
    let s = session(THREE_PARTY, registry_with(vec![Arc::new(fault)]), "faulty", 30_000);
    let start = Instant::now();
    let err = rt().block_on(s.run(three_party_inputs())).unwrap_err();
    assert!(start.elapsed() < Duration::from_secs(10), "the others stop at once, not at the timeout");
    let msg = err.to_string();
    assert!(matches!(err, Error::Node { .. }), "root cause reported: {msg}");
    assert_eq!(msg, "c: node `m` (matmul): injected failure");
}

#[test]
fn a_missing_message_times_out_instead_of_hanging() {
    let fault = Faulty { name: "silent".into(), fault: Fault::SilentAt { node: "s".into() } };
    let s = session(THREE_PARTY, registry_with(vec![Arc::new(fault)]), "silent", 300);
    let start = Instant::now();
    let err = rt().block_on(s.run(three_party_inputs())).unwrap_err().to_string();
    assert!(start.elapsed() < Duration::from_secs(10));
    assert!(err.contains("b: timed out: message from a for node `s` round 0 did not arrive within 0.3 s"), "{err}");
}

#[test]
fn bad_inputs_are_refused_before_running() {
    let s = session(THREE_PARTY, mpcflow::builtins(), "ref", 1000);
    let rt = rt();
    let mut inputs = three_party_inputs();
    inputs.pop();
    let err = rt.block_on(s.run(inputs)).unwrap_err().to_string();
    assert!(err.contains("test.yaml:7:3: input `z`: no value given for input `z` of c"), "{err}");
    let mut inputs = three_party_inputs();
    inputs[0].1 = InputValue::from(vec![1.0, 2.0]);
    let err = rt.block_on(s.run(inputs)).unwrap_err().to_string();
    assert!(err.contains("input `x`: the data has shape [2] but the declared shape is [4]"), "{err}");
    let mut inputs = three_party_inputs();
    inputs.push(("w", InputValue::from(1.0)));
    let err = rt.block_on(s.run(inputs)).unwrap_err().to_string();
    assert!(err.contains("`w` is not an input of the graph (inputs: x, y, z)"), "{err}");
}

#[test]
fn symbolic_dimensions_are_fixed_by_the_data_and_must_agree() {
    let yaml = "version: 1\nparties: [a, b]\ninputs:\n  x: { owner: a, dtype: fixed, shape: [n] }\n  y: { owner: b, dtype: fixed, shape: [n] }\nnodes:\n  s: { op: add, inputs: [x, y] }\noutputs:\n  s: { reveal_to: [a, b] }\n";
    let s = session(yaml, mpcflow::builtins(), "ref", 1000);
    let rt = rt();
    let out =
        rt.block_on(s.run([("x", InputValue::from(vec![1.0; 5])), ("y", InputValue::from(vec![2.0; 5]))])).unwrap();
    assert_eq!(out.values("s").unwrap(), vec![3.0; 5]);
    let err = rt
        .block_on(s.run([("x", InputValue::from(vec![1.0; 5])), ("y", InputValue::from(vec![2.0; 4]))]))
        .unwrap_err()
        .to_string();
    assert!(err.contains("dimension `n` is 4 in this input's data but 5 elsewhere"), "{err}");
}

#[test]
fn the_fingerprint_changes_with_anything_parties_must_agree_on() {
    let s = session(THREE_PARTY, mpcflow::builtins(), "ref", 1000);
    let a = s.plan(PlanOptions::default()).unwrap();
    let b = s.plan(PlanOptions::default()).unwrap();
    assert_eq!(a.fingerprint, b.fingerprint, "deterministic");
    let other = session(&THREE_PARTY.replace("axis: -1", "axis: 0"), mpcflow::builtins(), "ref", 1000)
        .plan(PlanOptions::default())
        .unwrap();
    assert_ne!(a.fingerprint, other.fingerprint);
    let mut dims = PlanOptions::default();
    dims.input_shapes.insert("x".into(), vec![4]);
    assert_eq!(s.plan(dims).unwrap().fingerprint, a.fingerprint);
}

/// `plan`'s expected peak, worked by hand for a chain under `ref` (one word per element): the
/// owner's plaintext (8 kB) and the wires of `x` and `y` (8 kB each) are the most alive at once,
/// and the largest node (an input and an output, 16 kB) comes on top.
#[test]
fn the_expected_peak_counts_live_values_and_the_largest_node() {
    let g = GraphSpec::new("chain", ["a", "b"])
        .input("x", "a", DType::Int, vec![Dim::Fixed(1000)])
        .node("y", Op::Neg, ["x"])
        .node("z", Op::Neg, ["y"])
        .output("z", ["a"]);
    let cfg = SessionConfig { all_under_protocol: true, protocol: Some("ref".into()), ..Default::default() };
    let plan = Session::from_graph(g, mpcflow::builtins()).with_config(cfg).plan(PlanOptions::default()).unwrap();
    let peak = mpcflow::runtime::plan::expected_peak(&plan, 1 << 20);
    // a: its plaintext and x's wire (16 kB) before the plaintext is dropped, then x and y
    // (16 kB); b: x and y. Each plus the largest node, 16 kB.
    assert_eq!(peak.per_party, vec![32_000, 32_000]);
    assert_eq!(peak.one_process, 64_000, "no dealer under ref");
}

/// Under a protocol with a dealer the estimate counts the material read ahead: all of it when it
/// fits the window, and never more than the window plus the frames in the channel and in hand.
#[test]
fn the_expected_peak_counts_the_material_window() {
    let (g, _) = chain_of_negations();
    let reg = registry_with(vec![Arc::new(DealtRef)]);
    let cfg = SessionConfig { all_under_protocol: true, protocol: Some("ref-dealt".into()), ..Default::default() };
    let plan = Session::from_graph(g, reg).with_config(cfg).plan(PlanOptions::default()).unwrap();
    let roomy = mpcflow::runtime::plan::expected_peak(&plan, 1 << 30);
    let tight = mpcflow::runtime::plan::expected_peak(&plan, 1);
    let frames = mpcflow::runtime::schedule::DEALER_CHANNEL_FRAMES as u64 + 1;
    for p in 0..2 {
        // Values: at most the input's plaintext and two wires of 3 words; the largest node: an
        // input, an output and its material.
        let values_and_node = roomy.per_party[p] - 300 * DEALT_BYTES;
        assert!(values_and_node <= 3 * 24 + 2 * 24 + DEALT_BYTES, "{values_and_node}");
        assert_eq!(tight.per_party[p], values_and_node + (1 + frames) * DEALT_BYTES, "the window, one frame alone");
    }
    // Two parties, each with the frame the dealer's sender holds and the next being generated.
    assert_eq!(roomy.one_process, roomy.per_party.iter().sum::<u64>() + 2 * 2 * DEALT_BYTES, "the dealer's frames");
}

/// The dealer's link of `mem`, but its second material frame is relabelled as the first's node:
/// a dealer that sends a node's material twice (or out of plan order).
struct RepeatingDealerLink {
    inner: Box<dyn mpcflow_sdk::transport::Link>,
    first: std::sync::Mutex<Option<[u8; 4]>>,
    sent: std::sync::atomic::AtomicUsize,
}

impl mpcflow_sdk::transport::Link for RepeatingDealerLink {
    fn send(&self, to: mpcflow_sdk::Endpoint, mut frame: Vec<u8>) -> mpcflow_sdk::Result<()> {
        // The runtime's 7-byte trailer: kind (2: material), node id, round.
        let tag = frame.len() - 7;
        if frame[tag] == 2 && to == mpcflow_sdk::Endpoint::Party(mpcflow_sdk::PartyId(1)) {
            let mut first = self.first.lock().unwrap();
            match *first {
                None => *first = Some(frame[tag + 1..tag + 5].try_into().unwrap()),
                Some(node) if self.sent.fetch_add(1, std::sync::atomic::Ordering::SeqCst) == 0 => {
                    frame[tag + 1..tag + 5].copy_from_slice(&node)
                }
                Some(_) => {}
            }
        }
        self.inner.send(to, frame)
    }
    fn recv(&self, from: mpcflow_sdk::Endpoint, timeout: Duration) -> mpcflow_sdk::Result<Vec<u8>> {
        self.inner.recv(from, timeout)
    }
}

/// `mem` with the dealer's link wrapped by `wrap` (a faulty dealer for a test), named `name`.
struct WrappedDealer {
    inner: mpcflow_transport_mem::MemTransport,
    name: &'static str,
    wrap: fn(Box<dyn mpcflow_sdk::transport::Link>) -> Box<dyn mpcflow_sdk::transport::Link>,
}

impl mpcflow_sdk::transport::Transport for WrappedDealer {
    fn name(&self) -> &str {
        self.name
    }
    fn connect(
        &self,
        session: &mpcflow_sdk::transport::SessionInfo,
        me: mpcflow_sdk::Endpoint,
    ) -> mpcflow_sdk::Result<Box<dyn mpcflow_sdk::transport::Link>> {
        let inner = self.inner.connect(session, me)?;
        Ok(if me == mpcflow_sdk::Endpoint::Dealer { (self.wrap)(inner) } else { inner })
    }
}

/// Material the plan does not expect (a node's second frame) is refused at once, naming the
/// node that was due, instead of holding room in the window that no node gives back.
#[test]
fn material_out_of_plan_order_stops_the_run_naming_the_node_due() {
    let (e, took) = run_with_faulty_dealer("repeating-dealer", |inner| {
        Box::new(RepeatingDealerLink { inner, first: Default::default(), sent: Default::default() })
    });
    assert!(e.contains("material for node `n0` where node `n1`'s was due"), "{e}");
    assert!(took < Duration::from_secs(10), "refused at once, not at a timeout");
}

/// Runs [`chain_of_negations`] under a dealt protocol over `mem` with the dealer's link wrapped
/// by `wrap`, with a 20 s timeout; the run's error and how long it took.
fn run_with_faulty_dealer(
    name: &'static str,
    wrap: fn(Box<dyn mpcflow_sdk::transport::Link>) -> Box<dyn mpcflow_sdk::transport::Link>,
) -> (String, Duration) {
    let (g, _) = chain_of_negations();
    let mut reg = registry_with(vec![Arc::new(DealtRef)]);
    reg.add_transport(Arc::new(WrappedDealer { inner: mpcflow_transport_mem::MemTransport::new(), name, wrap }));
    let cfg = SessionConfig {
        all_under_protocol: true,
        protocol: Some("ref-dealt".into()),
        transport: name.into(),
        timeout: Duration::from_secs(20),
        ..Default::default()
    };
    let started = Instant::now();
    let e =
        rt().block_on(Session::from_graph(g, reg).with_config(cfg).run([("x", InputValue::from(vec![1i64, 2, 3]))]));
    (e.unwrap_err().to_string(), started.elapsed())
}

/// The dealer's link of `mem`, but it panics on its third material frame to party 0: a sender
/// thread that dies.
struct PanickingDealerLink {
    inner: Box<dyn mpcflow_sdk::transport::Link>,
    sent: std::sync::atomic::AtomicUsize,
}

impl mpcflow_sdk::transport::Link for PanickingDealerLink {
    fn send(&self, to: mpcflow_sdk::Endpoint, frame: Vec<u8>) -> mpcflow_sdk::Result<()> {
        // The runtime's 7-byte trailer starts with the kind (2: material).
        let material = frame.get(frame.len().saturating_sub(7)) == Some(&2);
        if material
            && to == mpcflow_sdk::Endpoint::Party(mpcflow_sdk::PartyId(0))
            && self.sent.fetch_add(1, std::sync::atomic::Ordering::SeqCst) == 2
        {
            panic!("injected: the link to party 0 breaks");
        }
        self.inner.send(to, frame)
    }
    fn recv(&self, from: mpcflow_sdk::Endpoint, timeout: Duration) -> mpcflow_sdk::Result<Vec<u8>> {
        self.inner.recv(from, timeout)
    }
}

/// A dealer whose sender thread dies mid-run fails the run, naming the party it was sending
/// to, rather than ending the material early and reporting success.
#[test]
fn a_dealer_sender_that_dies_fails_the_run() {
    let (e, took) = run_with_faulty_dealer("panicking-dealer", |inner| {
        Box::new(PanickingDealerLink { inner, sent: Default::default() })
    });
    assert!(e.contains("sending material to") && e.contains("panicked"), "{e}");
    assert!(took < Duration::from_secs(10), "failed at once, not at a timeout");
}

/// What [`LoggedDealt`] saw, in order: `(true, id)` when the dealer dealt node `id`, `(false,
/// id)` when a party began it.
type DealLog = Arc<std::sync::Mutex<Vec<(bool, u32)>>>;

/// [`DealtRef`] that logs what it deals and what the parties begin, and fails node `fail_at`
/// at party 0.
struct LoggedDealt {
    log: DealLog,
    fail_at: Option<u32>,
}

impl mpcflow_sdk::protocol::Protocol for LoggedDealt {
    fn descriptor(&self) -> mpcflow_sdk::protocol::ProtocolDescriptor {
        mpcflow_sdk::protocol::ProtocolDescriptor { name: "ref-logged".into(), ..DealtRef.descriptor() }
    }
    fn cost(&self, node: &mpcflow_sdk::protocol::NodeDesc) -> mpcflow_sdk::protocol::Cost {
        DealtRef.cost(node)
    }
    fn needs_material(&self, node: &mpcflow_sdk::protocol::NodeDesc) -> bool {
        DealtRef.needs_material(node)
    }
    fn dealer(&self) -> Box<dyn mpcflow_sdk::protocol::Dealer> {
        Box::new(LoggedDealer { inner: DealtRef.dealer(), log: self.log.clone() })
    }
    fn begin(
        &self,
        node: &mpcflow_sdk::protocol::NodeDesc,
        input: mpcflow_sdk::protocol::EvalInput,
    ) -> mpcflow_sdk::Result<Box<dyn mpcflow_sdk::protocol::NodeEval>> {
        self.log.lock().unwrap().push((false, node.id));
        if self.fail_at == Some(node.id) && input.party.0 == 0 {
            return Err(mpcflow_sdk::Error::invalid("injected failure"));
        }
        DealtRef.begin(node, input)
    }
}

struct LoggedDealer {
    inner: Box<dyn mpcflow_sdk::protocol::Dealer>,
    log: DealLog,
}

impl mpcflow_sdk::protocol::Dealer for LoggedDealer {
    fn deal(
        &mut self,
        node: &mpcflow_sdk::protocol::NodeDesc,
        inputs: &[u32],
        seed: [u8; 32],
    ) -> mpcflow_sdk::Result<Vec<Vec<u8>>> {
        self.log.lock().unwrap().push((true, node.id));
        // Dealing takes time, which the online time must leave out.
        std::thread::sleep(Duration::from_millis(1));
        self.inner.deal(node, inputs, seed)
    }
    fn forget(&mut self, id: u32) {
        self.inner.forget(id)
    }
}

/// Runs [`chain_of_negations`] under [`LoggedDealt`], dealt first with `budget` bytes of
/// material a phase, over `mem` or with the dealer's link failing as [`PanickingDealerLink`];
/// fails the test if the run has not ended within 30 s.
fn run_logged(
    budget: u64,
    fail_at: Option<u32>,
    dealer_panics: bool,
) -> (Result<mpcflow::runtime::RunOutput, Error>, DealLog, Duration) {
    let (g, _) = chain_of_negations();
    let log = DealLog::default();
    let mut reg = registry_with(vec![Arc::new(LoggedDealt { log: log.clone(), fail_at })]);
    reg.add_transport(Arc::new(WrappedDealer {
        inner: mpcflow_transport_mem::MemTransport::new(),
        name: "panicking-dealer",
        wrap: |inner| Box::new(PanickingDealerLink { inner, sent: Default::default() }),
    }));
    let cfg = SessionConfig {
        all_under_protocol: true,
        protocol: Some("ref-logged".into()),
        transport: if dealer_panics { "panicking-dealer" } else { "mem" }.into(),
        deal_first: true,
        deal_first_phase_bytes: budget,
        timeout: Duration::from_secs(20),
        ..Default::default()
    };
    let started = Instant::now();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let session = Session::from_graph(g, reg).with_config(cfg);
        let _ = tx.send(rt().block_on(session.run([("x", InputValue::from(vec![1i64, -2, 3]))])));
    });
    let out = rx.recv_timeout(Duration::from_secs(30)).expect("the run hung");
    (out, log, started.elapsed())
}

/// Dealt first with a budget of 40 nodes' material, the 300 dealt nodes run in 8 phases: the
/// parties begin a node only once its whole phase is dealt, and the dealer deals a phase only
/// once the parties have begun every node of the one before; the results, bytes and material
/// are those of a streamed run, and the online time leaves the dealing (1 ms a node) out.
#[test]
fn dealt_first_in_phases_runs_each_phase_between_its_dealing_and_the_next() {
    let per_node = 2 * DEALT_BYTES;
    let (out, log, _) = run_logged(40 * per_node, None, false);
    let out = out.unwrap();
    let (_, last) = chain_of_negations();
    assert_eq!(out.values(&last).unwrap(), vec![1.0, -2.0, 3.0]);
    assert_eq!(out.report.online_phases, 8);
    let (online, dealer, wall) = (out.report.online_wall_s, out.report.dealer_wall_s, out.report.wall_s);
    assert!(dealer >= 0.3, "dealing 300 nodes at 1 ms each took {dealer} s");
    assert!(online > 0.0 && online + dealer <= wall + 1e-3, "online {online} s, dealing {dealer} s, run {wall} s");
    for n in &out.report.nodes {
        assert_eq!(n.dealer_bytes, n.predicted_dealer_bytes, "{}", n.name);
    }
    // The cut, restated: consecutive nodes, at most the budget each, a new phase at the node
    // that would pass it.
    let mut phase_of = vec![];
    let (mut phase, mut held) = (0usize, 0u64);
    for n in &out.report.nodes {
        let bytes: u64 = n.predicted_dealer_bytes.iter().sum();
        if held > 0 && held + bytes > 40 * per_node {
            phase += 1;
            held = 0;
        }
        held += bytes;
        phase_of.push(phase);
    }
    assert_eq!(phase + 1, 8);
    let log = log.lock().unwrap();
    for (i, &(dealt, id)) in log.iter().enumerate() {
        let p = phase_of[id as usize];
        let (before, after) = (&log[..i], &log[i + 1..]);
        if dealt {
            // Every node of earlier phases was begun by both parties before this was dealt.
            let begun = before.iter().filter(|&&(d, j)| !d && phase_of[j as usize] < p).count();
            let due = phase_of.iter().filter(|&&q| q < p).count() * 2;
            assert_eq!(begun, due, "node {id} (phase {p}) dealt before the phase before it ran");
        } else {
            // Nothing of this phase is dealt after a party began one of its nodes.
            assert!(
                !after.iter().any(|&(d, j)| d && phase_of[j as usize] == p),
                "node {id} began before its phase was dealt"
            );
        }
    }
    let (one, _, _) = run_logged(u64::MAX, None, false);
    assert_eq!(one.unwrap().report.online_phases, 1, "a budget over the plan's material: one phase");
}

/// A node failing in a later phase fails the run at once, with the node's error: the dealer,
/// waiting for that phase to finish, is released rather than left hanging, and deals no further
/// phase (the input and the 160 negations of phases 0 to 3, where node 150 is).
#[test]
fn a_failure_in_a_phase_of_a_dealt_first_run_ends_the_run() {
    let (out, log, took) = run_logged(40 * 2 * DEALT_BYTES, Some(150), false);
    let e = out.unwrap_err().to_string();
    assert!(e.contains("injected failure") && e.contains("n149"), "{e}");
    assert!(took < Duration::from_secs(10), "failed at once, not at a timeout ({took:?})");
    let dealt = log.lock().unwrap().iter().filter(|(d, _)| *d).count();
    assert_eq!(dealt, 161, "the dealer dealt past the failing phase");
}

/// A dealer failing before its first phase is dealt (a sender thread dies on its third frame)
/// fails the run with that failure, and the parties, waiting for the phase, begin no node.
#[test]
fn a_dealer_failing_before_a_phase_is_dealt_stops_the_parties_waiting_for_it() {
    let (out, log, took) = run_logged(40 * 2 * DEALT_BYTES, None, true);
    let e = out.unwrap_err().to_string();
    assert!(e.contains("sending material to") && e.contains("panicked"), "{e}");
    assert!(took < Duration::from_secs(10), "failed at once, not at a timeout ({took:?})");
    let begun: Vec<u32> = log.lock().unwrap().iter().filter(|(d, _)| !d).map(|&(_, id)| id).collect();
    assert!(begun.is_empty(), "parties began nodes {begun:?} of a phase never dealt");
}
