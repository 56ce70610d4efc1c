//! int8 kernels over byte buffers (int8 values stored as their two's-complement bytes).
//!
//! [`reference`] holds plain, obviously-correct loops: the oracle. [`optimized`] holds the
//! same functions, faster; they must be bit-exact with the reference (one test suite runs
//! against both). The interpreter picks one through [`Kernels`].

pub mod optimized;
pub mod reference;

use crate::quant::multiply_by_quantized_multiplier;

/// How a weighted op writes its accumulators.
#[derive(Debug, Clone, Copy)]
pub enum OutSpec<'a> {
    /// Requantize to int8: per channel `(multiplier i32, shift i32)` in `quant`, then add
    /// the zero point and clamp to `[act_min, act_max]`.
    Int8 {
        /// Output zero point.
        zero_point: i32,
        /// Lower clamp.
        act_min: i8,
        /// Upper clamp.
        act_max: i8,
        /// 8 bytes per channel.
        quant: &'a [u8],
    },
    /// Write f32 `acc · scale[c]` (4 bytes per element, little-endian): the model's edge.
    F32 {
        /// 4 bytes (f32) per channel.
        quant: &'a [u8],
    },
}

/// Geometry of a convolution (or transposed convolution).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConvGeometry {
    /// Input (C, H, W).
    pub input: [usize; 3],
    /// Output (C, H, W).
    pub output: [usize; 3],
    /// Kernel (h, w).
    pub kernel: [usize; 2],
    /// Stride on both axes.
    pub stride: usize,
    /// Padding on all sides.
    pub pad: usize,
    /// Input zero point.
    pub input_zero_point: i32,
    /// Output rows to compute, `[first, end)`; `(0, output[1])` for the whole output.
    /// Rows outside are left untouched (row-band evaluation for PixelCNN sampling).
    pub rows: (usize, usize),
}

#[inline]
pub(crate) fn i32_at(b: &[u8], i: usize) -> i32 {
    i32::from_le_bytes([b[4 * i], b[4 * i + 1], b[4 * i + 2], b[4 * i + 3]])
}

#[inline]
pub(crate) fn f32_at(b: &[u8], i: usize) -> f32 {
    f32::from_bits(i32_at(b, i) as u32)
}

/// Requantizes accumulator `acc` of channel `c` to an int8 byte.
#[inline]
pub(crate) fn requantize(acc: i32, multiplier: i32, shift: i32, zero_point: i32, act_min: i8, act_max: i8) -> u8 {
    let v = multiply_by_quantized_multiplier(acc, multiplier, shift) + zero_point;
    v.clamp(act_min as i32, act_max as i32) as i8 as u8
}

impl OutSpec<'_> {
    /// Writes accumulator `acc` of channel `c` at element `idx` of `out`.
    #[inline]
    pub(crate) fn emit(&self, acc: i32, c: usize, idx: usize, out: &mut [u8]) {
        match *self {
            OutSpec::Int8 { zero_point, act_min, act_max, quant } => {
                out[idx] = requantize(acc, i32_at(quant, 2 * c), i32_at(quant, 2 * c + 1), zero_point, act_min, act_max);
            }
            OutSpec::F32 { quant } => {
                let v = acc as f32 * f32_at(quant, c);
                out[4 * idx..4 * idx + 4].copy_from_slice(&v.to_le_bytes());
            }
        }
    }
}

/// Which kernel implementations the interpreter uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Kernels {
    /// The plain loops (the oracle).
    Reference,
    /// The fast versions (bit-exact with the reference).
    #[default]
    Optimized,
}

/// Rescaling constants of an int8 Add (TFLite's scheme): `left_shift`, then each input's
/// (multiplier, shift), then the output's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AddParams {
    /// Common left shift of both inputs.
    pub left_shift: i32,
    /// Input zero points.
    pub zero_points: [i32; 2],
    /// Input (multiplier, shift) pairs.
    pub inputs: [(i32, i32); 2],
    /// Output (multiplier, shift).
    pub output: (i32, i32),
    /// Output zero point.
    pub output_zero_point: i32,
    /// Output clamp.
    pub act: (i8, i8),
}

#[cfg(test)]
mod tests;
