//! Smooth functions by table lookup with linear interpolation: exp, sigmoid, tanh, gelu.
//!
//! Four rounds, each one opening of one 64-bit share per element (two in the first):
//! 1. **Clip** `x` to the table's domain `[lo, lo + (2^m − 1)·h]` with two ReLUs:
//!    `w = relu(x − lo) − relu(x − hi) = clip(x) − lo` (for gelu a third ReLU computes
//!    `relu(x)` in the same round).
//! 2. **Split** `w` exactly (DCF truncation, rounding down) into the table index
//!    `j = floor(w / h)`, `h = 2^-p`, and the remainder `δ = w − j·h ∈ [0, h)`.
//! 3. **Look up** `T0[j] = f(lo + j·h)` and the slope `T1[j]` with a DPF at the secret `j`
//!    (the dealer's key encodes the mask of `j`; the parties expand it over all `2^m` points and
//!    take dot products with the rotated tables), and a second DPF whose payload is the mask of
//!    `δ`, giving `T1[j]·δ` without a multiplication round; open `T0[j] + T1[j]·δ` (scale 2f).
//! 4. **Truncate** by `f` bits (exact).
//!
//! The error against the exact function on the domain is at most `h²/8 · max|f''| + 1` ulp
//! (with `h = 2^-6`: `2^-15·max|f''|` plus one ulp); outside it the function is held at the
//! edge value: exp saturates at `exp(8)` above 8 and is `exp(-16) ≈ 0` below −16; sigmoid,
//! tanh and gelu are within an ulp of their asymptotes there (gelu is computed as
//! `relu(x) − (relu(x) − gelu(x))`, the second term from the table, so it stays exact for large x).

use super::{relu, trunc};
use crate::accel::Accel;
use crate::fss::{DpfKey, SeedRng, dpf};
use crate::material::{Shares, Split, Tag, dcf2_len};
use crate::wire;
use mpcflow_ring::kernels::eval_op;
use mpcflow_sdk::protocol::{Cost, Message, NodeDesc, NodeEval, NodeValue, Step};
use mpcflow_sdk::shape::{TensorInfo, Visibility};
use mpcflow_sdk::{DType, Error, FixedPoint, Op, PartyId, Result, Tensor};

/// Rounds of a lookup gate.
pub const ROUNDS: u32 = 4;

/// Online bytes each party sends per element.
pub fn online_bytes(func: Func) -> u64 {
    8 * (func.relus() as u64 + 3)
}

/// The range of both truncations: the products' half range, whose wrap is read off the mask's
/// top bit instead of a 64-bit DCF (see [`trunc`]). Both truncated values are small whatever
/// the input: the clipped offset `w = clip(x) − lo` lies in `[0, 2^(m−P+f))` (at most 2^29 words,
/// for a 32-wide domain at `f = 24`), and the interpolated value at scale `2f` is at most the
/// table's largest value plus one step, `exp(8)·2^(2f)` for exp (under 2^61 at the largest `f`,
/// 24), inside the half range's `2^62 − 2^(t−1)`.
const TRUNC: trunc::Range = trunc::Range::Half;

/// Bits of the table step: `h = 2^-P`.
pub const P: u32 = 6;

/// The largest `frac_bits` the lookup supports: `exp(8)·2^(2f)` must stay below 2^63.
pub const MAX_FRAC_BITS: u32 = 24;

/// A function with its table domain.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Func {
    /// `e^x` on `[-16, 16)` (clipped at 8 from above; see the module docs).
    Exp,
    /// `1 / (1 + e^-x)` on `[-16, 16)`.
    Sigmoid,
    /// `tanh(x)` on `[-8, 8)`.
    Tanh,
    /// `relu(x) − gelu(x)` on `[-8, 8)`, subtracted from `relu(x)`.
    Gelu,
}

impl Func {
    /// The function of an op, if it is one of these.
    pub fn of(op: &Op) -> Option<Func> {
        match op {
            Op::Exp => Some(Func::Exp),
            Op::Sigmoid => Some(Func::Sigmoid),
            Op::Tanh => Some(Func::Tanh),
            Op::Gelu => Some(Func::Gelu),
            _ => None,
        }
    }

    /// `(lo, m, hi)`: the table covers `lo + j·h` for `j < 2^m`; inputs are clipped to `hi`.
    fn domain(self) -> (f64, u32, f64) {
        let h = 1.0 / (1u64 << P) as f64;
        match self {
            Func::Exp => (-16.0, 11, 8.0),
            Func::Sigmoid => (-16.0, 11, 16.0 - h),
            Func::Tanh | Func::Gelu => (-8.0, 10, 8.0 - h),
        }
    }

    fn relus(self) -> usize {
        if self == Func::Gelu { 3 } else { 2 }
    }
}

fn ops(func: Func) -> Op {
    match func {
        Func::Exp => Op::Exp,
        Func::Sigmoid => Op::Sigmoid,
        Func::Tanh => Op::Tanh,
        Func::Gelu => Op::Gelu,
    }
}

/// The tables `T0` (values, f bits) and `T1` (slopes per unit, f bits), `2^m` entries each,
/// computed with the plaintext reference semantics of the op.
fn tables(func: Func, fp: FixedPoint) -> Result<(Vec<u64>, Vec<u64>)> {
    let (lo, m, _) = func.domain();
    let n = (1usize << m) + 1;
    let xs: Vec<f64> = (0..n).map(|j| lo + j as f64 / (1u64 << P) as f64).collect();
    let x = Tensor::from_f64(DType::Fixed, vec![n], &xs, fp).ok_or_else(|| Error::internal("table points"))?;
    let info = TensorInfo { shape: vec![n], dtype: DType::Fixed, vis: Visibility::Public };
    let mut v = eval_op(&ops(func), &[&x], &info, fp)?.data;
    if func == Func::Gelu {
        // Tabulate relu(x) − gelu(x), which vanishes at both ends.
        v = x.data.iter().zip(&v).map(|(xw, g)| ((*xw as i64).max(0) as u64).wrapping_sub(*g)).collect();
    }
    let t1 = (0..n - 1).map(|j| v[j + 1].wrapping_sub(v[j]).wrapping_shl(P)).collect();
    let mut t0 = v;
    t0.truncate(n - 1);
    Ok((t0, t1))
}

/// Per-element material bytes for party 0 and 1 beyond the header and seed: see [`deal`].
pub fn material_len(func: Func, n: usize, fp: FixedPoint) -> [u64; 2] {
    let (_, m, _) = func.domain();
    let t = fp.frac_bits - P;
    let relus = func.relus() as u64 * n as u64;
    let keys = relus * dcf2_len(63)
        + n as u64 * (trunc::key_len(t, TRUNC) + trunc::key_len(fp.frac_bits, TRUNC))
        + 2 * n as u64 * DpfKey::serialized_len(m) as u64;
    // Party 1's explicit shares: relu (3 words per relu'd element), the two truncations', the
    // lookup's output mask (1 word).
    let truncs = (trunc::words(t, TRUNC) + trunc::words(fp.frac_bits, TRUNC)) as u64;
    let words = 3 * relus + truncs * n as u64 + n as u64;
    let head = (crate::material::HEADER + crate::material::SEED_LEN) as u64;
    [head + keys, crate::material::HEADER as u64 + 8 * words + keys]
}

fn fss(e: crate::fss::FssError) -> Error {
    Error::internal(format!("fss2pc dealer: {e}"))
}

/// The cost of looking `func` up on every element of `node`'s output.
pub fn cost(node: &NodeDesc, func: Func) -> Cost {
    let dealer = material_len(func, node.output.numel(), node.fixed_point);
    let mut c = super::open::cost_per_element(node, ROUNDS, online_bytes(func), dealer);
    let (lo, m, hi) = func.domain();
    c.form = format!("table of {} points on [{lo}, {hi}], step 2^-{P}, interpolated", 1u64 << m);
    c
}

/// Dealer: the material of a lookup gate on a value with mask `r`; returns the output mask.
pub fn deal(
    func: Func,
    node: &NodeDesc,
    r: &[u64],
    rng: &mut SeedRng,
    threads: usize,
) -> Result<(Vec<Vec<u8>>, Vec<u64>)> {
    let n = r.len();
    let fp = node.fixed_point;
    let (_, m, _) = func.domain();
    let t = fp.frac_bits - P;
    let mut split = Split::new(Tag::Lut, rng, super::open::sizes(&cost(node, func)), threads);
    // Round 1: relu(x − lo), relu(x − hi) (and relu(x)); public offsets keep the mask.
    let rr: Vec<u64> = (0..func.relus()).flat_map(|_| r.iter().copied()).collect();
    let r_relu = relu::deal_relu(&mut split, &rr, 64, rng)?;
    let r_w = wire::sub(&r_relu[..n], &r_relu[n..2 * n]);
    // Round 2: j = floor(w / 2^t), δ = w − j·2^t.
    let r_j = trunc::deal(&mut split, &r_w, t, TRUNC, rng)?;
    let r_d: Vec<u64> = r_w.iter().zip(&r_j).map(|(w, j)| w.wrapping_sub(j.wrapping_shl(t))).collect();
    // Round 3: the lookup's output mask, then the two DPFs at j's mask.
    let r_z: Vec<u64> = crate::material::draw(rng, n);
    split.share(&r_z);
    let low = (1u64 << m) - 1;
    let alphas: Vec<u64> = r_j.iter().map(|j| j & low).collect();
    split.dpf_keys(&dpf::keygen_batch(&alphas, &vec![1; n], m, rng).map_err(fss)?);
    split.dpf_keys(&dpf::keygen_batch(&alphas, &r_d, m, rng).map_err(fss)?);
    // Round 4: truncate z (scale 2f) by f.
    let r_out = trunc::deal(&mut split, &r_z, fp.frac_bits, TRUNC, rng)?;
    let r_final = if func == Func::Gelu { wire::sub(&r_relu[2 * n..], &r_out) } else { r_out };
    Ok((split.finish(), r_final))
}

/// This party's share of `T0[j]·2^shift + T1[j]·δ` for the secret table index `j`, from its two
/// DPF keys (payloads 1 and the mask of `δ`, both at the mask of `j`), the public masked index
/// `index_hat = (j + mask) mod 2^m` and the public masked remainder `δ̂`. Each key is expanded
/// over all `2^m` points and dotted with the tables rotated by `index_hat`.
pub fn interpolated_share(
    party: u16,
    keys: (&DpfKey, &DpfKey),
    tables: (&[u64], &[u64]),
    index_hat: usize,
    dhat: u64,
    shift: u32,
) -> Result<u64> {
    let e1 = dpf::eval_all(party as u8, keys.0).map_err(|e| Error::Material(e.to_string()))?;
    let e2 = dpf::eval_all(party as u8, keys.1).map_err(|e| Error::Material(e.to_string()))?;
    let (t0, t1) = tables;
    let size = e1.len();
    if t0.len() < size || t1.len() < size || e2.len() != size {
        return Err(Error::internal("lookup tables smaller than the key domain"));
    }
    let (mut a0, mut a1, mut a2) = (0u64, 0u64, 0u64);
    for s in 0..size {
        let k = index_hat.wrapping_sub(s) & (size - 1);
        a0 = a0.wrapping_add(t0[k].wrapping_mul(e1[s]));
        a1 = a1.wrapping_add(t1[k].wrapping_mul(e1[s]));
        a2 = a2.wrapping_add(t1[k].wrapping_mul(e2[s]));
    }
    Ok(a0.wrapping_shl(shift).wrapping_add(a1.wrapping_mul(dhat)).wrapping_sub(a2))
}

enum State {
    Relu,
    Split,
    Lookup,
    Truncate,
    Finish(Vec<u64>),
}

/// Party side of a lookup gate.
pub struct LutEval {
    me: PartyId,
    node: NodeDesc,
    func: Func,
    material: Vec<u8>,
    accel: Accel,
    xhat: Vec<u64>,
    xshare: Vec<u64>,
    state: State,
    mine: Vec<u64>,
    relu_mask: Vec<u64>,
    wires: Vec<u64>,
    trunc_j: Option<trunc::TruncShares>,
    lookup: Option<(Vec<u64>, Vec<DpfKey>, Vec<DpfKey>)>,
    trunc_z: Option<trunc::TruncShares>,
    what: Vec<u64>,
}

impl LutEval {
    /// Prepares the gate on input `x` (masked value and this party's mask share).
    pub fn new(
        func: Func,
        node: &NodeDesc,
        me: PartyId,
        xhat: Vec<u64>,
        xshare: Vec<u64>,
        material: Vec<u8>,
        accel: Accel,
    ) -> Self {
        LutEval {
            me,
            node: node.clone(),
            func,
            material,
            accel,
            xhat,
            xshare,
            state: State::Relu,
            mine: vec![],
            relu_mask: vec![],
            wires: vec![],
            trunc_j: None,
            lookup: None,
            trunc_z: None,
            what: vec![],
        }
    }

    fn exchange(&mut self, mine: Vec<u64>) -> Step {
        self.mine = mine;
        super::open::exchange(self.me, &self.mine)
    }
}

impl NodeEval for LutEval {
    fn step(&mut self, inbox: Vec<Message>) -> Result<Step> {
        let n = self.xhat.len();
        let fp = self.node.fixed_point;
        let (lo, m, hi) = self.func.domain();
        let t = fp.frac_bits - P;
        let party = self.me.0;
        match self.state {
            State::Relu => {
                // Not shared: the truncation keys kept for later rounds are copied out, so the
                // rest of this material (ReLU and table keys) is freed after this round.
                let material = std::mem::take(&mut self.material);
                let mut sh = Shares::new(&material, Tag::Lut, party)?.with_accel(self.accel.clone());
                let (lo_w, hi_w) = (fp.encode(lo), fp.encode(hi));
                let mut xs = wire::sub(&self.xhat, &vec![lo_w; n]);
                xs.extend(wire::sub(&self.xhat, &vec![hi_w; n]));
                let mut rs = self.xshare.clone();
                rs.extend_from_slice(&self.xshare);
                if self.func == Func::Gelu {
                    xs.extend_from_slice(&self.xhat);
                    rs.extend_from_slice(&self.xshare);
                }
                let (mine, relu_mask) = relu::relu_share(party, &xs, &rs, 64, &mut sh)?;
                self.relu_mask = relu_mask;
                self.trunc_j = Some(trunc::read(&mut sh, n, t, TRUNC)?);
                let r_z = sh.share(n, "lookup output mask")?;
                let k1 = sh.dpf_keys(n, m, "lookup keys")?;
                let k2 = sh.dpf_keys(n, m, "lookup remainder keys")?;
                self.lookup = Some((r_z, k1, k2));
                self.trunc_z = Some(trunc::read(&mut sh, n, fp.frac_bits, TRUNC)?);
                sh.finish()?;
                self.state = State::Split;
                Ok(self.exchange(mine))
            }
            State::Split => {
                self.wires = super::open::reconstruct(inbox, &self.mine, "clipped input")?;
                self.what = wire::sub(&self.wires[..n], &self.wires[n..2 * n]);
                let tj = self.trunc_j.as_ref().ok_or_else(|| Error::internal("lookup split material"))?;
                let mine = trunc::share_with(party, &self.what, t, tj, false)?;
                self.state = State::Lookup;
                Ok(self.exchange(mine))
            }
            State::Lookup => {
                let jhat = super::open::reconstruct(inbox, &self.mine, "table index")?;
                let (r_z, k1, k2) = self.lookup.take().ok_or_else(|| Error::internal("lookup material"))?;
                let (t0, t1) = tables(self.func, fp)?;
                let size = 1usize << m;
                let mut mine = Vec::with_capacity(n);
                for i in 0..n {
                    let dhat = self.what[i].wrapping_sub(jhat[i].wrapping_shl(t));
                    let jm = (jhat[i] as usize) & (size - 1);
                    let z = interpolated_share(party, (&k1[i], &k2[i]), (&t0, &t1), jm, dhat, fp.frac_bits)?;
                    mine.push(z.wrapping_add(r_z[i]));
                }
                self.state = State::Truncate;
                Ok(self.exchange(mine))
            }
            State::Truncate => {
                let zhat = super::open::reconstruct(inbox, &self.mine, "interpolated value")?;
                let tz = self.trunc_z.take().ok_or_else(|| Error::internal("lookup truncation material"))?;
                let mine = trunc::share(party, &zhat, fp.frac_bits, &tz)?;
                self.state = State::Finish(tz.r_out);
                Ok(self.exchange(mine))
            }
            State::Finish(ref mut r_out) => {
                let r_out = std::mem::take(r_out);
                let yhat = super::open::reconstruct(inbox, &self.mine, "function value")?;
                let (value, share) = if self.func == Func::Gelu {
                    // gelu = relu(x) − (relu(x) − gelu(x)).
                    (wire::sub(&self.wires[2 * n..], &yhat), wire::sub(&self.relu_mask[2 * n..], &r_out))
                } else {
                    (yhat, r_out)
                };
                let out = wire::Masked { shape: self.node.output.shape.clone(), dtype: DType::Fixed, value, share };
                Ok(Step::Done(NodeValue::Wire(out.into_wire())))
            }
        }
    }
}
