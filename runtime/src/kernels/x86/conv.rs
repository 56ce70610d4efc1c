//! Convolutions: AVX-512 VNNI (stride 1, stride 2 by space-to-depth, transposed by dilation)
//! and the portable body compiled for AVX2.
#![allow(unsafe_code)]

use super::{vector_quant, Mbqm};
use crate::kernels::{f32_at, i32_at, ConvGeometry, OutSpec};
use core::arch::x86_64::*;
use std::cell::RefCell;

#[target_feature(enable = "avx2")]
fn conv2d_avx2_body(g: &ConvGeometry, input: &[u8], weights: &[u8], bias: &[u8], spec: &OutSpec, out: &mut [u8]) {
    crate::kernels::portable::conv::conv2d_im2col::<crate::kernels::portable::I16>(g, input, weights, bias, spec, out)
}

/// The portable convolution compiled for AVX2; the caller has checked `is_x86_feature_detected!("avx2")`.
pub fn conv2d_avx2(g: &ConvGeometry, input: &[u8], weights: &[u8], bias: &[u8], spec: &OutSpec, out: &mut [u8]) {
    debug_assert!(std::is_x86_feature_detected!("avx2"));
    // SAFETY: only called after `is_x86_feature_detected!("avx2")` returned true, so the
    // CPU executes the AVX2 instructions this function was compiled with.
    unsafe { conv2d_avx2_body(g, input, weights, bias, spec, out) }
}

/// Output channels per register block (× 2 vectors of 16 positions = 16 accumulators).
const CB: usize = 8;

/// Per-thread scratch: the re-laid-out activations (grown, never shrunk). Weights are not
/// kept here: they are packed once per op by the interpreter's prepare step ([`pack`]).
#[derive(Default)]
struct Scratch {
    act: Vec<u8>,
}

/// Packed weights, per-step activation offsets and corrected biases of one stride-1
/// convolution, with the geometry and layout they were made for (checked on every use: the
/// offsets drive the kernel's pointer arithmetic). Row-band sampling calls each layer 784
/// times per image; packing once instead of per call is most of its speed.
pub struct ConvPack {
    geometry: ([usize; 3], [usize; 3], [usize; 2], usize, i32),
    layout: (usize, usize, usize),
    w: Vec<u32>,
    steps: Vec<usize>,
    corr: Vec<i32>,
}

thread_local! {
    static SCRATCH: RefCell<Scratch> = RefCell::new(Scratch::default());
}

/// The layout of one call: activations as `planes` planes of `hp × wp` pixels of 4 bytes.
#[derive(Clone, Copy, PartialEq, Eq)]
struct Layout {
    planes: usize,
    hp: usize,
    wp: usize,
}

impl Layout {
    /// The layout of a convolution's input: the padded input, four channels a plane (one
    /// channel: one plane of each pixel and its three right-hand neighbours).
    fn of(g: &ConvGeometry) -> Layout {
        let [ci, hi, wi] = g.input;
        Layout { planes: if ci == 1 { 1 } else { ci / 4 }, hp: hi + 2 * g.pad, wp: wi + 2 * g.pad }
    }

    fn plane(&self) -> usize {
        self.hp * self.wp * 4
    }
}

impl ConvPack {
    fn fits(&self, g: &ConvGeometry) -> bool {
        let lay = Layout::of(g);
        self.geometry == (g.input, g.output, g.kernel, g.pad, g.input_zero_point) && self.layout == (lay.planes, lay.hp, lay.wp)
    }
}

/// [`super::conv2d`] with AVX-512 VNNI, bit-exact with `reference::conv2d`. Returns `false`
/// without touching `out` when the shape is not one this kernel handles (stride 1, output
/// rows at most 32 wide, input channels a multiple of 4 or exactly 1, the input zero point an
/// int8 value) or the buffers are inconsistent with `g`; the caller then uses another kernel.
/// The caller has checked [`has_vnni`].
pub fn conv2d_vnni(
    g: &ConvGeometry,
    input: &[u8],
    weights: &[u8],
    bias: &[u8],
    spec: &OutSpec,
    out: &mut [u8],
    pack: Option<&ConvPack>,
) -> bool {
    let [ci, hi, wi] = g.input;
    let [co, ho, wo] = g.output;
    let [kh, kw] = g.kernel;
    let out_bytes = match spec {
        OutSpec::Int8 { quant, .. } => (quant.len() >= 8 * co).then_some(1),
        OutSpec::F32 { quant } => (quant.len() >= 4 * co).then_some(4),
    };
    let Some(out_bytes) = out_bytes else { return false };
    if !vnni_fits(g)
        || g.rows.0 >= g.rows.1.min(ho)
        || input.len() < ci * hi * wi
        || bias.len() < 4 * co
        || out.len() < out_bytes * co * ho * wo
    {
        return false;
    }
    debug_assert!(super::has_vnni());
    let made;
    let pack = match pack.filter(|p| p.fits(g)) {
        Some(p) => p,
        None if weights.len() >= co * ci * kh * kw => {
            made = conv_pack(g, weights, bias);
            &made
        }
        None => return false,
    };
    SCRATCH.with(|s| {
        let s = &mut *s.borrow_mut();
        // SAFETY: the caller checked that the CPU has AVX-512 F/BW/VNNI; every pointer
        // offset inside is derived from the sizes checked above and from a packing made for
        // this geometry and layout (see the body's comments).
        unsafe { conv2d_vnni_body(g, input, spec, out, s, pack) };
    });
    true
}

/// Whether [`conv2d_vnni`] takes a convolution of this geometry: stride 1, output rows at
/// most 32 wide, input channels a multiple of 4 or exactly 1, the input zero point an int8
/// value.
fn vnni_fits(g: &ConvGeometry) -> bool {
    let [ci, hi, wi] = g.input;
    let [co, ho, wo] = g.output;
    let [kh, kw] = g.kernel;
    let (pad, zp) = (g.pad, g.input_zero_point);
    g.stride == 1
        && (1..=32).contains(&wo)
        && (ci % 4 == 0 || ci == 1)
        && ci > 0
        && co > 0
        && kh > 0
        && kw > 0
        && (-128..=127).contains(&zp)
        && ho + kh - 1 <= hi + 2 * pad
        && wo + kw - 1 <= wi + 2 * pad
}

/// The prepare step's packing of a convolution (any stride the VNNI kernels take) or a
/// transposed convolution, for the stride-1 form the kernel runs; `None` for a shape they
/// leave to the AVX2 and portable kernels.
pub fn pack(transposed: bool, g: &ConvGeometry, weights: &[u8], bias: &[u8]) -> Option<ConvPack> {
    let (g2, w2) = stride1_form(transposed, g, weights, bias)?;
    vnni_fits(&g2).then(|| conv_pack(&g2, &w2, bias))
}

/// The stride-1 convolution a layer runs as (itself, its stride-2 form or its transposed
/// form) and that convolution's weights; `None` when the buffers are too short for `g` or
/// the layer has no such form.
pub(super) fn stride1_form(transposed: bool, g: &ConvGeometry, weights: &[u8], bias: &[u8]) -> Option<(ConvGeometry, Vec<u8>)> {
    let [ci, _, _] = g.input;
    let [co, _, _] = g.output;
    let [kh, kw] = g.kernel;
    if weights.len() < co * ci * kh * kw || bias.len() < 4 * co {
        return None;
    }
    Some(if transposed {
        (transposed_form(g)?, flipped(weights, kh * kw))
    } else if g.stride == 2 {
        (stride2_form(g)?, stride2_weights(g, weights))
    } else {
        (*g, weights.to_vec())
    })
}

/// Packs the weights (eight output channels per block, one u32 of four i8 per step),
/// computes the per-step activation offsets (relative to output position (0, 0)) and the
/// per-channel corrected biases.
fn conv_pack(g: &ConvGeometry, weights: &[u8], bias: &[u8]) -> ConvPack {
    let lay = &Layout::of(g);
    let mut s = ConvPack {
        geometry: (g.input, g.output, g.kernel, g.pad, g.input_zero_point),
        layout: (lay.planes, lay.hp, lay.wp),
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
unsafe fn conv2d_vnni_body(g: &ConvGeometry, input: &[u8], spec: &OutSpec, out: &mut [u8], s: &mut Scratch, pk: &ConvPack) {
    let [ci, hi, wi] = g.input;
    let [co, ho, wo] = g.output;
    let [kh, kw] = g.kernel;
    let pad = g.pad;
    let (y0, y1) = (g.rows.0, g.rows.1.min(ho));
    // Padded width: every tap's 16-position vector stays inside a padded row
    // (wo + kw − 1 ≤ wi + 2·pad, checked).
    let lay = Layout::of(g);
    let Scratch { act: act_buf } = s;
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

/// [`super::conv_transpose2d`] through [`conv2d_vnni`], bit-exact: a transposed convolution
/// is the ordinary convolution of its input with `stride − 1` zero-point pixels inserted
/// between neighbours, padded by `k − 1 − pad`, under the kernel flipped (rotated 180°) — the
/// same products in another order, so the int32 sums are equal. The inserted
/// pixels waste MACs (3 of 4 at stride 2), which 64-MAC instructions afford. Returns `false`
/// (nothing written) when the shape does not fit (square kernel, whole output, pad < k) or
/// [`conv2d_vnni`] declines it. The caller has checked [`has_vnni`].
pub fn conv_transpose2d_vnni(
    g: &ConvGeometry,
    input: &[u8],
    weights: &[u8],
    bias: &[u8],
    spec: &OutSpec,
    out: &mut [u8],
    pack: Option<&ConvPack>,
) -> bool {
    conv_transpose2d_form::<Vnni>(g, input, weights, bias, spec, out, pack)
}

/// A stride-1 convolution kernel with its own weight packing: the stride-2 and transposed
/// forms ([`conv2d_stride2_form`], [`conv_transpose2d_form`]) run on it.
pub(super) trait Stride1 {
    /// The packed constants the prepare step makes for it.
    type Pack: 'static;
    /// Whether `pack` was made for `g`.
    fn fits(pack: &Self::Pack, g: &ConvGeometry) -> bool;
    /// The convolution; `false` (nothing written) where it declines the shape.
    fn run(g: &ConvGeometry, input: &[u8], weights: &[u8], bias: &[u8], spec: &OutSpec, out: &mut [u8], pack: Option<&Self::Pack>) -> bool;
}

/// The AVX-512 VNNI kernel.
struct Vnni;

impl Stride1 for Vnni {
    type Pack = ConvPack;
    fn fits(pack: &ConvPack, g: &ConvGeometry) -> bool {
        pack.fits(g)
    }
    fn run(g: &ConvGeometry, input: &[u8], weights: &[u8], bias: &[u8], spec: &OutSpec, out: &mut [u8], pack: Option<&ConvPack>) -> bool {
        conv2d_vnni(g, input, weights, bias, spec, out, pack)
    }
}

/// A transposed convolution on kernel `K` (see [`conv_transpose2d_vnni`]).
fn conv_transpose2d_form<K: Stride1>(
    g: &ConvGeometry,
    input: &[u8],
    weights: &[u8],
    bias: &[u8],
    spec: &OutSpec,
    out: &mut [u8],
    pack: Option<&K::Pack>,
) -> bool {
    let [ci, hi, wi] = g.input;
    let [co, _, _] = g.output;
    let [kh, kw] = g.kernel;
    let (s, zp) = (g.stride, g.input_zero_point);
    let Some(g2) = transposed_form(g) else { return false };
    if input.len() < ci * hi * wi || weights.len() < ci * co * kh * kw {
        return false;
    }
    let [_, hd, wd] = g2.input;
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
    run_form::<K>(&g2, &dilated, || flipped(weights, kh * kw), bias, spec, out, pack)
}

/// Runs `g2`, the stride-1 form of a stride-2 or transposed layer, on its re-laid-out input
/// `act` with kernel `K`: with the prepare step's packing when it fits `g2`, else packing
/// `form_weights()` (the form's weights) now.
fn run_form<K: Stride1>(
    g2: &ConvGeometry,
    act: &[u8],
    form_weights: impl FnOnce() -> Vec<u8>,
    bias: &[u8],
    spec: &OutSpec,
    out: &mut [u8],
    pack: Option<&K::Pack>,
) -> bool {
    let made;
    let w2: &[u8] = if pack.is_some_and(|p| K::fits(p, g2)) {
        &[]
    } else {
        made = form_weights();
        &made
    };
    K::run(g2, act, w2, bias, spec, out, pack)
}

/// The stride-1 convolution a transposed convolution equals: its input with `stride − 1`
/// zero-point pixels between neighbours, padded by `k − 1 − pad`, under the flipped kernel;
/// `None` where the shape does not fit (square kernel, whole output, pad < k).
fn transposed_form(g: &ConvGeometry) -> Option<ConvGeometry> {
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
        && wo + 2 * pad == (wi - 1) * s + kw;
    let (hd, wd) = ((hi - 1) * s + 1, (wi - 1) * s + 1);
    fits.then_some(ConvGeometry {
        input: [ci, hd, wd],
        output: [co, ho, wo],
        kernel: [kh, kw],
        stride: 1,
        pad: kh - 1 - pad,
        input_zero_point: zp,
        rows: (0, ho),
    })
}

/// The compiled file stores transposed-convolution weights as [co][ci][kh][kw] (as the
/// reference kernel reads them); the equivalent convolution's are the same, each kernel
/// rotated 180°.
fn flipped(weights: &[u8], taps: usize) -> Vec<u8> {
    let mut out = vec![0u8; weights.len()];
    for (dst, src) in out.chunks_exact_mut(taps).zip(weights.chunks_exact(taps)) {
        for (d, s) in dst.iter_mut().zip(src.iter().rev()) {
            *d = *s;
        }
    }
    out
}

/// [`super::conv2d`] at stride 2 through [`conv2d_vnni`], bit-exact: space-to-depth turns it
/// into a stride-1 convolution — pixel (2Y + a, 2X + b) of the padded input becomes pixel
/// (Y, X) of channel (c, a, b), and kernel tap (2j + a, 2i + b) tap (j, i) of that channel —
/// the same products, so the same int32 sums. Returns `false` (nothing written) when the
/// shape does not fit (whole output only) or [`conv2d_vnni`] declines it. The caller has
/// checked [`has_vnni`].
pub fn conv2d_stride2_vnni(
    g: &ConvGeometry,
    input: &[u8],
    weights: &[u8],
    bias: &[u8],
    spec: &OutSpec,
    out: &mut [u8],
    pack: Option<&ConvPack>,
) -> bool {
    conv2d_stride2_form::<Vnni>(g, input, weights, bias, spec, out, pack)
}

/// A stride-2 convolution on kernel `K` (see [`conv2d_stride2_vnni`]).
pub(super) fn conv2d_stride2_form<K: Stride1>(
    g: &ConvGeometry,
    input: &[u8],
    weights: &[u8],
    bias: &[u8],
    spec: &OutSpec,
    out: &mut [u8],
    pack: Option<&K::Pack>,
) -> bool {
    let [ci, hi, wi] = g.input;
    let [co, _, _] = g.output;
    let [kh, kw] = g.kernel;
    let (pad, zp) = (g.pad, g.input_zero_point);
    let Some(g2) = stride2_form(g) else { return false };
    if input.len() < ci * hi * wi || weights.len() < co * ci * kh * kw {
        return false;
    }
    let [_, hs, ws] = g2.input;
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
    run_form::<K>(&g2, &s2d, || stride2_weights(g, weights), bias, spec, out, pack)
}

/// The stride-1 convolution a stride-2 one equals after space-to-depth (planes of even
/// sizes covering the padded input and every tap); `None` where the shape does not fit
/// (whole output only).
fn stride2_form(g: &ConvGeometry) -> Option<ConvGeometry> {
    let [ci, hi, wi] = g.input;
    let [co, ho, wo] = g.output;
    let [kh, kw] = g.kernel;
    let (pad, zp) = (g.pad, g.input_zero_point);
    let (kh2, kw2) = (kh.div_ceil(2), kw.div_ceil(2));
    let fits = g.stride == 2
        && ci > 0
        && kh > 0
        && kw > 0
        && g.rows == (0, ho)
        && (-128..=127).contains(&zp)
        && ho > 0
        && wo > 0
        && 2 * (ho - 1) + kh <= hi + 2 * pad
        && 2 * (wo - 1) + kw <= wi + 2 * pad;
    if !fits {
        return None;
    }
    let hs = (hi + 2 * pad).div_ceil(2).max(ho + kh2 - 1);
    let ws = (wi + 2 * pad).div_ceil(2).max(wo + kw2 - 1);
    Some(ConvGeometry {
        input: [4 * ci, hs, ws],
        output: [co, ho, wo],
        kernel: [kh2, kw2],
        stride: 1,
        pad: 0,
        input_zero_point: zp,
        rows: (0, ho),
    })
}

/// A stride-2 convolution's weights for [`stride2_form`]: tap (2j + a, 2i + b) of channel c
/// becomes tap (j, i) of channel (c, a, b).
fn stride2_weights(g: &ConvGeometry, weights: &[u8]) -> Vec<u8> {
    let [ci, _, _] = g.input;
    let [co, _, _] = g.output;
    let [kh, kw] = g.kernel;
    let (kh2, kw2) = (kh.div_ceil(2), kw.div_ceil(2));
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
    w2
}
