//! x86-64 kernels, chosen at run time by CPU feature ([`plug`] puts them in a kernel table):
//!
//! - **AVX-512 VNNI** (`vpdpbusd`: 64 u8 × i8 multiply-accumulates per instruction) for
//!   convolutions whose output rows are 16 to 32 wide (every PixelCNN layer), stride-2 and
//!   transposed convolutions turned into that form, dense layers, additions ([`conv`],
//!   [`dense`], [`elementwise`]). Weights are packed once per op by the interpreter's prepare
//!   step ([`pack`]), never per call.
//! - **AVX2** otherwise: convolutions (stride 1, stride 2 by space-to-depth, transposed as
//!   its stride × stride output phases) on `vpmaddwd` with the VNNI kernels' design — weights
//!   packed once per op, 8-position vectors of two i16 channels ([`avx2`]); dense layers and
//!   additions as the portable Rust body compiled with 256-bit registers.
//! - **AVX-512 F** replicas of `libm`'s `expf`, `log1pf` and `logf` ([`libm`]).
//!
//! All integer arithmetic (and `libm`'s own float algorithms), so results are identical to
//! the reference kernels.
#![allow(unsafe_code)]

pub mod avx2;
pub mod conv;
pub mod dense;
pub mod elementwise;
pub mod libm;

use super::dispatch::KernelTable;
use super::{ConvGeometry, Layer, OutSpec, Packed};
use core::arch::x86_64::*;

/// Whether this CPU runs the AVX2 kernels.
pub fn has_avx2() -> bool {
    std::is_x86_feature_detected!("avx2")
}

/// The portable table with AVX2 convolutions (their weights packed by the interpreter's
/// prepare step), dense layers, additions and ReLU.
const AVX2: KernelTable = KernelTable {
    name: "x86-avx2",
    conv2d: conv2d_avx2,
    conv_transpose2d: conv_transpose2d_avx2,
    fully_connected: |x, zp, w, b, n, s, o, _| dense::fully_connected_avx2(x, zp, w, b, n, s, o),
    add: elementwise::add_avx2,
    relu,
    pack: pack_avx2,
};

/// The AVX2 table with AVX-512 VNNI convolutions (stride 1 and 2, transposed), dense layers
/// and additions, their weights packed by the interpreter's prepare step.
const VNNI: KernelTable = KernelTable {
    name: "x86-avx512-vnni",
    conv2d: conv2d_vnni,
    conv_transpose2d: conv_transpose2d_vnni,
    fully_connected: fully_connected_vnni,
    add: |p, a, b, o| {
        if !elementwise::add_avx512(p, a, b, o) {
            super::portable::add(p, a, b, o)
        }
    },
    pack,
    ..AVX2
};

/// The AVX2 table, where this CPU has AVX2.
pub fn avx2_table() -> Option<&'static KernelTable> {
    has_avx2().then_some(&AVX2)
}

/// The AVX-512 VNNI table, where this CPU has AVX-512 F, BW, VL and VNNI (and AVX2).
pub fn vnni_table() -> Option<&'static KernelTable> {
    (has_avx2() && has_vnni()).then_some(&VNNI)
}

/// Replaces the entries of `table` that this CPU runs faster (`dispatch::best`).
pub fn plug(table: &mut KernelTable) {
    if let Some(t) = vnni_table().or_else(avx2_table) {
        *table = *t;
    }
}

fn relu(zero_point: i32, input: &[u8], out: &mut [u8]) {
    match i8::try_from(zero_point) {
        Ok(zp) => elementwise::relu_avx2(zp, input, out),
        Err(_) => super::reference::relu(zero_point, input, out),
    }
}

fn conv_pack(packed: Option<&Packed>) -> Option<&conv::ConvPack> {
    packed.and_then(Packed::get)
}

fn avx2_pack(packed: Option<&Packed>) -> Option<&avx2::Pack> {
    packed.and_then(Packed::get)
}

fn conv2d_avx2(g: &ConvGeometry, x: &[u8], w: &[u8], b: &[u8], spec: &OutSpec, out: &mut [u8], packed: Option<&Packed>) {
    let pack = avx2_pack(packed);
    if !avx2::conv2d(g, x, w, b, spec, out, pack) && !avx2::conv2d_stride2(g, x, w, b, spec, out, pack) {
        conv::conv2d_avx2(g, x, w, b, spec, out)
    }
}

fn conv_transpose2d_avx2(g: &ConvGeometry, x: &[u8], w: &[u8], b: &[u8], spec: &OutSpec, out: &mut [u8], packed: Option<&Packed>) {
    if !avx2::conv_transpose2d(g, x, w, b, spec, out, packed.and_then(Packed::get)) {
        super::portable::conv_transpose2d(g, x, w, b, spec, out)
    }
}

/// The prepare step of the AVX2 table: each convolution's weights packed once.
fn pack_avx2(layer: &Layer, weights: &[u8], bias: &[u8]) -> Option<Packed> {
    let boxed: Box<dyn core::any::Any + Send + Sync> = match *layer {
        Layer::Conv(g) => Box::new(avx2::pack(&g, weights, bias)?),
        Layer::ConvTranspose(g) => Box::new(avx2::pack_transposed(&g, weights, bias)?),
        Layer::Dense { .. } => return None,
    };
    Some(Packed(boxed))
}

fn conv2d_vnni(g: &ConvGeometry, x: &[u8], w: &[u8], b: &[u8], spec: &OutSpec, out: &mut [u8], packed: Option<&Packed>) {
    let pack = conv_pack(packed);
    if !conv::conv2d_vnni(g, x, w, b, spec, out, pack) && !conv::conv2d_stride2_vnni(g, x, w, b, spec, out, pack) {
        conv::conv2d_avx2(g, x, w, b, spec, out)
    }
}

fn conv_transpose2d_vnni(g: &ConvGeometry, x: &[u8], w: &[u8], b: &[u8], spec: &OutSpec, out: &mut [u8], packed: Option<&Packed>) {
    if !conv::conv_transpose2d_vnni(g, x, w, b, spec, out, conv_pack(packed)) {
        super::portable::conv_transpose2d(g, x, w, b, spec, out)
    }
}

fn fully_connected_vnni(x: &[u8], zp: i32, w: &[u8], b: &[u8], n: usize, spec: &OutSpec, out: &mut [u8], packed: Option<&Packed>) {
    if !dense::fully_connected_vnni(x, zp, w, b, n, spec, out, packed.and_then(Packed::get)) {
        super::portable::fully_connected(x, zp, w, b, n, spec, out)
    }
}

/// The prepare step of the VNNI table: each weighted layer's weights packed once.
fn pack(layer: &Layer, weights: &[u8], bias: &[u8]) -> Option<Packed> {
    let boxed: Box<dyn core::any::Any + Send + Sync> = match *layer {
        Layer::Conv(g) => Box::new(conv::pack(false, &g, weights, bias)?),
        Layer::ConvTranspose(g) => Box::new(conv::pack(true, &g, weights, bias)?),
        Layer::Dense { inputs, outputs, input_zero_point } => Box::new(dense::pack(inputs, outputs, input_zero_point, weights, bias)?),
    };
    Some(Packed(boxed))
}

/// Whether this CPU runs [`conv2d_vnni`] and [`add_avx512`] (AVX-512 F, BW, VL and VNNI).
pub fn has_vnni() -> bool {
    std::is_x86_feature_detected!("avx512f")
        && std::is_x86_feature_detected!("avx512bw")
        && std::is_x86_feature_detected!("avx512vl")
        && std::is_x86_feature_detected!("avx512vnni")
}

/// Whether this CPU runs the 16-lane `libm` replicas below (AVX-512 F).
pub fn has_avx512f() -> bool {
    std::is_x86_feature_detected!("avx512f")
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
