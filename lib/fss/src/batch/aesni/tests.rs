use super::*;
use crate::prg::{Prg, PrgKey, SeedRng};

#[test]
#[allow(unsafe_code)]
fn key_schedule_matches_aes_crate() {
    if !available() {
        return;
    }
    let prg = Prg::global();
    let mut r = SeedRng::from_seed([3; 32]);
    // SAFETY: AES-NI and SSE4.1 are available (checked above).
    let rk = unsafe { round_keys() };
    for (i, key) in [PrgKey::Left, PrgKey::Right, PrgKey::Value].into_iter().enumerate() {
        for _ in 0..100 {
            let s = r.next_u128();
            // SAFETY: as above.
            let got = unsafe { mmo_ni(&rk.0[i], s) };
            assert_eq!(got, prg.mmo(key, s));
        }
    }
}

/// Both parties' keys of `count` random pairs from the kernel, with or without VAES.
fn keys_with<P: Payload>(vaes: bool, n_bits: u32, count: usize, beta: impl Fn(u64) -> P) -> Option<Vec<u8>> {
    let kernel = Keygen::with_vaes(vaes)?;
    let lay = Layout::new(n_bits, P::WORDS);
    let mut r = SeedRng::from_seed([n_bits as u8; 32]);
    let mask = if n_bits == 64 { u64::MAX } else { (1 << n_bits) - 1 };
    let at: Vec<u64> = (0..count).map(|i| if i % 3 == 0 { mask } else { r.next_u64() & mask }).collect();
    let bt: Vec<P> = (0..count).map(|_| beta(r.next_u64())).collect();
    let roots: Vec<u128> = (0..2 * count).map(|_| r.next_u128() & !1).collect();
    let mut out = vec![0u8; count * lay.len];
    kernel.run(&lay, n_bits, &at, &bt, &roots, &mut out);
    Some(out)
}

#[test]
fn vaes_key_generation_equals_aes_ni_byte_for_byte() {
    if !(available() && vaes_available()) {
        eprintln!("SKIPPED: this CPU has no VAES; the AES-NI path is what runs here");
        return;
    }
    for n_bits in [1u32, 2, 7, 16, 33, 63, 64] {
        // Odd counts leave a pair with one group (the VAES path walks an empty second one).
        for count in [1usize, 2, 3, 15, 16] {
            let plain = keys_with(false, n_bits, count, |b| b);
            assert_eq!(keys_with(true, n_bits, count, |b| b), plain, "DCF n={n_bits} count={count}");
            let plain2 = keys_with(false, n_bits, count, |b| [b, !b]);
            assert_eq!(keys_with(true, n_bits, count, |b| [b, !b]), plain2, "DCF2 n={n_bits} count={count}");
        }
    }
}

#[test]
fn vaes_evaluation_equals_aes_ni() {
    if !(available() && vaes_available()) {
        eprintln!("SKIPPED: this CPU has no VAES; the AES-NI path is what runs here");
        return;
    }
    fn check<P: Payload + std::fmt::Debug>(beta: impl Fn(u64) -> P + Copy) {
        for n_bits in [1u32, 5, 16, 63, 64] {
            // Counts around the pair size 2G, so pairs with an empty or short second group occur.
            for count in [1usize, 6, 7, 8, 13, 14, 15, 29, 100] {
                let keys = keys_with(false, n_bits, count, beta).unwrap_or_default();
                let batch = KeyBatch::<P>::parse(std::borrow::Cow::Owned(keys), count, n_bits, true).unwrap();
                let mut r = SeedRng::from_seed([count as u8; 32]);
                let mask = if n_bits == 64 { u64::MAX } else { (1 << n_bits) - 1 };
                let xs: Vec<u64> = (0..count).map(|_| r.next_u64() & mask).collect();
                for party in [0u8, 1] {
                    let run = |vaes: bool| {
                        let mut out = vec![P::default(); count];
                        assert!(eval_range_with(party, &batch, 0, &xs, &mut out, vaes));
                        out
                    };
                    assert_eq!(run(true), run(false), "n={n_bits} count={count} party {party}");
                }
            }
        }
    }
    check::<u64>(|b| b);
    check::<[u64; 2]>(|b| [b, b.rotate_left(9)]);
}

/// `AES(s) ⊕ s` with the kernel's key schedule.
#[target_feature(enable = "aes,sse4.1")]
fn mmo_ni(rk: &[__m128i; 11], s: u128) -> u128 {
    let mut b = _mm_xor_si128(to_m(s), rk[0]);
    for k in &rk[1..10] {
        b = _mm_aesenc_si128(b, *k);
    }
    from_m(_mm_aesenclast_si128(b, rk[10])) ^ s
}
