//! Reciprocal, reciprocal square root and square root: `reciprocal`, `rsqrt`, `sqrt` by
//! exact normalisation, a mantissa table with interpolation, and an exact rescaling by the
//! secret exponent.
//!
//! With `X` the input word (`x·2^f`), `L` its leading-bit position and `μ = X / 2^L ∈ [1, 2)`,
//! each function is `y = G(μ) · 2^(e(L))` in words: reciprocal `μ^-1·2^(2f−L)`, rsqrt
//! `μ^(-1/2)·2^(1.5f−L/2)`, sqrt `μ^(1/2)·2^((f+L)/2)`. Seven rounds:
//! 1. **Leading bit.** `b_k = [X ≥ 2^k]` for `k < kk`, all from one half-tree key evaluated at
//!    `X − 2^k` (a public offset keeps the mask, see [`super::thresholds`]), each bit opened
//!    under its own random bit `ρ_k`: one round of `kk` bits. `kk` = 2 + the last position whose output can reach half an ulp (capped at 62):
//!    at `f = 16`, 35 for reciprocal, 52 for rsqrt, 62 for sqrt; a leading bit above lands on
//!    position `kk − 1`, whose rescaling coefficient is 0. For reciprocal also `[−X ≥ 2^k] = 1 − [X ≥ 1 − 2^k]`
//!    (`2·kk` points of the same key), so negative inputs are handled through `|X|` and the
//!    sign `[X ≤ −1]`. The one-hot `o_k = b_k − b_{k+1}` and every quantity below that is
//!    `Σ_k o_k·h(k)` for a public `h` is a *linear* function of the bits, whose shares are
//!    linear in the shares of `ρ_k` once `b̂_k` is open; a product of such a quantity with a
//!    masked value needs only the dealt shares of `ρ_k·r` (no multiplication of secrets).
//! 2. **Normalise** exactly: `M = X · Σ_k ±o_k·2^(61−k) = |X|·2^(61−L) ∈ [2^61, 2^62)` from the
//!    shares of `ρ_k·r` (`r` the mask of `X`), opened; the table's class bit is opened in the
//!    same round under a mask of its own.
//! 3. **Split** `M` by two exact floor truncations (DCF, one round): the table index
//!    `j = ⌊M / 2^(61−m)⌋ ∈ [2^m, 2^(m+1))` and `u = ⌊M / 2^(61−m−d)⌋`, so the remainder is
//!    `δ = u − j·2^d ∈ [0, 2^d)` (`m` = [`M_BITS`], `d` = [`D_BITS`]). `M` below `2^62` lets
//!    both use the truncations' half range (no 64-bit DCF, see [`super::trunc`]), and so does
//!    step 5 (`|z| < 2^(Q+d+1) ≤ 2^61`); step 7, whose product may come within `2^(S−1)` of
//!    `2^62`, keeps the full range.
//! 4. **Look up** `T0` and the slope `T1` at the secret index `class·2^(m+1) + j` with one
//!    table key whose payload is `(1, r_δ)`, so `T1·δ` needs no product (see [`super::tables`]), open
//!    `z = T0·2^d + T1·δ ≈ 2^(Q+d)·G(μ)·2^φ`. The class bit is the sign for reciprocal and the
//!    parity of `L`'s half exponent for rsqrt and sqrt (`φ = 1/2`: the table row holds `√2·G`).
//! 5. **Truncate** `z` by `d` (exact, rounding): `R ≈ 2^Q·G(μ)·2^φ`.
//! 6. **Rescale**: `R · E` with `E = Σ_k o_k·2^(c_k)`, `c_k = ⌊e(k)⌋ − min ⌊e⌋` (from the
//!    shares of `ρ_k·r_R`, `r_R` the mask of `R`; one opening), exponents `k` whose output is below half an ulp for every
//!    `X` in `[2^k, 2^(k+1))` get `c_k`'s coefficient 0.
//! 7. **Truncate** by `S = Q − min ⌊e⌋` (exact, rounding half up), adding
//!    `V·(1 − b_0)` to the opened value: the saturated value `ref` gives where all bits are zero (`X ≤ 0`;
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
//! Costs per element: 7 rounds; online bytes `g·kk/8 + 64` per party (`g` = 2 for reciprocal,
//! else 1; at `f = 16`: reciprocal 73, rsqrt 71, sqrt 72); material in [`material_len`]: one
//! 928-byte half-tree key, three words and a bit per comparison, a 12-bit table key and the
//! four truncations' DCF keys, three of them in the half range: at `f = 16` about 7.5 KiB per
//! element for party 1 and 6 KiB for party 0 (it was 90 to 117 KiB with one DCF per
//! comparison, and the truncations all in the full range).

use super::{tables, thresholds, trunc};
use crate::accel::Accel;
use crate::fss::SeedRng;
use crate::material::{KeptTable, Shares, Split, Tag, draw, split_len, table_len};
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
const T_BITS: u32 = 61 - M_BITS;
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

    /// The function applied to rows of `n` elements, its constant added where `with_constant`
    /// (party 0's share of the function of shared bits).
    fn apply(&self, rows: &[u64], n: usize, with_constant: bool) -> Vec<u64> {
        let c = if with_constant { self.constant } else { 0 };
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
    let norm = Lin::onehot(g, kk, [1, neg], |k| 1u64 << (61 - k));
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

/// The truncations' bits and ranges: the table index, the remainder, the mantissa, the output
/// (see the module docs).
fn truncations(p: &Params) -> [(u32, trunc::Range); 4] {
    let half = trunc::Range::Half;
    [(T_BITS, half), (T_BITS - D_BITS, half), (D_BITS, half), (p.s, trunc::Range::Full)]
}

/// Online bytes each party sends for `n` elements at `f` fractional bits: the comparison
/// bits, then one word per round (two in the second, the normalised value and the class, and
/// two in the third, the index and the remainder).
pub fn online_bytes(func: Func, n: usize, f: u32) -> u64 {
    params(func, f).map_or(0, |p| thresholds::online_len(n, func.groups() * p.kk) + 64 * n as u64)
}

/// Material bytes for `n` elements at `f` fractional bits: `[party 0, party 1]`.
pub fn material_len(func: Func, n: usize, f: u32) -> [u64; 2] {
    let Some(p) = params(func, f) else { return [0, 0] };
    // The comparisons with `ρ·r` and `ρ·r_R`; the class, normalisation, lookup and rescaling
    // masks; the truncations (words and DCF keys); the table keys.
    let [c0, c1] = thresholds::material_len(n, func.groups() * p.kk, 2, 64);
    let truncs: usize = truncations(&p).iter().map(|(b, r)| trunc::words(*b, *r)).sum();
    let keys: u64 = truncations(&p).iter().map(|(b, r)| trunc::key_len(*b, *r)).sum();
    let [s0, s1] = split_len(n, 4 + truncs, keys);
    let table = table_len(n, B_BITS, 2);
    [s0 + table + c0, s1 + table + c1]
}

fn params_of(func: Func, node: &NodeDesc) -> Result<Params> {
    params(func, node.fixed_point.frac_bits).ok_or_else(|| Error::internal("root gate parameters"))
}

/// Elementwise `c·a`.
fn scale(c: u64, a: &[u64]) -> Vec<u64> {
    a.iter().map(|x| x.wrapping_mul(c)).collect()
}

/// The comparisons' thresholds, rows `g·kk + k`: `2^k` (`[X ≥ 2^k]`), and for the second group
/// `1 − 2^k` (`[X ≥ 1 − 2^k]`, whose complement is `[−X ≥ 2^k]`: see [`flip_negated`]).
fn thresholds_of(groups: usize, kk: usize) -> Vec<u64> {
    (0..groups).flat_map(|g| (0..kk).map(move |k| if g == 0 { 1u64 << k } else { 1u64.wrapping_sub(1 << k) })).collect()
}

/// Turns the opened bits of the second group's rows into their complements: with `b̂` flipped,
/// `b̂ + (1 − 2b̂)·ρ` is `1 − b`, so every share formula of [`thresholds::Masks`] then gives
/// `[−X ≥ 2^k]`.
fn flip_negated(bhat: &mut [u8], groups: usize, kk: usize, n: usize) {
    if groups > 1 {
        for b in &mut bhat[kk * n..] {
            *b ^= 1;
        }
    }
}

/// The cost of `func` on every element of `node`'s output.
pub fn cost(node: &NodeDesc, func: Func) -> Cost {
    let f = node.fixed_point.frac_bits;
    let n = node.output.numel();
    let mut c = super::open::cost_per_element(node, ROUNDS, 0, material_len(func, n, f));
    c.online_bytes = vec![online_bytes(func, n, f); 2];
    c
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
    let mut split = Split::new(Tag::Root, rng, super::open::sizes(&cost(node, func)), threads);
    // 1. Comparisons, with ρ·r for the normalisation product.
    let rhos = thresholds::deal(&mut split, r, func.groups() * p.kk, &[r], 64, rng)?;
    // 2. The class's and the normalised value's masks.
    let r_c = draw(rng, n);
    split.share(&r_c);
    let r_m = draw(rng, n);
    split.share(&r_m);
    // 3. Index and remainder.
    let r_j = trunc::deal(&mut split, &r_m, T_BITS, trunc::Range::Half, rng)?;
    let r_u = trunc::deal(&mut split, &r_m, T_BITS - D_BITS, trunc::Range::Half, rng)?;
    let r_d: Vec<u64> = r_u.iter().zip(&r_j).map(|(u, j)| u.wrapping_sub(j.wrapping_shl(D_BITS))).collect();
    // 4. Lookup.
    let r_z = draw(rng, n);
    split.share(&r_z);
    let low = (1u64 << B_BITS) - 1;
    let alphas: Vec<u64> =
        r_c.iter().zip(&r_j).map(|(c, j)| c.wrapping_shl(M_BITS + 1).wrapping_add(*j) & low).collect();
    let betas: Vec<u64> = r_d.iter().flat_map(|d| [1, *d]).collect();
    split.table_keys(&alphas, &betas, B_BITS, 2, rng)?;
    // 5. R = round(z / 2^d).
    let r_r = trunc::deal(&mut split, &r_z, D_BITS, trunc::Range::Half, rng)?;
    // 6. Rescaling product: ρ·r_R.
    thresholds::deal_products(&mut split, &rhos, &r_r);
    let r_w = draw(rng, n);
    split.share(&r_w);
    // 7. Final truncation (the saturated value is added to what it opens).
    let r_y = trunc::deal(&mut split, &r_w, p.s, trunc::Range::Full, rng)?;
    Ok((split.finish(), r_y))
}

/// One party's material, read in the order [`deal`] wrote it.
struct Material {
    /// Shares of each comparison's ρ, ρ·r and ρ·r_R.
    masks: thresholds::Masks,
    r_c: Vec<u64>,
    r_m: Vec<u64>,
    tj: trunc::TruncShares,
    tu: trunc::TruncShares,
    r_z: Vec<u64>,
    keys: KeptTable,
    tr: trunc::TruncShares,
    r_w: Vec<u64>,
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
    /// This party's shares of the masked comparison bits, then the opened bits (round 1).
    bhat: Vec<u8>,
    /// This party's shares of the comparison bits.
    bshare: Vec<u64>,
    /// The opened class.
    chat: Vec<u64>,
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
            chat: vec![],
        })
    }

    fn exchange(&mut self, mine: Vec<u64>) -> Step {
        self.mine = mine;
        super::open::exchange(self.me, &self.mine)
    }

    fn material(&self) -> Result<&Material> {
        self.m.as_ref().ok_or_else(|| Error::internal("root gate material"))
    }

    /// This party's share of `Y·Lin(b) + r_out` for a masked `Y` (public `ŷ`, this party's mask
    /// share `[r_Y]`), from its shares of `Lin(b)` and of `r_Y·Lin(b)`.
    fn product(yhat: &[u64], lin: &[u64], masked_lin: &[u64], r_out: &[u64]) -> Vec<u64> {
        (0..yhat.len())
            .map(|i| yhat[i].wrapping_mul(lin[i]).wrapping_sub(masked_lin[i]).wrapping_add(r_out[i]))
            .collect()
    }

    /// Round 1: reads the material and evaluates the comparisons; returns this party's shares
    /// of the masked bits.
    fn compare(&mut self) -> Result<Vec<u8>> {
        let n = self.xhat.len();
        let party = self.me.0;
        // Not shared: the keys kept for later rounds are copied out, so the comparison key and
        // the truncations' keys read now are freed after this round.
        let material = std::mem::take(&mut self.material);
        let mut sh = Shares::new(&material, Tag::Root, party)?.with_accel(self.accel.clone());
        let (groups, kk) = (self.func.groups(), self.params.kk);
        let (mut masks, bits) = thresholds::evaluate(&mut sh, party, &self.xhat, &thresholds_of(groups, kk), 1, 64)?;
        let r_c = sh.share(n, "class mask")?;
        let r_m = sh.share(n, "normalisation mask")?;
        let tj = trunc::read(&mut sh, n, T_BITS, trunc::Range::Half)?;
        let tu = trunc::read(&mut sh, n, T_BITS - D_BITS, trunc::Range::Half)?;
        let r_z = sh.share(n, "lookup output mask")?;
        let keys = sh.kept_table_keys(n, B_BITS, 2, "lookup keys")?;
        let tr = trunc::read(&mut sh, n, D_BITS, trunc::Range::Half)?;
        masks.read_products(&mut sh, n)?;
        let r_w = sh.share(n, "rescaling mask")?;
        let ty = trunc::read(&mut sh, n, self.params.s, trunc::Range::Full)?;
        sh.finish()?;
        self.m = Some(Material { masks, r_c, r_m, tj, tu, r_z, keys, tr, r_w, ty });
        Ok(bits)
    }
}

impl NodeEval for RootEval {
    fn step(&mut self, inbox: Vec<Message>) -> Result<Step> {
        let n = self.xhat.len();
        let party = self.me.0;
        let own = party == 0;
        match self.state {
            State::Start => {
                self.bhat = self.compare()?;
                self.state = State::Bits;
                Ok(super::open::exchange_bits(self.me, &self.bhat))
            }
            State::Bits => {
                let theirs = super::open::receive_bits(inbox, self.bhat.len(), "leading-bit comparisons")?;
                for (b, t) in self.bhat.iter_mut().zip(&theirs) {
                    *b ^= t;
                }
                flip_negated(&mut self.bhat, self.func.groups(), self.params.kk, n);
                let m = self.m.as_ref().ok_or_else(|| Error::internal("root gate material"))?;
                self.bshare = m.masks.bits(party, &self.bhat);
                let br = m.masks.products(0, &self.bhat, &self.xshare);
                let pshare = self.combos.norm.apply(&self.bshare, n, own);
                let rp = self.combos.norm.apply(&br, n, false);
                let mut mine = Self::product(&self.xhat, &pshare, &rp, &m.r_m);
                mine.extend(wire::add(&self.combos.class.apply(&self.bshare, n, own), &m.r_c));
                self.state = State::Normalised;
                Ok(self.exchange(mine))
            }
            State::Normalised => {
                let opened = super::open::reconstruct(inbox, &self.mine, "normalised input")?;
                let (mhat, chat) = opened.split_at(n);
                self.chat = chat.to_vec();
                let m = self.material()?;
                let mut mine = trunc::share_with(party, mhat, T_BITS, &m.tj, false)?;
                mine.extend(trunc::share_with(party, mhat, T_BITS - D_BITS, &m.tu, false)?);
                self.state = State::Split;
                Ok(self.exchange(mine))
            }
            State::Split => {
                let ju = super::open::reconstruct(inbox, &self.mine, "table index")?;
                let (jhat, uhat) = ju.split_at(n);
                let m = self.material()?;
                let (t0, t1) = mantissa_tables(self.func, &self.params);
                let (t0, t1) = (tables::reversed_doubled(&t0), tables::reversed_doubled(&t1));
                let offsets: Vec<usize> = (0..n)
                    .map(|i| tables::offset(self.chat[i].wrapping_shl(M_BITS + 1).wrapping_add(jhat[i]), B_BITS))
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
                let zhat = super::open::reconstruct(inbox, &self.mine, "interpolated mantissa")?;
                let m = self.material()?;
                let mine = trunc::share(party, &zhat, D_BITS, &m.tr)?;
                self.state = State::Product;
                Ok(self.exchange(mine))
            }
            State::Product => {
                let rhat = super::open::reconstruct(inbox, &self.mine, "mantissa")?;
                let m = self.material()?;
                let eshare = self.combos.exp.apply(&self.bshare, n, own);
                let re = self.combos.exp.apply(&m.masks.products(1, &self.bhat, &m.tr.r_out), n, false);
                let mine = Self::product(&rhat, &eshare, &re, &m.r_w);
                self.state = State::Rescaled;
                Ok(self.exchange(mine))
            }
            State::Rescaled => {
                let what = super::open::reconstruct(inbox, &self.mine, "rescaled value")?;
                let m = self.material()?;
                // The saturated value where every bit is 0 joins the opened output.
                let zero = self.combos.zero.apply(&self.bshare, n, own);
                let mine =
                    wire::add(&trunc::share(party, &what, self.params.s, &m.ty)?, &scale(self.func.saturated(), &zero));
                self.state = State::Final;
                Ok(self.exchange(mine))
            }
            State::Final => {
                let value = super::open::reconstruct(inbox, &self.mine, "function value")?;
                let m = self.m.take().ok_or_else(|| Error::internal("root gate material"))?;
                let out = wire::Masked {
                    shape: self.node.output.shape.clone(),
                    dtype: DType::Fixed,
                    value,
                    share: m.ty.r_out,
                };
                Ok(Step::Done(NodeValue::Wire(out.into_wire())))
            }
        }
    }
}
