//! Fast ring kernels: batched `matmul`, `conv2d` and elementwise `mul` over Z(2^64).
//!
//! [`crate::ring::apply`] sends these three ops here instead of through the `ref` kernels (which
//! sum exact `i128` products with bounds checks). The results are the same words as `ref`'s in
//! `Int` mode, because in the ring every sum of wrapping products is the same whatever the
//! order: `ref` wraps its `i128` sum to 64 bits once, these kernels wrap at every step.
//!
//! - **matmul**: `B` is packed into panels of `KC × NR` words, a row panel of `A` into `KC × MR`,
//!   and an `MR × NR` micro-kernel keeps its sums in registers. The kernel is chosen at run time
//!   ([`Simd`]): on AVX-512DQ (module `avx512`) a block is 8 × 8 and each step one 64-bit
//!   `vpmullq` per row; on AVX2 alone (module `avx2`, x86-64 has no 64-bit vector multiply below
//!   AVX-512) it is 4 × 4 and each product is built from three 32-bit `vpmuludq`, with the one
//!   shift per output deferred to the end of the dot product; elsewhere it is scalar code (one
//!   `imul` per multiply-add). On this project's 2-core Zen 3 VM, a 1024³ product without
//!   Strassen–Winograd took 207 ms on one thread with AVX2 against 405 ms scalar (5.2 against
//!   2.6 GMAC/s, same run); on its 2-core Xeon (Sapphire Rapids class) a 256³ product takes 1.74
//!   ms with AVX-512 against 4.13 ms with AVX2 (9.7 against 4.1 GMAC/s; 1024³: 8.3 against 4.0),
//!   one thread, no Strassen–Winograd, `cargo bench -p mpcflow-ring`. Batch axes broadcast like NumPy
//!   (a rank-2 operand is shared by every batch). Products of more than `2^22` multiply-adds are
//!   split into stripes of output rows, one per thread ([`Config::threads`], scoped threads).
//! - **Strassen–Winograd** (7 half-size products instead of 8, plus 15 additions) splits each
//!   stripe while its three sizes are even and at least [`Config::strassen_min`] (256). It is
//!   an identity of every ring, so the words are the same; with the AVX2 kernel a 1024³ product
//!   takes 160–170 ms on one thread, 86 ms on two (scalar: 298 and 157 ms).
//! - **conv2d** (NCHW input, OIHW weight, stride, zero padding): im2col of a few images at a
//!   time, then `weight [O, C·kh·kw] × columns [C·kh·kw, oh·ow]` per image, which is the NCHW
//!   output directly.
//! - **mul**: equal shapes, or one operand with a single element; other broadcasts return `None`
//!   and are left to `ref`.
//!
//! Every entry point first checks its inputs exactly as `eval_op` does (word counts, the op's
//! shape rules, the planned output shape), so bad shapes are the same [`Error`]s, never panics.

use mpcflow_sdk::shape::{TensorInfo, Visibility, infer};
use mpcflow_sdk::{DType, Error, Op, Result};
use std::num::NonZeroUsize;
use std::sync::OnceLock;

#[cfg(target_arch = "x86_64")]
mod avx2;
#[cfg(target_arch = "x86_64")]
mod avx512;

/// Rows of the scalar and AVX2 micro-kernels (the AVX-512 one has [`MR_MAX`]).
const MR: usize = 4;
/// Rows of the tallest micro-kernel: the size of the `A` panel buffer.
const MR_MAX: usize = 8;
/// The sums of one micro-kernel call: `MR` rows of `NR` words.
type Block<const MR: usize, const NR: usize> = [[u64; NR]; MR];
/// Columns of the scalar and AVX2 micro-kernels (the AVX-512 one has 8), and the fewest columns
/// a packed product has.
const NR: usize = 4;
/// Inner-dimension block: a `KC × MR` panel of `A` stays in L1.
const KC: usize = 256;
/// Products with fewer output rows multiply `B` in place instead of packing it.
const PACK_MIN_ROWS: usize = 2 * MR;

/// How products are computed; [`Config::default`] is what [`crate::ring::apply`] uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Config {
    /// Threads for large products (default: [`std::thread::available_parallelism`]).
    pub threads: usize,
    /// Products of at most this many multiply-adds run on the calling thread (default `2^22`).
    pub parallel_min_macs: usize,
    /// A product is split by Strassen–Winograd while its three sizes are even and at least this
    /// (default 256: with the vector kernel, halves below 128 lose more to the additions than
    /// they save); `usize::MAX` turns it off.
    pub strassen_min: usize,
    /// Words of convolution columns built at a time (default `2^22`; at least one image).
    pub im2col_words: usize,
    /// The widest vector unit the micro-kernel may use (default [`Simd::Avx512`]); below that,
    /// what the CPU has decides, detected at run time. [`Simd::None`] runs the scalar kernel and
    /// [`Simd::Avx2`] the AVX2 one on any x86-64 CPU with it, for tests and benchmarks.
    pub simd: Simd,
}

/// Vector instruction sets the matmul micro-kernel can use, narrowest first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Simd {
    /// Scalar code only.
    None,
    /// AVX2: 4 × 4 blocks, each 64-bit product from three 32-bit multiplies.
    Avx2,
    /// AVX-512F and AVX-512DQ: 8 × 8 blocks, one 64-bit multiply per eight products.
    Avx512,
}

impl Default for Config {
    fn default() -> Config {
        static THREADS: OnceLock<usize> = OnceLock::new();
        let threads = *THREADS.get_or_init(|| std::thread::available_parallelism().map_or(1, NonZeroUsize::get));
        Config { threads, parallel_min_macs: 1 << 22, strassen_min: 256, im2col_words: 1 << 22, simd: Simd::Avx512 }
    }
}

/// Number of elements (0 when any size is 0, an error when the product overflows), as in `ref`.
fn numel(shape: &[usize]) -> Result<usize> {
    if shape.contains(&0) {
        return Ok(0);
    }
    shape
        .iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d))
        .ok_or_else(|| Error::invalid(format!("shape {shape:?} has too many elements")))
}

/// An empty vector with room for `n` words (an error, not an abort, when that fails).
fn with_capacity(n: usize) -> Result<Vec<u64>> {
    let mut v = Vec::new();
    v.try_reserve_exact(n)
        .map_err(|_| Error::ResourcesExhausted(format!("cannot allocate a tensor of {n} elements")))?;
    Ok(v)
}

/// `n` zero words.
fn zeros(n: usize) -> Result<Vec<u64>> {
    let mut v = with_capacity(n)?;
    v.resize(n, 0);
    Ok(v)
}

/// Whether a product is split by Strassen–Winograd.
fn splits(cfg: &Config, [m, k, n]: [usize; 3]) -> bool {
    m.min(k).min(n) >= cfg.strassen_min.max(2) && (m | k | n) % 2 == 0
}

/// The checks of `eval_op`, with the same errors: word counts, shape rules, planned output.
fn check(op: &Op, inputs: [&[u64]; 2], shapes: [&[usize]; 2], out: &[usize]) -> Result<()> {
    let mut infos = Vec::with_capacity(2);
    for (i, (data, shape)) in inputs.iter().zip(shapes).enumerate() {
        if numel(shape)? != data.len() {
            let (name, len) = (op.name(), data.len());
            return Err(Error::invalid(format!("input {i} of `{name}` has {len} words but shape {shape:?}")));
        }
        infos.push(TensorInfo { shape: shape.to_vec(), dtype: DType::Int, vis: Visibility::Secret });
    }
    let want = infer(op, &infos).map_err(|e| Error::invalid(format!("`{}`: {e}", op.name())))?;
    if want.shape != out {
        return Err(Error::internal(format!(
            "`{}` was planned to give {out:?}, but its inputs give {:?}",
            op.name(),
            want.shape
        )));
    }
    Ok(())
}

/// Elementwise wrapping product when no broadcast beyond a one-element operand is needed;
/// `None` for other broadcasts (after the same checks as `eval_op`).
pub fn mul(inputs: [&[u64]; 2], shapes: [&[usize]; 2], out: &[usize]) -> Result<Option<Vec<u64>>> {
    check(&Op::Mul, inputs, shapes, out)?;
    let ([a, b], [sa, sb]) = (inputs, shapes);
    // `None` for the scalar factor: both operands have the output's shape.
    let (x, scalar) = match (a, b) {
        _ if sa == sb => (a, None),
        (_, &[s]) if sa == out => (a, Some(s)),
        (&[s], _) if sb == out => (b, Some(s)),
        _ => return Ok(None),
    };
    let mut v = with_capacity(x.len())?;
    match scalar {
        None => v.extend(a.iter().zip(b).map(|(&x, &y)| x.wrapping_mul(y))),
        Some(s) => v.extend(x.iter().map(|&x| x.wrapping_mul(s))),
    }
    Ok(Some(v))
}

/// `[.., m, k] × [.., k, n]`, batch axes broadcast like NumPy.
pub fn matmul(inputs: [&[u64]; 2], shapes: [&[usize]; 2], out: &[usize], cfg: &Config) -> Result<Vec<u64>> {
    check(&Op::Matmul, inputs, shapes, out)?;
    let ([a, b], [sa, sb]) = (inputs, shapes);
    // The shape rules held: both ranks are at least 2 and `out` is `batch ++ [m, n]`.
    let (m, k, n) = (sa[sa.len() - 2], sa[sa.len() - 1], sb[sb.len() - 1]);
    let batch = &out[..out.len() - 2];
    let mut c = zeros(numel(out)?)?;
    if c.is_empty() || k == 0 {
        return Ok(c);
    }
    // Every batch exists, so each operand holds whole matrices.
    let a_mats: Vec<View> = a.chunks_exact(m * k).map(|data| View { data, ld: k }).collect();
    let b_mats: Vec<View> = b.chunks_exact(k * n).map(|data| View { data, ld: n }).collect();
    let (ia, ib) = (batch_index(&sa[..sa.len() - 2], batch)?, batch_index(&sb[..sb.len() - 2], batch)?);
    let pairs: Vec<(View, usize)> = ia.iter().zip(&ib).map(|(&i, &j)| (a_mats[i], j)).collect();
    products(&pairs, &b_mats, [m, k, n], &mut c, n, cfg)?;
    Ok(c)
}

/// The matrix of a `src`-batched operand used by every batch of `out`, in row-major order.
fn batch_index(src: &[usize], out: &[usize]) -> Result<Vec<usize>> {
    let lead = out.len().checked_sub(src.len()).ok_or_else(|| Error::internal("batch rank"))?;
    let mut strides = vec![0usize; out.len()];
    let mut acc = 1usize;
    for (d, &size) in src.iter().enumerate().rev() {
        if size != 1 {
            strides[lead + d] = acc;
        }
        acc = acc.saturating_mul(size);
    }
    let count = numel(out)?;
    let (mut idx, mut pos, mut v) = (vec![0usize; out.len()], 0usize, Vec::with_capacity(count));
    for _ in 0..count {
        v.push(pos);
        for d in (0..out.len()).rev() {
            idx[d] += 1;
            pos += strides[d];
            if idx[d] < out[d] {
                break;
            }
            pos -= strides[d] * out[d];
            idx[d] = 0;
        }
    }
    Ok(v)
}

/// A row-major matrix inside a slice: row `i` starts at `data[i·ld]`.
#[derive(Clone, Copy)]
struct View<'a> {
    data: &'a [u64],
    ld: usize,
}

impl<'a> View<'a> {
    fn row(self, i: usize, cols: usize) -> &'a [u64] {
        &self.data[i * self.ld..][..cols]
    }

    /// The matrix whose top-left word is at row `r`, column `c`.
    fn at(self, r: usize, c: usize) -> View<'a> {
        View { data: &self.data[r * self.ld + c..], ld: self.ld }
    }
}

/// `c[t] += pairs[t].0 × b_mats[pairs[t].1]`, each `m × k` by `k × n` with `k > 0`; row `r` of
/// the stacked outputs starts at `c[r·ldc]`.
///
/// Large products are split into stripes of rows, one per thread; each stripe is a product of
/// its own (by Strassen–Winograd where the sizes allow), so threads never wait for each other.
fn products(
    pairs: &[(View, usize)],
    b_mats: &[View],
    [m, k, n]: [usize; 3],
    c: &mut [u64],
    ldc: usize,
    cfg: &Config,
) -> Result<()> {
    let rows = pairs.len() * m;
    let macs = rows.saturating_mul(k).saturating_mul(n);
    let threads = if macs > cfg.parallel_min_macs { cfg.threads.clamp(1, rows) } else { 1 };
    let mut per = rows.div_ceil(threads);
    if per >= 64 {
        // Whole groups of 16 rows keep the halves of Strassen–Winograd even.
        per = per.next_multiple_of(16);
    }
    let single = Config { threads: 1, ..*cfg };
    let kernel = Kernel::pick(cfg.simd);
    let rhs: Option<Vec<Rhs>> = match splits(cfg, [per.min(m), k, n]) {
        true => None,
        false if m >= PACK_MIN_ROWS && n >= NR => {
            Some(b_mats.iter().map(|&b| pack_b(b, k, n, kernel.nr()).map(Rhs::Packed)).collect::<Result<_>>()?)
        }
        false => Some(b_mats.iter().map(|&b| Rhs::Raw(b)).collect()),
    };
    let work = |r0: usize, chunk: &mut [u64]| {
        let mut ap = [0u64; KC * MR_MAX];
        segments(m, [r0, (r0 + per).min(rows)], chunk, ldc, |t, i, len, seg| {
            let (a, j) = pairs[t];
            let (a, dims) = (a.at(i, 0), [len, k, n]);
            match rhs.as_ref().map(|r| &r[j]) {
                None => return strassen(a, b_mats[j], seg, ldc, dims, &single),
                Some(Rhs::Packed(pb)) => kernel.packed_rows(a, pb, seg, ldc, dims, &mut ap),
                Some(Rhs::Raw(b)) => direct_rows(a, *b, seg, ldc, dims),
            }
            Ok(())
        })
    };
    std::thread::scope(|s| {
        let (mut rest, mut first, mut handles) = (c, None, Vec::new());
        for r0 in (0..rows).step_by(per) {
            let chunk = if r0 + per < rows {
                let (chunk, tail) = std::mem::take(&mut rest).split_at_mut(per * ldc);
                rest = tail;
                chunk
            } else {
                std::mem::take(&mut rest)
            };
            match r0 {
                0 => first = Some(chunk),
                _ => handles.push(s.spawn(move || work(r0, chunk))),
            }
        }
        let mine = first.map_or(Ok(()), |chunk| work(0, chunk));
        handles.into_iter().try_for_each(|h| h.join().map_err(|_| Error::internal("a matmul thread panicked"))?)?;
        mine
    })
}

/// The micro-kernel of a product: the widest the configuration allows and the CPU has.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kernel {
    Scalar,
    #[cfg(target_arch = "x86_64")]
    Avx2,
    #[cfg(target_arch = "x86_64")]
    Avx512,
}

impl Kernel {
    fn pick(simd: Simd) -> Kernel {
        #[cfg(target_arch = "x86_64")]
        {
            if simd >= Simd::Avx512 && avx512::available() {
                return Kernel::Avx512;
            }
            if simd >= Simd::Avx2 && avx2::available() {
                return Kernel::Avx2;
            }
        }
        let _ = simd;
        Kernel::Scalar
    }

    /// Columns of the kernel's block, and of the panels [`pack_b`] makes for it.
    fn nr(self) -> usize {
        match self {
            #[cfg(target_arch = "x86_64")]
            Kernel::Avx512 => avx512::NR,
            _ => NR,
        }
    }

    /// [`packed_rows`] with this kernel; `pb` was packed for it (`pack_b(…, self.nr())`).
    fn packed_rows(self, a: View, pb: &[u64], c: &mut [u64], ldc: usize, dims: [usize; 3], ap: &mut [u64]) {
        match self {
            Kernel::Scalar => packed_rows::<MR, NR>(a, pb, c, ldc, dims, ap, scalar_micro::<MR, NR>),
            // The kernel was picked after detection; the fallback only keeps the call total.
            #[cfg(target_arch = "x86_64")]
            Kernel::Avx2 => packed_rows::<MR, NR>(a, pb, c, ldc, dims, ap, |x, y| {
                avx2::micro(x, y).unwrap_or_else(|| scalar_micro(x, y))
            }),
            #[cfg(target_arch = "x86_64")]
            Kernel::Avx512 => packed_rows::<{ avx512::MR }, { avx512::NR }>(a, pb, c, ldc, dims, ap, |x, y| {
                avx512::micro(x, y).unwrap_or_else(|| scalar_micro(x, y))
            }),
        }
    }
}

/// The right operand of a product, packed into panels or as it is.
enum Rhs<'a> {
    Packed(Vec<u64>),
    Raw(View<'a>),
}

/// Calls `f(t, i, len, seg)` for the rows `r0..r1` of the stacked outputs (`c[0]` starts row
/// `r0`), cut where matrices end: rows `i..i + len` of matrix `t`, whose first row is `seg[0]`.
fn segments(
    m: usize,
    [r0, r1]: [usize; 2],
    c: &mut [u64],
    ldc: usize,
    mut f: impl FnMut(usize, usize, usize, &mut [u64]) -> Result<()>,
) -> Result<()> {
    let (mut r, mut rest) = (r0, c);
    while r < r1 {
        let (t, i) = (r / m, r % m);
        let len = (m - i).min(r1 - r);
        let take = (len * ldc).min(rest.len());
        let (seg, tail) = std::mem::take(&mut rest).split_at_mut(take);
        rest = tail;
        f(t, i, len, seg)?;
        r += len;
    }
    Ok(())
}

/// `B` (`k × n`) as `KC`-row blocks of `nr`-column panels, zero-padded to `nr` columns.
fn pack_b(b: View, k: usize, n: usize, nr: usize) -> Result<Vec<u64>> {
    let width = n.div_ceil(nr) * nr;
    let mut out = zeros(k.checked_mul(width).ok_or_else(|| Error::invalid("matmul too large"))?)?;
    for (q, block) in out.chunks_mut(KC * width).enumerate() {
        let kb = block.len() / width;
        for (jp, panel) in block.chunks_mut(kb * nr).enumerate() {
            let (j0, w) = (jp * nr, nr.min(n - jp * nr));
            for (p, dst) in panel.chunks_exact_mut(nr).enumerate() {
                dst[..w].copy_from_slice(&b.row(q * KC + p, n)[j0..j0 + w]);
            }
        }
    }
    Ok(out)
}

/// `c += a × B` for `rows` rows of `a`, with `B` packed by [`pack_b`] in `NR`-column panels, each
/// `MR × NR` block summed by `micro` from a panel of `A` packed into `ap` (`KC·MR` words or
/// more).
fn packed_rows<const MR: usize, const NR: usize>(
    a: View,
    pb: &[u64],
    c: &mut [u64],
    ldc: usize,
    [rows, k, n]: [usize; 3],
    ap: &mut [u64],
    micro: fn(&[u64], &[u64]) -> Block<MR, NR>,
) {
    let width = n.div_ceil(NR) * NR;
    for (q, block) in pb.chunks(KC * width).enumerate() {
        let (p0, kb) = (q * KC, block.len() / width);
        for i0 in (0..rows).step_by(MR) {
            // A panel: `ap[p·MR + i] = a[i0 + i][p0 + p]`, rows past the end zero.
            let (ap, mb) = (&mut ap[..kb * MR], MR.min(rows - i0));
            if mb < MR {
                ap.fill(0);
            }
            for i in 0..mb {
                for (dst, &v) in ap.iter_mut().skip(i).step_by(MR).zip(&a.row(i0 + i, k)[p0..p0 + kb]) {
                    *dst = v;
                }
            }
            for (jp, panel) in block.chunks_exact(kb * NR).enumerate() {
                let acc = micro(ap, panel);
                let (j0, w) = (jp * NR, NR.min(n - jp * NR));
                for (i, sums) in acc.iter().enumerate().take(mb) {
                    for (cv, &v) in c[(i0 + i) * ldc + j0..][..w].iter_mut().zip(sums) {
                        *cv = cv.wrapping_add(v);
                    }
                }
            }
        }
    }
}

/// The `MR × NR` block `Σ_p ap[p] ⊗ bp[p]` in scalar code: `ap` holds `MR` words per step, `bp`
/// `NR` words per step. Not inlined (nor are the vector kernels, behind their target features):
/// inside its callers LLVM spilled the sums to the stack and the kernel ran 20% slower.
#[inline(never)]
fn scalar_micro<const MR: usize, const NR: usize>(ap: &[u64], bp: &[u64]) -> [[u64; NR]; MR] {
    let mut acc = [[0u64; NR]; MR];
    for (x, y) in ap.as_chunks::<MR>().0.iter().zip(bp.as_chunks::<NR>().0) {
        for (row, &xv) in acc.iter_mut().zip(x) {
            for (cv, &yv) in row.iter_mut().zip(y) {
                *cv = cv.wrapping_add(xv.wrapping_mul(yv));
            }
        }
    }
    acc
}

/// `c += a × b` without packing: row updates, or dot products when `n < NR`.
fn direct_rows(a: View, b: View, c: &mut [u64], ldc: usize, [rows, k, n]: [usize; 3]) {
    for i in 0..rows {
        let (arow, crow) = (a.row(i, k), &mut c[i * ldc..][..n]);
        if n < NR {
            for (j, cv) in crow.iter_mut().enumerate() {
                let col = b.data[j..].iter().step_by(b.ld);
                *cv = arow.iter().zip(col).fold(*cv, |s, (&x, &y)| s.wrapping_add(x.wrapping_mul(y)));
            }
        } else {
            for (p, &x) in arow.iter().enumerate() {
                for (cv, &y) in crow.iter_mut().zip(b.row(p, n)) {
                    *cv = cv.wrapping_add(x.wrapping_mul(y));
                }
            }
        }
    }
}

/// `c += a × b` for one `m × k` by `k × n` product (row `i` of `c` at `c[i·ldc]`), split by
/// Strassen–Winograd while the sizes allow. With `S`, `T` and `P` the half-size temporaries:
///
/// | step | product | then |
/// |---|---|---|
/// | 1 | `P = A11·B11` | `C11 += P` |
/// | 2 | `P += (A21 + A22 − A11)·(B22 − B12 + B11)` | `C12 += P` |
/// | 3 | `P += (A11 − A21)·(B22 − B12)` | `C21 += P`, `C22 += P` |
/// | 4 | `C11 += A12·B21` | |
/// | 5 | `C12 += (A12 − A21 − A22 + A11)·B22` | |
/// | 6 | `C21 += A22·(B21 − B22 + B12 − B11)` | |
/// | 7 | `P = (A21 + A22)·(B12 − B11)` | `C12 += P`, `C22 += P` |
fn strassen(a: View, b: View, c: &mut [u64], ldc: usize, [m, k, n]: [usize; 3], cfg: &Config) -> Result<()> {
    if !splits(cfg, [m, k, n]) {
        let plain = Config { threads: 1, strassen_min: usize::MAX, ..*cfg };
        return products(&[(a, 0)], &[b], [m, k, n], c, ldc, &plain);
    }
    let (h, q, w) = (m / 2, k / 2, n / 2);
    let (a11, a12, a21, a22) = (a.at(0, 0), a.at(0, q), a.at(h, 0), a.at(h, q));
    let (b11, b12, b21, b22) = (b.at(0, 0), b.at(0, w), b.at(q, 0), b.at(q, w));
    let (mut s, mut t, mut p) = (zeros(h * q)?, zeros(q * w)?, zeros(h * w)?);
    let half = [h, q, w];
    let (c11, c12, c21, c22) = (0, w, h * ldc, h * ldc + w);
    let add_p = |c: &mut [u64], at: usize, p: &[u64]| {
        for (i, prow) in p.chunks_exact(w).enumerate() {
            for (cv, &v) in c[at + i * ldc..][..w].iter_mut().zip(prow) {
                *cv = cv.wrapping_add(v);
            }
        }
    };
    strassen(a11, b11, &mut p, w, half, cfg)?;
    add_p(c, c11, &p);
    combine(&mut s, q, &[(a21, false), (a22, false), (a11, true)]);
    combine(&mut t, w, &[(b22, false), (b12, true), (b11, false)]);
    strassen(View { data: &s, ld: q }, View { data: &t, ld: w }, &mut p, w, half, cfg)?;
    add_p(c, c12, &p);
    combine(&mut s, q, &[(a11, false), (a21, true)]);
    combine(&mut t, w, &[(b22, false), (b12, true)]);
    strassen(View { data: &s, ld: q }, View { data: &t, ld: w }, &mut p, w, half, cfg)?;
    add_p(c, c21, &p);
    add_p(c, c22, &p);
    strassen(a12, b21, &mut c[c11..], ldc, half, cfg)?;
    combine(&mut s, q, &[(a12, false), (a21, true), (a22, true), (a11, false)]);
    strassen(View { data: &s, ld: q }, b22, &mut c[c12..], ldc, half, cfg)?;
    combine(&mut t, w, &[(b21, false), (b22, true), (b12, false), (b11, true)]);
    strassen(a22, View { data: &t, ld: w }, &mut c[c21..], ldc, half, cfg)?;
    combine(&mut s, q, &[(a21, false), (a22, false)]);
    combine(&mut t, w, &[(b12, false), (b11, true)]);
    p.fill(0);
    strassen(View { data: &s, ld: q }, View { data: &t, ld: w }, &mut p, w, half, cfg)?;
    add_p(c, c12, &p);
    add_p(c, c22, &p);
    Ok(())
}

/// `dst` (row-major, `cols` wide) `= Σ ±term`, a term subtracted when its flag is set (the
/// first term is always added).
fn combine(dst: &mut [u64], cols: usize, terms: &[(View, bool)]) {
    let Some(((first, _), rest)) = terms.split_first() else { return };
    for (i, row) in dst.chunks_exact_mut(cols).enumerate() {
        row.copy_from_slice(first.row(i, cols));
        for &(x, minus) in rest {
            let src = x.row(i, cols).iter();
            if minus {
                row.iter_mut().zip(src).for_each(|(d, &v)| *d = d.wrapping_sub(v));
            } else {
                row.iter_mut().zip(src).for_each(|(d, &v)| *d = d.wrapping_add(v));
            }
        }
    }
}

/// 2-D cross-correlation: input `[N, C, H, W]`, weight `[O, C, kh, kw]`, output `[N, O, oh, ow]`,
/// `padding` zeros on each side, `stride` steps.
pub fn conv2d(
    inputs: [&[u64]; 2],
    shapes: [&[usize]; 2],
    stride: [usize; 2],
    padding: [usize; 2],
    out: &[usize],
    cfg: &Config,
) -> Result<Vec<u64>> {
    check(&Op::Conv2d { stride, padding }, inputs, shapes, out)?;
    let ([x, w], [sx, sw]) = (inputs, shapes);
    // The shape rules held: all three shapes have rank 4 and agree.
    let g = Geometry { c: sx[1], h: sx[2], w: sx[3], kh: sw[2], kw: sw[3], oh: out[2], ow: out[3], stride, padding };
    let (o, kk, pp) = (sw[0], g.c * g.kh * g.kw, g.oh * g.ow);
    let mut y = zeros(numel(out)?)?;
    // Empty sums (no channel, an empty kernel or an input of padding only) are zeros.
    if y.is_empty() || kk == 0 || x.is_empty() {
        return Ok(y);
    }
    let images: Vec<&[u64]> = x.chunks_exact(g.c * g.h * g.w).collect();
    let per_image = kk.checked_mul(pp).ok_or_else(|| Error::invalid("conv2d too large"))?;
    let group = (cfg.im2col_words / per_image).clamp(1, images.len());
    let mut cols = zeros(group * per_image)?;
    for (imgs, ys) in images.chunks(group).zip(y.chunks_mut(group * o * pp)) {
        let cols = &mut cols[..imgs.len() * per_image];
        for (img, dst) in imgs.iter().zip(cols.chunks_exact_mut(per_image)) {
            g.im2col(img, dst);
        }
        let b_mats: Vec<View> = cols.chunks_exact(per_image).map(|data| View { data, ld: pp }).collect();
        let pairs: Vec<(View, usize)> = (0..imgs.len()).map(|t| (View { data: w, ld: kk }, t)).collect();
        products(&pairs, &b_mats, [o, kk, pp], ys, pp, cfg)?;
    }
    Ok(y)
}

/// Sizes of one convolution image and window.
struct Geometry {
    c: usize,
    h: usize,
    w: usize,
    kh: usize,
    kw: usize,
    oh: usize,
    ow: usize,
    stride: [usize; 2],
    padding: [usize; 2],
}

impl Geometry {
    /// Columns of one image: row `(ic, ky, kx)`, column `(oy, ox)` holds the input under that
    /// kernel tap (zero in the padding). Overwrites every word of `dst`.
    fn im2col(&self, img: &[u64], dst: &mut [u64]) {
        let ([sh, sw], [ph, pw]) = (self.stride, self.padding);
        let mut rows = dst.chunks_exact_mut(self.oh * self.ow);
        for plane in img.chunks_exact(self.h * self.w) {
            for ky in 0..self.kh {
                for kx in 0..self.kw {
                    let Some(row) = rows.next() else { return };
                    for (oy, out) in row.chunks_exact_mut(self.ow).enumerate() {
                        // `oy·sh + ky < H + 2·ph`, which the shape rules computed without overflow.
                        let src = (oy * sh + ky).checked_sub(ph).filter(|&iy| iy < self.h);
                        let src = src.map(|iy| &plane[iy * self.w..(iy + 1) * self.w]);
                        for (ox, v) in out.iter_mut().enumerate() {
                            let ix = (ox * sw + kx).checked_sub(pw).filter(|&ix| ix < self.w);
                            *v = src.zip(ix).map_or(0, |(s, ix)| s[ix]);
                        }
                    }
                }
            }
        }
    }
}

/// Checks a vector micro-kernel against plain index loops on extreme and random words, over
/// sums of 0 to 256 steps (`None` from the kernel fails: callers check the CPU first).
#[cfg(test)]
fn check_micro_kernel<const MR: usize, const NR: usize>(micro: fn(&[u64], &[u64]) -> Option<Block<MR, NR>>) {
    let scalar = |ap: &[u64], bp: &[u64]| {
        let mut acc = [[0u64; NR]; MR];
        for (x, y) in ap.chunks_exact(MR).zip(bp.chunks_exact(NR)) {
            for i in 0..MR {
                for j in 0..NR {
                    acc[i][j] = acc[i][j].wrapping_add(x[i].wrapping_mul(y[j]));
                }
            }
        }
        acc
    };
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let edges = [0, 1, u64::MAX, u64::MAX - 1, 1 << 32, (1 << 32) - 1, 1 << 63, (1 << 63) - 1, 0xffff_ffff_0000_0000];
    for steps in [0usize, 1, 2, 7, 256] {
        for round in 0..20 {
            let mut word = |k: usize| if round < 10 { edges[(k * 7 + round) % edges.len()] } else { next() };
            let ap: Vec<u64> = (0..steps * MR).map(&mut word).collect();
            let bp: Vec<u64> = (0..steps * NR).map(|k| word(k + 3)).collect();
            assert_eq!(micro(&ap, &bp), Some(scalar(&ap, &bp)), "steps {steps}, round {round}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ring::{apply, via_ref};
    use proptest::prelude::*;

    /// Full-range words from a seed (splitmix64).
    fn words(seed: u64, n: usize) -> Vec<u64> {
        let mut x = seed;
        (0..n)
            .map(|_| {
                x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
                let z = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
                let z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
                z ^ (z >> 31)
            })
            .collect()
    }

    /// Every code path on small sizes: threads, no packing threshold, Strassen down to 2.
    fn stress() -> Config {
        Config { threads: 3, parallel_min_macs: 0, strassen_min: 2, im2col_words: 1, simd: Simd::Avx512 }
    }

    fn infos(shapes: &[&[usize]]) -> Vec<TensorInfo> {
        shapes.iter().map(|s| TensorInfo { shape: s.to_vec(), dtype: DType::Int, vis: Visibility::Secret }).collect()
    }

    /// The planned output shape, or an arbitrary one when the shapes do not fit the op.
    fn out_shape(op: &Op, shapes: &[&[usize]]) -> Vec<usize> {
        infer(op, &infos(shapes)).map_or(vec![1, 1, 1, 1], |t| t.shape)
    }

    /// Same words, or errors of the same kind.
    fn same(got: Result<Vec<u64>>, want: Result<Vec<u64>>) -> std::result::Result<(), TestCaseError> {
        match (got, want) {
            (Ok(g), Ok(w)) => prop_assert_eq!(g, w),
            (Err(g), Err(w)) => {
                prop_assert_eq!(std::mem::discriminant(&g), std::mem::discriminant(&w), "{} / {}", g, w)
            }
            (g, w) => prop_assert!(false, "got {:?}, ref gave {:?}", g.map(|v| v.len()), w.map(|v| v.len())),
        }
        Ok(())
    }

    /// `ring::apply`, the fast kernels under `cfg`, and the ref kernels agree on `op`.
    fn check_op(op: &Op, shapes: [&[usize]; 2], seed: u64, cfg: &Config) -> std::result::Result<(), TestCaseError> {
        let out = out_shape(op, &shapes);
        let a = words(seed, numel(shapes[0]).unwrap_or(0));
        let b = words(seed ^ 1, numel(shapes[1]).unwrap_or(0));
        let want = via_ref(op, &[&a, &b], &shapes, &out);
        let fast = match op {
            Op::Matmul => matmul([&a, &b], shapes, &out, cfg),
            Op::Conv2d { stride, padding } => conv2d([&a, &b], shapes, *stride, *padding, &out, cfg),
            _ => mul([&a, &b], shapes, &out).map(|v| v.unwrap_or_else(|| want.clone().unwrap_or_default())),
        };
        same(fast, want.clone())?;
        same(apply(op, &[&a, &b], &shapes, &out), want)
    }

    /// A batch shape broadcast to `out`: each axis kept or 1, leading axes maybe dropped.
    fn batch_of(out: &[usize], drop: usize, ones: u8) -> Vec<usize> {
        let drop = drop.min(out.len());
        out[drop..].iter().enumerate().map(|(i, &d)| if ones >> i & 1 == 1 { 1 } else { d }).collect()
    }

    proptest! {
        #[test]
        fn matmul_matches_ref(
            (m, k, n) in (0usize..11, 0usize..11, 0usize..11),
            batch in prop::collection::vec(0usize..4, 0..3),
            (da, db, oa, ob) in (0usize..3, 0usize..3, any::<u8>(), any::<u8>()),
            seed in any::<u64>(),
        ) {
            let mut sa = batch_of(&batch, da, oa);
            let mut sb = batch_of(&batch, db, ob);
            sa.extend([m, k]);
            sb.extend([k, n]);
            for cfg in [Config::default(), stress(), Config { simd: Simd::Avx2, ..stress() }] {
                check_op(&Op::Matmul, [&sa, &sb], seed, &cfg)?;
            }
        }

        #[test]
        fn matmul_blocks_match_ref(
            (m, k, n) in (8usize..40, 1usize..600, 1usize..24),
            batch in 1usize..3,
            seed in any::<u64>(),
        ) {
            let (sa, sb) = ([batch, m, k], [k, n]);
            check_op(&Op::Matmul, [&sa, &sb], seed, &Config::default())?;
            for simd in [Simd::Avx2, Simd::None] {
                check_op(&Op::Matmul, [&sa, &sb], seed, &Config { simd, ..Config::default() })?;
            }
            check_op(&Op::Matmul, [&sb, &[n, 3]], seed, &stress())?;
        }

        #[test]
        fn conv2d_matches_ref(
            (nb, c, h, w) in (0usize..3, 0usize..4, 0usize..8, 0usize..8),
            (o, kh, kw) in (0usize..4, 0usize..4, 0usize..4),
            (stride, padding) in ([0usize..4, 0usize..4], [0usize..3, 0usize..3]),
            seed in any::<u64>(),
        ) {
            let op = Op::Conv2d { stride, padding };
            for cfg in [Config::default(), stress(), Config { simd: Simd::Avx2, ..stress() }] {
                check_op(&op, [&[nb, c, h, w], &[o, c, kh, kw]], seed, &cfg)?;
            }
        }

        #[test]
        fn mul_matches_ref(shape in prop::collection::vec(0usize..4, 0..4), other in 0usize..5, seed in any::<u64>()) {
            let second: Vec<usize> = match other {
                0 => shape.clone(),
                1 => vec![],
                2 => vec![1; shape.len()],
                3 => shape.iter().map(|_| 1).chain([1]).collect(),
                _ => shape.iter().skip(1).copied().collect(),
            };
            check_op(&Op::Mul, [&shape, &second], seed, &Config::default())?;
            check_op(&Op::Mul, [&second, &shape], seed, &Config::default())?;
        }

        #[test]
        fn bad_inputs_are_the_same_errors(
            op in prop::sample::select(vec![Op::Matmul, Op::Mul, Op::Conv2d { stride: [1, 2], padding: [1, 0] }]),
            sa in prop::collection::vec(0usize..4, 0..5),
            sb in prop::collection::vec(0usize..4, 0..5),
            (extra, wrong_out) in (0usize..2, any::<bool>()),
            seed in any::<u64>(),
        ) {
            let mut out = out_shape(&op, &[&sa, &sb]);
            if wrong_out {
                out.push(2);
            }
            let a = words(seed, numel(&sa).unwrap_or(0) + extra);
            let b = words(seed, numel(&sb).unwrap_or(0));
            same(apply(&op, &[&a, &b], &[&sa, &sb], &out), via_ref(&op, &[&a, &b], &[&sa, &sb], &out))?;
        }
    }

    #[test]
    fn threads_and_strassen_match() {
        // Above 2^22 multiply-adds: threaded by default; checked against ref.
        let (sa, sb) = ([256usize, 128], [128usize, 160]);
        let (a, b) = (words(1, 256 * 128), words(2, 128 * 160));
        let got = apply(&Op::Matmul, &[&a, &b], &[&sa, &sb], &[256, 160]).unwrap();
        assert_eq!(got, via_ref(&Op::Matmul, &[&a, &b], &[&sa, &sb], &[256, 160]).unwrap());
        // Strassen–Winograd (default levels) in stripes of two threads against the plain kernel.
        let (a, b) = (words(3, 1024 * 512), words(4, 512 * 1024));
        let shapes: [&[usize]; 2] = [&[1024, 512], &[512, 1024]];
        let fast = matmul([&a, &b], shapes, &[1024, 1024], &Config { threads: 2, ..Config::default() }).unwrap();
        for threads in [1, 3] {
            // The scalar kernel on three threads, the AVX2 one (where the CPU has it) on one; the
            // split product used the widest the CPU has.
            let simd = if threads == 1 { Simd::Avx2 } else { Simd::None };
            let plain = Config { threads, strassen_min: usize::MAX, simd, ..Config::default() };
            assert_eq!(fast, matmul([&a, &b], shapes, &[1024, 1024], &plain).unwrap());
        }
        // Batched stripes, some of them split, some not, against ref.
        let many = Config { threads: 3, parallel_min_macs: 0, strassen_min: 8, im2col_words: 1, simd: Simd::Avx512 };
        let (sa, sb) = ([3usize, 200, 136], [136usize, 144]);
        let (a, b) = (words(5, 3 * 200 * 136), words(6, 136 * 144));
        let want = via_ref(&Op::Matmul, &[&a, &b], &[&sa, &sb], &[3, 200, 144]).unwrap();
        assert_eq!(matmul([&a, &b], [&sa, &sb], &[3, 200, 144], &many).unwrap(), want);
    }

    #[test]
    fn huge_or_inconsistent_shapes_are_errors() {
        let cfg = Config::default();
        let huge: &[usize] = &[usize::MAX, 2, 2];
        assert!(matmul([&[], &[1, 2, 3, 4]], [huge, &[2, 2]], &[usize::MAX, 2, 2], &cfg).is_err());
        assert!(matmul([&[1, 2], &[1, 2]], [&[1, 2], &[2, 1]], &[1, 2], &cfg).is_err());
        assert!(conv2d([&[1], &[1]], [&[1, 1, 1, 1], &[1, 1, 1, 1]], [0, 1], [0, 0], &[1, 1, 1, 1], &cfg).is_err());
        assert!(mul([&[1, 2], &[3]], [&[2], &[2]], &[2]).is_err());
        // Empty sums and empty outputs.
        assert_eq!(matmul([&[], &[]], [&[2, 0], &[0, 3]], &[2, 3], &cfg).unwrap(), vec![0; 6]);
        let e: &[usize] = &[0, 1 << 62, 1 << 62];
        assert_eq!(matmul([&[], &[]], [e, &[1 << 62, 0]], &[0, 1 << 62, 0], &cfg).unwrap(), Vec::<u64>::new());
    }
}
