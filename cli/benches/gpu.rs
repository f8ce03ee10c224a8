//! The `cuda` kernel against the `cpu` kernel: DCF evaluation (one key per point, the fss2pc
//! ReLU's DCF2 at n = 63) and u64 ring GEMM, and both against the GPU's copy bandwidth.
//!
//! `cargo bench -p mpcflow --bench gpu` runs criterion groups for each kernel
//! that is available (the CPU always; the GPU where there is one, otherwise it says why and
//! measures nothing on it), then `summary`: one line per measurement with throughput and the
//! ratios GPU/CPU and (for the GPU) of the bytes it moved per second to the copy bandwidth.
//! Every figure is a median taken in the same run.

use std::hint::black_box;
use std::time::Instant;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use mpcflow_fss::{SeedRng, dcf2};
use mpcflow_kernel_cpu::CpuKernel;
use mpcflow_kernel_cuda::CudaKernel;
use mpcflow_sdk::kernel::{FssKeys, FssScheme, Kernel};

const KEYS: usize = 1 << 20;
const N_BITS: u32 = 63;
const GEMM: usize = 1024;

fn words(seed: u64, n: usize) -> Vec<u64> {
    let mut s = seed;
    (0..n)
        .map(|_| {
            s = s.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = s;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb)
        })
        .collect()
}

struct Inputs {
    keys: Vec<u8>,
    xs: Vec<u64>,
    a: Vec<u64>,
    b: Vec<u64>,
}

fn inputs() -> Inputs {
    let m = (1u64 << N_BITS) - 1;
    let alphas: Vec<u64> = words(1, KEYS).iter().map(|v| v & m).collect();
    let xs: Vec<u64> = words(2, KEYS).iter().map(|v| v & m).collect();
    let betas: Vec<[u64; 2]> = words(3, KEYS).iter().map(|b| [*b, !b]).collect();
    let (mut k0, mut k1) = (vec![], vec![]);
    dcf2::keygen_into_par(&alphas, &betas, N_BITS, &mut SeedRng::from_seed([9; 32]), &mut k0, &mut k1, 2)
        .expect("keys");
    Inputs { keys: k0, xs, a: words(4, GEMM * GEMM), b: words(5, GEMM * GEMM) }
}

fn kernels() -> Vec<(&'static str, Box<dyn Kernel>)> {
    let mut v: Vec<(&'static str, Box<dyn Kernel>)> = vec![("cpu", Box::new(CpuKernel::default()))];
    let cuda = CudaKernel::new();
    match cuda.available() {
        Ok(()) => v.push(("cuda", Box::new(cuda))),
        Err(why) => eprintln!("cuda: not measured ({why})"),
    }
    v
}

fn dcf_eval(k: &dyn Kernel, inp: &Inputs, out: &mut [u64]) {
    let keys = FssKeys { scheme: FssScheme::Dcf2, party: 0, n_bits: N_BITS, bytes: &inp.keys };
    k.fss_eval(&keys, &inp.xs, out).expect("fss_eval");
}

fn bench(c: &mut Criterion) {
    let inp = inputs();
    let ks = kernels();
    let mut g = c.benchmark_group("dcf2_eval_1M_n63");
    g.sample_size(10).throughput(Throughput::Elements(KEYS as u64));
    let mut out = vec![0u64; 2 * KEYS];
    for (name, k) in &ks {
        g.bench_function(*name, |b| b.iter(|| dcf_eval(k.as_ref(), &inp, black_box(&mut out))));
    }
    g.finish();
    let mut g = c.benchmark_group("ring_gemm_1024");
    g.sample_size(10).throughput(Throughput::Elements((GEMM * GEMM * GEMM) as u64));
    let mut c_out = vec![0u64; GEMM * GEMM];
    for (name, k) in &ks {
        g.bench_function(*name, |b| {
            b.iter(|| k.ring_matmul(&inp.a, &inp.b, GEMM, GEMM, GEMM, black_box(&mut c_out)).expect("gemm"))
        });
    }
    g.finish();
}

fn median(mut f: impl FnMut(), n: usize) -> f64 {
    let mut t: Vec<f64> = (0..n)
        .map(|_| {
            let s = Instant::now();
            f();
            s.elapsed().as_secs_f64()
        })
        .collect();
    t.sort_by(f64::total_cmp);
    t[t.len() / 2]
}

fn summary(_: &mut Criterion) {
    let inp = inputs();
    let ks = kernels();
    let mut out = vec![0u64; 2 * KEYS];
    let mut c_out = vec![0u64; GEMM * GEMM];
    let key_bytes = inp.keys.len() + 8 * inp.xs.len() + 16 * KEYS;
    eprintln!("\n=== kernel summary (medians of 5; {KEYS} DCF2 keys at n = {N_BITS}; {GEMM}³ u64 GEMM) ===");
    let mut cpu = (0.0, 0.0);
    for (name, k) in &ks {
        let dcf = median(|| dcf_eval(k.as_ref(), &inp, &mut out), 5);
        let gemm = median(|| k.ring_matmul(&inp.a, &inp.b, GEMM, GEMM, GEMM, &mut c_out).expect("gemm"), 5);
        if *name == "cpu" {
            cpu = (dcf, gemm);
        }
        let (evals, macs) = (KEYS as f64 / dcf, (GEMM * GEMM * GEMM) as f64 / gemm);
        eprintln!(
            "  {name:<5} DCF2: {:>8.2} M evals/s ({:.2}× cpu)   GEMM: {:>8.2} G mul-adds/s ({:.2}× cpu)",
            evals / 1e6,
            cpu.0 / dcf,
            macs / 1e9,
            cpu.1 / gemm
        );
        if *name == "cuda" {
            let cuda = CudaKernel::new();
            if let Ok(bw) = cuda.copy_bandwidth(1 << 30, 5) {
                // What each call moves between host and device and through device memory.
                let dcf_bw = key_bytes as f64 / dcf;
                let gemm_bw = (3 * GEMM * GEMM * 8) as f64 / gemm;
                eprintln!(
                    "        copy bandwidth {:.0} GB/s; DCF2 moves {:.1} GB/s ({:.3} of it), GEMM operands {:.1} GB/s ({:.3})",
                    bw / 1e9,
                    dcf_bw / 1e9,
                    dcf_bw / bw,
                    gemm_bw / 1e9,
                    gemm_bw / bw
                );
            }
        }
    }
}

criterion_group!(benches, bench, summary);
criterion_main!(benches);
