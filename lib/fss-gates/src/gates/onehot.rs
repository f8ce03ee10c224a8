//! One-hot bits of a secret index from one table key: the embedding lookup at private token
//! ids. Sigma's lookup (Gupta et al., "SIGMA: Secure GPT Inference with Function Secret
//! Sharing", PETS 2024, Section 4) reads a public table through a point function at the masked
//! index; here the point function's expansion itself is the output, so the model owner's table
//! stays private and enters through the matrix product that follows (`onehot(ids) · table`).
//!
//! The index wire holds `î = x·2^f + r` (`f` = 0 for an int index). Since `x·2^f` has no low
//! bits, nothing carries out of them: `î >> f = x + (r >> f) mod 2^(64−f)`. With
//! `n = ⌈log₂ depth⌉` (at least 1) and `α = (r >> f) mod 2^n`, for `0 ≤ x, k < depth ≤ 2^n`:
//! `x = k` exactly when `((î >> f) − k) mod 2^n = α`. The dealer deals one table key
//! ([`crate::fss::table`]) at `α` with payload 1 and a fresh output mask (`depth` words per
//! index). Each party expands its key over the `2^n` points (`y_b`), takes
//! `y_b(((î >> f) − k) mod 2^n)` as its share of bit `k`, adds its share of the mask, and the
//! parties open the masked bits: **one round, `8·depth` bytes per index per party**.
//!
//! Exact for indices that are integers in `[0, depth)`, the op's contract (`ref` refuses any
//! other); another value would pick a wrong class or none.
//!
//! **Costs** per index: a key of `16 + 17(n − 3) + 64` bytes to each party (365 B at
//! `n = 15`), and the mask's correction to party 1 (`8·depth` bytes; party 0's from a seed);
//! key generation `4(n − 3) + 8` AES blocks, evaluation about `2^(n−3)·2 + 2^(n−1)` per party.
//! For BERT's vocabulary (30522, `n` = 15) 128 ids cost 31 MB online per party and 31 MB of
//! material (party 1): the equality tests this replaces (two comparisons per class) dealt
//! 3.2 GB to each party.

use super::open::{self, OneRound};
use crate::accel::Accel;
use crate::fss::SeedRng;
use crate::fss::table::{Expander, MAX_TABLE_BITS};
use crate::material::{HEADER, SEED_LEN, Split, Tag, draw, table_len};
use crate::wire::MaskedRef;
use mpcflow_sdk::protocol::{Cost, NodeDesc, NodeEval};
use mpcflow_sdk::{DType, Error, PartyId, Result};

/// The largest depth fss2pc computes (its key's domain is [`MAX_TABLE_BITS`] bits).
pub const MAX_DEPTH: usize = 1 << MAX_TABLE_BITS;

/// Bits of the key's domain for `depth` classes: `⌈log₂ depth⌉`, at least 1.
pub fn index_bits(depth: usize) -> u32 {
    depth.max(2).next_power_of_two().trailing_zeros()
}

/// `(depth, domain bits, fractional bits of the index)` of a onehot node.
fn params(node: &NodeDesc) -> Result<(usize, u32, u32)> {
    let depth = node.output.shape.last().copied().ok_or_else(|| Error::internal("onehot without a class axis"))?;
    let f = match node.inputs.first().map(|t| t.dtype) {
        Some(DType::Fixed) => node.fixed_point.frac_bits,
        _ => 0,
    };
    Ok((depth, index_bits(depth), f))
}

/// The cost: one opening of the output; a table key per index, the output mask shared.
pub fn cost(node: &NodeDesc) -> Cost {
    let (indices, outputs) = (node.inputs.first().map_or(0, |t| t.numel()), node.output.numel());
    let bits = node.output.shape.last().map_or(1, |&d| index_bits(d));
    let keys = table_len(indices, bits, 1);
    let mut c = open::cost(node, 1, [(HEADER + SEED_LEN) as u64 + keys, HEADER as u64 + 8 * outputs as u64 + keys]);
    c.form = format!("table key over {bits} bits per index");
    c
}

/// Dealer: the keys at `(r >> f) mod 2^n` for the index mask `r`; returns the output mask.
pub fn deal(node: &NodeDesc, r: &[u64], rng: &mut SeedRng, threads: usize) -> Result<(Vec<Vec<u8>>, Vec<u64>)> {
    let (depth, bits, f) = params(node)?;
    let mut split = Split::new(Tag::OneHot, rng, open::sizes(&cost(node)), threads);
    let r_out = draw(rng, r.len() * depth);
    split.share(&r_out);
    let low = (1u64 << bits) - 1;
    let alphas: Vec<u64> = r.iter().map(|r| (r >> f) & low).collect();
    split.table_keys(&alphas, &vec![1; r.len()], bits, 1, rng)?;
    Ok((split.finish(), r_out))
}

/// Party: its share of the masked one-hot rows, opened in one round.
pub fn begin(
    node: &NodeDesc,
    x: &MaskedRef,
    me: PartyId,
    material: Vec<u8>,
    accel: Accel,
) -> Result<Box<dyn NodeEval>> {
    let (depth, bits, f) = params(node)?;
    let n = x.value.len();
    let mut m = crate::material::Shares::new(&material, Tag::OneHot, me.0)?.with_accel(accel);
    let r_out = m.share(n * depth, "output mask")?;
    let kept = m.kept_table_keys(n, bits, 1, "onehot keys")?;
    m.finish()?;
    crate::pool::give(material);
    let keys = kept.keys()?;
    let size = 1usize << bits;
    let mut ys = vec![0u64; size];
    let mut mine = r_out.clone();
    let mut expander = Expander::default();
    for (i, row) in mine.chunks_mut(depth.max(1)).enumerate().take(n) {
        expander
            .eval_all(me.0 as u8, &keys, i..i + 1, &mut ys)
            .map_err(|e| Error::Material(format!("onehot keys: {e}")))?;
        let c = (x.value[i] >> f) as usize;
        for (k, bit) in row.iter_mut().enumerate() {
            *bit = bit.wrapping_add(ys[c.wrapping_sub(k) & (size - 1)]);
        }
    }
    Ok(Box::new(OneRound::new(me, node, mine, r_out)))
}
