//! A generic lossless coder's code length, for the complexity-corrected score (Serrà et al.
//! 2020: a model's bits/dim minus a generic compressor's, so that images that are simply
//! easy to compress — flat, smooth, dark — stop looking likely).
//!
//! The coder is LOCO-I (the JPEG-LS core): the median edge detector predicts each pixel from
//! its left, upper and upper-left neighbours, and the residual is coded with an adaptive
//! Golomb–Rice code whose parameter follows the running mean of recent residual magnitudes.
//! Like JPEG-LS's run mode, flat contexts (all three neighbours equal) first code one
//! adaptive binary flag "equal to the neighbours", costed at its ideal arithmetic-coding
//! length (Krichevsky–Trofimov counts), so flat backgrounds cost far below a bit per pixel.
//! A few operations per pixel: cheap enough for the guard on a microcontroller; `libm`
//! makes the length identical on every target.

/// Longest unary prefix before the escape code (JPEG-LS's `LIMIT` idea).
const UNARY_LIMIT: u32 = 24;
/// Bits of an escaped residual after the prefix.
const ESCAPE_BITS: u32 = 9;

/// Code length in bits of a `width`-wide 8-bit image (row-major), LOCO-I style.
pub fn code_length_bits(image: &[u8], width: usize) -> f64 {
    let mut bits = 0f64;
    // Flat-context flag counts (same, total), KT estimator.
    let (mut same, mut total) = (0u32, 0u32);
    // Running sum of |residual| and count (halved every 32 pixels, as JPEG-LS's RESET).
    let (mut a, mut n) = (16u32, 1u32);
    for (i, &x) in image.iter().enumerate() {
        let (r, c) = (i / width.max(1), i % width.max(1));
        let left = if c > 0 {
            image[i - 1] as i32
        } else if r > 0 {
            image[i - width] as i32
        } else {
            0
        };
        let up = if r > 0 { image[i - width] as i32 } else { left };
        let up_left = if r > 0 && c > 0 { image[i - width - 1] as i32 } else { up };
        let pred = if up_left >= left.max(up) {
            left.min(up)
        } else if up_left <= left.min(up) {
            left.max(up)
        } else {
            left + up - up_left
        };
        if left == up && up == up_left {
            let hit = x as i32 == left;
            let p_same = (same as f64 + 0.5) / (total as f64 + 1.0);
            bits += -libm::log2(if hit { p_same } else { 1.0 - p_same });
            same += hit as u32;
            total += 1;
            if hit {
                continue;
            }
        }
        let e = x as i32 - pred;
        let mapped = if e >= 0 { 2 * e as u32 } else { (-2 * e - 1) as u32 };
        let mut k = 0u32;
        while (n << k) < a && k < 8 {
            k += 1;
        }
        let q = mapped >> k;
        bits += (if q < UNARY_LIMIT { q + 1 + k } else { UNARY_LIMIT + ESCAPE_BITS }) as f64;
        a += e.unsigned_abs();
        n += 1;
        if n >= 32 {
            a = a.div_ceil(2);
            n /= 2;
        }
    }
    bits
}

/// The coder's bits per pixel of an image.
pub fn bits_per_dim(image: &[u8], width: usize) -> f64 {
    code_length_bits(image, width) / image.len().max(1) as f64
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::Rng;

    #[test]
    fn flat_images_are_cheap_and_noise_is_expensive() {
        let flat = [200u8; 784];
        let mut rng = Rng::new(1);
        let noise: [u8; 784] = core::array::from_fn(|_| rng.next_u32() as u8);
        let ramp: [u8; 784] = core::array::from_fn(|i| (i % 28 * 9) as u8);
        let (f, r, n) = (bits_per_dim(&flat, 28), bits_per_dim(&ramp, 28), bits_per_dim(&noise, 28));
        assert!(f < 0.1, "flat {f}");
        assert!(r < 2.0, "ramp {r}");
        assert!(n > 7.0 && n < 9.5, "noise {n}");
    }

    #[test]
    fn a_pixel_costs_at_most_the_escape() {
        let mut rng = Rng::new(2);
        for _ in 0..50 {
            let img: [u8; 784] = core::array::from_fn(|_| if rng.below(2) == 0 { 0 } else { 255 });
            // Rice prefix or escape, plus at most a flag per pixel (a flag never costs more
            // than ~10 bits after the first few pixels).
            assert!(code_length_bits(&img, 28) <= 784.0 * (UNARY_LIMIT + ESCAPE_BITS) as f64);
        }
    }
}
