//! Bit planes and replicated XOR shares: what the comparison circuit ([`super::circuit`])
//! computes on.
//!
//! A tensor of `n` words becomes `w` planes (plane `j` holds bit `j` of every element, 64
//! elements to a word, `m = ⌈n/64⌉` words), so one word operation works on 64 elements at once.
//! A secret bit string `b = b₀ ⊕ b₁ ⊕ b₂` is shared as the words are: party `i` holds
//! `(bᵢ, bᵢ₊₁)`. XOR is local; AND is local up to a resharing round, as for products of words
//! (Araki et al., CCS 2016, Section 2.2, over GF(2)): party `i` computes
//! `zᵢ = xᵢyᵢ ⊕ xᵢyᵢ₊₁ ⊕ xᵢ₊₁yᵢ`, an XOR sharing of `x ∧ y`, and reshares it with a fresh seed
//! as [`super::product`] does (`zᵢ = aᵢ ⊕ PRG(σᵢ)`, `aᵢ` to party `i − 1`, `σᵢ` to `i + 1`).

use crate::share::{self, SEED, ahead};
use mpcflow_fss_gates::wire;
use mpcflow_sdk::protocol::Message;
use mpcflow_sdk::{PartyId, Result};

/// Words per plane for `n` elements.
pub fn words(n: usize) -> usize {
    n.div_ceil(64)
}

/// Transposes a 64 × 64 bit matrix in place: bit `c` of row `r` becomes bit `r` of row `c`
/// (Hacker's Delight, Section 7-3, in six rounds of block swaps).
fn transpose64(a: &mut [u64; 64]) {
    let mut j = 32;
    let mut mask: u64 = 0x0000_0000_FFFF_FFFF;
    while j != 0 {
        let mut k = 0;
        while k < 64 {
            let t = ((a[k] >> j) ^ a[k + j]) & mask;
            a[k] ^= t << j;
            a[k + j] ^= t;
            k = (k + j + 1) & !j;
        }
        j >>= 1;
        mask ^= mask << j;
    }
}

/// The low `w` bit planes of `x`: `w · ⌈n/64⌉` words, plane `j` at `[j·m, (j+1)·m)`.
pub fn to_planes(x: &[u64], w: usize) -> Vec<u64> {
    let m = words(x.len());
    let mut out = vec![0u64; w * m];
    let mut block = [0u64; 64];
    for (b, chunk) in x.chunks(64).enumerate() {
        block[..chunk.len()].copy_from_slice(chunk);
        block[chunk.len()..].fill(0);
        transpose64(&mut block);
        for (j, &word) in block.iter().take(w).enumerate() {
            out[j * m + b] = word;
        }
    }
    out
}

/// One plane as a word per element (0 or 1).
pub fn from_plane(plane: &[u64], n: usize) -> Vec<u64> {
    (0..n).map(|i| (plane[i / 64] >> (i % 64)) & 1).collect()
}

/// XOR of two equal-length word vectors.
pub fn xor(a: &[u64], b: &[u64]) -> Vec<u64> {
    a.iter().zip(b).map(|(x, y)| x ^ y).collect()
}

/// One party's XOR shares of several bit planes: `s[0]` is share `i`, `s[1]` share `i + 1`.
#[derive(Clone, Debug, Default)]
pub struct Shares {
    /// The two shares, planes concatenated.
    pub s: [Vec<u64>; 2],
}

impl Shares {
    /// Planes `[from, from + count)` of `m` words each.
    pub fn planes(&self, from: usize, count: usize, m: usize) -> [&[u64]; 2] {
        let r = from * m..(from + count) * m;
        [&self.s[0][r.clone()], &self.s[1][r]]
    }
}

/// What a party keeps between the two halves of a resharing: its masked share `aᵢ` and its own
/// mask `PRG(σᵢ)`.
pub type Kept = (Vec<u64>, Vec<u64>);

/// An AND layer's first half: this party's XOR share of `x ∧ y` (equal-length plane runs),
/// split for resharing. Returns the messages (to `i − 1` the masked share, to `i + 1` the seed)
/// and what this party keeps.
pub fn and_send(me: PartyId, x: [&[u64]; 2], y: [&[u64]; 2]) -> Result<(Vec<Message>, Kept)> {
    let z: Vec<u64> =
        (0..x[0].len()).map(|k| (x[0][k] & y[0][k]) ^ (x[0][k] & y[1][k]) ^ (x[1][k] & y[0][k])).collect();
    let sigma = share::fresh_seed()?;
    let b = share::expand(&sigma, z.len());
    let a = xor(&z, &b);
    let send = vec![
        Message { peer: ahead(me, 2), payload: wire::to_bytes(&a) },
        Message { peer: ahead(me, 1), payload: sigma.to_vec() },
    ];
    Ok((send, (a, b)))
}

/// An AND layer's second half: this party's new shares `(aᵢ ⊕ PRG(σᵢ₋₁), aᵢ₊₁ ⊕ PRG(σᵢ))` from
/// what it kept and the two messages it received.
pub fn and_receive(me: PartyId, kept: Kept, inbox: &mut Vec<Message>) -> Result<Shares> {
    let (a, b) = kept;
    let n = a.len();
    let (before, after) = (ahead(me, 2), ahead(me, 1));
    let a_next = wire::from_bytes(&share::from(inbox, after, "AND share")?, n, "AND share")?;
    let from_before = share::from(inbox, before, "AND seed")?;
    let (sigma, rest) = share::take_seed(&from_before, "AND seed")?;
    share::expect_empty(rest, "AND seed")?;
    let b_prev = share::expand(&sigma, n);
    Ok(Shares { s: [xor(&a, &b_prev), xor(&a_next, &b)] })
}

/// Bytes each party sends in an AND layer of `planes` planes of `m` words.
pub fn and_bytes(planes: usize, m: usize) -> u64 {
    (8 * planes * m + SEED) as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive(x: &[u64], w: usize) -> Vec<u64> {
        let m = words(x.len());
        let mut out = vec![0u64; w * m];
        for (i, v) in x.iter().enumerate() {
            for j in 0..w {
                out[j * m + i / 64] |= ((v >> j) & 1) << (i % 64);
            }
        }
        out
    }

    #[test]
    fn planes_hold_each_bit_of_each_element() {
        let mut s = 0x9e37_79b9_7f4a_7c15u64;
        for n in [1usize, 63, 64, 65, 200] {
            let x: Vec<u64> = (0..n)
                .map(|_| {
                    s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                    s
                })
                .collect();
            for w in [1, 7, 63, 64] {
                assert_eq!(to_planes(&x, w), naive(&x, w), "n {n} w {w}");
            }
            let p = to_planes(&x, 64);
            let m = words(n);
            assert_eq!(from_plane(&p[5 * m..6 * m], n), x.iter().map(|v| (v >> 5) & 1).collect::<Vec<_>>());
        }
    }

    #[test]
    fn an_and_layer_shares_the_and_of_its_inputs() {
        // x and y as XOR shares over three parties.
        let (x, y) = ([0b1100u64, 0b0110, 0b1010], [0b1010u64, 0b0011, 0b1111]);
        let (xv, yv) = (x[0] ^ x[1] ^ x[2], y[0] ^ y[1] ^ y[2]);
        let mut sends = vec![];
        let mut kept = vec![];
        for i in 0..3 {
            let me = PartyId(i as u16);
            let (s, k) =
                and_send(me, [&x[i..=i], &x[(i + 1) % 3..=(i + 1) % 3]], [&y[i..=i], &y[(i + 1) % 3..=(i + 1) % 3]])
                    .unwrap();
            sends.push(s);
            kept.push(k);
        }
        let mut out = vec![];
        for (i, k) in kept.into_iter().enumerate() {
            let me = PartyId(i as u16);
            let mut inbox: Vec<Message> = sends
                .iter()
                .enumerate()
                .flat_map(|(from, msgs)| {
                    msgs.iter()
                        .filter(|m| m.peer == me)
                        .map(move |m| Message { peer: PartyId(from as u16), payload: m.payload.clone() })
                })
                .collect();
            out.push(and_receive(me, k, &mut inbox).unwrap());
        }
        assert_eq!(out[0].s[0][0] ^ out[1].s[0][0] ^ out[2].s[0][0], xv & yv);
        for i in 0..3 {
            assert_eq!(out[i].s[1], out[(i + 1) % 3].s[0], "replicated: party {i}'s second share");
        }
    }
}
