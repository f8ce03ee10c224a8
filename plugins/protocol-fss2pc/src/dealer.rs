//! The fss2pc dealer: walks the plan, tracking the mask of every live wire (or the value of a
//! public one), and deals each gate's material from its own fresh seed.

use crate::fss::SeedRng;
use crate::gates::linear::{self, Known};
use crate::gates::{Gate, bilinear, classify, io, sign};
use crate::material::{Split, Tag};
use crate::protocol::material_sizes;
use mpcflow_sdk::protocol::{Dealer, NodeDesc, NodeKind};
use mpcflow_sdk::{Error, Result};
use std::collections::HashMap;

/// Dealer state for one session.
#[derive(Default)]
pub struct FssDealer {
    known: HashMap<u32, Known>,
}

impl FssDealer {
    fn get(&self, id: u32) -> Result<&Known> {
        self.known.get(&id).ok_or_else(|| Error::internal(format!("dealer has no mask for node {id}")))
    }
}

impl Dealer for FssDealer {
    fn deal(&mut self, node: &NodeDesc, inputs: &[u32], seed: [u8; 32]) -> Result<Vec<Vec<u8>>> {
        let gate =
            classify(node).ok_or_else(|| Error::Unsupported { what: node.kind.label(), plugin: "fss2pc".into() })?;
        let mut rng = SeedRng::from_seed(seed);
        let ins: Vec<&Known> = inputs.iter().map(|&i| self.get(i)).collect::<Result<_>>()?;
        let none = || vec![Vec::new(), Vec::new()];
        let (material, known) = match (&gate, &node.kind) {
            (Gate::Input { owner }, _) => {
                let (m, r) = io::deal_input(*owner, node.output.numel(), &mut rng);
                (m, Some(Known::Mask(r)))
            }
            (Gate::Output { .. }, _) => (none(), None),
            (Gate::Public, NodeKind::Constant { value }) => (none(), Some(Known::Public(value.clone()))),
            (Gate::Public, NodeKind::Op(op)) => {
                // A public output of secret inputs (a count) depends on their shapes only.
                let vals: Vec<_> = ins
                    .iter()
                    .zip(&node.inputs)
                    .map(|(k, info)| match k {
                        Known::Public(t) => t.clone(),
                        Known::Mask(_) => mpcflow_sdk::Tensor::zeros(info.dtype, info.shape.clone()),
                    })
                    .collect();
                (none(), Some(Known::Public(linear::public(node, op, &vals)?)))
            }
            (Gate::Linear, NodeKind::Op(op)) => (none(), Some(Known::Mask(linear::deal_linear(node, op, &ins)?))),
            (Gate::Scale { c, bits }, NodeKind::Op(op)) => {
                let (m, r) = linear::deal_scale(node, op, &ins, *c, *bits, &mut rng)?;
                (m, Some(Known::Mask(r)))
            }
            (Gate::Bilinear { trunc }, NodeKind::Op(op)) => {
                let (m, r) = bilinear::deal(node, op, &ins[0].mask(), &ins[1].mask(), *trunc, &mut rng)?;
                (m, Some(Known::Mask(r)))
            }
            (Gate::Sign { swap, .. }, _) => {
                let d = difference(node, &ins[0].mask(), &ins[1].mask(), *swap)?;
                let mut split = Split::new(Tag::Sign, &mut rng, material_sizes(node));
                let r = sign::deal_sign(&mut split, &d, node.fixed_point.compare_bits, &mut rng)?;
                (split.finish(), Some(Known::Mask(r)))
            }
            (Gate::Lut(func), _) => {
                let (m, r) = crate::gates::lut::deal(*func, node, &ins[0].mask(), &mut rng)?;
                (m, Some(Known::Mask(r)))
            }
            (Gate::Root(func), _) => {
                let (m, r) = crate::gates::root::deal(*func, node, &ins[0].mask(), &mut rng)?;
                (m, Some(Known::Mask(r)))
            }
            (Gate::Relu, _) => {
                let mut split = Split::new(Tag::Relu, &mut rng, material_sizes(node));
                let r = sign::deal_relu(&mut split, &ins[0].mask(), node.fixed_point.compare_bits, &mut rng)?;
                (split.finish(), Some(Known::Mask(r)))
            }
            (g, k) => return Err(Error::internal(format!("gate {g:?} for node kind {}", k.label()))),
        };
        if let Some(k) = known {
            self.known.insert(node.id, k);
        }
        Ok(material)
    }

    fn forget(&mut self, id: u32) {
        self.known.remove(&id);
    }
}

/// `x − y` (or `y − x`), broadcast to the comparison's output shape.
pub fn difference(node: &NodeDesc, x: &[u64], y: &[u64], swap: bool) -> Result<Vec<u64>> {
    let (sx, sy) = (node.inputs[0].shape.as_slice(), node.inputs[1].shape.as_slice());
    let (a, b, sa, sb) = if swap { (y, x, sy, sx) } else { (x, y, sx, sy) };
    crate::ring::apply(&mpcflow_sdk::Op::Sub, &[a, b], &[sa, sb], &node.output.shape)
}
