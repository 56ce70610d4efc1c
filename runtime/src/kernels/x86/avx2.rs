//! AVX2 convolutions for CPUs without AVX-512 VNNI (`vpmaddwd`: sixteen i16 × i16
//! multiply-accumulates per instruction): the VNNI kernel's design ([`super::conv`]) with
//! 8-position vectors of two channels per pixel. Activations are re-laid out per call as
//! `planes` planes of padded pixels, each pixel two sign-extended i16 (channels `2p`, `2p + 1`;
//! one input channel: the pixel and its right-hand neighbour, so two kernel columns are one
//! step); weights are packed once per op by the prepare step, two i16 in one u32 per step and
//! output channel. Every tile is `CB` output channels × `V` vectors of 8 positions; the
//! int32 sums are the reference's (the same products), and the requantization is
//! `multiply_by_quantized_multiplier` lane by lane, so results are bit-exact.
#![allow(unsafe_code)]

use super::conv::{conv2d_stride2_form, stride1_form, Stride1};
use crate::kernels::{f32_at, i32_at, requantize, ConvGeometry, OutSpec};
use core::arch::x86_64::*;
use std::cell::RefCell;

/// Output channels per block.
const CB: usize = 4;
/// 8-position vectors per tile (`CB × V` accumulators; the rest of a call's vectors one at a
/// time, and a one-channel layer 8 vectors a tile).
const V: usize = 2;

/// Packed weights, per-step activation offsets (in i16 units) and corrected biases of one
/// stride-1 convolution, with the geometry they were made for (checked on every use: the
/// offsets drive the kernel's pointer arithmetic).
pub struct Pack {
    geometry: ([usize; 3], [usize; 3], [usize; 2], usize, i32),
    w: Vec<u32>,
    steps: Vec<usize>,
    corr: Vec<i32>,
}

impl Pack {
    fn fits(&self, g: &ConvGeometry) -> bool {
        self.geometry == (g.input, g.output, g.kernel, g.pad, g.input_zero_point)
    }
}

thread_local! {
    /// Per-thread activations (grown, never shrunk).
    static ACT: RefCell<Vec<i16>> = const { RefCell::new(Vec::new()) };
}

/// The activation layout of one call: `planes` planes of `hp × wp` pixels of two i16.
#[derive(Clone, Copy)]
struct Layout {
    planes: usize,
    hp: usize,
    wp: usize,
}

impl Layout {
    fn of(g: &ConvGeometry) -> Layout {
        let [ci, hi, wi] = g.input;
        Layout { planes: if ci == 1 { 1 } else { ci / 2 }, hp: hi + 2 * g.pad, wp: wi + 2 * g.pad }
    }

    /// One plane, in i16.
    fn plane(&self) -> usize {
        self.hp * self.wp * 2
    }
}

/// Whether [`conv2d`] takes a convolution of this geometry: stride 1, input channels even or
/// exactly 1, the input zero point an int8 value.
fn fits(g: &ConvGeometry) -> bool {
    let [ci, hi, wi] = g.input;
    let [co, ho, wo] = g.output;
    let [kh, kw] = g.kernel;
    g.stride == 1
        && (ci % 2 == 0 || ci == 1)
        && ci > 0
        && co > 0
        && wo > 0
        && kh > 0
        && kw > 0
        && (-128..=127).contains(&g.input_zero_point)
        && ho + kh - 1 <= hi + 2 * g.pad
        && wo + kw - 1 <= wi + 2 * g.pad
}

/// The prepare step's packing of a convolution (stride 1 or 2), for the stride-1 form the
/// kernel runs; `None` for a shape left to the portable kernels.
pub fn pack(g: &ConvGeometry, weights: &[u8], bias: &[u8]) -> Option<Pack> {
    let (g2, w2) = stride1_form(false, g, weights, bias)?;
    fits(&g2).then(|| make_pack(&g2, &w2, bias))
}

fn make_pack(g: &ConvGeometry, weights: &[u8], bias: &[u8]) -> Pack {
    let lay = Layout::of(g);
    let [ci, _, _] = g.input;
    let [co, _, _] = g.output;
    let [kh, kw] = g.kernel;
    let taps = kh * kw;
    let w_at = |o: usize, c: usize, ky: usize, kx: usize| weights[((o * ci + c) * kh + ky) * kw + kx] as i8;
    let mut steps = Vec::new();
    // Per step: (first channel, ky, kx) of its two weights.
    let mut step_w: Vec<(usize, usize, usize)> = Vec::new();
    if ci == 1 {
        for ky in 0..kh {
            let live: Vec<usize> = (0..kw).filter(|&kx| (0..co).any(|o| w_at(o, 0, ky, kx) != 0)).collect();
            let (Some(&lo), Some(&hi)) = (live.first(), live.last()) else { continue };
            for kx in (lo..=hi).step_by(2) {
                steps.push((ky * lay.wp + kx) * 2);
                step_w.push((0, ky, kx));
            }
        }
    } else {
        for t in 0..taps {
            let (ky, kx) = (t / kw, t % kw);
            if !(0..co).any(|o| (0..ci).any(|c| w_at(o, c, ky, kx) != 0)) {
                continue; // a masked tap: zero for every channel
            }
            for c2 in 0..ci / 2 {
                steps.push(c2 * lay.plane() + (ky * lay.wp + kx) * 2);
                step_w.push((2 * c2, ky, kx));
            }
        }
    }
    let n = steps.len();
    let mut w = vec![0u32; co.div_ceil(CB) * n * CB];
    for o in 0..co {
        for (t, &(c, ky, kx)) in step_w.iter().enumerate() {
            let (a, b) = if ci == 1 {
                (w_at(o, 0, ky, kx), if kx + 1 < kw { w_at(o, 0, ky, kx + 1) } else { 0 })
            } else {
                (w_at(o, c, ky, kx), w_at(o, c + 1, ky, kx))
            };
            w[((o / CB) * n + t) * CB + o % CB] = (a as i16 as u16 as u32) | ((b as i16 as u16 as u32) << 16);
        }
    }
    // acc_ref = bias + Σ (x − zp)·w = (bias − zp·Σ w) + Σ x·w, padding read as zp. Wrapping,
    // as the reference's int32 sums.
    let corr = (0..co)
        .map(|o| {
            let sum = weights[o * ci * taps..(o + 1) * ci * taps].iter().fold(0i32, |a, &w| a.wrapping_add(w as i8 as i32));
            i32_at(bias, o).wrapping_sub(g.input_zero_point.wrapping_mul(sum))
        })
        .collect();
    Pack { geometry: (g.input, g.output, g.kernel, g.pad, g.input_zero_point), w, steps, corr }
}

/// [`super::super::conv2d`] with AVX2, bit-exact with `reference::conv2d`. Returns `false`
/// without touching `out` when the shape is not one this kernel takes ([`fits`]) or the
/// buffers are inconsistent with `g`. The caller has checked `has_avx2`.
pub fn conv2d(g: &ConvGeometry, input: &[u8], weights: &[u8], bias: &[u8], spec: &OutSpec, out: &mut [u8], pack: Option<&Pack>) -> bool {
    let rows = (g.rows.0, (g.rows.1.min(g.output[1]) + g.kernel[0]).saturating_sub(1).min(g.input[1] + 2 * g.pad));
    run(g, input, weights, bias, spec, out, pack, Some(rows))
}

/// [`conv2d`], re-laying out the padded input rows `fill` first, or (`None`) reading the
/// activations the previous call on this thread laid out for the same input and padding.
#[allow(clippy::too_many_arguments)]
fn run(
    g: &ConvGeometry,
    input: &[u8],
    weights: &[u8],
    bias: &[u8],
    spec: &OutSpec,
    out: &mut [u8],
    pack: Option<&Pack>,
    fill: Option<(usize, usize)>,
) -> bool {
    let [ci, hi, wi] = g.input;
    let [co, ho, wo] = g.output;
    let [kh, kw] = g.kernel;
    let out_bytes = match spec {
        OutSpec::Int8 { quant, .. } => (quant.len() >= 8 * co).then_some(1),
        OutSpec::F32 { quant } => (quant.len() >= 4 * co).then_some(4),
    };
    let Some(out_bytes) = out_bytes else { return false };
    if !fits(g) || g.rows.0 >= g.rows.1.min(ho) || input.len() < ci * hi * wi || bias.len() < 4 * co || out.len() < out_bytes * co * ho * wo
    {
        return false;
    }
    debug_assert!(super::has_avx2());
    let made;
    let pack = match pack.filter(|p| p.fits(g)) {
        Some(p) => p,
        None if weights.len() >= co * ci * kh * kw => {
            made = make_pack(g, weights, bias);
            &made
        }
        None => return false,
    };
    ACT.with(|a| {
        // SAFETY: the caller checked that the CPU has AVX2; every pointer offset inside is
        // derived from the sizes checked above and from a packing made for this geometry
        // (see the body's comments).
        unsafe { body(g, input, spec, out, &mut a.borrow_mut(), pack, fill) }
    });
    true
}

/// A stride-2 convolution through [`conv2d`] (space-to-depth; see `conv2d_stride2_vnni`).
pub fn conv2d_stride2(
    g: &ConvGeometry,
    input: &[u8],
    weights: &[u8],
    bias: &[u8],
    spec: &OutSpec,
    out: &mut [u8],
    pack: Option<&Pack>,
) -> bool {
    conv2d_stride2_form::<Avx2>(g, input, weights, bias, spec, out, pack)
}

/// One output phase of a transposed convolution: the outputs `(s·Y + a, s·X + b)` are the
/// stride-1 convolution `g` of the input (a `kh/s × kw/s` kernel of the taps that land on
/// them, flipped), rows and columns `Y + off.0`, `X + off.1` of its output.
struct Phase {
    g: ConvGeometry,
    pack: Pack,
    at: (usize, usize),
    off: (usize, usize),
    n: (usize, usize),
}

/// A transposed convolution packed as its `s × s` output phases ([`conv_transpose2d`]),
/// with the geometry it was made for.
pub struct TransposedPack {
    geometry: ConvGeometry,
    phases: Vec<Phase>,
}

/// Along one axis of a transposed convolution (kernel `k`, stride `s`, padding `pad`, input
/// `n_in`, output `n_out`), phase `a`: output `s·Y + a` sums input `Y + t − p` under tap
/// `s·(kj − 1 − t) + r` for `t < kj`. Returns `(r, kj, p, outputs of the phase)`.
fn axis_phase(k: usize, s: usize, pad: usize, n_out: usize, a: usize) -> Option<(usize, usize, isize, usize)> {
    let (r, q) = ((a + pad) % s, (a + pad) / s);
    let kj = k.checked_sub(r)?.div_ceil(s);
    (kj > 0 && a < n_out).then(|| (r, kj, kj as isize - 1 - q as isize, (n_out - a).div_ceil(s)))
}

/// The phases of `g` (see [`Phase`]), `None` where a phase has no taps or its convolution is
/// not one [`conv2d`] takes.
fn transposed_plan(g: &ConvGeometry, weights: &[u8], bias: &[u8]) -> Option<TransposedPack> {
    let [ci, hi, wi] = g.input;
    let [co, ho, wo] = g.output;
    let [kh, kw] = g.kernel;
    let (s, pad) = (g.stride, g.pad);
    if s == 0 || hi == 0 || wi == 0 || g.rows != (0, ho) || weights.len() < co * ci * kh * kw || bias.len() < 4 * co {
        return None;
    }
    let ys = (0..s.min(ho)).map(|a| axis_phase(kh, s, pad, ho, a)).collect::<Option<Vec<_>>>()?;
    let xs = (0..s.min(wo)).map(|b| axis_phase(kw, s, pad, wo, b)).collect::<Option<Vec<_>>>()?;
    // One symmetric padding for every phase: at least each phase's own, and enough for its
    // outputs to lie inside the convolution's output.
    let pm = (0..=kh.max(kw) + hi.max(wi)).find(|&pm| {
        let fits = |&(_, kj, p, n): &(usize, usize, isize, usize), n_in: usize| {
            p <= pm as isize && (pm as isize - p) as usize + n <= n_in + 2 * pm + 1 - kj
        };
        ys.iter().all(|y| fits(y, hi)) && xs.iter().all(|x| fits(x, wi))
    })?;
    let mut phases = Vec::new();
    for (a, &(ry, kjy, py, ny)) in ys.iter().enumerate() {
        for (b, &(rx, kjx, px, nx)) in xs.iter().enumerate() {
            let off = ((pm as isize - py) as usize, (pm as isize - px) as usize);
            let pg = ConvGeometry {
                input: [ci, hi, wi],
                output: [co, hi + 2 * pm + 1 - kjy, wi + 2 * pm + 1 - kjx],
                kernel: [kjy, kjx],
                stride: 1,
                pad: pm,
                input_zero_point: g.input_zero_point,
                rows: (off.0, off.0 + ny),
            };
            if !fits(&pg) {
                return None;
            }
            let mut w = vec![0u8; co * ci * kjy * kjx];
            for oc in 0..co * ci {
                for ty in 0..kjy {
                    for tx in 0..kjx {
                        let (ky, kx) = (s * (kjy - 1 - ty) + ry, s * (kjx - 1 - tx) + rx);
                        w[(oc * kjy + ty) * kjx + tx] = weights[(oc * kh + ky) * kw + kx];
                    }
                }
            }
            phases.push(Phase { g: pg, pack: make_pack(&pg, &w, bias), at: (a, b), off, n: (ny, nx) });
        }
    }
    Some(TransposedPack { geometry: *g, phases })
}

/// The prepare step's packing of a transposed convolution ([`conv_transpose2d`]).
pub fn pack_transposed(g: &ConvGeometry, weights: &[u8], bias: &[u8]) -> Option<TransposedPack> {
    transposed_plan(g, weights, bias)
}

/// [`super::super::conv_transpose2d`] with AVX2, bit-exact: at stride `s` each of the `s × s`
/// output phases (rows `≡ a`, columns `≡ b` mod `s`) receives only the taps `≡ a + pad`,
/// `b + pad` mod `s`, from consecutive input pixels — a stride-1 convolution of the input with
/// those taps (flipped), run by [`conv2d`] and scattered into place. The same products as the
/// reference, so the same int32 sums, and no MAC on the zeros a dilated input would insert.
/// Returns `false` (nothing written) when the shape does not fit (whole output only; a phase
/// without taps) or the buffers are inconsistent with `g`. The caller has checked `has_avx2`.
pub fn conv_transpose2d(
    g: &ConvGeometry,
    input: &[u8],
    weights: &[u8],
    bias: &[u8],
    spec: &OutSpec,
    out: &mut [u8],
    pack: Option<&TransposedPack>,
) -> bool {
    let [ci, hi, wi] = g.input;
    let [co, ho, wo] = g.output;
    let width = match spec {
        OutSpec::Int8 { quant, .. } if quant.len() >= 8 * co => 1,
        OutSpec::F32 { quant } if quant.len() >= 4 * co => 4,
        _ => return false,
    };
    if input.len() < ci * hi * wi || bias.len() < 4 * co || out.len() < width * co * ho * wo {
        return false;
    }
    let made;
    let plan = match pack.filter(|p| p.geometry == *g) {
        Some(p) => p,
        None => match transposed_plan(g, weights, bias) {
            Some(p) => {
                made = p;
                &made
            }
            None => return false,
        },
    };
    let s = g.stride;
    let mut tmp = Vec::new();
    for (i, ph) in plan.phases.iter().enumerate() {
        let [_, hh, ww] = ph.g.output;
        tmp.resize(width * co * hh * ww, 0);
        // Every phase reads the same input at the same padding: laid out once, by the first.
        let fill = (i == 0).then_some((0, hi + 2 * ph.g.pad));
        let done = run(&ph.g, input, &[], bias, spec, &mut tmp, Some(&ph.pack), fill);
        debug_assert!(done, "a planned phase is one conv2d takes");
        for o in 0..co {
            for y in 0..ph.n.0 {
                let src = &tmp[width * ((o * hh + y + ph.off.0) * ww + ph.off.1)..][..width * ph.n.1];
                let row = (o * ho + s * y + ph.at.0) * wo + ph.at.1;
                let dst = &mut out[width * row..];
                if width == 1 {
                    for (d, &v) in dst.iter_mut().step_by(s).zip(src) {
                        *d = v;
                    }
                } else {
                    for (d, v) in dst.chunks_exact_mut(4).step_by(s).zip(src.chunks_exact(4)) {
                        d.copy_from_slice(v);
                    }
                }
            }
        }
    }
    true
}

/// This kernel, for the stride-2 form.
struct Avx2;

impl Stride1 for Avx2 {
    type Pack = Pack;
    fn fits(pack: &Pack, g: &ConvGeometry) -> bool {
        pack.fits(g)
    }
    fn run(g: &ConvGeometry, input: &[u8], weights: &[u8], bias: &[u8], spec: &OutSpec, out: &mut [u8], pack: Option<&Pack>) -> bool {
        conv2d(g, input, weights, bias, spec, out, pack)
    }
}

/// `multiply_by_quantized_multiplier(·, m, shift)` + zero point + clamp on 8 lanes, bit for
/// bit, for `m != i32::MIN` and `shift` in `-31..=31` (else element by element); or the f32
/// edge's `acc · scale`.
#[derive(Clone, Copy)]
struct Rq {
    mult: __m256i,
    shifts: __m256i,
    zp: __m256i,
    lo: __m256i,
    hi: __m256i,
    scale: __m256,
    /// 0 = int8 vector, 1 = int8 element by element, 2 = f32.
    how: u8,
    m: i32,
    shift: i32,
}

impl Rq {
    /// Channel `c`'s constants.
    #[inline(always)]
    unsafe fn new(spec: &OutSpec, c: usize) -> Rq {
        // SAFETY (caller): AVX2 is available (register broadcasts only).
        unsafe {
            let mut rq = Rq {
                mult: _mm256_setzero_si256(),
                shifts: _mm256_setzero_si256(),
                zp: _mm256_setzero_si256(),
                lo: _mm256_setzero_si256(),
                hi: _mm256_setzero_si256(),
                scale: _mm256_setzero_ps(),
                how: 2,
                m: 0,
                shift: 0,
            };
            match *spec {
                OutSpec::Int8 { zero_point, act_min, act_max, quant } => {
                    let (m, shift) = (i32_at(quant, 2 * c), i32_at(quant, 2 * c + 1));
                    rq.how = if super::vector_quant(m, shift) { 0 } else { 1 };
                    rq.m = m;
                    rq.shift = shift;
                    rq.mult = _mm256_set1_epi32(m);
                    rq.shifts = _mm256_set1_epi32(shift);
                    rq.zp = _mm256_set1_epi32(zero_point);
                    rq.lo = _mm256_set1_epi32(act_min as i32);
                    rq.hi = _mm256_set1_epi32(act_max as i32);
                }
                OutSpec::F32 { quant } => rq.scale = _mm256_set1_ps(f32_at(quant, c)),
            }
            rq
        }
    }

    /// Requantizes 8 accumulators and stores the lanes of `lanes` at `dst` (int8 bytes or
    /// little-endian f32), exactly as `OutSpec::emit` does element by element.
    #[inline(always)]
    unsafe fn emit8(&self, acc: __m256i, spec: &OutSpec, dst: *mut u8, lanes: u8) {
        // SAFETY (caller): AVX2 is available; `dst` is valid for the writes of the lanes in
        // `lanes` (1 or 4 bytes each).
        unsafe {
            match self.how {
                0 => {
                    let q = requantize8(acc, self.mult, self.shifts);
                    let q = _mm256_min_epi32(_mm256_max_epi32(_mm256_add_epi32(q, self.zp), self.lo), self.hi);
                    // Byte 0 of each lane: four per 128-bit half, then the halves side by side.
                    let pick = _mm256_setr_epi8(
                        0, 4, 8, 12, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, 0, 4, 8, 12, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
                        -1, -1,
                    );
                    let b = _mm256_shuffle_epi8(q, pick);
                    let bytes = _mm_unpacklo_epi32(_mm256_castsi256_si128(b), _mm256_extracti128_si256(b, 1));
                    if lanes == 0xFF {
                        _mm_storel_epi64(dst as *mut __m128i, bytes);
                    } else {
                        let v = (_mm_cvtsi128_si64(bytes) as u64).to_le_bytes();
                        for j in (0..8).filter(|j| lanes & (1 << j) != 0) {
                            *dst.add(j) = v[j];
                        }
                    }
                }
                1 => {
                    let OutSpec::Int8 { zero_point, act_min, act_max, .. } = *spec else { return };
                    let mut a = [0i32; 8];
                    _mm256_storeu_si256(a.as_mut_ptr() as *mut __m256i, acc);
                    for (j, &a) in a.iter().enumerate().filter(|&(j, _)| lanes & (1 << j) != 0) {
                        *dst.add(j) = requantize(a, self.m, self.shift, zero_point, act_min, act_max);
                    }
                }
                _ => {
                    let f = _mm256_mul_ps(_mm256_cvtepi32_ps(acc), self.scale);
                    if lanes == 0xFF {
                        _mm256_storeu_ps(dst as *mut f32, f);
                    } else {
                        let mut a = [0f32; 8];
                        _mm256_storeu_ps(a.as_mut_ptr(), f);
                        for (j, a) in a.iter().enumerate().filter(|&(j, _)| lanes & (1 << j) != 0) {
                            core::ptr::copy_nonoverlapping(a.to_le_bytes().as_ptr(), dst.add(4 * j), 4);
                        }
                    }
                }
            }
        }
    }
}

/// `multiply_by_quantized_multiplier(acc, mult, shift)` on 8 lanes, each lane its own
/// multiplier and shift, bit for bit, for multipliers `!= i32::MIN` and shifts in `-31..=31`
/// (`super::vector_quant`; callers go element by element otherwise).
#[inline(always)]
pub(super) unsafe fn requantize8(acc: __m256i, mult: __m256i, shift: __m256i) -> __m256i {
    // SAFETY (caller): AVX2 is available.
    unsafe {
        let zero = _mm256_setzero_si256();
        let one = _mm256_set1_epi32(1);
        let left = _mm256_max_epi32(shift, zero);
        let right = _mm256_max_epi32(_mm256_sub_epi32(zero, shift), zero);
        let x = _mm256_sllv_epi32(acc, left);
        // (x·m + 2^30) >> 31 per lane (`saturating_rounding_doubling_high_mul`; |x·m| < 2^62 as
        // m != i32::MIN): bits 31..62 of the even lanes' 64-bit products, then the odd lanes'
        // moved up into the high halves, blended.
        let nudge = _mm256_set1_epi64x(1 << 30);
        let even = _mm256_srli_epi64(_mm256_add_epi64(_mm256_mul_epi32(x, mult), nudge), 31);
        let odd = _mm256_mul_epi32(_mm256_srli_epi64(x, 32), _mm256_srli_epi64(mult, 32));
        let odd = _mm256_slli_epi64(_mm256_add_epi64(odd, nudge), 1);
        let v = _mm256_blend_epi32(even, odd, 0b1010_1010);
        // rounding_divide_by_pot(v, right): + 1 where the remainder passes the threshold (the
        // compare's −1 subtracted).
        let mask = _mm256_sub_epi32(_mm256_sllv_epi32(one, right), one);
        let thr = _mm256_add_epi32(_mm256_srli_epi32(mask, 1), _mm256_srli_epi32(v, 31));
        _mm256_sub_epi32(_mm256_srav_epi32(v, right), _mm256_cmpgt_epi32(_mm256_and_si256(v, mask), thr))
    }
}

/// The 8-position vectors one call computes: (activation offset in i16, output element
/// offset within a channel plane, lanes stored).
fn vectors(g: &ConvGeometry, lay: Layout) -> Vec<(usize, usize, u8)> {
    let [_, _, wi] = g.input;
    let [_, ho, wo] = g.output;
    let [kh, kw] = g.kernel;
    let (y0, y1) = (g.rows.0, g.rows.1.min(ho));
    let mut vs = Vec::new();
    if kh == 1 && kw == 1 && g.pad == 0 && wi == wo && (y1 - y0) * wo >= 8 {
        // A 1×1 kernel without padding over rows as wide as the output's: the rows as one
        // flat run (the last vector ends at the run's end, overlapping with equal values).
        let (q0, q1) = (y0 * wo, y1 * wo);
        vs.extend((q0..q1 - 7).step_by(8).map(|q| (2 * q, q, 0xFF)));
        if (q1 - q0) % 8 != 0 {
            vs.push((2 * (q1 - 8), q1 - 8, 0xFF));
        }
    } else if wo >= 8 {
        for oy in y0..y1 {
            let starts = (0..wo - 7).step_by(8).chain((wo % 8 != 0).then_some(wo - 8));
            vs.extend(starts.map(|x| (2 * (oy * lay.wp + x), oy * wo + x, 0xFF)));
        }
    } else {
        // Narrow rows: one vector a row, its first wo lanes stored.
        vs.extend((y0..y1).map(|oy| (2 * oy * lay.wp, oy * wo, ((1u32 << wo) - 1) as u8)));
    }
    vs
}

/// Lays out the padded input rows `r0..r1` (of `hi + 2·pad`) of `g` in `act_buf` (see
/// [`Layout`]), growing it to every plane plus the slack a narrow-row vector reads past its
/// row (up to 8 pixels).
fn relayout(g: &ConvGeometry, input: &[u8], act_buf: &mut Vec<i16>, (r0, r1): (usize, usize)) {
    let [ci, hi, wi] = g.input;
    let pad = g.pad;
    let lay = Layout::of(g);
    let pv = g.input_zero_point as i16;
    act_buf.resize(lay.planes * lay.plane() + 32, pv);
    let mut prow = vec![pv; lay.wp + 1];
    for p in 0..lay.planes {
        for yp in r0..r1 {
            let row = &mut act_buf[p * lay.plane() + yp * lay.wp * 2..][..lay.wp * 2];
            row.fill(pv);
            let Some(y) = yp.checked_sub(pad).filter(|&y| y < hi) else { continue };
            if ci == 1 {
                // The pixel and its right-hand neighbour (padding included).
                for (d, &v) in prow[pad..pad + wi].iter_mut().zip(&input[y * wi..(y + 1) * wi]) {
                    *d = v as i8 as i16;
                }
                for (x, px) in row.chunks_exact_mut(2).enumerate() {
                    px[0] = prow[x];
                    px[1] = prow[x + 1];
                }
                prow[pad..pad + wi].fill(pv);
                continue;
            }
            let a = &input[((2 * p) * hi + y) * wi..][..wi];
            let b = &input[((2 * p + 1) * hi + y) * wi..][..wi];
            for ((px, &a), &b) in row[2 * pad..2 * (pad + wi)].chunks_exact_mut(2).zip(a).zip(b) {
                px[0] = a as i8 as i16;
                px[1] = b as i8 as i16;
            }
        }
    }
}

#[target_feature(enable = "avx2")]
unsafe fn body(
    g: &ConvGeometry,
    input: &[u8],
    spec: &OutSpec,
    out: &mut [u8],
    act_buf: &mut Vec<i16>,
    pk: &Pack,
    fill: Option<(usize, usize)>,
) {
    let [co, ho, wo] = g.output;
    let lay = Layout::of(g);
    if let Some(rows) = fill {
        relayout(g, input, act_buf, rows);
    }
    debug_assert!(act_buf.len() > lay.planes * lay.plane());
    let act = act_buf.as_ptr();
    let width = match spec {
        OutSpec::Int8 { .. } => 1,
        OutSpec::F32 { .. } => 4,
    };
    let vs = vectors(g, lay);
    let n = pk.steps.len();
    for b in 0..co.div_ceil(CB) {
        let nc = (co - b * CB).min(CB);
        // SAFETY (here and below): AVX2 is available (the caller checked).
        let rq: [Rq; CB] = core::array::from_fn(|r| unsafe { Rq::new(spec, (b * CB + r).min(co - 1)) });
        let blk =
            Block { steps: &pk.steps, w: &pk.w[b * n * CB..(b + 1) * n * CB], corr: &pk.corr[b * CB..b * CB + nc], rq: &rq, spec, width };
        let out_b = &mut out[b * CB * ho * wo * width..];
        // SAFETY: `vs` holds vectors made by `vectors` for this geometry and `act` the
        // layout of its input (see `tile`).
        unsafe {
            if nc == 1 {
                // One channel (a last layer): more positions per tile instead.
                let mut c = vs.chunks_exact(8);
                for t in c.by_ref() {
                    tile::<1, 8>(act, &blk, t, out_b, ho * wo);
                }
                for t in c.remainder() {
                    tile::<1, 1>(act, &blk, core::slice::from_ref(t), out_b, ho * wo);
                }
            } else {
                let mut c = vs.chunks_exact(V);
                for t in c.by_ref() {
                    tile::<CB, V>(act, &blk, t, out_b, ho * wo);
                }
                for t in c.remainder() {
                    tile::<CB, 1>(act, &blk, core::slice::from_ref(t), out_b, ho * wo);
                }
            }
        }
    }
}

/// One block of output channels: its steps, packed weights (`CB` a step), corrected biases
/// (`nc` of them) and requantizations.
struct Block<'a> {
    steps: &'a [usize],
    w: &'a [u32],
    corr: &'a [i32],
    rq: &'a [Rq; CB],
    spec: &'a OutSpec<'a>,
    width: usize,
}

/// The first `C` channels of block `blk` (`C ≥ blk.corr.len()`, or only those are stored) at
/// the `N` vectors `vs`, written into `out` (the block's first channel plane first, planes of
/// `plane` elements).
#[inline(always)]
unsafe fn tile<const C: usize, const N: usize>(act: *const i16, blk: &Block, vs: &[(usize, usize, u8)], out: &mut [u8], plane: usize) {
    let nc = blk.corr.len().min(C);
    // SAFETY (caller): AVX2 is available (this is inlined into `body`).
    unsafe {
        let mut acc = [[_mm256_setzero_si256(); N]; C];
        for (a, &c) in acc.iter_mut().zip(blk.corr) {
            *a = [_mm256_set1_epi32(c); N];
        }
        for (&off, w) in blk.steps.iter().zip(blk.w.chunks_exact(CB)) {
            // SAFETY: `off` addresses (plane, ky, kx) with ky < kh, kx < kw; a row vector has
            // oy + ky < hp and x + kx + 8 ≤ wp, a flat one q + 8 ≤ hi·wi (1×1, no padding):
            // 16 i16 inside the plane either way; a narrow-row vector may read up to 8 pixels
            // past its row, inside the next row or plane, or the slack after the last plane
            // (lanes not stored).
            let v: [__m256i; N] = core::array::from_fn(|j| _mm256_loadu_si256(act.add(off + vs[j].0) as *const __m256i));
            for r in 0..C {
                let wv = _mm256_set1_epi32(w[r] as i32);
                for j in 0..N {
                    acc[r][j] = _mm256_add_epi32(acc[r][j], _mm256_madd_epi16(v[j], wv));
                }
            }
        }
        for (r, a) in acc.iter().enumerate().take(nc) {
            for (j, &(_, o, lanes)) in vs.iter().enumerate().take(N) {
                // SAFETY: channel < co and o + 8 ≤ ho·wo (or only the first wo < 8 lanes of a
                // row): inside `out` (length checked).
                blk.rq[r].emit8(a[j], blk.spec, out.as_mut_ptr().add((r * plane + o) * blk.width), lanes);
            }
        }
    }
}
