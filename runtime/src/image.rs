//! Image geometry shared by every model family: 28×28 single-channel 8-bit frames, and the
//! fixed affine map from pixel values to the network input range.

/// Image height in pixels.
pub const HEIGHT: usize = 28;
/// Image width in pixels.
pub const WIDTH: usize = 28;
/// Pixels per image (the "dimensions" in bits per dimension).
pub const PIXELS: usize = HEIGHT * WIDTH;

/// Maps an 8-bit pixel value to the network input range: `x / 127.5 - 1`, so 0 → -1.0 and
/// 255 → 1.0. Every model's input and every pixel distribution use this scale.
#[inline]
pub fn scale_pixel(x: u8) -> f32 {
    x as f32 / 127.5 - 1.0
}

/// Maps a value on the network scale back to the nearest 8-bit pixel value, clamping
/// out-of-range values to 0 or 255.
#[inline]
pub fn unscale_pixel(v: f32) -> u8 {
    let k = libm::roundf((v + 1.0) * 127.5);
    if k.is_nan() || k <= 0.0 {
        0
    } else if k >= 255.0 {
        255
    } else {
        k as u8
    }
}

/// Scales a whole image into `out` (see [`scale_pixel`]). Both slices must have equal length.
pub fn scale_image(image: &[u8], out: &mut [f32]) -> Result<(), crate::Error> {
    if image.len() != out.len() {
        return Err(crate::Error::LengthMismatch { expected: image.len(), got: out.len() });
    }
    for (o, &x) in out.iter_mut().zip(image) {
        *o = scale_pixel(x);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scale_round_trips_every_value() {
        for x in 0..=255u8 {
            assert_eq!(unscale_pixel(scale_pixel(x)), x);
        }
        assert_eq!(scale_pixel(0), -1.0);
        assert_eq!(scale_pixel(255), 1.0);
        assert_eq!(unscale_pixel(f32::NAN), 0);
        assert_eq!(unscale_pixel(7.0), 255);
    }
}
