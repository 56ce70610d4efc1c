//! Convolution, transposed convolution and dense layers (optimized).

use crate::kernels::{f32_at, i32_at, requantize, ConvGeometry, OutSpec};

/// Accumulators of one output tile (rows of one output channel), on the stack.
const TILE: usize = 1024;

/// Writes `acc` (the accumulators of channel `c`, elements starting at `first`) to `out`.
#[inline]
fn emit_run(acc: &[i32], c: usize, first: usize, spec: &OutSpec, out: &mut [u8]) {
    match *spec {
        OutSpec::Int8 { zero_point, act_min, act_max, quant } => {
            let (mult, shift) = (i32_at(quant, 2 * c), i32_at(quant, 2 * c + 1));
            for (o, &a) in out[first..first + acc.len()].iter_mut().zip(acc) {
                *o = requantize(a, mult, shift, zero_point, act_min, act_max);
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

/// 2-D convolution, bit-exact with `reference::conv2d`.
pub fn conv2d(g: &ConvGeometry, input: &[u8], weights: &[u8], bias: &[u8], spec: &OutSpec, out: &mut [u8]) {
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
/// scatters one input plane into the output plane's accumulators.
pub fn conv_transpose2d(g: &ConvGeometry, input: &[u8], weights: &[u8], bias: &[u8], spec: &OutSpec, out: &mut [u8]) {
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
                for kx in 0..kw {
                    let w = weights[((co * ci_n + ci) * kh + ky) * kw + kx] as i8 as i32;
                    if w == 0 {
                        continue;
                    }
                    for iy in 0..hi {
                        let oy = iy * s + ky;
                        if oy < pad || oy - pad >= ho {
                            continue;
                        }
                        let row = &plane[iy * wi..(iy + 1) * wi];
                        let base = (oy - pad) * wo;
                        for (ix, &x) in row.iter().enumerate() {
                            let ox = ix * s + kx;
                            if ox < pad || ox - pad >= wo {
                                continue;
                            }
                            plane_acc[base + ox - pad] += (x as i8 as i32 - zp) * w;
                        }
                    }
                }
            }
        }
        emit_run(plane_acc, co, co * ho * wo, spec, out);
    }
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
