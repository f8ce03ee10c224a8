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
//! * `dcf_many/…`, `dcf2_many/…`: one key *per point*, 1,000,000 keys (elements = keys or key
//!   pairs): `eval_many` (one party, key `i` at its own point; `2n` AES per key for DCF, `2n + 1`
//!   for DCF2), `eval_many_par` (2 threads), `from_bytes` (validating one party's concatenated
//!   keys; no copy), `keygen_into` (both parties' bytes into reused buffers; `6n` AES per pair for
//!   DCF, `8n + 2` for DCF2) and `keygen_into_par` (2 threads, fresh buffers as a dealer has them).
//! * `halftree_many/…`: the half-tree one-bit DCF (DReLU) at n = 63, 1,000,000 keys: `eval_many`,
//!   `eval_many_par` (`n − 6` AES per key) and `keygen_into_par` (`2(n − 6)` per pair).
//! * `summary/report`: times each of those once more (best of two) next to raw AES, prints the
//!   share of the AES bound, and runs the whole 1M-ReLU pipeline once (dealer `dcf2::keygen_into_par`
//!   at n = 63, then per party `from_vec` and `eval_many_par`), printing each stage.
//!
//! AES share = (evaluations/s × AES per evaluation) / (raw AES blocks/s). Under each evaluation
//! line the summary also prints the memory bound: one key per point means every key byte is
//! read once from memory, so `key bytes / streaming read bandwidth` (measured in the same run)
//! is a floor no evaluation kernel goes below.

use std::hint::black_box;
use std::time::{Duration, Instant};

use aes::Aes128;
use aes::cipher::{Array, BlockCipherEncrypt, KeyInit};
use criterion::{BenchmarkId, Criterion, SamplingMode, Throughput, criterion_group, criterion_main};
use mpcflow_fss::prg::{Block, Prg, PrgKey, SeedRng};
use mpcflow_fss::{Dcf2Key, Dcf2KeyBatch, DcfKey, DcfKeyBatch, dcf, dcf2, dpf, halftree, table};

const BLOCKS: usize = 1024;
const POINTS: usize = 4096;
const KEYS: usize = 1024;
const NS: [u32; 3] = [16, 32, 64];
/// Keys in the one-key-per-point benchmarks.
const MANY: usize = 1_000_000;
/// Threads of the `_par` variants.
const THREADS: usize = 2;

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

/// One party's side of a one-key-per-point workload: its keys and points.
struct Many<B> {
    n: u32,
    batch: B,
    xs: Vec<u64>,
}

fn many_dcf(n: u32) -> Many<DcfKeyBatch<'static>> {
    let mut rng = SeedRng::from_seed([11; 32]);
    let alphas: Vec<u64> = (0..MANY).map(|_| rng.next_u64() & mask(n)).collect();
    let betas: Vec<u64> = (0..MANY).map(|_| rng.next_u64()).collect();
    let (mut b0, mut b1) = (Vec::new(), Vec::new());
    let res = dcf::keygen_into_par(&alphas, &betas, n, &mut rng, &mut b0, &mut b1, THREADS);
    drop(b1);
    let batch = res.and_then(|()| DcfKeyBatch::from_vec(b0, MANY, n)).unwrap_or_else(|e| panic!("{e}"));
    Many { n, batch, xs: (0..MANY).map(|_| rng.next_u64() & mask(n)).collect() }
}

fn many_dcf2(n: u32) -> Many<Dcf2KeyBatch<'static>> {
    let mut rng = SeedRng::from_seed([12; 32]);
    let alphas: Vec<u64> = (0..MANY).map(|_| rng.next_u64() & mask(n)).collect();
    let betas: Vec<[u64; 2]> = (0..MANY).map(|_| [rng.next_u64(), rng.next_u64()]).collect();
    let (mut b0, mut b1) = (Vec::new(), Vec::new());
    let res = dcf2::keygen_into_par(&alphas, &betas, n, &mut rng, &mut b0, &mut b1, THREADS);
    drop(b1);
    let batch = res.and_then(|()| Dcf2KeyBatch::from_vec(b0, MANY, n)).unwrap_or_else(|e| panic!("{e}"));
    Many { n, batch, xs: (0..MANY).map(|_| rng.next_u64() & mask(n)).collect() }
}

fn many_group<'a>(c: &'a mut Criterion, name: &str) -> criterion::BenchmarkGroup<'a, criterion::measurement::WallTime> {
    let mut g = c.benchmark_group(name);
    g.sample_size(10)
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(2))
        .sampling_mode(SamplingMode::Flat)
        .throughput(Throughput::Elements(MANY as u64));
    g
}

fn bench_dcf_many(c: &mut Criterion) {
    let mut g = many_group(c, "dcf_many");
    for n in [63u32, 64] {
        // Built on first use, so a filter that skips these benchmarks skips the set-up too.
        let mut st: Option<Many<DcfKeyBatch<'static>>> = None;
        let mut out = vec![0u64; MANY];
        g.bench_function(BenchmarkId::new("eval_many", n), |b| {
            let m = st.get_or_insert_with(|| many_dcf(n));
            b.iter(|| dcf::eval_many(0, &m.batch, black_box(&m.xs), &mut out))
        });
        g.bench_function(BenchmarkId::new("eval_many_par", n), |b| {
            let m = st.get_or_insert_with(|| many_dcf(n));
            b.iter(|| dcf::eval_many_par(0, &m.batch, black_box(&m.xs), &mut out, THREADS))
        });
        g.bench_function(BenchmarkId::new("from_bytes", n), |b| {
            let m = st.get_or_insert_with(|| many_dcf(n));
            b.iter(|| DcfKeyBatch::from_bytes(black_box(m.batch.as_bytes()), MANY, m.n).map(|b| b.len()))
        });
    }
    let n = 63;
    let mut rng = SeedRng::from_seed([13; 32]);
    let mut inputs: Option<(Vec<u64>, Vec<u64>)> = None;
    let (mut b0, mut b1) = (Vec::new(), Vec::new());
    for par in [false, true] {
        let id = BenchmarkId::new(if par { "keygen_into_par" } else { "keygen_into" }, n);
        g.bench_function(id, |b| {
            let (alphas, betas) = inputs.get_or_insert_with(|| {
                let mut r = SeedRng::from_seed([14; 32]);
                ((0..MANY).map(|_| r.next_u64() & mask(n)).collect(), (0..MANY).map(|_| r.next_u64()).collect())
            });
            // keygen_into: reused buffers (compute and copies only); keygen_into_par: fresh buffers,
            // as a dealer has (first touches of the pages included).
            b.iter(|| {
                b0.clear();
                b1.clear();
                if par {
                    (b0, b1) = (Vec::new(), Vec::new());
                    dcf::keygen_into_par(black_box(alphas), betas, n, &mut rng, &mut b0, &mut b1, THREADS)
                } else {
                    dcf::keygen_into(black_box(alphas), betas, n, &mut rng, &mut b0, &mut b1)
                }
            })
        });
    }
    g.finish();
}

fn bench_dcf2_many(c: &mut Criterion) {
    let mut g = many_group(c, "dcf2_many");
    let n = 63;
    let mut st: Option<Many<Dcf2KeyBatch<'static>>> = None;
    let mut out = vec![[0u64; 2]; MANY];
    g.bench_function(BenchmarkId::new("eval_many", n), |b| {
        let m = st.get_or_insert_with(|| many_dcf2(n));
        b.iter(|| dcf2::eval_many(0, &m.batch, black_box(&m.xs), &mut out))
    });
    g.bench_function(BenchmarkId::new("eval_many_par", n), |b| {
        let m = st.get_or_insert_with(|| many_dcf2(n));
        b.iter(|| dcf2::eval_many_par(0, &m.batch, black_box(&m.xs), &mut out, THREADS))
    });
    g.bench_function(BenchmarkId::new("from_bytes", n), |b| {
        let m = st.get_or_insert_with(|| many_dcf2(n));
        b.iter(|| Dcf2KeyBatch::from_bytes(black_box(m.batch.as_bytes()), MANY, m.n).map(|b| b.len()))
    });
    drop(st);
    let mut rng = SeedRng::from_seed([15; 32]);
    let mut inputs: Option<(Vec<u64>, Vec<[u64; 2]>)> = None;
    let (mut b0, mut b1) = (Vec::new(), Vec::new());
    for par in [false, true] {
        let id = BenchmarkId::new(if par { "keygen_into_par" } else { "keygen_into" }, n);
        g.bench_function(id, |b| {
            let (alphas, betas) = inputs.get_or_insert_with(|| relu_inputs(n));
            b.iter(|| {
                b0.clear();
                b1.clear();
                if par {
                    (b0, b1) = (Vec::new(), Vec::new());
                    dcf2::keygen_into_par(black_box(alphas), betas, n, &mut rng, &mut b0, &mut b1, THREADS)
                } else {
                    dcf2::keygen_into(black_box(alphas), betas, n, &mut rng, &mut b0, &mut b1)
                }
            })
        });
    }
    g.finish();
}

/// The half-tree one-bit DCF of DReLU at n = 63 (elements = keys or key pairs): `eval_many`,
/// `eval_many_par` (57 AES per key), `keygen_into_par` (114 per pair, fresh buffers).
fn bench_halftree_many(c: &mut Criterion) {
    let mut g = many_group(c, "halftree_many");
    let n = 63;
    let mut rng = SeedRng::from_seed([17; 32]);
    let alphas: Vec<u64> = (0..MANY).map(|_| rng.next_u64() & mask(n)).collect();
    let xs: Vec<u64> = (0..MANY).map(|_| rng.next_u64() & mask(n)).collect();
    let (mut k0, mut k1) = (Vec::new(), Vec::new());
    ok(halftree::keygen_into_par(&alphas, n, &mut rng, &mut k0, &mut k1, THREADS));
    drop(k1);
    let keys = ok(halftree::HalfTreeKeys::from_bytes(&k0, MANY, n));
    let mut out = vec![0u8; MANY];
    g.bench_function(BenchmarkId::new("eval_many", n), |b| {
        b.iter(|| halftree::eval_many(&keys, black_box(&xs), &mut out))
    });
    g.bench_function(BenchmarkId::new("eval_many_par", n), |b| {
        b.iter(|| halftree::eval_many_par(&keys, black_box(&xs), &mut out, THREADS))
    });
    // The same evaluation on 8192 keys (7.4 MB, cache-resident), 122 times over.
    let few = 8192;
    let small = ok(halftree::HalfTreeKeys::from_bytes(&k0[..halftree::batch_len(few, n)], few, n));
    let mut out_small = vec![0u8; few];
    g.bench_function(BenchmarkId::new("eval_cached_x122", n), |b| {
        b.iter(|| {
            for _ in 0..122 {
                halftree::eval_many(&small, black_box(&xs[..few]), &mut out_small).unwrap_or(());
            }
        })
    });
    g.bench_function(BenchmarkId::new("keygen_into_par", n), |b| {
        b.iter(|| {
            let (mut b0, mut b1) = (Vec::new(), Vec::new());
            halftree::keygen_into_par(black_box(&alphas), n, &mut rng, &mut b0, &mut b1, THREADS)
        })
    });
    // Into regions written before, as a dealer's recycled buffers are: no page faults, on one
    // thread (what the AES and the stores cost).
    let len = halftree::batch_len(MANY, n);
    let (mut r0, mut r1) = (vec![1u8; len], vec![2u8; len]);
    g.bench_function(BenchmarkId::new("keygen_into_slices", n), |b| {
        b.iter(|| halftree::keygen_into_slices(black_box(&alphas), n, &mut rng, &mut r0, &mut r1, 1))
    });
    // The same with the keys (after the batch's 2-byte header) starting on a cache line.
    drop((r0, r1));
    let (mut a0, mut a1) = (vec![1u8; len + 128], vec![2u8; len + 128]);
    let o0 = (64 + 62 - (a0.as_ptr() as usize % 64)) % 64;
    let o1 = (64 + 62 - (a1.as_ptr() as usize % 64)) % 64;
    g.bench_function(BenchmarkId::new("keygen_into_slices_aligned", n), |b| {
        b.iter(|| {
            halftree::keygen_into_slices(
                black_box(&alphas),
                n,
                &mut rng,
                &mut a0[o0..o0 + len],
                &mut a1[o1..o1 + len],
                1,
            )
        })
    });
    g.finish();
}

/// Table keys of a lookup on 8 bits with three payload words (exp, sigmoid, tanh, gelu):
/// full-domain evaluation of 32768 keys (one chunk of a lookup node) on one thread, and key
/// generation of as many pairs.
fn bench_table(c: &mut Criterion) {
    let mut g = c.benchmark_group("table");
    g.sample_size(10);
    let (n, w, count) = (8, 3, 1 << 15);
    g.throughput(Throughput::Elements(count as u64));
    let mut rng = SeedRng::from_seed([18; 32]);
    let alphas: Vec<u64> = (0..count).map(|_| rng.next_u64() & mask(n)).collect();
    let betas: Vec<u64> = (0..count * w as usize).map(|_| rng.next_u64()).collect();
    let len = table::batch_len(count, n, w);
    let (mut k0, mut k1) = (vec![0u8; len], vec![0u8; len]);
    ok(table::keygen_into_slices(&alphas, &betas, n, w, &mut rng, &mut k0, &mut k1, 1));
    g.bench_function(BenchmarkId::new("keygen", n), |b| {
        b.iter(|| table::keygen_into_slices(black_box(&alphas), &betas, n, w, &mut rng, &mut k0, &mut k1, 1))
    });
    let keys = ok(table::TableKeys::from_bytes(&k0, count, n, w));
    let mut exp = table::Expander::default();
    let mut out = vec![0u64; 64 * table::eval_len(n, w)];
    g.bench_function(BenchmarkId::new("eval_all", n), |b| {
        b.iter(|| {
            for start in (0..count).step_by(64) {
                ok(exp.eval_all(0, &keys, start..start + 64, &mut out));
            }
        })
    });
    let tables: Vec<Vec<u64>> = (0..3).map(|_| (0..512).map(|_| rng.next_u64()).collect()).collect();
    let refs: Vec<&[u64]> = tables.iter().map(|t| t.as_slice()).collect();
    let pairs = [(0, 0), (1, 0), (2, 0), (1, 1), (2, 1), (2, 2)];
    let offsets: Vec<usize> = (0..count).map(|_| rng.next_u64() as usize % 256).collect();
    let mut sums = vec![0u64; count * pairs.len()];
    g.bench_function(BenchmarkId::new("rotated_dots", n), |b| {
        b.iter(|| {
            ok(exp.rotated_dots(
                0,
                &keys,
                0..count,
                &table::Dots { tables: &refs, pairs: &pairs, offsets: &offsets },
                &mut sums,
            ))
        })
    });
    g.finish();
}

/// ReLU-like dealer inputs: `α` = a 63-bit mask, `β = [1 − 2s, (1 − 2s)·r]`.
fn relu_inputs(n: u32) -> (Vec<u64>, Vec<[u64; 2]>) {
    let mut r = SeedRng::from_seed([16; 32]);
    let masks: Vec<u64> = (0..MANY).map(|_| r.next_u64()).collect();
    let alphas = masks.iter().map(|m| m & mask(n)).collect();
    let betas = masks
        .iter()
        .map(|m| {
            let b = 1u64.wrapping_sub(2 * (m >> 63));
            [b, b.wrapping_mul(*m)]
        })
        .collect();
    (alphas, betas)
}

/// Best of `reps` runs of `f`, in seconds.
fn best_of(reps: usize, mut f: impl FnMut()) -> f64 {
    (0..reps)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed().as_secs_f64()
        })
        .fold(f64::INFINITY, f64::min)
}

fn ok<T>(r: Result<T, mpcflow_fss::FssError>) -> T {
    r.unwrap_or_else(|e| panic!("{e}"))
}

/// Prints one line of the summary: seconds for `MANY` keys, ns per key, and the share of the
/// raw-AES bound (`aes_per_key` blocks at `aes_ns` each).
fn line(what: &str, secs: f64, aes_per_key: f64, aes_ns: f64, threads: f64) {
    let ns = secs * 1e9 / MANY as f64;
    let bound = aes_per_key * aes_ns / threads;
    if aes_per_key > 0.0 {
        eprintln!(
            "  {what:<44} {:>8.1} ms {ns:>8.1} ns/key   AES bound {bound:>6.1} ns/key = {:>5.1} %",
            secs * 1e3,
            100.0 * bound / ns
        );
    } else {
        eprintln!("  {what:<44} {:>8.1} ms {ns:>8.1} ns/key", secs * 1e3);
    }
}

/// ns per byte of streaming reads from memory on `threads` threads (a 512 MiB buffer, far
/// larger than the caches, summed in equal slices): the bound of any kernel that must read every
/// key byte once.
fn read_ns_per_byte(threads: usize) -> f64 {
    let words = vec![1u64; 1 << 26];
    let secs = best_of(3, || {
        std::thread::scope(|s| {
            for part in words.chunks(words.len().div_ceil(threads)) {
                s.spawn(move || black_box(part.iter().fold(0u64, |a, &w| a.wrapping_add(w))));
            }
        })
    });
    secs * 1e9 / (words.len() * 8) as f64
}

/// Prints, under a line of [`line`], the memory bound: reading `bytes_per_key` at `ns_per_byte`.
fn mem_line(secs: f64, bytes_per_key: usize, ns_per_byte: f64) {
    let (ns, bound) = (secs * 1e9 / MANY as f64, bytes_per_key as f64 * ns_per_byte);
    eprintln!("  {:<44} {:>8} {:>11}   read bound {bound:>6.1} ns/key = {:>5.1} %", "", "", "", 100.0 * bound / ns);
}

/// ns per block of raw 256-bit VAES (8 independent registers of two blocks, 10 rounds), where
/// the CPU has it: the hardware's AES bound when it is faster than the `aes` crate's AES-NI.
#[cfg(target_arch = "x86_64")]
#[allow(unsafe_code)]
fn vaes_ns_per_block() -> Option<f64> {
    if !(std::arch::is_x86_feature_detected!("vaes") && std::arch::is_x86_feature_detected!("avx2")) {
        return None;
    }
    // SAFETY: VAES and AVX2 are available (checked just above).
    Some(unsafe { vaes_blocks() })
}

#[cfg(not(target_arch = "x86_64"))]
fn vaes_ns_per_block() -> Option<f64> {
    None
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,vaes")]
fn vaes_blocks() -> f64 {
    use std::arch::x86_64::{_mm256_aesenc_epi128, _mm256_aesenclast_epi128, _mm256_set1_epi64x, _mm256_xor_si256};
    const ITERS: usize = 200_000;
    let keys: [_; 11] = std::array::from_fn(|r| _mm256_set1_epi64x(0x0123_4567_89ab_cdef ^ r as i64));
    let mut s: [_; 8] = std::array::from_fn(|i| _mm256_set1_epi64x(i as i64));
    // Timed here rather than through `best_of`: the loop must be compiled with this function's
    // target features (a closure's body was not, and ran at half speed).
    let mut secs = f64::INFINITY;
    for _ in 0..5 {
        let t = Instant::now();
        for _ in 0..ITERS {
            for v in s.iter_mut() {
                *v = _mm256_xor_si256(*v, keys[0]);
            }
            for k in &keys[1..10] {
                for v in s.iter_mut() {
                    *v = _mm256_aesenc_epi128(*v, *k);
                }
            }
            for v in s.iter_mut() {
                *v = _mm256_aesenclast_epi128(*v, keys[10]);
            }
        }
        black_box(&s);
        secs = secs.min(t.elapsed().as_secs_f64());
    }
    secs * 1e9 / (ITERS * 16) as f64
}

fn report() {
    let prg = Prg::global();
    let cipher = Aes128::new(&Array::from([0x42u8; 16]));
    let mut buf: Vec<Block> = (0..BLOCKS).map(|i| Array::from((i as u128).to_le_bytes())).collect();
    let aes_ns = best_of(5, || {
        for _ in 0..2000 {
            cipher.encrypt_blocks(black_box(&mut buf));
        }
    }) * 1e9
        / (2000 * BLOCKS) as f64;
    eprintln!("\n=== FSS one-key-per-point summary ({MANY} keys, backend {}) ===", prg.backend());
    eprintln!("  raw AES: {aes_ns:.3} ns/block (one thread, {BLOCKS}-block encrypt_blocks)");
    // The bound is the faster of the two: the kernels use VAES where the CPU has it.
    let aes_ns = match vaes_ns_per_block() {
        Some(v) => {
            eprintln!("  raw VAES-256: {v:.3} ns/block (one thread); shares below are of this bound");
            v.min(aes_ns)
        }
        None => aes_ns,
    };
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get()).min(THREADS) as f64;
    let (read_1t, read_mt) = (read_ns_per_byte(1), read_ns_per_byte(threads as usize));
    eprintln!(
        "  memory reads: {:.1} GB/s on one thread, {:.1} GB/s on {threads} (streaming a 512 MiB buffer)",
        1.0 / read_1t,
        1.0 / read_mt
    );
    for n in [63u32, 64] {
        let m = many_dcf(n);
        let nf = f64::from(n);
        let mut out = vec![0u64; MANY];
        let t = best_of(2, || ok(dcf::eval_many(0, &m.batch, &m.xs, &mut out)));
        line(&format!("dcf eval_many n={n}"), t, 2.0 * nf, aes_ns, 1.0);
        mem_line(t, DcfKey::serialized_len(n), read_1t);
        let t = best_of(2, || ok(dcf::eval_many_par(0, &m.batch, &m.xs, &mut out, THREADS)));
        line(&format!("dcf eval_many_par n={n}"), t, 2.0 * nf, aes_ns, threads);
        mem_line(t, DcfKey::serialized_len(n), read_mt);
        let t = best_of(2, || drop(ok(DcfKeyBatch::from_bytes(m.batch.as_bytes(), MANY, n))));
        line(&format!("dcf from_bytes n={n} ({} B/key)", DcfKey::serialized_len(n)), t, 0.0, aes_ns, 1.0);
    }
    {
        let n = 63;
        let nf = f64::from(n);
        let mut r = SeedRng::from_seed([17; 32]);
        let alphas: Vec<u64> = (0..MANY).map(|_| r.next_u64() & mask(n)).collect();
        let betas: Vec<u64> = (0..MANY).map(|_| r.next_u64()).collect();
        let (mut b0, mut b1) = (Vec::new(), Vec::new());
        for par in [false, true] {
            let t = best_of(2, || {
                if par {
                    let (mut b0, mut b1) = (Vec::new(), Vec::new());
                    ok(dcf::keygen_into_par(&alphas, &betas, n, &mut r, &mut b0, &mut b1, THREADS));
                } else {
                    b0.clear();
                    b1.clear();
                    ok(dcf::keygen_into(&alphas, &betas, n, &mut r, &mut b0, &mut b1));
                }
            });
            let what =
                if par { "dcf keygen_into_par n=63 (fresh buffers)" } else { "dcf keygen_into n=63 (reused buffers)" };
            line(what, t, 6.0 * nf, aes_ns, if par { threads } else { 1.0 });
        }
    }
    {
        let n = 63;
        let nf = f64::from(n);
        let m = many_dcf2(n);
        let mut out = vec![[0u64; 2]; MANY];
        let t = best_of(2, || ok(dcf2::eval_many(0, &m.batch, &m.xs, &mut out)));
        line("dcf2 eval_many n=63", t, 2.0 * nf + 1.0, aes_ns, 1.0);
        mem_line(t, Dcf2Key::serialized_len(n), read_1t);
        let t = best_of(2, || ok(dcf2::eval_many_par(0, &m.batch, &m.xs, &mut out, THREADS)));
        line("dcf2 eval_many_par n=63", t, 2.0 * nf + 1.0, aes_ns, threads);
        mem_line(t, Dcf2Key::serialized_len(n), read_mt);
        let t = best_of(2, || drop(ok(Dcf2KeyBatch::from_bytes(m.batch.as_bytes(), MANY, n))));
        line(&format!("dcf2 from_bytes n=63 ({} B/key)", Dcf2Key::serialized_len(n)), t, 0.0, aes_ns, 1.0);
        drop(m);
        let (alphas, betas) = relu_inputs(n);
        eprintln!("  (fresh buffers: the first touch of every page of the keys is in the time)");
        let mut r = SeedRng::from_seed([18; 32]);
        let (mut b0, mut b1) = (Vec::new(), Vec::new());
        for par in [false, true] {
            let t = best_of(2, || {
                if par {
                    let (mut b0, mut b1) = (Vec::new(), Vec::new());
                    ok(dcf2::keygen_into_par(&alphas, &betas, n, &mut r, &mut b0, &mut b1, THREADS));
                } else {
                    b0.clear();
                    b1.clear();
                    ok(dcf2::keygen_into(&alphas, &betas, n, &mut r, &mut b0, &mut b1));
                }
            });
            let what = if par {
                "dcf2 keygen_into_par n=63 (fresh buffers)"
            } else {
                "dcf2 keygen_into n=63 (reused buffers)"
            };
            line(what, t, 8.0 * nf + 2.0, aes_ns, if par { threads } else { 1.0 });
        }

        // The 1M-ReLU pipeline once, each stage on up to THREADS threads, in one process.
        eprintln!("  --- 1M ReLU pipeline (dcf2, n = 63, {THREADS} threads per stage) ---");
        let xhat: Vec<u64> = (0..MANY).map(|_| r.next_u64() & mask(n)).collect();
        let t_all = Instant::now();
        let t = Instant::now();
        let (mut b0, mut b1) = (Vec::new(), Vec::new());
        ok(dcf2::keygen_into_par(&alphas, &betas, n, &mut r, &mut b0, &mut b1, THREADS));
        let t_deal = t.elapsed().as_secs_f64();
        let mut stages = vec![("dealer keygen_into_par", t_deal)];
        for (party, bytes) in [(0u8, b0), (1, b1)] {
            let mut y = vec![[0u64; 2]; MANY];
            let t = Instant::now();
            let batch = ok(Dcf2KeyBatch::from_vec(bytes, MANY, n));
            let t_parse = t.elapsed().as_secs_f64();
            let t = Instant::now();
            ok(dcf2::eval_many_par(party, &batch, &xhat, &mut y, THREADS));
            let t_eval = t.elapsed().as_secs_f64();
            black_box(&y);
            stages.push((
                if party == 0 { "party 0 from_vec (validate)" } else { "party 1 from_vec (validate)" },
                t_parse,
            ));
            stages.push((if party == 0 { "party 0 eval_many_par" } else { "party 1 eval_many_par" }, t_eval));
        }
        for (what, secs) in &stages {
            eprintln!("  {what:<34} {:>8.1} ms", secs * 1e3);
        }
        eprintln!("  {:<34} {:>8.1} ms (target 200 ms)", "total", t_all.elapsed().as_secs_f64() * 1e3);
        let aes_total = (8.0 * nf + 2.0) + 2.0 * (2.0 * nf + 1.0);
        eprintln!(
            "  AES bound of the whole pipeline: {aes_total:.0} blocks per ReLU → {:.1} ms on {threads} cores",
            aes_total * aes_ns * MANY as f64 / threads / 1e6
        );
    }
}

fn bench_summary(c: &mut Criterion) {
    let mut g = c.benchmark_group("summary");
    g.sample_size(10).warm_up_time(Duration::from_millis(1)).measurement_time(Duration::from_millis(1));
    let mut done = false;
    g.bench_function("report", |b| {
        if !done {
            done = true;
            report();
        }
        b.iter(|| ())
    });
    g.finish();
}

criterion_group!(
    benches,
    bench_aes,
    bench_dcf,
    bench_dpf,
    bench_dcf_many,
    bench_dcf2_many,
    bench_halftree_many,
    bench_table,
    bench_summary
);
criterion_main!(benches);
