//! Comparisons and ReLU as a bit circuit on replicated shares: no party deals keys.
//!
//! Both gates need the bit `b = [d ≥ 0]` of a difference `d = x − y` (ReLU: `d = x`) known to
//! be below `2^(w−1)` in magnitude, `w` the node's (narrowed) `compare_bits`: `b` is the
//! complement of bit `w − 1` of `d`. The circuit finds that bit from the shares
//! `d = d₀ + d₁ + d₂` the way ABY3 extracts a sign (Mohassel and Rindal, CCS 2018, Section 5.3),
//! with the adder cut down to the one carry it needs:
//!
//! 1. **Two summands** (one round, party 1 sends): party 1, which holds `(d₁, d₂)`, adds them
//!    into `t` and XOR-shares its low `w` bits as `(0, PRG(σ), t ⊕ PRG(σ))`, sending `σ` to
//!    party 0 and `t ⊕ PRG(σ)` to party 2. `d₀`, which parties 0 and 2 both hold, is the XOR
//!    sharing `(d₀, 0, 0)` for free. Neither receiver sees anything but pseudorandom bits.
//! 2. **Generate** (one AND round): `gⱼ = d₀ⱼ ∧ tⱼ`, `pⱼ = d₀ⱼ ⊕ tⱼ` for the bits below `w − 1`.
//! 3. **Carry** (`⌈log₂(w − 1)⌉` AND rounds): a Kogge–Stone style tree combining
//!    `(G, P)_hi ∘ (G, P)_lo = (G_hi ⊕ P_hi ∧ G_lo, P_hi ∧ P_lo)` pairwise, keeping only what
//!    the carry into bit `w − 1` needs (the lowest group's `P` never is). Then
//!    `b = ¬(p_{w−1} ⊕ carry)`.
//! 4. **To words** (two rounds): with `b = b₀ ⊕ b₁ ⊕ b₂`, party 0 knows `c = b₀ ⊕ b₁` and parties
//!    1 and 2 know `b₂`, so `b = c + b₂ − 2c·b₂ = c·(1 − 2b₂) + b₂`. Party 0 shares `c` as an
//!    input (round A); then one product (round B, as in [`super::product`]) gives
//!    `[c·(1 − 2b₂)]`, and `[b₂]` is the sharing `(0, 0, b₂)`. A comparison returns
//!    `a + σ·b` (local). ReLU returns `b·x = c·(x − 2b₂x) + b₂x`: the product `[b₂]·[x]`
//!    rides along in round A, and round B multiplies `[c]` by `[x − 2b₂x]`.
//!
//! Every message is a fresh seed, words masked by a stream whose seed the receiver never sees,
//! or a resharing as in [`super::product`]: what one party receives is uniformly random
//! (up to the PRG), whatever the inputs. The result is exact for every `d` within the width,
//! which the planner guarantees from declared ranges or `compare_bits` and `ref` enforces.
//!
//! Cost, `n` elements, `m = ⌈n/64⌉` plane words: `L + 4` rounds (`L = ⌈log₂(w − 1)⌉`: 10 at 64
//! bits) and about `3w/8 + 16` bytes per element per party, against fss2pc's key and its
//! dealing (about 650 bytes per element sent by the dealing party, and the key generation's AES).
//! The planner uses it except for the `wan` profile, where rounds cost more than the keys'
//! bytes and the dealt gate (two or three rounds) is kept.

use super::bits::{self, Kept, Shares};
use super::product::{reshare_receive, reshare_send};
use crate::share::{self, Operand, SEED, ahead};
use mpcflow_fss_gates::gates::sign;
use mpcflow_fss_gates::wire;
use mpcflow_sdk::protocol::{Cost, Message, NodeDesc, NodeEval, NodeValue, Step, Wire};
use mpcflow_sdk::{Error, PartyId, Result};
use std::sync::Arc;

/// What the circuit computes from `b = [d ≥ 0]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// `a + σ·b` with `d = x − y`, or `y − x` when `swap` (fss2pc's `Gate::Sign`).
    Sign {
        /// `d = y − x`.
        swap: bool,
        /// Constant term.
        a: u64,
        /// Multiplier of `b` (±1 as a ring element).
        sigma: u64,
    },
    /// `b·x`, that is `max(x, 0)`.
    Relu,
}

/// Number of carry-tree levels over `k` positions.
fn levels(k: usize) -> u32 {
    if k <= 1 { 0 } else { (k - 1).ilog2() + 1 }
}

/// The width of the node's comparison.
pub fn width(node: &NodeDesc) -> usize {
    node.fixed_point.compare_bits as usize
}

/// Rounds and bytes of the circuit on `node`.
pub fn cost(node: &NodeDesc, kind: Kind) -> Cost {
    let (n, w) = (node.output.numel(), width(node));
    let m = bits::words(n);
    let mut c = Cost::zero(share::PARTIES);
    c.rounds = 4 + levels(w - 1);
    c.online_bytes[1] += (SEED + 8 * w * m) as u64;
    let mut and_planes = vec![w - 1];
    let mut items = w - 1;
    while items > 1 {
        let pairs = items / 2;
        and_planes.push(2 * pairs - 1);
        items -= pairs;
    }
    let product = (8 * n + SEED) as u64;
    for (p, b) in c.online_bytes.iter_mut().enumerate() {
        *b += and_planes.iter().map(|&q| bits::and_bytes(q, m)).sum::<u64>();
        *b += product;
        if kind == Kind::Relu {
            *b += product;
        }
        if p == 0 {
            *b += (8 * n + 3 * SEED) as u64;
        }
    }
    c.form = format!("bit circuit, {w} bits");
    c
}

/// Where the circuit is.
enum Stage {
    /// Nothing done yet.
    Start,
    /// Party 1 shared `t`.
    Shared,
    /// The generate bits are being ANDed.
    Generate,
    /// A level of the carry tree is being ANDed.
    Level,
    /// Party 0 shared `c` (and, for ReLU, `[b₂]·[x]` is being reshared).
    Input,
    /// The last product is being reshared.
    Product,
}

/// One party's circuit gate.
pub struct Circuit {
    me: PartyId,
    node: NodeDesc,
    kind: Kind,
    inputs: Vec<Arc<Wire>>,
    stage: Stage,
    w: usize,
    m: usize,
    /// Arithmetic shares of `d` (for ReLU, of `x`).
    d: [Vec<u64>; 2],
    /// XOR shares of `d₀`'s and `t`'s low bits.
    a: Shares,
    b: Shares,
    /// XOR shares of the propagate bits `pⱼ`, all `w` planes.
    p: Shares,
    /// The carry tree: `(G, P)` per group, lowest first (`P` absent for the lowest).
    items: Vec<(Shares, Option<Shares>)>,
    /// What an AND layer or product keeps between its two halves.
    kept: Option<Kept>,
    /// Party 1's `t` shares (its own) while it waits for round 1 to pass.
    own_b: Option<Shares>,
    /// Arithmetic `[b₂]` and, once shared, `[c]`; for ReLU `[b₂x]`.
    b2: [Vec<u64>; 2],
    c: [Vec<u64>; 2],
    bx: [Vec<u64>; 2],
}

impl Circuit {
    /// Prepares the gate (the work starts in the first step, on the runtime's blocking thread).
    pub fn new(node: &NodeDesc, me: PartyId, kind: Kind, inputs: Vec<Arc<Wire>>) -> Circuit {
        let w = width(node);
        Circuit {
            me,
            node: node.clone(),
            kind,
            inputs,
            stage: Stage::Start,
            w,
            m: bits::words(node.output.numel()),
            d: Default::default(),
            a: Shares::default(),
            b: Shares::default(),
            p: Shares::default(),
            items: vec![],
            kept: None,
            own_b: None,
            b2: Default::default(),
            c: Default::default(),
            bx: Default::default(),
        }
    }

    fn operand(&self, i: usize) -> Result<Operand<'_>> {
        let (w, t) = self
            .inputs
            .get(i)
            .zip(self.node.inputs.get(i))
            .ok_or_else(|| Error::internal(format!("rep3 circuit without input {i}")))?;
        Operand::from_wire(w, t)
    }

    /// `d`'s shares at this party.
    fn difference(&self) -> Result<[Vec<u64>; 2]> {
        let me = self.me;
        Ok(match self.kind {
            Kind::Relu => {
                let x = self.operand(0)?;
                [x.plane(me, 0).into_owned(), x.plane(me, 1).into_owned()]
            }
            Kind::Sign { swap, .. } => {
                // Broadcast to the output's shape, as fss2pc's gate does.
                let (x, y) = (self.operand(0)?, self.operand(1)?);
                let [d0, d1] = [0, 1].map(|k| sign::difference(&self.node, &x.plane(me, k), &y.plane(me, k), swap));
                [d0?, d1?]
            }
        })
    }

    /// Round 1: party 1 shares `t = d₁ + d₂`; `d₀` is shared for free.
    fn start(&mut self) -> Result<Step> {
        self.d = self.difference()?;
        let (w, m, me) = (self.w, self.m, self.me.index());
        let zeros = || vec![0u64; w * m];
        // Party 0 holds (d₀, d₁), party 2 (d₂, d₀): d₀ is share 0 of the XOR sharing (d₀, 0, 0).
        self.a = match me {
            0 => Shares { s: [bits::to_planes(&self.d[0], w), zeros()] },
            2 => Shares { s: [zeros(), bits::to_planes(&self.d[1], w)] },
            _ => Shares { s: [zeros(), zeros()] },
        };
        if me != 1 {
            return Ok(Step::Exchange { send: vec![], expect: vec![PartyId(1)] });
        }
        let t = bits::to_planes(&wire::add(&self.d[0], &self.d[1]), w);
        let sigma = share::fresh_seed()?;
        let masked = bits::xor(&t, &share::expand(&sigma, w * m));
        self.own_b = Some(Shares { s: [share::expand(&sigma, w * m), masked.clone()] });
        let send = vec![
            Message { peer: PartyId(0), payload: sigma.to_vec() },
            Message { peer: PartyId(2), payload: wire::to_bytes(&masked) },
        ];
        Ok(Step::Exchange { send, expect: vec![] })
    }

    /// Round 2: the generate bits.
    fn generate(&mut self, mut inbox: Vec<Message>) -> Result<Step> {
        let (w, m) = (self.w, self.m);
        self.b = match self.me.index() {
            1 => self.own_b.take().ok_or_else(|| Error::internal("rep3 circuit lost its shares"))?,
            0 => {
                let msg = share::from(&mut inbox, PartyId(1), "circuit seed")?;
                let (sigma, rest) = share::take_seed(&msg, "circuit seed")?;
                share::expect_empty(rest, "circuit seed")?;
                Shares { s: [vec![0; w * m], share::expand(&sigma, w * m)] }
            }
            _ => {
                let msg = share::from(&mut inbox, PartyId(1), "circuit bits")?;
                Shares { s: [wire::from_bytes(&msg, w * m, "circuit bits")?, vec![0; w * m]] }
            }
        };
        self.p = Shares { s: [0, 1].map(|k| bits::xor(&self.a.s[k], &self.b.s[k])) };
        let (send, kept) = bits::and_send(self.me, self.a.planes(0, w - 1, m), self.b.planes(0, w - 1, m))?;
        self.kept = Some(kept);
        // The summands' bits are spent: only p and the ANDs go on.
        (self.a, self.b) = (Shares::default(), Shares::default());
        if let Kind::Sign { .. } = self.kind {
            // A comparison needs d no more (ReLU multiplies by it at the end).
            self.d = Default::default();
        }
        Ok(self.exchange(send))
    }

    fn exchange(&self, send: Vec<Message>) -> Step {
        Step::Exchange { send, expect: vec![ahead(self.me, 1), ahead(self.me, 2)] }
    }

    /// One plane of `s` as its own shares.
    fn plane(s: &Shares, j: usize, m: usize) -> Shares {
        Shares { s: [0, 1].map(|k| s.s[k][j * m..(j + 1) * m].to_vec()) }
    }

    /// Sends the ANDs of the next carry level: per pair `P_hi ∧ G_lo`, and `P_hi ∧ P_lo` above
    /// the lowest pair.
    fn level(&mut self) -> Result<Step> {
        let mut x: [Vec<u64>; 2] = Default::default();
        let mut y: [Vec<u64>; 2] = Default::default();
        for (pair, chunk) in self.items.chunks(2).enumerate() {
            let [(g_lo, p_lo), (_, p_hi)] = chunk else { continue };
            let p_hi = p_hi.as_ref().ok_or_else(|| Error::internal("rep3 circuit: a high group without P"))?;
            for k in 0..2 {
                x[k].extend(&p_hi.s[k]);
                y[k].extend(&g_lo.s[k]);
            }
            if pair > 0 {
                let p_lo = p_lo.as_ref().ok_or_else(|| Error::internal("rep3 circuit: a group without P"))?;
                for k in 0..2 {
                    x[k].extend(&p_hi.s[k]);
                    y[k].extend(&p_lo.s[k]);
                }
            }
        }
        let (send, kept) = bits::and_send(self.me, [&x[0], &x[1]], [&y[0], &y[1]])?;
        self.kept = Some(kept);
        Ok(self.exchange(send))
    }

    /// Combines the pairs with the level's ANDs.
    fn combine(&mut self, ands: Shares) -> Result<()> {
        let m = self.m;
        let mut next = Vec::with_capacity(self.items.len().div_ceil(2));
        let mut at = 0;
        let take = |at: &mut usize| {
            let s = Self::plane(&ands, *at, m);
            *at += 1;
            s
        };
        let items = std::mem::take(&mut self.items);
        for (pair, chunk) in items.chunks(2).enumerate() {
            match chunk {
                [_, (g_hi, _)] => {
                    // G = G_hi ⊕ (P_hi ∧ G_lo); P = P_hi ∧ P_lo above the lowest pair.
                    let pg = take(&mut at);
                    let g = Shares { s: [0, 1].map(|k| bits::xor(&g_hi.s[k], &pg.s[k])) };
                    let p = if pair > 0 { Some(take(&mut at)) } else { None };
                    next.push((g, p));
                }
                [single] => next.push(single.clone()),
                _ => return Err(Error::internal("rep3 circuit: an empty carry group")),
            }
        }
        self.items = next;
        Ok(())
    }

    /// `b` from the carry; then round A.
    fn finish_bits(&mut self) -> Result<Step> {
        let (w, m, n) = (self.w, self.m, self.node.output.numel());
        let carry = match self.items.as_slice() {
            [(g, _)] => g.clone(),
            [] => Shares { s: [vec![0; m], vec![0; m]] },
            _ => return Err(Error::internal("rep3 circuit: the carry tree did not close")),
        };
        let top = Self::plane(&self.p, w - 1, m);
        let mut sign = Shares { s: [0, 1].map(|k| bits::xor(&top.s[k], &carry.s[k])) };
        // b = ¬sign: flip share 0 (party 0's first, party 2's second).
        match self.me.index() {
            0 => sign.s[0].iter_mut().for_each(|x| *x = !*x),
            2 => sign.s[1].iter_mut().for_each(|x| *x = !*x),
            _ => {}
        }
        let b = sign.s.map(|s| bits::from_plane(&s, n));
        let me = self.me.index();
        // [b₂] as the arithmetic sharing (0, 0, b₂): party 1 holds it second, party 2 first.
        self.b2 = match me {
            1 => [vec![0; n], b[1].clone()],
            2 => [b[0].clone(), vec![0; n]],
            _ => [vec![0; n], vec![0; n]],
        };
        let mut to_before: Vec<u8> = vec![];
        let mut to_after: Vec<u8> = vec![];
        if me == 0 {
            // Party 0 shares c = b₀ ⊕ b₁ as rep3's input gate does (see `super::io`).
            let c: Vec<u64> = bits::xor(&b[0], &b[1]);
            let (sa, sc) = (share::fresh_seed()?, share::fresh_seed()?);
            let (c0, c2) = (share::expand(&sa, n), share::expand(&sc, n));
            let c1: Vec<u64> = (0..n).map(|i| c[i].wrapping_sub(c0[i]).wrapping_sub(c2[i])).collect();
            to_before.extend([sa, sc].concat());
            to_after.extend(sc);
            to_after.extend(wire::to_bytes(&c1));
            self.c = [c0, c1];
        }
        if self.kind == Kind::Relu {
            let (send, kept) = product_send(self.me, &self.b2, &self.d)?;
            self.kept = Some(kept);
            for msg in send {
                if msg.peer == ahead(self.me, 2) {
                    to_before.extend(msg.payload);
                } else {
                    to_after.extend(msg.payload);
                }
            }
        }
        let mut send = vec![];
        for (peer, payload) in [(ahead(self.me, 2), to_before), (ahead(self.me, 1), to_after)] {
            if !payload.is_empty() {
                send.push(Message { peer, payload });
            }
        }
        let expect = match (self.kind, me) {
            (Kind::Relu, _) => vec![ahead(self.me, 1), ahead(self.me, 2)],
            (_, 0) => vec![],
            _ => vec![PartyId(0)],
        };
        Ok(Step::Exchange { send, expect })
    }

    /// Round B: `[c]` (and `[b₂x]`) arrived; multiply `[c]` by `[1 − 2b₂]` or `[x − 2b₂x]`.
    fn last_product(&mut self, mut inbox: Vec<Message>) -> Result<Step> {
        let n = self.node.output.numel();
        let me = self.me.index();
        let mut from_zero = if me == 0 { vec![] } else { share::from(&mut inbox, PartyId(0), "circuit input")? };
        if me == 2 {
            // From party 0, its party before: seeds σ_A ‖ σ_C (then, for ReLU, a product share).
            let (sa, rest) = share::take_seed(&from_zero, "circuit input")?;
            let (sc, rest) = share::take_seed(rest, "circuit input")?;
            self.c = [share::expand(&sc, n), share::expand(&sa, n)];
            from_zero = rest.to_vec();
        } else if me == 1 {
            let (sc, rest) = share::take_seed(&from_zero, "circuit input")?;
            let (c1, rest) = share::take_words(rest, n, "circuit input")?;
            self.c = [c1, share::expand(&sc, n)];
            from_zero = rest.to_vec();
        }
        let f = if self.kind == Kind::Relu {
            // Put party 0's remaining bytes back for the product's reading.
            if me != 0 {
                inbox.push(Message { peer: PartyId(0), payload: from_zero });
            } else {
                share::expect_empty(&from_zero, "circuit input")?;
            }
            let kept = self.kept.take().ok_or_else(|| Error::internal("rep3 circuit lost its product"))?;
            self.bx = reshare_receive(self.me, kept, &mut inbox)?;
            // x − 2·b₂x.
            [0, 1].map(|k| self.d[k].iter().zip(&self.bx[k]).map(|(x, w)| x.wrapping_sub(w.wrapping_mul(2))).collect())
        } else {
            share::expect_empty(&from_zero, "circuit input")?;
            // 1 − 2b₂, with 1 as the sharing (1, 0, 0).
            [0, 1].map(|k| {
                let one = u64::from((me + k).is_multiple_of(share::PARTIES));
                self.b2[k].iter().map(|b| one.wrapping_sub(b.wrapping_mul(2))).collect::<Vec<u64>>()
            })
        };
        let (send, kept) = product_send(self.me, &self.c, &f)?;
        self.kept = Some(kept);
        Ok(self.exchange(send))
    }

    /// The result from the last product.
    fn result(&mut self, mut inbox: Vec<Message>) -> Result<Step> {
        let kept = self.kept.take().ok_or_else(|| Error::internal("rep3 circuit lost its product"))?;
        let cf = reshare_receive(self.me, kept, &mut inbox)?;
        let me = self.me.index();
        let planes = match self.kind {
            Kind::Relu => [0, 1].map(|k| wire::add(&cf[k], &self.bx[k])),
            Kind::Sign { a, sigma, .. } => [0, 1].map(|k| {
                let constant = if (me + k).is_multiple_of(share::PARTIES) { a } else { 0 };
                cf[k]
                    .iter()
                    .zip(&self.b2[k])
                    .map(|(x, b)| constant.wrapping_add(sigma.wrapping_mul(x.wrapping_add(*b))))
                    .collect()
            }),
        };
        Ok(Step::Done(NodeValue::Wire(share::secret(&self.node.output.shape, self.node.output.dtype, planes))))
    }
}

/// The local product `zᵢ = xᵢ(yᵢ + yᵢ₊₁) + xᵢ₊₁yᵢ` of two elementwise sharings, split for
/// resharing ([`super::product::reshare_send`]).
fn product_send(me: PartyId, x: &[Vec<u64>; 2], y: &[Vec<u64>; 2]) -> Result<(Vec<Message>, Kept)> {
    let z: Vec<u64> = (0..x[0].len())
        .map(|i| x[0][i].wrapping_mul(y[0][i].wrapping_add(y[1][i])).wrapping_add(x[1][i].wrapping_mul(y[0][i])))
        .collect();
    reshare_send(me, z)
}

impl NodeEval for Circuit {
    fn step(&mut self, inbox: Vec<Message>) -> Result<Step> {
        match self.stage {
            Stage::Start => {
                self.stage = Stage::Shared;
                self.start()
            }
            Stage::Shared => {
                self.stage = Stage::Generate;
                self.generate(inbox)
            }
            Stage::Generate | Stage::Level => {
                let mut inbox = inbox;
                let kept = self.kept.take().ok_or_else(|| Error::internal("rep3 circuit lost an AND"))?;
                let ands = bits::and_receive(self.me, kept, &mut inbox)?;
                if matches!(self.stage, Stage::Generate) {
                    let m = self.m;
                    self.items = (0..self.w - 1)
                        .map(|j| (Self::plane(&ands, j, m), (j > 0).then(|| Self::plane(&self.p, j, m))))
                        .collect();
                } else {
                    self.combine(ands)?;
                }
                if self.items.len() > 1 {
                    self.stage = Stage::Level;
                    return self.level();
                }
                self.stage = Stage::Input;
                self.finish_bits()
            }
            Stage::Input => {
                self.stage = Stage::Product;
                self.last_product(inbox)
            }
            Stage::Product => self.result(inbox),
        }
    }
}
