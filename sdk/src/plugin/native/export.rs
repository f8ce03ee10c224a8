//! The plugin side: each sdk trait wrapped as its abi_stable trait object, with panics caught
//! at the boundary.
// abi_stable's expansions contain unsafe blocks and impls (see the parent module).
#![allow(non_local_definitions, missing_docs, unsafe_code)]

use super::*;

struct ExportOperator(Arc<dyn Operator>);

impl FfiOperator for ExportOperator {
    fn name(&self) -> RString {
        self.0.name().into()
    }
    fn version(&self) -> RString {
        self.0.version().into()
    }
    fn kind(&self) -> u8 {
        match self.0.kind() {
            OperatorKind::Secure => 0,
            OperatorKind::Transform => 1,
        }
    }
    fn lower(&self, attrs: RStr<'_>, inputs: RStr<'_>, fixed_point: RStr<'_>) -> FfiResult<RString> {
        guarded("lower", || {
            let attrs: Attrs = from_json(attrs, "attribute map")?;
            let inputs: Vec<TensorInfo> = from_json(inputs, "input list")?;
            let fp: FixedPoint = from_json(fixed_point, "fixed point")?;
            to_json(&self.0.lower(&attrs, &inputs, fp)?)
        })
    }
    fn transform(&self, attrs: RStr<'_>, input: FfiPlain) -> FfiResult<FfiPlain> {
        guarded("transform", || {
            let attrs: Attrs = from_json(attrs, "attribute map")?;
            let plain = PlainTensor { shape: shape_from_ffi(&input.shape), values: input.values.into_vec() };
            let out = self.0.transform(&attrs, plain)?;
            Ok(FfiPlain { shape: shape_to_ffi(&out.shape), values: out.values.into() })
        })
    }
}

/// Wraps an operator for export.
pub fn export_operator(op: Arc<dyn Operator>) -> FfiPlugin {
    FfiPlugin::Operator(FfiOperator_TO::from_value(ExportOperator(op), TD_Opaque))
}

struct ExportImporter(Arc<dyn Importer>);

impl FfiImporter for ExportImporter {
    fn name(&self) -> RString {
        self.0.name().into()
    }
    fn version(&self) -> RString {
        self.0.version().into()
    }
    fn import(&self, bytes: RSlice<'_, u8>) -> FfiResult<RString> {
        guarded("import", || to_json(&self.0.import(bytes.as_slice())?))
    }
}

/// Wraps an importer for export.
pub fn export_importer(i: Arc<dyn Importer>) -> FfiPlugin {
    FfiPlugin::Importer(FfiImporter_TO::from_value(ExportImporter(i), TD_Opaque))
}

struct ExportKernel(Arc<dyn Kernel>);

impl FfiKernel for ExportKernel {
    fn name(&self) -> RString {
        self.0.descriptor().name.into()
    }
    fn device(&self) -> RString {
        self.0.descriptor().device.into()
    }
    fn available(&self) -> RResult<(), RString> {
        match guarded("available", || Ok(self.0.available())) {
            RResult::ROk(Ok(())) => RResult::ROk(()),
            RResult::ROk(Err(why)) => RResult::RErr(why.into()),
            RResult::RErr(e) => RResult::RErr(Error::from(e).to_string().into()),
        }
    }
    fn ring_matmul(
        &self,
        a: RSlice<'_, u64>,
        b: RSlice<'_, u64>,
        m: u64,
        k: u64,
        n: u64,
        mut out: RSliceMut<'_, u64>,
    ) -> FfiResult<()> {
        guarded("ring_matmul", || {
            self.0.ring_matmul(a.as_slice(), b.as_slice(), m as usize, k as usize, n as usize, out.as_mut_slice())
        })
    }
    fn ring_conv2d(
        &self,
        x: RSlice<'_, u64>,
        w: RSlice<'_, u64>,
        g: FfiConv2d,
        mut out: RSliceMut<'_, u64>,
    ) -> FfiResult<()> {
        guarded("ring_conv2d", || self.0.ring_conv2d(x.as_slice(), w.as_slice(), &g.try_into()?, out.as_mut_slice()))
    }
    fn fss_eval(
        &self,
        scheme: u8,
        party: u8,
        n_bits: u32,
        keys: RSlice<'_, u8>,
        xs: RSlice<'_, u64>,
        mut out: RSliceMut<'_, u64>,
    ) -> FfiResult<()> {
        guarded("fss_eval", || {
            let keys = FssKeys { scheme: scheme_from_ffi(scheme)?, party, n_bits, bytes: keys.as_slice() };
            self.0.fss_eval(&keys, xs.as_slice(), out.as_mut_slice())
        })
    }
    fn pack_bits(&self, values: RSlice<'_, u64>, bits: u32, mut out: RSliceMut<'_, u64>) -> FfiResult<()> {
        guarded("pack_bits", || self.0.pack_bits(values.as_slice(), bits, out.as_mut_slice()))
    }
}

/// Wraps a kernel for export.
pub fn export_kernel(k: Arc<dyn Kernel>) -> FfiPlugin {
    FfiPlugin::Kernel(FfiKernel_TO::from_value(ExportKernel(k), TD_Opaque))
}

struct ExportNodeEval(Box<dyn NodeEval>);

impl FfiNodeEval for ExportNodeEval {
    fn step(&mut self, inbox: RVec<FfiMessage>) -> FfiResult<FfiStep> {
        guarded("step", || {
            let inbox = inbox.into_iter().map(message_from_ffi).collect();
            Ok(match self.0.step(inbox)? {
                Step::Exchange { send, expect } => FfiStep::Exchange {
                    send: send.into_iter().map(message_to_ffi).collect(),
                    expect: expect.iter().map(|p| p.0).collect(),
                },
                Step::Done(NodeValue::Wire(w)) => FfiStep::Wire(wire_to_ffi(&w)),
                Step::Done(NodeValue::Revealed(t)) => FfiStep::Revealed(t.map(tensor_to_ffi).into()),
            })
        })
    }
}

struct ExportDealer(Box<dyn Dealer>);

impl FfiDealer for ExportDealer {
    fn deal(&mut self, node: RStr<'_>, inputs: RSlice<'_, u32>, seed: FfiSeed) -> FfiResult<RVec<RVec<u8>>> {
        guarded("deal", || {
            let node: NodeDesc = from_json(node, "node")?;
            let material = self.0.deal(&node, inputs.as_slice(), seed.0)?;
            Ok(material.into_iter().map(RVec::from).collect())
        })
    }
    fn forget(&mut self, id: u32) {
        self.0.forget(id)
    }
}

struct ExportProtocol(Arc<dyn Protocol>);

impl FfiProtocol for ExportProtocol {
    fn descriptor(&self) -> RString {
        to_json(&self.0.descriptor()).unwrap_or_default()
    }
    fn supports(&self, op: RStr<'_>) -> bool {
        from_json::<Op>(op, "op").is_ok_and(|op| self.0.supports(&op))
    }
    fn lower(&self, op: RStr<'_>, inputs: RStr<'_>, fixed_point: RStr<'_>) -> RString {
        let lowering = (|| -> Result<Option<Lowering>> {
            let op: Op = from_json(op, "op")?;
            let inputs: Vec<TensorInfo> = from_json(inputs, "input list")?;
            let fp: FixedPoint = from_json(fixed_point, "fixed point")?;
            Ok(self.0.lower(&op, &inputs, fp))
        })();
        to_json(&lowering.ok().flatten()).unwrap_or_else(|_| "null".into())
    }
    fn check(&self, node: RStr<'_>) -> RResult<(), RString> {
        match from_json::<NodeDesc>(node, "node") {
            Ok(node) => self.0.check(&node).map_err(RString::from).into(),
            Err(e) => RResult::RErr(e.to_string().into()),
        }
    }
    fn cost(&self, node: RStr<'_>) -> RString {
        let cost = from_json::<NodeDesc>(node, "node").map(|n| self.0.cost(&n)).unwrap_or_default();
        to_json(&cost).unwrap_or_default()
    }
    fn needs_material(&self, node: RStr<'_>) -> bool {
        from_json::<NodeDesc>(node, "node").is_ok_and(|n| self.0.needs_material(&n))
    }
    fn dealer(&self) -> FfiDealerBox {
        FfiDealer_TO::from_value(ExportDealer(self.0.dealer()), TD_Opaque)
    }
    fn begin(
        &self,
        node: RStr<'_>,
        party: u16,
        inputs: RVec<FfiWire>,
        material: RVec<u8>,
        private: ROption<FfiTensor>,
    ) -> FfiResult<FfiNodeEvalBox> {
        guarded("begin", || {
            let node: NodeDesc = from_json(node, "node")?;
            let inputs = inputs.into_iter().map(|w| wire_from_ffi(w).map(Arc::new)).collect::<Result<_>>()?;
            let private = private.into_option().map(tensor_from_ffi).transpose()?;
            let input =
                EvalInput { party: PartyId(party), inputs, material: material.into_vec(), private, kernel: None };
            let eval = self.0.begin(&node, input)?;
            Ok(FfiNodeEval_TO::from_value(ExportNodeEval(eval), TD_Opaque))
        })
    }
}

/// Wraps a protocol for export.
pub fn export_protocol(p: Arc<dyn Protocol>) -> FfiPlugin {
    FfiPlugin::Protocol(FfiProtocol_TO::from_value(ExportProtocol(p), TD_Opaque))
}

struct ExportLink(Box<dyn Link>);

impl FfiLink for ExportLink {
    fn send(&self, to: u32, frame: RVec<u8>) -> FfiResult<()> {
        guarded("send", || self.0.send(endpoint_from_ffi(to), frame.into_vec()))
    }
    fn recv(&self, from: u32, timeout_ms: u64) -> FfiResult<RVec<u8>> {
        guarded("recv", || self.0.recv(endpoint_from_ffi(from), Duration::from_millis(timeout_ms)).map(RVec::from))
    }
}

struct ExportTransport(Arc<dyn Transport>);

impl FfiTransport for ExportTransport {
    fn name(&self) -> RString {
        self.0.name().into()
    }
    fn connect(&self, session: FfiSession, me: u32) -> FfiResult<FfiLinkBox> {
        guarded("connect", || {
            let info = SessionInfo {
                id: session.id.into_string(),
                parties: session.parties.into_iter().map(RString::into_string).collect(),
                owners: session.owners.into_iter().map(RString::into_string).collect(),
                has_dealer: session.has_dealer,
                dealer_window: session.dealer_window as usize,
                timeout: Duration::from_millis(session.timeout_ms),
            };
            let link = self.0.connect(&info, endpoint_from_ffi(me))?;
            Ok(FfiLink_TO::from_value(ExportLink(link), TD_Opaque))
        })
    }
}

/// Wraps a transport for export.
pub fn export_transport(t: Arc<dyn Transport>) -> FfiPlugin {
    FfiPlugin::Transport(FfiTransport_TO::from_value(ExportTransport(t), TD_Opaque))
}
