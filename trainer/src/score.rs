//! `edgegen score`, `edgegen sample` and `edgegen calibrate`: the runtime's engines behind
//! one command line. `int8` runs the compiled `.egm` files (the device path); `tract` and
//! `tract-int8` run the f32 and QDQ ONNX files through tract.

use crate::data::{self, Images};
use anyhow::{bail, ensure, Context, Result};
use edgegen_runtime::engine;
use edgegen_runtime::guard::{self, ScoreKind, Statistics};
use edgegen_runtime::image::{PIXELS, WIDTH};
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
    int8_background: Option<engine::PixelCnn<'static>>,
    tract_background: Option<OnnxPixelCnn>,
    background_dir: Option<PathBuf>,
    tract_pixelcnn: Option<OnnxPixelCnn>,
    tract_vae: Option<OnnxVae>,
    tract_gan: Option<OnnxGan>,
}

/// The background model of the PixelCNN in `dir`: the sibling directory `<dir>-bg`, if it
/// holds a card.
pub fn background_dir(dir: &Path) -> Option<PathBuf> {
    let name = dir.file_name()?.to_string_lossy().to_string();
    let bg = dir.with_file_name(format!("{name}-bg"));
    bg.join("card.json").exists().then_some(bg)
}

/// Reads and validates a compiled model file, keeping its bytes for the process's life.
fn read(dir: &Path, name: &str) -> Result<Model<'static>> {
    let p = dir.join(name);
    let bytes = std::fs::read(&p)
        .with_context(|| format!("cannot read {} (run `cargo edgegen quantize --model {}`?)", p.display(), dir.display()))?;
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
            int8_background: None,
            tract_background: None,
            background_dir: None,
            tract_pixelcnn: None,
            tract_vae: None,
            tract_gan: None,
        };
        match (engine, family.as_str()) {
            (EngineKind::Int8, "pixelcnn") => l.int8_pixelcnn = Some(engine::PixelCnn::new(read(dir, "model.egm")?, Kernels::Optimized)?),
            (EngineKind::Int8, "vae") => {
                l.int8_vae = Some(engine::Vae::new(read(dir, "encoder.egm")?, read(dir, "decoder.egm")?, Kernels::Optimized)?)
            }
            (EngineKind::Int8, _) => l.int8_gan = Some(engine::Gan::new(read(dir, "generator.egm")?, Kernels::Optimized)?),
            (_, "pixelcnn") => l.tract_pixelcnn = Some(OnnxPixelCnn::load_file(&onnx("model"))?),
            (_, "vae") => l.tract_vae = Some(OnnxVae::load_files(&onnx("encoder"), &onnx("decoder"))?),
            _ => l.tract_gan = Some(OnnxGan::load_file(&onnx("generator"))?),
        }
        // The guard threshold lives in the first compiled file, whatever the engine.
        l.guard_file = read(dir, &format!("{}.egm", parts[0])).ok();
        // A PixelCNN's background model (likelihood-ratio scores) is the sibling `<dir>-bg`.
        if family == "pixelcnn" {
            if let Some(bg) = background_dir(dir) {
                match engine {
                    EngineKind::Int8 => l.int8_background = Some(engine::PixelCnn::new(read(&bg, "model.egm")?, Kernels::Optimized)?),
                    _ => l.tract_background = Some(OnnxPixelCnn::load_file(&bg.join(format!("model{suffix}")))?),
                }
                l.background_dir = Some(bg);
            }
        }
        Ok(l)
    }

    /// The background model's directory, when one was loaded.
    pub fn background_dir(&self) -> Option<&Path> {
        self.background_dir.as_deref()
    }

    /// The statistics the guard scores are computed from. PixelCNN: exact per-pixel
    /// likelihoods under the model and the background model (when there is one); VAE: the
    /// `VAE_K`-sample bound (no per-pixel terms, so no background scores).
    pub fn statistics(&self, image: &[u8], index: usize) -> Result<Statistics> {
        ensure!(image.len() == PIXELS, "image has {} pixels, models take 28x28", image.len());
        let (mut fg, mut bg) = (vec![0f32; PIXELS], vec![0f32; PIXELS]);
        let have_bg = if let Some(e) = &self.int8_pixelcnn {
            let mut arena = vec![0u8; e.arena_len()];
            e.log_prob_pixels(&mut arena, image, &mut fg)?;
            if let Some(b) = &self.int8_background {
                let mut arena = vec![0u8; b.arena_len()];
                b.log_prob_pixels(&mut arena, image, &mut bg)?;
            }
            self.int8_background.is_some()
        } else if let Some(e) = &self.tract_pixelcnn {
            e.log_prob_pixels(image, &mut fg)?;
            if let Some(b) = &self.tract_background {
                b.log_prob_pixels(image, &mut bg)?;
            }
            self.tract_background.is_some()
        } else {
            let bpd = self.bpd(image, index)?;
            return Ok(Statistics {
                bpd,
                coder_bpd: edgegen_runtime::complexity::bits_per_dim(image, WIDTH),
                background_bpd: None,
                line_ratio: None,
            });
        };
        Ok(Statistics::from_pixels(image, WIDTH, &fg, have_bg.then_some(&bg[..])))
    }

    /// The calibrated guard stored in the model file: score kind, constants, threshold.
    pub fn guard(&self) -> Option<(ScoreKind, [f32; 4], f32)> {
        let m = self.guard_file.as_ref()?.metadata();
        let kind = ScoreKind::from_u8(m.guard_score)?;
        (m.guard_flags & 1 != 0 && m.guard_threshold.is_finite()).then_some((kind, m.guard_params, m.guard_threshold))
    }

    /// The int8 PixelCNN engine, when this is a PixelCNN opened with the int8 engine.
    pub fn int8_pixelcnn(&self) -> Option<&engine::PixelCnn<'static>> {
        self.int8_pixelcnn.as_ref()
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

/// The guard's verdict on one image: (score, threshold, accept), when a guard is calibrated.
pub fn verdict(loaded: &Loaded, stats: &Statistics) -> Result<Option<(f64, f32, bool)>> {
    let Some((kind, params, threshold)) = loaded.guard() else { return Ok(None) };
    let score = stats.score(kind, &params).with_context(|| {
        if kind.needs_background() && stats.background_bpd.is_none() {
            format!("the calibrated {} guard needs the background model (a sibling `-bg` directory)", kind.name())
        } else {
            format!("the {} guard's constants in the model file are unusable ({params:?}); recalibrate", kind.name())
        }
    })?;
    Ok(Some((score, threshold, score as f32 <= threshold)))
}

/// `edgegen score`: one JSON line per image.
pub fn score(dir: &Path, engine: EngineKind, files: &[PathBuf]) -> Result<()> {
    ensure!(!files.is_empty(), "give at least one IDX or PNG file to score");
    let loaded = Loaded::open(dir, engine)?;
    let guard = loaded.guard();
    if guard.is_none() {
        eprintln!(
            "note: {} holds no calibrated guard; run `cargo edgegen calibrate --model {}` (accept is null)",
            dir.display(),
            dir.display()
        );
    }
    let r4 = |v: f64| (v * 10_000.0).round() / 10_000.0;
    for f in files {
        let images = read_images(f)?;
        for i in 0..images.len() {
            let stats = loaded.statistics(images.image(i), i)?;
            let v = verdict(&loaded, &stats)?;
            let line = json!({
                "file": f.display().to_string(),
                "index": i,
                "bpd": r4(stats.bpd),
                "score_kind": guard.map(|g| g.0.name()),
                "score": v.map(|v| r4(v.0)),
                "threshold": v.map(|v| v.1),
                "accept": v.map(|v| v.2),
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

/// The median and the 99th-percentile-minus-median of `v` (the Combined score's constants).
fn spread(v: &mut [f64]) -> (f32, f32) {
    v.sort_by(f64::total_cmp);
    let q = |p: f64| v[((p * v.len() as f64).ceil() as usize).clamp(1, v.len()) - 1];
    let (m, hi) = (q(0.5), q(0.99));
    (m as f32, ((hi - m) as f32).max(1e-6))
}

/// `edgegen calibrate`: the guard's constants and threshold from the held-out validation
/// split (never the test set), stored in the model file and the card; reports the
/// false-reject rate it gives on the test set. `kind` defaults to `combined` for a PixelCNN
/// with a background model, else `complexity_corrected`.
pub fn calibrate(dir: &Path, false_reject: f32, kind: Option<ScoreKind>, progress: bool) -> Result<()> {
    ensure!(false_reject > 0.0 && false_reject < 0.5, "--false-reject must be in (0, 0.5)");
    let loaded = Loaded::open(dir, EngineKind::Int8)?;
    let family = loaded.family().to_string();
    let has_bg = loaded.background_dir().is_some();
    let kind = kind.unwrap_or(if has_bg { ScoreKind::Combined } else { ScoreKind::ComplexityCorrected });
    ensure!(
        !kind.needs_background() || has_bg,
        "the {} score needs a background model in {}-bg (train one with `--perturb`)",
        kind.name(),
        dir.display()
    );
    let stats_of = |images: &Images| -> Result<Vec<Statistics>> {
        let bar = crate::progress::bar(progress, images.len() as u64, "score");
        let s = crate::parallel::map(images.len(), |i| {
            bar.inc(1);
            loaded.statistics(images.image(i), i)
        });
        bar.finish_and_clear();
        s.into_iter().collect()
    };
    let valid = stats_of(&data::fashion_mnist(data::Split::Validation)?)?;
    let mut params = [0f32; 4];
    if kind == ScoreKind::Combined {
        let (c0, s0) = spread(&mut valid.iter().map(|s| s.bpd - s.coder_bpd).collect::<Vec<_>>());
        let (c1, s1) = spread(&mut valid.iter().filter_map(|s| s.line_ratio).collect::<Vec<_>>());
        params = [c0, s0, c1, s1];
    }
    let score_all = |st: &[Statistics]| -> Result<Vec<f32>> {
        st.iter().map(|s| s.score(kind, &params).map(|v| v as f32).context("score needs the background model")).collect()
    };
    let mut v = score_all(&valid)?;
    let threshold = guard::calibrate_threshold(&mut v, false_reject).context("calibration scores are not finite")?;
    let t = score_all(&stats_of(&data::fashion_mnist(data::Split::Test)?)?)?;
    let test_frr = t.iter().filter(|&&s| s > threshold).count() as f64 / t.len() as f64;
    let part = crate::int8::parts(&family)?[0];
    let path = dir.join(format!("{part}.egm"));
    let updated = crate::quantize::set_guard(&std::fs::read(&path)?, kind as u8, threshold, false_reject, params)?;
    data::write_atomic(&path, &updated)?;
    let mut card = crate::int8::read_card(dir)?;
    card["guard"] = json!({
        "score": kind.name(),
        "params": if kind == ScoreKind::Combined { json!({"cc_median": params[0], "cc_spread": params[1], "line_median": params[2], "line_spread": params[3]}) } else { json!(null) },
        "background_model": loaded.background_dir().filter(|_| kind.needs_background()).and_then(|p| p.file_name()).map(|n| n.to_string_lossy().to_string()),
        "engine": "int8",
        "threshold": crate::card::r4(threshold as f64),
        "false_reject_target": (false_reject as f64 * 1e6).round() / 1e6,
        "calibrated_on": "Fashion-MNIST validation split (last 5,000 training images)",
        "test_false_reject": crate::card::r4(test_frr),
        "stored_in": format!("{part}.egm metadata"),
        "command": format!("cargo edgegen calibrate --model {} --false-reject {false_reject}", dir.display()),
    });
    crate::card::write(dir, &card)?;
    println!(
        "{} threshold {threshold:.4} (false-reject target {false_reject}); test-set false-reject {:.2}%",
        kind.name(),
        test_frr * 100.0
    );
    Ok(())
}
