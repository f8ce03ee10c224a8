//! Reciprocal, reciprocal square root and square root: `reciprocal`, `rsqrt`, `sqrt` by
//! exact normalisation, a mantissa table with interpolation, and an exact rescaling by the
//! secret exponent.
//!
//! With `X` the input word (`x·2^f`), `L` its leading-bit position and `μ = X / 2^L ∈ [1, 2)`,
//! each function is `y = G(μ) · 2^(e(L))` in words: reciprocal `μ^-1·2^(2f−L)`, rsqrt
//! `μ^(-1/2)·2^(1.5f−L/2)`, sqrt `μ^(1/2)·2^((f+L)/2)`. Seven rounds:
//! 1. **Leading bit.** `b_k = [X ≥ 2^k]` for `k < kk` with the sign gate on `X − 2^k` (a
//!    public offset keeps the mask): one 63-bit DCF per comparison, one opening of `kk` masked
//!    bits. `kk` = 2 + the last position whose output can reach half an ulp (capped at 62):
//!    at `f = 16`, 35 for reciprocal, 52 for rsqrt, 62 for sqrt; a leading bit above lands on
//!    position `kk − 1`, whose rescaling coefficient is 0. For reciprocal also `[−X ≥ 2^k]`
//!    (`2·kk` DCFs), so negative inputs are handled through `|X|` and the sign `[X ≤ −1]`. The one-hot `o_k = b_k − b_{k+1}` and every quantity below
//!    that is `Σ_k o_k·h(k)` for a public `h` is a *linear* function of the opened bits.
//! 2. **Normalise** exactly: `M = X · Σ_k ±o_k·2^(62−k) = |X|·2^(62−L) ∈ [2^62, 2^63)`, a
//!    product of two secrets (the bilinear gate's correlation), one opening.
//! 3. **Split** `M` by two exact floor truncations (DCF, one round): the table index
//!    `j = ⌊M / 2^(62−m)⌋ ∈ [2^m, 2^(m+1))` and `u = ⌊M / 2^(62−m−d)⌋`, so the remainder is
//!    `δ = u − j·2^d ∈ [0, 2^d)` (`m` = [`M_BITS`], `d` = [`D_BITS`]).
//! 4. **Look up** `T0` and the slope `T1` at the secret index `class·2^(m+1) + j` with one
//!    table key whose payload is `(1, r_δ)`, so `T1·δ` needs no product (see [`super::tables`]), open
//!    `z = T0·2^d + T1·δ ≈ 2^(Q+d)·G(μ)·2^φ`. The class bit is the sign for reciprocal and the
//!    parity of `L`'s half exponent for rsqrt and sqrt (`φ = 1/2`: the table row holds `√2·G`).
//! 5. **Truncate** `z` by `d` (exact, rounding): `R ≈ 2^Q·G(μ)·2^φ`.
//! 6. **Rescale**: `R · E` with `E = Σ_k o_k·2^(c_k)`, `c_k = ⌊e(k)⌋ − min ⌊e⌋` (a product of
//!    two secrets, one opening), exponents `k` whose output is below half an ulp for every
//!    `X` in `[2^k, 2^(k+1))` get `c_k`'s coefficient 0.
//! 7. **Truncate** by `S = Q − min ⌊e⌋` (exact, rounding half up), then add
//!    `V·(1 − b_0)`: the saturated value `ref` gives where all bits are zero (`X ≤ 0`;
//!    reciprocal: `X = 0`), `V = i64::MAX` for reciprocal and rsqrt and 0 for sqrt.
//!
//! `Q` is as large as the 63-bit budget of step 6 allows: `Q = min(40, 61 − (max ⌊e⌋ − min ⌊e⌋))`,
//! the range over the relevant exponents: at `f = 16`, 28 for reciprocal, 36 for rsqrt, 31 for
//! sqrt. **Accuracy** against `ref`: `|y − ref| ≤ (2^-21 + 2^-(Q−2))·|ref| + 1` ulp (table
//! interpolation `h²/8·|G''/G| ≤ 2^-22` with `h = 2^-10`, table and rescaling rounding
//! `2^-(Q−1)`, remainder truncation `2^-30`), i.e. `2^-20·|ref| + 1` ulp at `f = 16`;
//! exactly `ref`'s value at the saturated points (reciprocal(0) = rsqrt(x ≤ 0) = i64::MAX,
//! sqrt(x ≤ 0) = 0); results that round to 0 in `ref` (reciprocal of `x ≥ 2^(f+2)`) are 0 or
//! within the bound. Valid for `|X| < 2^62` (`|x| < 2^(62−f)`) and `1 ≤ f ≤ 24` with `Q ≥ 16`
//! (reciprocal: `f ≤ 22`), which the planner checks.
//!
//! Costs per element: 7 rounds; online bytes `8·g·kk + 56` per party (`g` = 2 for reciprocal,
//! else 1; at `f = 16`: reciprocal 616, rsqrt 472, sqrt 552); material in [`material_len`]
//! (dominated by the `g·kk` comparison keys: about 117 KiB for reciprocal, 90 KiB for rsqrt,
//! 105 KiB for sqrt per element and party at `f = 16`).

use super::{sign, tables, trunc};
use crate::accel::Accel;
use crate::fss::SeedRng;
use crate::fss::table;
use crate::material::{KeptTable, Shares, Split, Tag, dcf_len, split_len};
use crate::wire;
use mpcflow_sdk::protocol::{Cost, Message, NodeDesc, NodeEval, NodeValue, Step};
use mpcflow_sdk::{DType, Error, Op, PartyId, Result};

/// Rounds of the gate.
pub const ROUNDS: u32 = 7;
/// Table index bits after the leading one (`h = 2^-M_BITS`).
pub const M_BITS: u32 = 10;
/// Bits of the interpolation remainder.
pub const D_BITS: u32 = 20;
/// Leading-bit positions an input may have: `k = 0..61`.
const K: usize = 62;
/// Truncation giving the table index.
const T_BITS: u32 = 62 - M_BITS;
/// Index bits of the DPF domain: class bit, then `j < 2^(M_BITS+1)`.
const B_BITS: u32 = M_BITS + 2;
const MAX_Q: i64 = 40;
const MIN_Q: i64 = 16;

/// A function of the gate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Func {
    /// `1/x`.
    Reciprocal,
    /// `1/√x`.
    Rsqrt,
    /// `√x`.
    Sqrt,
}

impl Func {
    /// The function of an op, if it is one of these.
    pub fn of(op: &Op) -> Option<Func> {
        match op {
            Op::Reciprocal => Some(Func::Reciprocal),
            Op::Rsqrt => Some(Func::Rsqrt),
            Op::Sqrt => Some(Func::Sqrt),
            _ => None,
        }
    }

    /// Sign groups of comparisons: reciprocal also compares `−X`.
    fn groups(self) -> usize {
        if self == Func::Reciprocal { 2 } else { 1 }
    }

    /// Twice the exponent `e(L)` of the output word.
    fn e2(self, k: i64, f: i64) -> i64 {
        match self {
            Func::Reciprocal => 4 * f - 2 * k,
            Func::Rsqrt => 3 * f - k,
            Func::Sqrt => f + k,
        }
    }

    fn g(self, mu: f64) -> f64 {
        match self {
            Func::Reciprocal => 1.0 / mu,
            Func::Rsqrt => 1.0 / mu.sqrt(),
            Func::Sqrt => mu.sqrt(),
        }
    }

    /// The output where every comparison bit is 0.
    fn saturated(self) -> u64 {
        match self {
            Func::Reciprocal | Func::Rsqrt => i64::MAX as u64,
            Func::Sqrt => 0,
        }
    }
}

/// The public parameters of a gate at `f` fractional bits.
#[derive(Clone, Debug)]
pub struct Params {
    /// Comparisons per sign group: `k < kk`.
    pub kk: usize,
    /// Table scale bits.
    pub q: u32,
    /// Final truncation.
    pub s: u32,
    /// Rescaling exponent per leading-bit position (`None`: the output rounds to 0).
    coef: Vec<Option<u32>>,
    /// Whether position `k` has a half exponent (rsqrt, sqrt).
    half: Vec<bool>,
}

/// The parameters, or `None` where the gate cannot reach its accuracy at `f`.
pub fn params(func: Func, f: u32) -> Option<Params> {
    if f == 0 || f > 24 {
        return None;
    }
    let f = f as i64;
    let e2: Vec<i64> = (0..K as i64).map(|k| func.e2(k, f)).collect();
    // Relevant: y(2^k) = 2^e(k) ≥ 1/2.
    let floors: Vec<i64> = e2.iter().filter(|e| **e >= -2).map(|e| e.div_euclid(2)).collect();
    // Bits above the last relevant position + 1 are not needed: where they would be set, the
    // one-hot lands on an irrelevant position, whose rescaling coefficient 0 zeroes the output
    // (whatever the normalisation and lookup made of the then out-of-range product).
    let last = e2.iter().rposition(|e| *e >= -2)?;
    let (lo, hi) = (*floors.iter().min()?, *floors.iter().max()?);
    let q = MAX_Q.min(61 - (hi - lo));
    let s = q - lo;
    if q < MIN_Q || !(1..=62).contains(&s) {
        return None;
    }
    Some(Params {
        kk: (last + 2).min(K),
        q: q as u32,
        s: s as u32,
        coef: e2.iter().map(|e| (*e >= -2).then(|| (e.div_euclid(2) - lo) as u32)).collect(),
        half: e2.iter().map(|e| e.rem_euclid(2) == 1).collect(),
    })
}

/// A linear function of the opened comparison bits (rows `g·kk + k`), plus a constant.
struct Lin {
    coefs: Vec<u64>,
    constant: u64,
}

impl Lin {
    /// `Σ_k o_k·h(k)` with `o_k = Σ_g sign_g·(b_{g,k} − b_{g,k+1})`.
    fn onehot(groups: usize, kk: usize, signs: [u64; 2], h: impl Fn(usize) -> u64) -> Lin {
        let mut coefs = vec![0u64; groups * kk];
        for g in 0..groups {
            for k in 0..kk {
                let prev = if k == 0 { 0 } else { h(k - 1) };
                coefs[g * kk + k] = signs[g].wrapping_mul(h(k).wrapping_sub(prev));
            }
        }
        Lin { coefs, constant: 0 }
    }

    /// The function applied to rows of `n` elements; the constant only on masked values.
    fn apply(&self, rows: &[u64], n: usize, masked_value: bool) -> Vec<u64> {
        let c = if masked_value { self.constant } else { 0 };
        let mut out = vec![c; n];
        for (r, coef) in self.coefs.iter().enumerate() {
            if *coef == 0 {
                continue;
            }
            for (o, v) in out.iter_mut().zip(&rows[r * n..(r + 1) * n]) {
                *o = o.wrapping_add(coef.wrapping_mul(*v));
            }
        }
        out
    }
}

/// The normaliser, exponent, class and zero-flag functions of the bits.
struct Combos {
    norm: Lin,
    exp: Lin,
    class: Lin,
    zero: Lin,
}

fn combos(func: Func, p: &Params) -> Combos {
    let g = func.groups();
    let neg = u64::MAX;
    let kk = p.kk;
    let norm = Lin::onehot(g, kk, [1, neg], |k| 1u64 << (62 - k));
    let exp = Lin::onehot(g, kk, [1, 1], |k| p.coef[k].map_or(0, |c| 1u64 << c));
    let class = if func == Func::Reciprocal {
        // The sign: [−X ≥ 1].
        let mut coefs = vec![0u64; g * kk];
        coefs[kk] = 1;
        Lin { coefs, constant: 0 }
    } else {
        Lin::onehot(g, kk, [1, 1], |k| u64::from(p.half[k]))
    };
    let mut coefs = vec![0u64; g * kk];
    for gi in 0..g {
        coefs[gi * kk] = neg;
    }
    Combos { norm, exp, class, zero: Lin { coefs, constant: 1 } }
}

/// The tables `T0` (values) and `T1` (differences to the next entry), indexed by
/// `class·2^(m+1) + j`; entries with `j < 2^m` (the input was ≤ 0) are 0.
fn mantissa_tables(func: Func, p: &Params) -> (Vec<u64>, Vec<u64>) {
    let row = 1usize << (M_BITS + 1);
    let scale = 2f64.powi(p.q as i32);
    let mut t0 = vec![0u64; 2 * row];
    let mut t1 = vec![0u64; 2 * row];
    for c in 0..2 {
        let factor = match (func, c) {
            (Func::Reciprocal, 1) => -1.0,
            (Func::Reciprocal, _) | (_, 0) => 1.0,
            _ => std::f64::consts::SQRT_2,
        };
        let at = |j: usize| (scale * factor * func.g(j as f64 / (1u64 << M_BITS) as f64)).round() as i64 as u64;
        for j in (1usize << M_BITS)..row {
            t0[c * row + j] = at(j);
            t1[c * row + j] = at(j + 1).wrapping_sub(at(j));
        }
    }
    (t0, t1)
}

/// Party 1's words and the key bytes per element.
fn layout(func: Func, p: &Params) -> (usize, u64) {
    let cmp = func.groups() * p.kk;
    let words = 2 * cmp + 11;
    let keys = cmp as u64 * dcf_len(63)
        + trunc::key_len(T_BITS, trunc::Range::Full)
        + trunc::key_len(T_BITS - D_BITS, trunc::Range::Full)
        + table::key_bytes(B_BITS, 2) as u64
        + trunc::key_len(D_BITS, trunc::Range::Full)
        + trunc::key_len(p.s, trunc::Range::Full);
    (words, keys)
}

/// Online bytes per element and party at `f` fractional bits.
pub fn online_bytes(func: Func, f: u32) -> u64 {
    params(func, f).map_or(0, |p| 8 * (func.groups() * p.kk) as u64 + 56)
}

/// Material bytes for `n` elements at `f` fractional bits: `[party 0, party 1]`.
pub fn material_len(func: Func, n: usize, f: u32) -> [u64; 2] {
    match params(func, f) {
        Some(p) => {
            let (words, keys) = layout(func, &p);
            // The table keys come as one batch, with its header.
            let header = (table::batch_len(n, B_BITS, 2) - n * table::key_bytes(B_BITS, 2)) as u64;
            split_len(n, words, keys).map(|b| b + header)
        }
        None => [0, 0],
    }
}

fn params_of(func: Func, node: &NodeDesc) -> Result<Params> {
    params(func, node.fixed_point.frac_bits).ok_or_else(|| Error::internal("root gate parameters"))
}

/// Elementwise `a·b`.
fn mul(a: &[u64], b: &[u64]) -> Vec<u64> {
    a.iter().zip(b).map(|(x, y)| x.wrapping_mul(*y)).collect()
}

/// Elementwise `c·a`.
fn scale(c: u64, a: &[u64]) -> Vec<u64> {
    a.iter().map(|x| x.wrapping_mul(c)).collect()
}

/// The masked values the comparisons see: `±x̂ − 2^k`, rows `g·kk + k`.
fn offsets(groups: usize, kk: usize, xhat: &[u64]) -> Vec<u64> {
    let mut out = Vec::with_capacity(groups * kk * xhat.len());
    for g in 0..groups {
        for k in 0..kk {
            let p = 1u64 << k;
            out.extend(xhat.iter().map(|x| if g == 0 { x.wrapping_sub(p) } else { x.wrapping_neg().wrapping_sub(p) }));
        }
    }
    out
}

/// The cost of `func` on every element of `node`'s output.
pub fn cost(node: &NodeDesc, func: Func) -> Cost {
    let f = node.fixed_point.frac_bits;
    super::open::cost_per_element(node, ROUNDS, online_bytes(func, f), material_len(func, node.output.numel(), f))
}

/// Dealer: the material of the gate on a value with mask `r`; returns the output mask.
pub fn deal(
    func: Func,
    node: &NodeDesc,
    r: &[u64],
    rng: &mut SeedRng,
    threads: usize,
) -> Result<(Vec<Vec<u8>>, Vec<u64>)> {
    let n = r.len();
    let p = params_of(func, node)?;
    let cb = combos(func, &p);
    let mut split = Split::new(Tag::Root, rng, super::open::sizes(&cost(node, func)), threads);
    // 1. Comparisons: masks r (for X − 2^k) and −r (for −X − 2^k).
    let neg: Vec<u64> = r.iter().map(|v| v.wrapping_neg()).collect();
    let mut rr = Vec::with_capacity(func.groups() * p.kk * n);
    for g in 0..func.groups() {
        for _ in 0..p.kk {
            rr.extend_from_slice(if g == 0 { r } else { &neg });
        }
    }
    let rb = sign::deal_sign(&mut split, &rr, 64, rng)?;
    // 2. Normalisation product.
    let r_p = cb.norm.apply(&rb, n, false);
    let r_m = crate::material::draw(rng, n);
    split.share(&wire::add(&mul(r, &r_p), &r_m));
    // 3. Index and remainder.
    let r_j = trunc::deal(&mut split, &r_m, T_BITS, trunc::Range::Full, rng)?;
    let r_u = trunc::deal(&mut split, &r_m, T_BITS - D_BITS, trunc::Range::Full, rng)?;
    let r_d: Vec<u64> = r_u.iter().zip(&r_j).map(|(u, j)| u.wrapping_sub(j.wrapping_shl(D_BITS))).collect();
    // 4. Lookup.
    let r_c = cb.class.apply(&rb, n, false);
    let r_z = crate::material::draw(rng, n);
    split.share(&r_z);
    let low = (1u64 << B_BITS) - 1;
    let alphas: Vec<u64> =
        r_c.iter().zip(&r_j).map(|(c, j)| c.wrapping_shl(M_BITS + 1).wrapping_add(*j) & low).collect();
    let betas: Vec<u64> = r_d.iter().flat_map(|d| [1, *d]).collect();
    split.table_keys(&alphas, &betas, B_BITS, 2, rng)?;
    // 5. R = round(z / 2^d).
    let r_r = trunc::deal(&mut split, &r_z, D_BITS, trunc::Range::Full, rng)?;
    // 6. Rescaling product.
    let r_e = cb.exp.apply(&rb, n, false);
    let r_w = crate::material::draw(rng, n);
    split.share(&wire::add(&mul(&r_r, &r_e), &r_w));
    // 7. Final truncation, plus the saturated value where every bit is 0.
    let r_y = trunc::deal(&mut split, &r_w, p.s, trunc::Range::Full, rng)?;
    let r_zero = cb.zero.apply(&rb, n, false);
    Ok((split.finish(), wire::add(&r_y, &scale(func.saturated(), &r_zero))))
}

/// One party's material, read in the order [`deal`] wrote it.
struct Material {
    c_m: Vec<u64>,
    tj: trunc::TruncShares,
    tu: trunc::TruncShares,
    r_z: Vec<u64>,
    keys: KeptTable,
    tr: trunc::TruncShares,
    c_w: Vec<u64>,
    ty: trunc::TruncShares,
}

enum State {
    Start,
    Bits,
    Normalised,
    Split,
    Looked,
    Product,
    Rescaled,
    Final,
}

/// Party side of the gate.
pub struct RootEval {
    me: PartyId,
    node: NodeDesc,
    func: Func,
    params: Params,
    combos: Combos,
    material: Vec<u8>,
    accel: Accel,
    xhat: Vec<u64>,
    xshare: Vec<u64>,
    state: State,
    mine: Vec<u64>,
    m: Option<Material>,
    bhat: Vec<u64>,
    bshare: Vec<u64>,
}

impl RootEval {
    /// Prepares the gate on input `x` (masked value and this party's mask share).
    pub fn new(
        func: Func,
        node: &NodeDesc,
        me: PartyId,
        xhat: Vec<u64>,
        xshare: Vec<u64>,
        material: Vec<u8>,
        accel: Accel,
    ) -> Result<Self> {
        let params = params_of(func, node)?;
        let combos = combos(func, &params);
        Ok(RootEval {
            me,
            node: node.clone(),
            func,
            params,
            combos,
            material,
            accel,
            xhat,
            xshare,
            state: State::Start,
            mine: vec![],
            m: None,
            bhat: vec![],
            bshare: vec![],
        })
    }

    fn exchange(&mut self, mine: Vec<u64>) -> Step {
        self.mine = mine;
        super::open::exchange(self.me, &self.mine)
    }

    fn material(&self) -> Result<&Material> {
        self.m.as_ref().ok_or_else(|| Error::internal("root gate material"))
    }

    /// This party's share of `x·y + r_out` from masked `x̂`, `ŷ`, mask shares and `[r_x·r_y + r_out]`.
    fn product(&self, x: (&[u64], &[u64]), y: (&[u64], &[u64]), c: &[u64]) -> Vec<u64> {
        let own = u64::from(self.me.0 == 0);
        (0..c.len())
            .map(|i| {
                let (xh, xs, yh, ys) = (x.0[i], x.1[i], y.0[i], y.1[i]);
                (own.wrapping_mul(xh).wrapping_sub(xs))
                    .wrapping_mul(yh)
                    .wrapping_sub(xh.wrapping_mul(ys))
                    .wrapping_add(c[i])
            })
            .collect()
    }
}

impl NodeEval for RootEval {
    fn step(&mut self, inbox: Vec<Message>) -> Result<Step> {
        let n = self.xhat.len();
        let party = self.me.0;
        let recv = |what: &str, mine: &[u64]| super::open::reconstruct(inbox, mine, what);
        match self.state {
            State::Start => {
                // Not shared: the keys kept for later rounds are copied out, so the comparison
                // keys (most of the material) are freed after this round.
                let material = std::mem::take(&mut self.material);
                let mut sh = Shares::new(&material, Tag::Root, party)?.with_accel(self.accel.clone());
                let dhat = offsets(self.func.groups(), self.params.kk, &self.xhat);
                let (mine, bshare) = sign::sign_share(party, &dhat, 0, 1, 64, &mut sh)?;
                self.bshare = bshare;
                let c_m = sh.share(n, "normalisation correlation")?;
                let tj = trunc::read(&mut sh, n, T_BITS, trunc::Range::Full)?;
                let tu = trunc::read(&mut sh, n, T_BITS - D_BITS, trunc::Range::Full)?;
                let r_z = sh.share(n, "lookup output mask")?;
                let keys = sh.kept_table_keys(n, B_BITS, 2, "lookup keys")?;
                let tr = trunc::read(&mut sh, n, D_BITS, trunc::Range::Full)?;
                let c_w = sh.share(n, "rescaling correlation")?;
                let ty = trunc::read(&mut sh, n, self.params.s, trunc::Range::Full)?;
                sh.finish()?;
                self.m = Some(Material { c_m, tj, tu, r_z, keys, tr, c_w, ty });
                self.state = State::Bits;
                Ok(self.exchange(mine))
            }
            State::Bits => {
                self.bhat = recv("leading-bit comparisons", &self.mine)?;
                let phat = self.combos.norm.apply(&self.bhat, n, true);
                let pshare = self.combos.norm.apply(&self.bshare, n, false);
                let m = self.material()?;
                let mine = self.product((&self.xhat, &self.xshare), (&phat, &pshare), &m.c_m);
                self.state = State::Normalised;
                Ok(self.exchange(mine))
            }
            State::Normalised => {
                let mhat = recv("normalised input", &self.mine)?;
                let m = self.material()?;
                let mut mine = trunc::share_with(party, &mhat, T_BITS, &m.tj, false)?;
                mine.extend(trunc::share_with(party, &mhat, T_BITS - D_BITS, &m.tu, false)?);
                self.state = State::Split;
                Ok(self.exchange(mine))
            }
            State::Split => {
                let ju = recv("table index", &self.mine)?;
                let (jhat, uhat) = ju.split_at(n);
                let chat = self.combos.class.apply(&self.bhat, n, true);
                let m = self.material()?;
                let (t0, t1) = mantissa_tables(self.func, &self.params);
                let (t0, t1) = (tables::reversed_doubled(&t0), tables::reversed_doubled(&t1));
                let offsets: Vec<usize> = (0..n)
                    .map(|i| tables::offset(chat[i].wrapping_shl(M_BITS + 1).wrapping_add(jhat[i]), B_BITS))
                    .collect();
                // (table, payload word): T0·1, T1·1, T1·r_δ; the share of T0·2^d + T1·δ.
                let pairs = [(0, 0), (1, 0), (1, 1)];
                let keys = m.keys.keys()?;
                let sums =
                    tables::rotated_sums(party as u8, &keys, &[&t0, &t1], &pairs, &offsets, self.accel.threads())?;
                let mine: Vec<u64> = (0..n)
                    .map(|i| {
                        let dhat = uhat[i].wrapping_sub(jhat[i].wrapping_shl(D_BITS));
                        let [a0, a1, a2] = <[u64; 3]>::try_from(&sums[3 * i..3 * i + 3]).unwrap_or_default();
                        a0.wrapping_shl(D_BITS)
                            .wrapping_add(a1.wrapping_mul(dhat))
                            .wrapping_sub(a2)
                            .wrapping_add(m.r_z[i])
                    })
                    .collect();
                self.state = State::Looked;
                Ok(self.exchange(mine))
            }
            State::Looked => {
                let zhat = recv("interpolated mantissa", &self.mine)?;
                let m = self.material()?;
                let mine = trunc::share(party, &zhat, D_BITS, &m.tr)?;
                self.state = State::Product;
                Ok(self.exchange(mine))
            }
            State::Product => {
                let rhat = recv("mantissa", &self.mine)?;
                let ehat = self.combos.exp.apply(&self.bhat, n, true);
                let eshare = self.combos.exp.apply(&self.bshare, n, false);
                let m = self.material()?;
                let mine = self.product((&rhat, &m.tr.r_out), (&ehat, &eshare), &m.c_w);
                self.state = State::Rescaled;
                Ok(self.exchange(mine))
            }
            State::Rescaled => {
                let what = recv("rescaled value", &self.mine)?;
                let m = self.material()?;
                let mine = trunc::share(party, &what, self.params.s, &m.ty)?;
                self.state = State::Final;
                Ok(self.exchange(mine))
            }
            State::Final => {
                let yhat = recv("function value", &self.mine)?;
                let m = self.material()?;
                let v = self.func.saturated();
                let zhat = self.combos.zero.apply(&self.bhat, n, true);
                let zshare = self.combos.zero.apply(&self.bshare, n, false);
                let value = wire::add(&yhat, &scale(v, &zhat));
                let share = wire::add(&m.ty.r_out, &scale(v, &zshare));
                let out = wire::Masked { shape: self.node.output.shape.clone(), dtype: DType::Fixed, value, share };
                Ok(Step::Done(NodeValue::Wire(out.into_wire())))
            }
        }
    }
}
