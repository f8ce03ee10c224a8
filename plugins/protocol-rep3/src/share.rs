//! Replicated shares: how rep3 holds a tensor.
//!
//! A secret `x` is three additive shares `x = x₀ + x₁ + x₂` over `Z(2^64)`; party `i` holds
//! `(xᵢ, xᵢ₊₁)` (indices mod 3), so any two parties can reconstruct and any one sees two
//! uniformly random words. In a [`Wire`], plane 0 is `xᵢ` and plane 1 is `xᵢ₊₁`. A public
//! tensor (a constant, a count) is one plane holding its value at every party; where it meets
//! a secret it counts as the sharing `(x, 0, 0)`.

use mpcflow_fss::SeedRng;
use mpcflow_sdk::protocol::Wire;
use mpcflow_sdk::shape::{TensorInfo, Visibility};
use mpcflow_sdk::{Error, PartyId, Result};
use std::borrow::Cow;

/// Parties of rep3.
pub const PARTIES: usize = 3;

/// Bytes of a seed a party draws and sends so that a peer can expand the same words.
pub const SEED: usize = mpcflow_fss_gates::material::SEED_LEN;

/// Party `i + k` (mod 3).
pub fn ahead(me: PartyId, k: usize) -> PartyId {
    PartyId(((me.index() + k) % PARTIES) as u16)
}

/// A party's view of one input of a node.
#[derive(Clone, Copy)]
pub enum Operand<'a> {
    /// Its two shares `(xᵢ, xᵢ₊₁)`.
    Secret([&'a [u64]; 2]),
    /// Its value, known to every party.
    Public(&'a [u64]),
}

/// Shows the kind only: shares never reach a log.
impl std::fmt::Debug for Operand<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Operand::Secret(_) => f.write_str("Secret"),
            Operand::Public(_) => f.write_str("Public"),
        }
    }
}

impl<'a> Operand<'a> {
    /// Reads a wire as the plan describes it (`info`), checking its planes.
    pub fn from_wire(w: &'a Wire, info: &TensorInfo) -> Result<Operand<'a>> {
        let n = mpcflow_sdk::tensor::numel(&w.shape);
        match (&info.vis, w.planes.as_slice()) {
            (Visibility::Public, [v]) if v.len() == n => Ok(Operand::Public(v)),
            (Visibility::Secret | Visibility::Private(_), [a, b]) if a.len() == n && b.len() == n => {
                Ok(Operand::Secret([a, b]))
            }
            _ => Err(Error::internal("rep3 wire does not have the planes its visibility needs")),
        }
    }

    /// Plane `k` (0 or 1) of party `me`: share `me + k` of a secret, or of the sharing
    /// `(x, 0, 0)` of a public value.
    pub fn plane(&self, me: PartyId, k: usize) -> Cow<'a, [u64]> {
        match self {
            Operand::Secret(p) => Cow::Borrowed(p[k]),
            Operand::Public(v) if (me.index() + k).is_multiple_of(PARTIES) => Cow::Borrowed(v),
            Operand::Public(v) => Cow::Owned(vec![0; v.len()]),
        }
    }

    /// The value, for a public operand.
    pub fn public(&self) -> Option<&'a [u64]> {
        match self {
            Operand::Public(v) => Some(v),
            Operand::Secret(_) => None,
        }
    }
}

/// A secret wire from its two planes.
pub fn secret(shape: &[usize], dtype: mpcflow_sdk::DType, planes: [Vec<u64>; 2]) -> Wire {
    Wire { shape: shape.to_vec(), dtype, planes: planes.into() }
}

/// A fresh seed from the operating system's entropy.
pub fn fresh_seed() -> Result<[u8; SEED]> {
    let mut rng = SeedRng::from_os_entropy().map_err(mpcflow_fss_gates::errors::fss_error)?;
    let mut seed = [0u8; SEED];
    rng.fill_bytes(&mut seed);
    Ok(seed)
}

/// `n` pseudorandom words from `seed`: two from each AES block.
pub fn expand(seed: &[u8; SEED], n: usize) -> Vec<u64> {
    let mut rng = SeedRng::from_seed(*seed);
    let mut out = Vec::with_capacity(n);
    while out.len() + 2 <= n {
        let v = rng.next_u128();
        out.extend([v as u64, (v >> 64) as u64]);
    }
    if out.len() < n {
        out.push(rng.next_u128() as u64);
    }
    out
}

/// A seed read from the front of `bytes`; returns it and the rest.
pub fn take_seed<'b>(bytes: &'b [u8], what: &str) -> Result<([u8; SEED], &'b [u8])> {
    let (s, rest) = take(bytes, SEED, what)?;
    let mut seed = [0u8; SEED];
    seed.copy_from_slice(s);
    Ok((seed, rest))
}

/// `n` words read from the front of `bytes`; returns them and the rest.
pub fn take_words<'b>(bytes: &'b [u8], n: usize, what: &str) -> Result<(Vec<u64>, &'b [u8])> {
    let (w, rest) = take(bytes, 8 * n, what)?;
    Ok((mpcflow_fss_gates::wire::from_bytes(w, n, what)?, rest))
}

/// An error if a message has bytes left over.
pub fn expect_empty(rest: &[u8], what: &str) -> Result<()> {
    if rest.is_empty() {
        Ok(())
    } else {
        Err(Error::protocol(format!("{what}: {} bytes more than expected", rest.len())))
    }
}

fn take<'b>(bytes: &'b [u8], len: usize, what: &str) -> Result<(&'b [u8], &'b [u8])> {
    if bytes.len() < len {
        return Err(Error::protocol(format!("{what}: {} bytes, expected at least {len}", bytes.len())));
    }
    Ok(bytes.split_at(len))
}

/// The one message from `peer` in an inbox.
pub fn from(inbox: &mut Vec<mpcflow_sdk::protocol::Message>, peer: PartyId, what: &str) -> Result<Vec<u8>> {
    let i = inbox
        .iter()
        .position(|m| m.peer == peer)
        .ok_or_else(|| Error::protocol(format!("{what}: nothing from party {}", peer.0)))?;
    Ok(inbox.swap_remove(i).payload)
}

#[cfg(test)]
mod tests {
    use super::*;
    use mpcflow_sdk::DType;

    #[test]
    fn public_operands_count_as_the_first_share() {
        let v = vec![5u64, 6];
        let op = Operand::Public(&v);
        let sum: Vec<u64> = (0..3)
            .map(|i| {
                let me = PartyId(i);
                // Party i's plane 0 is share i: adding it over the parties gives the value once.
                op.plane(me, 0)[0]
            })
            .collect();
        assert_eq!(sum, vec![5, 0, 0]);
        assert_eq!(op.plane(PartyId(2), 1)[1], 6, "party 2's plane 1 is share 0");
        let w = secret(&[2], DType::Int, [vec![1, 2], vec![3, 4]]);
        let info = TensorInfo { dtype: DType::Int, shape: vec![2], vis: Visibility::Public };
        assert!(Operand::from_wire(&w, &info).is_err(), "two planes read as public");
    }

    #[test]
    fn seeds_expand_alike_and_differ() {
        let (a, b) = (fresh_seed().unwrap(), fresh_seed().unwrap());
        assert_ne!(a, b);
        assert_eq!(expand(&a, 4), expand(&a, 4));
        assert_ne!(expand(&a, 4), expand(&b, 4));
    }
}
