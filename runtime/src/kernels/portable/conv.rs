//! Convolution, transposed convolution and dense layers (optimized).

use crate::kernels::{f32_at, i32_at, requantize, ConvGeometry, OutSpec};

/// Accumulators of one output tile (rows of one output channel), on the stack.
pub const TILE: usize = 1024;

/// Writes `acc` (the accumulators of channel `c`, elements starting at `first`) to `out`.
#[inline]
pub(crate) fn emit_run(acc: &[i32], c: usize, first: usize, spec: &OutSpec, out: &mut [u8]) {
    emit_plain(acc, c, first, spec, out)
}

/// [`emit_run`] with the micro-kernel's own requantization loop where it has one
/// ([`MicroKernel::requantize_run`]).
#[inline]
pub(crate) fn emit_run_with<M: MicroKernel + ?Sized>(acc: &[i32], c: usize, first: usize, spec: &OutSpec, out: &mut [u8]) {
    if let OutSpec::Int8 { zero_point, act_min, act_max, quant } = *spec {
        if let Some(r) = crate::quant::RoundingRequantizer::new(i32_at(quant, 2 * c), i32_at(quant, 2 * c + 1)) {
            if M::requantize_run(acc, &r, zero_point, act_min as i32, act_max as i32, &mut out[first..first + acc.len()]) {
                return;
            }
        }
    }
    emit_plain(acc, c, first, spec, out)
}

/// The portable body of [`emit_run`] (out of line: one copy for every micro-kernel).
#[inline(never)]
fn emit_plain(acc: &[i32], c: usize, first: usize, spec: &OutSpec, out: &mut [u8]) {
    match *spec {
        OutSpec::Int8 { zero_point, act_min, act_max, quant } => {
            let (mult, shift) = (i32_at(quant, 2 * c), i32_at(quant, 2 * c + 1));
            let dst = &mut out[first..first + acc.len()];
            let (lo, hi) = (act_min as i32, act_max as i32);
            // The common case: one multiply-accumulate and one shift per value.
            if let Some(r) = crate::quant::RoundingRequantizer::new(mult, shift) {
                for (o, &a) in dst.iter_mut().zip(acc) {
                    *o = (r.apply(a) + zero_point).clamp(lo, hi) as i8 as u8;
                }
                return;
            }
            match crate::quant::Requantizer::new(mult, shift) {
                // The channel's constants worked out once for the whole run.
                Some(r) => {
                    for (o, &a) in dst.iter_mut().zip(acc) {
                        *o = (r.apply(a) + zero_point).clamp(lo, hi) as i8 as u8;
                    }
                }
                None => {
                    for (o, &a) in dst.iter_mut().zip(acc) {
                        *o = requantize(a, mult, shift, zero_point, act_min, act_max);
                    }
                }
            }
        }
        OutSpec::F32 { quant } => {
            let scale = f32_at(quant, c);
            for (o, &a) in out[4 * first..4 * (first + acc.len())].chunks_exact_mut(4).zip(acc) {
                o.copy_from_slice(&(a as f32 * scale).to_le_bytes());
            }
        }
    }
}

/// Output columns `[lo, hi)` whose tap `k` lands inside an input row of width `wi`:
/// `0 <= ox·s + k − pad < wi`.
#[inline]
fn valid_cols(k: usize, pad: usize, stride: usize, wi: usize, wo: usize) -> (usize, usize) {
    let lo = if k >= pad { 0 } else { (pad - k).div_ceil(stride) };
    let hi = if wi + pad > k { ((wi + pad - k - 1) / stride + 1).min(wo) } else { 0 };
    (lo, hi.max(lo))
}

/// im2col columns on the stack (i16, zero-point corrected): `positions × K` values.
const COLS: usize = 8192;
/// Widened weights on the stack: all output channels' (`Co × K` values) when they fit,
/// else one output-channel pair's (`2 × K`).
const WBUF: usize = 6144;
/// Most kernel taps (kh·kw) the im2col kernel handles.
const MAX_TAPS: usize = 64;

/// The inner products the convolutions are built from: the one place an instruction set
/// plugs into the portable im2col and channel-last GEMMs. [`I16`] is the portable one; the
/// Arm DSP kernels (`kernels::arm_dsp`) implement it with SMLAD on words of two i16.
pub trait MicroKernel {
    /// What the dot products read: i16 values, or words holding two i16 lanes.
    type Lane: bytemuck::Pod;
    /// i16 values per [`MicroKernel::Lane`].
    const PACK: usize = core::mem::size_of::<Self::Lane>() / 2;
    /// Whether [`MicroKernel::gemm_quads_row`] computes four output channels at a time (then
    /// 1×1 convolutions take the channel-last path too).
    const QUADS: bool = false;

    /// Dot products of two columns with two weight rows (the 2×2 micro-kernel): four
    /// accumulators share every load (equal lengths, a whole number of lanes).
    fn dot2x2(c0: &[Self::Lane], c1: &[Self::Lane], w0: &[Self::Lane], w1: &[Self::Lane]) -> [i32; 4];

    /// One dot product (equal lengths).
    fn dot(c: &[Self::Lane], w: &[Self::Lane]) -> i32;

    /// [`gemm_pair`] (an instruction set may take it out of line, to give the inner loop
    /// the register file).
    #[inline(always)]
    fn gemm_pair(cols: &[Self::Lane], kl: usize, w0: &[Self::Lane], w1: &[Self::Lane], b0: i32, b1: i32, a0: &mut [i32], a1: &mut [i32]) {
        gemm_pair::<Self>(cols, kl, w0, w1, b0, b1, a0, a1)
    }

    /// [`gemm_pair_hwc`] (likewise).
    #[inline(always)]
    fn gemm_pair_hwc(
        rows: &[Self::Lane],
        runs: &[(usize, usize)],
        step: usize,
        w0: &[Self::Lane],
        w1: &[Self::Lane],
        b0: i32,
        b1: i32,
        a0: &mut [i32],
        a1: &mut [i32],
    ) {
        gemm_pair_hwc::<Self>(rows, runs, step, w0, w1, b0, b1, a0, a1)
    }

    /// `dst[i] = clamp(r.apply(acc[i]) + zero_point, lo, hi)` for equal lengths, in the
    /// instruction set's own loop; `false` (nothing written) where it has none or the
    /// constants do not suit it, and the portable loop runs instead.
    #[inline(always)]
    fn requantize_run(_acc: &[i32], _r: &crate::quant::RoundingRequantizer, _zero_point: i32, _lo: i32, _hi: i32, _dst: &mut [u8]) -> bool {
        false
    }

    /// [`channel_last_row`] (an instruction set may have a faster conversion).
    #[allow(clippy::too_many_arguments)]
    #[inline(always)]
    fn channel_last_row(input: &[u8], ci_n: usize, hi: usize, wi: usize, iy: usize, zp: i32, pad: usize, dst: &mut [i16]) {
        channel_last_row(input, ci_n, hi, wi, iy, zp, pad, dst)
    }

    /// One output row of the channel-last convolution four output channels at a time, with
    /// the weights interleaved as `conv2d_rows_hwc` lays them out for quads, each channel's row
    /// then written through `spec`. Returns `false` when the shapes do not suit it (nothing
    /// written); only called when [`MicroKernel::QUADS`].
    fn gemm_quads_row(
        _rows: &[Self::Lane],
        _runs: &[(usize, usize)],
        _step: usize,
        _wv: &[Self::Lane],
        _per_co: usize,
        _bias: &[u8],
        _acc: &mut [i32; TILE],
        _oy: usize,
        _dims: [usize; 3],
        _spec: &OutSpec,
        _out: &mut [u8],
        _cache: &mut RowCache,
    ) -> bool {
        false
    }
}

/// Most output channels a [`RowCache`] holds.
pub const CACHE_CO: usize = 64;

/// What [`MicroKernel::gemm_quads_row`] works out from a convolution's bias and output spec
/// on its first output row and reuses on the others: each channel's bias and requantization
/// constants (the instruction set's own). One cache for one bias, spec and channel count —
/// a fresh one per convolution, or per view of one.
pub struct RowCache {
    /// Whether a first row filled it.
    pub filled: bool,
    /// Each channel's bias.
    pub bias: [i32; CACHE_CO],
    /// Each channel's requantization constants, in the micro-kernel's terms.
    pub consts: [[i32; 3]; CACHE_CO],
}

impl RowCache {
    /// An empty cache.
    #[inline(always)]
    pub fn new() -> Self {
        RowCache { filled: false, bias: [0; CACHE_CO], consts: [[0; 3]; CACHE_CO] }
    }
}

impl Default for RowCache {
    fn default() -> Self {
        Self::new()
    }
}

/// The portable micro-kernel: i16 operands, i32 products.
pub struct I16;

impl MicroKernel for I16 {
    type Lane = i16;

    #[inline(always)]
    fn dot2x2(c0: &[i16], c1: &[i16], w0: &[i16], w1: &[i16]) -> [i32; 4] {
        let (mut s00, mut s01, mut s10, mut s11) = (0i32, 0i32, 0i32, 0i32);
        for (((a, b), u), v) in c0.chunks_exact(2).zip(c1.chunks_exact(2)).zip(w0.chunks_exact(2)).zip(w1.chunks_exact(2)) {
            let (a0, a1, b0, b1) = (a[0] as i32, a[1] as i32, b[0] as i32, b[1] as i32);
            let (u0, u1, v0, v1) = (u[0] as i32, u[1] as i32, v[0] as i32, v[1] as i32);
            s00 += a0 * u0 + a1 * u1;
            s01 += a0 * v0 + a1 * v1;
            s10 += b0 * u0 + b1 * u1;
            s11 += b0 * v0 + b1 * v1;
        }
        [s00, s01, s10, s11]
    }

    #[inline(always)]
    fn dot(c: &[i16], w: &[i16]) -> i32 {
        let mut s = 0i32;
        for (&a, &u) in c.iter().zip(w) {
            s += a as i32 * u as i32;
        }
        s
    }
}

/// The accumulators of one output-channel pair over a group of positions: `a0[p]`,
/// `a1[p]` = bias + column `p` of `cols` (`kl` lanes each) · `w0`, `w1`, two positions at a
/// time through [`MicroKernel::dot2x2`]. This is [`gemm_pair_hwc`] with a single run
/// (`[(0, kl)]`, step `kl`), kept separate because the runs loop costs the M4 7% more
/// instructions over the PixelCNN's convolutions (measured with the firmware test).
#[inline(always)]
pub fn gemm_pair<M: MicroKernel + ?Sized>(
    cols: &[M::Lane],
    kl: usize,
    w0: &[M::Lane],
    w1: &[M::Lane],
    b0: i32,
    b1: i32,
    a0: &mut [i32],
    a1: &mut [i32],
) {
    let np = a0.len().min(a1.len());
    if kl == 0 {
        a0[..np].fill(b0);
        a1[..np].fill(b1);
        return;
    }
    let mut p = 0;
    for (c, (a0, a1)) in cols.chunks_exact(2 * kl).zip(a0[..np].chunks_exact_mut(2).zip(a1[..np].chunks_exact_mut(2))) {
        let (c0, c1) = c.split_at(kl);
        let [s00, s01, s10, s11] = M::dot2x2(c0, c1, w0, w1);
        (a0[0], a1[0], a0[1], a1[1]) = (b0 + s00, b1 + s01, b0 + s10, b1 + s11);
        p += 2;
    }
    if p < np {
        let c0 = &cols[p * kl..(p + 1) * kl];
        a0[p] = b0 + M::dot(c0, w0);
        a1[p] = b1 + M::dot(c0, w1);
    }
}

/// 2-D convolution, bit-exact with `reference::conv2d`: im2col + a 2×2 register-blocked
/// GEMM over i16 operands. For each group of output positions of a row, their receptive
/// fields are gathered once (zero-point corrected, so padding is 0); for each pair of
/// output channels the int8 weights are widened once (per call when all fit, else per
/// group); then each 2-position ×
/// 2-channel block is four dot products sharing their loads. Stack: 32 KiB (columns,
/// widened weights, accumulators).
pub fn conv2d(g: &ConvGeometry, input: &[u8], weights: &[u8], bias: &[u8], spec: &OutSpec, out: &mut [u8]) {
    conv2d_im2col::<I16>(g, input, weights, bias, spec, out)
}

/// The body of [`conv2d`], inlined into each instruction-set variant.
#[inline(always)]
pub fn conv2d_im2col<M: MicroKernel>(g: &ConvGeometry, input: &[u8], weights: &[u8], bias: &[u8], spec: &OutSpec, out: &mut [u8]) {
    let [ci_n, hi, wi] = g.input;
    let [co_n, ho, wo] = g.output;
    let [kh, kw] = g.kernel;
    let taps = kh * kw;
    if taps == 0 || taps > MAX_TAPS || wo > TILE {
        return conv2d_large::<M>(g, input, weights, bias, spec, out);
    }
    // Taps (ky·kw + kx) with a nonzero weight for some channel: a masked kernel's zero half
    // drops out of every dot product.
    let mut live = [0u8; MAX_TAPS];
    let n_live = crate::kernels::live_taps(weights, co_n * ci_n, taps, &mut live);
    let live = &live[..n_live];
    let k = ci_n * n_live;
    // A four-channel micro-kernel reads whole blocks of four lanes (eight i16).
    let k2 = if M::QUADS { k.next_multiple_of(8) } else { k + (k & 1) };
    if 2 * k2 > WBUF || 2 * k2 > COLS {
        return conv2d_large::<M>(g, input, weights, bias, spec, out);
    }
    let (s, pad, zp) = (g.stride, g.pad, g.input_zero_point);
    let group = COLS.checked_div(k2).map_or(wo, |g| g.min(wo).min(TILE / 2));
    // u32 storage, written as i16 values and read as [`Lane`]s (`bytemuck` casts); the
    // channel-last path below uses the same buffers.
    let mut cols_buf = [0u32; COLS / 2];
    let mut w_buf = [0u32; WBUF / 2];
    let kl = k2 / M::PACK;
    let mut acc = [0i32; TILE];
    // Tap offsets (ky, kx) of the live taps, decoded once.
    let mut tap_yx = [(0usize, 0usize); MAX_TAPS];
    for (d, &t) in tap_yx.iter_mut().zip(live) {
        *d = (t as usize / kw, t as usize % kw);
    }
    let tap_yx = &tap_yx[..n_live];
    // Many input channels: read the receptive fields straight from channel-last rows.
    let ci2 = ci_n + (ci_n & 1);
    // (1×1 kernels too where a 4-channel micro-kernel beats im2col: the M4's.)
    let one_by_one = M::QUADS && ci2 % 8 == 0;
    // Too many weights to widen at once but a small input (the VAE encoder's second layer,
    // 32 → 64 channels at 14×14): the whole input channel-last once, then one quad of
    // output channels after another, each quad's weights widened once.
    let (wp, hp) = (wi + 2 * g.pad, hi + 2 * g.pad);
    if M::QUADS
        && ci_n >= 8
        && ci2 % 8 == 0
        && co_n * n_live * ci2 > WBUF
        && 4 * n_live * ci2 <= WBUF
        && hp * wp * ci2 <= COLS
        && 4 * wo <= TILE
    {
        let bufs = (&mut cols_buf, &mut w_buf, &mut acc);
        return conv2d_quads_whole_input::<M>(g, input, weights, bias, spec, out, live, tap_yx, bufs);
    }
    // Channel-last rows, all output channels in one pass when their weights fit; otherwise
    // (a full 3×3 layer of 32 → 32 channels needs 9,216) as many at a time as fit, in
    // fours, each pass reading the input rows again. (One call site: the image's flash.)
    let per = if co_n * n_live * ci2 <= WBUF { co_n } else { WBUF / (n_live * ci2) / 4 * 4 };
    if ci_n >= 8 && (taps > 1 || one_by_one) && per > 0 && kh * (wi + 2 * g.pad) * ci2 <= COLS && wo <= TILE / 2 {
        let plane = ho * wo;
        let (bytes, q) = match *spec {
            OutSpec::Int8 { .. } => (1, 8),
            OutSpec::F32 { .. } => (4, 4),
        };
        let mut c0 = 0;
        while c0 < co_n {
            let c1 = (c0 + per).min(co_n);
            let sub = ConvGeometry { output: [c1 - c0, ho, wo], ..*g };
            let sub_spec = match *spec {
                OutSpec::Int8 { zero_point, act_min, act_max, quant } => {
                    OutSpec::Int8 { zero_point, act_min, act_max, quant: &quant[c0 * q..c1 * q] }
                }
                OutSpec::F32 { quant } => OutSpec::F32 { quant: &quant[c0 * q..c1 * q] },
            };
            let (w, b) = (&weights[c0 * ci_n * taps..c1 * ci_n * taps], &bias[4 * c0..4 * c1]);
            let o = &mut out[c0 * plane * bytes..c1 * plane * bytes];
            conv2d_rows_hwc::<M>(&sub, input, w, b, &sub_spec, o, live, tap_yx, (&mut cols_buf, &mut w_buf, &mut acc));
            c0 = c1;
        }
        return;
    }
    let widen = |dst: &mut [i16], co: usize| {
        let w_co = &weights[co * ci_n * taps..(co + 1) * ci_n * taps];
        for (d, w) in dst[..k].chunks_exact_mut(n_live.max(1)).zip(w_co.chunks_exact(taps)) {
            for (d, &t) in d.iter_mut().zip(live) {
                *d = w[t as usize] as i8 as i16;
            }
        }
        dst[k..k2].fill(0);
    };
    // All output channels' weights widened once per call when they fit (the PixelCNN's
    // convolutions all do); otherwise one pair at a time, per group of positions.
    let all_fit = co_n * k2 <= WBUF;
    // Four output channels at a time on the columns of a whole row (one run of `kl` lanes a
    // position), their weights interleaved as for the channel-last quads: the M4's 7×7
    // first layers.
    let quads = M::QUADS && group == wo && 4 * wo <= TILE && co_n.div_ceil(4) * 4 * k2 <= WBUF;
    let mut cache = RowCache::new();
    if quads {
        // Quad q, word pair j, channel r (as `conv2d_rows_hwc` lays them out); value `j` of
        // a column is input channel `j / n_live`, live tap `j % n_live`.
        let wv: &mut [i16] = bytemuck::cast_slice_mut(&mut w_buf[..]);
        wv[..co_n.div_ceil(4) * 4 * k2].fill(0);
        let per_co = k2 / 2;
        for co in 0..co_n {
            let w_co = &weights[co * ci_n * taps..(co + 1) * ci_n * taps];
            let (q, r) = (co / 4, co % 4);
            for j in 0..k {
                let (lane, half) = (j / 2, j % 2);
                let word = q * 4 * per_co + (lane / 2) * 8 + r * 2 + lane % 2;
                wv[2 * word + half] = w_co[(j / n_live) * taps + live[j % n_live] as usize] as i8 as i16;
            }
        }
    } else if all_fit {
        let wv: &mut [i16] = bytemuck::cast_slice_mut(&mut w_buf[..]);
        for co in 0..co_n {
            widen(&mut wv[co * k2..(co + 1) * k2], co);
        }
    }
    for oy in g.rows.0..g.rows.1.min(ho) {
        let mut x0 = 0;
        while x0 < wo {
            let np = group.min(wo - x0);
            // Gather the receptive fields of positions x0..x0+np (padding reads as 0), one
            // (input channel, tap) at a time: a strided walk along one input row.
            let cols: &mut [i16] = bytemuck::cast_slice_mut(&mut cols_buf[..]);
            if k2 > k {
                cols[..np * k2].chunks_exact_mut(k2).for_each(|c| c[k..].fill(0));
            }
            for ci in 0..ci_n {
                let plane = &input[ci * hi * wi..(ci + 1) * hi * wi];
                for (ti, &(ky, kx)) in tap_yx.iter().enumerate() {
                    let j = ci * n_live + ti;
                    let cols = &mut cols[..np * k2];
                    let iy = (oy * s + ky).wrapping_sub(pad);
                    // Positions whose tap lands inside the row: lo..hi_p (relative to x0).
                    let (lo, hi_p) = if iy < hi {
                        let (lo, hi_p) = valid_cols(kx, pad, s, wi, x0 + np);
                        (lo.max(x0) - x0, hi_p.max(x0) - x0)
                    } else {
                        (0, 0)
                    };
                    let (head, rest) = cols.split_at_mut(lo * k2);
                    let (mid, tail) = rest.split_at_mut((hi_p - lo) * k2);
                    for c in head.chunks_exact_mut(k2).chain(tail.chunks_exact_mut(k2)) {
                        c[j] = 0;
                    }
                    if lo < hi_p {
                        let row = &plane[iy * wi..(iy + 1) * wi];
                        let src = row[(x0 + lo) * s + kx - pad..].iter().step_by(s);
                        for (c, &x) in mid.chunks_exact_mut(k2).zip(src) {
                            c[j] = (x as i8 as i32 - zp) as i16;
                        }
                    }
                }
            }
            let cols: &[M::Lane] = bytemuck::cast_slice(&cols_buf[..]);
            let cols = &cols[..np * kl];
            if quads {
                let wv: &[M::Lane] = bytemuck::cast_slice(&w_buf[..]);
                if !M::gemm_quads_row(cols, &[(0, kl)], kl, wv, kl, bias, &mut acc, oy, g.output, spec, out, &mut cache) {
                    return crate::kernels::reference::conv2d(g, input, weights, bias, spec, out);
                }
                x0 += np;
                continue;
            }
            let mut co = 0;
            while co < co_n {
                let pair = co + 1 < co_n;
                let base = if all_fit { co * kl } else { 0 };
                if !all_fit {
                    let wv: &mut [i16] = bytemuck::cast_slice_mut(&mut w_buf[..]);
                    let (w0, w1) = wv.split_at_mut(k2);
                    widen(w0, co);
                    if pair {
                        widen(w1, co + 1);
                    }
                }
                let wv: &[M::Lane] = bytemuck::cast_slice(&w_buf[..]);
                let (w0, w1) = (&wv[base..base + kl], &wv[base + kl..base + 2 * kl]);
                let (b0, b1) = (i32_at(bias, co), if pair { i32_at(bias, co + 1) } else { 0 });
                let (a0, a1) = acc[..2 * np].split_at_mut(np);
                if pair {
                    M::gemm_pair(cols, kl, w0, w1, b0, b1, a0, a1);
                } else if kl == 0 {
                    a0.fill(b0);
                } else {
                    for (a, c) in a0.iter_mut().zip(cols.chunks_exact(kl)) {
                        *a = b0 + M::dot(c, w0);
                    }
                }
                emit_run_with::<M>(a0, co, (co * ho + oy) * wo + x0, spec, out);
                if pair {
                    emit_run_with::<M>(a1, co + 1, ((co + 1) * ho + oy) * wo + x0, spec, out);
                }
                co += 2;
            }
            x0 += np;
        }
    }
}

/// The accumulators of one output-channel pair over one output row, reading receptive
/// fields from channel-last input rows (`rows`: per kernel row `ky`, `wp` pixels of `cw`
/// lanes, zero-padded). Each run `(o, n)` of `runs` is `n` contiguous lanes at `o + p·step`
/// for position `p` (live taps of one kernel row with consecutive `kx` are one run);
/// `w0`, `w1` hold the widened weights run after run.
#[inline(always)]
pub fn gemm_pair_hwc<M: MicroKernel + ?Sized>(
    rows: &[M::Lane],
    runs: &[(usize, usize)],
    step: usize,
    w0: &[M::Lane],
    w1: &[M::Lane],
    b0: i32,
    b1: i32,
    a0: &mut [i32],
    a1: &mut [i32],
) {
    let np = a0.len().min(a1.len());
    let mut p = 0;
    while p + 1 < np {
        let (mut s00, mut s01, mut s10, mut s11) = (b0, b1, b0, b1);
        let mut wo = 0;
        for &(o, n) in runs {
            let c0 = &rows[o + p * step..o + p * step + n];
            let c1 = &rows[o + (p + 1) * step..o + (p + 1) * step + n];
            let [d00, d01, d10, d11] = M::dot2x2(c0, c1, &w0[wo..wo + n], &w1[wo..wo + n]);
            (s00, s01, s10, s11) = (s00 + d00, s01 + d01, s10 + d10, s11 + d11);
            wo += n;
        }
        (a0[p], a1[p], a0[p + 1], a1[p + 1]) = (s00, s01, s10, s11);
        p += 2;
    }
    if p < np {
        let (mut s0, mut s1, mut wo) = (b0, b1, 0);
        for &(o, n) in runs {
            let c = &rows[o + p * step..o + p * step + n];
            s0 += M::dot(c, &w0[wo..wo + n]);
            s1 += M::dot(c, &w1[wo..wo + n]);
            wo += n;
        }
        (a0[p], a1[p]) = (s0, s1);
    }
}

/// [`conv2d`] for many input channels, bit-exact with `reference::conv2d`: for each output
/// row the input rows it reads are converted once to channel-last i16 (zero-point corrected,
/// zero-padded), so every tap of every position is a contiguous run of channels and the 2×2
/// micro-kernel reads it in place — no per-position gathering. Weights are widened once per
/// call in (output channel, live tap, input channel) order.
#[inline(always)]
fn conv2d_rows_hwc<M: MicroKernel>(
    g: &ConvGeometry,
    input: &[u8],
    weights: &[u8],
    bias: &[u8],
    spec: &OutSpec,
    out: &mut [u8],
    live: &[u8],
    tap_yx: &[(usize, usize)],
    (rows_buf, w_buf, acc): (&mut [u32; COLS / 2], &mut [u32; WBUF / 2], &mut [i32; TILE]),
) {
    let [ci_n, hi, wi] = g.input;
    let [co_n, ho, wo] = g.output;
    let [kh, kw] = g.kernel;
    let (s, pad, zp) = (g.stride, g.pad, g.input_zero_point);
    let (taps, n_live) = (kh * kw, live.len());
    let ci2 = ci_n + (ci_n & 1);
    let (cw, wp) = (ci2 / M::PACK, wi + 2 * pad);
    let mut cache = RowCache::new();
    let quads = M::QUADS && cw % 4 == 0 && 4 * wo <= TILE && co_n.div_ceil(4) * 4 * n_live * cw <= WBUF / 2;
    if quads {
        // Four output channels per block, their weights interleaved two words at a time
        // (the layout the Arm DSP `dot1x4` reads): quad q, word pair j, channel r.
        let wv: &mut [i16] = bytemuck::cast_slice_mut(&mut w_buf[..]);
        let per_co = n_live * cw;
        wv[..co_n.div_ceil(4) * 8 * per_co].fill(0);
        for co in 0..co_n {
            let w_co = &weights[co * ci_n * taps..(co + 1) * ci_n * taps];
            let (q, r) = (co / 4, co % 4);
            interleave_quad_channel(w_co, taps, live, ci2, r, &mut wv[q * 8 * per_co..(q + 1) * 8 * per_co]);
        }
    } else {
        let wv: &mut [i16] = bytemuck::cast_slice_mut(&mut w_buf[..]);
        for co in 0..co_n {
            let w_co = &weights[co * ci_n * taps..(co + 1) * ci_n * taps];
            for (t, &tap) in live.iter().enumerate() {
                let dst = &mut wv[(co * n_live + t) * ci2..(co * n_live + t + 1) * ci2];
                for (ci, d) in dst[..ci_n].iter_mut().enumerate() {
                    *d = w_co[ci * taps + tap as usize] as i8 as i16;
                }
                dst[ci_n..].fill(0);
            }
        }
    }
    // One position further is `s` pixels.
    let mut runs_ky = [(0usize, 0usize, 0usize); MAX_TAPS];
    let n_runs = tap_runs(tap_yx, cw, &mut runs_ky);
    let runs_ky = &runs_ky[..n_runs];
    let mut needed = [false; MAX_TAPS];
    for &(ky, _) in tap_yx {
        needed[ky] = true;
    }
    // A ring of kernel-height row slots: padded input row `key − pad` (key = oy·s + ky) lives
    // in slot `key mod kh`, converted when it first enters the window and read in place by
    // the next output rows (with stride 1, two of every three rows of a 3×3 kernel), the
    // runs pointing at the slots their kernel rows sit in for this output row.
    let mut held = [usize::MAX; MAX_TAPS];
    let row_len = wp * ci2;
    let mut runs = [(0usize, 0usize); MAX_TAPS];
    for oy in g.rows.0..g.rows.1.min(ho) {
        {
            let rows: &mut [i16] = bytemuck::cast_slice_mut(&mut rows_buf[..]);
            for ky in (0..kh).filter(|&ky| needed[ky]) {
                let key = oy * s + ky;
                let slot = key % kh;
                if held[slot] != key {
                    let dst = &mut rows[slot * row_len..(slot + 1) * row_len];
                    // Rows above the input wrap to huge indices: all padding.
                    let iy = key.wrapping_sub(pad);
                    if iy >= hi {
                        dst.fill(0);
                    } else {
                        M::channel_last_row(input, ci_n, hi, wi, iy, zp, pad, dst);
                    }
                    held[slot] = key;
                }
            }
        }
        for (r, &(ky, off, n)) in runs.iter_mut().zip(runs_ky) {
            *r = (((oy * s + ky) % kh) * wp * cw + off, n);
        }
        let runs = &runs[..n_runs];
        let rows: &[M::Lane] = bytemuck::cast_slice(&rows_buf[..kh * wp * ci2 / 2]);
        let wv: &[M::Lane] = bytemuck::cast_slice(&w_buf[..]);
        if quads {
            if !M::gemm_quads_row(rows, runs, s * cw, wv, n_live * cw, bias, acc, oy, g.output, spec, out, &mut cache) {
                return crate::kernels::reference::conv2d(g, input, weights, bias, spec, out);
            }
            continue;
        }
        let per_co = n_live * cw;
        let mut co = 0;
        while co < co_n {
            let pair = co + 1 < co_n;
            let w0 = &wv[co * per_co..(co + 1) * per_co];
            // An odd last channel runs against itself; its second result is dropped.
            let w1 = if pair { &wv[(co + 1) * per_co..(co + 2) * per_co] } else { w0 };
            let (b0, b1) = (i32_at(bias, co), if pair { i32_at(bias, co + 1) } else { 0 });
            let (a0, a1) = acc[..2 * wo].split_at_mut(wo);
            M::gemm_pair_hwc(rows, runs, s * cw, w0, w1, b0, b1, a0, a1);
            emit_run_with::<M>(a0, co, (co * ho + oy) * wo, spec, out);
            if pair {
                emit_run_with::<M>(a1, co + 1, ((co + 1) * ho + oy) * wo, spec, out);
            }
            co += 2;
        }
    }
}

/// Runs of live taps (same kernel row, consecutive kx) for channel-last rows of `cw` lanes a
/// pixel, written to `runs` as (kernel row, lane offset within the row for position 0,
/// lanes); returns their count (`runs` holds one per live tap at most).
#[inline(always)]
fn tap_runs(tap_yx: &[(usize, usize)], cw: usize, runs: &mut [(usize, usize, usize)]) -> usize {
    let mut n = 0;
    for (t, &(ky, kx)) in tap_yx.iter().enumerate() {
        if t > 0 && tap_yx[t - 1] == (ky, kx.wrapping_sub(1)) {
            runs[n - 1].2 += cw;
        } else {
            runs[n] = (ky, kx * cw, cw);
            n += 1;
        }
    }
    n
}

/// Channel `r` (0..4) of a quad's interleaved weights: `w_co` (one output channel's int8
/// weights, input channel by input channel, `taps` each) at the live taps, widened, tap after
/// tap of `ci2` lanes (a multiple of four); lane `l` of the channel goes to
/// `dst[(l / 4)·16 + r·4 + l % 4]` — for every two words, two of each of the four channels,
/// the layout the four-channel micro-kernel reads (`dst`: the quad's 8 · lanes i16).
#[inline(always)]
fn interleave_quad_channel(w_co: &[u8], taps: usize, live: &[u8], ci2: usize, r: usize, dst: &mut [i16]) {
    for (t, &tap) in live.iter().enumerate() {
        // Tap t's lanes start a group of four (ci2 is a multiple of four).
        let groups = &mut dst[(t * ci2 / 4) * 16..];
        for (i, &w) in w_co.iter().skip(tap as usize).step_by(taps).enumerate() {
            groups[(i >> 2) * 16 + r * 4 + (i & 3)] = w as i8 as i16;
        }
    }
}

/// [`conv2d`] for a [`MicroKernel::QUADS`] kernel when all output channels' weights do not
/// fit the stack buffer but the whole zero-padded input does, channel-last: the input is
/// converted once, then for each quad of output channels its weights are widened once (in
/// the interleaved layout `conv2d_rows_hwc` uses) and every output row of that quad runs
/// through [`MicroKernel::gemm_quads_row`], on views of the bias, the output and `spec` that
/// start at the quad's first channel. Bit-exact with `reference::conv2d`.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn conv2d_quads_whole_input<M: MicroKernel>(
    g: &ConvGeometry,
    input: &[u8],
    weights: &[u8],
    bias: &[u8],
    spec: &OutSpec,
    out: &mut [u8],
    live: &[u8],
    tap_yx: &[(usize, usize)],
    (rows_buf, w_buf, acc): (&mut [u32; COLS / 2], &mut [u32; WBUF / 2], &mut [i32; TILE]),
) {
    let [ci_n, hi, wi] = g.input;
    let [co_n, ho, wo] = g.output;
    let [kh, kw] = g.kernel;
    let (s, pad, zp) = (g.stride, g.pad, g.input_zero_point);
    let (taps, n_live) = (kh * kw, live.len());
    let ci2 = ci_n + (ci_n & 1);
    let (cw, wp, hp) = (ci2 / M::PACK, wi + 2 * pad, hi + 2 * pad);
    {
        let rows: &mut [i16] = bytemuck::cast_slice_mut(&mut rows_buf[..]);
        let row_len = wp * ci2;
        for r in 0..hp {
            let dst = &mut rows[r * row_len..(r + 1) * row_len];
            if r < pad || r >= pad + hi {
                dst.fill(0);
            } else {
                M::channel_last_row(input, ci_n, hi, wi, r - pad, zp, pad, dst);
            }
        }
    }
    // The runs' offsets from the receptive field's top-left lane in the padded input.
    let mut runs_ky = [(0usize, 0usize, 0usize); MAX_TAPS];
    let n_runs = tap_runs(tap_yx, cw, &mut runs_ky);
    let mut runs = [(0usize, 0usize); MAX_TAPS];
    for (r, &(ky, off, n)) in runs.iter_mut().zip(&runs_ky[..n_runs]) {
        *r = (ky * wp * cw + off, n);
    }
    let runs = &runs[..n_runs];
    let per_co = n_live * cw;
    let rows: &[M::Lane] = bytemuck::cast_slice(&rows_buf[..hp * wp * ci2 / 2]);
    let elem = match spec {
        OutSpec::Int8 { .. } => 1,
        OutSpec::F32 { .. } => 4,
    };
    for q in 0..co_n.div_ceil(4) {
        let nc = (co_n - 4 * q).min(4);
        {
            let wv: &mut [i16] = bytemuck::cast_slice_mut(&mut w_buf[..]);
            wv[..8 * per_co].fill(0);
            for r in 0..nc {
                let co = 4 * q + r;
                let w_co = &weights[co * ci_n * taps..(co + 1) * ci_n * taps];
                interleave_quad_channel(w_co, taps, live, ci2, r, &mut wv[..8 * per_co]);
            }
        }
        let wv: &[M::Lane] = bytemuck::cast_slice(&w_buf[..]);
        let sub = spec.channels_from(4 * q);
        let out_q = &mut out[elem * 4 * q * ho * wo..];
        let mut cache = RowCache::new();
        for oy in g.rows.0..g.rows.1.min(ho) {
            let top = &rows[oy * s * wp * cw..];
            if !M::gemm_quads_row(top, runs, s * cw, wv, per_co, &bias[16 * q..], acc, oy, [nc, ho, wo], &sub, out_q, &mut cache) {
                return crate::kernels::reference::conv2d(g, input, weights, bias, spec, out);
            }
        }
    }
}

/// Input row `iy` of all `ci_n` planes as channel-last i16 (zero-point corrected) into
/// `dst`: `pad` zero pixels, the row's pixels of `dst.len() / (wi + 2·pad)` lanes (channels,
/// then a zero lane if the count is odd), `pad` zero pixels.
#[allow(clippy::too_many_arguments)]
#[inline(never)]
pub fn channel_last_row(input: &[u8], ci_n: usize, hi: usize, wi: usize, iy: usize, zp: i32, pad: usize, dst: &mut [i16]) {
    let ci2 = dst.len() / (wi + 2 * pad);
    dst[..pad * ci2].fill(0);
    dst[(pad + wi) * ci2..].fill(0);
    let body = &mut dst[pad * ci2..(pad + wi) * ci2];
    let row = |ci: usize| &input[(ci * hi + iy) * wi..(ci * hi + iy + 1) * wi];
    let mut ci = 0;
    while ci < ci_n {
        let a = row(ci);
        if ci + 1 < ci_n {
            let b = row(ci + 1);
            for ((d, &x), &y) in body.chunks_exact_mut(ci2).zip(a).zip(b) {
                let d = &mut d[ci..ci + 2];
                d[0] = (x as i8 as i32 - zp) as i16;
                d[1] = (y as i8 as i32 - zp) as i16;
            }
        } else {
            for (d, &x) in body.chunks_exact_mut(ci2).zip(a) {
                d[ci..ci + 2].copy_from_slice(&[(x as i8 as i32 - zp) as i16, 0]);
            }
        }
        ci += 2;
    }
}

/// Shapes the im2col kernel's stack buffers do not hold: [`conv2d_rows`], or on a
/// [`MicroKernel::QUADS`] build (the M4's, whose QEMU image has every model in 1 MiB of
/// flash; none of the bundled models has such a layer) the reference loops.
#[inline(always)]
fn conv2d_large<M: MicroKernel>(g: &ConvGeometry, input: &[u8], weights: &[u8], bias: &[u8], spec: &OutSpec, out: &mut [u8]) {
    if M::QUADS {
        crate::kernels::reference::conv2d(g, input, weights, bias, spec, out)
    } else {
        conv2d_rows(g, input, weights, bias, spec, out)
    }
}

/// 2-D convolution by weight-stationary row sweeps (for shapes the im2col kernel's stack
/// buffers do not hold), bit-exact with `reference::conv2d`.
fn conv2d_rows(g: &ConvGeometry, input: &[u8], weights: &[u8], bias: &[u8], spec: &OutSpec, out: &mut [u8]) {
    let [ci_n, hi, wi] = g.input;
    let [co_n, ho, wo] = g.output;
    let [kh, kw] = g.kernel;
    if wo > TILE {
        return crate::kernels::reference::conv2d(g, input, weights, bias, spec, out);
    }
    let (s, pad, zp) = (g.stride, g.pad, g.input_zero_point);
    let rows_per_tile = TILE / wo;
    let mut acc = [0i32; TILE];
    for co in 0..co_n {
        let b = i32_at(bias, co);
        let w_co = &weights[co * ci_n * kh * kw..(co + 1) * ci_n * kh * kw];
        let (mut y0, y_end) = (g.rows.0, g.rows.1.min(ho));
        while y0 < y_end {
            let rows = rows_per_tile.min(y_end - y0);
            let tile = &mut acc[..rows * wo];
            tile.fill(b);
            for ci in 0..ci_n {
                let plane = &input[ci * hi * wi..(ci + 1) * hi * wi];
                for ky in 0..kh {
                    for kx in 0..kw {
                        let w = w_co[(ci * kh + ky) * kw + kx] as i8 as i32;
                        if w == 0 {
                            continue;
                        }
                        let (lo, hi_col) = valid_cols(kx, pad, s, wi, wo);
                        for r in 0..rows {
                            let iy = (y0 + r) * s + ky;
                            if iy < pad || iy - pad >= hi {
                                continue;
                            }
                            let row = &plane[(iy - pad) * wi..(iy - pad + 1) * wi];
                            let acc_row = &mut tile[r * wo + lo..r * wo + hi_col];
                            if s == 1 {
                                let start = lo + kx - pad;
                                for (a, &x) in acc_row.iter_mut().zip(&row[start..start + (hi_col - lo)]) {
                                    *a += (x as i8 as i32 - zp) * w;
                                }
                            } else {
                                for (j, a) in acc_row.iter_mut().enumerate() {
                                    let x = row[(lo + j) * s + kx - pad];
                                    *a += (x as i8 as i32 - zp) * w;
                                }
                            }
                        }
                    }
                }
            }
            emit_run(tile, co, (co * ho + y0) * wo, spec, out);
            y0 += rows;
        }
    }
}

/// 2-D transposed convolution, bit-exact with `reference::conv_transpose2d`: each weight
/// scatters one input plane into the output plane's accumulators, over the input rows and
/// columns that land inside the output (worked out once per tap, not tested per pixel).
pub fn conv_transpose2d(g: &ConvGeometry, input: &[u8], weights: &[u8], bias: &[u8], spec: &OutSpec, out: &mut [u8]) {
    if !conv_transpose2d_phases(g, input, weights, bias, spec, out, conv2d) {
        conv_transpose2d_scatter(g, input, weights, bias, spec, out)
    }
}

/// A stride-1 convolution a transposed one's phases run on (geometry, input, weights,
/// biases, output spec, output).
pub type PhaseConv = fn(&ConvGeometry, &[u8], &[u8], &[u8], &OutSpec, &mut [u8]);

/// Most bytes of one phase's weights for a group of output channels
/// ([`conv_transpose2d_phases`]; a larger layer runs a group of its channels at a time).
const PHASE_WEIGHTS: usize = 8192;
/// Most bytes of one phase's output for that group (the VAE decoder's last transposed
/// layer: 32 channels × 15 × 15).
const PHASE_OUT: usize = 8192;

/// A transposed convolution as `stride²` ordinary ones (its phases): output pixel `(s·m +
/// py, s·n + px)` only ever meets the kernel taps `ky ≡ py + pad`, `kx ≡ px + pad` (mod
/// `s`), so each phase is a stride-1 convolution of the input with a `k/s × k/s` slice of
/// the kernel, run by `conv` (the table's own, fast, convolution) and then spread into
/// every `s`-th output pixel, for as many output channels at a time as the stack buffers
/// hold. Integer sums in another order: bit-exact with the reference. Returns `false`
/// (nothing written) where it does not apply: a kernel that is not a multiple of the
/// stride, f32 outputs (a model's small last layer), or a row band. Out of line, one copy
/// whatever the convolution.
#[inline(never)]
pub fn conv_transpose2d_phases(
    g: &ConvGeometry,
    input: &[u8],
    weights: &[u8],
    bias: &[u8],
    spec: &OutSpec,
    out: &mut [u8],
    conv: PhaseConv,
) -> bool {
    let [ci_n, hi, wi] = g.input;
    let [co_n, ho, wo] = g.output;
    let [kh, kw] = g.kernel;
    let (s, pad) = (g.stride, g.pad);
    let OutSpec::Int8 { zero_point, act_min, act_max, quant } = *spec else { return false };
    if s < 2 || kh != kw || kh % s != 0 || g.rows != (0, ho) || hi == 0 || wi == 0 {
        return false;
    }
    // Each phase: a kp × kp kernel, padded by kp − 1 on every side, so that every offset
    // a phase needs (from ⌊(p + pad)/s⌋ − kp + 1 to ⌊(p + pad)/s⌋) is inside.
    let kp = kh / s;
    let pp = kp - 1;
    let (hp, wp) = (hi + 2 * pp - kp + 1, wi + 2 * pp - kp + 1);
    // Output channels per group.
    let group = (PHASE_WEIGHTS / (ci_n * kp * kp)).min(PHASE_OUT / (hp * wp)).min(co_n);
    // First phase-output row (or column) of phase `p` and how many it has; `None` where the
    // phase's rows fall outside the padded convolution's output.
    let span = |p: usize, n_out: usize, n_phase: usize| -> Option<(usize, usize)> {
        let count = n_out.saturating_sub(p).div_ceil(s);
        let first = ((p + pad) / s + pp + 1).checked_sub(kp)?;
        (count == 0 || first + count <= n_phase).then_some((first, count))
    };
    if group == 0 || (0..s).any(|p| span(p, ho, hp).is_none() || span(p, wo, wp).is_none()) {
        return false;
    }
    let mut w = [0u8; PHASE_WEIGHTS];
    let mut tmp = [0u8; PHASE_OUT];
    let mut c0 = 0;
    while c0 < co_n {
        let cc = group.min(co_n - c0);
        // This group's biases and output constants.
        let sub_spec = OutSpec::Int8 { zero_point, act_min, act_max, quant: &quant[8 * c0..] };
        let sub_bias = &bias[4 * c0..4 * (c0 + cc)];
        for py in 0..s {
            let (y0, ny) = span(py, ho, hp).unwrap_or((0, 0));
            for px in 0..s {
                let (x0, nx) = span(px, wo, wp).unwrap_or((0, 0));
                if ny == 0 || nx == 0 {
                    continue;
                }
                // Tap t of the phase kernel reads input offset ⌊(p + pad)/s⌋ − kp + 1 + t:
                // the transposed kernel's tap (p + pad) − s·offset.
                let (dy, dx) = ((py + pad) / s, (px + pad) / s);
                let src_all = &weights[c0 * ci_n * kh * kw..(c0 + cc) * ci_n * kh * kw];
                for (w_oc, src) in w[..cc * ci_n * kp * kp].chunks_exact_mut(kp * kp).zip(src_all.chunks_exact(kh * kw)) {
                    for ty in 0..kp {
                        let ky = py + pad + s * (kp - 1 - ty) - s * dy;
                        for tx in 0..kp {
                            let kx = px + pad + s * (kp - 1 - tx) - s * dx;
                            w_oc[ty * kp + tx] = src[ky * kw + kx];
                        }
                    }
                }
                let phase = ConvGeometry {
                    input: g.input,
                    output: [cc, hp, wp],
                    kernel: [kp, kp],
                    stride: 1,
                    pad: pp,
                    input_zero_point: g.input_zero_point,
                    rows: (y0, y0 + ny),
                };
                conv(&phase, input, &w[..cc * ci_n * kp * kp], sub_bias, &sub_spec, &mut tmp[..cc * hp * wp]);
                // Spread the phase's rows into every s-th output pixel.
                for c in 0..cc {
                    for m in 0..ny {
                        let row = &tmp[(c * hp + y0 + m) * wp + x0..][..nx];
                        let dst = &mut out[((c0 + c) * ho + s * m + py) * wo..][..wo];
                        for (d, &v) in dst[px..].iter_mut().step_by(s).zip(row) {
                            *d = v;
                        }
                    }
                }
            }
        }
        c0 += cc;
    }
    true
}

/// [`conv_transpose2d`] by scattering every input value into the output (one channel's
/// accumulators at a time): what the phases do not take.
fn conv_transpose2d_scatter(g: &ConvGeometry, input: &[u8], weights: &[u8], bias: &[u8], spec: &OutSpec, out: &mut [u8]) {
    let [ci_n, hi, wi] = g.input;
    let [co_n, ho, wo] = g.output;
    let [kh, kw] = g.kernel;
    if ho * wo > TILE || g.rows != (0, ho) {
        return crate::kernels::reference::conv_transpose2d(g, input, weights, bias, spec, out);
    }
    let (s, pad, zp) = (g.stride, g.pad, g.input_zero_point);
    let mut acc = [0i32; TILE];
    for co in 0..co_n {
        let plane_acc = &mut acc[..ho * wo];
        plane_acc.fill(i32_at(bias, co));
        for ci in 0..ci_n {
            let plane = &input[ci * hi * wi..(ci + 1) * hi * wi];
            for ky in 0..kh {
                // Input rows whose tap ky lands inside the output: 0 <= iy·s + ky − pad < ho.
                let (iy_lo, iy_hi) = scatter_range(ky, pad, s, ho, hi);
                for kx in 0..kw {
                    let w = weights[((co * ci_n + ci) * kh + ky) * kw + kx] as i8 as i32;
                    let (ix_lo, ix_hi) = scatter_range(kx, pad, s, wo, wi);
                    if w == 0 || ix_lo >= ix_hi {
                        continue;
                    }
                    for iy in iy_lo..iy_hi {
                        let row = &plane[iy * wi + ix_lo..iy * wi + ix_hi];
                        let first = (iy * s + ky - pad) * wo + ix_lo * s + kx - pad;
                        for (a, &x) in plane_acc[first..].iter_mut().step_by(s).zip(row) {
                            *a += (x as i8 as i32 - zp) * w;
                        }
                    }
                }
            }
        }
        emit_run(plane_acc, co, co * ho * wo, spec, out);
    }
}

/// Input positions `[lo, hi)` (of `n_in`) whose transposed-convolution tap `k` lands inside
/// an output of `n_out`: `0 <= i·s + k − pad < n_out`.
#[inline]
fn scatter_range(k: usize, pad: usize, s: usize, n_out: usize, n_in: usize) -> (usize, usize) {
    let lo = if k >= pad { 0 } else { (pad - k).div_ceil(s) };
    let hi = if n_out + pad > k { ((n_out + pad - k - 1) / s + 1).min(n_in) } else { 0 };
    (lo, hi.max(lo))
}

/// Dense layer, bit-exact with `reference::fully_connected`: the input is widened to
/// zero-point-corrected i16 once per chunk, then every output row is a plain dot product.
pub fn fully_connected(input: &[u8], input_zero_point: i32, weights: &[u8], bias: &[u8], outputs: usize, spec: &OutSpec, out: &mut [u8]) {
    const CHUNK: usize = 512;
    let n = input.len();
    let mut acc = [0i32; TILE];
    let mut x16 = [0i16; CHUNK];
    let mut m0 = 0;
    while m0 < outputs {
        let mo = TILE.min(outputs - m0);
        for (m, a) in acc[..mo].iter_mut().enumerate() {
            *a = i32_at(bias, m0 + m);
        }
        let mut k0 = 0;
        while k0 < n {
            let kn = CHUNK.min(n - k0);
            for (d, &x) in x16[..kn].iter_mut().zip(&input[k0..k0 + kn]) {
                *d = (x as i8 as i32 - input_zero_point) as i16;
            }
            for (m, a) in acc[..mo].iter_mut().enumerate() {
                let row = &weights[(m0 + m) * n + k0..(m0 + m) * n + k0 + kn];
                let mut sum = 0i32;
                for (&x, &w) in x16[..kn].iter().zip(row) {
                    sum += x as i32 * w as i8 as i32;
                }
                *a += sum;
            }
            k0 += kn;
        }
        for (m, &a) in acc[..mo].iter().enumerate() {
            spec.emit(a, m0 + m, m0 + m, out);
        }
        m0 += mo;
    }
}
