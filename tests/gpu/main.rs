//! The `cuda` kernel on a real GPU, bit for bit against the `cpu` kernel.
//!
//! These need an NVIDIA GPU and its driver, so they are `#[ignore]`d: `cargo test` lists them as
//! ignored (never as passed). On a GPU machine run them with
//! `cargo test -p mpcflow --test gpu -- --ignored`; without a GPU they then fail,
//! saying why.

use mpcflow_fss::{SeedRng, dcf, dcf2, dpf};
use mpcflow_kernel_cpu::CpuKernel;
use mpcflow_kernel_cuda::CudaKernel;
use mpcflow_sdk::kernel::{Conv2dGeometry, FssKeys, FssScheme, Kernel, pack_bits};

fn gpu() -> CudaKernel {
    let k = CudaKernel::new();
    if let Err(why) = k.available() {
        panic!("no usable GPU: {why}");
    }
    eprintln!("GPU: {}", k.descriptor().device);
    k
}

/// Deterministic test words (SplitMix64).
fn words(seed: u64, n: usize) -> Vec<u64> {
    let mut s = seed;
    (0..n)
        .map(|_| {
            s = s.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = s;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^ (z >> 31)
        })
        .collect()
}

fn domain(v: &[u64], n_bits: u32) -> Vec<u64> {
    let m = if n_bits == 64 { u64::MAX } else { (1u64 << n_bits) - 1 };
    v.iter().map(|x| x & m).collect()
}

/// Both kernels on the same keys and points; the outputs must be identical.
fn same(gpu: &CudaKernel, keys: &FssKeys<'_>, xs: &[u64]) {
    let w = keys.scheme.words();
    let (mut a, mut b) = (vec![0u64; xs.len() * w], vec![1u64; xs.len() * w]);
    CpuKernel::default().fss_eval(keys, xs, &mut a).unwrap();
    gpu.fss_eval(keys, xs, &mut b).unwrap();
    let first = a.iter().zip(&b).position(|(x, y)| x != y);
    assert!(
        first.is_none(),
        "{:?} n={} party {}: first difference at word {first:?}",
        keys.scheme,
        keys.n_bits,
        keys.party
    );
}

#[test]
#[ignore = "needs an NVIDIA GPU"]
fn dcf_dcf2_and_dpf_equal_the_cpu_bit_for_bit() {
    let g = gpu();
    let mut rng = SeedRng::from_seed([7; 32]);
    // 40,000 DCF2 keys at n = 63 are about 83 MB: three chunks through both streams.
    for (n_bits, count) in [(1u32, 1000usize), (16, 5000), (37, 5000), (63, 40_000), (64, 3000)] {
        let alphas = domain(&words(u64::from(n_bits), count), n_bits);
        let mut xs = domain(&words(u64::from(n_bits) + 100, count), n_bits);
        // Edge points: the threshold itself and its neighbours.
        for i in (0..count).step_by(4) {
            xs[i] = alphas[i];
        }
        let betas = words(3, count);
        let (mut k0, mut k1) = (vec![], vec![]);
        dcf::keygen_into(&alphas, &betas, n_bits, &mut rng, &mut k0, &mut k1).unwrap();
        for (party, k) in [(0u8, &k0), (1, &k1)] {
            same(&g, &FssKeys { scheme: FssScheme::Dcf, party, n_bits, bytes: k }, &xs);
        }
        let betas2: Vec<[u64; 2]> = betas.iter().map(|b| [*b, b.rotate_left(17)]).collect();
        let (mut k0, mut k1) = (vec![], vec![]);
        dcf2::keygen_into(&alphas, &betas2, n_bits, &mut rng, &mut k0, &mut k1).unwrap();
        for (party, k) in [(0u8, &k0), (1, &k1)] {
            same(&g, &FssKeys { scheme: FssScheme::Dcf2, party, n_bits, bytes: k }, &xs);
        }
        let pairs = dpf::keygen_batch(&alphas[..count.min(2000)], &betas[..count.min(2000)], n_bits, &mut rng).unwrap();
        for party in [0u8, 1] {
            let bytes: Vec<u8> =
                pairs.iter().flat_map(|(a, b)| if party == 0 { a.to_bytes() } else { b.to_bytes() }).collect();
            same(&g, &FssKeys { scheme: FssScheme::Dpf, party, n_bits, bytes: &bytes }, &xs[..pairs.len()]);
        }
    }
}

#[test]
#[ignore = "needs an NVIDIA GPU"]
fn matmul_conv2d_and_packing_equal_the_cpu_bit_for_bit() {
    let g = gpu();
    for (m, k, n) in [(1, 1, 1), (257, 129, 65), (64, 1, 300), (512, 512, 512)] {
        let (a, b) = (words(1, m * k), words(2, k * n));
        let (mut x, mut y) = (vec![0; m * n], vec![1; m * n]);
        CpuKernel::default().ring_matmul(&a, &b, m, k, n, &mut x).unwrap();
        g.ring_matmul(&a, &b, m, k, n, &mut y).unwrap();
        assert!(x == y, "matmul {m}×{k}×{n}");
    }
    for (stride, padding) in [([1, 1], [0, 0]), ([2, 1], [1, 2]), ([2, 2], [3, 3])] {
        let (batch, c, h, w, o, kh, kw) = (2, 3, 11, 9, 4, 3, 2);
        let out = |i: usize, k: usize, s: usize, p: usize| (i + 2 * p - k) / s + 1;
        let geo = Conv2dGeometry {
            batch,
            channels: c,
            input: [h, w],
            out_channels: o,
            kernel: [kh, kw],
            stride,
            padding,
            output: [out(h, kh, stride[0], padding[0]), out(w, kw, stride[1], padding[1])],
        };
        let (xv, wv) = (words(5, batch * c * h * w), words(6, o * c * kh * kw));
        let len = batch * o * geo.output[0] * geo.output[1];
        let (mut x, mut y) = (vec![0; len], vec![1; len]);
        CpuKernel::default().ring_conv2d(&xv, &wv, &geo, &mut x).unwrap();
        g.ring_conv2d(&xv, &wv, &geo, &mut y).unwrap();
        assert!(x == y, "conv2d stride {stride:?} padding {padding:?}");
    }
    for bits in [1u32, 7, 13, 32, 63, 64] {
        let v = words(u64::from(bits), 1001);
        let len = (v.len() * bits as usize).div_ceil(64);
        let (mut x, mut y) = (vec![0; len], vec![1; len]);
        pack_bits(&v, bits, &mut x).unwrap();
        g.pack_bits(&v, bits, &mut y).unwrap();
        assert!(x == y, "pack_bits {bits}");
    }
}
