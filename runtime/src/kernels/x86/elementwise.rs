//! Addition with AVX-512 (and the portable one compiled for AVX2) and ReLU with AVX2.
#![allow(unsafe_code)]

use super::{vector_quant, Mbqm};
use core::arch::x86_64::*;

/// int8 addition ([`crate::kernels::reference::add`]) 16 elements at a time with AVX-512,
/// bit-exact. Returns `false` (nothing written) for parameters outside the vector path's
/// range (the caller then uses the table kernel). The caller has checked [`has_vnni`].
pub fn add_avx512(p: &crate::kernels::AddParams, a: &[u8], b: &[u8], out: &mut [u8]) -> bool {
    let ok = (0..=31).contains(&p.left_shift)
        && vector_quant(p.inputs[0].0, p.inputs[0].1)
        && vector_quant(p.inputs[1].0, p.inputs[1].1)
        && vector_quant(p.output.0, p.output.1);
    if !ok {
        return false;
    }
    let n = out.len().min(a.len()).min(b.len());
    // SAFETY: the caller checked AVX-512 F/BW/VNNI; the body reads and writes 16 bytes at
    // i + 16 ≤ n and the last 1..=15 elements through masked loads and stores.
    unsafe { add_avx512_body(p, a, b, out, n) };
    true
}

#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni")]
unsafe fn add_avx512_body(p: &crate::kernels::AddParams, a: &[u8], b: &[u8], out: &mut [u8], n: usize) {
    let shift = _mm_cvtsi32_si128(p.left_shift);
    let (za, zb) = (_mm512_set1_epi32(p.zero_points[0]), _mm512_set1_epi32(p.zero_points[1]));
    let (lo, hi) = (_mm512_set1_epi32(p.act.0 as i32), _mm512_set1_epi32(p.act.1 as i32));
    let zo = _mm512_set1_epi32(p.output_zero_point);
    let (qa, qb, qo) =
        (Mbqm::new(p.inputs[0].0, p.inputs[0].1), Mbqm::new(p.inputs[1].0, p.inputs[1].1), Mbqm::new(p.output.0, p.output.1));
    let mut i = 0;
    while i < n {
        // Whole vectors, then the last 1..=15 elements through a lane mask.
        let k: __mmask16 = if i + 16 <= n { 0xFFFF } else { (1u32 << (n - i)) as u16 - 1 };
        let x = _mm512_cvtepi8_epi32(_mm_maskz_loadu_epi8(k, a.as_ptr().add(i) as *const i8));
        let y = _mm512_cvtepi8_epi32(_mm_maskz_loadu_epi8(k, b.as_ptr().add(i) as *const i8));
        let xs = _mm512_sll_epi32(_mm512_sub_epi32(x, za), shift);
        let ys = _mm512_sll_epi32(_mm512_sub_epi32(y, zb), shift);
        let sum = _mm512_add_epi32(qa.apply(xs), qb.apply(ys));
        let v = _mm512_add_epi32(qo.apply(sum), zo);
        let v = _mm512_min_epi32(_mm512_max_epi32(v, lo), hi);
        _mm_mask_storeu_epi8(out.as_mut_ptr().add(i) as *mut i8, k, _mm512_cvtepi32_epi8(v));
        i += 16;
    }
}

#[target_feature(enable = "avx2")]
fn relu_avx2_body(zero_point: i8, input: &[u8], out: &mut [u8]) {
    for (o, &x) in out.iter_mut().zip(input) {
        *o = (x as i8).max(zero_point) as u8;
    }
}

/// int8 ReLU ([`crate::kernels::reference::relu`]) vectorized by LLVM for AVX2 (`vpmaxsb`);
/// the caller has checked AVX2 and that the zero point is an int8 value.
pub fn relu_avx2(zero_point: i8, input: &[u8], out: &mut [u8]) {
    // SAFETY: only called after `is_x86_feature_detected!("avx2")` returned true.
    unsafe { relu_avx2_body(zero_point, input, out) }
}

#[target_feature(enable = "avx2")]
fn add_avx2_body(p: &crate::kernels::AddParams, a: &[u8], b: &[u8], out: &mut [u8]) {
    crate::kernels::portable::add(p, a, b, out)
}

/// The portable addition compiled for AVX2; the caller has checked `has_avx2`.
pub fn add_avx2(p: &crate::kernels::AddParams, a: &[u8], b: &[u8], out: &mut [u8]) {
    debug_assert!(super::has_avx2());
    // SAFETY: only reached through the AVX2 table, chosen after `has_avx2` returned true.
    unsafe { add_avx2_body(p, a, b, out) }
}
