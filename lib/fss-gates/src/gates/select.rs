//! Sign and ReLU in two rounds: the comparison bit from a half-tree one-bit DCF
//! ([`crate::fss::halftree`]), opened under a random bit, then a select that is linear in the
//! shares: the DReLU-then-select form of Orca (Jawalkar, Gupta, Basu, Chandran, Gupta, Sharma:
//! "Orca: FSS-based Secure Training and Inference with GPUs", IEEE S&P 2024) and Sigma
//! (Gupta et al., "SIGMA: Secure GPT Inference with Function Secret Sharing", PETS 2024).
//!
//! # Construction
//!
//! Over `n` bits (the graph's `compare_bits`), as in [`super::sign`], the bit `b = [d ≥ 0]` is
//! `b = p ⊕ s ⊕ c`: `p` is bit `n − 1` of the public `v̂ = d̂ + 2^(n−1)`, `s` bit `n − 1` of the
//! mask `r` (the dealer knows it) and `c = [v̂ mod 2^(n−1) < r mod 2^(n−1)]`. The dealer deals an
//! `(n − 1)`-bit half-tree key for `α = r mod 2^(n−1)`, so the parties evaluate XOR shares of
//! `c`, and XOR shares of `s ⊕ ρ` for a fresh uniform bit `ρ`, with shares in `Z(2^64)` of `ρ`
//! (and of `ρ·r` for ReLU) and of the output mask.
//!
//! * **Round 1** (one bit per element and party): each party sends its share of `c ⊕ s ⊕ ρ`
//!   (party 0 adds `p`), and both learn `b̂ = b ⊕ ρ`: uniform and independent of `b`, since `ρ`
//!   is uniform and used once.
//! * **Round 2** (8 bytes per element and party): `b = b̂ + (1 − 2b̂)·ρ` is linear in the shares
//!   of `ρ`, so each party computes its share of the masked output locally and it is opened as
//!   every gate's output is:
//!   - sign `a + σ·b`: `own·(a + σ·b̂) + σ·(1 − 2b̂)·[ρ] + [r_out]`;
//!   - ReLU `b·x = b·(x̂ − r)`: `own·b̂·x̂ + (1 − 2b̂)·(x̂·[ρ] − [ρ·r]) − b̂·[r] + [r_out]`
//!     (the sum is `(b̂ + (1 − 2b̂)ρ)·(x̂ − r) + r_out`).
//!
//! Exact under the same condition as the one-round form: `|d| < 2^(n−1)`.
//!
//! # Against the one-round form
//!
//! At `n = 64` a ReLU's material is a 928-byte key plus three words and a bit (one-round: a
//! 2066-byte two-word DCF key plus three words), its evaluation 57 AES blocks per element and
//! party (one-round: 127) and its key generation 114 (one-round: 506); it costs one more round
//! and one more bit per element. [`choose`] weighs both with the plan's network profile.

use super::open;
use super::sign::split_bits;
use crate::accel::Accel;
use crate::fss::SeedRng;
use crate::fss::halftree;
use crate::material::{Shares, Split, Tag, bits_len, draw, draw_bits, halftree_len, split_len};
use crate::wire::Masked;
use mpcflow_sdk::protocol::{Cost, Message, NodeDesc, NodeEval, NodeValue, Step};
use mpcflow_sdk::{Error, PartyId, Result};

/// How a comparison or ReLU is computed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Form {
    /// One round, a DCF key with the select folded into its payload ([`super::sign`],
    /// [`super::relu`]).
    OneRound,
    /// Two rounds: half-tree DReLU, then a select (this module).
    TwoRound,
}

/// What the select computes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Select {
    /// `a + σ·[d ≥ 0]`.
    Sign {
        /// Constant term.
        a: u64,
        /// +1 or −1 as a ring element.
        sigma: u64,
    },
    /// `max(x, 0)`.
    Relu,
}

impl Select {
    fn tag(self) -> Tag {
        match self {
            Select::Sign { .. } => Tag::Sign2,
            Select::Relu => Tag::Relu2,
        }
    }

    /// Shared words per element: `ρ`, (`ρ·r`,) the output mask.
    fn words(self) -> usize {
        match self {
            Select::Sign { .. } => 2,
            Select::Relu => 3,
        }
    }
}

/// Nanoseconds per AES block assumed by [`choose`] (batched fixed-key AES on one core).
const NS_PER_AES_BLOCK: f64 = 1.0;

/// The form of a comparison (`relu = false`) or ReLU node that takes least estimated time end
/// to end under the plan's network profile ([`seconds`]). At 1M elements the two-round form
/// wins on every profile; a single comparison stays one round on `lan` and `wan`.
pub fn choose(node: &NodeDesc, relu: bool) -> Form {
    let top = node.fixed_point.compare_bits - 1;
    let one = if relu { super::relu::cost(node) } else { super::sign::cost(node) };
    let two = cost(node, if relu { Select::Relu } else { Select::Sign { a: 0, sigma: 1 } });
    let (gen_one, eval_one) = if relu { (8 * top + 2, 2 * top + 1) } else { (6 * top, 2 * top) };
    let walked = halftree::levels(top) as u32 + 1;
    if seconds(node, &two, 3 * walked) < seconds(node, &one, gen_one + eval_one) {
        Form::TwoRound
    } else {
        Form::OneRound
    }
}

/// The estimated time of a form of `node` with cost `c` and `aes` AES blocks per element (the
/// dealer's and one party's): its rounds and the larger party's online bytes and material on
/// the plan's network profile, plus the AES work (the dealer and the parties run on different
/// machines, beside each other).
pub fn seconds(node: &NodeDesc, c: &Cost, aes: u32) -> f64 {
    let n = node.output.numel() as f64;
    let bytes = c.online_bytes.iter().max().copied().unwrap_or(0) + c.dealer_bytes.iter().max().copied().unwrap_or(0);
    node.network.seconds(c.rounds, bytes) + n * f64::from(aes) * NS_PER_AES_BLOCK * 1e-9
}

/// The cost: a bit and a word per element opened in two rounds, the shared words, the mask
/// bits and one `(n − 1)`-bit half-tree key per element.
pub fn cost(node: &NodeDesc, select: Select) -> Cost {
    let n = node.output.numel();
    let [p0, p1] = split_len(n, select.words(), 0);
    let keys = halftree_len(n, node.fixed_point.compare_bits - 1);
    let mut c = open::cost_per_element(node, 2, 0, [p0 + keys, p1 + bits_len(n) + keys]);
    c.online_bytes = vec![bits_len(n) + 8 * n as u64; 2];
    c.form = format!("two rounds (half-tree DReLU, select), {} bits", node.fixed_point.compare_bits);
    c
}

/// Dealer: the material and output mask for a node whose compared value (the difference, or
/// the ReLU's input) has mask `r`.
pub fn deal(
    node: &NodeDesc,
    select: Select,
    r: &[u64],
    rng: &mut SeedRng,
    threads: usize,
) -> Result<(Vec<Vec<u8>>, Vec<u64>)> {
    let n = r.len();
    let (low, top) = split_bits(node.fixed_point.compare_bits);
    let mut split = Split::new(select.tag(), rng, open::sizes(&cost(node, select)), threads);
    let rho = draw_bits(rng, n);
    split.share(&rho);
    if select == Select::Relu {
        let rho_r: Vec<u64> = rho.iter().zip(r).map(|(b, r)| b.wrapping_mul(*r)).collect();
        split.share(&rho_r);
    }
    let r_out = draw(rng, n);
    split.share(&r_out);
    let w: Vec<u8> = r.iter().zip(&rho).map(|(r, b)| (((r >> top) ^ b) & 1) as u8).collect();
    split.share_bits(&w);
    let alphas: Vec<u64> = r.iter().map(|r| r & low).collect();
    split.halftree_keys(&alphas, top, rng)?;
    Ok((split.finish(), r_out))
}

/// Party: reads the material and evaluates the keys at `d̂` (the public masked difference, or
/// the ReLU's masked input); the rounds follow in [`NodeEval::step`]. For ReLU, `x` is the
/// input's masked value and this party's share of its mask.
pub fn begin(
    node: &NodeDesc,
    select: Select,
    dhat: &[u64],
    x: Option<(&[u64], &[u64])>,
    me: PartyId,
    material: Vec<u8>,
    accel: Accel,
) -> Result<Box<dyn NodeEval>> {
    let n = dhat.len();
    let (lowmask, top) = split_bits(node.fixed_point.compare_bits);
    let mut m = Shares::new(&material, select.tag(), me.0)?.with_accel(accel);
    let rho = m.share(n, "select mask bit")?;
    let rho_r = if select == Select::Relu { m.share(n, "select mask product")? } else { Vec::new() };
    let r_out = m.share(n, "output mask")?;
    let w = m.bits(n, "comparison mask bits")?;
    let keys = m.halftree_keys(n, top, "DReLU keys")?;
    let v: Vec<u64> = dhat.iter().map(|d| d.wrapping_add(1 << top)).collect();
    let low: Vec<u64> = v.iter().map(|v| v & lowmask).collect();
    let mut c = vec![0u8; n];
    m.accel().halftree(&keys, &low, &mut c)?;
    m.finish()?;
    crate::pool::give(material);
    let own = u8::from(me.0 == 0);
    let z: Vec<u8> = (0..n).map(|i| c[i] ^ w[i] ^ (own & ((v[i] >> top) as u8 & 1))).collect();
    let (xhat, rshare) = match (select, x) {
        (Select::Relu, Some((xv, xs))) => (xv.to_vec(), xs.to_vec()),
        (Select::Relu, None) => return Err(Error::internal("ReLU select without its input")),
        (Select::Sign { .. }, _) => (Vec::new(), Vec::new()),
    };
    Ok(Box::new(TwoRound {
        me,
        shape: node.output.shape.clone(),
        dtype: node.output.dtype,
        select,
        z,
        rho,
        rho_r,
        r_out,
        xhat,
        rshare,
        mine: Vec::new(),
        round: 0,
    }))
}

/// A two-round select in progress.
struct TwoRound {
    me: PartyId,
    shape: Vec<usize>,
    dtype: mpcflow_sdk::DType,
    select: Select,
    /// This party's share of `b ⊕ ρ`.
    z: Vec<u8>,
    rho: Vec<u64>,
    rho_r: Vec<u64>,
    r_out: Vec<u64>,
    xhat: Vec<u64>,
    rshare: Vec<u64>,
    /// This party's share of the masked output (round 2).
    mine: Vec<u64>,
    round: u8,
}

impl TwoRound {
    /// This party's share of the masked output from `b̂`.
    fn output_share(&self, bhat: &[u8]) -> Vec<u64> {
        let own = u64::from(self.me.0 == 0);
        let sign = |b: u64| 1u64.wrapping_sub(2 * b);
        match self.select {
            Select::Sign { a, sigma } => (0..bhat.len())
                .map(|i| {
                    let b = u64::from(bhat[i]);
                    let public = own.wrapping_mul(a.wrapping_add(sigma.wrapping_mul(b)));
                    public
                        .wrapping_add(sigma.wrapping_mul(sign(b)).wrapping_mul(self.rho[i]))
                        .wrapping_add(self.r_out[i])
                })
                .collect(),
            Select::Relu => (0..bhat.len())
                .map(|i| {
                    let b = u64::from(bhat[i]);
                    let x = self.xhat[i];
                    let public = own.wrapping_mul(b.wrapping_mul(x));
                    let masked = x.wrapping_mul(self.rho[i]).wrapping_sub(self.rho_r[i]);
                    public
                        .wrapping_add(sign(b).wrapping_mul(masked))
                        .wrapping_sub(b.wrapping_mul(self.rshare[i]))
                        .wrapping_add(self.r_out[i])
                })
                .collect(),
        }
    }
}

impl NodeEval for TwoRound {
    fn step(&mut self, inbox: Vec<Message>) -> Result<Step> {
        self.round += 1;
        match self.round {
            1 => Ok(open::exchange_bits(self.me, &self.z)),
            2 => {
                let theirs = open::receive_bits(inbox, self.z.len(), "masked comparison bits")?;
                let bhat: Vec<u8> = theirs.iter().zip(&self.z).map(|(a, b)| a ^ b).collect();
                self.mine = self.output_share(&bhat);
                Ok(open::exchange(self.me, &self.mine))
            }
            _ => {
                let value = open::reconstruct(inbox, &self.mine, "masked output")?;
                let m = Masked {
                    shape: std::mem::take(&mut self.shape),
                    dtype: self.dtype,
                    value,
                    share: std::mem::take(&mut self.r_out),
                };
                Ok(Step::Done(NodeValue::Wire(m.into_wire())))
            }
        }
    }
}
