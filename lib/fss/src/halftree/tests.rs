//! The half-tree DCF against its definition, exhaustively on small domains and at random points.
use super::*;
use proptest::prelude::*;

fn rng(tag: u8) -> SeedRng {
    SeedRng::from_seed([tag; 32])
}

fn pair(alphas: &[u64], n: u32, tag: u8, threads: usize) -> (Vec<u8>, Vec<u8>) {
    let (mut k0, mut k1) = (vec![7u8; 3], vec![9u8; 5]);
    keygen_into_par(alphas, n, &mut rng(tag), &mut k0, &mut k1, threads).expect("keygen");
    assert_eq!(&k0[..3], &[7, 7, 7], "what the output held stays in front");
    assert_eq!(&k1[..5], &[9; 5]);
    assert_eq!((k0.len() - 3, k1.len() - 5), (batch_len(alphas.len(), n), batch_len(alphas.len(), n)));
    (k0[3..].to_vec(), k1[5..].to_vec())
}

fn eval_all(k0: &[u8], k1: &[u8], count: usize, n: u32, xs: &[u64], threads: usize) -> Vec<u8> {
    let keys0 = HalfTreeKeys::from_bytes(k0, count, n).expect("parse 0");
    let keys1 = HalfTreeKeys::from_bytes(k1, count, n).expect("parse 1");
    let (mut o0, mut o1) = (vec![0u8; count], vec![0u8; count]);
    eval_many_par(&keys0, xs, &mut o0, threads).expect("eval 0");
    eval_many(&keys1, xs, &mut o1).expect("eval 1");
    o0.iter().zip(&o1).map(|(a, b)| a ^ b).collect()
}

/// Every point for every `α` of small domains (keys of a batch across several tiles).
#[test]
fn exhaustive_small_domains() {
    for n in 1..=10u32 {
        let alphas: Vec<u64> = (0..1u64 << n).collect();
        let (k0, k1) = pair(&alphas, n, n as u8, 1);
        for x in 0..1u64 << n {
            let got = eval_all(&k0, &k1, alphas.len(), n, &vec![x; alphas.len()], 1);
            for (alpha, bit) in alphas.iter().zip(got) {
                assert_eq!(bit, u8::from(x < *alpha), "n {n} alpha {alpha} x {x}");
            }
        }
    }
}

/// Single keys, every point, through the one-key path.
#[test]
fn exhaustive_single_keys() {
    for n in [1u32, 3, 7, 8, 9] {
        for alpha in 0..1u64 << n {
            let (k0, k1) = pair(&[alpha], n, alpha as u8, 1);
            for x in 0..1u64 << n {
                assert_eq!(eval(&k0, x).expect("0") ^ eval(&k1, x).expect("1"), u8::from(x < alpha));
            }
        }
    }
}

/// The batched paths (one thread and several, across chunks and a short last tile) agree with
/// the definition; the keys do not depend on the thread count.
#[test]
fn batches_match_the_definition_at_full_width() {
    for n in [8u32, 16, 32, 63, 64] {
        let mut r = rng(40 + n as u8);
        let count = 2 * GEN_CHUNK + 300;
        let alphas: Vec<u64> = (0..count).map(|_| r.next_u64() & domain_mask(n)).collect();
        let xs: Vec<u64> = alphas
            .iter()
            .enumerate()
            .map(|(i, a)| match i % 4 {
                0 => *a,
                1 => a.wrapping_sub(1) & domain_mask(n),
                2 => a.wrapping_add(1) & domain_mask(n),
                _ => r.next_u64() & domain_mask(n),
            })
            .collect();
        let (k0, k1) = pair(&alphas, n, n as u8, 2);
        assert!(pair(&alphas, n, n as u8, 1) == (k0.clone(), k1.clone()), "keys independent of threads");
        let got = eval_all(&k0, &k1, count, n, &xs, 2);
        for i in 0..count {
            assert_eq!(got[i], u8::from(xs[i] < alphas[i]), "n {n} key {i}");
        }
    }
}

/// Sizes are as documented and the two keys differ only in the root seeds.
#[test]
fn layout() {
    assert_eq!(key_bytes(63), 928);
    assert_eq!(batch_len(1, 63), 930);
    assert_eq!(key_bytes(64), 944);
    assert_eq!(key_bytes(7), 32);
    assert_eq!(key_bytes(1), 32);
    let (k0, k1) = pair(&[5, 6, 7], 63, 1, 1);
    assert_eq!((k0.len(), k0[0], k0[1]), (2 + 3 * 928, HALF_TREE_TAG, 63));
    for i in 0..3 {
        let at = 2 + 16 * i;
        let (r0, r1) = (&k0[at..at + 16], &k1[at..at + 16]);
        assert_ne!(r0, r1);
        assert_eq!((r0[0] ^ r1[0]) & 1, 1, "the roots' control bits differ");
    }
    assert_eq!(k0[2 + 48..], k1[2 + 48..], "the same correction words");
}

#[test]
fn bad_input_is_refused() {
    let (k0, _) = pair(&[3, 4], 16, 2, 1);
    assert!(HalfTreeKeys::from_bytes(&k0, 3, 16).is_err(), "wrong count");
    assert!(HalfTreeKeys::from_bytes(&k0, 2, 17).is_err(), "wrong width");
    assert!(HalfTreeKeys::from_bytes(&k0[..k0.len() - 1], 2, 16).is_err(), "short");
    let mut bad = k0.clone();
    bad[0] = b'D';
    assert!(HalfTreeKeys::from_bytes(&bad, 2, 16).is_err(), "tag");
    let mut bad = k0.clone();
    bad[1] = 15;
    assert!(HalfTreeKeys::from_bytes(&bad, 2, 16).is_err(), "width byte");
    let keys = HalfTreeKeys::from_bytes(&k0, 2, 16).expect("parse");
    let mut out = [0u8; 2];
    assert!(eval_many(&keys, &[1, 1 << 16], &mut out).is_err(), "point outside the domain");
    assert!(eval_many(&keys, &[1], &mut out[..1]).is_err(), "length");
    let mut sink = Vec::new();
    assert!(keygen_into(&[1 << 16], 16, &mut rng(1), &mut sink, &mut Vec::new()).is_err(), "alpha outside");
    assert!(keygen_into(&[0], 0, &mut rng(1), &mut sink, &mut Vec::new()).is_err(), "zero bits");
    assert!(eval(&[], 0).is_err());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    /// Random widths, thresholds and points, including the edges of the domain.
    #[test]
    fn random_points(n in 1u32..=64, a in any::<u64>(), xs in proptest::collection::vec(any::<u64>(), 1..20), tag in any::<u8>()) {
        let alpha = a & domain_mask(n);
        let mut pts: Vec<u64> = xs.iter().map(|x| x & domain_mask(n)).collect();
        pts.extend([0, domain_mask(n), alpha, alpha.saturating_sub(1), (alpha + 1) & domain_mask(n)]);
        let (k0, k1) = pair(&[alpha], n, tag, 1);
        for x in pts {
            prop_assert_eq!(eval(&k0, x).unwrap() ^ eval(&k1, x).unwrap(), u8::from(x < alpha));
        }
    }
}

/// Key generation gives the same bytes wherever the batch lies in memory: the kernel streams
/// its rows through whole cache lines (see `crate::simd::RowStream`), with every offset of
/// the rows within a line here, and leaves the bytes around the batch alone.
#[test]
fn keys_are_the_same_bytes_at_every_alignment() {
    #[cfg(target_arch = "x86_64")]
    if !avx512::keygen_available() {
        eprintln!("SKIPPED: this CPU has no AVX-512 key generation kernel; only the portable path ran");
        return;
    }
    // Two streamed tiles and a short one, stored register by register.
    let (n, count) = (63u32, 2 * TILE + 37);
    let mut r = rng(61);
    let alphas: Vec<u64> = (0..count).map(|_| r.next_u64() & domain_mask(n)).collect();
    let mut slow = (Vec::new(), Vec::new());
    keygen_with(&alphas, n, &mut rng(6), (&mut slow.0, &mut slow.1), 1, true).expect("portable keygen");
    let len = batch_len(count, n);
    for offset in 0..64 {
        let (mut b0, mut b1) = (vec![0x5Au8; len + 128], vec![0xA5u8; len + 128]);
        let (at0, at1) = (offset, 63 - offset);
        keygen_into_slices(&alphas, n, &mut rng(6), &mut b0[at0..at0 + len], &mut b1[at1..at1 + len], 2)
            .expect("keygen");
        assert!(
            b0[at0..at0 + len] == slow.0[..] && b1[at1..at1 + len] == slow.1[..],
            "offset {offset}: key bytes differ"
        );
        let around = |b: &[u8], at: usize, fill: u8| b[..at].iter().chain(&b[at + len..]).all(|&x| x == fill);
        assert!(around(&b0, at0, 0x5A) && around(&b1, at1, 0xA5), "offset {offset}: bytes outside the batch changed");
    }
}

/// The AVX-512 kernels (where the CPU has them) give the portable path's key bytes and outputs,
/// across full and short tiles and groups.
#[test]
fn kernels_match_the_portable_path() {
    #[cfg(target_arch = "x86_64")]
    if !avx512::available() {
        eprintln!("SKIPPED: this CPU has no AVX-512 with VAES; only the portable path ran");
        return;
    }
    #[cfg(target_arch = "x86_64")]
    if !avx512::keygen_available() {
        eprintln!("SKIPPED in part: no AVX-512 BW and VBMI, so key generation ran the portable path twice");
    }
    for (n, count) in [(63u32, 2 * TILE + 37), (64, 300), (9, 130), (7, 5), (3, 17), (40, TILE)] {
        let mut r = rng(90 + n as u8);
        let alphas: Vec<u64> = (0..count).map(|_| r.next_u64() & domain_mask(n)).collect();
        let xs: Vec<u64> =
            (0..count).map(|i| if i % 3 == 0 { alphas[i] } else { r.next_u64() & domain_mask(n) }).collect();
        let mut fast = (Vec::new(), Vec::new());
        let mut slow = (Vec::new(), Vec::new());
        keygen_with(&alphas, n, &mut rng(5), (&mut fast.0, &mut fast.1), 1, false).expect("kernel keygen");
        keygen_with(&alphas, n, &mut rng(5), (&mut slow.0, &mut slow.1), 1, true).expect("portable keygen");
        assert!(fast == slow, "n {n}: key bytes differ");
        for k in [&fast.0, &fast.1] {
            let keys = HalfTreeKeys::from_bytes(k, count, n).expect("parse");
            let (mut a, mut b) = (vec![0u8; count], vec![0u8; count]);
            points_range(&keys, 0, &[&xs], &mut [&mut a], false);
            points_range(&keys, 0, &[&xs], &mut [&mut b], true);
            assert_eq!(a, b, "n {n}: outputs differ");
        }
        let got = eval_all(&fast.0, &fast.1, count, n, &xs, 1);
        for i in 0..count {
            assert_eq!(got[i], u8::from(xs[i] < alphas[i]), "n {n} key {i}");
        }
    }
}

/// Several points per key give, row by row, what one evaluation per row gives, and the
/// definition: points close together (a clip's thresholds, which share most levels), points
/// far apart (which share none), equal rows, and more rows than one pass takes; on the kernel
/// and on the portable path, one and two threads, across tiles and groups.
#[test]
fn several_points_per_key_match_one_evaluation_per_row() {
    for (n, count) in [(64u32, 2 * TILE + 37), (63, 300), (24, 150), (9, 130), (3, 17), (1, 40)] {
        let mut r = rng(60 + n as u8);
        let mask = domain_mask(n);
        let alphas: Vec<u64> = (0..count).map(|_| r.next_u64() & mask).collect();
        let (k0, k1) = pair(&alphas, n, 61, 2);
        let base: Vec<u64> = (0..count).map(|_| r.next_u64() & mask).collect();
        let near = |c: u64| -> Vec<u64> { base.iter().map(|x| x.wrapping_add(c) & mask).collect() };
        let far: Vec<u64> = (0..count).map(|_| r.next_u64() & mask).collect();
        let at_alpha: Vec<u64> = alphas.clone();
        let mut rows: Vec<Vec<u64>> = vec![near(0), near(1 << 20), near((1u64 << 20).wrapping_neg()), far, at_alpha];
        rows.push(near(0));
        rows.extend((0..5).map(|i| near(i * 12_345)));
        for rows in [&rows[..1], &rows[..3], &rows[..], &rows[3..5]] {
            let refs: Vec<&[u64]> = rows.iter().map(Vec::as_slice).collect();
            let mut both = Vec::new();
            for (k, threads) in [(&k0, 2), (&k1, 1)] {
                let keys = HalfTreeKeys::from_bytes(k, count, n).expect("parse");
                let mut out = vec![0u8; rows.len() * count];
                eval_points_par(&keys, &refs, &mut out, threads).expect("several points");
                let mut portable: Vec<Vec<u8>> = rows.iter().map(|_| vec![0u8; count]).collect();
                let mut outs: Vec<&mut [u8]> = portable.iter_mut().map(Vec::as_mut_slice).collect();
                points_range(
                    &keys,
                    0,
                    &refs[..refs.len().min(MAX_POINTS)],
                    &mut outs[..refs.len().min(MAX_POINTS)],
                    true,
                );
                for (p, row) in rows.iter().enumerate() {
                    let mut one = vec![0u8; count];
                    eval_many(&keys, row, &mut one).expect("one row");
                    assert_eq!(&out[p * count..(p + 1) * count], &one[..], "n {n} row {p}");
                    if p < MAX_POINTS {
                        assert_eq!(portable[p], one, "n {n} row {p}: portable");
                    }
                }
                both.push(out);
            }
            for (p, row) in rows.iter().enumerate() {
                for i in 0..count {
                    let bit = both[0][p * count + i] ^ both[1][p * count + i];
                    assert_eq!(bit, u8::from(row[i] < alphas[i]), "n {n} row {p} key {i}");
                }
            }
        }
    }
    let (k0, _) = pair(&[1, 2], 8, 3, 1);
    let keys = HalfTreeKeys::from_bytes(&k0, 2, 8).expect("parse");
    assert!(eval_points_par(&keys, &[&[1, 2], &[3]], &mut [0; 4], 1).is_err(), "a short row");
    assert!(eval_points_par(&keys, &[&[1, 2], &[3, 4]], &mut [0; 3], 1).is_err(), "a short output");
    assert!(eval_points_par(&keys, &[&[1, 256]], &mut [0; 2], 1).is_err(), "a point outside the domain");
}

/// `π` is AES-128 under the fixed hash key (the `aes` crate's); the kernels match it by the test above.
#[test]
fn the_hash_is_fixed_key_aes() {
    let mut buf = vec![Block::default(); 64];
    let seeds: Vec<u128> = (0..8u128).map(|i| i * 0x0123_4567_89ab_cdef_1111 + 5).collect();
    permute(&seeds, &mut buf);
    let cipher = Aes128::new(&Array::from(HASH_KEY));
    for (s, b) in seeds.iter().zip(&buf) {
        let mut want = block_from_u128(sigma(*s));
        cipher.encrypt_block(&mut want);
        assert_eq!(*b, want);
    }
}

/// Keys generated over stale bytes (a dealer's recycled buffer) are the keys generated into
/// zeroed memory: every byte of the slices is written.
#[test]
fn keygen_into_slices_writes_every_byte() {
    for (n, count) in [(63u32, TILE + 3), (9, 40), (5, 1), (64, 2 * GEN_CHUNK + 1)] {
        let mut r = rng(7);
        let alphas: Vec<u64> = (0..count).map(|_| r.next_u64() & domain_mask(n)).collect();
        let (mut z0, mut z1) = (Vec::new(), Vec::new());
        keygen_into_par(&alphas, n, &mut rng(8), &mut z0, &mut z1, 2).expect("keygen");
        let len = batch_len(count, n);
        for fill in [0xABu8, 0xFF] {
            let (mut s0, mut s1) = (vec![fill; len], vec![fill; len]);
            keygen_into_slices(&alphas, n, &mut rng(8), &mut s0, &mut s1, 2).expect("keygen into slices");
            assert!(s0 == z0 && s1 == z1, "n {n}: stale bytes survived");
        }
        let mut short = vec![0u8; len - 1];
        assert!(keygen_into_slices(&alphas, n, &mut rng(8), &mut short, &mut vec![0u8; len], 1).is_err());
    }
}
