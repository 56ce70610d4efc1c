//! The loaded engines of a model directory: the compiled `.egm` files on the int8 engine (the
//! device path), or the f32 / QDQ ONNX files through tract — one enum, one variant per family
//! and engine, so every call says what it does for each.

use crate::families::ModelFamily;
use anyhow::{bail, ensure, Context, Result};
use edgegen_runtime::engine;
use edgegen_runtime::guard::{guard_params, GuardBlock, GuardParams, ScoreKind, Statistics};
use edgegen_runtime::image::Geometry;
use edgegen_runtime::kernels::Kernels;
use edgegen_runtime::likelihood::bits_per_dim;
use edgegen_runtime::model::Model;
use edgegen_runtime::onnx::{OnnxClassifier, OnnxFlow, OnnxGan, OnnxPixelCnn, OnnxVae};
use edgegen_runtime::rng::Rng;
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

/// The engines of one model, by family and engine kind. A PixelCNN carries its background
/// model (likelihood-ratio scores) when its directory has a `-bg` sibling.
pub enum Engines {
    /// PixelCNN on the int8 engine.
    PixelCnnInt8 {
        /// The model.
        model: engine::PixelCnn<'static>,
        /// The background model.
        background: Option<engine::PixelCnn<'static>>,
    },
    /// PixelCNN through tract.
    PixelCnnTract {
        /// The model.
        model: OnnxPixelCnn,
        /// The background model.
        background: Option<OnnxPixelCnn>,
    },
    /// VAE on the int8 engine.
    VaeInt8(engine::Vae<'static>),
    /// VAE through tract.
    VaeTract(OnnxVae),
    /// GAN generator on the int8 engine.
    GanInt8(engine::Gan<'static>),
    /// GAN generator through tract.
    GanTract(OnnxGan),
    /// Classifier on the int8 engine.
    ClassifierInt8(engine::Classifier<'static>),
    /// Classifier through tract.
    ClassifierTract(OnnxClassifier),
    /// Normalizing flow through tract (f32).
    FlowTract(OnnxFlow),
    /// Normalizing flow on the int8 engine (couplings int8, their arithmetic f32).
    FlowInt8(Box<edgegen_runtime::flow::Flow<'static>>),
}

/// A loaded model: its engines, validated once when opened. The compiled files' bytes are
/// kept for the life of the process (the int8 engines read them in place, as a device reads
/// flash), so opening a model costs one allocation that is never freed.
pub struct Loaded {
    family: ModelFamily,
    engines: Engines,
    /// The compiled file that holds the guard's calibration (the family's first part).
    guard_file: Option<Model<'static>>,
    background_dir: Option<PathBuf>,
    /// The structural guard's VAE (int8, whatever the engine: its block was fitted on the
    /// int8 encoder's posterior) and the guard block, when the guard file has one.
    guard_vae: Option<(engine::Vae<'static>, GuardBlock<'static>)>,
}

/// The VAE of a structural guard in `dir`: the card names its directory beside `dir`; its
/// encoder must be the one the guard block was fitted with.
fn guard_vae(dir: &Path, block: GuardBlock<'static>) -> Result<(engine::Vae<'static>, GuardBlock<'static>)> {
    let card = crate::export::card::Card::read(dir)?;
    let name = card.device.guard.as_ref().and_then(|g| g.vae_model.clone()).with_context(|| {
        format!("{}: the model file has a structural guard block but the card names no VAE (recalibrate with --vae)", dir.display())
    })?;
    let vae_dir = dir.with_file_name(&name);
    let vae = engine::Vae::new(read(&vae_dir, "encoder.egm")?, read(&vae_dir, "decoder.egm")?, Kernels::Optimized)?;
    ensure!(
        vae.encoder_model().crc() == block.encoder_crc(),
        "{}: its encoder is not the one {}'s structural guard was fitted with; recalibrate: `cargo edgegen calibrate --model {} --vae {}`",
        vae_dir.display(),
        dir.display(),
        dir.display(),
        vae_dir.display()
    );
    Ok((vae, block))
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
        let family = ModelFamily::of_dir(dir)?;
        let suffix = if engine == EngineKind::TractInt8 { ".int8.onnx" } else { ".onnx" };
        let onnx = |d: &Path, p: &str| d.join(format!("{p}{suffix}"));
        let int8 = engine == EngineKind::Int8;
        let background_dir = if family == ModelFamily::Pixelcnn { background_dir(dir) } else { None };
        let engines = match family {
            ModelFamily::Pixelcnn if int8 => {
                let open = |d: &Path| -> Result<_> { Ok(engine::PixelCnn::new(read(d, "model.egm")?, Kernels::Optimized)?) };
                Engines::PixelCnnInt8 { model: open(dir)?, background: background_dir.as_deref().map(open).transpose()? }
            }
            ModelFamily::Pixelcnn => {
                let open = |d: &Path| OnnxPixelCnn::load_file(&onnx(d, "model"));
                Engines::PixelCnnTract { model: open(dir)?, background: background_dir.as_deref().map(open).transpose()? }
            }
            ModelFamily::Vae if int8 => {
                Engines::VaeInt8(engine::Vae::new(read(dir, "encoder.egm")?, read(dir, "decoder.egm")?, Kernels::Optimized)?)
            }
            ModelFamily::Vae => Engines::VaeTract(OnnxVae::load_files(&onnx(dir, "encoder"), &onnx(dir, "decoder"))?),
            ModelFamily::Gan if int8 => Engines::GanInt8(engine::Gan::new(read(dir, "generator.egm")?, Kernels::Optimized)?),
            ModelFamily::Gan => Engines::GanTract(OnnxGan::load_file(&onnx(dir, "generator"))?),
            ModelFamily::Classifier if int8 => {
                Engines::ClassifierInt8(engine::Classifier::new(read(dir, "classifier.egm")?, Kernels::Optimized)?)
            }
            ModelFamily::Classifier => Engines::ClassifierTract(OnnxClassifier::load_file(&onnx(dir, "classifier"))?),
            ModelFamily::Flow if engine == EngineKind::Tract => Engines::FlowTract(OnnxFlow::load(dir)?),
            ModelFamily::Flow if int8 => {
                let p = dir.join(crate::int8::flow::FILE);
                let bytes = std::fs::read(&p)
                    .with_context(|| format!("cannot read {} (run `cargo edgegen quantize --model {}`?)", p.display(), dir.display()))?;
                let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
                let flow = edgegen_runtime::flow::Flow::from_bytes(bytes, Kernels::Optimized)
                    .map_err(|e| anyhow::anyhow!("{}: {e}", p.display()))?;
                Engines::FlowInt8(Box::new(flow))
            }
            ModelFamily::Flow => bail!(
                "{}: a normalizing flow runs as f32 ONNX (--engine tract) or on the int8 engine (--engine int8), not as QDQ ONNX",
                dir.display()
            ),
        };
        // The guard threshold lives in the first compiled file, whatever the engine.
        let guard_file = read(dir, &format!("{}.egm", family.parts()[0])).ok();
        let guard_vae = match guard_file.as_ref().and_then(|m| m.guard_block()) {
            Some(block) if family == ModelFamily::Pixelcnn => Some(guard_vae(dir, block)?),
            _ => None,
        };
        Ok(Loaded { family, engines, guard_file, background_dir, guard_vae })
    }

    /// The image geometry the model takes and makes (from its files).
    pub fn geometry(&self) -> Geometry {
        match &self.engines {
            Engines::PixelCnnInt8 { model, .. } => model.geometry(),
            Engines::PixelCnnTract { model, .. } => model.geometry(),
            Engines::VaeInt8(e) => e.geometry(),
            Engines::VaeTract(e) => e.geometry(),
            Engines::GanInt8(e) => e.geometry(),
            Engines::GanTract(e) => e.geometry(),
            Engines::ClassifierInt8(e) => e.geometry(),
            Engines::ClassifierTract(e) => e.geometry(),
            Engines::FlowTract(e) => e.geometry(),
            Engines::FlowInt8(e) => e.geometry(),
        }
    }

    fn check(&self, image: &[u8]) -> Result<Geometry> {
        let g = self.geometry();
        ensure!(image.len() == g.values(), "image has {} values, the model takes {g} frames ({} values)", image.len(), g.values());
        Ok(g)
    }

    /// The background model's directory, when one was loaded.
    pub fn background_dir(&self) -> Option<&Path> {
        self.background_dir.as_deref()
    }

    /// The engines.
    pub fn engines(&self) -> &Engines {
        &self.engines
    }

    /// The statistics the guard scores are computed from. PixelCNN: exact per-pixel
    /// likelihoods under the model and the background model (when there is one); VAE: the
    /// `VAE_K`-sample bound (no per-pixel terms, so no background scores).
    pub fn statistics(&self, image: &[u8], index: usize) -> Result<Statistics> {
        let vae = self.guard_vae.as_ref().map(|(v, b)| (v, Some(b)));
        Ok(self.statistics_with(image, index, vae)?.0)
    }

    /// [`Loaded::statistics`] with the VAE evidence of `vae` (a PixelCNN's): the posterior
    /// mean (returned), the latent score under the block (when given) and the decoder's
    /// [`edgegen_runtime::guard::Reconstruction`] at the posterior mean, as the device's
    /// evidence guard computes them.
    pub fn statistics_with(
        &self,
        image: &[u8],
        index: usize,
        vae: Option<(&engine::Vae<'static>, Option<&GuardBlock<'static>>)>,
    ) -> Result<(Statistics, Vec<f32>)> {
        let g = self.check(image)?;
        let (mut fg, mut bg) = (vec![0f32; g.values()], vec![0f32; g.values()]);
        let have_bg = match &self.engines {
            Engines::PixelCnnInt8 { model, background } => {
                model.log_prob_pixels(&mut vec![0u8; model.arena_len()], image, &mut fg)?;
                if let Some(b) = background {
                    b.log_prob_pixels(&mut vec![0u8; b.arena_len()], image, &mut bg)?;
                }
                background.is_some()
            }
            Engines::PixelCnnTract { model, background } => {
                model.log_prob_pixels(image, &mut fg)?;
                if let Some(b) = background {
                    b.log_prob_pixels(image, &mut bg)?;
                }
                background.is_some()
            }
            _ => {
                let coder_bpd = edgegen_runtime::complexity::bits_per_dim(image, g.width as usize);
                let mut s = Statistics::from_pixels(image, g, &fg, None);
                s.bpd = self.bpd(image, index)?;
                s.coder_bpd = coder_bpd;
                return Ok((s, Vec::new()));
            }
        };
        let mut s = Statistics::from_pixels(image, g, &fg, have_bg.then_some(&bg[..]));
        if have_bg {
            s = s.with_patch_ratio(g, &fg, &bg);
        }
        let mut mu = Vec::new();
        if let Some((vae, block)) = vae {
            let mut lv = vec![0f32; vae.latent()];
            mu = vec![0f32; vae.latent()];
            let mut arena = vec![0u8; vae.arena_len()];
            vae.encode(&mut arena, image, &mut mu, &mut lv)?;
            s.latent = block.and_then(|b| b.score(&mu));
            s.reconstruction =
                Some(edgegen_runtime::guard::Reconstruction::of(vae, &mut arena, image, (&mu, &lv), &fg, &mut bg, s.coder_bpd)?);
        }
        Ok((s, mu))
    }

    /// The most probable class of `image` and its probability (classifier engines).
    pub fn classify(&self, image: &[u8]) -> Result<engine::Classification> {
        self.check(image)?;
        Ok(match &self.engines {
            Engines::ClassifierInt8(e) => e.classify(&mut vec![0u8; e.arena_len()], image)?,
            Engines::ClassifierTract(e) => e.classify(image)?,
            _ => bail!("a {} is not a classifier; give a classifier's directory (cargo edgegen train classifier)", self.family),
        })
    }

    /// The calibrated guard stored in the model file: score kind, constants, threshold.
    pub fn guard(&self) -> Option<(ScoreKind, GuardParams, f32)> {
        let file = self.guard_file.as_ref()?;
        let m = file.metadata();
        let kind = ScoreKind::from_u8(m.guard_score)?;
        (m.guard_flags & 1 != 0 && m.guard_threshold.is_finite()).then_some((kind, guard_params(file), m.guard_threshold))
    }

    /// The structural guard's VAE, when the guard has one.
    pub fn guard_vae(&self) -> Option<&engine::Vae<'static>> {
        self.guard_vae.as_ref().map(|(v, _)| v)
    }

    /// The int8 PixelCNN engine, when this is a PixelCNN opened with the int8 engine.
    pub fn int8_pixelcnn(&self) -> Option<&engine::PixelCnn<'static>> {
        match &self.engines {
            Engines::PixelCnnInt8 { model, .. } => Some(model),
            _ => None,
        }
    }

    /// The model family.
    pub fn family(&self) -> ModelFamily {
        self.family
    }

    /// Bits/dim of an image: exact for the PixelCNN, the `VAE_K`-sample importance-weighted
    /// bound for the VAE (latents from `Rng::with_stream(0, index)`).
    pub fn bpd(&self, image: &[u8], index: usize) -> Result<f64> {
        let values = self.check(image)?.values();
        let mut rng = Rng::with_stream(0, index as u64);
        Ok(match &self.engines {
            Engines::PixelCnnInt8 { model, .. } => bits_per_dim(model.log_prob(&mut vec![0u8; model.arena_len()], image)?, values),
            Engines::PixelCnnTract { model, .. } => bits_per_dim(model.log_prob(image)?, values),
            Engines::VaeInt8(e) => e.bounds(&mut vec![0u8; e.arena_len()], image, VAE_K, &mut rng)?.iwae_bpd(),
            Engines::VaeTract(e) => e.bounds(image, VAE_K, &mut rng)?.iwae_bpd(),
            Engines::FlowTract(e) => bits_per_dim(e.log_prob(image)?, values),
            Engines::FlowInt8(e) => {
                bits_per_dim(e.log_prob(&mut vec![0u8; e.arena_len()], &mut vec![0f32; e.scratch_len()], image)?, values)
            }
            Engines::GanInt8(_) | Engines::GanTract(_) | Engines::ClassifierInt8(_) | Engines::ClassifierTract(_) => {
                bail!("a {} has no likelihood to score with; use a PixelCNN or a VAE model", self.family)
            }
        })
    }

    /// Classes of a conditional generator (0: any other model).
    pub fn classes(&self) -> usize {
        match &self.engines {
            Engines::GanInt8(e) => e.classes(),
            Engines::GanTract(e) => e.classes(),
            _ => 0,
        }
    }

    /// One image from `seed` of class `class` (a conditional generator; `None`: the class
    /// drawn from the seed); returns it with its class.
    pub fn sample_class(&self, seed: u64, class: Option<usize>) -> Result<(Vec<u8>, usize)> {
        let mut out = vec![0u8; self.geometry().values()];
        let class = match &self.engines {
            Engines::GanInt8(e) => e.sample_class(&mut vec![0u8; e.arena_len()], seed, class, &mut out)?,
            Engines::GanTract(e) => e.sample_class(seed, class, &mut out)?,
            _ if class.is_some() => bail!("a {} is not conditioned on a class: --class takes a conditional GAN", self.family),
            _ => return Ok((self.sample(seed)?, 0)),
        };
        Ok((out, class))
    }

    /// One image from `seed`.
    pub fn sample(&self, seed: u64) -> Result<Vec<u8>> {
        let mut out = vec![0u8; self.geometry().values()];
        match &self.engines {
            Engines::PixelCnnInt8 { model, .. } => model.sample(&mut vec![0u8; model.sample_arena_len()], seed, &mut out)?,
            Engines::VaeInt8(e) => e.sample(&mut vec![0u8; e.arena_len()], seed, &mut out)?,
            Engines::GanInt8(e) => e.sample(&mut vec![0u8; e.arena_len()], seed, &mut out)?,
            Engines::PixelCnnTract { model, .. } => model.sample(seed, &mut out)?,
            Engines::VaeTract(e) => e.sample(seed, &mut out)?,
            Engines::GanTract(e) => e.sample(seed, &mut out)?,
            Engines::FlowTract(e) => e.sample(seed, &mut out)?,
            Engines::FlowInt8(e) => e.sample(&mut vec![0u8; e.arena_len()], &mut vec![0f32; e.scratch_len()], seed, &mut out)?,
            Engines::ClassifierInt8(_) | Engines::ClassifierTract(_) => bail!("a classifier does not generate images"),
        }
        Ok(out)
    }
}

/// What `picture` and `interpolate` say of a PixelCNN.
const NO_LATENT: &str = "a PixelCNN has no latent to walk through: --interpolate takes a VAE or a GAN";

impl Loaded {
    /// The latent size (VAE, GAN), or `None` for a PixelCNN.
    pub fn latent(&self) -> Option<usize> {
        match &self.engines {
            Engines::VaeInt8(e) => Some(e.latent()),
            Engines::GanInt8(e) => Some(e.latent()),
            Engines::VaeTract(e) => Some(e.latent()),
            Engines::GanTract(e) => Some(e.latent()),
            Engines::FlowTract(e) => Some(e.latent()),
            Engines::FlowInt8(e) => Some(e.latent()),
            Engines::PixelCnnInt8 { .. } | Engines::PixelCnnTract { .. } => None,
            Engines::ClassifierInt8(_) | Engines::ClassifierTract(_) => None,
        }
    }

    /// The picture of latent `z`: the generator's image, or the mean image of the VAE's
    /// p(x|z).
    pub fn picture(&self, z: &[f32]) -> Result<Vec<u8>> {
        let mut out = vec![0u8; self.geometry().values()];
        match &self.engines {
            Engines::VaeInt8(e) => e.decode_mean(&mut vec![0u8; e.arena_len()], z, &mut out)?,
            Engines::GanInt8(e) => e.generate(&mut vec![0u8; e.arena_len()], z, &mut out)?,
            Engines::VaeTract(e) => e.decode_mean(z, &mut out)?,
            Engines::GanTract(e) => e.generate(z, &mut out)?,
            Engines::FlowTract(e) => e.decode(z, &mut out)?,
            Engines::FlowInt8(e) => e.decode(&mut vec![0u8; e.arena_len()], &mut vec![0f32; e.scratch_len()], z, &mut out)?,
            Engines::PixelCnnInt8 { .. } | Engines::PixelCnnTract { .. } => anyhow::bail!(NO_LATENT),
            Engines::ClassifierInt8(_) | Engines::ClassifierTract(_) => anyhow::bail!("a classifier has no latent to walk through"),
        }
        Ok(out)
    }

    /// `steps` pictures on the great circle from seed `a`'s latent to seed `b`'s (the latents
    /// `sample` draws from those seeds), spherically interpolated. A conditional generator
    /// keeps `class` along the way, or (`None`) blends the two seeds' classes linearly.
    pub fn interpolate(&self, a: u64, b: u64, steps: usize, class: Option<usize>) -> Result<Vec<Vec<u8>>> {
        let Some(n) = self.latent() else { anyhow::bail!(NO_LATENT) };
        let k = self.classes();
        ensure!(k > 0 || class.is_none(), "a {} is not conditioned on a class: --class takes a conditional GAN", self.family);
        let (mut za, mut zb) = (vec![0f32; n + k], vec![0f32; n + k]);
        edgegen_runtime::engine::seed_input(a, n, k, class, &mut za)?;
        edgegen_runtime::engine::seed_input(b, n, k, class, &mut zb)?;
        crate::parallel::map(steps, |i| {
            let t = if steps == 1 { 0.0 } else { i as f32 / (steps - 1) as f32 };
            let mut z = vec![0f32; n + k];
            edgegen_runtime::likelihood::slerp(&za[..n], &zb[..n], t, &mut z[..n])?;
            for j in n..n + k {
                z[j] = (1.0 - t) * za[j] + t * zb[j];
            }
            self.picture(&z)
        })
        .into_iter()
        .collect()
    }
}

/// The int8 VAE encoder's posterior mean of `image`.
pub fn posterior_mean(vae: &engine::Vae<'_>, image: &[u8]) -> Result<Vec<f32>> {
    let (mut mu, mut lv) = (vec![0f32; vae.latent()], vec![0f32; vae.latent()]);
    vae.encode(&mut vec![0u8; vae.encoder_arena_len()], image, &mut mu, &mut lv)?;
    Ok(mu)
}
