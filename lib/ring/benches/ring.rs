//! Throughput of the ring products behind secure `matmul` (`ring::apply` → `linalg`).
//!
//! * `matmul/{1t,mt}/n`: one `n × n` by `n × n` wrapping product on one thread / on every
//!   available thread, with the default configuration (Strassen–Winograd on sizes from 256 up).
//! * `matmul_classic/{1t,mt}/n`: the same without Strassen–Winograd (the blocked kernel alone).
//! * `matmul_avx2_classic/…`: the blocked kernel with the AVX2 micro-kernel even where the CPU
//!   has AVX-512 (the default picks the widest the CPU has).
//! * `matmul_scalar/…` and `matmul_scalar_classic/…`: both again with the scalar micro-kernel
//!   instead of a vector one.
//! * `ring_apply/{fast,ref}/256`: `ring::apply` against the old path (the `ref` kernels in
//!   `Int` mode), both on one 256³ product.
//!
//! Elements are multiply-adds of the classical algorithm (`n³`), so `Gelem/s` reads as GMAC/s.
//! A secure 1024³ product under fss2pc costs the dealer one such product and each party two, or
//! one for a party whose share of an operand's mask is zero (an operand the other party holds,
//! such as its weights).

use std::hint::black_box;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use mpcflow_ring::kernels::eval_op;
use mpcflow_ring::linalg::{Config, Simd, matmul};
use mpcflow_ring::ring;
use mpcflow_sdk::shape::{TensorInfo, Visibility};
use mpcflow_sdk::{DType, FixedPoint, Op, Tensor};

fn words(seed: u64, n: usize) -> Vec<u64> {
    let mut x = seed;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        })
        .collect()
}

fn bench_matmul(c: &mut Criterion) {
    let all = Config::default();
    eprintln!("threads available: {}", all.threads);
    let classic = Config { strassen_min: usize::MAX, ..all };
    let avx2_classic = Config { simd: Simd::Avx2, ..classic };
    let scalar = Config { simd: Simd::None, ..all };
    let scalar_classic = Config { simd: Simd::None, ..classic };
    for (group, base) in [
        ("matmul", all),
        ("matmul_classic", classic),
        ("matmul_avx2_classic", avx2_classic),
        ("matmul_scalar", scalar),
        ("matmul_scalar_classic", scalar_classic),
    ] {
        let mut g = c.benchmark_group(group);
        g.sample_size(10).warm_up_time(Duration::from_millis(500)).measurement_time(Duration::from_secs(3));
        for n in [256usize, 1024] {
            let (a, b) = (words(1, n * n), words(2, n * n));
            let shape = [n, n];
            g.throughput(Throughput::Elements((n * n * n) as u64));
            for (label, threads) in [("1t", 1), ("mt", all.threads)] {
                let cfg = Config { threads, ..base };
                g.bench_with_input(BenchmarkId::new(label, n), &n, |bch, _| {
                    bch.iter(|| matmul([black_box(&a), &b], [&shape, &shape], &shape, &cfg))
                });
            }
        }
        g.finish();
    }
}

fn bench_apply(c: &mut Criterion) {
    let n = 256usize;
    let (a, b) = (words(3, n * n), words(4, n * n));
    let shape = [n, n];
    let mut g = c.benchmark_group("ring_apply");
    g.sample_size(10).warm_up_time(Duration::from_millis(500)).measurement_time(Duration::from_secs(3));
    g.throughput(Throughput::Elements((n * n * n) as u64));
    g.bench_function(BenchmarkId::new("fast", n), |bch| {
        bch.iter(|| ring::apply(&Op::Matmul, &[black_box(&a), &b], &[&shape, &shape], &shape))
    });
    let t = |d: &[u64]| Tensor { dtype: DType::Int, shape: shape.to_vec(), data: d.to_vec() };
    let (ta, tb) = (t(&a), t(&b));
    let out = TensorInfo { shape: shape.to_vec(), dtype: DType::Int, vis: Visibility::Secret };
    g.bench_function(BenchmarkId::new("ref", n), |bch| {
        bch.iter(|| eval_op(&Op::Matmul, &[black_box(&ta), &tb], &out, FixedPoint::new(0)))
    });
    g.finish();
}

criterion_group!(benches, bench_matmul, bench_apply);
criterion_main!(benches);
