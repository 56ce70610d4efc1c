//! Images as every model family sees them: 8-bit frames of the model's own geometry
//! (channels × height × width, stored planar: all of channel 0 row by row, then channel 1, …),
//! and the fixed affine map from pixel values to the network input range.

/// Most channels a frame may have (1 = grayscale, 3 = RGB).
pub const MAX_CHANNELS: u16 = 4;
/// Longest side a frame may have.
pub const MAX_SIDE: u16 = 4096;
/// Most values (sub-pixels) a frame may have.
pub const MAX_VALUES: usize = 1 << 24;

/// A model's image geometry: stored in its model file (version 2 on), taken by every engine,
/// likelihood and guard score from there.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Geometry {
    /// Channels (1 = grayscale, 3 = RGB).
    pub channels: u16,
    /// Rows.
    pub height: u16,
    /// Columns.
    pub width: u16,
}

impl Geometry {
    /// The geometry of every version-1 model file (they predate stored geometry: 28×28 gray).
    pub const VERSION_1: Geometry = Geometry { channels: 1, height: 28, width: 28 };

    /// A geometry, checked: 1..=[`MAX_CHANNELS`] channels, sides 1..=[`MAX_SIDE`], at most
    /// [`MAX_VALUES`] values.
    pub fn new(channels: u16, height: u16, width: u16) -> Result<Geometry, crate::Error> {
        let g = Geometry { channels, height, width };
        if !(1..=MAX_CHANNELS).contains(&channels)
            || !(1..=MAX_SIDE).contains(&height)
            || !(1..=MAX_SIDE).contains(&width)
            || g.values() > MAX_VALUES
        {
            return Err(crate::Error::InvalidParameter("image geometry must have 1..=4 channels, sides 1..=4096, at most 2^24 values"));
        }
        Ok(g)
    }

    /// Values per frame, `channels · height · width`: the "dimensions" of bits per dimension.
    pub const fn values(&self) -> usize {
        self.channels as usize * self.height as usize * self.width as usize
    }

    /// Values per channel plane, `height · width`.
    pub const fn plane(&self) -> usize {
        self.height as usize * self.width as usize
    }

    /// `[channels, height, width]`, as a tensor's dims.
    pub const fn dims(&self) -> [u16; 3] {
        [self.channels, self.height, self.width]
    }

    /// Checks that a frame has this geometry's length.
    pub fn check(&self, image: &[u8]) -> Result<(), crate::Error> {
        if image.len() != self.values() {
            return Err(crate::Error::LengthMismatch { expected: self.values(), got: image.len() });
        }
        Ok(())
    }
}

impl core::fmt::Display for Geometry {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "{}x{}x{}", self.height, self.width, self.channels)
    }
}

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
    fn geometry_is_checked() {
        let g = Geometry::new(3, 48, 64).unwrap();
        assert_eq!((g.values(), g.plane(), g.dims()), (3 * 48 * 64, 48 * 64, [3, 48, 64]));
        assert_eq!(std::format!("{g}"), "48x64x3");
        assert!(g.check(&[0; 3 * 48 * 64]).is_ok() && g.check(&[0; 48 * 64]).is_err());
        for (c, h, w) in [(0, 28, 28), (5, 28, 28), (1, 0, 28), (1, 28, 0), (1, 4097, 1), (4, 4096, 4096)] {
            assert!(Geometry::new(c, h, w).is_err(), "{c}x{h}x{w}");
        }
        assert_eq!(Geometry::VERSION_1.values(), 784);
    }

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
