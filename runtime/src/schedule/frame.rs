//! The runtime's frame tag: every byte between endpoints travels in a frame that says what it
//! is and which node and round it belongs to, so all nodes in flight share one channel.
//!
//! Layout (little endian): `payload ‖ kind: u8 ‖ node: u32 ‖ round: u16`. The tag is a
//! *trailer*, not a header, so that a frame is made by appending 7 bytes to the payload's own
//! buffer and read by truncating them: megabytes of dealer material are never moved.

use mpcflow_sdk::Error;

/// Tag length in bytes.
pub const TAG: usize = 7;

/// What a frame carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// A protocol message of one node and round.
    Msg = 1,
    /// Dealer material for one node.
    Material = 2,
    /// The sender failed; the payload is its reason (UTF-8, never a value).
    Abort = 3,
    /// The sender finished and will send nothing more.
    Bye = 4,
    /// Session setup between processes: round 0 introduces the sender (versions, pipeline
    /// digest, its input shapes), round 1 carries its plan fingerprint.
    Hello = 5,
    /// The sender is still working: sent every third of the session timeout while a party
    /// runs, so that an endpoint waiting for its end (a peer that finished first, the dealer)
    /// can tell a slow party from a stalled one.
    Alive = 6,
}

/// A decoded frame.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Frame {
    /// What it is.
    pub kind: Kind,
    /// Plan node id.
    pub node: u32,
    /// Round within the node.
    pub round: u16,
    /// Contents.
    pub payload: Vec<u8>,
}

/// The tag of an encoded frame: `(kind byte, node, round)`, or `None` if it is too short.
pub fn peek(frame: &[u8]) -> Option<(u8, u32, u16)> {
    let t = frame.len().checked_sub(TAG)?;
    let b = &frame[t..];
    Some((b[0], u32::from_le_bytes([b[1], b[2], b[3], b[4]]), u16::from_le_bytes([b[5], b[6]])))
}

impl Frame {
    /// An `Abort` frame carrying the sender's reason (never a value).
    pub fn abort(reason: &str) -> Vec<u8> {
        Frame { kind: Kind::Abort, node: 0, round: 0, payload: reason.as_bytes().to_vec() }.encode()
    }

    /// A frame with an empty payload.
    pub fn control(kind: Kind) -> Frame {
        Frame { kind, node: 0, round: 0, payload: vec![] }
    }

    /// Serialises the frame.
    pub fn encode(self) -> Vec<u8> {
        Frame::encode_owned(self.kind, self.node, self.round, self.payload)
    }

    /// Serialises a frame around an owned payload by appending the tag (no copy when the
    /// payload has 7 bytes of spare capacity).
    pub fn encode_owned(kind: Kind, node: u32, round: u16, mut payload: Vec<u8>) -> Vec<u8> {
        payload.push(kind as u8);
        payload.extend_from_slice(&node.to_le_bytes());
        payload.extend_from_slice(&round.to_le_bytes());
        payload
    }

    /// Parses a frame; garbage is an error, never a panic.
    pub fn decode(mut bytes: Vec<u8>) -> Result<Frame, Error> {
        let Some((k, node, round)) = peek(&bytes) else {
            return Err(Error::protocol(format!("frame of {} bytes is shorter than its {TAG}-byte tag", bytes.len())));
        };
        let kind = match k {
            1 => Kind::Msg,
            2 => Kind::Material,
            3 => Kind::Abort,
            4 => Kind::Bye,
            5 => Kind::Hello,
            6 => Kind::Alive,
            k => return Err(Error::protocol(format!("unknown frame kind {k}"))),
        };
        bytes.truncate(bytes.len() - TAG);
        Ok(Frame { kind, node, round, payload: bytes })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roundtrip_and_garbage() {
        let f = Frame { kind: Kind::Msg, node: 70000, round: 3, payload: vec![1, 2, 3] };
        assert_eq!(Frame::decode(f.clone().encode()).unwrap(), f);
        assert!(Frame::decode(vec![1, 2]).is_err());
        assert!(Frame::decode(vec![5, 6, 9, 0, 0, 0, 0, 0, 0]).is_err(), "unknown kind 9");
    }
}
