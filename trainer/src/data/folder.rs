//! A folder of the user's own pictures as a dataset: every picture under it (PNG, JPEG, BMP,
//! TIFF, PGM/PPM; found by extension, recursively, in path order; hidden files and folders
//! skipped) read as a frame of the chosen geometry ([`super::imageio::decode_frame`]), and
//! split three ways, deterministically:
//!
//! * **Explicit split** — when the folder has `train/` and `validation/` (or `val/`)
//!   subfolders, and optionally `test/`, each holds its part; pictures anywhere else are
//!   ignored and counted. Use it when the split must follow something only you know (a
//!   region of a photograph, a production batch, a day).
//! * **Hashed split** — otherwise, a picture's part is a function of its path under the
//!   folder alone (FNV-1a of the path with `/` separators): 10% validation, 10% test, 80%
//!   training. It does not depend on the order files are listed or on which other files
//!   exist, so adding pictures never moves one already there into another part.
//!
//! Training never sees the validation or test parts; calibration and quantization use the
//! validation part; reported figures, the test part.
//!
//! **Unreadable pictures are skipped and counted**, not fatal: a camera folder often holds a
//! half-written or foreign file. The load reports how many and names the first few with the
//! reason; it fails when no picture is readable, or when more than half are not (then the
//! folder is probably not what was meant).

use super::imageio::{decode_frame, is_picture};
use super::Images;
use anyhow::{bail, Context, Result};
use edgegen_runtime::image::Geometry;
use std::path::{Path, PathBuf};

/// A part of a folder dataset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    /// Trained on.
    Train,
    /// Held out: validation during training, calibration, quantization.
    Validation,
    /// Held out: reported figures only.
    Test,
}

/// How a folder was split.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SplitRule {
    /// `train/`, `validation/` (or `val/`) and `test/` subfolders.
    Folders,
    /// By the hash of each picture's path.
    Hashed,
}

/// A loaded folder.
#[derive(Debug, Clone)]
pub struct Folder {
    /// The folder.
    pub root: PathBuf,
    /// The frames' geometry.
    pub geometry: Geometry,
    /// How it was split.
    pub rule: SplitRule,
    /// Training frames.
    pub train: Images,
    /// Validation frames.
    pub validation: Images,
    /// Test frames.
    pub test: Images,
    /// Pictures that could not be read, with the reason.
    pub skipped: Vec<(PathBuf, String)>,
    /// Pictures outside the split folders (explicit split only).
    pub ignored: usize,
}

impl Folder {
    /// The frames of one part.
    pub fn part(&self, part: Part) -> &Images {
        match part {
            Part::Train => &self.train,
            Part::Validation => &self.validation,
            Part::Test => &self.test,
        }
    }

    /// One line saying what was loaded (for logs and cards).
    pub fn summary(&self) -> String {
        let rule = match self.rule {
            SplitRule::Folders => "split by its train/validation/test folders",
            SplitRule::Hashed => "split 80/10/10 by a hash of each path",
        };
        let mut s = format!(
            "{}: {} training, {} validation, {} test frames of {} ({rule})",
            self.root.display(),
            self.train.len(),
            self.validation.len(),
            self.test.len(),
            self.geometry
        );
        if !self.skipped.is_empty() {
            s += &format!("; {} unreadable pictures skipped", self.skipped.len());
        }
        if self.ignored > 0 {
            s += &format!("; {} pictures outside the split folders ignored", self.ignored);
        }
        s
    }
}

/// FNV-1a (64-bit) of `bytes`.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| (h ^ b as u64).wrapping_mul(0x0100_0000_01b3))
}

/// The part a picture at `relative` (its path under the folder) falls in by the hashed rule.
pub fn hashed_part(relative: &Path) -> Part {
    let key: Vec<String> = relative.components().map(|c| c.as_os_str().to_string_lossy().into_owned()).collect();
    match fnv1a(key.join("/").as_bytes()) % 10 {
        0 => Part::Validation,
        1 => Part::Test,
        _ => Part::Train,
    }
}

/// Every picture under `dir`, recursively, sorted by path; hidden entries skipped.
pub fn pictures(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let entries = std::fs::read_dir(&d).with_context(|| format!("cannot list {}", d.display()))?;
        for e in entries {
            let e = e.with_context(|| format!("cannot list {}", d.display()))?;
            let path = e.path();
            if e.file_name().to_string_lossy().starts_with('.') {
                continue;
            }
            let kind = e.file_type().with_context(|| format!("cannot stat {}", path.display()))?;
            if kind.is_dir() {
                stack.push(path);
            } else if is_picture(&path) {
                out.push(path);
            }
        }
    }
    out.sort();
    Ok(out)
}

/// The subfolder of `root` holding `part` under the explicit rule, if the folder uses it.
fn split_folder(root: &Path, part: Part) -> Option<PathBuf> {
    let names: &[&str] = match part {
        Part::Train => &["train"],
        Part::Validation => &["validation", "val"],
        Part::Test => &["test"],
    };
    names.iter().map(|n| root.join(n)).find(|p| p.is_dir())
}

/// Loads every picture under `root` as frames of geometry `g` (resized when `resize`, else a
/// picture of another size is skipped and counted like an unreadable one), split as the
/// module explains.
pub fn load(root: &Path, g: Geometry, resize: bool, progress: bool) -> Result<Folder> {
    if !root.is_dir() {
        bail!("{}: not a folder (give a folder of pictures, or an IDX file)", root.display());
    }
    let files = pictures(root)?;
    if files.is_empty() {
        bail!("{}: no pictures found (edgegen reads .png, .jpg/.jpeg, .bmp, .tif/.tiff, .pgm/.ppm/.pnm)", root.display());
    }
    let explicit = split_folder(root, Part::Train).zip(split_folder(root, Part::Validation));
    let rule = if explicit.is_some() { SplitRule::Folders } else { SplitRule::Hashed };
    let test_dir = split_folder(root, Part::Test);
    let part_of = |path: &Path| -> Option<Part> {
        match &explicit {
            Some((train, valid)) => {
                if path.starts_with(train) {
                    Some(Part::Train)
                } else if path.starts_with(valid) {
                    Some(Part::Validation)
                } else if test_dir.as_ref().is_some_and(|t| path.starts_with(t)) {
                    Some(Part::Test)
                } else {
                    None
                }
            }
            None => Some(hashed_part(path.strip_prefix(root).unwrap_or(path))),
        }
    };
    let bar = crate::progress::bar(progress, files.len() as u64, "read");
    let frames = crate::parallel::map(files.len(), |i| {
        let r = std::fs::read(&files[i])
            .map_err(|e| format!("cannot read: {e}"))
            .and_then(|bytes| decode_frame(&bytes, g, resize).map_err(|e| format!("{e:#}")));
        bar.inc(1);
        r
    });
    crate::progress::finish(&bar);
    let empty =
        || Images { channels: g.channels as usize, rows: g.height as usize, cols: g.width as usize, pixels: Vec::new(), labels: None };
    let mut folder = Folder {
        root: root.to_path_buf(),
        geometry: g,
        rule,
        train: empty(),
        validation: empty(),
        test: empty(),
        skipped: Vec::new(),
        ignored: 0,
    };
    for (path, frame) in files.iter().zip(frames) {
        let Some(part) = part_of(path) else {
            folder.ignored += 1;
            continue;
        };
        match frame {
            Ok(f) => match part {
                Part::Train => folder.train.pixels.extend_from_slice(&f),
                Part::Validation => folder.validation.pixels.extend_from_slice(&f),
                Part::Test => folder.test.pixels.extend_from_slice(&f),
            },
            Err(reason) => folder.skipped.push((path.clone(), reason)),
        }
    }
    let considered = files.len() - folder.ignored;
    let readable = considered - folder.skipped.len();
    let named: Vec<String> = folder.skipped.iter().take(5).map(|(p, r)| format!("  {}: {r}", p.display())).collect();
    if readable == 0 || folder.skipped.len() * 2 > considered {
        bail!(
            "{}: {} of {considered} pictures could not be read as {g} frames, e.g.\n{}",
            root.display(),
            folder.skipped.len(),
            named.join("\n")
        );
    }
    if !folder.skipped.is_empty() {
        eprintln!("{}: skipped {} unreadable pictures:\n{}", root.display(), folder.skipped.len(), named.join("\n"));
    }
    if folder.train.is_empty() || folder.validation.is_empty() {
        bail!(
            "{}: {} training and {} validation frames; both parts need pictures (with the hashed split, about 10 pictures give one validation frame)",
            root.display(),
            folder.train.len(),
            folder.validation.len()
        );
    }
    Ok(folder)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn save(path: &Path, value: u8) {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        image::GrayImage::from_pixel(8, 6, image::Luma([value])).save(path).unwrap();
    }

    fn temp(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("edgegen-folder-{}-{name}", std::process::id()));
        std::fs::remove_dir_all(&d).ok();
        d
    }

    /// The hashed split depends on a path alone: stable when files are added, near 80/10/10.
    #[test]
    fn hashed_split_is_a_function_of_the_path() {
        let parts: Vec<Part> = (0..2000).map(|i| hashed_part(Path::new(&format!("cam/{i:05}.png")))).collect();
        let count = |p| parts.iter().filter(|&&q| q == p).count();
        assert!((150..250).contains(&count(Part::Validation)), "{}", count(Part::Validation));
        assert!((150..250).contains(&count(Part::Test)), "{}", count(Part::Test));
        assert_eq!(hashed_part(Path::new("cam/00007.png")), parts[7]);
    }

    /// A folder of pictures of mixed formats, sizes and readability: resized, split by hash,
    /// the unreadable skipped and named; explicit split folders win; a folder of nothing
    /// usable is an error that says why.
    #[test]
    fn folders_load_split_and_skip() {
        let g = Geometry::new(1, 3, 4).unwrap();
        let d = temp("hashed");
        for i in 0..60 {
            let ext = ["png", "bmp", "pgm", "tif"][i % 4];
            save(&d.join(format!("a/{i:03}.{ext}")), i as u8);
        }
        std::fs::write(d.join("a/broken.png"), b"\x89PNG not really").unwrap();
        std::fs::write(d.join("readme.txt"), b"ignored: not a picture").unwrap();
        save(&d.join(".hidden/x.png"), 1);
        let f = load(&d, g, true, false).unwrap();
        assert_eq!(f.rule, SplitRule::Hashed);
        assert_eq!(f.train.len() + f.validation.len() + f.test.len(), 60);
        assert_eq!(f.skipped.len(), 1);
        assert!(f.skipped[0].0.ends_with("broken.png"));
        assert_eq!(f.train.values(), 12);
        for i in 0..60 {
            let ext = ["png", "bmp", "pgm", "tif"][i % 4];
            let part = hashed_part(Path::new(&format!("a/{i:03}.{ext}")));
            let set = f.part(part);
            assert!(set.pixels.chunks(12).any(|c| c.iter().all(|&v| v == i as u8)), "picture {i} in {part:?}");
        }
        assert!(f.summary().contains("1 unreadable"), "{}", f.summary());
        // Without --resize, every 8x6 picture is the wrong size: refused, with the reason.
        let e = format!("{:#}", load(&d, g, false, false).unwrap_err());
        assert!(e.contains("--resize") && e.contains("could not be read"), "{e}");

        let d2 = temp("explicit");
        for (part, n) in [("train", 5), ("val", 2), ("test", 1)] {
            for i in 0..n {
                save(&d2.join(format!("{part}/{i}.png")), 10);
            }
        }
        save(&d2.join("elsewhere.png"), 10);
        let f = load(&d2, g, true, false).unwrap();
        assert_eq!((f.rule, f.train.len(), f.validation.len(), f.test.len(), f.ignored), (SplitRule::Folders, 5, 2, 1, 1));

        let d3 = temp("empty");
        std::fs::create_dir_all(&d3).unwrap();
        assert!(format!("{:#}", load(&d3, g, true, false).unwrap_err()).contains("no pictures"));
        assert!(format!("{:#}", load(&d3.join("missing"), g, true, false).unwrap_err()).contains("not a folder"));
        for d in [d, d2, d3] {
            std::fs::remove_dir_all(d).ok();
        }
    }
}
