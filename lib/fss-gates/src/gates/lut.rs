//! Smooth functions by table lookup on a small domain: exp, sigmoid, tanh, gelu.
//!
//! The input is clipped to the table's domain (sigmoid, tanh and gelu: its magnitude `|x|`, see
//! "Folding" below), split into a table index `j` and a remainder, and the function is a
//! quadratic piece per index, evaluated at the remainder without a multiplication round:
//! Sigma's lookup on a reduced domain (Gupta et al., "SIGMA: Secure GPT Inference with Function
//! Secret Sharing", PETS 2024, Section 4: a DPF over the table's domain, expanded whole and
//! dotted with the table rotated by the public masked index), with the DPF's payload extended
//! to the powers of the remainder's mask so the pieces can be quadratic instead of Sigma's
//! constant ones, or, where a round is cheap, with XOR shares of a one-hot vector instead of
//! the key (see "Reading the table" below). Five rounds (six with one-hot shares):
//!
//! 1. **Compare** (one bit per comparison and element): exp `[x ≥ lo]` (see below), the others
//!    `[x ≥ −hi]`, `[x ≥ hi]` and `[x ≥ 0]`, as in the two-round ReLU of [`super::select`], all
//!    from **one** half-tree key: the comparisons differ only in a public offset of the same
//!    masked value, so the key for the mask `r` of `x` is evaluated at one or three points (in
//!    one pass that walks the points' common high levels once, see
//!    [`crate::fss::halftree::eval_points_par`]); each comparison is opened under its own
//!    random bit `ρ`.
//! 2. **Clip**, linear in the shares once the bits are open, opened: exp
//!    `w = relu(x − lo) = clip(x) − lo`; the others `w = min(|x|, hi) =
//!    2·relu(x) − relu(x − hi) − relu(x + hi) + hi` (gelu also `relu(x)`).
//! 3. **Split** `w` exactly (truncation rounding down) into `j = ⌊w / 2^t⌋` (`t = f − p`, the
//!    step `h = 2^-p`) and the remainder `δ = ⌊w / 2^s⌋ − j·2^q ∈ [0, 2^q)` in units of
//!    `2^(s−f)` (`s = t − q`; `q = t` unless the products below would leave the truncation's
//!    range, then a second truncation by `s` in the same round).
//! 4. **Look up**: with `u = δ / 2^q ∈ [0, 1)` the piece is `c₀ + c₁u + c₂u²` through the
//!    function's values at `u = 0, ½, 1` (`ref`'s own values, so the table is exact at those
//!    points). The dealer's table key (see [`crate::fss::table`]) at the mask of `j` carries
//!    `(1, r_δ, r_δ²)`; since `δ = δ̂ − r_δ` with `δ̂` public,
//!    `z = c₀[j]·2^(2q) + c₁[j]·2^q·δ + c₂[j]·δ²` is a combination of the six dot products of the
//!    three expanded payload words with the three coefficient tables. `z + r_z` is opened.
//!    With one-hot shares this step takes two rounds (below).
//! 5. **Truncate** `z` by `2q` (exact, rounding to nearest).
//!
//! # Reading the table: a key, or one-hot shares and a round
//!
//! The table key's expansion, `3·2^(m−1)` AES blocks per element and party for its three
//! payload words (192 of a 7-bit key's 222), was most of a lookup's time. On a table this
//! small the dealer can instead XOR-share the one-hot vector `e_α` at `α = r_j mod 2^m` itself
//! (party 0's share from its seed, 16 bytes to party 1 for 128 points; see
//! [`crate::fss::table::onehot`], where Sigma's code does the same on small domains). Summing
//! the rotated tables over the points set in its share, each party gets a share of
//! `A_k = σ·c_k[j]` for each coefficient table, with no AES; `σ = ±1` is a sign only the
//! dealer knows (it would tell on which half of party 0's share `α` lies). The parties form
//! `P = A₀·2^(2q) + A₁·2^q·δ̂ + A₂·δ̂²`, `Q = A₁·2^q + 2·A₂·δ̂` and `R = A₂`, so that
//! `σ·z = P − r_δ·Q + r_δ²·R`, and open them under the dealer's masks `m_P`, `m_Q`, `m_R`.
//! With `g = s·σ` (`s` the folded lookup's payload sign `(−1)^ρ`, 1 otherwise) the dealer's
//! shares of `g`, `g·r_δ`, `g·r_δ²` and `K = g·(m_P − r_δ·m_Q + r_δ²·m_R)` then give
//! `g·P̂ − g·r_δ·Q̂ + g·r_δ²·R̂ − K = s·z` locally, and step 4 goes on as with a key. Everything
//! opened is masked by a uniform word drawn for it alone; the arithmetic is exact in the ring,
//! so the results are bit for bit those of the key.
//!
//! The trade is one round and three opened words per element for the key's expansion and
//! 204 to 276 bytes of material per party (party 1 gets 72 bytes for a 7-bit table, party 0
//! none, where each got the 276-byte key: 72 bytes in all against 552). The planner takes the
//! form that [`super::select::seconds`] estimates faster on the plan's network profile:
//! one-hot shares from about fifty elements a node (exp) to a hundred (the folded tables) on
//! `local`, about a thousand on `lan`, and about twenty thousand on `wan`, where a round costs
//! 80 ms but the key's bytes cost more at 400 Mbit/s.
//!
//! # Folding onto `|x|`
//!
//! sigmoid and tanh are odd about their value at 0 (`f(x) = f(0) + sign(x)·(f(|x|) − f(0))`),
//! and gelu's tabulated remainder `relu(x) − gelu(x) = |x|·Φ(−|x|)` is even (also for the tanh
//! approximation: `gelu(x) − gelu(−x) = x` for both). So their tables cover `|x| ∈ [0, H)` with
//! 2^7 points at the step the whole domain `[−H, H)` took with 2^8: the table key's expansion,
//! most of a lookup's evaluation, halves, for one more comparison point (gelu already had it
//! for `relu(x)`).
//!
//! The sign costs no round and no material: the dealer multiplies the table key's payload by
//! `(−1)^ρ`, `ρ` the random bit under which `[x ≥ 0]` is opened as `b̂ = [x ≥ 0] ⊕ ρ`; each
//! party multiplies its share of the looked-up `z` by the public `2b̂ − 1` before masking it,
//! and `(2b̂ − 1)·(−1)^ρ = sign(x)` (with `sign(0) = 1`). What is opened is then
//! `sign(x)·z + r_z`, masked as before; the payload's sign is hidden by the DPF key as its
//! other words are, and `ρ` is used nowhere else in the clear. sigmoid adds the public ½ to the
//! opened result.
//!
//! Without a clip (below) there is no comparison to read the sign from, and the whole table is
//! cheaper than adding one: exp, and sigmoid and tanh without a clip, use 2^8 points on
//! `[−H, H)`.
//!
//! # Domains and accuracy
//!
//! exp on `[−16, 16)` with `h = 2^-3` (2^8 points); sigmoid on `|x| ∈ [0, 16)` with `h = 2^-3`,
//! tanh and gelu (the remainder `relu(x) − gelu(x)`, subtracted from `relu(x)`, so gelu stays
//! exact for large `x`) on `|x| ∈ [0, 8)` with `h = 2^-4` (2^7 points each; without a clip
//! sigmoid and tanh take 2^8 on `[−16, 16)` and `[−8, 8)`). Interpolating at three points errs by at most
//! `h³·max|f'''| / (72√3) ≈ 0.008·h³·max|f'''|` on a piece: sigmoid 0.13 ulp, tanh 0.26 ulp,
//! gelu 0.1 ulp at `f = 16`, exp `1.8·10^-5·|y|`; the rounded table values add 0.63 ulp (the
//! interpolation weights sum to at most 1.25 in absolute value) and the last truncation half an
//! ulp. When `q < t` (large `f`) dropping the remainder's low `s` bits adds at most
//! `max|f'|·2^(s−f)`. Outside the domain the function is held at the edge value: exp at
//! `exp(−16) ≈ 10^-7` below −16; sigmoid, tanh and gelu are within `2.6·10^-7` of their
//! asymptotes there (0.02 ulp at `f = 16`), inside `E` below.
//!
//! **exp's one-sided clip.** `exp`'s contract holds its input at most 8 (`ref` refuses more, see
//! [`mpcflow_ring::kernels::domains`]; softmax's `x − max` is at most 0 by construction), so only
//! the lower end needs a comparison: `w = relu(x + 16)`. The table's entries from 8 up to its
//! end at 16 hold `exp(8)`, so an input in `(8, 16)` still gives `exp(8)`; one at 16 or more, which
//! breaks the contract, indexes past the table and gives a wrong value, as any input outside
//! a gate's stated range does. One comparison point instead of three cuts the clip's
//! evaluation AES and its opened bits.
//!
//! **Input range.** The comparisons read `[x ≥ c]` off the top bit of `x − c + 2^63`, so they
//! need `x − c` not to wrap the ring: `|x| < 2^62` (at most 2^(62−f) in value), the range every
//! fss2pc gate assumes (products, truncations, comparisons at the default width; see the crate
//! docs). Outside it the clip, and with it the result, is wrong.
//!
//! **A narrowed clip.** Where declared ranges bound the input (the planner narrows the node's
//! `compare_bits` as for a ReLU's input), the comparisons run over `w` = `compare_bits + 1`
//! bits (at least `f + 6`: [`mpcflow_ring::kernels::domains::lookup_bits`]; `ref` enforces
//! `|x| < 2^(w−2)`) with a `(w − 1)`-bit key: at `|x| ≤ 20`, `f = 16`, 24 bits, a 17-level key of
//! 288 bytes instead of 57 levels and 928 bytes, under a third of the clip's AES work.
//!
//! **No clip.** Where that width's reach (`|x| < 2^(cb−1)`, which `ref` enforces for a lookup)
//! lies inside the table (every table covers `[lo, −lo)`, its entries past `hi` holding the
//! value at `hi`), exp, sigmoid and tanh skip the comparisons and the clip: `w = x − lo` keeps
//! the input's mask and is split at once, three rounds (five with bit borrows) and no
//! comparison material. gelu keeps its comparison for `relu(x)`.
//!
//! **The stated bound** (with `ref`'s own rounding): `|y − ref| ≤ E + max|f'|·2^(s−f) + 2` ulp,
//! `E` = 2.0·10^-6 for sigmoid, 3.9·10^-6 for tanh, 1.6·10^-6 for gelu, `1.8·10^-5·|y|` for exp
//! (`max|f'|`: 1/4, 1, 1/2 and `|y|`; `s = 0` up to `f` = 18 for exp, 22 for sigmoid, 23 for tanh
//! and gelu). The tests check it on random inputs, on a dense sweep past both ends of each
//! domain, and at `f` = 12, 16 and 24; measured on the sweep at `f = 16`: at most 1 ulp for
//! sigmoid, tanh and gelu, `1.05·|y| + 1` ulp for exp.
//!
//! # Costs per element (f = 16)
//!
//! Material (mean of the two parties; party 1 gets about 170 B more with one-hot shares, 100 B
//! with a key) with bit borrows and one-hot shares, as `mpcflow bench` measures it: exp
//! 1484 B (one 63-bit half-tree key for the comparison, 928 B; the truncations; 32 bytes of
//! one-hot share and 7 words to party 1), sigmoid 1492 B, tanh 1444 B and gelu 1448 B (the
//! same key for three comparisons, their masks, 16 bytes of share and 7 words); with a table
//! key instead, 293 bytes of key of 8 bits (exp) or 276 of 7 (the others) to each party,
//! about 250 B more; about 530 B more with DCF borrows. Evaluation per party: 57 AES blocks
//! for exp's one comparison point, about 104 for the three points of the others (about 34 of
//! the 56 walked levels are shared at 64 bits, see step 1), and the truncations'; with one-hot
//! shares three masked sums of 2^m words (eight to an instruction with AVX-512), with a table
//! key its 446 blocks and 1536 products for exp, 222 and 768 for the folded tables. Key
//! generation: 114 blocks for the half-tree key, 44 or 40 for a table key, and the
//! truncations'.

use super::trunc::{self, Borrow, Truncation};
use super::{open, tables, thresholds};
use crate::accel::Accel;
use crate::fss::SeedRng;
use crate::fss::table::TableKeys;
use crate::fss::table::onehot;
use crate::material::{KeptTable, Shares, Split, Tag, bits_len, draw, split_len, table_len};
use crate::wire;
use mpcflow_ring::kernels::eval_op;
use mpcflow_sdk::protocol::{Cost, Message, NodeDesc, NodeEval, NodeValue, Step};
use mpcflow_sdk::shape::{TensorInfo, Visibility};
use mpcflow_sdk::{DType, Error, FixedPoint, Op, PartyId, Result, Tensor};

/// Rounds of a lookup gate whose truncations learn their borrows by DCF (two more when they
/// open them as bits, see `truncations`).
pub const ROUNDS: u32 = 5;

/// Bits of the table index over the whole domain: tables of `2^M` points.
pub const M: u32 = 8;

/// Bits of a folded table's index (sigmoid, tanh and gelu on `|x|`, see the module docs): half
/// the points at the same step.
pub const M_FOLDED: u32 = M - 1;

/// Payload words of the table key: `1`, `r_δ`, `r_δ²`.
const WORDS: u32 = 3;

/// The truncations of the gate: `j` (by `t`), `k` (by `s = t − q`, when `q < t`) and the last one
/// (by `2q`). All are in the products' half range: for inputs in the gate's range (`|x| < 2^62`,
/// see the module docs) the truncated values are small (the clipped offset
/// `w ∈ [0, 2^(M−p+f))`, and the interpolated `z`, which [`split_bits`] keeps inside the half
/// range). They learn their borrows one way, the one
/// [`trunc::choose`] picks for the widest under the plan's network profile: a DCF, or a
/// half-tree bit opened in a round of its own (two rounds more, a third of the key bytes).
struct Truncs {
    j: Truncation,
    k: Option<Truncation>,
    z: Truncation,
}

fn truncations(node: &NodeDesc, func: Func) -> Truncs {
    let (t, q) = split_bits(func, node.fixed_point);
    let borrow = trunc::choose(node, 2 * q);
    let with = |bits: u32| Truncation { bits, borrow };
    Truncs { j: with(t), k: (q < t).then(|| with(t - q)), z: with(2 * q) }
}

impl Truncs {
    fn bit(&self) -> bool {
        self.z.borrow == Borrow::Bit
    }

    fn all(&self) -> impl Iterator<Item = Truncation> + '_ {
        [Some(self.j), self.k, Some(self.z)].into_iter().flatten()
    }
}

/// How the parties read the tables at the secret index `j` (see the module docs).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Read {
    /// A table key whose payload carries the remainder mask's powers: no round of its own,
    /// `W·2^(m−1)` AES blocks of expansion per element and party.
    Key,
    /// XOR shares of the one-hot vector at `j`'s mask and the dealer's sign shares: no AES but
    /// the expansion of party 0's share from its seed (one block per 128 points), party 1 gets
    /// 72 bytes per element where a 7-bit key takes 276 (party 0 none), and one round more.
    OneHot,
}

/// Shares the dealer makes for [`Read::OneHot`] beside the one-hot vector, per element: the
/// masks of `P`, `Q` and `R`, then `g`, `g·r_δ`, `g·r_δ²` and `K`.
const ONE_HOT_WORDS: usize = 7;

/// The form of the node's table read: the one [`super::select::seconds`] estimates faster on
/// the plan's network profile.
fn read_form(node: &NodeDesc, func: Func) -> Read {
    let m = index_bits(node, func);
    let seconds = |read: Read| super::select::seconds(node, &cost_of(node, func, read), read_aes(m, read));
    if seconds(Read::OneHot) < seconds(Read::Key) { Read::OneHot } else { Read::Key }
}

/// AES blocks per element of the table read (the dealer's and one party's): the table key's
/// generation and expansion (see [`crate::fss::table`]), or the seed's expansion of party 0's
/// one-hot share (two words to a block).
fn read_aes(m: u32, read: Read) -> u32 {
    match read {
        Read::Key => {
            let (e, w) = (crate::fss::table::leaf_levels(m), WORDS);
            4 * (m - e) + (w << e) + 2 * ((1 << (m - e)) - 1) + (w << m) / 2
        }
        Read::OneHot => onehot::words(m).div_ceil(2) as u32,
    }
}

/// The smallest `frac_bits` the lookup supports: the pieces' midpoints `lo + (j + ½)·h` must be
/// representable (`f > p`, the largest `p` being 4).
pub const MIN_FRAC_BITS: u32 = 5;

/// The largest `frac_bits` the lookup supports.
pub const MAX_FRAC_BITS: u32 = 24;

/// A function with its table domain.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Func {
    /// `e^x` on `[-16, 16)`, held at `exp(8)` above 8 (clipped from below only; see the module
    /// docs).
    Exp,
    /// `1 / (1 + e^-x)` on `[-16, 16)`.
    Sigmoid,
    /// `tanh(x)` on `[-8, 8)`.
    Tanh,
    /// `relu(x) − gelu(x)` on `[-8, 8)`, subtracted from `relu(x)`.
    Gelu,
}

/// Where a function's table lies.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Domain {
    /// The first point.
    lo: f64,
    /// Bits of the step: `h = 2^-p`.
    p: u32,
    /// Inputs are clipped to `[lo, hi]`.
    hi: f64,
    /// A bound on `|f|` over the domain.
    max_abs: f64,
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

    fn domain(self) -> Domain {
        match self {
            Func::Exp => Domain { lo: -16.0, p: 3, hi: mpcflow_ring::kernels::domains::EXP_MAX, max_abs: 8f64.exp() },
            Func::Sigmoid => Domain { lo: -16.0, p: 3, hi: 16.0 - 0.125, max_abs: 1.0 },
            Func::Tanh | Func::Gelu => Domain { lo: -8.0, p: 4, hi: 8.0 - 0.0625, max_abs: 1.0 },
        }
    }

    /// Comparisons of the clip: exp's is one-sided (see the module docs); the folded ones
    /// compare with `−hi`, `hi` and 0.
    fn compares(self) -> usize {
        match self {
            Func::Exp => 1,
            Func::Sigmoid | Func::Tanh | Func::Gelu => 3,
        }
    }

    /// Whether the function folds onto `|x|`: sigmoid and tanh are odd about their value at 0,
    /// gelu's tabulated remainder `relu(x) − gelu(x) = |x|·Φ(−|x|)` is even.
    fn symmetric(self) -> bool {
        self != Func::Exp
    }

    fn op(self) -> Op {
        match self {
            Func::Exp => Op::Exp,
            Func::Sigmoid => Op::Sigmoid,
            Func::Tanh => Op::Tanh,
            Func::Gelu => Op::Gelu,
        }
    }
}

/// The truncations of the split and the interpolated value's scale: `(t, q)` with `t = f − p`
/// and `q ≤ t` the largest with `1.25·(max|f|·2^f + ½)·2^(2q) + 2^(2q−1) < 2^62` (the half range:
/// the interpolation weights sum to at most 1.25 in absolute value, the table words are
/// rounded).
fn split_bits(func: Func, fp: FixedPoint) -> (u32, u32) {
    let d = func.domain();
    let t = fp.frac_bits - d.p;
    let fits = |q: u32| {
        let words = d.max_abs * 2f64.powi(fp.frac_bits as i32) + 0.5;
        1.25 * words * 2f64.powi(2 * q as i32) + 2f64.powi(2 * q as i32 - 1) < 2f64.powi(62)
    };
    let q = (1..=t).rev().find(|&q| fits(q)).unwrap_or(1);
    (t, q)
}

/// Whether the node's width keeps every input inside the table, so the gate needs no clip
/// (not for gelu, whose `relu(x)` needs its comparison): `ref` holds a lookup's input within the
/// reach of its `compare_bits` (`|x| < 2^(cb−1)` words, see
/// [`mpcflow_ring::kernels::domains::lookup_reach`]), and every table covers `[lo, −lo)`, its
/// entries past `hi` holding the value at `hi` as the clip would.
fn unclipped(node: &NodeDesc, func: Func) -> bool {
    let fp = node.fixed_point;
    let reach = mpcflow_ring::kernels::domains::lookup_reach(fp);
    func != Func::Gelu && reach < -func.domain().lo * fp.scale()
}

/// Whether the node's table is folded onto `|x|` (see the module docs): every symmetric
/// function that clips. Without a clip the input has no comparison to read its sign from, and
/// the whole table is cheaper than adding one.
fn folded(node: &NodeDesc, func: Func) -> bool {
    func.symmetric() && !unclipped(node, func)
}

/// Bits of the node's table index: [`M_FOLDED`] or [`M`].
fn index_bits(node: &NodeDesc, func: Func) -> u32 {
    if folded(node, func) { M_FOLDED } else { M }
}

/// The first point of the node's table: 0 when folded, the domain's `lo` otherwise.
fn first_point(node: &NodeDesc, func: Func) -> f64 {
    if folded(node, func) { 0.0 } else { func.domain().lo }
}

/// Whether the lookup's value takes the input's sign (sigmoid's and tanh's folded tables hold
/// `f(|x|) − f(0)`).
fn signed(node: &NodeDesc, func: Func) -> bool {
    folded(node, func) && func != Func::Gelu
}

/// Online bytes each party sends per element: the comparison bits, then one word per round
/// (two in the clip and split rounds for gelu's `relu(x)` and for a second split truncation);
/// without a clip only the split, the lookup and the last truncation.
fn online_bytes(node: &NodeDesc, func: Func, truncs: &Truncs, read: Read, n: usize) -> u64 {
    let clip = if unclipped(node, func) {
        0
    } else if func == Func::Gelu {
        2
    } else {
        1
    };
    let split = if truncs.k.is_some() { 2 } else { 1 };
    let borrows = if truncs.bit() { bits_len(split * n) + bits_len(n) } else { 0 };
    let bits = if unclipped(node, func) { 0 } else { thresholds::online_len(n, func.compares()) };
    // The lookup opens `z` (with one-hot shares `P`, `Q` and `R` first), the truncation its
    // result.
    let lookup = if read == Read::OneHot { 4 } else { 1 };
    bits + 8 * n as u64 * (clip + split as u64 + lookup + 1) + borrows
}

/// The width of the clip's comparisons: one more than the node's (narrowed) `compare_bits`, at
/// least `f + 6` (see [`mpcflow_ring::kernels::domains::lookup_bits`], which `ref` enforces).
fn clip_bits(node: &NodeDesc) -> u32 {
    mpcflow_ring::kernels::domains::lookup_bits(node.fixed_point)
}

/// Material bytes of party 0 and party 1 for `n` elements: see [`deal`].
fn material_len(node: &NodeDesc, func: Func, n: usize, truncs: &Truncs, read: Read) -> [u64; 2] {
    // The comparisons' part; party 1's explicit shares of the clip's output mask (and
    // relu(x)'s) and of the lookup's output mask; the table keys. Without a clip, only the
    // lookup's output mask.
    let masks = if func == Func::Gelu { 3 } else { 2 };
    let (k, [c0, c1]) = match unclipped(node, func) {
        true => (1, [0, 0]),
        false => (masks, thresholds::material_len(n, func.compares(), 1, clip_bits(node))),
    };
    let [h0, h1] = split_len(n, 0, 0);
    let m = index_bits(node, func);
    let [p0, p1] = match read {
        Read::Key => split_len(n, k, 0).map(|p| p + table_len(n, m, WORDS)),
        Read::OneHot => split_len(n, k + onehot::words(m) + ONE_HOT_WORDS, 0),
    };
    // Each truncation's own part (its material less the header and seed).
    truncs.all().map(|t| t.material(n, 0)).fold([p0 + c0, p1 + c1], |[a, b], [t0, t1]| [a + t0 - h0, b + t1 - h1])
}

/// The cost of looking `func` up on every element of `node`'s output.
pub fn cost(node: &NodeDesc, func: Func) -> Cost {
    cost_of(node, func, read_form(node, func))
}

/// [`cost`] with the tables read in form `read`.
fn cost_of(node: &NodeDesc, func: Func, read: Read) -> Cost {
    let n = node.output.numel();
    let truncs = truncations(node, func);
    let dealer = material_len(node, func, n, &truncs, read);
    let bare = unclipped(node, func);
    // Without a clip the comparisons' round and the clip's are gone; one-hot shares add one.
    let rounds = ROUNDS + if truncs.bit() { 2 } else { 0 } - 2 * u32::from(bare) + u32::from(read == Read::OneHot);
    let mut c = open::cost_per_element(node, rounds, 0, dealer);
    c.online_bytes = vec![online_bytes(node, func, &truncs, read, n); 2];
    let d = func.domain();
    let step = |p: u32| format!("2^-{p}");
    let borrows = if truncs.bit() { "truncations open their borrows" } else { "truncations by DCF" };
    let clip = if bare {
        "no clip (the input's width keeps it inside the table)".to_string()
    } else if func == Func::Exp {
        format!("clip from below over {} bits in two rounds", clip_bits(node))
    } else {
        format!("|x| clipped over {} bits in two rounds", clip_bits(node))
    };
    let on = if folded(node, func) { format!("|x| in [0, {}]", d.hi) } else { format!("[{}, {}]", d.lo, d.hi) };
    let reads = match read {
        Read::Key => "read by a table key",
        Read::OneHot => "read by one-hot shares in a round more",
    };
    c.form = format!(
        "table of {} quadratic pieces on {on}, step {}, {reads}, {clip}, {borrows}",
        1u32 << index_bits(node, func),
        step(d.p)
    );
    c
}

/// The comparison offsets, encoded: exp's `lo`; the folded functions' `−hi`, `hi` and 0.
fn offsets(func: Func, fp: FixedPoint) -> Vec<u64> {
    let d = func.domain();
    match func {
        Func::Exp => vec![fp.encode(d.lo)],
        Func::Sigmoid | Func::Tanh | Func::Gelu => vec![fp.encode(-d.hi), fp.encode(d.hi), 0],
    }
}

/// Index of the comparison with 0 in [`offsets`] (folded functions): the input's sign.
const SIGN: usize = 2;

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
    let (_, q) = split_bits(func, fp);
    let truncs = truncations(node, func);
    let mut split = Split::new(Tag::Lut, rng, open::sizes(&cost(node, func)), threads);
    // Rounds 1 and 2: the comparisons (one half-tree key, ρ·r for the clip's products); the
    // clip's output masks. Without a clip, `w = x − lo` keeps the input's mask.
    let bare = unclipped(node, func);
    let (r_w, rhos) = if bare {
        (r.to_vec(), Vec::new())
    } else {
        let rhos = thresholds::deal(&mut split, r, func.compares(), &[r], clip_bits(node), rng)?;
        let r_w = draw(rng, n);
        split.share(&r_w);
        (r_w, rhos)
    };
    let r_g = if func == Func::Gelu {
        let r_g = draw(rng, n);
        split.share(&r_g);
        r_g
    } else {
        Vec::new()
    };
    // Round 3: j = ⌊w / 2^t⌋ (and ⌊w / 2^s⌋); the remainder's mask.
    let r_j = trunc::deal_product(&mut split, &r_w, truncs.j, rng)?;
    let r_k = match truncs.k {
        Some(tk) => trunc::deal_product(&mut split, &r_w, tk, rng)?,
        None => r_w,
    };
    let r_d: Vec<u64> = r_k.iter().zip(&r_j).map(|(k, j)| k.wrapping_sub(j.wrapping_shl(q))).collect();
    // Round 4: the lookup's output mask and the table keys at j's mask. A signed lookup's
    // payload carries the sign (−1)^ρ of the opened bit `[x ≥ 0] ⊕ ρ`, which the parties then
    // turn into the input's sign.
    let r_z = draw(rng, n);
    split.share(&r_z);
    let m = index_bits(node, func);
    let alphas: Vec<u64> = r_j.iter().map(|j| j & ((1 << m) - 1)).collect();
    let signs: Vec<u64> = match (signed(node, func), rhos.get(SIGN)) {
        (true, Some(rho)) => rho.iter().map(|b| 1u64.wrapping_sub(2 * b)).collect(),
        (true, None) => return Err(Error::internal("lookup sign bits")),
        (false, _) => vec![1; n],
    };
    match read_form(node, func) {
        Read::Key => {
            let betas: Vec<u64> = r_d
                .iter()
                .zip(&signs)
                .flat_map(|(d, s)| [*s, s.wrapping_mul(*d), s.wrapping_mul(d.wrapping_mul(*d))])
                .collect();
            split.table_keys(&alphas, &betas, m, WORDS, rng)?;
        }
        Read::OneHot => deal_one_hot(&mut split, &alphas, m, &signs, &r_d, rng),
    }
    // Round 5: truncate z (scale f + 2q) by 2q.
    let r_out = trunc::deal_product(&mut split, &r_z, truncs.z, rng)?;
    let r_final = if func == Func::Gelu { wire::sub(&r_g, &r_out) } else { r_out };
    Ok((split.finish(), r_final))
}

/// Dealer, [`Read::OneHot`]: the one-hot shares at `alphas` over `m` bits; the masks of the
/// opened `P`, `Q` and `R`; and with `g = s·σ` (the payload's sign `s`, the parties' sums'
/// sign `σ`) shares of `g`, `g·r_δ`, `g·r_δ²` and `K = g·(m_P − r_δ·m_Q + r_δ²·m_R)`.
fn deal_one_hot(split: &mut Split, alphas: &[u64], m: u32, signs: &[u64], r_d: &[u64], rng: &mut SeedRng) {
    let n = alphas.len();
    let at = split.one_hot(alphas, m);
    let masks = draw(rng, 3 * n);
    split.share(&masks);
    let mut unsign = vec![0u64; 4 * n];
    for i in 0..n {
        let g = signs[i].wrapping_mul(1u64.wrapping_sub(2 * at[i]));
        let (r, r2) = (r_d[i], r_d[i].wrapping_mul(r_d[i]));
        let k = masks[i].wrapping_sub(r.wrapping_mul(masks[n + i])).wrapping_add(r2.wrapping_mul(masks[2 * n + i]));
        unsign[i] = g;
        unsign[n + i] = g.wrapping_mul(r);
        unsign[2 * n + i] = g.wrapping_mul(r2);
        unsign[3 * n + i] = g.wrapping_mul(k);
    }
    split.share(&unsign);
}

/// The coefficient tables `c₀, c₁, c₂` (scale `f`) of the node's table, each reversed and
/// doubled: entry `c + x` of a table (for `x < 2^m`) is the coefficient at index
/// `(ĵ − x) mod 2^m` when `c = 2^m − 1 − (ĵ mod 2^m)`, so a rotated dot product reads a
/// contiguous run.
fn coefficients(func: Func, node: &NodeDesc) -> Result<[Vec<u64>; 3]> {
    let fp = node.fixed_point;
    let d = func.domain();
    let size = 1usize << index_bits(node, func);
    let lo = first_point(node, func);
    // The function at every half step from lo, clipped at hi (entries past it are never used).
    let halves = 2 * size + 1;
    let xs: Vec<f64> = (0..halves).map(|i| (lo + i as f64 / f64::from(1u32 << (d.p + 1))).min(d.hi)).collect();
    let x = Tensor::from_f64(DType::Fixed, vec![halves], &xs, fp).ok_or_else(|| Error::internal("table points"))?;
    let info = TensorInfo { shape: vec![halves], dtype: DType::Fixed, vis: Visibility::Public };
    let mut v = eval_op(&func.op(), &[&x], &info, fp)?.data;
    if func == Func::Gelu {
        // Tabulate relu(x) − gelu(x), which vanishes at both ends.
        v = x.data.iter().zip(&v).map(|(xw, g)| ((*xw as i64).max(0) as u64).wrapping_sub(*g)).collect();
    } else if signed(node, func) {
        // Tabulate f(|x|) − f(0): sigmoid(x) − ½ and tanh(x) are odd.
        let at_zero = if func == Func::Sigmoid { fp.encode(0.5) } else { 0 };
        v = v.iter().map(|y| y.wrapping_sub(at_zero)).collect();
    }
    let mut c = [vec![0u64; size], vec![0u64; size], vec![0u64; size]];
    for j in 0..size {
        let (v0, vm, v1) = (v[2 * j], v[2 * j + 1], v[2 * j + 2]);
        // Through (0, v0), (½, vm), (1, v1).
        c[0][j] = v0;
        c[1][j] = vm.wrapping_mul(4).wrapping_sub(v0.wrapping_mul(3)).wrapping_sub(v1);
        c[2][j] = v0.wrapping_mul(2).wrapping_add(v1.wrapping_mul(2)).wrapping_sub(vm.wrapping_mul(4));
    }
    let c = c.map(|t| tables::reversed_doubled(&t));
    Ok(c)
}

/// What a party reads the tables with in the lookup round: the coefficient tables over `m`
/// bits, the public masked index `ĵ` and remainder `δ̂` of every element, the remainder's
/// scale `q`, and up to `threads` threads.
struct TableRead<'a> {
    party: u8,
    coeffs: &'a [Vec<u64>; 3],
    m: u32,
    jhat: &'a [u64],
    dhat: &'a [u64],
    q: u32,
    threads: usize,
}

impl TableRead<'_> {
    /// Each element's offset into the tables (see [`tables::offset`]), and the tables.
    fn runs(&self) -> (Vec<usize>, Vec<&[u64]>) {
        (
            self.jhat.iter().map(|j| tables::offset(*j, self.m)).collect(),
            self.coeffs.iter().map(Vec::as_slice).collect(),
        )
    }
}

/// This party's shares of `z = c₀[j]·2^(2q) + c₁[j]·2^q·δ + c₂[j]·δ²` (times the payload's
/// sign) for every element, from its table keys (see the module docs).
fn lookup_shares(read: &TableRead<'_>, keys: &TableKeys<'_>) -> Result<Vec<u64>> {
    let (offsets, refs) = read.runs();
    let q = read.q;
    // (table, payload word): c₀·1, c₁·1, c₂·1, c₁·r_δ, c₂·r_δ, c₂·r_δ².
    let pairs = [(0, 0), (1, 0), (2, 0), (1, 1), (2, 1), (2, 2)];
    let sums = tables::rotated_sums(read.party, keys, &refs, &pairs, &offsets, read.threads)?;
    Ok(sums
        .chunks_exact(pairs.len())
        .zip(read.dhat)
        .map(|(s, &dh)| {
            let [a, b, c, d, e, f] = <[u64; 6]>::try_from(s).unwrap_or_default();
            let p = 1u64 << q;
            a.wrapping_shl(2 * q)
                .wrapping_add(b.wrapping_mul(p).wrapping_mul(dh))
                .wrapping_add(c.wrapping_mul(dh.wrapping_mul(dh)))
                .wrapping_sub(d.wrapping_mul(p))
                .wrapping_sub(e.wrapping_mul(2).wrapping_mul(dh))
                .wrapping_add(f)
        })
        .collect())
}

/// This party's shares of `P + m_P`, `Q + m_Q` and `R + m_R` for every element (three rows of
/// `n`), read with one-hot shares ([`Read::OneHot`], see the module docs): with `A_k` its share
/// of `σ·c_k[j]`, `P = A₀·2^(2q) + A₁·2^q·δ̂ + A₂·δ̂²`, `Q = A₁·2^q + 2·A₂·δ̂`, `R = A₂`.
fn one_hot_openings(read: &TableRead<'_>, oh: &OneHotShares) -> Result<Vec<u64>> {
    let (n, q, dhat) = (read.jhat.len(), read.q, read.dhat);
    let (offsets, refs) = read.runs();
    let a = tables::one_hot_sums(read.party, &oh.shares, read.m, &refs, &offsets, read.threads)?;
    if oh.masks.len() != 3 * n || a.len() != 3 * n {
        return Err(Error::internal("lookup one-hot masks"));
    }
    let p = 1u64 << q;
    let mut out = vec![0u64; 3 * n];
    for (i, (sums, &dh)) in a.chunks_exact(3).zip(dhat).enumerate() {
        let (a0, a1, a2) = (sums[0], sums[1], sums[2]);
        let big_p = a0
            .wrapping_shl(2 * q)
            .wrapping_add(a1.wrapping_mul(p).wrapping_mul(dh))
            .wrapping_add(a2.wrapping_mul(dh.wrapping_mul(dh)));
        let big_q = a1.wrapping_mul(p).wrapping_add(a2.wrapping_mul(2).wrapping_mul(dh));
        out[i] = big_p.wrapping_add(oh.masks[i]);
        out[n + i] = big_q.wrapping_add(oh.masks[n + i]);
        out[2 * n + i] = a2.wrapping_add(oh.masks[2 * n + i]);
    }
    Ok(out)
}

/// This party's share of `s·z` from the opened `P̂`, `Q̂` and `R̂` (three rows of `n`):
/// `g·P̂ − g·r_δ·Q̂ + g·r_δ²·R̂ − K = g·σ·z = s·z`.
fn unsigned_shares(oh: &OneHotShares, opened: &[u64], n: usize) -> Result<Vec<u64>> {
    if opened.len() != 3 * n || oh.unsign.len() != 4 * n {
        return Err(Error::internal("lookup one-hot openings"));
    }
    let (p, q, r) = (&opened[..n], &opened[n..2 * n], &opened[2 * n..]);
    let [g, gr, grr, k] = [0, 1, 2, 3].map(|c| &oh.unsign[c * n..(c + 1) * n]);
    Ok((0..n)
        .map(|i| {
            g[i].wrapping_mul(p[i])
                .wrapping_sub(gr[i].wrapping_mul(q[i]))
                .wrapping_add(grr[i].wrapping_mul(r[i]))
                .wrapping_sub(k[i])
        })
        .collect())
}

/// A party's material of one lookup node, read in the first round.
struct Material {
    /// Shares of each comparison's ρ and ρ·r (none without a clip).
    rho: Option<thresholds::Masks>,
    r_w: Vec<u64>,
    r_g: Vec<u64>,
    trunc_j: trunc::TruncShares,
    trunc_k: Option<trunc::TruncShares>,
    r_z: Vec<u64>,
    table: TableShares,
    trunc_z: trunc::TruncShares,
}

/// A party's material for reading the tables, in the node's [`Read`] form.
enum TableShares {
    Key(KeptTable),
    OneHot(OneHotShares),
}

/// A party's material of [`Read::OneHot`]: its one-hot shares, its shares of the masks of
/// `P`, `Q` and `R` (three rows of `n`) and of `g`, `g·r_δ`, `g·r_δ²` and `K` (four rows).
struct OneHotShares {
    shares: Vec<u64>,
    masks: Vec<u64>,
    unsign: Vec<u64>,
}

enum State {
    Compare,
    Clip,
    Split,
    /// The split's borrow bits are out (bit borrows only).
    SplitBits,
    Lookup,
    /// `P̂`, `Q̂` and `R̂` are out (one-hot shares only).
    Unsign,
    Truncate,
    /// The last truncation's borrow bits are out (bit borrows only).
    TruncateBits,
    Finish,
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
    /// This party's share of what the current round opens.
    mine: Vec<u64>,
    /// This party's shares of the masked comparison bits (round 1).
    bits: Vec<u8>,
    m: Option<Material>,
    /// The opened clip `ŵ` (and gelu's `relu(x)` after it).
    clip: Vec<u64>,
    /// The opened bits `[x ≥ 0] ⊕ ρ` of a signed lookup (see [`signed`]).
    sign_bits: Vec<u8>,
    /// The opened value being truncated (`ŵ`, then `ẑ`), while its borrow bits are out.
    zhat: Vec<u64>,
    /// This party's shares of the borrow bits that are out.
    borrow_bits: Vec<u8>,
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
            state: State::Compare,
            mine: vec![],
            bits: vec![],
            m: None,
            clip: vec![],
            sign_bits: vec![],
            zhat: vec![],
            borrow_bits: vec![],
        }
    }

    fn exchange(&mut self, mine: Vec<u64>) -> Step {
        self.mine = mine;
        open::exchange(self.me, &self.mine)
    }

    fn material(&self) -> Result<&Material> {
        self.m.as_ref().ok_or_else(|| Error::internal("lookup material"))
    }

    /// Round 1: reads the material, evaluates the half-tree key at every comparison's point
    /// and returns this party's shares of the masked bits.
    fn compare(&mut self) -> Result<Vec<u8>> {
        let n = self.xhat.len();
        let fp = self.node.fixed_point;
        let truncs = truncations(&self.node, self.func);
        let party = self.me.0;
        // Shared: the keys kept for later rounds point into it instead of being copied.
        let material = std::sync::Arc::new(crate::pool::Recycled::new(std::mem::take(&mut self.material)));
        let mut sh = Shares::shared(&material, Tag::Lut, party)?.with_accel(self.accel.clone());
        let (rho, bits, r_w) = if unclipped(&self.node, self.func) {
            (None, vec![], self.xshare.clone())
        } else {
            let (rho, bits) =
                thresholds::evaluate(&mut sh, party, &self.xhat, &offsets(self.func, fp), 1, clip_bits(&self.node))?;
            (Some(rho), bits, sh.share(n, "clip mask")?)
        };
        let r_g = if self.func == Func::Gelu { sh.share(n, "relu mask")? } else { Vec::new() };
        let trunc_j = trunc::read_product(&mut sh, n, truncs.j)?;
        let trunc_k = match truncs.k {
            Some(tk) => Some(trunc::read_product(&mut sh, n, tk)?),
            None => None,
        };
        let r_z = sh.share(n, "lookup output mask")?;
        let m = index_bits(&self.node, self.func);
        let table = match read_form(&self.node, self.func) {
            Read::Key => TableShares::Key(sh.kept_table_keys(n, m, WORDS, "lookup keys")?),
            Read::OneHot => TableShares::OneHot(OneHotShares {
                shares: sh.one_hot(n, m, "lookup one-hot shares")?,
                masks: sh.share(3 * n, "lookup masks")?,
                unsign: sh.share(4 * n, "lookup sign shares")?,
            }),
        };
        let trunc_z = trunc::read_product(&mut sh, n, truncs.z)?;
        sh.finish()?;
        self.m = Some(Material { rho, r_w, r_g, trunc_j, trunc_k, r_z, table, trunc_z });
        Ok(bits)
    }

    /// Round 2: this party's shares of the clip (and of `relu(x)`) from the opened bits.
    fn clip_shares(&mut self, bhat: &[u8]) -> Result<Vec<u64>> {
        let n = self.xhat.len();
        let fp = self.node.fixed_point;
        let own = u64::from(self.me.0 == 0);
        let offsets = offsets(self.func, fp);
        let (xhat, xshare) = (&self.xhat, &self.xshare);
        let m = self.material()?;
        // Share of b·(x − c): own·b̂·d̂ + (1 − 2b̂)·(d̂·[ρ] − [ρ·r]) − b̂·[r] (as in `select`).
        let relu = |k: usize, i: usize| {
            let b = u64::from(bhat[k * n + i]);
            let d = xhat[i].wrapping_sub(offsets[k]);
            let (rho, rho_r) = m.rho.as_ref().map_or((&[][..], &[][..]), |r| r.row(k, 0));
            own.wrapping_mul(b.wrapping_mul(d))
                .wrapping_add(1u64.wrapping_sub(2 * b).wrapping_mul(d.wrapping_mul(rho[i]).wrapping_sub(rho_r[i])))
                .wrapping_sub(b.wrapping_mul(xshare[i]))
        };
        let mut out: Vec<u64> = if self.func == Func::Exp {
            // w = relu(x − lo) = clip(x) − lo.
            (0..n).map(|i| relu(0, i).wrapping_add(m.r_w[i])).collect()
        } else {
            // w = min(|x|, hi) = 2·relu(x) − relu(x − hi) − relu(x + hi) + hi.
            let hi = own.wrapping_mul(fp.encode(self.func.domain().hi));
            (0..n)
                .map(|i| {
                    relu(SIGN, i)
                        .wrapping_mul(2)
                        .wrapping_sub(relu(1, i))
                        .wrapping_sub(relu(0, i))
                        .wrapping_add(hi)
                        .wrapping_add(m.r_w[i])
                })
                .collect()
        };
        if self.func == Func::Gelu {
            out.extend((0..n).map(|i| relu(SIGN, i).wrapping_add(m.r_g[i])));
        }
        Ok(out)
    }
}

impl LutEval {
    /// The split's truncations of `ŵ`: this party's shares of `j` (and `k`), to open, or with
    /// bit borrows its shares of the borrow bits first.
    fn split_clip(&mut self, what: Vec<u64>) -> Result<Step> {
        let (t, q) = split_bits(self.func, self.node.fixed_point);
        let m = self.material()?;
        if m.trunc_j.borrows_a_bit() {
            let mut bits = trunc::borrow_bits_with(&what, t, &m.trunc_j, false)?;
            if let Some(tk) = &m.trunc_k {
                bits.extend(trunc::borrow_bits_with(&what, t - q, tk, false)?);
            }
            self.zhat = what;
            self.borrow_bits = bits;
            self.state = State::SplitBits;
            return Ok(open::exchange_bits(self.me, &self.borrow_bits));
        }
        let party = self.me.0;
        let mut mine = trunc::share_with(party, &what, t, &m.trunc_j, false)?;
        if let Some(tk) = &m.trunc_k {
            mine.extend(trunc::share_with(party, &what, t - q, tk, false)?);
        }
        self.state = State::Lookup;
        Ok(self.exchange(mine))
    }

    /// The split's shares once the borrow bits are open.
    fn split_after_bits(&mut self, theirs: &[u8]) -> Result<Step> {
        let (t, q) = split_bits(self.func, self.node.fixed_point);
        let n = self.xhat.len();
        let party = self.me.0;
        let m = self.material()?;
        let (mine_j, theirs_j) = (&self.borrow_bits[..n], &theirs[..n]);
        let mut mine = trunc::share_after_bits_with(party, &self.zhat, t, &m.trunc_j, (mine_j, theirs_j), false)?;
        if let Some(tk) = &m.trunc_k {
            let bits = (&self.borrow_bits[n..], &theirs[n..]);
            mine.extend(trunc::share_after_bits_with(party, &self.zhat, t - q, tk, bits, false)?);
        }
        self.state = State::Lookup;
        Ok(self.exchange(mine))
    }

    /// The lookup from the opened `ĵ` (and `k̂`): this party's share of `z + r_z`, or with
    /// one-hot shares its shares of `P + m_P`, `Q + m_Q` and `R + m_R` first.
    fn lookup(&mut self, opened: &[u64]) -> Result<Step> {
        let n = self.xhat.len();
        let fp = self.node.fixed_point;
        let (t, q) = split_bits(self.func, fp);
        let jhat = &opened[..n];
        let khat = if q < t { &opened[n..] } else { &self.clip[..n] };
        let dhat: Vec<u64> = khat.iter().zip(jhat).map(|(k, j)| k.wrapping_sub(j.wrapping_shl(q))).collect();
        let coeffs = coefficients(self.func, &self.node)?;
        let read = TableRead {
            party: self.me.0 as u8,
            coeffs: &coeffs,
            m: index_bits(&self.node, self.func),
            jhat,
            dhat: &dhat,
            q,
            threads: self.accel.threads(),
        };
        let z = match &self.material()?.table {
            TableShares::Key(keys) => lookup_shares(&read, &keys.keys()?)?,
            TableShares::OneHot(oh) => {
                let mine = one_hot_openings(&read, oh)?;
                self.state = State::Unsign;
                return Ok(self.exchange(mine));
            }
        };
        self.masked_value(z)
    }

    /// With one-hot shares, once `P̂`, `Q̂` and `R̂` are open: this party's share of `z + r_z`.
    fn unsign(&mut self, opened: &[u64]) -> Result<Step> {
        let n = self.xhat.len();
        let z = match &self.material()?.table {
            TableShares::OneHot(oh) => unsigned_shares(oh, opened, n)?,
            TableShares::Key(_) => return Err(Error::internal("lookup one-hot shares")),
        };
        self.masked_value(z)
    }

    /// This party's share of `sign·z + r_z` (the sign of a signed lookup, see the module docs)
    /// from its share of `s·z`, to open.
    fn masked_value(&mut self, mut z: Vec<u64>) -> Result<Step> {
        let m = self.material()?;
        if signed(&self.node, self.func) {
            // The payload's sign (−1)^ρ times the public 2·([x ≥ 0] ⊕ ρ) − 1 is the input's sign.
            if self.sign_bits.len() != z.len() {
                return Err(Error::internal("lookup sign bits"));
            }
            for (z, b) in z.iter_mut().zip(&self.sign_bits) {
                *z = z.wrapping_mul(2 * u64::from(*b)).wrapping_sub(*z);
            }
        }
        let mine = wire::add(&z, &m.r_z);
        self.state = State::Truncate;
        Ok(self.exchange(mine))
    }

    /// The last truncation of `ẑ` by `2q` (rounding), or its borrow bits first.
    fn truncate(&mut self, zhat: Vec<u64>) -> Result<Step> {
        let (_, q) = split_bits(self.func, self.node.fixed_point);
        let m = self.material()?;
        if m.trunc_z.borrows_a_bit() {
            self.borrow_bits = trunc::borrow_bits(&zhat, 2 * q, &m.trunc_z)?;
            self.zhat = zhat;
            self.state = State::TruncateBits;
            return Ok(open::exchange_bits(self.me, &self.borrow_bits));
        }
        let mine = trunc::share(self.me.0, &zhat, 2 * q, &m.trunc_z)?;
        self.state = State::Finish;
        Ok(self.exchange(mine))
    }
}

impl NodeEval for LutEval {
    fn step(&mut self, inbox: Vec<Message>) -> Result<Step> {
        let n = self.xhat.len();
        let (_, q) = split_bits(self.func, self.node.fixed_point);
        match self.state {
            State::Compare => {
                self.bits = self.compare()?;
                if unclipped(&self.node, self.func) {
                    // No clip: split `w = x − lo` at once (its mask is the input's).
                    let lo = self.node.fixed_point.encode(self.func.domain().lo);
                    self.clip = self.xhat.iter().map(|x| x.wrapping_sub(lo)).collect();
                    return self.split_clip(self.clip.clone());
                }
                self.state = State::Clip;
                Ok(open::exchange_bits(self.me, &self.bits))
            }
            State::Clip => {
                let theirs = open::receive_bits(inbox, self.bits.len(), "masked comparison bits")?;
                let bhat: Vec<u8> = theirs.iter().zip(&self.bits).map(|(a, b)| a ^ b).collect();
                let mine = self.clip_shares(&bhat)?;
                if signed(&self.node, self.func) {
                    let signs =
                        bhat.get(SIGN * n..(SIGN + 1) * n).ok_or_else(|| Error::internal("lookup sign bits"))?;
                    self.sign_bits = signs.to_vec();
                }
                self.state = State::Split;
                Ok(self.exchange(mine))
            }
            State::Split => {
                self.clip = open::reconstruct(inbox, &self.mine, "clipped input")?;
                self.split_clip(self.clip[..n].to_vec())
            }
            State::SplitBits => {
                let theirs = open::receive_bits(inbox, self.borrow_bits.len(), "masked borrow bits")?;
                self.split_after_bits(&theirs)
            }
            State::Lookup => {
                let opened = open::reconstruct(inbox, &self.mine, "table index")?;
                self.lookup(&opened)
            }
            State::Unsign => {
                let opened = open::reconstruct(inbox, &self.mine, "one-hot lookup")?;
                self.unsign(&opened)
            }
            State::Truncate => {
                let zhat = open::reconstruct(inbox, &self.mine, "interpolated value")?;
                self.truncate(zhat)
            }
            State::TruncateBits => {
                let theirs = open::receive_bits(inbox, n, "masked borrow bits")?;
                let m = self.material()?;
                let bits = (self.borrow_bits.as_slice(), theirs.as_slice());
                let mine = trunc::share_after_bits_with(self.me.0, &self.zhat, 2 * q, &m.trunc_z, bits, true)?;
                self.state = State::Finish;
                Ok(self.exchange(mine))
            }
            State::Finish => {
                let yhat = open::reconstruct(inbox, &self.mine, "function value")?;
                let m = self.m.take().ok_or_else(|| Error::internal("lookup material"))?;
                let r_out = m.trunc_z.r_out;
                let (value, share) = if self.func == Func::Gelu {
                    // gelu = relu(x) − (relu(x) − gelu(x)).
                    (wire::sub(&self.clip[n..], &yhat), wire::sub(&m.r_g, &r_out))
                } else if signed(&self.node, self.func) && self.func == Func::Sigmoid {
                    // sigmoid(x) = ½ + sign(x)·(sigmoid(|x|) − ½).
                    let half = self.node.fixed_point.encode(0.5);
                    (yhat.iter().map(|y| y.wrapping_add(half)).collect(), r_out)
                } else {
                    (yhat, r_out)
                };
                let out = wire::Masked { shape: self.node.output.shape.clone(), dtype: DType::Fixed, value, share };
                Ok(Step::Done(NodeValue::Wire(out.into_wire())))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A lookup node on one element under `fp`.
    fn node(func: Func, fp: FixedPoint) -> NodeDesc {
        let info = TensorInfo { shape: vec![1], dtype: DType::Fixed, vis: Visibility::Secret };
        NodeDesc {
            id: 0,
            name: "y".into(),
            kind: mpcflow_sdk::protocol::NodeKind::Op(func.op()),
            inputs: vec![info.clone()],
            output: info,
            fixed_point: fp,
            parties: 2,
            network: Default::default(),
            range: None,
        }
    }

    /// The quadratic pieces through `ref`'s values reproduce them at the piece ends and
    /// midpoints, and the split keeps the interpolated value inside the truncation's range; the
    /// symmetric functions fold where they clip and keep the whole table where they need no
    /// clip.
    #[test]
    fn pieces_pass_through_the_reference_values() {
        for f in [MIN_FRAC_BITS, 12, 16, 20, MAX_FRAC_BITS] {
            // The full width clips; a width whose reach lies inside every table does not.
            for fp in [FixedPoint::new(f), FixedPoint::new(f).with_compare_bits(f + 3)] {
                for func in [Func::Exp, Func::Sigmoid, Func::Tanh, Func::Gelu] {
                    let node = node(func, fp);
                    let whole = fp.compare_bits == f + 3 && func != Func::Gelu;
                    assert_eq!(folded(&node, func), func.symmetric() && !whole, "{func:?} f {f}");
                    let (t, q) = split_bits(func, fp);
                    assert!(q >= 1 && q <= t, "{func:?} f {f}: q {q} t {t}");
                    let [c0, c1, c2] = coefficients(func, &node).unwrap();
                    let size = 1usize << index_bits(&node, func);
                    assert_eq!(c0.len(), 2 * size);
                    for j in [0usize, 1, 100, size - 1] {
                        let at = size - 1 - j;
                        let v1 = c0[at].wrapping_add(c1[at]).wrapping_add(c2[at]);
                        let next = if j + 1 < size { c0[size - 2 - j] } else { v1 };
                        assert_eq!(v1, next, "{func:?} f {f} j {j}: pieces meet");
                    }
                }
            }
        }
    }
}
