//! The runtime's frame header: every byte between endpoints travels in a frame that says what
//! it is and which node and round it belongs to, so all nodes in flight share one channel.
//!
//! Layout (little endian): `kind: u8, node: u32, round: u16, payload`.

use mpcflow_sdk::Error;

/// Header length in bytes.
pub const HEADER: usize = 7;

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

impl Frame {
    /// A frame with an empty payload.
    pub fn control(kind: Kind) -> Frame {
        Frame { kind, node: 0, round: 0, payload: vec![] }
    }

    /// Serialises the frame.
    pub fn encode(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(HEADER + self.payload.len());
        v.push(self.kind as u8);
        v.extend_from_slice(&self.node.to_le_bytes());
        v.extend_from_slice(&self.round.to_le_bytes());
        v.extend_from_slice(&self.payload);
        v
    }

    /// Serialises a frame around an owned payload, reusing its allocation when it has room.
    pub fn encode_owned(kind: Kind, node: u32, round: u16, mut payload: Vec<u8>) -> Vec<u8> {
        let mut head = [0u8; HEADER];
        head[0] = kind as u8;
        head[1..5].copy_from_slice(&node.to_le_bytes());
        head[5..7].copy_from_slice(&round.to_le_bytes());
        payload.splice(0..0, head);
        payload
    }

    /// Parses a frame; garbage is an error, never a panic.
    pub fn decode(mut bytes: Vec<u8>) -> Result<Frame, Error> {
        if bytes.len() < HEADER {
            return Err(Error::protocol(format!(
                "frame of {} bytes is shorter than its {HEADER}-byte header",
                bytes.len()
            )));
        }
        let kind = match bytes[0] {
            1 => Kind::Msg,
            2 => Kind::Material,
            3 => Kind::Abort,
            4 => Kind::Bye,
            k => return Err(Error::protocol(format!("unknown frame kind {k}"))),
        };
        let node = u32::from_le_bytes([bytes[1], bytes[2], bytes[3], bytes[4]]);
        let round = u16::from_le_bytes([bytes[5], bytes[6]]);
        // Shift the payload down in place rather than copying it into a new allocation.
        bytes.drain(..HEADER);
        Ok(Frame { kind, node, round, payload: bytes })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roundtrip_and_garbage() {
        let f = Frame { kind: Kind::Msg, node: 70000, round: 3, payload: vec![1, 2, 3] };
        assert_eq!(Frame::decode(f.encode()).unwrap(), f);
        assert!(Frame::decode(vec![1, 2]).is_err());
        assert!(Frame::decode(vec![9, 0, 0, 0, 0, 0, 0]).is_err());
    }
}
