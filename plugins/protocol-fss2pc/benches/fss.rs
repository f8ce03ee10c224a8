//! Throughput of the FSS core next to raw AES, so the share of AES in DCF cost can be read off.
//!
//! * `aes/encrypt_blocks_1024`: raw fixed-key AES-128, `encrypt_blocks` on a 1024-block buffer
//!   (elements = AES blocks).
//! * `prg/mmo_in_place_1024`: the tree PRG `AES_k(s) ⊕ s` on 1024 seeds (elements = AES blocks).
//! * `dcf/keygen_batch/n`: 1024 key pairs per iteration (elements = key pairs; `6n` AES each).
//! * `dcf/keygen_single/n`: one key pair (latency bound).
//! * `dcf/eval_batch/n`: one party, 4096 points (elements = evaluations; `2n` AES each).
//! * `dpf/eval_batch/n`: one party, 4096 points (elements = evaluations; `n` AES each).
//!
//! AES share = (evaluations/s × AES per evaluation) / (raw AES blocks/s).

use std::hint::black_box;

use aes::Aes128;
use aes::cipher::{Array, BlockCipherEncrypt, KeyInit};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use mpcflow_protocol_fss2pc::fss::prg::{Block, Prg, PrgKey, SeedRng};
use mpcflow_protocol_fss2pc::fss::{dcf, dpf};

const BLOCKS: usize = 1024;
const POINTS: usize = 4096;
const KEYS: usize = 1024;
const NS: [u32; 3] = [16, 32, 64];

fn mask(n: u32) -> u64 {
    if n >= 64 { u64::MAX } else { (1 << n) - 1 }
}

fn bench_aes(c: &mut Criterion) {
    eprintln!("AES backend: {} ({} blocks in parallel)", Prg::global().backend(), Prg::global().parallel_blocks());
    let mut g = c.benchmark_group("aes");
    g.throughput(Throughput::Elements(BLOCKS as u64));
    let cipher = Aes128::new(&Array::from([0x42u8; 16]));
    let mut buf: Vec<Block> = (0..BLOCKS).map(|i| Array::from((i as u128).to_le_bytes())).collect();
    g.bench_function("encrypt_blocks_1024", |b| b.iter(|| cipher.encrypt_blocks(black_box(&mut buf))));
    g.finish();

    let mut g = c.benchmark_group("prg");
    g.throughput(Throughput::Elements(BLOCKS as u64));
    let prg = Prg::global();
    let mut seeds: Vec<u128> = (0..BLOCKS as u128).collect();
    g.bench_function("mmo_in_place_1024", |b| b.iter(|| prg.mmo_in_place(PrgKey::Left, black_box(&mut seeds))));
    g.finish();
}

fn bench_dcf(c: &mut Criterion) {
    let mut rng = SeedRng::from_seed([9; 32]);
    let mut g = c.benchmark_group("dcf");
    for n in NS {
        let alphas: Vec<u64> = (0..KEYS).map(|_| rng.next_u64() & mask(n)).collect();
        let betas: Vec<u64> = (0..KEYS).map(|_| rng.next_u64()).collect();
        g.throughput(Throughput::Elements(KEYS as u64));
        g.bench_with_input(BenchmarkId::new("keygen_batch", n), &n, |b, &n| {
            b.iter(|| dcf::keygen_batch(black_box(&alphas), &betas, n, &mut rng))
        });
        g.throughput(Throughput::Elements(1));
        g.bench_with_input(BenchmarkId::new("keygen_single", n), &n, |b, &n| {
            b.iter(|| dcf::keygen(black_box(alphas[0]), betas[0], n, &mut rng))
        });
        let Ok((k0, _k1)) = dcf::keygen(alphas[0], betas[0], n, &mut rng) else { continue };
        let xs: Vec<u64> = (0..POINTS).map(|_| rng.next_u64() & mask(n)).collect();
        let mut out = vec![0u64; POINTS];
        g.throughput(Throughput::Elements(POINTS as u64));
        g.bench_with_input(BenchmarkId::new("eval_batch", n), &n, |b, _| {
            b.iter(|| dcf::eval_batch(0, &k0, black_box(&xs), &mut out))
        });
    }
    g.finish();
}

fn bench_dpf(c: &mut Criterion) {
    let mut rng = SeedRng::from_seed([10; 32]);
    let mut g = c.benchmark_group("dpf");
    for n in NS {
        let Ok((k0, _k1)) = dpf::keygen(rng.next_u64() & mask(n), 1, n, &mut rng) else { continue };
        let xs: Vec<u64> = (0..POINTS).map(|_| rng.next_u64() & mask(n)).collect();
        let mut out = vec![0u64; POINTS];
        g.throughput(Throughput::Elements(POINTS as u64));
        g.bench_with_input(BenchmarkId::new("eval_batch", n), &n, |b, _| {
            b.iter(|| dpf::eval_batch(0, &k0, black_box(&xs), &mut out))
        });
    }
    g.finish();
}

criterion_group!(benches, bench_aes, bench_dcf, bench_dpf);
criterion_main!(benches);
