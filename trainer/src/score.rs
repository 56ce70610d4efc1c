//! `edgegen score`, `edgegen sample` and `edgegen calibrate`: the runtime's engines behind
//! one command line. `int8` runs the compiled `.egm` files (the device path); `tract` and
//! `tract-int8` run the f32 and QDQ ONNX files through tract.

use crate::data::{self, Images};
use anyhow::{bail, ensure, Context, Result};
use edgegen_runtime::engine;
use edgegen_runtime::guard::{self, ScoreKind};
use edgegen_runtime::image::PIXELS;
use edgegen_runtime::kernels::Kernels;
use edgegen_runtime::likelihood::bits_per_dim;
use edgegen_runtime::model::Model;
use edgegen_runtime::onnx::{OnnxGan, OnnxPixelCnn, OnnxVae};
use edgegen_runtime::rng::Rng;
use serde_json::json;
use std::path::{Path, PathBuf};

/// Which engine runs the model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum EngineKind {
    /// The compiled int8 model file (the device path).
    Int8,
    /// The f32 ONNX through tract.
    Tract,
    /// The int8 QDQ ONNX through tract (simulated quantization; the int8 reference).
    TractInt8,
}

/// Importance samples of the VAE bound used as its likelihood.
pub const VAE_K: usize = 16;

/// A loaded model: its engines, validated once when opened. The compiled files' bytes are
/// kept for the life of the process (the int8 engines read them in place, as a device reads
/// flash), so opening a model costs one allocation that is never freed.
pub struct Loaded {
    family: String,
    int8_pixelcnn: Option<engine::PixelCnn<'static>>,
    int8_vae: Option<engine::Vae<'static>>,
    int8_gan: Option<engine::Gan<'static>>,
    guard_file: Option<Model<'static>>,
    tract_pixelcnn: Option<OnnxPixelCnn>,
    tract_vae: Option<OnnxVae>,
    tract_gan: Option<OnnxGan>,
}

/// Reads and validates a compiled model file, keeping its bytes for the process's life.
fn read(dir: &Path, name: &str) -> Result<Model<'static>> {
    let p = dir.join(name);
    let bytes = std::fs::read(&p).with_context(|| format!("cannot read {} (run `cargo edgegen quantize --model {}`?)", p.display(), dir.display()))?;
    let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
    Model::from_bytes(bytes).map_err(|e| anyhow::anyhow!("{}: {e}", p.display()))
}

impl Loaded {
    /// Loads the model directory for `engine`.
    pub fn open(dir: &Path, engine: EngineKind) -> Result<Loaded> {
        let card = crate::int8::read_card(dir)?;
        let family = card["family"].as_str().context("card.json has no family")?.to_string();
        let parts = crate::int8::parts(&family)?;
        let suffix = if engine == EngineKind::TractInt8 { ".int8.onnx" } else { ".onnx" };
        let onnx = |p: &str| dir.join(format!("{p}{suffix}"));
        let mut l = Loaded {
            family: family.clone(),
            int8_pixelcnn: None,
            int8_vae: None,
            int8_gan: None,
            guard_file: None,
            tract_pixelcnn: None,
            tract_vae: None,
            tract_gan: None,
        };
        match (engine, family.as_str()) {
            (EngineKind::Int8, "pixelcnn") => l.int8_pixelcnn = Some(engine::PixelCnn::new(read(dir, "model.egm")?, Kernels::Optimized)?),
            (EngineKind::Int8, "vae") => l.int8_vae = Some(engine::Vae::new(read(dir, "encoder.egm")?, read(dir, "decoder.egm")?, Kernels::Optimized)?),
            (EngineKind::Int8, _) => l.int8_gan = Some(engine::Gan::new(read(dir, "generator.egm")?, Kernels::Optimized)?),
            (_, "pixelcnn") => l.tract_pixelcnn = Some(OnnxPixelCnn::load_file(&onnx("model"))?),
            (_, "vae") => l.tract_vae = Some(OnnxVae::load_files(&onnx("encoder"), &onnx("decoder"))?),
            _ => l.tract_gan = Some(OnnxGan::load_file(&onnx("generator"))?),
        }
        // The guard threshold lives in the first compiled file, whatever the engine.
        l.guard_file = read(dir, &format!("{}.egm", parts[0])).ok();
        Ok(l)
    }

    /// The model family.
    pub fn family(&self) -> &str {
        &self.family
    }

    /// Bits/dim of an image: exact for the PixelCNN, the `VAE_K`-sample importance-weighted
    /// bound for the VAE (latents from `Rng::with_stream(0, index)`).
    pub fn bpd(&self, image: &[u8], index: usize) -> Result<f64> {
        ensure!(image.len() == PIXELS, "image has {} pixels, models take 28x28", image.len());
        let mut rng = Rng::with_stream(0, index as u64);
        Ok(if let Some(e) = &self.int8_pixelcnn {
            let mut arena = vec![0u8; e.arena_len()];
            bits_per_dim(e.log_prob(&mut arena, image)?, PIXELS)
        } else if let Some(e) = &self.tract_pixelcnn {
            bits_per_dim(e.log_prob(image)?, PIXELS)
        } else if let Some(e) = &self.int8_vae {
            let mut arena = vec![0u8; e.arena_len()];
            e.bounds(&mut arena, image, VAE_K, &mut rng)?.iwae_bpd()
        } else if let Some(e) = &self.tract_vae {
            e.bounds(image, VAE_K, &mut rng)?.iwae_bpd()
        } else {
            bail!("a {} has no likelihood to score with; use a PixelCNN or a VAE model", self.family)
        })
    }

    /// The calibrated guard threshold stored in the model file, if any.
    pub fn threshold(&self) -> Option<f32> {
        let m = self.guard_file.as_ref()?.metadata();
        (m.guard_flags & 1 != 0 && m.guard_score == ScoreKind::BitsPerDim as u8).then_some(m.guard_threshold)
    }

    /// One image from `seed`.
    pub fn sample(&self, seed: u64) -> Result<Vec<u8>> {
        let mut out = vec![0u8; PIXELS];
        if let Some(e) = &self.int8_pixelcnn {
            e.sample(&mut vec![0u8; e.sample_arena_len()], seed, &mut out)?;
        } else if let Some(e) = &self.int8_vae {
            e.sample(&mut vec![0u8; e.arena_len()], seed, &mut out)?;
        } else if let Some(e) = &self.int8_gan {
            e.sample(&mut vec![0u8; e.arena_len()], seed, &mut out)?;
        } else if let Some(e) = &self.tract_pixelcnn {
            e.sample(seed, &mut out)?;
        } else if let Some(e) = &self.tract_vae {
            e.sample(seed, &mut out)?;
        } else if let Some(e) = &self.tract_gan {
            e.sample(seed, &mut out)?;
        }
        Ok(out)
    }
}

/// Reads every image of a file: an IDX image file (optionally gzipped) or an 8-bit
/// grayscale 28×28 PNG.
pub fn read_images(path: &Path) -> Result<Images> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    let images = if bytes.starts_with(b"\x89PNG") {
        let (w, h, pixels) = crate::imageio::decode_gray_png(&bytes).with_context(|| format!("{}", path.display()))?;
        ensure!((w, h) == (28, 28), "{}: PNG is {w}x{h}, models take 28x28", path.display());
        Images { rows: 28, cols: 28, pixels, labels: None }
    } else if bytes.starts_with(&[0, 0, 8, 3]) || bytes.starts_with(&[0x1f, 0x8b]) {
        data::read_idx_images(path)?
    } else {
        bail!("{}: neither an IDX image file nor a PNG", path.display());
    };
    data::ensure_28x28(&images, &path.display().to_string())?;
    Ok(images)
}

/// `edgegen score`: one JSON line per image.
pub fn score(dir: &Path, engine: EngineKind, files: &[PathBuf]) -> Result<()> {
    ensure!(!files.is_empty(), "give at least one IDX or PNG file to score");
    let loaded = Loaded::open(dir, engine)?;
    let threshold = loaded.threshold();
    if threshold.is_none() {
        eprintln!("note: {} holds no calibrated threshold; run `cargo edgegen calibrate --model {}` (accept is null)", dir.display(), dir.display());
    }
    for f in files {
        let images = read_images(f)?;
        for i in 0..images.len() {
            let bpd = loaded.bpd(images.image(i), i)?;
            let line = json!({
                "file": f.display().to_string(),
                "index": i,
                "bpd": (bpd * 10_000.0).round() / 10_000.0,
                "score": (bpd * 10_000.0).round() / 10_000.0,
                "threshold": threshold,
                "accept": threshold.map(|t| bpd as f32 <= t),
            });
            println!("{line}");
        }
    }
    Ok(())
}

/// `edgegen sample`: `count` images from seeds `seed..seed+count` as a PNG grid.
pub fn sample(dir: &Path, engine: EngineKind, seed: u64, count: usize, out: &Path) -> Result<()> {
    ensure!((1..=1024).contains(&count), "--count must be in 1..=1024");
    let loaded = Loaded::open(dir, engine)?;
    let images = crate::parallel::map(count, |i| loaded.sample(seed + i as u64));
    let images = images.into_iter().collect::<Result<Vec<_>>>()?.concat();
    let cols = (count as f64).sqrt().ceil() as usize;
    crate::card::save_grid(out, &images, cols, 3)?;
    println!("{count} {} samples (seeds {seed}..{}) -> {}", loaded.family(), seed + count as u64 - 1, out.display());
    Ok(())
}

/// `edgegen calibrate`: the raw bits/dim threshold rejecting `false_reject` of the held-out
/// validation split (never the test set), stored in the model file and the card; reports
/// the false-reject rate it gives on the test set.
pub fn calibrate(dir: &Path, false_reject: f32, progress: bool) -> Result<()> {
    ensure!(false_reject > 0.0 && false_reject < 0.5, "--false-reject must be in (0, 0.5)");
    let loaded = Loaded::open(dir, EngineKind::Int8)?;
    let family = loaded.family().to_string();
    let scores_of = |images: &Images| -> Result<Vec<f32>> {
        let bar = crate::progress::bar(progress, images.len() as u64, "score");
        let s = crate::parallel::map(images.len(), |i| {
            bar.inc(1);
            loaded.bpd(images.image(i), i).map(|b| b as f32)
        });
        bar.finish_and_clear();
        s.into_iter().collect()
    };
    let valid = data::fashion_mnist(data::Split::Validation)?;
    let mut v = scores_of(&valid)?;
    let threshold = guard::calibrate_threshold(&mut v, false_reject).context("calibration scores are not finite")?;
    let test = data::fashion_mnist(data::Split::Test)?;
    let t = scores_of(&test)?;
    let test_frr = t.iter().filter(|&&s| s > threshold).count() as f64 / t.len() as f64;
    let part = crate::int8::parts(&family)?[0];
    let path = dir.join(format!("{part}.egm"));
    let updated = crate::quantize::set_guard(&std::fs::read(&path)?, ScoreKind::BitsPerDim as u8, threshold, false_reject, 0.0)?;
    data::write_atomic(&path, &updated)?;
    let mut card = crate::int8::read_card(dir)?;
    card["guard"] = json!({
        "score": "bits_per_dim",
        "engine": "int8",
        "threshold": crate::card::r4(threshold as f64),
        "false_reject_target": (false_reject as f64 * 1e6).round() / 1e6,
        "calibrated_on": "Fashion-MNIST validation split (last 5,000 training images)",
        "test_false_reject": crate::card::r4(test_frr),
        "stored_in": format!("{part}.egm metadata"),
        "command": format!("cargo edgegen calibrate --model {} --false-reject {false_reject}", dir.display()),
    });
    crate::card::write(dir, &card)?;
    println!("threshold {threshold:.4} bits/dim (false-reject target {false_reject}); test-set false-reject {:.2}%", test_frr * 100.0);
    Ok(())
}
