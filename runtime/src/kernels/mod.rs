//! int8 kernels over byte buffers (int8 values stored as their two's-complement bytes).
//!
//! [`reference`] holds plain, obviously-correct loops: the oracle. [`portable`] holds the
//! same functions, faster, in Rust that runs everywhere and imports no architecture code;
//! [`x86`] (AVX2, AVX-512 VNNI), `arm_dsp` (SMLAD) and `arm_mve` (Helium) hold what an instruction set does
//! better, built on the portable code, never the other way round. [`dispatch`] puts one of
//! each kernel in a table, chosen once; the interpreter calls the table. Every table is
//! bit-exact with the reference: one test suite (`tests.rs`) runs against each by name.

#[cfg(all(target_arch = "arm", feature = "dsp"))]
pub mod arm_dsp;
#[cfg(all(target_arch = "arm", feature = "mve"))]
pub mod arm_mve;
pub mod dispatch;
pub mod portable;
pub mod reference;
#[cfg(all(target_arch = "x86_64", feature = "std"))]
pub mod x86;

pub use dispatch::KernelTable;

/// A weighted layer's shape, as the prepare step sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layer {
    /// A convolution.
    Conv(ConvGeometry),
    /// A transposed convolution.
    ConvTranspose(ConvGeometry),
    /// A dense layer.
    Dense {
        /// Input length.
        inputs: usize,
        /// Output length.
        outputs: usize,
        /// Input zero point.
        input_zero_point: i32,
    },
}

/// Constants a kernel table derived from one op ahead of time (packed weights), kept by the
/// interpreter and handed back on every run of that op. Only a table that packs makes them
/// (x86-64: AVX2, AVX-512 VNNI); a kernel given `None` works from the stored constants. On
/// other architectures no table packs, so the contents are never read there.
#[cfg(feature = "std")]
#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
pub struct Packed(pub(crate) std::boxed::Box<dyn core::any::Any + Send + Sync>);

/// Without `std` no table packs (there is no allocator to keep packed weights in): this type
/// has no values.
#[cfg(not(feature = "std"))]
pub enum Packed {}

#[cfg(feature = "std")]
#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
impl Packed {
    /// The packed constants as the type the table made them as.
    pub(crate) fn get<T: 'static>(&self) -> Option<&T> {
        self.0.downcast_ref()
    }
}

impl core::fmt::Debug for Packed {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("Packed")
    }
}

/// Writes the kernel taps (`ky·kw + kx`, ascending) that have a nonzero weight in any of
/// the `rows` (output × input channel) kernels of `weights` into `live`; returns how many.
/// Taps past `live.len()` are not looked at.
pub fn live_taps(weights: &[u8], rows: usize, taps: usize, live: &mut [u8]) -> usize {
    let mut n = 0;
    for t in 0..taps.min(live.len()) {
        if (0..rows).any(|r| weights[r * taps + t] != 0) {
            live[n] = t as u8;
            n += 1;
        }
    }
    n
}

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

impl<'a> OutSpec<'a> {
    /// Writes accumulator `acc` of channel `c` at element `idx` of `out`.
    #[inline]
    /// The same spec for channels `c0..`: its channel `c` is this one's `c0 + c`.
    pub(crate) fn channels_from(&self, c0: usize) -> OutSpec<'a> {
        match *self {
            OutSpec::Int8 { zero_point, act_min, act_max, quant } => {
                OutSpec::Int8 { zero_point, act_min, act_max, quant: quant.get(8 * c0..).unwrap_or(&[]) }
            }
            OutSpec::F32 { quant } => OutSpec::F32 { quant: quant.get(4 * c0..).unwrap_or(&[]) },
        }
    }

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
    /// The fastest bit-exact table for this build and CPU ([`dispatch::best`]).
    #[default]
    Optimized,
}

impl Kernels {
    /// The table these kernels stand for.
    pub fn table(self) -> &'static KernelTable {
        match self {
            Kernels::Reference => dispatch::reference(),
            Kernels::Optimized => dispatch::best(),
        }
    }
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
