//! The `fss2pc` protocol: two parties and a dealer, masked wires, function secret sharing.

use crate::accel::Accel;
use crate::dealer::{FssDealer, difference};
use crate::gates::linear::{ScaleEval, eval_linear, public};
use crate::gates::open::OneRound;
use crate::gates::{Gate, bilinear, classify, io, lut, root, sign, trunc};
use crate::lowering;
use crate::material::{HEADER, SEED_LEN, Shares, Tag, dcf_len, dcf2_len, split_len};
use crate::wire::{Masked, MaskedRef};
use mpcflow_sdk::protocol::{
    Cost, Dealer, EvalInput, Immediate, Lowering, NodeDesc, NodeEval, NodeKind, NodeValue, PartyCount, Protocol,
    ProtocolDescriptor,
};
use mpcflow_sdk::shape::TensorInfo;
use mpcflow_sdk::{Error, FixedPoint, Op, Result, Tensor};

/// The fss2pc protocol plugin.
#[derive(Debug, Default, Clone, Copy)]
pub struct Fss2pc;

impl Protocol for Fss2pc {
    fn descriptor(&self) -> ProtocolDescriptor {
        ProtocolDescriptor {
            needs_dealer: true,
            ..ProtocolDescriptor::new(
                "fss2pc",
                "two parties and a dealer; masked wires with DCF-based comparisons and exact truncation",
                PartyCount::exactly(2),
            )
        }
    }

    fn supports(&self, op: &Op) -> bool {
        lowering::supported(op)
    }

    fn lower(&self, op: &Op, inputs: &[TensorInfo], fixed_point: FixedPoint) -> Option<Lowering> {
        lowering::lower(op, inputs, fixed_point)
    }

    fn check(&self, node: &NodeDesc) -> std::result::Result<(), String> {
        match classify(node) {
            Some(_) => Ok(()),
            None => Err(match &node.kind {
                NodeKind::Op(Op::Scale { .. }) => "fss2pc scales fixed-point values only with frac_bits ≥ 1".into(),
                NodeKind::Op(op) if lut::Func::of(op).is_some() => {
                    format!("fss2pc computes {} on fixed-point values with 7 ≤ frac_bits ≤ 24", op.name())
                }
                NodeKind::Op(op) if root::Func::of(op).is_some() => {
                    format!(
                        "fss2pc computes {} on fixed-point values with 1 ≤ frac_bits ≤ {}",
                        op.name(),
                        if matches!(op, Op::Reciprocal) { 22 } else { 24 }
                    )
                }
                k => format!("fss2pc has no gate for {} on these inputs", k.label()),
            }),
        }
    }

    fn cost(&self, node: &NodeDesc) -> Cost {
        cost(node)
    }

    fn needs_material(&self, node: &NodeDesc) -> bool {
        matches!(
            classify(node),
            Some(
                Gate::Input { .. }
                    | Gate::Scale { .. }
                    | Gate::Bilinear { .. }
                    | Gate::Sign { .. }
                    | Gate::Relu
                    | Gate::Lut(_)
                    | Gate::Root(_)
            )
        )
    }

    fn dealer(&self) -> Box<dyn Dealer> {
        Box::new(FssDealer::default())
    }

    fn begin(&self, node: &NodeDesc, input: EvalInput) -> Result<Box<dyn NodeEval>> {
        let gate =
            classify(node).ok_or_else(|| Error::Unsupported { what: node.kind.label(), plugin: "fss2pc".into() })?;
        let me = input.party;
        let accel = Accel::new(input.kernel.clone());
        let ins: Vec<MaskedRef> = input.inputs.iter().map(|w| MaskedRef::from_wire(w)).collect::<Result<_>>()?;
        let wire = |m: Masked| Immediate::boxed(Ok(NodeValue::Wire(m.into_wire())));
        Ok(match (gate, &node.kind) {
            (Gate::Input { owner }, _) => {
                Box::new(io::ShareInput::new(node, me, owner, &input.material, input.private)?)
            }
            (Gate::Output { reveal_to }, _) => {
                let x = ins.first().ok_or_else(|| Error::internal("output without input"))?;
                let public = node.inputs.first().is_some_and(|t| t.vis == mpcflow_sdk::shape::Visibility::Public);
                Box::new(io::Reveal::new(me, reveal_to, x.to_masked(), public))
            }
            (Gate::Public, NodeKind::Constant { value }) => wire(Masked::public(value.clone())),
            (Gate::Public, NodeKind::Op(op)) => {
                let vals: Vec<Tensor> = ins
                    .iter()
                    .map(|m| Tensor { dtype: m.dtype, shape: m.shape.to_vec(), data: m.value.to_vec() })
                    .collect();
                wire(Masked::public(public(node, op, &vals)?))
            }
            (Gate::Linear, NodeKind::Op(op)) => wire(eval_linear(node, op, &ins)?),
            (Gate::Scale { c, bits }, NodeKind::Op(op)) => {
                Box::new(ScaleEval::new(node, op, &ins, c, bits, me, input.material, accel)?)
            }
            (Gate::Bilinear { trunc }, NodeKind::Op(op)) => {
                Box::new(bilinear::BilinearEval::new(node, op, &ins[0], &ins[1], trunc, me, input.material, accel)?)
            }
            (Gate::Sign { swap, a, sigma }, _) => {
                let dhat = difference(node, ins[0].value, ins[1].value, swap)?;
                let mut m = Shares::new(&input.material, Tag::Sign, me.0)?.with_accel(accel);
                let (mine, r_out) = sign::sign_share(me.0, &dhat, a, sigma, node.fixed_point.compare_bits, &mut m)?;
                m.finish()?;
                crate::pool::give(input.material);
                Box::new(OneRound::new(me, node, mine, r_out))
            }
            (Gate::Lut(func), _) => {
                let x = ins.first().ok_or_else(|| Error::internal("lookup without input"))?;
                Box::new(lut::LutEval::new(func, node, me, x.value.to_vec(), x.share.to_vec(), input.material, accel))
            }
            (Gate::Root(func), _) => {
                let x = ins.first().ok_or_else(|| Error::internal("root without input"))?;
                Box::new(root::RootEval::new(
                    func,
                    node,
                    me,
                    x.value.to_vec(),
                    x.share.to_vec(),
                    input.material,
                    accel,
                )?)
            }
            (Gate::Relu, _) => {
                let mut m = Shares::new(&input.material, Tag::Relu, me.0)?.with_accel(accel);
                let (mine, r_out) =
                    sign::relu_share(me.0, ins[0].value, ins[0].share, node.fixed_point.compare_bits, &mut m)?;
                m.finish()?;
                crate::pool::give(input.material);
                Box::new(OneRound::new(me, node, mine, r_out))
            }
            (g, k) => return Err(Error::internal(format!("gate {g:?} for node kind {}", k.label()))),
        })
    }
}

/// The material each party receives for `node`, in bytes (as the cost model states it).
pub fn material_sizes(node: &NodeDesc) -> [u64; 2] {
    let c = cost(node);
    [c.dealer_bytes.first().copied().unwrap_or(0), c.dealer_bytes.get(1).copied().unwrap_or(0)]
}

/// The exact cost of a node (tests hold the runtime's measurements to it).
pub fn cost(node: &NodeDesc) -> Cost {
    let mut c = Cost::zero(node.parties);
    let n = node.output.numel();
    let bytes = 8 * n as u64;
    let Some(gate) = classify(node) else { return c };
    let both = |c: &mut Cost, rounds: u32, dealer: [u64; 2]| {
        c.rounds = rounds;
        c.online_bytes = vec![bytes * rounds as u64; 2];
        c.dealer_bytes = dealer.to_vec();
    };
    match gate {
        Gate::Input { owner } => {
            c.rounds = 1;
            c.online_bytes[owner.index()] = bytes;
            c.dealer_bytes = vec![HEADER as u64; 2];
            c.dealer_bytes[owner.index()] += SEED_LEN as u64;
        }
        Gate::Output { .. } if node.inputs.first().is_some_and(|t| t.vis == mpcflow_sdk::shape::Visibility::Public) => {
        }
        Gate::Output { reveal_to } => {
            c.rounds = 1;
            for p in 0..2u16 {
                let others = reveal_to.iter().filter(|q| q.0 != p).count() as u64;
                c.online_bytes[p as usize] = bytes * others;
            }
        }
        Gate::Public | Gate::Linear => {}
        Gate::Scale { bits, .. } => {
            both(&mut c, 1, split_len(n, trunc::words(bits, trunc::PRODUCTS), trunc::key_len(bits, trunc::PRODUCTS)))
        }
        Gate::Bilinear { trunc: None } => both(&mut c, 1, split_len(n, 2, 0)),
        Gate::Bilinear { trunc: Some(bits) } => both(
            &mut c,
            2,
            split_len(n, 1 + trunc::words(bits, trunc::PRODUCTS), trunc::key_len(bits, trunc::PRODUCTS)),
        ),
        Gate::Sign { .. } => both(&mut c, 1, split_len(n, 2, dcf_len(node.fixed_point.compare_bits - 1))),
        Gate::Relu => both(&mut c, 1, split_len(n, 3, dcf2_len(node.fixed_point.compare_bits - 1))),
        Gate::Lut(func) => {
            c.rounds = lut::ROUNDS;
            c.online_bytes = vec![lut::online_bytes(func) * n as u64; 2];
            c.dealer_bytes = lut::material_len(func, n, node.fixed_point).to_vec();
        }
        Gate::Root(func) => {
            c.rounds = root::ROUNDS;
            c.online_bytes = vec![root::online_bytes(func, node.fixed_point.frac_bits) * n as u64; 2];
            c.dealer_bytes = root::material_len(func, n, node.fixed_point.frac_bits).to_vec();
        }
    }
    c
}
