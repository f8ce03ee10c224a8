//! Every plugin kind as an abi_stable trait object (`#[sabi_trait]`), and the list a plugin
//! library exports.
// abi_stable's expansions contain unsafe blocks and impls (see the parent module).
#![allow(non_local_definitions, missing_docs, unsafe_code)]

use super::*;

/// [`Operator`] across the boundary.
#[sabi_trait]
pub trait FfiOperator: Send + Sync {
    fn name(&self) -> RString;
    fn version(&self) -> RString;
    /// 0 secure, 1 transform.
    fn kind(&self) -> u8;
    /// JSON attrs, JSON input infos, JSON fixed point → JSON lowering.
    fn lower(&self, attrs: RStr<'_>, inputs: RStr<'_>, fixed_point: RStr<'_>) -> FfiResult<RString>;
    #[sabi(last_prefix_field)]
    fn transform(&self, attrs: RStr<'_>, input: FfiPlain) -> FfiResult<FfiPlain>;
}

/// [`Importer`] across the boundary.
#[sabi_trait]
pub trait FfiImporter: Send + Sync {
    fn name(&self) -> RString;
    fn version(&self) -> RString;
    /// Model bytes → JSON [`ImportedModel`].
    #[sabi(last_prefix_field)]
    fn import(&self, bytes: RSlice<'_, u8>) -> FfiResult<RString>;
}

/// [`Conv2dGeometry`] across the boundary.
#[repr(C)]
#[derive(StableAbi, Clone, Copy, Debug)]
pub struct FfiConv2d {
    pub(super) batch: u64,
    pub(super) channels: u64,
    pub(super) input: [u64; 2],
    pub(super) out_channels: u64,
    pub(super) kernel: [u64; 2],
    pub(super) stride: [u64; 2],
    pub(super) padding: [u64; 2],
    pub(super) output: [u64; 2],
}

impl From<&Conv2dGeometry> for FfiConv2d {
    fn from(g: &Conv2dGeometry) -> Self {
        let pair = |p: [usize; 2]| p.map(|v| v as u64);
        FfiConv2d {
            batch: g.batch as u64,
            channels: g.channels as u64,
            input: pair(g.input),
            out_channels: g.out_channels as u64,
            kernel: pair(g.kernel),
            stride: pair(g.stride),
            padding: pair(g.padding),
            output: pair(g.output),
        }
    }
}

impl TryFrom<FfiConv2d> for Conv2dGeometry {
    type Error = Error;
    fn try_from(g: FfiConv2d) -> Result<Self> {
        let one = |v: u64| usize::try_from(v).map_err(|_| Error::invalid("conv2d geometry does not fit this machine"));
        let pair = |p: [u64; 2]| -> Result<[usize; 2]> { Ok([one(p[0])?, one(p[1])?]) };
        Ok(Conv2dGeometry {
            batch: one(g.batch)?,
            channels: one(g.channels)?,
            input: pair(g.input)?,
            out_channels: one(g.out_channels)?,
            kernel: pair(g.kernel)?,
            stride: pair(g.stride)?,
            padding: pair(g.padding)?,
            output: pair(g.output)?,
        })
    }
}

/// [`Kernel`] across the boundary: every method, so a native kernel plugin can take all the
/// work the runtime offers (a method it does not implement answers "unsupported", as in-process).
#[sabi_trait]
pub trait FfiKernel: Send + Sync {
    fn name(&self) -> RString;
    fn device(&self) -> RString;
    /// `ROk` when the kernel can run here, else why not.
    fn available(&self) -> RResult<(), RString>;
    fn ring_matmul(
        &self,
        a: RSlice<'_, u64>,
        b: RSlice<'_, u64>,
        m: u64,
        k: u64,
        n: u64,
        out: RSliceMut<'_, u64>,
    ) -> FfiResult<()>;
    fn ring_conv2d(
        &self,
        x: RSlice<'_, u64>,
        w: RSlice<'_, u64>,
        g: FfiConv2d,
        out: RSliceMut<'_, u64>,
    ) -> FfiResult<()>;
    fn fss_eval(
        &self,
        scheme: u8,
        party: u8,
        n_bits: u32,
        keys: RSlice<'_, u8>,
        xs: RSlice<'_, u64>,
        out: RSliceMut<'_, u64>,
    ) -> FfiResult<()>;
    #[sabi(last_prefix_field)]
    fn pack_bits(&self, values: RSlice<'_, u64>, bits: u32, out: RSliceMut<'_, u64>) -> FfiResult<()>;
}

/// [`NodeEval`] across the boundary.
#[sabi_trait]
pub trait FfiNodeEval: Send {
    #[sabi(last_prefix_field)]
    fn step(&mut self, inbox: RVec<FfiMessage>) -> FfiResult<FfiStep>;
}

/// [`Dealer`] across the boundary.
#[sabi_trait]
pub trait FfiDealer: Send {
    /// JSON node, input ids, seed → each party's material.
    fn deal(&mut self, node: RStr<'_>, inputs: RSlice<'_, u32>, seed: FfiSeed) -> FfiResult<RVec<RVec<u8>>>;
    #[sabi(last_prefix_field)]
    fn forget(&mut self, id: u32);
}

/// [`Protocol`] across the boundary. Descriptors, ops, nodes and costs are JSON.
#[sabi_trait]
pub trait FfiProtocol: Send + Sync {
    fn descriptor(&self) -> RString;
    fn supports(&self, op: RStr<'_>) -> bool;
    /// JSON `Option<Lowering>`.
    fn lower(&self, op: RStr<'_>, inputs: RStr<'_>, fixed_point: RStr<'_>) -> RString;
    fn check(&self, node: RStr<'_>) -> RResult<(), RString>;
    fn cost(&self, node: RStr<'_>) -> RString;
    fn needs_material(&self, node: RStr<'_>) -> bool;
    fn dealer(&self) -> FfiDealerBox;
    #[sabi(last_prefix_field)]
    fn begin(
        &self,
        node: RStr<'_>,
        party: u16,
        inputs: RVec<FfiWire>,
        material: RVec<u8>,
        private: ROption<FfiTensor>,
    ) -> FfiResult<FfiNodeEvalBox>;
}

/// [`Link`] across the boundary.
#[sabi_trait]
pub trait FfiLink: Send + Sync {
    fn send(&self, to: u32, frame: RVec<u8>) -> FfiResult<()>;
    #[sabi(last_prefix_field)]
    fn recv(&self, from: u32, timeout_ms: u64) -> FfiResult<RVec<u8>>;
}

/// [`Transport`] across the boundary.
#[sabi_trait]
pub trait FfiTransport: Send + Sync {
    fn name(&self) -> RString;
    #[sabi(last_prefix_field)]
    fn connect(&self, session: FfiSession, me: u32) -> FfiResult<FfiLinkBox>;
}

pub type FfiOperatorBox = FfiOperator_TO<'static, RBox<()>>;
pub type FfiImporterBox = FfiImporter_TO<'static, RBox<()>>;
pub type FfiKernelBox = FfiKernel_TO<'static, RBox<()>>;
pub type FfiNodeEvalBox = FfiNodeEval_TO<'static, RBox<()>>;
pub type FfiDealerBox = FfiDealer_TO<'static, RBox<()>>;
pub type FfiProtocolBox = FfiProtocol_TO<'static, RBox<()>>;
pub type FfiLinkBox = FfiLink_TO<'static, RBox<()>>;
pub type FfiTransportBox = FfiTransport_TO<'static, RBox<()>>;

/// One plugin of a library.
#[repr(u8)]
#[derive(StableAbi)]
pub enum FfiPlugin {
    Protocol(FfiProtocolBox),
    Transport(FfiTransportBox),
    Kernel(FfiKernelBox),
    Importer(FfiImporterBox),
    Operator(FfiOperatorBox),
}
