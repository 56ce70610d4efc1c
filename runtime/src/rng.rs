//! A seeded random number generator that produces the same stream on every target.
//!
//! PCG32 (O'Neill, XSH-RR variant) for integers; uniforms built from the top 24 bits so they
//! are exact in `f32`; normals by Box–Muller using the pure-Rust `libm`, never the platform's
//! maths library, so a seed gives bit-identical samples on x86-64, aarch64 and Cortex-M.

/// PCG32 random number generator. Deterministic for a given seed on every target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rng {
    state: u64,
    inc: u64,
    /// Second normal deviate left over from the last Box–Muller pair.
    spare: Option<u32>,
}

const MULTIPLIER: u64 = 6364136223846793005;

impl Rng {
    /// A generator for `seed` on the default stream.
    pub fn new(seed: u64) -> Self {
        Self::with_stream(seed, 0xda3e_39cb_94b9_5bdb)
    }

    /// A generator for `seed` on stream `stream`; different streams are independent sequences.
    pub fn with_stream(seed: u64, stream: u64) -> Self {
        let mut rng = Rng { state: 0, inc: (stream << 1) | 1, spare: None };
        rng.next_u32();
        rng.state = rng.state.wrapping_add(seed);
        rng.next_u32();
        rng
    }

    /// The next 32 uniformly distributed bits.
    pub fn next_u32(&mut self) -> u32 {
        let old = self.state;
        self.state = old.wrapping_mul(MULTIPLIER).wrapping_add(self.inc);
        let xorshifted = (((old >> 18) ^ old) >> 27) as u32;
        let rot = (old >> 59) as u32;
        xorshifted.rotate_right(rot)
    }

    /// A uniform number in the open interval (0, 1): never exactly 0 or 1, so its logarithm
    /// and the logarithm of its complement are always finite.
    pub fn uniform(&mut self) -> f32 {
        ((self.next_u32() >> 8) as f32 + 0.5) * (1.0 / 16_777_216.0)
    }

    /// A uniform integer in `0..n` (`n` > 0), by rejection, so without modulo bias.
    pub fn below(&mut self, n: u32) -> u32 {
        debug_assert!(n > 0);
        let threshold = n.wrapping_neg() % n;
        loop {
            let r = self.next_u32();
            if r >= threshold {
                return r % n;
            }
        }
    }

    /// A standard normal deviate (mean 0, variance 1), by the Box–Muller transform.
    pub fn normal(&mut self) -> f32 {
        if let Some(bits) = self.spare.take() {
            return f32::from_bits(bits);
        }
        let u1 = self.uniform();
        let u2 = self.uniform();
        let radius = libm::sqrtf(-2.0 * libm::logf(u1));
        // One range reduction for both: bit for bit `sinf` and `cosf` at every angle a
        // uniform gives (`sincos_is_sin_and_cos_at_every_angle`), in half the code.
        let (sin, cos) = libm::sincosf(2.0 * core::f32::consts::PI * u2);
        self.spare = Some((radius * sin).to_bits());
        radius * cos
    }

    /// Fills `out` with standard normal deviates.
    pub fn fill_normal(&mut self, out: &mut [f32]) {
        for v in out {
            *v = self.normal();
        }
    }
}

#[cfg(test)]
mod tests {

    /// `normal` takes its sine and cosine from one `sincosf`: the same bits as `sinf` and
    /// `cosf` at every one of the 2^24 angles `2π · uniform()` can be, so every seed's
    /// deviates are what they were.
    #[test]
    fn sincos_is_sin_and_cos_at_every_angle() {
        for k in 0u32..1 << 24 {
            let a = 2.0 * core::f32::consts::PI * ((k as f32 + 0.5) * (1.0 / 16_777_216.0));
            let (s, c) = libm::sincosf(a);
            assert!(s.to_bits() == libm::sinf(a).to_bits() && c.to_bits() == libm::cosf(a).to_bits(), "angle {a} (k = {k})");
        }
    }

    use super::*;

    #[test]
    fn pcg32_matches_reference_stream() {
        // Reference values of O'Neill's pcg32 demo: seed 42, stream 54.
        let mut rng = Rng::with_stream(42, 54);
        let expected = [0xa15c02b7u32, 0x7b47f409, 0xba1d3330, 0x83d2f293, 0xbfa4784b, 0xcbed606e];
        for e in expected {
            assert_eq!(rng.next_u32(), e);
        }
    }

    #[test]
    fn uniform_is_open_interval_and_normal_has_unit_moments() {
        let mut rng = Rng::new(7);
        let n = 200_000;
        let (mut sum, mut sq) = (0f64, 0f64);
        for _ in 0..n {
            let u = rng.uniform();
            assert!(u > 0.0 && u < 1.0);
            let z = rng.normal() as f64;
            sum += z;
            sq += z * z;
        }
        let mean = sum / n as f64;
        let var = sq / n as f64 - mean * mean;
        assert!(mean.abs() < 0.01, "mean {mean}");
        assert!((var - 1.0).abs() < 0.02, "var {var}");
    }

    #[test]
    fn below_stays_in_range() {
        let mut rng = Rng::new(1);
        let mut seen = [0u32; 5];
        for _ in 0..10_000 {
            seen[rng.below(5) as usize] += 1;
        }
        assert!(seen.iter().all(|&c| c > 1800), "{seen:?}");
    }
}
