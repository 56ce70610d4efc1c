//! x86-64 variants of the optimized convolution, chosen at run time by CPU feature:
//!
//! - **AVX-512 VNNI** (`vpdpbusd`: 64 u8 × i8 multiply-accumulates per instruction) for
//!   stride-1 convolutions whose output rows are 16 to 32 wide (every PixelCNN layer):
//!   [`conv2d_vnni`]. Activations are re-laid out once per call, four channels interleaved
//!   per pixel and shifted to u8 (`x + 128`), padded with the zero point; weights are packed
//!   per call eight output channels at a time. The `+128` shift is undone exactly through
//!   each channel's weight sum, so the int32 accumulators equal the reference's.
//! - **AVX2** otherwise: the portable Rust body compiled with 256-bit registers (`vpmaddwd`).
//!
//! All integer arithmetic, so results are identical to the reference kernels.
#![allow(unsafe_code)]

use crate::kernels::{f32_at, i32_at, ConvGeometry, OutSpec};
use core::arch::x86_64::*;
use std::cell::RefCell;

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

/// Whether this CPU runs [`conv2d_vnni`] and [`add_avx512`] (AVX-512 F, BW, VL and VNNI).
pub fn has_vnni() -> bool {
    std::is_x86_feature_detected!("avx512f")
        && std::is_x86_feature_detected!("avx512bw")
        && std::is_x86_feature_detected!("avx512vl")
        && std::is_x86_feature_detected!("avx512vnni")
}

/// Output channels per register block (× 2 vectors of 16 positions = 16 accumulators).
const CB: usize = 8;

/// Per-thread buffers: the re-laid-out activations (grown, never shrunk) and the packed
/// weights of recent convolutions.
#[derive(Default)]
struct Scratch {
    act: Vec<u8>,
    packs: Vec<Packed>,
}

/// Packed weights, per-step activation offsets and corrected biases of one convolution,
/// with the inputs they were made from (the key: compared in full, so a different model at
/// the same address never reuses them). Row-band sampling calls each layer 784 times per
/// image; packing once instead of per call is most of its speed.
struct Packed {
    weights: Vec<u8>,
    bias: Vec<u8>,
    geometry: ([usize; 3], [usize; 3], [usize; 2], usize, i32),
    w: Vec<u32>,
    steps: Vec<usize>,
    corr: Vec<i32>,
}

/// Convolutions whose packing a thread keeps (more: the cache starts over).
const PACKS: usize = 64;

thread_local! {
    static SCRATCH: RefCell<Scratch> = RefCell::new(Scratch::default());
}

/// The layout of one call: activations as `planes` planes of `hp × wp` pixels of 4 bytes.
struct Layout {
    planes: usize,
    hp: usize,
    wp: usize,
}

impl Layout {
    fn plane(&self) -> usize {
        self.hp * self.wp * 4
    }
}

/// [`super::conv2d`] with AVX-512 VNNI, bit-exact with `reference::conv2d`. Returns `false`
/// without touching `out` when the shape is not one this kernel handles (stride 1, output
/// rows at most 32 wide, input channels a multiple of 4 or exactly 1, the input zero point an
/// int8 value) or the buffers are inconsistent with `g`; the caller then uses another kernel.
/// The caller has checked [`has_vnni`].
pub fn conv2d_vnni(g: &ConvGeometry, input: &[u8], weights: &[u8], bias: &[u8], spec: &OutSpec, out: &mut [u8]) -> bool {
    let [ci, hi, wi] = g.input;
    let [co, ho, wo] = g.output;
    let [kh, kw] = g.kernel;
    let (pad, zp) = (g.pad, g.input_zero_point);
    let shape_ok = g.stride == 1
        && (1..=32).contains(&wo)
        && (ci % 4 == 0 || ci == 1)
        && ci > 0
        && co > 0
        && kh > 0
        && kw > 0
        && (-128..=127).contains(&zp)
        && ho + kh - 1 <= hi + 2 * pad
        && wo + kw - 1 <= wi + 2 * pad
        && g.rows.0 < g.rows.1.min(ho);
    let out_bytes = match spec {
        OutSpec::Int8 { quant, .. } => (quant.len() >= 8 * co).then_some(1),
        OutSpec::F32 { quant } => (quant.len() >= 4 * co).then_some(4),
    };
    let Some(out_bytes) = out_bytes else { return false };
    if !shape_ok
        || input.len() < ci * hi * wi
        || weights.len() < co * ci * kh * kw
        || bias.len() < 4 * co
        || out.len() < out_bytes * co * ho * wo
    {
        return false;
    }
    debug_assert!(has_vnni());
    SCRATCH.with(|s| {
        let s = &mut *s.borrow_mut();
        // SAFETY: the caller checked that the CPU has AVX-512 F/BW/VNNI; every pointer
        // offset inside is derived from the sizes checked above (see the body's comments).
        unsafe { conv2d_vnni_body(g, input, weights, bias, spec, out, s) };
    });
    true
}

/// Packs the weights (eight output channels per block, one u32 of four i8 per step),
/// computes the per-step activation offsets (relative to output position (0, 0)) and the
/// per-channel corrected biases.
fn pack(g: &ConvGeometry, weights: &[u8], bias: &[u8], lay: &Layout) -> Packed {
    let mut s = Packed {
        weights: weights.to_vec(),
        bias: bias.to_vec(),
        geometry: (g.input, g.output, g.kernel, g.pad, g.input_zero_point),
        w: Vec::new(),
        steps: Vec::new(),
        corr: Vec::new(),
    };
    let [ci, _, _] = g.input;
    let [co, _, _] = g.output;
    let [kh, kw] = g.kernel;
    let taps = kh * kw;
    let w_at = |o: usize, c: usize, ky: usize, kx: usize| weights[((o * ci + c) * kh + ky) * kw + kx] as i8;
    s.steps.clear();
    // The weights of one step for output channel o, as four i8 in one u32.
    let mut step_w: Vec<(usize, usize, usize)> = Vec::new(); // (c4 or 0, ky, kx0)
    if ci == 1 {
        // One input channel: four consecutive kernel columns per step (the activation
        // layout holds each pixel's next three right-hand neighbours).
        for ky in 0..kh {
            let live: Vec<usize> = (0..kw).filter(|&kx| (0..co).any(|o| w_at(o, 0, ky, kx) != 0)).collect();
            let (Some(&lo), Some(&hi)) = (live.first(), live.last()) else { continue };
            let mut kx0 = lo;
            while kx0 <= hi {
                s.steps.push(ky * lay.wp * 4 + kx0 * 4);
                step_w.push((0, ky, kx0));
                kx0 += 4;
            }
        }
    } else {
        for t in 0..taps {
            let (ky, kx) = (t / kw, t % kw);
            if !(0..co).any(|o| (0..ci).any(|c| w_at(o, c, ky, kx) != 0)) {
                continue; // a masked tap: zero for every channel
            }
            for c4 in 0..ci / 4 {
                s.steps.push(c4 * lay.plane() + ky * lay.wp * 4 + kx * 4);
                step_w.push((c4, ky, kx));
            }
        }
    }
    let n_steps = s.steps.len();
    let blocks = co.div_ceil(CB);
    s.w.clear();
    s.w.resize(blocks * n_steps * CB, 0);
    for o in 0..co {
        let (b, r) = (o / CB, o % CB);
        for (t, &(c4, ky, kx)) in step_w.iter().enumerate() {
            let four: [i8; 4] = if ci == 1 {
                core::array::from_fn(|j| if kx + j < kw { w_at(o, 0, ky, kx + j) } else { 0 })
            } else {
                core::array::from_fn(|j| w_at(o, 4 * c4 + j, ky, kx))
            };
            s.w[(b * n_steps + t) * CB + r] = u32::from_le_bytes(four.map(|v| v as u8));
        }
    }
    // acc_ref = bias + Σ (x − zp)·w = bias + Σ u·w − (zp + 128)·Σ w with u = x + 128 (and
    // u = zp + 128 on padding): the kernel accumulates Σ u·w on top of this correction.
    // Wrapping, as the reference's int32 sums.
    s.corr.clear();
    for o in 0..co {
        let sum = weights[o * ci * taps..(o + 1) * ci * taps].iter().fold(0i32, |a, &w| a.wrapping_add(w as i8 as i32));
        s.corr.push(i32_at(bias, o).wrapping_sub((g.input_zero_point + 128).wrapping_mul(sum)));
    }
    s
}

/// The index in `packs` of this convolution's packing, made (and cached) if needed.
fn packed(g: &ConvGeometry, weights: &[u8], bias: &[u8], lay: &Layout, packs: &mut Vec<Packed>) -> usize {
    let key = (g.input, g.output, g.kernel, g.pad, g.input_zero_point);
    if let Some(i) = packs.iter().position(|p| p.geometry == key && p.weights == weights && p.bias == bias) {
        return i;
    }
    if packs.len() >= PACKS {
        packs.clear();
    }
    packs.push(pack(g, weights, bias, lay));
    packs.len() - 1
}

/// Interleaves four 16-byte rows into 16 pixels of four bytes (`dst`: 64 bytes).
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
unsafe fn interleave4(r: [__m128i; 4], dst: *mut u8) {
    // SAFETY (caller): `dst` is valid for 64 bytes of writes.
    unsafe {
        let (a, b) = (_mm_unpacklo_epi8(r[0], r[1]), _mm_unpackhi_epi8(r[0], r[1]));
        let (c, d) = (_mm_unpacklo_epi8(r[2], r[3]), _mm_unpackhi_epi8(r[2], r[3]));
        _mm_storeu_si128(dst as *mut __m128i, _mm_unpacklo_epi16(a, c));
        _mm_storeu_si128(dst.add(16) as *mut __m128i, _mm_unpackhi_epi16(a, c));
        _mm_storeu_si128(dst.add(32) as *mut __m128i, _mm_unpacklo_epi16(b, d));
        _mm_storeu_si128(dst.add(48) as *mut __m128i, _mm_unpackhi_epi16(b, d));
    }
}

/// `multiply_by_quantized_multiplier(·, m, shift)` on 16 lanes, bit for bit, its constants
/// broadcast once; for `m != i32::MIN` and `shift` in `-31..=31` ([`vector_quant`]; the
/// callers go element by element otherwise).
#[derive(Clone, Copy)]
struct Mbqm {
    mult: __m512i,
    left: __m128i,
    right: __m128i,
    /// Remainder mask of the rounding right shift, and its rounding threshold without the
    /// sign term.
    mask: __m512i,
    thr: __m512i,
}

impl Mbqm {
    #[inline(always)]
    unsafe fn new(m: i32, shift: i32) -> Mbqm {
        // SAFETY (caller): AVX-512 F is available (register broadcasts only).
        unsafe {
            let right = (-shift).clamp(0, 31);
            let mask = ((1i64 << right) - 1) as i32;
            Mbqm {
                mult: _mm512_set1_epi32(m),
                left: _mm_cvtsi32_si128(shift.clamp(0, 31)),
                right: _mm_cvtsi32_si128(right),
                mask: _mm512_set1_epi32(mask),
                thr: _mm512_set1_epi32(mask >> 1),
            }
        }
    }

    #[inline(always)]
    unsafe fn apply(&self, acc: __m512i) -> __m512i {
        // SAFETY (caller): AVX-512 F is available.
        unsafe {
            let x = _mm512_sll_epi32(acc, self.left);
            // (x·m + 2^30) >> 31 per lane, as `saturating_rounding_doubling_high_mul`: the
            // even lanes' 64-bit products, then the odd lanes', blended back.
            let nudge = _mm512_set1_epi64(1 << 30);
            let even = _mm512_srai_epi64(_mm512_add_epi64(_mm512_mul_epi32(x, self.mult), nudge), 31);
            let odd = _mm512_srai_epi64(_mm512_add_epi64(_mm512_mul_epi32(_mm512_srli_epi64(x, 32), self.mult), nudge), 31);
            let v = _mm512_mask_blend_epi32(0xAAAA, even, _mm512_slli_epi64(odd, 32));
            // rounding_divide_by_pot(v, right): + 1 where the remainder passes the threshold.
            let rem = _mm512_and_si512(v, self.mask);
            let thr = _mm512_add_epi32(self.thr, _mm512_srli_epi32(v, 31));
            let q = _mm512_sra_epi32(v, self.right);
            _mm512_mask_add_epi32(q, _mm512_cmpgt_epi32_mask(rem, thr), q, _mm512_set1_epi32(1))
        }
    }
}

/// Whether `(m, shift)` takes the vector path of [`Mbqm`].
fn vector_quant(m: i32, shift: i32) -> bool {
    m != i32::MIN && (-31..=31).contains(&shift)
}

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

/// One output channel's requantization, its constants broadcast once per block of rows.
#[derive(Clone, Copy)]
struct Rq {
    /// int8 path: the fixed-point multiply, zero point and clamp bounds.
    q: Mbqm,
    zp: __m512i,
    lo: __m512i,
    hi: __m512i,
    /// f32 path: the scale.
    scale: __m512,
    /// How: 0 = int8 vector, 1 = int8 element by element (constants outside the vector
    /// path's range), 2 = f32.
    how: u8,
    /// Scalar constants for the element-by-element path.
    m: i32,
    shift: i32,
}

impl Rq {
    /// Channel `c`'s constants.
    #[inline(always)]
    unsafe fn new(spec: &OutSpec, c: usize) -> Rq {
        // SAFETY (caller): AVX-512 F is available (plain register broadcasts).
        unsafe {
            let mut rq = Rq {
                q: Mbqm::new(0, 0),
                zp: _mm512_setzero_si512(),
                lo: _mm512_setzero_si512(),
                hi: _mm512_setzero_si512(),
                scale: _mm512_setzero_ps(),
                how: 2,
                m: 0,
                shift: 0,
            };
            match *spec {
                OutSpec::Int8 { zero_point, act_min, act_max, quant } => {
                    let (m, shift) = (i32_at(quant, 2 * c), i32_at(quant, 2 * c + 1));
                    rq.m = m;
                    rq.shift = shift;
                    rq.how = if vector_quant(m, shift) { 0 } else { 1 };
                    rq.q = Mbqm::new(m, shift);
                    rq.zp = _mm512_set1_epi32(zero_point);
                    rq.lo = _mm512_set1_epi32(act_min as i32);
                    rq.hi = _mm512_set1_epi32(act_max as i32);
                }
                OutSpec::F32 { quant } => rq.scale = _mm512_set1_ps(f32_at(quant, c)),
            }
            rq
        }
    }

    /// Requantizes 16 accumulators and stores the lanes of `mask` at `dst` (int8 bytes or
    /// little-endian f32), exactly as `OutSpec::emit` does element by element.
    #[inline(always)]
    unsafe fn emit16(&self, acc: __m512i, spec: &OutSpec, dst: *mut u8, mask: u16) {
        // SAFETY (caller): AVX-512 F/BW/VL is available; `dst` is valid for the writes of
        // the lanes in `mask` (1 or 4 bytes each).
        unsafe {
            match self.how {
                0 => {
                    let q = _mm512_min_epi32(_mm512_max_epi32(_mm512_add_epi32(self.q.apply(acc), self.zp), self.lo), self.hi);
                    _mm_mask_storeu_epi8(dst as *mut i8, mask, _mm512_cvtepi32_epi8(q));
                }
                1 => {
                    let OutSpec::Int8 { zero_point, act_min, act_max, .. } = *spec else { return };
                    let mut a = [0i32; 16];
                    _mm512_storeu_si512(a.as_mut_ptr() as *mut _, acc);
                    for (j, &a) in a.iter().enumerate().filter(|&(j, _)| mask & (1 << j) != 0) {
                        *dst.add(j) = crate::kernels::requantize(a, self.m, self.shift, zero_point, act_min, act_max);
                    }
                }
                _ => _mm512_mask_storeu_ps(dst as *mut f32, mask, _mm512_mul_ps(_mm512_cvtepi32_ps(acc), self.scale)),
            }
        }
    }
}

#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni")]
#[allow(clippy::too_many_arguments)]
unsafe fn conv2d_vnni_body(g: &ConvGeometry, input: &[u8], weights: &[u8], bias: &[u8], spec: &OutSpec, out: &mut [u8], s: &mut Scratch) {
    let [ci, hi, wi] = g.input;
    let [co, ho, wo] = g.output;
    let [kh, kw] = g.kernel;
    let pad = g.pad;
    let (y0, y1) = (g.rows.0, g.rows.1.min(ho));
    // Padded width: every tap's 16-position vector stays inside a padded row
    // (wo + kw − 1 ≤ wi + 2·pad, checked).
    let lay = Layout { planes: if ci == 1 { 1 } else { ci / 4 }, hp: hi + 2 * pad, wp: wi + 2 * pad };
    let Scratch { act: act_buf, packs } = s;
    let i = packed(g, weights, bias, &lay, packs);
    let pk = &packs[i];
    let n_steps = pk.steps.len();
    let pv = (g.input_zero_point + 128) as u8;
    act_buf.resize(lay.planes * lay.plane() + 64, pv);
    let act = act_buf.as_mut_ptr();
    // Padded rows the requested output rows read: y0 ..= y1 − 1 + kh − 1 (≤ hp − 1).
    let (r0, r1) = (y0, (y1 + kh - 1).min(lay.hp));
    let flip = _mm_set1_epi8(-128);
    let mut prow = vec![pv; lay.wp + 4];
    for p in 0..lay.planes {
        for yp in r0..r1 {
            // SAFETY: yp < hp, so the row's 4·wp bytes lie inside plane p.
            let row = act.add(p * lay.plane() + yp * lay.wp * 4);
            core::ptr::write_bytes(row, pv, lay.wp * 4);
            let Some(y) = yp.checked_sub(pad).filter(|&y| y < hi) else { continue };
            if ci == 1 {
                // One input channel: each pixel holds itself and its three right-hand
                // neighbours (padding included), so four kernel columns are one step.
                for (d, &v) in prow[pad..pad + wi].iter_mut().zip(&input[y * wi..(y + 1) * wi]) {
                    *d = v ^ 0x80;
                }
                for x in 0..lay.wp {
                    // SAFETY: x < wp, four bytes of the row; prow has wp + 4 bytes.
                    core::ptr::copy_nonoverlapping(prow.as_ptr().add(x), row.add(4 * x), 4);
                }
                prow[pad..pad + wi].fill(pv);
                continue;
            }
            if wi < 16 {
                // A narrow row: pixel by pixel.
                for x in 0..wi {
                    for j in 0..4 {
                        *row.add((pad + x) * 4 + j) = input[((4 * p + j) * hi + y) * wi + x] ^ 0x80;
                    }
                }
                continue;
            }
            // Four channels interleaved per pixel, 16 pixels at a time (the last chunk ends
            // at the row's end, overlapping with equal values).
            let mut x0 = 0;
            loop {
                let x = x0.min(wi - 16);
                // SAFETY: channel 4p + j < ci, row y < hi, x + 16 ≤ wi: inside `input`.
                let r: [__m128i; 4] = core::array::from_fn(|j| {
                    _mm_xor_si128(_mm_loadu_si128(input.as_ptr().add(((4 * p + j) * hi + y) * wi + x) as *const __m128i), flip)
                });
                // SAFETY: pixels pad + x .. pad + x + 16 ≤ wp of row yp.
                interleave4(r, row.add((pad + x) * 4));
                if x + 16 >= wi {
                    break;
                }
                x0 += 16;
            }
        }
    }
    let act = act_buf.as_ptr();
    let width = match spec {
        OutSpec::Int8 { .. } => 1,
        OutSpec::F32 { .. } => 4,
    };
    // Tiles of two 16-position vectors: (activation byte offset, output element offset
    // within a channel plane) of each, and the lanes stored. A 1×1 kernel without padding
    // over rows as wide as the output's reads the rows as one flat run (28 × 28 = 49 vectors, not 2 per row of 28: no overlap
    // wasted); rows 16 or more wide are positions 0..16 and wo − 16..wo; narrower rows go two
    // rows to a tile, each one vector of which the first wo lanes are stored.
    let mut tiles: Vec<([(usize, usize); 2], u16)> = Vec::new();
    if kh == 1 && kw == 1 && pad == 0 && wi == wo && (y1 - y0) * wo >= 16 {
        let (q0, q1) = (y0 * wo, y1 * wo);
        let mut starts: Vec<usize> = (q0..q1 - 15).step_by(16).collect();
        if (q1 - q0) % 16 != 0 {
            starts.push(q1 - 16);
        }
        for pair in starts.chunks(2) {
            let (a, b) = (pair[0], *pair.last().unwrap_or(&pair[0]));
            tiles.push(([(a * 4, a), (b * 4, b)], 0xFFFF));
        }
    } else if wo >= 16 {
        for oy in y0..y1 {
            let (a, b) = (0, wo - 16);
            tiles.push(([((oy * lay.wp + a) * 4, oy * wo + a), ((oy * lay.wp + b) * 4, oy * wo + b)], 0xFFFF));
        }
    } else {
        let mut oy = y0;
        while oy < y1 {
            let oy2 = (oy + 1).min(y1 - 1);
            tiles.push(([(oy * lay.wp * 4, oy * wo), (oy2 * lay.wp * 4, oy2 * wo)], ((1u32 << wo) - 1) as u16));
            oy += 2;
        }
    }
    for b in 0..co.div_ceil(CB) {
        let wb = pk.w.as_ptr().add(b * n_steps * CB);
        let nc = (co - b * CB).min(CB);
        let rq: [Rq; CB] = core::array::from_fn(|r| Rq::new(spec, (b * CB + r).min(co - 1)));
        for &([(a0, o0), (a1, o1)], lanes) in &tiles {
            let mut acc0 = [_mm512_setzero_si512(); CB];
            let mut acc1 = [_mm512_setzero_si512(); CB];
            for r in 0..nc {
                acc0[r] = _mm512_set1_epi32(pk.corr[b * CB + r]);
                acc1[r] = acc0[r];
            }
            for (t, &off) in pk.steps.iter().enumerate() {
                // SAFETY: off addresses (plane, ky, kx) with ky < kh, kx < kw; a row tile has
                // oy + ky < hp and x + kx + 16 ≤ wp, a flat tile q + 16 ≤ hi·wi (1×1, no
                // padding): 64 bytes inside the plane either way; a narrow-row tile may read
                // up to 16 pixels past its row, inside the next row or plane, or the 64 bytes
                // of slack after the last plane (lanes not stored).
                let v0 = _mm512_loadu_si512(act.add(off + a0) as *const _);
                let v1 = _mm512_loadu_si512(act.add(off + a1) as *const _);
                let w = wb.add(t * CB);
                for r in 0..CB {
                    let wv = _mm512_set1_epi32(*w.add(r) as i32);
                    acc0[r] = _mm512_dpbusd_epi32(acc0[r], v0, wv);
                    acc1[r] = _mm512_dpbusd_epi32(acc1[r], v1, wv);
                }
            }
            for r in 0..nc {
                let plane = (b * CB + r) * ho * wo;
                // SAFETY: channel < co and o + 16 ≤ ho·wo: inside `out` (length checked).
                rq[r].emit16(acc0[r], spec, out.as_mut_ptr().add((plane + o0) * width), lanes);
                rq[r].emit16(acc1[r], spec, out.as_mut_ptr().add((plane + o1) * width), lanes);
            }
        }
    }
}

/// Whether this CPU runs the 16-lane `libm` replicas below (AVX-512 F).
pub fn has_avx512f() -> bool {
    std::is_x86_feature_detected!("avx512f")
}

/// Applies a 16-lane replica to each whole chunk of `v` and `scalar` (the `libm` function it
/// replicates) to the lanes it leaves (outside its common range) and to the remainder.
fn batch(v: &mut [f32], lanes16: unsafe fn(&mut [f32]) -> u16, scalar: fn(f32) -> f32) {
    let mut chunks = v.chunks_exact_mut(16);
    for c in &mut chunks {
        // SAFETY: the callers checked AVX-512 F (the replicas' only requirement); `c` is 16
        // f32, as the replicas read and write.
        let done = unsafe { lanes16(c) };
        if done != 0xFFFF {
            for (j, x) in c.iter_mut().enumerate() {
                if done & (1 << j) == 0 {
                    *x = scalar(*x);
                }
            }
        }
    }
    for x in chunks.into_remainder() {
        *x = scalar(*x);
    }
}

/// `libm::expf` on each element, bit for bit: 16 lanes at a time with AVX-512 for
/// arguments in the common range `2^-14 < |x| < 87.33` (the FreeBSD algorithm `libm` uses,
/// the same f32 operations in the same order), `libm::expf` itself for every other element.
/// The caller has checked [`has_avx512f`].
pub fn expf_batch(v: &mut [f32]) {
    batch(v, expf16, libm::expf)
}

/// Replaces the lanes of `c` in the common range by their `expf`; returns the mask of those
/// lanes (the others are left as they were).
// The constants are `libm`'s own literals (FreeBSD's), so they round to the same f32.
#[allow(clippy::excessive_precision)]
#[target_feature(enable = "avx512f")]
unsafe fn expf16(c: &mut [f32]) -> u16 {
    const LN2_HI: f32 = 6.9314575195e-01;
    const LN2_LO: f32 = 1.4286067653e-06;
    const INV_LN2: f32 = 1.4426950216e+00;
    const P1: f32 = 1.6666625440e-1;
    const P2: f32 = -2.7667332906e-3;
    let x = _mm512_loadu_ps(c.as_ptr());
    let bits = _mm512_castps_si512(x);
    let hx = _mm512_and_si512(bits, _mm512_set1_epi32(0x7fff_ffff));
    let common = _mm512_cmpgt_epi32_mask(hx, _mm512_set1_epi32(0x3900_0000)) & _mm512_cmplt_epi32_mask(hx, _mm512_set1_epi32(0x42ae_ac50));
    let negative = _mm512_cmplt_epi32_mask(bits, _mm512_setzero_si512());
    // k: |x| > 1.5 ln2: (INV_LN2·x ± 0.5) truncated; 0.5 ln2 < |x| ≤ 1.5 ln2: ±1; else 0.
    let half = _mm512_mask_blend_ps(negative, _mm512_set1_ps(0.5), _mm512_set1_ps(-0.5));
    let k_far = _mm512_cvttps_epi32(_mm512_add_ps(_mm512_mul_ps(_mm512_set1_ps(INV_LN2), x), half));
    let k_near = _mm512_mask_blend_epi32(negative, _mm512_set1_epi32(1), _mm512_set1_epi32(-1));
    let far = _mm512_cmpgt_epi32_mask(hx, _mm512_set1_epi32(0x3f85_1592));
    let reduce = _mm512_cmpgt_epi32_mask(hx, _mm512_set1_epi32(0x3eb1_7218));
    let k = _mm512_maskz_mov_epi32(reduce, _mm512_mask_blend_epi32(far, k_near, k_far));
    let kf = _mm512_cvtepi32_ps(k);
    let hi_r = _mm512_sub_ps(x, _mm512_mul_ps(kf, _mm512_set1_ps(LN2_HI)));
    let lo_r = _mm512_mul_ps(kf, _mm512_set1_ps(LN2_LO));
    let hi = _mm512_mask_blend_ps(reduce, x, hi_r);
    let lo = _mm512_maskz_mov_ps(reduce, lo_r);
    let xr = _mm512_mask_blend_ps(reduce, x, _mm512_sub_ps(hi_r, lo_r));
    let xx = _mm512_mul_ps(xr, xr);
    let cc = _mm512_sub_ps(xr, _mm512_mul_ps(xx, _mm512_add_ps(_mm512_set1_ps(P1), _mm512_mul_ps(xx, _mm512_set1_ps(P2)))));
    let q = _mm512_div_ps(_mm512_mul_ps(xr, cc), _mm512_sub_ps(_mm512_set1_ps(2.0), cc));
    let y = _mm512_add_ps(_mm512_set1_ps(1.0), _mm512_add_ps(_mm512_sub_ps(q, lo), hi));
    // scalbnf(y, k) = y · 2^k for k in -126..=126 (|x| < 87.33); k = 0 leaves y as it is.
    let scale = _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_add_epi32(k, _mm512_set1_epi32(0x7f)), 23));
    let y = _mm512_mask_mul_ps(y, _mm512_cmpneq_epi32_mask(k, _mm512_setzero_si512()), y, scale);
    _mm512_mask_storeu_ps(c.as_mut_ptr(), common, y);
    common
}

/// The FreeBSD log kernel both `logf` and `log1pf` end in, on 16 lanes: for the reduced
/// argument `f`, exponent `k` and correction `c` (0 for `logf`, where `+ 0` changes no bit:
/// `k·LN2_LO` is never −0),
/// `s·(hfsq + R(s²)) + (k·LN2_LO + c) − hfsq + f + k·LN2_HI`, with `s = f / (2 + f)`.
#[allow(clippy::excessive_precision)]
#[inline]
#[target_feature(enable = "avx512f")]
unsafe fn log_kernel16(f: __m512, k: __m512i, c: __m512) -> __m512 {
    const LN2_HI: f32 = 6.9313812256e-01;
    const LN2_LO: f32 = 9.0580006145e-06;
    const LG1: f32 = 0.66666662693;
    const LG2: f32 = 0.40000972152;
    const LG3: f32 = 0.28498786688;
    const LG4: f32 = 0.24279078841;
    let s = _mm512_div_ps(f, _mm512_add_ps(_mm512_set1_ps(2.0), f));
    let z = _mm512_mul_ps(s, s);
    let w = _mm512_mul_ps(z, z);
    let t1 = _mm512_mul_ps(w, _mm512_add_ps(_mm512_set1_ps(LG2), _mm512_mul_ps(w, _mm512_set1_ps(LG4))));
    let t2 = _mm512_mul_ps(z, _mm512_add_ps(_mm512_set1_ps(LG1), _mm512_mul_ps(w, _mm512_set1_ps(LG3))));
    let r = _mm512_add_ps(t2, t1);
    let hfsq = _mm512_mul_ps(_mm512_mul_ps(_mm512_set1_ps(0.5), f), f);
    let dk = _mm512_cvtepi32_ps(k);
    let a = _mm512_mul_ps(s, _mm512_add_ps(hfsq, r));
    let b = _mm512_add_ps(_mm512_mul_ps(dk, _mm512_set1_ps(LN2_LO)), c);
    _mm512_add_ps(_mm512_add_ps(_mm512_sub_ps(_mm512_add_ps(a, b), hfsq), f), _mm512_mul_ps(dk, _mm512_set1_ps(LN2_HI)))
}

/// `libm::log1pf` on each element, bit for bit: 16 lanes at a time with AVX-512 for
/// `2^-24 ≤ x < 2^24` (the FreeBSD algorithm, same operations), `libm::log1pf` otherwise.
/// The caller has checked [`has_avx512f`].
pub fn log1pf_batch(v: &mut [f32]) {
    batch(v, log1pf16, libm::log1pf)
}

#[target_feature(enable = "avx512f")]
unsafe fn log1pf16(c: &mut [f32]) -> u16 {
    let x = _mm512_loadu_ps(c.as_ptr());
    let ix = _mm512_castps_si512(x);
    // Positive, 2^-24 ≤ x < 2^24 (signed compares: negative x has a negative bit pattern).
    let common = _mm512_cmpge_epi32_mask(ix, _mm512_set1_epi32(0x3380_0000)) & _mm512_cmplt_epi32_mask(ix, _mm512_set1_epi32(0x4b80_0000));
    // x ≥ 0x3ed413d0 (1 + x ≥ √2): reduce through u = 1 + x; below: k = 0, c = 0, f = x.
    let big = _mm512_cmpge_epi32_mask(ix, _mm512_set1_epi32(0x3ed4_13d0));
    let one = _mm512_set1_ps(1.0);
    let u = _mm512_add_ps(one, x);
    let iu = _mm512_add_epi32(_mm512_castps_si512(u), _mm512_set1_epi32(0x3f80_0000 - 0x3f35_04f3));
    let k = _mm512_sub_epi32(_mm512_srli_epi32(iu, 23), _mm512_set1_epi32(0x7f));
    let k_ge2 = _mm512_cmpge_epi32_mask(k, _mm512_set1_epi32(2));
    let c_ge2 = _mm512_sub_ps(one, _mm512_sub_ps(u, x));
    let c_lt2 = _mm512_sub_ps(x, _mm512_sub_ps(u, one));
    let cc = _mm512_div_ps(_mm512_mask_blend_ps(k_ge2, c_lt2, c_ge2), u);
    let f_big = _mm512_sub_ps(
        _mm512_castsi512_ps(_mm512_add_epi32(_mm512_and_si512(iu, _mm512_set1_epi32(0x007f_ffff)), _mm512_set1_epi32(0x3f35_04f3))),
        one,
    );
    let k = _mm512_maskz_mov_epi32(big, k);
    let cc = _mm512_maskz_mov_ps(big, cc);
    let f = _mm512_mask_blend_ps(big, x, f_big);
    _mm512_mask_storeu_ps(c.as_mut_ptr(), common, log_kernel16(f, k, cc));
    common
}

/// `libm::logf` on each element, bit for bit: 16 lanes at a time with AVX-512 for normal
/// positive finite `x ≠ 1` (the FreeBSD algorithm, same operations), `libm::logf`
/// otherwise. The caller has checked [`has_avx512f`].
pub fn logf_batch(v: &mut [f32]) {
    batch(v, logf16, libm::logf)
}

#[target_feature(enable = "avx512f")]
unsafe fn logf16(c: &mut [f32]) -> u16 {
    let x = _mm512_loadu_ps(c.as_ptr());
    let ix = _mm512_castps_si512(x);
    // Normal, positive, finite (signed compares), and not exactly 1.
    let common = _mm512_cmpge_epi32_mask(ix, _mm512_set1_epi32(0x0080_0000))
        & _mm512_cmplt_epi32_mask(ix, _mm512_set1_epi32(0x7f80_0000))
        & _mm512_cmpneq_epi32_mask(ix, _mm512_set1_epi32(0x3f80_0000));
    // Reduce x into [√2/2, √2): f = x / 2^k − 1.
    let ix = _mm512_add_epi32(ix, _mm512_set1_epi32(0x3f80_0000 - 0x3f35_04f3));
    let k = _mm512_sub_epi32(_mm512_srli_epi32(ix, 23), _mm512_set1_epi32(0x7f));
    let xr = _mm512_castsi512_ps(_mm512_add_epi32(_mm512_and_si512(ix, _mm512_set1_epi32(0x007f_ffff)), _mm512_set1_epi32(0x3f35_04f3)));
    let f = _mm512_sub_ps(xr, _mm512_set1_ps(1.0));
    _mm512_mask_storeu_ps(c.as_mut_ptr(), common, log_kernel16(f, k, _mm512_setzero_ps()));
    common
}

/// [`super::conv_transpose2d`] through [`conv2d_vnni`], bit-exact: a transposed convolution
/// is the ordinary convolution of its input with `stride − 1` zero-point pixels inserted
/// between neighbours, padded by `k − 1 − pad`, under the kernel flipped (rotated 180°) — the
/// same products in another order, so the int32 sums are equal. The inserted
/// pixels waste MACs (3 of 4 at stride 2), which 64-MAC instructions afford. Returns `false`
/// (nothing written) when the shape does not fit (square kernel, whole output, pad < k) or
/// [`conv2d_vnni`] declines it. The caller has checked [`has_vnni`].
pub fn conv_transpose2d_vnni(g: &ConvGeometry, input: &[u8], weights: &[u8], bias: &[u8], spec: &OutSpec, out: &mut [u8]) -> bool {
    let [ci, hi, wi] = g.input;
    let [co, ho, wo] = g.output;
    let [kh, kw] = g.kernel;
    let (s, pad, zp) = (g.stride, g.pad, g.input_zero_point);
    let fits = s >= 1
        && kh == kw
        && pad < kh
        && hi > 0
        && wi > 0
        && g.rows == (0, ho)
        && (-128..=127).contains(&zp)
        && ho + 2 * pad == (hi - 1) * s + kh
        && wo + 2 * pad == (wi - 1) * s + kw
        && input.len() >= ci * hi * wi
        && weights.len() >= ci * co * kh * kw;
    if !fits {
        return false;
    }
    let (hd, wd) = ((hi - 1) * s + 1, (wi - 1) * s + 1);
    let mut dilated = vec![zp as i8 as u8; ci * hd * wd];
    for c in 0..ci {
        for iy in 0..hi {
            let src = &input[(c * hi + iy) * wi..(c * hi + iy + 1) * wi];
            let dst = &mut dilated[(c * hd + iy * s) * wd..(c * hd + iy * s + 1) * wd];
            for (d, &v) in dst.iter_mut().step_by(s).zip(src) {
                *d = v;
            }
        }
    }
    // The compiled file stores transposed-convolution weights as [co][ci][kh][kw] (as the
    // reference kernel reads them); the equivalent convolution's are the same, flipped.
    let mut flipped = vec![0u8; co * ci * kh * kw];
    for (dst, src) in flipped.chunks_exact_mut(kh * kw).zip(weights.chunks_exact(kh * kw)) {
        for (d, s) in dst.iter_mut().zip(src.iter().rev()) {
            *d = *s;
        }
    }
    let g2 = ConvGeometry {
        input: [ci, hd, wd],
        output: [co, ho, wo],
        kernel: [kh, kw],
        stride: 1,
        pad: kh - 1 - pad,
        input_zero_point: zp,
        rows: (0, ho),
    };
    conv2d_vnni(&g2, &dilated, &flipped, bias, spec, out)
}

/// A dense layer's weights packed for [`fully_connected_vnni`], with what they were made from.
struct DensePacked {
    key: (Vec<u8>, Vec<u8>, usize, usize, i32),
    /// `[k/4][outputs/16][16 lanes][4]` int8, zero-padded.
    w: Vec<u8>,
    /// Per output: bias − (zp + 128)·Σ weights.
    corr: Vec<i32>,
}

thread_local! {
    static DENSE: RefCell<Vec<DensePacked>> = const { RefCell::new(Vec::new()) };
}

/// [`super::fully_connected`] with AVX-512 VNNI, bit-exact: 16 outputs per vector, four inputs
/// per `vpdpbusd` (broadcast, shifted to u8 and corrected as in [`conv2d_vnni`]), weights
/// packed once per thread. Returns `false` (nothing written) for buffers inconsistent with
/// the shape or an input zero point outside int8. The caller has checked [`has_vnni`].
pub fn fully_connected_vnni(
    input: &[u8],
    input_zero_point: i32,
    weights: &[u8],
    bias: &[u8],
    outputs: usize,
    spec: &OutSpec,
    out: &mut [u8],
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
    DENSE.with(|cache| {
        let mut cache = cache.borrow_mut();
        let key = (&weights[..outputs * n], &bias[..4 * outputs], n, outputs, input_zero_point);
        let i = match cache
            .iter()
            .position(|p| p.key.0 == key.0 && p.key.1 == key.1 && (p.key.2, p.key.3, p.key.4) == (n, outputs, input_zero_point))
        {
            Some(i) => i,
            None => {
                if cache.len() >= PACKS {
                    cache.clear();
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
                cache.push(DensePacked { key: (key.0.to_vec(), key.1.to_vec(), n, outputs, input_zero_point), w, corr });
                cache.len() - 1
            }
        };
        // SAFETY: the caller checked AVX-512 F/BW/VL/VNNI; the body's reads and writes are
        // bounded by the lengths checked above (see its comments).
        unsafe { dense_body(input, &cache[i], outputs, spec, out) };
    });
    true
}

#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni")]
unsafe fn dense_body(input: &[u8], p: &DensePacked, outputs: usize, spec: &OutSpec, out: &mut [u8]) {
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

/// [`super::conv2d`] at stride 2 through [`conv2d_vnni`], bit-exact: space-to-depth turns it
/// into a stride-1 convolution — pixel (2Y + a, 2X + b) of the padded input becomes pixel
/// (Y, X) of channel (c, a, b), and kernel tap (2j + a, 2i + b) tap (j, i) of that channel —
/// the same products, so the same int32 sums. Returns `false` (nothing written) when the
/// shape does not fit (whole output only) or [`conv2d_vnni`] declines it. The caller has
/// checked [`has_vnni`].
pub fn conv2d_stride2_vnni(g: &ConvGeometry, input: &[u8], weights: &[u8], bias: &[u8], spec: &OutSpec, out: &mut [u8]) -> bool {
    let [ci, hi, wi] = g.input;
    let [co, ho, wo] = g.output;
    let [kh, kw] = g.kernel;
    let (pad, zp) = (g.pad, g.input_zero_point);
    let (kh2, kw2) = (kh.div_ceil(2), kw.div_ceil(2));
    // Space-to-depth planes: even sizes covering the padded input and every tap.
    let hs = (hi + 2 * pad).div_ceil(2).max(ho + kh2 - 1);
    let ws = (wi + 2 * pad).div_ceil(2).max(wo + kw2 - 1);
    let fits = g.stride == 2
        && ci > 0
        && kh > 0
        && kw > 0
        && g.rows == (0, ho)
        && (-128..=127).contains(&zp)
        && ho > 0
        && wo > 0
        && 2 * (ho - 1) + kh <= hi + 2 * pad
        && 2 * (wo - 1) + kw <= wi + 2 * pad
        && input.len() >= ci * hi * wi
        && weights.len() >= co * ci * kh * kw;
    if !fits {
        return false;
    }
    let mut s2d = vec![zp as i8 as u8; 4 * ci * hs * ws];
    for c in 0..ci {
        for y in 0..hi {
            let yp = y + pad;
            for x in 0..wi {
                let xp = x + pad;
                let ch = 4 * c + 2 * (yp % 2) + xp % 2;
                s2d[(ch * hs + yp / 2) * ws + xp / 2] = input[(c * hi + y) * wi + x];
            }
        }
    }
    let mut w2 = vec![0u8; co * 4 * ci * kh2 * kw2];
    for o in 0..co {
        for c in 0..ci {
            for ky in 0..kh {
                for kx in 0..kw {
                    let ch = 4 * c + 2 * (ky % 2) + kx % 2;
                    w2[((o * 4 * ci + ch) * kh2 + ky / 2) * kw2 + kx / 2] = weights[((o * ci + c) * kh + ky) * kw + kx];
                }
            }
        }
    }
    let g2 = ConvGeometry {
        input: [4 * ci, hs, ws],
        output: [co, ho, wo],
        kernel: [kh2, kw2],
        stride: 1,
        pad: 0,
        input_zero_point: zp,
        rows: (0, ho),
    };
    conv2d_vnni(&g2, &s2d, &w2, bias, spec, out)
}
