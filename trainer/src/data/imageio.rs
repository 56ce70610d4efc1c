//! Pictures in and out: 8-bit grayscale PNG reading (for `score`) and writing (sample grids,
//! reconstructions), written atomically.

use anyhow::{ensure, Context, Result};
use std::path::Path;

/// Encodes an 8-bit grayscale image as PNG bytes.
pub fn encode_gray_png(width: usize, height: usize, pixels: &[u8]) -> Result<Vec<u8>> {
    ensure!(pixels.len() == width * height, "image buffer holds {} pixels, expected {width}x{height}", pixels.len());
    let mut out = Vec::new();
    {
        let mut enc = png::Encoder::new(&mut out, width as u32, height as u32);
        enc.set_color(png::ColorType::Grayscale);
        enc.set_depth(png::BitDepth::Eight);
        let mut w = enc.write_header()?;
        w.write_image_data(pixels)?;
    }
    Ok(out)
}

/// Writes an 8-bit grayscale PNG atomically.
pub fn write_gray_png(path: &Path, width: usize, height: usize, pixels: &[u8]) -> Result<()> {
    crate::data::write_atomic(path, &encode_gray_png(width, height, pixels)?)
}

/// Reads a PNG that must be 8-bit grayscale; returns (width, height, pixels).
pub fn read_gray_png(path: &Path) -> Result<(usize, usize, Vec<u8>)> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    decode_gray_png(&bytes).with_context(|| format!("{}", path.display()))
}

/// Decodes PNG bytes that must hold an 8-bit grayscale image.
pub fn decode_gray_png(bytes: &[u8]) -> Result<(usize, usize, Vec<u8>)> {
    let decoder = png::Decoder::new(std::io::Cursor::new(bytes));
    let mut reader = decoder.read_info().context("not a readable PNG")?;
    let info = reader.info();
    let (w, h) = (info.width as usize, info.height as usize);
    ensure!(w <= 4096 && h <= 4096, "PNG is {w}x{h}, larger than any frame edgegen reads");
    ensure!(
        info.color_type == png::ColorType::Grayscale && info.bit_depth == png::BitDepth::Eight,
        "PNG is {:?} at {:?} bits; edgegen reads 8-bit grayscale",
        info.color_type,
        info.bit_depth
    );
    let mut buf = vec![0u8; reader.output_buffer_size()];
    let frame = reader.next_frame(&mut buf).context("corrupt PNG data")?;
    buf.truncate(frame.buffer_size());
    ensure!(buf.len() == w * h, "PNG decoded to {} bytes for {w}x{h}", buf.len());
    Ok((w, h, buf))
}

/// Tiles square `side`×`side` images into a grid of `cols` columns with a `gap`-pixel
/// border of value `border`; returns (width, height, pixels).
pub fn grid(images: &[&[u8]], side: usize, cols: usize, gap: usize, border: u8) -> (usize, usize, Vec<u8>) {
    let rows = images.len().div_ceil(cols.max(1));
    let w = cols * (side + gap) + gap;
    let h = rows * (side + gap) + gap;
    let mut out = vec![border; w * h];
    for (i, img) in images.iter().enumerate() {
        let (r, c) = (i / cols, i % cols);
        let (y0, x0) = (gap + r * (side + gap), gap + c * (side + gap));
        for y in 0..side {
            out[(y0 + y) * w + x0..(y0 + y) * w + x0 + side].copy_from_slice(&img[y * side..(y + 1) * side]);
        }
    }
    (w, h, out)
}

/// Enlarges an image `factor` times by pixel replication (for legible grids).
pub fn upscale(w: usize, h: usize, pixels: &[u8], factor: usize) -> (usize, usize, Vec<u8>) {
    let (nw, nh) = (w * factor, h * factor);
    let mut out = vec![0u8; nw * nh];
    for y in 0..nh {
        for x in 0..nw {
            out[y * nw + x] = pixels[(y / factor) * w + x / factor];
        }
    }
    (nw, nh, out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn png_round_trip_and_rejects_garbage() {
        let pixels: Vec<u8> = (0..28 * 28).map(|i| (i % 256) as u8).collect();
        let bytes = encode_gray_png(28, 28, &pixels).unwrap();
        assert_eq!(decode_gray_png(&bytes).unwrap(), (28, 28, pixels));
        assert!(decode_gray_png(b"not a png").is_err());
        assert!(decode_gray_png(&bytes[..bytes.len() / 2]).is_err());
    }

    #[test]
    fn grid_places_tiles() {
        let a = [1u8; 4];
        let b = [2u8; 4];
        let (w, h, g) = grid(&[&a, &b, &a], 2, 2, 1, 0);
        assert_eq!((w, h), (7, 7));
        assert_eq!(g[w + 1], 1);
        assert_eq!(g[w + 4], 2);
        assert_eq!(g[4 * w + 1], 1);
        assert_eq!(g[4 * w + 4], 0);
    }
}
