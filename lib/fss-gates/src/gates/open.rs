//! Opening a masked value: each party sends its share, both add them up. One round.

use crate::wire;
use mpcflow_sdk::protocol::{Message, Step};
use mpcflow_sdk::{Error, PartyId, Result};

/// The cost of a gate that opens one share of its `n` outputs per round for `rounds` rounds,
/// with `dealer` bytes of material per party.
pub fn cost(node: &mpcflow_sdk::protocol::NodeDesc, rounds: u32, dealer: [u64; 2]) -> mpcflow_sdk::protocol::Cost {
    cost_per_element(node, rounds, 8 * u64::from(rounds), dealer)
}

/// The cost of a multi-round gate that sends `per_element` bytes per output element in all,
/// with `dealer` bytes of material per party.
pub fn cost_per_element(
    node: &mpcflow_sdk::protocol::NodeDesc,
    rounds: u32,
    per_element: u64,
    dealer: [u64; 2],
) -> mpcflow_sdk::protocol::Cost {
    let mut c = mpcflow_sdk::protocol::Cost::zero(node.parties);
    c.rounds = rounds;
    c.online_bytes = vec![per_element * node.output.numel() as u64; 2];
    c.dealer_bytes = dealer.to_vec();
    c
}

/// Each party's material, as a gate's cost states it.
pub fn sizes(c: &mpcflow_sdk::protocol::Cost) -> [u64; 2] {
    [c.dealer_bytes.first().copied().unwrap_or(0), c.dealer_bytes.get(1).copied().unwrap_or(0)]
}

/// The other party of two.
pub fn peer(me: PartyId) -> PartyId {
    PartyId(1 - me.0.min(1))
}

/// The step that sends `share` to the peer and waits for theirs.
pub fn exchange(me: PartyId, share: &[u64]) -> Step {
    let p = peer(me);
    Step::Exchange { send: vec![Message { peer: p, payload: wire::to_bytes(share) }], expect: vec![p] }
}

/// The step that sends `bits` (0 or 1 each, packed eight to a byte) to the peer and waits for
/// theirs.
pub fn exchange_bits(me: PartyId, bits: &[u8]) -> Step {
    let p = peer(me);
    Step::Exchange { send: vec![Message { peer: p, payload: crate::material::pack_bits(bits) }], expect: vec![p] }
}

/// The peer's `n` bits from the inbox of an [`exchange_bits`].
pub fn receive_bits(inbox: Vec<Message>, n: usize, what: &str) -> Result<Vec<u8>> {
    let msg = inbox.into_iter().next().ok_or_else(|| Error::protocol(format!("{what}: none from the peer")))?;
    let want = crate::material::bits_len(n);
    if msg.payload.len() as u64 != want {
        return Err(Error::protocol(format!("{what}: {} bytes from the peer, expected {want}", msg.payload.len())));
    }
    Ok(crate::material::unpack_bits(&msg.payload, n))
}

/// `mine + theirs`, from the inbox of an [`exchange`].
pub fn reconstruct(inbox: Vec<Message>, mine: &[u64], what: &str) -> Result<Vec<u64>> {
    let msg = inbox.into_iter().next().ok_or_else(|| Error::protocol(format!("{what}: no share from the peer")))?;
    let theirs = wire::from_bytes(&msg.payload, mine.len(), what)?;
    Ok(wire::add(mine, &theirs))
}

/// A gate whose share of the masked output is computed locally and opened in one round.
pub struct OneRound {
    me: PartyId,
    shape: Vec<usize>,
    dtype: mpcflow_sdk::DType,
    mine: Vec<u64>,
    r_out: Vec<u64>,
    sent: bool,
}

impl OneRound {
    /// `mine` is this party's share of the masked output, `r_out` its share of the new mask.
    pub fn new(me: PartyId, node: &mpcflow_sdk::protocol::NodeDesc, mine: Vec<u64>, r_out: Vec<u64>) -> Self {
        OneRound { me, shape: node.output.shape.clone(), dtype: node.output.dtype, mine, r_out, sent: false }
    }
}

impl mpcflow_sdk::protocol::NodeEval for OneRound {
    fn step(&mut self, inbox: Vec<Message>) -> Result<Step> {
        if !self.sent {
            self.sent = true;
            return Ok(exchange(self.me, &self.mine));
        }
        let value = reconstruct(inbox, &self.mine, "masked output")?;
        let m = crate::wire::Masked {
            shape: std::mem::take(&mut self.shape),
            dtype: self.dtype,
            value,
            share: std::mem::take(&mut self.r_out),
        };
        Ok(Step::Done(mpcflow_sdk::protocol::NodeValue::Wire(m.into_wire())))
    }
}
