//! The optimized convolution compiled for AVX2 as well (the same Rust body, vectorized by
//! LLVM with 256-bit registers: `vpmaddwd` on the i16 dot products), chosen at run time
//! when the CPU has it. Results are identical: the arithmetic is integer and exact.
#![allow(unsafe_code)]

use crate::kernels::{ConvGeometry, OutSpec};

#[target_feature(enable = "avx2")]
fn conv2d_avx2_body(g: &ConvGeometry, input: &[u8], weights: &[u8], bias: &[u8], spec: &OutSpec, out: &mut [u8]) {
    super::conv::conv2d_im2col(g, input, weights, bias, spec, out)
}

/// [`super::conv2d`] with AVX2; the caller has checked `is_x86_feature_detected!("avx2")`.
pub fn conv2d_avx2(g: &ConvGeometry, input: &[u8], weights: &[u8], bias: &[u8], spec: &OutSpec, out: &mut [u8]) {
    debug_assert!(std::is_x86_feature_detected!("avx2"));
    // SAFETY: only called after `is_x86_feature_detected!("avx2")` returned true, so the
    // CPU executes the AVX2 instructions this function was compiled with.
    unsafe { conv2d_avx2_body(g, input, weights, bias, spec, out) }
}
