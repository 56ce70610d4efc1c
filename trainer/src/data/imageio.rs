//! Pictures in and out: any user's picture read as a frame of a model's geometry (PNG, JPEG,
//! BMP, TIFF, PGM/PPM through the `image` crate), and 8-bit PNG writing (sample grids,
//! reconstructions), written atomically.
//!
//! **Conversion, deterministic and documented:** a picture becomes `C` channels by the
//! `image` crate's conversions — to gray by its luma (ITU-R BT.709 weights: 0.2126 R +
//! 0.7152 G + 0.0722 B), to RGB by dropping alpha (no compositing) and repeating a gray
//! channel; 16-bit and float samples are scaled to 8 bits. A picture of another size is
//! refused unless resizing is asked for; then it is resized to exactly `H × W` with the
//! triangle (bilinear) filter, aspect ratio not kept. Frames are planar: channel by channel,
//! row by row.

use anyhow::{bail, ensure, Context, Result};
use edgegen_runtime::image::Geometry;
use std::path::Path;

/// File extensions read as pictures (lower case).
pub const PICTURE_EXTENSIONS: [&str; 9] = ["png", "jpg", "jpeg", "bmp", "tif", "tiff", "pgm", "ppm", "pnm"];

/// Whether `path` names a picture by its extension.
pub fn is_picture(path: &Path) -> bool {
    path.extension().and_then(|e| e.to_str()).is_some_and(|e| PICTURE_EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()))
}

/// Decodes picture bytes (any supported format, found by content) into a planar frame of
/// geometry `g`: converted to its channels, resized to its size when `resize` (else a size
/// mismatch is an error that says how to fix it).
pub fn decode_frame(bytes: &[u8], g: Geometry, resize: bool) -> Result<Vec<u8>> {
    let reader = image::ImageReader::new(std::io::Cursor::new(bytes)).with_guessed_format().context("cannot read the picture")?;
    let Some(format) = reader.format() else {
        bail!("not a picture edgegen reads (PNG, JPEG, BMP, TIFF, PGM/PPM) nor an IDX file");
    };
    let mut limits = image::Limits::default();
    limits.max_image_width = Some(16_384);
    limits.max_image_height = Some(16_384);
    limits.max_alloc = Some(1 << 30);
    let mut reader = reader;
    reader.limits(limits);
    let picture = reader.decode().with_context(|| format!("corrupt or unsupported {format:?} data"))?;
    let (w, h) = (picture.width(), picture.height());
    let (gw, gh) = (g.width as u32, g.height as u32);
    if (w, h) != (gw, gh) && !resize {
        bail!("the picture is {w}x{h} (width x height), the model takes {gw}x{gh}: pass --resize to resize it (bilinear, aspect ratio not kept)");
    }
    let filter = image::imageops::FilterType::Triangle;
    let plane = g.plane();
    let mut out = vec![0u8; g.values()];
    match g.channels {
        1 => {
            let mut gray = picture.to_luma8();
            if (w, h) != (gw, gh) {
                gray = image::imageops::resize(&gray, gw, gh, filter);
            }
            out.copy_from_slice(gray.as_raw());
        }
        3 => {
            let mut rgb = picture.to_rgb8();
            if (w, h) != (gw, gh) {
                rgb = image::imageops::resize(&rgb, gw, gh, filter);
            }
            for (p, px) in rgb.pixels().enumerate() {
                for c in 0..3 {
                    out[c * plane + p] = px.0[c];
                }
            }
        }
        c => bail!("models of {c} channels take no pictures (1 or 3)"),
    }
    Ok(out)
}

/// Reads a picture file as a frame of geometry `g` ([`decode_frame`]).
pub fn read_frame(path: &Path, g: Geometry, resize: bool) -> Result<Vec<u8>> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    decode_frame(&bytes, g, resize).with_context(|| format!("{}", path.display()))
}

/// Resizes one planar 8-bit frame from geometry `from` to `to`'s size (same channels), with
/// the same filter as [`decode_frame`].
pub fn resize_frame(frame: &[u8], from: Geometry, to: Geometry) -> Result<Vec<u8>> {
    ensure!(from.channels == to.channels && frame.len() == from.values(), "frame of {} values is not {from}", frame.len());
    if (from.height, from.width) == (to.height, to.width) {
        return Ok(frame.to_vec());
    }
    let mut out = Vec::with_capacity(to.values());
    for plane in frame.chunks(from.plane()) {
        let img = image::GrayImage::from_raw(from.width as u32, from.height as u32, plane.to_vec()).context("frame size")?;
        let r = image::imageops::resize(&img, to.width as u32, to.height as u32, image::imageops::FilterType::Triangle);
        out.extend_from_slice(r.as_raw());
    }
    Ok(out)
}

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
        let g = Geometry::new(1, 2, 2).unwrap();
        let path = std::env::temp_dir().join(format!("edgegen-grid-{}.png", std::process::id()));
        write_frame_grid(&path, &[1, 1, 1, 1, 2, 2, 2, 2, 1, 1, 1, 1], g, 2, 1).unwrap();
        let img = image::open(&path).unwrap().to_luma8();
        assert_eq!(img.dimensions(), (10, 10));
        assert_eq!(img.get_pixel(2, 2).0, [1]);
        assert_eq!(img.get_pixel(6, 2).0, [2]);
        assert_eq!(img.get_pixel(2, 6).0, [1]);
        assert_eq!(img.get_pixel(6, 6).0, [255], "an empty slot is border");
        std::fs::remove_file(path).ok();
    }
}

/// Writes planar frames of geometry `g` as a grid picture (`cols` per row, a 2-pixel white
/// border, each pixel drawn `scale`×`scale`): gray PNG for one channel, RGB PNG for three.
pub fn write_frame_grid(path: &Path, frames: &[u8], g: Geometry, cols: usize, scale: usize) -> Result<()> {
    let (fh, fw, n, c) = (g.height as usize, g.width as usize, frames.len() / g.values().max(1), g.channels as usize);
    ensure!(c == 1 || c == 3, "a grid of {c}-channel frames");
    let (cols, gap, scale) = (cols.max(1), 2usize, scale.max(1));
    let rows = n.div_ceil(cols);
    let (w, h) = ((cols * (fw + gap) + gap) * scale, (rows * (fh + gap) + gap) * scale);
    let mut img = image::RgbImage::from_pixel(w as u32, h as u32, image::Rgb([255, 255, 255]));
    for (i, frame) in frames.chunks_exact(g.values()).enumerate() {
        let (x0, y0) = (gap + (i % cols) * (fw + gap), gap + (i / cols) * (fh + gap));
        for y in 0..fh * scale {
            for x in 0..fw * scale {
                let p = (y / scale) * fw + x / scale;
                let px = if c == 3 { [frame[p], frame[g.plane() + p], frame[2 * g.plane() + p]] } else { [frame[p]; 3] };
                img.put_pixel((x0 * scale + x) as u32, (y0 * scale + y) as u32, image::Rgb(px));
            }
        }
    }
    let mut out = std::io::Cursor::new(Vec::new());
    if c == 1 {
        image::DynamicImage::ImageRgb8(img).to_luma8().write_to(&mut out, image::ImageFormat::Png)?;
    } else {
        img.write_to(&mut out, image::ImageFormat::Png)?;
    }
    crate::data::write_atomic(path, &out.into_inner())
}

#[cfg(test)]
mod frame_tests {
    use super::*;

    fn encode(img: image::DynamicImage, format: image::ImageFormat) -> Vec<u8> {
        let mut out = std::io::Cursor::new(Vec::new());
        img.write_to(&mut out, format).unwrap();
        out.into_inner()
    }

    /// Every documented format reads; colour becomes gray by BT.709 luma or planar RGB;
    /// another size is refused unless resized; garbage names what edgegen reads.
    #[test]
    fn pictures_become_frames_of_the_model_geometry() {
        let gray = Geometry::new(1, 4, 6).unwrap();
        let rgb = Geometry::new(3, 4, 6).unwrap();
        let pic = image::RgbImage::from_fn(6, 4, |x, y| image::Rgb([(40 * x) as u8, (60 * y) as u8, 200]));
        let dynamic = image::DynamicImage::ImageRgb8(pic.clone());
        for format in [image::ImageFormat::Png, image::ImageFormat::Bmp, image::ImageFormat::Tiff, image::ImageFormat::Pnm] {
            let bytes = encode(dynamic.clone(), format);
            let planar = decode_frame(&bytes, rgb, false).unwrap();
            for (p, px) in pic.pixels().enumerate() {
                assert_eq!([planar[p], planar[24 + p], planar[48 + p]], px.0, "{format:?} pixel {p}");
            }
            let g = decode_frame(&bytes, gray, false).unwrap();
            let want = dynamic.to_luma8();
            assert_eq!(&g[..], want.as_raw().as_slice(), "{format:?}");
        }
        // JPEG is lossy: it decodes to the right geometry.
        let jpeg = encode(dynamic.clone(), image::ImageFormat::Jpeg);
        assert_eq!(decode_frame(&jpeg, rgb, false).unwrap().len(), 72);
        // A gray picture in an RGB model: the gray repeated in each channel.
        let gray_pic = image::DynamicImage::ImageLuma8(image::GrayImage::from_fn(6, 4, |x, _| image::Luma([x as u8 * 10])));
        let planar = decode_frame(&encode(gray_pic, image::ImageFormat::Png), rgb, false).unwrap();
        assert_eq!(&planar[..24], &planar[24..48]);
        // Another size: refused with the fix, or resized deterministically.
        let big = encode(image::DynamicImage::ImageRgb8(image::RgbImage::new(64, 48)), image::ImageFormat::Png);
        let e = format!("{:#}", decode_frame(&big, gray, false).unwrap_err());
        assert!(e.contains("64x48") && e.contains("--resize"), "{e}");
        let a = decode_frame(&big, gray, true).unwrap();
        assert_eq!((a.len(), a), (24, decode_frame(&big, gray, true).unwrap()));
        let e = format!("{:#}", decode_frame(b"hello, not a picture", gray, false).unwrap_err());
        assert!(e.contains("PNG, JPEG"), "{e}");
        let mut truncated = encode(dynamic, image::ImageFormat::Png);
        truncated.truncate(truncated.len() / 2);
        assert!(decode_frame(&truncated, gray, false).is_err());
    }

    #[test]
    fn frames_resize_plane_by_plane() {
        let from = Geometry::new(2, 4, 4).unwrap();
        let to = Geometry::new(2, 2, 2).unwrap();
        let frame: Vec<u8> = (0..32).map(|i| if i < 16 { 10 } else { 200 }).collect();
        assert_eq!(resize_frame(&frame, from, to).unwrap(), [10, 10, 10, 10, 200, 200, 200, 200]);
        assert_eq!(resize_frame(&frame, from, from).unwrap(), frame);
        assert!(resize_frame(&frame[..31], from, to).is_err());
    }
}
