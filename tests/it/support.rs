//! Test protocols built on `ref` and helpers shared by the tests.

use mpcflow::runtime::{Registry, Session, SessionConfig};
use mpcflow_protocol_ref::RefProtocol;
use mpcflow_sdk::protocol::*;
use mpcflow_sdk::shape::TensorInfo;
use mpcflow_sdk::{Error, FixedPoint, Op, PartyId, Result, Tensor};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// The repository root.
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("cli/ has a parent").to_path_buf()
}

/// A scratch directory for one test: emptied at the start and removed when the test passes,
/// kept for a look when it fails (test deployments write private keys into it).
pub struct Scratch(PathBuf);

impl Scratch {
    /// `<temp>/<name>-<pid>`, empty.
    pub fn new(name: &str) -> Scratch {
        let dir = std::env::temp_dir().join(format!("{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("a scratch directory");
        Scratch(dir)
    }
}

impl std::ops::Deref for Scratch {
    type Target = PathBuf;
    fn deref(&self) -> &PathBuf {
        &self.0
    }
}

impl AsRef<Path> for Scratch {
    fn as_ref(&self) -> &Path {
        &self.0
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

/// A multi-threaded runtime for one test.
pub fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime")
}

/// Built-ins plus `extra` protocols.
pub fn registry_with(extra: Vec<Arc<dyn Protocol>>) -> Registry {
    let mut r = mpcflow::builtins();
    for p in extra {
        r.add_protocol(p);
    }
    r
}

/// A session with a short timeout.
pub fn session(yaml: &str, registry: Registry, protocol: &str, timeout_ms: u64) -> Session {
    let cfg = SessionConfig {
        protocol: Some(protocol.into()),
        timeout: Duration::from_millis(timeout_ms),
        ..Default::default()
    };
    Session::from_yaml(yaml, "test.yaml", registry).expect("valid yaml").with_config(cfg)
}

/// What a misbehaving protocol does wrong.
#[derive(Clone)]
pub enum Fault {
    /// Party `party` fails at node `node`.
    FailAt { node: String, party: u16 },
    /// Party 1 waits at node `node` for a message party 0 never sends.
    SilentAt { node: String },
}

/// `ref` with an injected fault.
pub struct Faulty {
    pub name: String,
    pub fault: Fault,
}

struct WaitForever;
impl NodeEval for WaitForever {
    fn step(&mut self, _inbox: Vec<Message>) -> Result<Step> {
        Ok(Step::Exchange { send: vec![], expect: vec![PartyId(0)] })
    }
}

impl Protocol for Faulty {
    fn descriptor(&self) -> ProtocolDescriptor {
        ProtocolDescriptor { name: self.name.clone(), secure: false, ..RefProtocol.descriptor() }
    }
    fn cost(&self, node: &NodeDesc) -> Cost {
        RefProtocol.cost(node)
    }
    fn begin(&self, node: &NodeDesc, input: EvalInput) -> Result<Box<dyn NodeEval>> {
        match &self.fault {
            Fault::FailAt { node: n, party } if *n == node.name && input.party.0 == *party => {
                Err(Error::invalid("injected failure"))
            }
            Fault::SilentAt { node: n } if *n == node.name && input.party.0 == 1 => Ok(Box::new(WaitForever)),
            _ => RefProtocol.begin(node, input),
        }
    }
}

/// `ref`, but softmax is lowered to exp, sum and div, as a secure protocol would.
pub struct LoweringRef;

impl Protocol for LoweringRef {
    fn descriptor(&self) -> ProtocolDescriptor {
        ProtocolDescriptor { name: "ref-lowered".into(), secure: false, ..RefProtocol.descriptor() }
    }
    fn supports(&self, op: &Op) -> bool {
        !matches!(op, Op::Softmax { .. })
    }
    fn lower(&self, op: &Op, _inputs: &[TensorInfo], _fp: FixedPoint) -> Option<Lowering> {
        let Op::Softmax { axis } = op else { return None };
        Some(Lowering {
            nodes: vec![
                LoweredNode { op: Op::Exp, inputs: vec![LRef::Input(0)] },
                LoweredNode { op: Op::Sum { axes: vec![*axis], keepdims: true }, inputs: vec![LRef::Node(0)] },
                LoweredNode { op: Op::Div, inputs: vec![LRef::Node(0), LRef::Node(1)] },
            ],
        })
    }
    fn cost(&self, node: &NodeDesc) -> Cost {
        RefProtocol.cost(node)
    }
    fn begin(&self, node: &NodeDesc, input: EvalInput) -> Result<Box<dyn NodeEval>> {
        RefProtocol.begin(node, input)
    }
}

/// `ref` with a dealer: every op node gets 24 bytes per party (its node id, the party, and
/// 16 seed bytes), and each party checks it got its own node's material.
pub struct DealtRef;

pub const DEALT_BYTES: u64 = 24;

impl Protocol for DealtRef {
    fn descriptor(&self) -> ProtocolDescriptor {
        ProtocolDescriptor { name: "ref-dealt".into(), secure: false, needs_dealer: true, ..RefProtocol.descriptor() }
    }
    fn cost(&self, node: &NodeDesc) -> Cost {
        let mut c = RefProtocol.cost(node);
        if self.needs_material(node) {
            c.dealer_bytes = vec![DEALT_BYTES; node.parties];
        }
        c
    }
    fn needs_material(&self, node: &NodeDesc) -> bool {
        matches!(node.kind, NodeKind::Op(_))
    }
    fn dealer(&self) -> Box<dyn Dealer> {
        Box::new(DealtRefDealer { live: Default::default(), dealt: 0 })
    }
    fn begin(&self, node: &NodeDesc, input: EvalInput) -> Result<Box<dyn NodeEval>> {
        if self.needs_material(node) {
            let m = &input.material;
            let ok = m.len() == DEALT_BYTES as usize
                && m[..4] == node.id.to_le_bytes()
                && m[4..8] == u32::from(input.party.0).to_le_bytes();
            if !ok {
                return Err(Error::Material(format!("node {} got the wrong material", node.id)));
            }
        } else if !input.material.is_empty() {
            return Err(Error::Material("material for a node that needs none".into()));
        }
        RefProtocol.begin(node, input)
    }
}

/// Deals [`DealtRef`] material and checks that the runtime feeds it every node in order and
/// forgets each node exactly once, after its last use.
pub struct DealtRefDealer {
    live: std::collections::HashSet<u32>,
    dealt: u32,
}

impl Dealer for DealtRefDealer {
    fn deal(&mut self, node: &NodeDesc, inputs: &[u32], seed: [u8; 32]) -> Result<Vec<Vec<u8>>> {
        if node.id != self.dealt {
            return Err(Error::internal(format!("dealer fed node {} after {}", node.id, self.dealt)));
        }
        if let Some(j) = inputs.iter().find(|j| !self.live.contains(j)) {
            return Err(Error::internal(format!("input {j} of node {} was forgotten too early", node.id)));
        }
        self.dealt += 1;
        self.live.insert(node.id);
        if !DealtRef.needs_material(node) {
            return Ok(vec![vec![]; node.parties]);
        }
        Ok((0..node.parties as u32)
            .map(|p| {
                let mut m = node.id.to_le_bytes().to_vec();
                m.extend_from_slice(&p.to_le_bytes());
                m.extend_from_slice(&seed[..16]);
                m
            })
            .collect())
    }

    fn forget(&mut self, id: u32) {
        assert!(self.live.remove(&id), "node {id} forgotten twice or never dealt");
    }
}

/// Decodes a fixed-point output tensor.
pub fn decode(t: &Tensor) -> Vec<f64> {
    t.to_f64(FixedPoint::default())
}
