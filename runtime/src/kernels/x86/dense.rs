//! Dense layers with AVX-512 VNNI.
#![allow(unsafe_code)]

use crate::kernels::{i32_at, OutSpec};
use core::arch::x86_64::*;

/// A dense layer's weights packed for [`fully_connected_vnni`], with the shape they were
/// made for (checked on every use).
pub struct DensePack {
    shape: (usize, usize, i32),
    /// `[k/4][outputs/16][16 lanes][4]` int8, zero-padded.
    w: Vec<u8>,
    /// Per output: bias − (zp + 128)·Σ weights.
    corr: Vec<i32>,
}

/// The prepare step's packing of a dense layer of `n` inputs and `outputs` outputs; `None`
/// for weights or biases shorter than the shape or a zero point outside int8.
pub fn pack(n: usize, outputs: usize, input_zero_point: i32, weights: &[u8], bias: &[u8]) -> Option<DensePack> {
    if n == 0 || outputs == 0 || weights.len() < outputs * n || bias.len() < 4 * outputs || !(-128..=127).contains(&input_zero_point) {
        return None;
    }
    let (kq, mq) = (n.div_ceil(4), outputs.div_ceil(16));
    let mut w = vec![0u8; kq * mq * 64];
    for m in 0..outputs {
        for k in 0..n {
            w[((k / 4) * mq + m / 16) * 64 + (m % 16) * 4 + k % 4] = weights[m * n + k];
        }
    }
    let corr = (0..outputs)
        .map(|m| {
            let sum = weights[m * n..(m + 1) * n].iter().fold(0i32, |a, &w| a.wrapping_add(w as i8 as i32));
            i32_at(bias, m).wrapping_sub((input_zero_point + 128).wrapping_mul(sum))
        })
        .collect();
    Some(DensePack { shape: (n, outputs, input_zero_point), w, corr })
}

/// [`super::fully_connected`] with AVX-512 VNNI, bit-exact: 16 outputs per vector, four inputs
/// per `vpdpbusd` (broadcast, shifted to u8 and corrected as in the convolution), weights
/// packed by [`pack`] (the prepare step's, or here when none fits). Returns `false` (nothing
/// written) for buffers inconsistent with the shape or an input zero point outside int8.
/// The caller has checked [`super::has_vnni`].
pub fn fully_connected_vnni(
    input: &[u8],
    input_zero_point: i32,
    weights: &[u8],
    bias: &[u8],
    outputs: usize,
    spec: &OutSpec,
    out: &mut [u8],
    packed: Option<&DensePack>,
) -> bool {
    let n = input.len();
    let width = match spec {
        OutSpec::Int8 { quant, .. } if quant.len() >= 8 * outputs => 1,
        OutSpec::F32 { quant } if quant.len() >= 4 * outputs => 4,
        _ => return false,
    };
    if n == 0
        || outputs == 0
        || weights.len() < outputs * n
        || bias.len() < 4 * outputs
        || out.len() < width * outputs
        || !(-128..=127).contains(&input_zero_point)
    {
        return false;
    }
    let made;
    let p = match packed.filter(|p| p.shape == (n, outputs, input_zero_point)) {
        Some(p) => p,
        None => match pack(n, outputs, input_zero_point, weights, bias) {
            Some(p) => {
                made = p;
                &made
            }
            None => return false,
        },
    };
    // SAFETY: the caller checked AVX-512 F/BW/VL/VNNI; the body's reads and writes are
    // bounded by the lengths checked above and the packing's shape (see its comments).
    unsafe { dense_body(input, p, outputs, spec, out) };
    true
}

#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni")]
unsafe fn dense_body(input: &[u8], p: &DensePack, outputs: usize, spec: &OutSpec, out: &mut [u8]) {
    let n = input.len();
    let (kq, mq) = (n.div_ceil(4), outputs.div_ceil(16));
    // The input as u8 (x + 128), four per u32, padded (the padding meets zero weights).
    let mut xs = vec![0x80u8; kq * 4];
    for (d, &x) in xs.iter_mut().zip(input) {
        *d = x ^ 0x80;
    }
    const V: usize = 8;
    let mut m0 = 0;
    while m0 < mq {
        let nv = (mq - m0).min(V);
        let mut acc = [_mm512_setzero_si512(); V];
        for (j, a) in acc.iter_mut().enumerate().take(nv) {
            // Corrected biases of outputs (m0 + j)·16 .. +16 (fewer at the end).
            let first = (m0 + j) * 16;
            let lanes = (outputs - first).min(16);
            let mask = ((1u32 << lanes) - 1) as u16;
            *a = _mm512_maskz_loadu_epi32(mask, p.corr.as_ptr().add(first));
        }
        for kg in 0..kq {
            let xb = _mm512_set1_epi32(i32::from_le_bytes([xs[4 * kg], xs[4 * kg + 1], xs[4 * kg + 2], xs[4 * kg + 3]]));
            // SAFETY: (kg·mq + m0 + j)·64 + 64 ≤ kq·mq·64 = p.w.len().
            let wrow = p.w.as_ptr().add((kg * mq + m0) * 64);
            for (j, a) in acc.iter_mut().enumerate().take(nv) {
                *a = _mm512_dpbusd_epi32(*a, xb, _mm512_loadu_si512(wrow.add(j * 64) as *const _));
            }
        }
        for (j, &a) in acc.iter().enumerate().take(nv) {
            let first = (m0 + j) * 16;
            let lanes = (outputs - first).min(16);
            let mask = ((1u32 << lanes) - 1) as u16;
            // SAFETY: first + lanes ≤ outputs; the quantization blocks hold `outputs`
            // channels and `out` `outputs` elements (checked by the caller).
            if !emit_lanes(a, spec, first, mask, out) {
                let mut vals = [0i32; 16];
                _mm512_storeu_si512(vals.as_mut_ptr() as *mut _, a);
                for (l, &v) in vals.iter().enumerate().take(lanes) {
                    spec.emit(v, first + l, first + l, out);
                }
            }
        }
        m0 += nv;
    }
}

/// Requantizes 16 accumulators of 16 consecutive channels `first..` (each with its own
/// multiplier and shift) and stores the lanes of `mask` at `out[first..]`, as
/// `OutSpec::emit` does element by element. Returns `false` (nothing written) when a lane's
/// constants are outside the vector path's range.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl")]
unsafe fn emit_lanes(acc: __m512i, spec: &OutSpec, first: usize, mask: u16, out: &mut [u8]) -> bool {
    match *spec {
        OutSpec::Int8 { zero_point, act_min, act_max, quant } => {
            // (multiplier, shift) pairs of the 16 channels, split into two vectors.
            let q = quant.as_ptr().add(8 * first) as *const i32;
            let pair_mask = |half: u16| -> u16 {
                // Lanes 0..8 of a load of 16 i32 hold channels 0..8's pairs (half 0) or 8..16's.
                let m = (mask >> (8 * half)) & 0xFF;
                let mut k = 0u16;
                for c in 0..8 {
                    if m & (1 << c) != 0 {
                        k |= 3 << (2 * c);
                    }
                }
                k
            };
            let a = _mm512_maskz_loadu_epi32(pair_mask(0), q);
            let b = _mm512_maskz_loadu_epi32(pair_mask(1), q.add(16));
            let even = _mm512_set_epi32(30, 28, 26, 24, 22, 20, 18, 16, 14, 12, 10, 8, 6, 4, 2, 0);
            let odd = _mm512_set_epi32(31, 29, 27, 25, 23, 21, 19, 17, 15, 13, 11, 9, 7, 5, 3, 1);
            let mult = _mm512_permutex2var_epi32(a, even, b);
            let shift = _mm512_permutex2var_epi32(a, odd, b);
            let bad = _mm512_mask_cmpeq_epi32_mask(mask, mult, _mm512_set1_epi32(i32::MIN))
                | _mm512_mask_cmpgt_epi32_mask(mask, shift, _mm512_set1_epi32(31))
                | _mm512_mask_cmplt_epi32_mask(mask, shift, _mm512_set1_epi32(-31));
            if bad != 0 {
                return false;
            }
            let zero = _mm512_setzero_si512();
            let one = _mm512_set1_epi32(1);
            let left = _mm512_max_epi32(shift, zero);
            let right = _mm512_max_epi32(_mm512_sub_epi32(zero, shift), zero);
            let x = _mm512_sllv_epi32(acc, left);
            let nudge = _mm512_set1_epi64(1 << 30);
            let ev = _mm512_srai_epi64(_mm512_add_epi64(_mm512_mul_epi32(x, mult), nudge), 31);
            let od =
                _mm512_srai_epi64(_mm512_add_epi64(_mm512_mul_epi32(_mm512_srli_epi64(x, 32), _mm512_srli_epi64(mult, 32)), nudge), 31);
            let v = _mm512_mask_blend_epi32(0xAAAA, ev, _mm512_slli_epi64(od, 32));
            let rmask = _mm512_sub_epi32(_mm512_sllv_epi32(one, right), one);
            let rem = _mm512_and_si512(v, rmask);
            let thr = _mm512_add_epi32(_mm512_srai_epi32(rmask, 1), _mm512_srli_epi32(v, 31));
            let r = _mm512_srav_epi32(v, right);
            let r = _mm512_mask_add_epi32(r, _mm512_cmpgt_epi32_mask(rem, thr), r, one);
            let r = _mm512_add_epi32(r, _mm512_set1_epi32(zero_point));
            let r = _mm512_min_epi32(_mm512_max_epi32(r, _mm512_set1_epi32(act_min as i32)), _mm512_set1_epi32(act_max as i32));
            _mm_mask_storeu_epi8(out.as_mut_ptr().add(first) as *mut i8, mask, _mm512_cvtepi32_epi8(r));
            true
        }
        OutSpec::F32 { quant } => {
            let scale = _mm512_maskz_loadu_ps(mask, quant.as_ptr().add(4 * first) as *const f32);
            _mm512_mask_storeu_ps(out.as_mut_ptr().add(4 * first) as *mut f32, mask, _mm512_mul_ps(_mm512_cvtepi32_ps(acc), scale));
            true
        }
    }
}

/// [`crate::kernels::portable::fully_connected`] with AVX2, bit-exact: the input widened once
/// to zero-point-corrected i16, every output row a `vpmaddwd` dot product over 16 weights a
/// step (sign-extended from int8), then the scalar requantization. Falls back to the portable
/// kernel when the buffers are inconsistent. The caller has checked `has_avx2`.
pub fn fully_connected_avx2(x: &[u8], zp: i32, w: &[u8], b: &[u8], n: usize, spec: &OutSpec, out: &mut [u8]) {
    debug_assert!(super::has_avx2());
    let k = x.len();
    let width = if matches!(spec, OutSpec::F32 { .. }) { 4 } else { 1 };
    if w.len() < n * k || b.len() < 4 * n || out.len() < width * n {
        return crate::kernels::portable::fully_connected(x, zp, w, b, n, spec, out);
    }
    // SAFETY: AVX2 is available (the caller checked); the body reads rows m·k .. m·k + k of
    // `w` for m < n (length checked) and 16 i16 at a time from a buffer padded to 16.
    unsafe { fully_connected_avx2_body(x, zp, w, b, n, spec, out) }
}

#[target_feature(enable = "avx2")]
unsafe fn fully_connected_avx2_body(x: &[u8], zp: i32, w: &[u8], b: &[u8], n: usize, spec: &OutSpec, out: &mut [u8]) {
    let k = x.len();
    let full = k / 16;
    let mut xs = vec![0i16; full * 16 + 16];
    for (d, &v) in xs.iter_mut().zip(x) {
        *d = (v as i8 as i32 - zp) as i16;
    }
    // Eight rows at a time: each row's vector sum, then a horizontal-add tree puts row j's
    // total in lane j.
    let mut m0 = 0;
    while m0 + 8 <= n {
        let mut a = [_mm256_setzero_si256(); 8];
        for c in 0..full {
            // SAFETY: 16 i16 inside `xs` (padded); 16 bytes at (m0 + j)·k + 16·c + 16 ≤ n·k
            // inside `w` (length checked by the caller).
            let xv = unsafe { _mm256_loadu_si256(xs.as_ptr().add(16 * c) as *const __m256i) };
            for (j, a) in a.iter_mut().enumerate() {
                let wv = _mm256_cvtepi8_epi16(unsafe { _mm_loadu_si128(w.as_ptr().add((m0 + j) * k + 16 * c) as *const __m128i) });
                *a = _mm256_add_epi32(*a, _mm256_madd_epi16(xv, wv));
            }
        }
        let h01 = _mm256_hadd_epi32(a[0], a[1]);
        let h23 = _mm256_hadd_epi32(a[2], a[3]);
        let h45 = _mm256_hadd_epi32(a[4], a[5]);
        let h67 = _mm256_hadd_epi32(a[6], a[7]);
        // Lanes (0 1 2 3 | 0 1 2 3) and (4 5 6 7 | 4 5 6 7): the halves added.
        let q0 = _mm256_hadd_epi32(h01, h23);
        let q1 = _mm256_hadd_epi32(h45, h67);
        let sums = _mm256_add_epi32(_mm256_permute2x128_si256(q0, q1, 0x20), _mm256_permute2x128_si256(q0, q1, 0x31));
        let mut t = [0i32; 8];
        for (j, t) in t.iter_mut().enumerate() {
            let row = &w[(m0 + j) * k + 16 * full..(m0 + j + 1) * k];
            let mut v = i32_at(b, m0 + j);
            for (&xv, &wv) in xs[16 * full..k].iter().zip(row) {
                v += xv as i32 * wv as i8 as i32;
            }
            *t = v;
        }
        // SAFETY: 8 i32 from a local array.
        let acc = _mm256_add_epi32(sums, unsafe { _mm256_loadu_si256(t.as_ptr() as *const __m256i) });
        // SAFETY: outputs m0 .. m0 + 8 ≤ n: inside `out` and the spec's constants (checked
        // by the caller).
        unsafe { emit8_channels(acc, m0, spec, out) };
        m0 += 8;
    }
    for m in m0..n {
        let row = &w[m * k..(m + 1) * k];
        let mut v = i32_at(b, m);
        for (&xv, &wv) in xs[..k].iter().zip(row) {
            v += xv as i32 * wv as i8 as i32;
        }
        spec.emit(v, m, m, out);
    }
}

/// Writes the accumulators of channels `m0 .. m0 + 8` (one a lane) at elements `m0 ..` of
/// `out`, as `OutSpec::emit` does element by element: per-lane multipliers and shifts.
#[target_feature(enable = "avx2")]
unsafe fn emit8_channels(acc: __m256i, m0: usize, spec: &OutSpec, out: &mut [u8]) {
    match *spec {
        OutSpec::F32 { quant } => {
            // SAFETY (caller): 8 f32 scales from channel m0 on; 32 bytes of `out` at 4·m0.
            unsafe {
                let scale = _mm256_loadu_ps(quant.as_ptr().add(4 * m0) as *const f32);
                _mm256_storeu_ps(out.as_mut_ptr().add(4 * m0) as *mut f32, _mm256_mul_ps(_mm256_cvtepi32_ps(acc), scale));
            }
        }
        OutSpec::Int8 { zero_point, act_min, act_max, quant } => {
            let (mut m, mut sh) = ([0i32; 8], [0i32; 8]);
            for (j, q) in quant[8 * m0..8 * m0 + 64].chunks_exact(8).enumerate() {
                m[j] = i32::from_le_bytes([q[0], q[1], q[2], q[3]]);
                sh[j] = i32::from_le_bytes([q[4], q[5], q[6], q[7]]);
            }
            if !(0..8).all(|j| super::vector_quant(m[j], sh[j])) {
                let mut a = [0i32; 8];
                // SAFETY: 8 i32 into a local array.
                unsafe { _mm256_storeu_si256(a.as_mut_ptr() as *mut __m256i, acc) };
                for (j, &a) in a.iter().enumerate() {
                    spec.emit(a, m0 + j, m0 + j, out);
                }
                return;
            }
            // SAFETY: 8 i32 from local arrays.
            let (mult, shift) =
                unsafe { (_mm256_loadu_si256(m.as_ptr() as *const __m256i), _mm256_loadu_si256(sh.as_ptr() as *const __m256i)) };
            // SAFETY: AVX2 is available (this function's target feature).
            let q = unsafe { super::avx2::requantize8(acc, mult, shift) };
            let q = _mm256_add_epi32(q, _mm256_set1_epi32(zero_point));
            let q = _mm256_min_epi32(_mm256_max_epi32(q, _mm256_set1_epi32(act_min as i32)), _mm256_set1_epi32(act_max as i32));
            let mut r = [0i32; 8];
            // SAFETY: 8 i32 into a local array.
            unsafe { _mm256_storeu_si256(r.as_mut_ptr() as *mut __m256i, q) };
            for (o, &r) in out[m0..m0 + 8].iter_mut().zip(&r) {
                *o = r as i8 as u8;
            }
        }
    }
}
