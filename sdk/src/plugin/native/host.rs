//! The host side: a library's trait objects turned back into `Arc<dyn Operator>`,
//! `Arc<dyn Protocol>`, … for the registry.
// abi_stable's expansions contain unsafe blocks and impls (see the parent module).
#![allow(non_local_definitions, missing_docs, unsafe_code)]

use super::*;

/// A plugin from a library, as the sdk trait the registry holds.
pub enum HostPlugin {
    /// A protocol.
    Protocol(Arc<dyn Protocol>),
    /// A transport.
    Transport(Arc<dyn Transport>),
    /// A kernel.
    Kernel(Arc<dyn Kernel>),
    /// An importer.
    Importer(Arc<dyn Importer>),
    /// An operator.
    Operator(Arc<dyn Operator>),
}

/// Turns a library's plugins into registry plugins.
pub fn into_registry_plugins(list: RVec<FfiPlugin>) -> Result<Vec<HostPlugin>> {
    list.into_iter()
        .map(|p| {
            Ok(match p {
                FfiPlugin::Protocol(p) => {
                    let descriptor: ProtocolDescriptor = from_json(p.descriptor().as_rstr(), "protocol descriptor")?;
                    HostPlugin::Protocol(Arc::new(NativeProtocol { inner: p, descriptor }))
                }
                FfiPlugin::Transport(t) => {
                    HostPlugin::Transport(Arc::new(NativeTransport { name: t.name().into(), inner: t }))
                }
                FfiPlugin::Kernel(k) => HostPlugin::Kernel(Arc::new(NativeKernel {
                    descriptor: KernelDescriptor { name: k.name().into(), device: k.device().into() },
                    inner: k,
                })),
                FfiPlugin::Importer(i) => HostPlugin::Importer(Arc::new(NativeImporter {
                    name: i.name().into(),
                    version: i.version().into(),
                    inner: i,
                })),
                FfiPlugin::Operator(o) => HostPlugin::Operator(Arc::new(NativeOperator {
                    name: o.name().into(),
                    version: o.version().into(),
                    kind: if o.kind() == 1 { OperatorKind::Transform } else { OperatorKind::Secure },
                    inner: o,
                })),
            })
        })
        .collect()
}

struct NativeOperator {
    inner: FfiOperatorBox,
    name: String,
    version: String,
    kind: OperatorKind,
}

impl Operator for NativeOperator {
    fn name(&self) -> &str {
        &self.name
    }
    fn version(&self) -> &str {
        &self.version
    }
    fn kind(&self) -> OperatorKind {
        self.kind
    }
    fn lower(&self, attrs: &Attrs, inputs: &[TensorInfo], fixed_point: FixedPoint) -> Result<Lowering> {
        let (a, i, f) = (to_json(attrs)?, to_json(&inputs)?, to_json(&fixed_point)?);
        let out = lift(self.inner.lower(a.as_rstr(), i.as_rstr(), f.as_rstr()))?;
        from_json(out.as_rstr(), "lowering")
    }
    fn transform(&self, attrs: &Attrs, input: PlainTensor) -> Result<PlainTensor> {
        let a = to_json(attrs)?;
        let plain = FfiPlain { shape: shape_to_ffi(&input.shape), values: input.values.into() };
        let out = lift(self.inner.transform(a.as_rstr(), plain))?;
        Ok(PlainTensor { shape: shape_from_ffi(&out.shape), values: out.values.into_vec() })
    }
}

struct NativeImporter {
    inner: FfiImporterBox,
    name: String,
    version: String,
}

impl Importer for NativeImporter {
    fn name(&self) -> &str {
        &self.name
    }
    fn version(&self) -> &str {
        &self.version
    }
    fn import(&self, bytes: &[u8]) -> Result<ImportedModel> {
        let json = lift(self.inner.import(bytes.into()))?;
        from_json(json.as_rstr(), "model")
    }
}

struct NativeKernel {
    inner: FfiKernelBox,
    descriptor: KernelDescriptor,
}

impl Kernel for NativeKernel {
    fn descriptor(&self) -> KernelDescriptor {
        self.descriptor.clone()
    }
    fn available(&self) -> std::result::Result<(), String> {
        self.inner.available().into_result().map_err(RString::into_string)
    }
    fn ring_matmul(&self, a: &[u64], b: &[u64], m: usize, k: usize, n: usize, out: &mut [u64]) -> Result<()> {
        lift(self.inner.ring_matmul(a.into(), b.into(), m as u64, k as u64, n as u64, out.into()))
    }
    fn ring_conv2d(&self, x: &[u64], w: &[u64], g: &Conv2dGeometry, out: &mut [u64]) -> Result<()> {
        lift(self.inner.ring_conv2d(x.into(), w.into(), g.into(), out.into()))
    }
    fn fss_eval(&self, keys: &FssKeys<'_>, xs: &[u64], out: &mut [u64]) -> Result<()> {
        let scheme = scheme_to_ffi(keys.scheme);
        lift(self.inner.fss_eval(scheme, keys.party, keys.n_bits, keys.bytes.into(), xs.into(), out.into()))
    }
    fn pack_bits(&self, values: &[u64], bits: u32, out: &mut [u64]) -> Result<()> {
        lift(self.inner.pack_bits(values.into(), bits, out.into()))
    }
}

struct NativeNodeEval(FfiNodeEvalBox);

impl NodeEval for NativeNodeEval {
    fn step(&mut self, inbox: Vec<Message>) -> Result<Step> {
        let inbox = inbox.into_iter().map(message_to_ffi).collect();
        Ok(match lift(self.0.step(inbox))? {
            FfiStep::Exchange { send, expect } => Step::Exchange {
                send: send.into_iter().map(message_from_ffi).collect(),
                expect: expect.iter().map(|&p| PartyId(p)).collect(),
            },
            FfiStep::Wire(w) => Step::Done(NodeValue::Wire(wire_from_ffi(w)?)),
            FfiStep::Revealed(t) => Step::Done(NodeValue::Revealed(t.into_option().map(tensor_from_ffi).transpose()?)),
        })
    }
}

struct NativeDealer(FfiDealerBox);

impl Dealer for NativeDealer {
    fn deal(&mut self, node: &NodeDesc, inputs: &[u32], seed: [u8; 32]) -> Result<Vec<Vec<u8>>> {
        let json = to_json(node)?;
        let out = lift(self.0.deal(json.as_rstr(), inputs.into(), FfiSeed(seed)))?;
        Ok(out.into_iter().map(RVec::into_vec).collect())
    }
    fn forget(&mut self, id: u32) {
        self.0.forget(id)
    }
}

struct NativeProtocol {
    inner: FfiProtocolBox,
    descriptor: ProtocolDescriptor,
}

impl NativeProtocol {
    fn node_json(node: &NodeDesc) -> RString {
        to_json(node).unwrap_or_default()
    }
}

impl Protocol for NativeProtocol {
    fn descriptor(&self) -> ProtocolDescriptor {
        self.descriptor.clone()
    }
    fn supports(&self, op: &Op) -> bool {
        to_json(op).is_ok_and(|j| self.inner.supports(j.as_rstr()))
    }
    fn lower(&self, op: &Op, inputs: &[TensorInfo], fixed_point: FixedPoint) -> Option<Lowering> {
        let (o, i, f) = (to_json(op).ok()?, to_json(&inputs).ok()?, to_json(&fixed_point).ok()?);
        let out = self.inner.lower(o.as_rstr(), i.as_rstr(), f.as_rstr());
        from_json::<Option<Lowering>>(out.as_rstr(), "lowering").ok().flatten()
    }
    fn check(&self, node: &NodeDesc) -> std::result::Result<(), String> {
        self.inner.check(Self::node_json(node).as_rstr()).into_result().map_err(RString::into_string)
    }
    fn cost(&self, node: &NodeDesc) -> Cost {
        let json = self.inner.cost(Self::node_json(node).as_rstr());
        from_json(json.as_rstr(), "cost").unwrap_or_else(|_| Cost::zero(node.parties))
    }
    fn needs_material(&self, node: &NodeDesc) -> bool {
        self.inner.needs_material(Self::node_json(node).as_rstr())
    }
    fn dealer(&self) -> Box<dyn Dealer> {
        Box::new(NativeDealer(self.inner.dealer()))
    }
    fn begin(&self, node: &NodeDesc, input: EvalInput) -> Result<Box<dyn NodeEval>> {
        let inputs = input.inputs.iter().map(|w| wire_to_ffi(w)).collect();
        let private = input.private.map(tensor_to_ffi).into();
        let eval = lift(self.inner.begin(
            Self::node_json(node).as_rstr(),
            input.party.0,
            inputs,
            input.material.into(),
            private,
        ))?;
        Ok(Box::new(NativeNodeEval(eval)))
    }
}

struct NativeLink(FfiLinkBox);

impl Link for NativeLink {
    fn send(&self, to: Endpoint, frame: Vec<u8>) -> Result<()> {
        lift(self.0.send(endpoint_to_ffi(to), frame.into()))
    }
    fn recv(&self, from: Endpoint, timeout: Duration) -> Result<Vec<u8>> {
        lift(self.0.recv(endpoint_to_ffi(from), timeout.as_millis() as u64)).map(RVec::into_vec)
    }
}

struct NativeTransport {
    inner: FfiTransportBox,
    name: String,
}

impl Transport for NativeTransport {
    fn name(&self) -> &str {
        &self.name
    }
    fn connect(&self, session: &SessionInfo, me: Endpoint) -> Result<Box<dyn Link>> {
        let s = FfiSession {
            id: session.id.as_str().into(),
            parties: session.parties.iter().map(|p| RString::from(p.as_str())).collect(),
            owners: session.owners.iter().map(|p| RString::from(p.as_str())).collect(),
            has_dealer: session.has_dealer,
            dealer_window: session.dealer_window as u64,
            timeout_ms: session.timeout.as_millis() as u64,
        };
        let link = lift(self.inner.connect(s, endpoint_to_ffi(me)))?;
        Ok(Box::new(NativeLink(link)))
    }
}
