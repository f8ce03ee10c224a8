//! The `ref` protocol: plaintext, any number of parties, **insecure by design**.
//!
//! It is the oracle: every secure protocol's every op is tested against it. Each party holds
//! every value in the clear (a [`Wire`] with one plane of plaintext words). Input nodes send the
//! owner's value to every other party in one round, so the scheduler's messaging and the cost
//! accounting are exercised exactly as for real protocols; every other node is local.
//!
//! Costs: an input of `n` elements costs 1 round and `8·n` bytes from the owner to each other
//! party; everything else costs nothing. No dealer.

use mpcflow_ring::kernels;

use mpcflow_sdk::protocol::{
    Cost, EvalInput, Immediate, Message, NodeDesc, NodeEval, NodeKind, NodeValue, PartyCount, Protocol,
    ProtocolDescriptor, Step, Wire,
};
use mpcflow_sdk::{Error, PartyId, Result, Tensor};

/// The plaintext reference protocol.
#[derive(Debug, Default, Clone, Copy)]
pub struct RefProtocol;

fn words_to_bytes(words: &[u64]) -> Vec<u8> {
    let mut v = Vec::with_capacity(words.len() * 8);
    for w in words {
        v.extend_from_slice(&w.to_le_bytes());
    }
    v
}

fn bytes_to_words(bytes: &[u8], expected: usize) -> Result<Vec<u64>> {
    if bytes.len() != expected * 8 {
        return Err(Error::protocol(format!(
            "expected {} bytes ({expected} elements), got {}",
            expected * 8,
            bytes.len()
        )));
    }
    Ok(bytes.chunks_exact(8).map(|c| u64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]])).collect())
}

fn wire(t: Tensor) -> Wire {
    Wire { shape: t.shape, dtype: t.dtype, planes: vec![t.data] }
}

fn tensor(w: &Wire) -> Result<Tensor> {
    let data = w.planes.first().ok_or_else(|| Error::internal("ref wire without a plane"))?;
    Ok(Tensor { dtype: w.dtype, shape: w.shape.clone(), data: data.clone() })
}

/// Input sharing: the owner sends its value to everyone; the others wait for it.
struct ShareInput {
    node: NodeDesc,
    owner: PartyId,
    me: PartyId,
    value: Option<Tensor>,
    sent: bool,
}

impl NodeEval for ShareInput {
    fn step(&mut self, inbox: Vec<Message>) -> Result<Step> {
        let n = self.node.output.numel();
        if !self.sent {
            self.sent = true;
            if self.me == self.owner {
                let v = self.value.as_ref().ok_or_else(|| Error::invalid("the owner brought no value"))?;
                let payload = words_to_bytes(&v.data);
                let send = (0..self.node.parties as u16)
                    .map(PartyId)
                    .filter(|p| *p != self.me)
                    .map(|peer| Message { peer, payload: payload.clone() })
                    .collect();
                return Ok(Step::Exchange { send, expect: vec![] });
            }
            return Ok(Step::Exchange { send: vec![], expect: vec![self.owner] });
        }
        let t = if self.me == self.owner {
            self.value.take().ok_or_else(|| Error::internal("input value taken twice"))?
        } else {
            let msg = inbox.first().ok_or_else(|| Error::protocol("no message from the input's owner"))?;
            Tensor {
                dtype: self.node.output.dtype,
                shape: self.node.output.shape.clone(),
                data: bytes_to_words(&msg.payload, n)?,
            }
        };
        Ok(Step::Done(NodeValue::Wire(wire(t))))
    }
}

impl Protocol for RefProtocol {
    fn descriptor(&self) -> ProtocolDescriptor {
        ProtocolDescriptor {
            secure: false,
            wire_words: 1,
            ..ProtocolDescriptor::new(
                "ref",
                "plaintext reference; INSECURE, every party sees every value",
                PartyCount::any(),
            )
        }
    }

    fn cost(&self, node: &NodeDesc) -> Cost {
        let mut c = Cost::zero(node.parties);
        if let NodeKind::Input { owner } = &node.kind
            && node.parties > 1
        {
            c.rounds = 1;
            c.online_bytes[owner.index()] = (node.output.numel() * 8 * (node.parties - 1)) as u64;
        }
        c
    }

    fn begin(&self, node: &NodeDesc, input: EvalInput) -> Result<Box<dyn NodeEval>> {
        match &node.kind {
            NodeKind::Input { owner } => {
                if input.party == *owner {
                    let v = input.private.as_ref().ok_or_else(|| Error::invalid("the owner brought no value"))?;
                    if v.shape != node.output.shape || v.dtype != node.output.dtype {
                        return Err(Error::invalid(format!(
                            "value is {} {:?} but the plan expects {} {:?}",
                            v.dtype, v.shape, node.output.dtype, node.output.shape
                        )));
                    }
                }
                if node.parties == 1 {
                    let v = input.private.ok_or_else(|| Error::invalid("the owner brought no value"))?;
                    return Ok(Immediate::boxed(Ok(NodeValue::Wire(wire(v)))));
                }
                Ok(Box::new(ShareInput {
                    node: node.clone(),
                    owner: *owner,
                    me: input.party,
                    value: input.private,
                    sent: false,
                }))
            }
            NodeKind::Constant { value } => Ok(Immediate::boxed(Ok(NodeValue::Wire(wire(value.clone()))))),
            NodeKind::Op(op) => {
                let tensors = input.inputs.iter().map(|w| tensor(w)).collect::<Result<Vec<_>>>()?;
                let refs: Vec<&Tensor> = tensors.iter().collect();
                // The ranges that secure protocols rely on are a contract here: break one and the
                // run stops, naming the node and the values.
                let out = kernels::eval_checked(op, &refs, &node.output, node.fixed_point, node.range)
                    .map(|t| NodeValue::Wire(wire(t)));
                Ok(Immediate::boxed(out))
            }
            NodeKind::Output { reveal_to } => {
                let w = input.inputs.first().ok_or_else(|| Error::internal("output node without input"))?;
                let value = if reveal_to.contains(&input.party) { Some(tensor(w)?) } else { None };
                Ok(Immediate::boxed(Ok(NodeValue::Revealed(value))))
            }
        }
    }
}
