//! Convolution, transposed convolution and dense layers (reference).

use crate::kernels::{i32_at, ConvGeometry, OutSpec};

/// 2-D convolution: `out[co, y, x] = bias[co] + Σ (in[ci, y·s+ky−p, x·s+kx−p] − zp) · w[co, ci, ky, kx]`,
/// padded taps contributing nothing (they hold the zero point).
pub fn conv2d(g: &ConvGeometry, input: &[u8], weights: &[u8], bias: &[u8], spec: &OutSpec, out: &mut [u8]) {
    let [ci_n, hi, wi] = g.input;
    let [co_n, ho, wo] = g.output;
    let [kh, kw] = g.kernel;
    for co in 0..co_n {
        for oy in g.rows.0..g.rows.1.min(ho) {
            for ox in 0..wo {
                let mut acc = i32_at(bias, co);
                for ci in 0..ci_n {
                    for ky in 0..kh {
                        let iy = (oy * g.stride + ky) as isize - g.pad as isize;
                        if iy < 0 || iy >= hi as isize {
                            continue;
                        }
                        for kx in 0..kw {
                            let ix = (ox * g.stride + kx) as isize - g.pad as isize;
                            if ix < 0 || ix >= wi as isize {
                                continue;
                            }
                            let x = input[(ci * hi + iy as usize) * wi + ix as usize] as i8 as i32 - g.input_zero_point;
                            let w = weights[((co * ci_n + ci) * kh + ky) * kw + kx] as i8 as i32;
                            acc += x * w;
                        }
                    }
                }
                spec.emit(acc, co, (co * ho + oy) * wo + ox, out);
            }
        }
    }
}

/// 2-D transposed convolution in gather form: `out[co, y, x] = bias[co] + Σ (in[ci, iy, ix] − zp) · w[co, ci, ky, kx]`
/// over taps with `y + p − ky = iy·s` and `x + p − kx = ix·s` inside the input. Weights are
/// stored `[Co, Ci, kh, kw]` (the compiler transposes ONNX's `[Ci, Co, kh, kw]`).
pub fn conv_transpose2d(g: &ConvGeometry, input: &[u8], weights: &[u8], bias: &[u8], spec: &OutSpec, out: &mut [u8]) {
    let [ci_n, hi, wi] = g.input;
    let [co_n, ho, wo] = g.output;
    let [kh, kw] = g.kernel;
    let s = g.stride as isize;
    for co in 0..co_n {
        for oy in g.rows.0..g.rows.1.min(ho) {
            for ox in 0..wo {
                let mut acc = i32_at(bias, co);
                for ci in 0..ci_n {
                    for ky in 0..kh {
                        let ty = oy as isize + g.pad as isize - ky as isize;
                        if ty < 0 || ty % s != 0 || ty / s >= hi as isize {
                            continue;
                        }
                        for kx in 0..kw {
                            let tx = ox as isize + g.pad as isize - kx as isize;
                            if tx < 0 || tx % s != 0 || tx / s >= wi as isize {
                                continue;
                            }
                            let x = input[(ci * hi + (ty / s) as usize) * wi + (tx / s) as usize] as i8 as i32 - g.input_zero_point;
                            let w = weights[((co * ci_n + ci) * kh + ky) * kw + kx] as i8 as i32;
                            acc += x * w;
                        }
                    }
                }
                spec.emit(acc, co, (co * ho + oy) * wo + ox, out);
            }
        }
    }
}

/// Dense layer: `out[m] = bias[m] + Σ_n (in[n] − zp) · w[m, n]`.
pub fn fully_connected(input: &[u8], input_zero_point: i32, weights: &[u8], bias: &[u8], outputs: usize, spec: &OutSpec, out: &mut [u8]) {
    let n = input.len();
    for m in 0..outputs {
        let mut acc = i32_at(bias, m);
        for (k, &x) in input.iter().enumerate() {
            acc += (x as i8 as i32 - input_zero_point) * weights[m * n + k] as i8 as i32;
        }
        spec.emit(acc, m, m, out);
    }
}
