//! Tiles cut from one photograph, for a use case whose images are textures (a microscope
//! slide, a surface under inspection): the photograph is split into three horizontal bands
//! by rows — the top 70% for training, the next 15% for validation, the last 15% for test —
//! and square tiles are cut inside each band with a fixed stride, so no test or validation
//! tile shares a single pixel with a training tile. Tiles are written as PNG files into
//! `train/`, `validation/` and `test/` subfolders (the explicit split of
//! [`super::folder`]), named by their position: `y0123-x0456.png`.

use anyhow::{bail, ensure, Context, Result};
use std::path::Path;

/// The rows of each band, as fractions of the height: training, validation, test.
pub const BANDS: [(f64, f64); 3] = [(0.0, 0.70), (0.70, 0.85), (0.85, 1.0)];

/// Names of the parts, in band order.
pub const PARTS: [&str; 3] = ["train", "validation", "test"];

/// How many tiles went where.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TileCounts {
    /// Training tiles.
    pub train: usize,
    /// Validation tiles.
    pub validation: usize,
    /// Test tiles.
    pub test: usize,
}

/// The tile origins `(y, x)` of one band of a `height × width` picture.
pub fn origins(height: u32, width: u32, band: (f64, f64), size: u32, stride: u32) -> Vec<(u32, u32)> {
    let (top, bottom) = ((band.0 * height as f64).round() as u32, (band.1 * height as f64).round() as u32);
    let mut out = Vec::new();
    let mut y = top;
    while y + size <= bottom {
        let mut x = 0;
        while x + size <= width {
            out.push((y, x));
            x += stride;
        }
        y += stride;
    }
    out
}

/// Cuts `picture` into `size`×`size` tiles every `stride` pixels, band by band, into
/// `out/{train,validation,test}/`, keeping the picture's colour (RGB) or gray. Refuses an
/// existing `out` (never overwrites); writes into `out.partial` and renames it at the end.
pub fn cut(picture: &Path, out: &Path, size: u32, stride: u32, rgb: bool) -> Result<TileCounts> {
    ensure!(size >= 4 && stride >= 1, "tiles must be at least 4 pixels and the stride positive");
    if out.exists() {
        bail!("{} exists; remove it or choose another --out (tiles are never overwritten)", out.display());
    }
    let img = image::open(picture).with_context(|| format!("cannot read {}", picture.display()))?;
    let (w, h) = (img.width(), img.height());
    ensure!(w >= size && h >= size * 7, "{}: {w}x{h} is too small for {size}-pixel tiles in three bands", picture.display());
    let partial = out.with_extension("partial");
    std::fs::remove_dir_all(&partial).ok();
    let mut counts = [0usize; 3];
    for (b, (&band, part)) in BANDS.iter().zip(PARTS).enumerate() {
        let dir = partial.join(part);
        std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
        for (y, x) in origins(h, w, band, size, stride) {
            let tile = img.crop_imm(x, y, size, size);
            let path = dir.join(format!("y{y:04}-x{x:04}.png"));
            let saved = if rgb { tile.to_rgb8().save(&path) } else { tile.to_luma8().save(&path) };
            saved.with_context(|| format!("cannot write {}", path.display()))?;
            counts[b] += 1;
        }
        ensure!(counts[b] > 0, "{}: the {part} band holds no {size}-pixel tile", picture.display());
    }
    std::fs::rename(&partial, out).with_context(|| format!("cannot rename {} to {}", partial.display(), out.display()))?;
    Ok(TileCounts { train: counts[0], validation: counts[1], test: counts[2] })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Bands never share a pixel; tiles stay inside the picture.
    #[test]
    fn bands_do_not_overlap() {
        let (h, w, size) = (512, 512, 32);
        let parts: Vec<Vec<(u32, u32)>> = BANDS.iter().map(|&b| origins(h, w, b, size, 4)).collect();
        assert_eq!(parts.iter().map(|p| p.len()).collect::<Vec<_>>(), [121 * 82, 121 * 12, 121 * 12]);
        for (a, b) in [(0, 1), (1, 2), (0, 2)] {
            let last_a = parts[a].iter().map(|&(y, _)| y + size).max().unwrap();
            let first_b = parts[b].iter().map(|&(y, _)| y).min().unwrap();
            assert!(last_a <= first_b, "band {a} ends at {last_a}, band {b} starts at {first_b}");
        }
        assert!(parts.iter().flatten().all(|&(y, x)| y + size <= h && x + size <= w));
    }

    #[test]
    fn cut_writes_the_split_and_never_overwrites() {
        let d = std::env::temp_dir().join(format!("edgegen-tiles-{}", std::process::id()));
        std::fs::remove_dir_all(&d).ok();
        std::fs::create_dir_all(&d).unwrap();
        let pic = d.join("p.png");
        image::RgbImage::from_fn(40, 80, |x, y| image::Rgb([x as u8, y as u8, 7])).save(&pic).unwrap();
        let out = d.join("tiles");
        let n = cut(&pic, &out, 8, 8, true).unwrap();
        assert_eq!((n.train, n.validation, n.test), (35, 5, 5));
        let t = image::open(out.join("validation/y0056-x0016.png")).unwrap().to_rgb8();
        assert_eq!(t.get_pixel(1, 2).0, [17, 58, 7]);
        assert!(cut(&pic, &out, 8, 8, true).unwrap_err().to_string().contains("never overwritten"));
        std::fs::remove_dir_all(d).ok();
    }
}
