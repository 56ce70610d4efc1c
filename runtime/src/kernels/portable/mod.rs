//! Portable optimized int8 kernels, bit-exact with [`super::reference`] (integer sums are exact in
//! any order). Convolutions are im2col + a register-blocked i16 GEMM (2 output positions ×
//! 2 output channels per inner loop); kernel taps that are zero for every channel (the
//! masked half of a PixelCNN kernel) are left out of the dot products; transposed
//! convolutions scatter whole input rows per weight; the requantization constants are read
//! once per channel; additions look their inputs' rescaling up in 256-entry tables.

pub mod conv;

pub use conv::{conv2d, conv_transpose2d, fully_connected, MicroKernel, I16};

use super::AddParams;
use crate::quant::multiply_by_quantized_multiplier;

/// int8 addition, bit-exact with `reference::add`: each input's rescaled contribution is a
/// function of its int8 value alone, so both are tabulated once per call (256 entries each)
/// and every element costs two lookups and one requantization instead of three.
pub fn add(p: &AddParams, a: &[u8], b: &[u8], out: &mut [u8]) {
    if out.len() < 512 {
        return super::reference::add(p, a, b, out);
    }
    let table = |i: usize| -> [i32; 256] {
        core::array::from_fn(|v| {
            multiply_by_quantized_multiplier((v as u8 as i8 as i32 - p.zero_points[i]) << p.left_shift, p.inputs[i].0, p.inputs[i].1)
        })
    };
    let (ta, tb) = (table(0), table(1));
    let (lo, hi) = (p.act.0 as i32, p.act.1 as i32);
    for ((o, &x), &y) in out.iter_mut().zip(a).zip(b) {
        let sum = ta[x as usize] + tb[y as usize];
        let v = multiply_by_quantized_multiplier(sum, p.output.0, p.output.1) + p.output_zero_point;
        *o = v.clamp(lo, hi) as i8 as u8;
    }
}
