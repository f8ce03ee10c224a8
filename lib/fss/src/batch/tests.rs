use super::eval::*;
use super::keygen::*;
use super::*;

/// Random keys of both parties for `count` comparisons, with points next to and at `α`.
fn batches<P: Payload>(
    count: usize,
    n_bits: u32,
    tag: u8,
    beta: impl Fn(u64) -> P,
) -> ([KeyBatch<'static, P>; 2], Vec<u64>) {
    let mut r = SeedRng::from_seed([tag; 32]);
    let max = super::super::domain_mask(n_bits);
    let alphas: Vec<u64> = (0..count).map(|_| r.next_u64() & max).collect();
    let betas: Vec<P> = (0..count).map(|_| beta(r.next_u64())).collect();
    let xs: Vec<u64> = alphas
        .iter()
        .enumerate()
        .map(|(i, a)| match i % 4 {
            0 => r.next_u64() & max,
            1 => *a,
            2 => a.wrapping_sub(1) & max,
            _ => a.wrapping_add(1) & max,
        })
        .collect();
    let (mut b0, mut b1) = (Vec::new(), Vec::new());
    keygen_into(&alphas, &betas, n_bits, &mut r, &mut b0, &mut b1).unwrap_or_else(|e| panic!("{e}"));
    let parse = |b: Vec<u8>| KeyBatch::parse(Cow::Owned(b), count, n_bits, true).unwrap_or_else(|e| panic!("{e}"));
    ([parse(b0), parse(b1)], xs)
}

/// The dispatching [`eval_range`] (the AES-NI kernel where the CPU has one) agrees with the
/// portable path and with single-key evaluation, for ranges that are not whole groups.
fn dispatch_matches_portable<P: Payload + std::fmt::Debug>(tag: u8, beta: impl Fn(u64) -> P + Copy) {
    for n_bits in [1u32, 2, 7, 17, 63, 64] {
        for count in [1usize, 6, 7, 13, 14, 15, 29, 300] {
            let (keys, xs) = batches::<P>(count, n_bits, tag, beta);
            for (party, b) in keys.iter().enumerate() {
                let party = party as u8;
                for first in [0, count / 3] {
                    let xs = &xs[first..];
                    let mut fast = vec![P::default(); xs.len()];
                    let mut slow = vec![P::default(); xs.len()];
                    eval_range(party, b, first, xs, &mut fast);
                    eval_range_portable(party, b, first, xs, &mut slow);
                    assert_eq!(fast, slow, "n={n_bits} count={count} first={first} party={party}");
                    for (i, (x, y)) in xs.iter().zip(&fast).enumerate().step_by(5) {
                        assert_eq!(eval_one(party, b, first + i, *x), Ok(*y));
                    }
                }
            }
        }
    }
}

/// Both parties' keys from the dispatching key generation (the AES-NI kernel where the CPU
/// has one) and from the portable path, serial or on `threads` threads, for the same seed.
fn gen_both<P: Payload>(
    alphas: &[u64],
    betas: &[P],
    n_bits: u32,
    seed: [u8; 32],
    threads: Option<usize>,
) -> [[Vec<u8>; 2]; 2] {
    let run = |portable: bool| {
        let mut r = SeedRng::from_seed(seed);
        // Appends after existing content.
        let (mut b0, mut b1) = (vec![0xA5], vec![]);
        let res = match threads {
            None => keygen_into_with(alphas, betas, n_bits, &mut r, &mut b0, &mut b1, portable),
            Some(t) => keygen_into_par_with(alphas, betas, n_bits, &mut r, &mut b0, &mut b1, t, portable),
        };
        res.unwrap_or_else(|e| panic!("{e}"));
        // The rng is left in the same state.
        b0.extend_from_slice(&r.next_u128().to_le_bytes());
        [b0, b1]
    };
    [run(false), run(true)]
}

/// The dispatching key generation agrees byte for byte with the portable path (root seeds,
/// CWs, rng use) for random seeds, several domain sizes and batch sizes that are not whole
/// groups, and the keys evaluate to the comparison function.
fn keygen_matches_portable<P: Payload + std::fmt::Debug>(tag: u8, beta: impl Fn(u64) -> P + Copy) {
    let mut r = SeedRng::from_seed([tag; 32]);
    for n_bits in [1u32, 2, 5, 7, 17, 32, 63, 64] {
        let max = super::super::domain_mask(n_bits);
        for count in [1usize, 2, 3, 4, 5, 6, 7, 8, 9, 11, 16, 17, 31, 63, 64, 65, 130] {
            let mut seed = [0u8; 32];
            r.fill_bytes(&mut seed);
            let alphas: Vec<u64> = (0..count)
                .map(|i| match i % 5 {
                    0 => 0,
                    1 => max,
                    _ => r.next_u64() & max,
                })
                .collect();
            let betas: Vec<P> = (0..count).map(|_| beta(r.next_u64())).collect();
            let [fast, slow] = gen_both(&alphas, &betas, n_bits, seed, None);
            assert!(fast == slow, "n={n_bits} count={count}");
            // The keys compute f(x) = β for x < α, else 0.
            let [b0, b1] = fast;
            let parse = |b: &[u8]| {
                KeyBatch::<P>::parse(Cow::Owned(b.to_vec()), count, n_bits, true).unwrap_or_else(|e| panic!("{e}"))
            };
            let keys = [parse(&b0[1..b0.len() - 16]), parse(&b1)];
            for (i, (a, b)) in alphas.iter().zip(&betas).enumerate() {
                for x in [*a, a.wrapping_sub(1) & max, a.wrapping_add(1) & max, r.next_u64() & max] {
                    let y0 = eval_one(0, &keys[0], i, x).unwrap_or_else(|e| panic!("{e}"));
                    let y1 = eval_one(1, &keys[1], i, x).unwrap_or_else(|e| panic!("{e}"));
                    let want = if x < *a { *b } else { P::default() };
                    assert_eq!(y0.add(y1), want, "n={n_bits} count={count} i={i} x={x:#x}");
                }
            }
        }
    }
    // The threaded variant, on a batch large enough to be split.
    for n_bits in [6u32, 63] {
        let count = PAR_MIN_BATCH + 2 * GEN_TILE + 5;
        let mut seed = [0u8; 32];
        r.fill_bytes(&mut seed);
        let max = super::super::domain_mask(n_bits);
        let alphas: Vec<u64> = (0..count).map(|_| r.next_u64() & max).collect();
        let betas: Vec<P> = (0..count).map(|_| beta(r.next_u64())).collect();
        let [fast, slow] = gen_both(&alphas, &betas, n_bits, seed, Some(3));
        assert!(fast == slow, "par n={n_bits}");
        let [serial, _] = gen_both(&alphas, &betas, n_bits, seed, None);
        assert!(fast == serial, "par n={n_bits}");
    }
}

#[test]
fn keygen_matches_portable_dcf() {
    keygen_matches_portable::<u64>(42, |b| b);
}

#[test]
fn keygen_matches_portable_dcf2() {
    keygen_matches_portable::<[u64; 2]>(43, |b| [b, b.rotate_left(29)]);
}

/// Keys whose seed CWs all have their ignored low bit set evaluate as the clean keys on every
/// path: dispatch (VAES where the CPU has it), AES-NI, portable tiles and one key at a time.
fn seed_cw_low_bits_are_ignored<P: Payload + std::fmt::Debug>(tag: u8, beta: impl Fn(u64) -> P + Copy) {
    for n_bits in [1u32, 7, 63, 64] {
        let count = 29;
        let (keys, xs) = batches::<P>(count, n_bits, tag, beta);
        let lay = Layout::new(n_bits, P::WORDS);
        for (party, clean) in keys.iter().enumerate() {
            let party = party as u8;
            let mut bytes = clean.bytes().to_vec();
            for key in bytes.chunks_exact_mut(lay.len) {
                for level in 0..lay.n {
                    key[SEEDS + 16 * level] |= 1;
                }
            }
            let dirty = KeyBatch::<P>::parse(Cow::Owned(bytes), count, n_bits, true).unwrap_or_else(|e| panic!("{e}"));
            let run = |b: &KeyBatch<'_, P>, path: u8| {
                let mut out = vec![P::default(); count];
                match path {
                    0 => eval_range(party, b, 0, &xs, &mut out),
                    1 => eval_range_portable(party, b, 0, &xs, &mut out),
                    #[cfg(target_arch = "x86_64")]
                    2 => assert!(!aesni::available() || aesni::eval_range_with(party, b, 0, &xs, &mut out, false)),
                    _ => {
                        for (i, (x, y)) in xs.iter().zip(out.iter_mut()).enumerate() {
                            *y = eval_one(party, b, i, *x).unwrap_or_else(|e| panic!("{e}"));
                        }
                    }
                }
                out
            };
            let want = run(clean, 1);
            for path in 0..4 {
                assert_eq!(run(&dirty, path), want, "n={n_bits} party={party} path={path}");
            }
        }
    }
}

#[test]
fn seed_cw_low_bits_are_ignored_dcf() {
    seed_cw_low_bits_are_ignored::<u64>(44, |b| b);
}

#[test]
fn seed_cw_low_bits_are_ignored_dcf2() {
    seed_cw_low_bits_are_ignored::<[u64; 2]>(45, |b| [b, b.rotate_left(11)]);
}

#[test]
fn dispatch_matches_portable_dcf() {
    dispatch_matches_portable::<u64>(40, |b| b);
}

#[test]
fn dispatch_matches_portable_dcf2() {
    dispatch_matches_portable::<[u64; 2]>(41, |b| [b, b.rotate_left(17)]);
}
