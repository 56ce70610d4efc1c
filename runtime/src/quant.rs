//! Fixed-point arithmetic of the int8 path, bit-exact with the TFLite int8 specification
//! (gemmlowp's `SaturatingRoundingDoublingHighMul` and `RoundingDivideByPOT`). Integer
//! only, so every target computes the same bits.

/// `(a · b · 2) >> 32` rounded to nearest, saturating the one overflow case
/// (`i32::MIN · i32::MIN`).
#[inline]
pub fn saturating_rounding_doubling_high_mul(a: i32, b: i32) -> i32 {
    if a == i32::MIN && b == i32::MIN {
        return i32::MAX;
    }
    // gemmlowp adds a nudge of 2^30 (ab ≥ 0) or 1 − 2^30 (ab < 0) and divides by 2^31
    // truncating toward zero. For ab < 0 that is ⌈(ab + 1 − 2^30) / 2^31⌉ =
    // ⌊(ab + 1 − 2^30 + 2^31 − 1) / 2^31⌋ = ⌊(ab + 2^30) / 2^31⌋, the same floor as for
    // ab ≥ 0: one add and an arithmetic shift, no sign test (SMULL, ADDS, ADC and two
    // shifts on a Cortex-M4). `high_mul_equals_gemmlowp` checks it against the definition.
    ((a as i64 * b as i64 + (1 << 30)) >> 31) as i32
}

/// `x / 2^exponent` rounded to nearest, ties away from zero (`exponent` in 0..=31).
#[inline]
pub fn rounding_divide_by_pot(x: i32, exponent: i32) -> i32 {
    debug_assert!((0..=31).contains(&exponent));
    let mask = ((1i64 << exponent) - 1) as i32;
    let remainder = x & mask;
    let threshold = (mask >> 1) + ((x < 0) as i32);
    (x >> exponent) + ((remainder > threshold) as i32)
}

/// `x · multiplier · 2^shift / 2^31`, TFLite's `MultiplyByQuantizedMultiplier`: the
/// requantization of an int32 accumulator by a real scale folded into (multiplier, shift).
#[inline]
pub fn multiply_by_quantized_multiplier(x: i32, multiplier: i32, shift: i32) -> i32 {
    let left = if shift > 0 { shift } else { 0 };
    let right = if shift > 0 { 0 } else { -shift };
    rounding_divide_by_pot(saturating_rounding_doubling_high_mul(x.wrapping_mul(1 << left), multiplier), right)
}

/// [`multiply_by_quantized_multiplier`] for one `(multiplier, shift)` applied to many
/// accumulators, with what does not depend on the accumulator worked out once: the shifts,
/// the rounding mask and threshold, and the saturation case (which needs a multiplier of
/// `i32::MIN`, never one [`quantize_multiplier`] makes). The same integer steps, so the same
/// bits (`requantizer_equals_the_definition`); `None` for the pairs it does not cover.
#[derive(Debug, Clone, Copy)]
pub struct Requantizer {
    multiplier: i32,
    left: u32,
    right: u32,
    mask: i32,
    half: i32,
}

impl Default for Requantizer {
    /// The identity: multiplier 2^30, shift 1 (x · 2^30 · 2 / 2^31 = x).
    fn default() -> Self {
        Requantizer { multiplier: 1 << 30, left: 1, right: 0, mask: 0, half: 0 }
    }
}

/// [`multiply_by_quantized_multiplier`] in the case the compiler writes for nearly every
/// channel — a right shift (`shift` in −31..=−1) and a multiplier in (2^30, 2^31) — as one
/// 32×32→64 multiply-accumulate and one shift (SMLAL and ASR on a Cortex-M).
///
/// With `P = x·m` and `e = −shift`, the high multiply is `h = ⌊(P + 2^30) / 2^31⌋` and the
/// rounding division `⌊(h + 2^(e−1) − [h < 0]) / 2^e⌋`; nested floors of integer shifts
/// merge, so the result is `⌊(P + 2^30 + 2^(e+30) − [h < 0]·2^31) / 2^(31+e)⌋`, i.e. the high
/// word of `P + c` shifted right by `e − 1`. With `m > 2^30`, `h < 0` exactly when `x < 0`
/// (for `x = −1`, `P = −m < −2^30`), so the constant depends on the sign of `x` alone. The
/// same bits as the definition (`rounding_requantizer_equals_the_definition`).
#[derive(Debug, Clone, Copy)]
pub struct RoundingRequantizer {
    multiplier: i32,
    c: i64,
    k: u32,
}

impl RoundingRequantizer {
    /// The requantizer of `(multiplier, shift)` when `shift` is in −31..=−1 and
    /// `multiplier` in (2^30, 2^31).
    #[inline]
    pub fn new(multiplier: i32, shift: i32) -> Option<Self> {
        if multiplier <= 1 << 30 || !(-31..=-1).contains(&shift) {
            return None;
        }
        let e = (-shift) as u32;
        Some(RoundingRequantizer { multiplier, c: (1i64 << 30) + (1i64 << (e + 30)), k: e - 1 })
    }

    /// `multiply_by_quantized_multiplier(x, multiplier, shift)`.
    #[inline(always)]
    pub fn apply(&self, x: i32) -> i32 {
        let c = self.c + (((x >> 31) as i64) << 31);
        (((x as i64 * self.multiplier as i64 + c) >> 32) as i32) >> self.k
    }

    /// The multiplier, the constant for `x ≥ 0` (for `x < 0` it is `c − 2^31`) and the
    /// final shift `k = e − 1`: what an assembly version needs.
    pub fn parts(&self) -> (i32, i64, u32) {
        (self.multiplier, self.c, self.k)
    }
}

impl Requantizer {
    /// The requantizer of `(multiplier, shift)`, when the multiplier is not `i32::MIN` and
    /// the shift within ±31.
    #[inline]
    pub fn new(multiplier: i32, shift: i32) -> Option<Self> {
        if multiplier == i32::MIN || !(-31..=31).contains(&shift) {
            return None;
        }
        let (left, right) = (shift.max(0) as u32, (-shift).max(0) as u32);
        let mask = ((1i64 << right) - 1) as i32;
        Some(Requantizer { multiplier, left, right, mask, half: mask >> 1 })
    }

    /// `multiply_by_quantized_multiplier(x, multiplier, shift)`.
    #[inline(always)]
    pub fn apply(&self, x: i32) -> i32 {
        // i32 × i32 → i64: one SMULL on a Cortex-M.
        let h = ((x.wrapping_shl(self.left) as i64 * self.multiplier as i64 + (1 << 30)) >> 31) as i32;
        (h >> self.right) + (((h & self.mask) > self.half + (h < 0) as i32) as i32)
    }
}

/// Folds a positive real scale into an int32 multiplier in [2^30, 2^31) and a shift, so
/// `multiply_by_quantized_multiplier(x, m, s) ≈ x · scale` (TFLite's `QuantizeMultiplier`).
/// Returns `None` for scales that cannot be represented (non-finite, ≤ 0, or ≥ 2^30).
/// Scales below 2^-32 give `(0, 0)`, as TFLite does: no int32 accumulator then moves the
/// result by half a step (a channel whose weights decayed to nothing).
pub fn quantize_multiplier(scale: f64) -> Option<(i32, i32)> {
    if !(scale.is_finite() && scale > 0.0) {
        return None;
    }
    let (q, mut shift) = libm::frexp(scale);
    let mut m = libm::round(q * (1i64 << 31) as f64) as i64;
    if m == 1i64 << 31 {
        m /= 2;
        shift += 1;
    }
    if shift < -31 {
        return Some((0, 0));
    }
    if shift > 30 {
        return None;
    }
    Some((m as i32, shift))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tiny_scales_fold_to_zero_and_huge_ones_fail() {
        assert_eq!(quantize_multiplier(4.5e-13), Some((0, 0)));
        assert_eq!(multiply_by_quantized_multiplier(i32::MAX, 0, 0), 0);
        assert!(quantize_multiplier(2f64.powi(31)).is_none());
        assert!(quantize_multiplier(0.0).is_none());
        let (m, s) = quantize_multiplier(0.25).unwrap();
        assert_eq!(multiply_by_quantized_multiplier(1000, m, s), 250);
    }

    #[test]
    fn high_mul_matches_definition() {
        for &(a, b) in &[(1 << 30, 1 << 30), (-12345, 1 << 30), (i32::MAX, i32::MAX), (7, -3), (i32::MIN, i32::MAX)] {
            let exact = (a as f64) * (b as f64) / (1u64 << 31) as f64;
            assert!((saturating_rounding_doubling_high_mul(a, b) as f64 - exact).abs() <= 0.5 + 1e-9, "{a} {b}");
        }
        assert_eq!(saturating_rounding_doubling_high_mul(i32::MIN, i32::MIN), i32::MAX);
    }

    /// gemmlowp's definition, spelled out (nudge by sign, divide truncating toward zero).
    fn gemmlowp_high_mul(a: i32, b: i32) -> i32 {
        if a == i32::MIN && b == i32::MIN {
            return i32::MAX;
        }
        let ab = a as i64 * b as i64;
        let nudge: i64 = if ab >= 0 { 1 << 30 } else { 1 - (1 << 30) };
        ((ab + nudge) / (1i64 << 31)) as i32
    }

    #[test]
    fn rounding_requantizer_equals_the_definition() {
        let mut rng = crate::rng::Rng::new(11);
        let specials = [0, 1, -1, 2, -2, i32::MIN, i32::MIN + 1, i32::MAX, i32::MAX - 1, 1 << 30, -(1 << 30)];
        for shift in -31..=-1 {
            for trial in 0..400 {
                let m = match trial {
                    0 => (1 << 30) + 1,
                    1 => i32::MAX,
                    _ => (1 << 30) + (rng.next_u32() >> 2) as i32 + 1,
                };
                let r = RoundingRequantizer::new(m, shift).unwrap();
                for &x in &specials {
                    assert_eq!(r.apply(x), multiply_by_quantized_multiplier(x, m, shift), "x {x} m {m} shift {shift}");
                }
                for _ in 0..200 {
                    // Accumulator-sized values and full-range ones, around rounding ties too.
                    let wide = rng.next_u32() as i32;
                    let x = if trial % 2 == 0 { wide >> (rng.next_u32() % 31) } else { wide };
                    for x in [x, x.wrapping_add(1), x.wrapping_sub(1)] {
                        assert_eq!(r.apply(x), multiply_by_quantized_multiplier(x, m, shift), "x {x} m {m} shift {shift}");
                    }
                }
            }
        }
        // Outside its domain it declines.
        assert!(RoundingRequantizer::new(1 << 30, -3).is_none());
        assert!(RoundingRequantizer::new((1 << 30) + 5, 0).is_none());
        assert!(RoundingRequantizer::new((1 << 30) + 5, 2).is_none());
        assert!(RoundingRequantizer::new(-5, -2).is_none());
    }

    #[test]
    fn high_mul_equals_gemmlowp() {
        let mut rng = crate::rng::Rng::new(7);
        let edges =
            [0, 1, -1, 2, -2, 1 << 30, -(1 << 30), (1 << 30) + 1, -(1 << 30) - 1, i32::MAX, i32::MIN, i32::MIN + 1, 3 << 29, -(3 << 29)];
        for &a in &edges {
            for &b in &edges {
                assert_eq!(saturating_rounding_doubling_high_mul(a, b), gemmlowp_high_mul(a, b), "{a} {b}");
            }
        }
        for _ in 0..200_000 {
            let (a, b) = (rng.next_u32() as i32, rng.next_u32() as i32);
            // Small products too, where the rounding boundaries are dense.
            let small = (a >> (rng.next_u32() % 31), b >> (rng.next_u32() % 31));
            for (a, b) in [(a, b), small, (a, 1 << 30), (small.0, -(b.abs() >> 1))] {
                assert_eq!(saturating_rounding_doubling_high_mul(a, b), gemmlowp_high_mul(a, b), "{a} {b}");
            }
        }
        // Exactly on the rounding boundaries: ab = k·2^31 ± 2^30 (+ 0, ±1).
        for k in -4i64..=4 {
            for d in [-1i64, 0, 1] {
                let ab = k * (1 << 31) + (1 << 30) + d;
                let ab_neg = k * (1 << 31) - (1 << 30) + d;
                for ab in [ab, ab_neg] {
                    if ab % 2 == 0 {
                        let (a, b) = ((ab / 2) as i32, 2);
                        assert_eq!(saturating_rounding_doubling_high_mul(a, b), gemmlowp_high_mul(a, b), "{a} {b}");
                    }
                    let (a, b) = (ab as i32, 1);
                    if a as i64 == ab {
                        assert_eq!(saturating_rounding_doubling_high_mul(a, b), gemmlowp_high_mul(a, b), "{a} {b}");
                    }
                }
            }
        }
    }

    #[test]
    fn divide_rounds_half_away_from_zero() {
        assert_eq!(rounding_divide_by_pot(5, 1), 3);
        assert_eq!(rounding_divide_by_pot(-5, 1), -3);
        assert_eq!(rounding_divide_by_pot(4, 1), 2);
        assert_eq!(rounding_divide_by_pot(-7, 2), -2);
        assert_eq!(rounding_divide_by_pot(6, 2), 2);
        assert_eq!(rounding_divide_by_pot(123, 0), 123);
    }

    #[test]
    fn requantizer_equals_the_definition() {
        let mut rng = crate::rng::Rng::new(5);
        let mut xs: Vec<i32> = vec![0, 1, -1, i32::MAX, i32::MIN, i32::MIN + 1, 1 << 30, -(1 << 30)];
        xs.extend((0..20_000).map(|_| rng.next_u32() as i32));
        xs.extend((0..20_000).map(|_| (rng.next_u32() as i32) >> rng.below(31)));
        for shift in -31..=31 {
            for m in [1 << 30, (1 << 30) + 1, i32::MAX, 1_518_500_250, 0, 1, -5] {
                let r = Requantizer::new(m, shift).unwrap();
                for &x in &xs {
                    assert_eq!(r.apply(x), multiply_by_quantized_multiplier(x, m, shift), "x {x} m {m} shift {shift}");
                }
            }
        }
        assert!(Requantizer::new(i32::MIN, 0).is_none() && Requantizer::new(1 << 30, 32).is_none());
    }

    #[test]
    fn requantization_approximates_the_real_scale() {
        for &scale in &[0.5f64, 0.0031, 1.7, 1e-6, 0.999_999_9, 3.0e-4] {
            let (m, s) = quantize_multiplier(scale).unwrap();
            assert!(m >= 1 << 30);
            for &x in &[0i32, 1, -1, 1000, -77_777, 1 << 20, -(1 << 24)] {
                let got = multiply_by_quantized_multiplier(x, m, s) as f64;
                let want = x as f64 * scale;
                assert!((got - want).abs() <= 0.5 + want.abs() * 1e-8, "scale {scale} x {x}: {got} vs {want}");
            }
        }
        assert!(quantize_multiplier(0.0).is_none());
        assert!(quantize_multiplier(f64::NAN).is_none());
        assert!(quantize_multiplier(1e20).is_none());
    }
}
