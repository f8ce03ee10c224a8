//! Evaluating a batch, key `i` at point `i`: one key at a time (latency bound), or tiles of
//! keys walked level by level (portable), on scoped threads for large batches; x86-64 with
//! AES-NI hands the range to [`super::aesni`].

use super::*;

/// Party `party`'s share of key `i` of `b` at `x` (latency bound: `2n` dependent AES calls,
/// plus one for a PRG `Convert`).
pub(crate) fn eval_one<P: Payload>(party: u8, b: &KeyBatch<'_, P>, i: usize, x: u64) -> Result<P, FssError> {
    check_party(party)?;
    check_in_domain("evaluation point", x, b.n_bits)?;
    let key = b.key(i).ok_or(FssError::LengthMismatch { what: "key index", expected: b.len(), got: i })?;
    let lay = &b.lay;
    let ctrl = split_ctrl(lay.ctrl_word(key));
    let prg = Prg::global();
    let (mut s, mut t, mut acc) = (lay.root(key), party, P::default());
    for level in 0..lay.n {
        let bit = path_bit(x, b.n_bits, level as u32);
        let (sc, tc) = split_seed(prg.mmo(PrgKey::child(bit), s));
        let v = P::value(prg.mmo(PrgKey::Value, P::value_input(s, bit)), bit);
        let t_cw = ((if bit == 0 { ctrl[0] } else { ctrl[1] } >> level) & 1) as u8;
        acc = acc.add(v).add(lay.value_cw::<P>(key, level).and(mask64(t)));
        s = sc ^ (mask128(t) & lay.seed_cw(key, level));
        t = tc ^ (t & t_cw);
    }
    let prg_out = if P::CONVERT_BY_PRG { prg.mmo(PrgKey::Value, s) } else { 0 };
    Ok(acc.add(P::convert(s, prg_out)).add(lay.final_cw::<P>(key).and(mask64(t))).signed(party))
}

/// Argument checks shared by [`eval_many`] and [`eval_many_par`].
pub(super) fn check_many<P: Payload>(party: u8, b: &KeyBatch<'_, P>, xs: &[u64], out: &[P]) -> Result<(), FssError> {
    check_party(party)?;
    if xs.len() != b.len() {
        return Err(FssError::LengthMismatch { what: "evaluation points", expected: b.len(), got: xs.len() });
    }
    if out.len() != xs.len() {
        return Err(FssError::LengthMismatch { what: "output buffer", expected: xs.len(), got: out.len() });
    }
    check_all_in_domain(xs, b.n_bits)
}

/// Evaluates key `i` of `b` at `xs[i]` into `out[i]` for every `i`.
pub(crate) fn eval_many<P: Payload>(party: u8, b: &KeyBatch<'_, P>, xs: &[u64], out: &mut [P]) -> Result<(), FssError> {
    check_many(party, b, xs, out)?;
    eval_range(party, b, 0, xs, out);
    Ok(())
}

/// Threads to use for `len` items: 1 up to [`PAR_MIN_BATCH`], else the available parallelism
/// capped at `max_threads` (at least 1).
pub(crate) fn par_threads(len: usize, max_threads: usize) -> usize {
    if len <= PAR_MIN_BATCH {
        return 1;
    }
    let avail = thread::available_parallelism().map_or(1, |n| n.get());
    avail.min(max_threads).max(1)
}

/// Runs `work(first index, part)` over `parts` (each with its index offset): the first on the
/// calling thread, the others on scoped threads (inline if a thread cannot be started).
pub(crate) fn run_parts<T: Send>(parts: Vec<(usize, T)>, work: impl Fn(usize, T) + Sync) {
    // Each part sits in its own cell, so a part whose thread failed to start is still at hand.
    let cells: Vec<Mutex<Option<(usize, T)>>> = parts.into_iter().map(|p| Mutex::new(Some(p))).collect();
    let run = |cell: &Mutex<Option<(usize, T)>>| {
        if let Some((at, part)) = cell.lock().ok().and_then(|mut g| g.take()) {
            work(at, part);
        }
    };
    thread::scope(|scope| {
        let run = &run;
        for cell in cells.iter().skip(1) {
            if thread::Builder::new().spawn_scoped(scope, move || run(cell)).is_err() {
                run(cell);
            }
        }
        if let Some(cell) = cells.first() {
            run(cell);
        }
    });
}

/// [`eval_many`] split across up to `max_threads` scoped threads (see [`par_threads`]), in
/// contiguous parts of whole tiles.
pub(crate) fn eval_many_par<P: Payload>(
    party: u8,
    b: &KeyBatch<'_, P>,
    xs: &[u64],
    out: &mut [P],
    max_threads: usize,
) -> Result<(), FssError> {
    check_many(party, b, xs, out)?;
    let threads = par_threads(xs.len(), max_threads);
    if threads <= 1 {
        eval_range(party, b, 0, xs, out);
        return Ok(());
    }
    let per = xs.len().div_ceil(threads).div_ceil(MANY_TILE) * MANY_TILE;
    let parts: Vec<_> = xs.chunks(per).zip(out.chunks_mut(per)).enumerate().map(|(i, p)| (i * per, p)).collect();
    run_parts(parts, |first, (xc, oc)| eval_range(party, b, first, xc, oc));
    Ok(())
}

/// Most levels of a key (the largest domain size).
pub(super) const MAX_LEVELS: usize = 64;

/// Row length of the level-major CW arrays of [`ManyTile`]: a little over [`MANY_TILE`], so the
/// rows do not all start at the same L1 set (the per-key decode writes one entry in every row).
pub(super) const ROW: usize = MANY_TILE + 8;

/// Per-tile state of [`eval_range`] as a structure of arrays: the tile's correction words,
/// decoded once per tile into level-major rows (one sequential pass over the tile's key bytes,
/// which the hardware prefetcher streams in), and the running state of each point.
pub(super) struct ManyTile<P> {
    /// `cs[level][j]`: seed CW of level `level` of the tile's key `j`.
    pub(super) cs: Vec<[u128; ROW]>,
    /// `cv[level][j]`: value CW of level `level` of the tile's key `j`.
    pub(super) cv: Vec<[P; ROW]>,
    /// Current seed of each point.
    pub(super) s: [u128; MANY_TILE],
    /// Running output share of each point.
    pub(super) acc: [P; MANY_TILE],
    /// Current control bit of each point (0 or 1).
    pub(super) t: [u64; MANY_TILE],
    /// Tree path of each point: bit `l` = direction at level `l`.
    pub(super) path: [u64; MANY_TILE],
    /// The control-bit CW on each point's path: bit `l` = `t_L` or `t_R` of level `l`.
    pub(super) tcw: [u64; MANY_TILE],
}

impl<P: Payload> ManyTile<P> {
    pub(super) fn new() -> Box<Self> {
        Box::new(ManyTile {
            cs: vec![[0; ROW]; MAX_LEVELS],
            cv: vec![[P::default(); ROW]; MAX_LEVELS],
            s: [0; MANY_TILE],
            acc: [P::default(); MANY_TILE],
            t: [0; MANY_TILE],
            path: [0; MANY_TILE],
            tcw: [0; MANY_TILE],
        })
    }
}

/// Evaluates keys `first..first + xs.len()` of `b` at `xs` into `out`: on the AES-NI kernel
/// ([`aesni`]) where the CPU has one, else on the portable path ([`eval_range_portable`]).
/// Arguments are checked by the callers; a range outside the batch leaves `out` untouched.
pub(super) fn eval_range<P: Payload>(party: u8, b: &KeyBatch<'_, P>, first: usize, xs: &[u64], out: &mut [P]) {
    #[cfg(target_arch = "x86_64")]
    if aesni::eval_range(party, b, first, xs, out) {
        return;
    }
    eval_range_portable(party, b, first, xs, out);
}

/// [`eval_range`] on any CPU: tiles of [`MANY_TILE`] keys walked level by level, the `aes` crate's
/// `encrypt_blocks` on each level's blocks (grouped by PRG key).
pub(super) fn eval_range_portable<P: Payload>(party: u8, b: &KeyBatch<'_, P>, first: usize, xs: &[u64], out: &mut [P]) {
    const MASK: usize = 2 * REGION - 1;
    const TMASK: usize = MANY_TILE - 1;
    let prg = Prg::global();
    let mut scratch = EvalScratch::new();
    let EvalScratch { buf_a, buf_b, vbuf, .. } = &mut *scratch;
    let mut tile_state = ManyTile::<P>::new();
    let ManyTile { cs, cv, s, acc, t, path, tcw } = &mut *tile_state;
    let n = b.n_bits;
    let lay = b.lay;
    let vw = 8 * P::WORDS;

    for (tile, (xt, ot)) in xs.chunks(MANY_TILE).zip(out.chunks_mut(MANY_TILE)).enumerate() {
        let k0 = first + tile * MANY_TILE;
        let m = xt.len().min(MANY_TILE);
        let Some(keys) = b.bytes().get(k0 * lay.len..(k0 + m) * lay.len) else { return };
        // Same scheme as `dcf::eval_batch`: a point going left sits at the number of left-goers
        // before it in `cur`, one going right at REGION + the number of right-goers before it.
        let (mut cur, mut next) = (&mut *buf_a, &mut *buf_b);
        let mut cl = 0usize;
        for (j, (x, key)) in xt.iter().zip(keys.chunks_exact(lay.len)).enumerate() {
            let jm = j & TMASK;
            let seeds = key.get(SEEDS..lay.values).unwrap_or_default();
            for (row, c) in cs.iter_mut().zip(seeds.chunks_exact(16)) {
                row[jm] = c.first_chunk::<16>().map_or(0, |a| u128::from_le_bytes(*a)) & !1;
            }
            let values = key.get(lay.values..lay.ctrl).unwrap_or_default();
            for (row, c) in cv.iter_mut().zip(values.chunks_exact(vw)) {
                row[jm] = P::read(c);
            }
            let root = lay.root(key);
            // Bit `l` of `p` is the path bit of level `l` (bit `n − 1 − l` of `x`).
            let p = x.reverse_bits() >> (64 - n);
            let [cl_l, cl_r] = split_ctrl(lay.ctrl_word(key));
            let bit = p & 1;
            cur[select(bit as usize, REGION + j - cl, cl) & MASK] = block_from_u128(root);
            vbuf[j & (REGION - 1)] = block_from_u128(P::value_input(root, bit));
            s[jm] = root;
            acc[jm] = P::default();
            t[jm] = u64::from(party & 1);
            path[jm] = p;
            tcw[jm] = (cl_l & !p) | (cl_r & p);
            cl += 1 - bit as usize;
        }
        for (level, (csl, cvl)) in cs.iter().zip(cv.iter()).enumerate().take(lay.n) {
            // After the last level the shift wraps to 0: harmless scratch writes.
            let next_shift = (level as u32 + 1) & 63;
            {
                let (left, right) = cur.split_at_mut(REGION);
                prg.encrypt_padded(PrgKey::Left, left, cl);
                prg.encrypt_padded(PrgKey::Right, right, m - cl);
                prg.encrypt_padded(PrgKey::Value, vbuf, m);
            }
            let (mut rl, mut wl) = (0usize, 0usize);
            for j in 0..m {
                let jm = j & TMASK;
                let pj = path[jm];
                let bit = (pj >> level) & 1;
                let e = u128_from_block(&cur[select(bit as usize, REGION + j - rl, rl) & MASK]);
                rl += 1 - bit as usize;
                let (sv, tv) = (s[jm], t[jm]);
                let tm = 0u64.wrapping_sub(tv);
                let sc = e ^ sv;
                let v = P::value(u128_from_block(&vbuf[j & (REGION - 1)]) ^ P::value_input(sv, bit), bit);
                acc[jm] = acc[jm].add(v).add(cvl[jm].and(tm));
                let s_new = (sc & !1) ^ (0u128.wrapping_sub(u128::from(tv)) & csl[jm]);
                s[jm] = s_new;
                t[jm] = (sc as u64 & 1) ^ (tv & (tcw[jm] >> level));
                // Gather for the next level.
                let nbit = (pj >> next_shift) & 1;
                next[select(nbit as usize, REGION + j - wl, wl) & MASK] = block_from_u128(s_new);
                vbuf[j & (REGION - 1)] = block_from_u128(P::value_input(s_new, nbit));
                wl += 1 - nbit as usize;
            }
            std::mem::swap(&mut cur, &mut next);
            cl = wl;
        }
        if P::CONVERT_BY_PRG {
            for (vb, sj) in vbuf.iter_mut().zip(s.iter()).take(m) {
                *vb = block_from_u128(*sj);
            }
            prg.encrypt_padded(PrgKey::Value, vbuf, m);
        }
        let state = s.iter().zip(acc.iter()).zip(t.iter());
        for ((o, ((sj, aj), tj)), (key, vb)) in
            ot.iter_mut().zip(state).zip(keys.chunks_exact(lay.len).zip(vbuf.iter()))
        {
            let conv = P::convert(*sj, u128_from_block(vb) ^ *sj);
            *o = aj.add(conv).add(lay.final_cw::<P>(key).and(0u64.wrapping_sub(*tj))).signed(party);
        }
    }
}
