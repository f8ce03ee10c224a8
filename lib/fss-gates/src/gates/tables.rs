//! Public tables read at a secret index, for the lookup gate ([`super::lut`]) and the root
//! gate's mantissa table ([`super::root`]): Sigma's lookup (Gupta et al., PETS 2024, Section 4).
//!
//! The dealer deals a table key ([`crate::fss::table`]) at `α = r mod 2^n` for the mask `r` of
//! the index `j`, with a payload `β` of a few words. The parties open `ĵ = j + r` and, for the
//! point `x` of the key's domain, read the table at `(ĵ − x) mod 2^n`: at `x = α` that is `T[j]`,
//! so `Σ_x T[(ĵ − x) mod 2^n]·y_b(x)` is a share of `T[j]·β_b`. Each table is stored reversed and
//! doubled ([`reversed_doubled`]): the rotation is then a contiguous run starting at
//! `2^n − 1 − (ĵ mod 2^n)`, which [`crate::fss::table::Expander::rotated_dots`] folds into its
//! expansion. Where a round is cheap the lookup gate deals XOR shares of the one-hot vector at
//! `α` instead, read by [`one_hot_sums`] (see [`onehot`]).

use crate::fss::table::{Dots, Expander, TableKeys, onehot};
use mpcflow_sdk::{Error, Result};

/// `T` reversed and doubled: entry `c + x` is `T[(ĵ − x) mod len]` for `c = len − 1 − ĵ mod len`
/// (see [`offset`]), for every `x < len`. `T`'s length must be a power of two.
pub fn reversed_doubled(table: &[u64]) -> Vec<u64> {
    let len = table.len();
    (0..2 * len).map(|i| table[len - 1 - i % len]).collect()
}

/// Where the rotated run for the public masked index `jhat` starts in a table of `2^n_bits`
/// entries stored by [`reversed_doubled`].
pub fn offset(jhat: u64, n_bits: u32) -> usize {
    let size = 1usize << n_bits;
    size - 1 - (jhat as usize & (size - 1))
}

/// A part of the sums (its first element and its words) for one thread.
type Cell<'a> = std::sync::Mutex<Option<(usize, &'a mut [u64])>>;

/// This party's shares of `T_a[j]·β_b` for each pair `(a, b)` of `pairs` and each element
/// (element-major: `pairs.len()` words per element), from its table keys, the tables stored by
/// [`reversed_doubled`] and each element's [`offset`], on up to `threads` threads.
pub fn rotated_sums(
    party: u8,
    keys: &TableKeys<'_>,
    tables: &[&[u64]],
    pairs: &[(usize, usize)],
    offsets: &[usize],
    threads: usize,
) -> Result<Vec<u64>> {
    in_parts(offsets.len(), pairs.len(), threads, |first, count, part| {
        Expander::default()
            .rotated_dots(
                party,
                keys,
                first..first + count,
                &Dots { tables, pairs, offsets: &offsets[first..first + count] },
                part,
            )
            .map_err(|e| Error::Material(format!("lookup keys: {e}")))
    })
}

/// This party's shares of `σ·T_a[j]` for each table `a` and element (element-major:
/// `tables.len()` words per element), from its XOR shares of the one-hot vectors at the
/// index masks ([`onehot::words`] per element), the tables stored by [`reversed_doubled`] and
/// each element's [`offset`], on up to `threads` threads; `σ = ±1` is the dealer's (see
/// [`onehot`]).
pub fn one_hot_sums(
    party: u8,
    shares: &[u64],
    n_bits: u32,
    tables: &[&[u64]],
    offsets: &[usize],
    threads: usize,
) -> Result<Vec<u64>> {
    let per = onehot::words(n_bits);
    if shares.len() != offsets.len() * per {
        return Err(Error::Material(format!(
            "lookup shares: {} words for {} elements of {per}",
            shares.len(),
            offsets.len()
        )));
    }
    in_parts(offsets.len(), tables.len(), threads, |first, count, part| {
        let mine = &shares[first * per..(first + count) * per];
        onehot::dots(party, mine, n_bits, tables, &offsets[first..first + count], part)
            .map_err(|e| Error::Material(format!("lookup shares: {e}")))
    })
}

/// `n` elements' sums of `width` words each, computed by `work(first, count, part)` on up to
/// `threads` threads in contiguous parts.
fn in_parts(
    n: usize,
    width: usize,
    threads: usize,
    work: impl Fn(usize, usize, &mut [u64]) -> Result<()> + Sync,
) -> Result<Vec<u64>> {
    let np = width.max(1);
    let mut sums = vec![0u64; n * width];
    // Below a few thousand elements a thread costs more than it saves.
    let threads = if n < 2048 { 1 } else { threads.max(1) };
    let per = n.div_ceil(threads).max(1);
    // Each part in its own cell, so a part whose thread cannot be started runs here instead.
    let cells: Vec<Cell<'_>> =
        sums.chunks_mut(per * np).enumerate().map(|(k, part)| std::sync::Mutex::new(Some((k * per, part)))).collect();
    let run = |cell: &Cell<'_>| -> Result<()> {
        match cell.lock().ok().and_then(|mut c| c.take()) {
            Some((first, part)) => work(first, part.len() / np, part),
            None => Ok(()),
        }
    };
    std::thread::scope(|scope| {
        let run = &run;
        let mut results = Vec::new();
        let mut handles = Vec::new();
        for cell in cells.iter().skip(1) {
            match std::thread::Builder::new().spawn_scoped(scope, move || run(cell)) {
                Ok(h) => handles.push(h),
                Err(_) => results.push(run(cell)),
            }
        }
        results.extend(cells.first().map(run));
        results.extend(
            handles.into_iter().map(|h| h.join().unwrap_or_else(|_| Err(Error::internal("lookup thread panicked")))),
        );
        results.into_iter().collect::<Result<Vec<()>>>()
    })?;
    Ok(sums)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The run at [`offset`] is the table rotated by the masked index, reversed.
    #[test]
    fn the_run_at_the_offset_is_the_rotated_table() {
        let t: Vec<u64> = (0..8).map(|v| 100 + v).collect();
        let rr = reversed_doubled(&t);
        for jhat in [0u64, 3, 7, 8 + 5, u64::MAX] {
            let c = offset(jhat, 3);
            for x in 0..8u64 {
                assert_eq!(rr[c + x as usize], t[(jhat.wrapping_sub(x) & 7) as usize], "ĵ {jhat} x {x}");
            }
        }
    }
}
