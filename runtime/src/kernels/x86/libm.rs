//! 16-lane AVX-512 replicas of `libm`'s `expf`, `log1pf` and `logf`, bit for bit.
#![allow(unsafe_code)]

use core::arch::x86_64::*;

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
