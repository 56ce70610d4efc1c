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

/// Input `i`'s rescaled contribution to an addition for each of its 256 byte values.
pub(crate) fn add_table(p: &AddParams, i: usize) -> [i32; 256] {
    core::array::from_fn(|v| {
        multiply_by_quantized_multiplier((v as u8 as i8 as i32 - p.zero_points[i]) << p.left_shift, p.inputs[i].0, p.inputs[i].1)
    })
}

/// int8 addition, bit-exact with `reference::add`: each input's rescaled contribution is a
/// function of its int8 value alone, so both are tabulated once per call (256 entries each)
/// and every element costs two lookups and one requantization instead of three. Out of line:
/// the instruction-set additions fall back to it, and one copy in flash serves them all.
#[inline(never)]
pub fn add(p: &AddParams, a: &[u8], b: &[u8], out: &mut [u8]) {
    if out.len() < 512 {
        return super::reference::add(p, a, b, out);
    }
    let (ta, tb) = (add_table(p, 0), add_table(p, 1));
    let (lo, hi) = (p.act.0 as i32, p.act.1 as i32);
    let (m, shift) = p.output;
    if m == i32::MIN || !(-31..=31).contains(&shift) {
        // Outside what the compiler writes (a multiplier in [2^30, 2^31), a small shift):
        // the definition, element by element.
        for ((o, &x), &y) in out.iter_mut().zip(a).zip(b) {
            let v = multiply_by_quantized_multiplier(ta[x as usize] + tb[y as usize], m, shift) + p.output_zero_point;
            *o = v.clamp(lo, hi) as i8 as u8;
        }
        return;
    }
    let zp = p.output_zero_point;
    // The common case: one multiply-accumulate and one shift per value.
    if let Some(r) = crate::quant::RoundingRequantizer::new(m, shift) {
        for ((o, &x), &y) in out.iter_mut().zip(a).zip(b) {
            *o = (r.apply(ta[x as usize] + tb[y as usize]) + zp).clamp(lo, hi) as i8 as u8;
        }
        return;
    }
    // `multiply_by_quantized_multiplier` with its loop invariants hoisted: the left shift,
    // the rounding mask, and the saturation case (only for a multiplier of i32::MIN, excluded
    // above). The same integer steps, so the same bits. These are `quant::Requantizer::apply`'s
    // steps written out: through the struct, this unrolled loop spills on the Cortex-M4
    // (36.8 instead of 35 instructions a value, measured in QEMU).
    let (left, right) = (shift.max(0) as u32, (-shift).max(0) as u32);
    let mask = ((1i64 << right) - 1) as i32;
    let half = mask >> 1;
    for ((o, &x), &y) in out.iter_mut().zip(a).zip(b) {
        let sum = (ta[x as usize] + tb[y as usize]).wrapping_shl(left);
        let h = ((sum as i64 * m as i64 + (1 << 30)) >> 31) as i32;
        let r = (h >> right) + (((h & mask) > half + (h < 0) as i32) as i32);
        *o = (r + zp).clamp(lo, hi) as i8 as u8;
    }
}
