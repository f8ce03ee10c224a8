//! Tests of table keys: every point against the definition, thread independence, the rotated
//! dot products against the expansion, the AVX-512 kernel against the portable path, refusals.

use super::*;

fn keygen(alphas: &[u64], betas: &[u64], n: u32, w: u32, seed: u8, threads: usize) -> [Vec<u8>; 2] {
    let len = batch_len(alphas.len(), n, w);
    let (mut k0, mut k1) = (vec![0xA5; len], vec![0x5A; len]);
    let mut rng = SeedRng::from_seed([seed; 32]);
    keygen_into_slices(alphas, betas, n, w, &mut rng, &mut k0, &mut k1, threads).unwrap();
    [k0, k1]
}

/// Both parties' full-domain outputs added up.
fn reconstruct(k: &[Vec<u8>; 2], count: usize, n: u32, w: u32) -> Vec<u64> {
    let mut sum = vec![0u64; count * eval_len(n, w)];
    for (party, bytes) in k.iter().enumerate() {
        let keys = TableKeys::from_bytes(bytes, count, n, w).unwrap();
        let mut out = vec![0u64; sum.len()];
        eval_all(party as u8, &keys, 0..count, &mut out).unwrap();
        for (s, o) in sum.iter_mut().zip(&out) {
            *s = s.wrapping_add(*o);
        }
    }
    sum
}

/// Every point of every domain size up to 10 bits, for 1 to 4 payload words: `β` at `α`,
/// zero elsewhere.
#[test]
fn every_point_is_the_payload_at_alpha_and_zero_elsewhere() {
    let mut rng = SeedRng::from_seed([9; 32]);
    for n in 1..=10u32 {
        for w in 1..=MAX_WORDS {
            let size = 1u64 << n;
            let mut alphas: Vec<u64> = (0..13).map(|_| rng.next_u64() % size).collect();
            alphas.extend([0, size - 1]);
            let betas: Vec<u64> = (0..alphas.len() * w as usize).map(|_| rng.next_u64()).collect();
            let k = keygen(&alphas, &betas, n, w, n as u8, 1);
            let sum = reconstruct(&k, alphas.len(), n, w);
            let per = eval_len(n, w);
            for (i, a) in alphas.iter().enumerate() {
                for word in 0..w as usize {
                    for x in 0..size as usize {
                        let want = if x as u64 == *a { betas[i * w as usize + word] } else { 0 };
                        assert_eq!(sum[i * per + word * size as usize + x], want, "n {n} w {w} key {i} x {x}");
                    }
                }
            }
        }
    }
}

/// The keys do not depend on the number of threads; a sub-range evaluates as the whole does.
#[test]
fn keys_do_not_depend_on_threads_and_ranges_agree() {
    let n = 8;
    let count = 2 * GEN_CHUNK + 37;
    let alphas: Vec<u64> = (0..count as u64).map(|i| (i * 97) % 256).collect();
    let betas: Vec<u64> = (0..3 * count as u64).collect();
    let one = keygen(&alphas, &betas, n, 3, 4, 1);
    assert_eq!(one, keygen(&alphas, &betas, n, 3, 4, 2));
    let keys = TableKeys::from_bytes(&one[1], count, n, 3).unwrap();
    let per = eval_len(n, 3);
    let mut all = vec![0u64; count * per];
    eval_all(1, &keys, 0..count, &mut all).unwrap();
    let mut part = vec![0u64; 21 * per];
    eval_all(1, &keys, 4000..4021, &mut part).unwrap();
    assert_eq!(part, all[4000 * per..4021 * per]);
}

/// The rotated dot products equal the sums over the full-domain expansion, for both parties,
/// every payload width, domains with whole leaves (the AVX-512 kernel where the CPU has it)
/// and one smaller than a leaf, and as many pairs as allowed; bad arguments are refused.
#[test]
fn rotated_dots_match_the_expansion() {
    let mut rng = SeedRng::from_seed([3; 32]);
    // The lookup gate's six pairs and the root gate's three have AVX-512 instances of their
    // own; every other shape goes through the general one.
    let lookup = [(0, 0), (1, 0), (2, 0), (1, 1), (2, 1), (2, 2)];
    let root = [(0, 0), (1, 0), (1, 1)];
    let cases = [
        (8u32, 3u32, 1u8, Some(&lookup[..])),
        (8, 3, 0, Some(&lookup[..])),
        (8, 3, 0, None),
        (3, 1, 0, None),
        (3, 4, 1, None),
        (10, 2, 0, Some(&root[..])),
        (10, 2, 1, Some(&root[..])),
        (10, 2, 0, None),
        (9, 4, 1, None),
        (2, 2, 1, None),
        (1, 1, 0, None),
    ];
    for (n, w, party, gate_pairs) in cases {
        let size = 1usize << n;
        let count = 21;
        let alphas: Vec<u64> = (0..count).map(|_| rng.next_u64() % size as u64).collect();
        let betas: Vec<u64> = (0..count * w as usize).map(|_| rng.next_u64()).collect();
        let k = keygen(&alphas, &betas, n, w, 5, 1);
        let keys = TableKeys::from_bytes(&k[party as usize], count, n, w).unwrap();
        let tables: Vec<Vec<u64>> = (0..3).map(|_| (0..2 * size).map(|_| rng.next_u64()).collect()).collect();
        let refs: Vec<&[u64]> = tables.iter().map(|t| t.as_slice()).collect();
        let last = w as usize - 1;
        let pairs: Vec<(usize, usize)> = if let Some(pairs) = gate_pairs {
            pairs.to_vec()
        } else if n == 9 {
            (0..MAX_PAIRS).map(|k| (k % 3, k % w as usize)).collect()
        } else {
            vec![(0, 0), (1, 0), (2, last), (1, 1.min(last))]
        };
        let offsets: Vec<usize> = (0..count - 3).map(|_| rng.next_u64() as usize % size).collect();
        let mut out = vec![0u64; offsets.len() * pairs.len()];
        let mut exp = Expander::default();
        exp.rotated_dots(party, &keys, 3..count, &Dots { tables: &refs, pairs: &pairs, offsets: &offsets }, &mut out)
            .unwrap();
        let mut portable = vec![0u64; out.len()];
        exp.rotated_dots_body(
            party,
            &keys,
            3..count,
            &Dots { tables: &refs, pairs: &pairs, offsets: &offsets },
            &mut portable,
        );
        assert_eq!(portable, out, "the portable path agrees with the dispatched one");
        let per = eval_len(n, w);
        let mut all = vec![0u64; count * per];
        eval_all(party, &keys, 0..count, &mut all).unwrap();
        for (i, c) in (3..count).zip(&offsets) {
            for (k, (a, b)) in pairs.iter().enumerate() {
                let y = &all[i * per + b * size..i * per + (b + 1) * size];
                let want = (0..size).fold(0u64, |acc, x| acc.wrapping_add(tables[*a][c + x].wrapping_mul(y[x])));
                assert_eq!(out[(i - 3) * pairs.len() + k], want, "n {n} W {w} party {party} key {i} pair {k}");
            }
        }
        let mut bad = offsets.clone();
        bad[0] = size + 1;
        assert!(
            exp.rotated_dots(party, &keys, 3..count, &Dots { tables: &refs, pairs: &pairs, offsets: &bad }, &mut out)
                .is_err(),
            "past the table"
        );
        assert!(
            exp.rotated_dots(
                1,
                &keys,
                3..count,
                &Dots { tables: &refs, pairs: &[(3, 0)], offsets: &offsets },
                &mut out
            )
            .is_err(),
            "no table 3"
        );
    }
}

/// Malformed batches and arguments are refused.
#[test]
fn malformed_batches_are_refused() {
    let k = keygen(&[5], &[1, 2], 6, 2, 1, 1);
    assert!(TableKeys::from_bytes(&k[0], 1, 6, 2).is_ok());
    assert!(TableKeys::from_bytes(&k[0][..k[0].len() - 1], 1, 6, 2).is_err());
    assert!(TableKeys::from_bytes(&k[0], 1, 6, 3).is_err());
    assert!(TableKeys::from_bytes(&k[0], 1, 7, 2).is_err());
    assert!(TableKeys::from_bytes(&k[0], 1, 15, 2).is_err());
    let mut rng = SeedRng::from_seed([1; 32]);
    let (mut a, mut b) = (vec![0; batch_len(1, 6, 2)], vec![0; batch_len(1, 6, 2)]);
    assert!(keygen_into_slices(&[64], &[1, 2], 6, 2, &mut rng, &mut a, &mut b, 1).is_err(), "alpha out of domain");
    assert!(keygen_into_slices(&[1], &[1], 6, 2, &mut rng, &mut a, &mut b, 1).is_err(), "payload length");
    assert_eq!(key_bytes(8, 3), 293);
}
