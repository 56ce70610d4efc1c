//! `edgegen train gan`: its arguments (saved as the run's config) and the whole job — train,
//! recalibrate BatchNorm, measure Fréchet distances, export ONNX, card.

use super::{export, model::Gan, training, GanConfig};
use crate::families::training::{reproduce_command, save_config, CommonArgs};
use anyhow::{bail, Result};
use std::path::PathBuf;

/// Arguments of `edgegen train gan`.
#[derive(clap::Args, Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct GanArgs {
    #[command(flatten)]
    #[serde(flatten)]
    pub common: CommonArgs,
    /// Noise dimensions.
    #[arg(long, default_value_t = 32)]
    pub latent: usize,
    /// Decay of the exponential moving average of the generator's weights, which is what
    /// gets published (0: publish the last generator).
    #[arg(long, default_value_t = 0.999)]
    pub ema: f64,
    /// Channels of the generator's smallest map (7×7 for 28×28 frames); each stage after it
    /// has half as many (at least 4).
    #[arg(long, default_value_t = 64)]
    pub features: usize,
    /// Channels of the discriminator's first convolution (each further one twice as many).
    #[arg(long, default_value_t = 32)]
    pub d_features: usize,
    /// Strided convolutions in the discriminator: one per generator stage (the default; 2
    /// for 28×28: 28 → 14 → 7) or one more (→ 3×3).
    #[arg(long)]
    pub d_layers: Option<usize>,
    /// Channels of a full-size map that a final 3×3 convolution turns into the image (0:
    /// the last transposed convolution writes the image directly).
    #[arg(long, default_value_t = 0)]
    pub fine_features: usize,
    /// Class-conditional: the generator draws the class it is asked for (its input is the
    /// noise and the class's one-hot vector; a projection discriminator judges image and
    /// class together). Needs labelled images (Fashion-MNIST's ten classes).
    #[arg(long, default_value_t = false)]
    #[serde(default)]
    pub conditional: bool,
    /// Minibatch standard deviation in the discriminator (Karras et al. 2018): the
    /// standard deviation of its last map's features across groups of this many images,
    /// as one more channel, so fakes that lack the data's variety stand out (0: off).
    #[arg(long, default_value_t = 0)]
    #[serde(default)]
    pub mbstd: usize,
    /// From this epoch on, both learning rates fall linearly to 0 at the end of training.
    #[arg(long)]
    pub lr_decay_from: Option<usize>,
    /// Noise vectors over which the published generator's BatchNorm statistics are measured
    /// again (0: keep the running statistics of training, averaged with the weights).
    #[arg(long, default_value_t = 10_000)]
    pub bn_samples: usize,
    /// The VAE whose samples are also measured (FD).
    #[arg(long, default_value = "models/vae-fmnist")]
    pub vae: PathBuf,
    /// Where the published artifacts go (never `models/` unless named: the bundled models
    /// are replaced only on purpose).
    #[arg(long, default_value = "runs/gan-fmnist/model")]
    pub out: PathBuf,
    /// Where checkpoints go (the FD classifier is cached beside it).
    #[arg(long, default_value = "runs/gan-fmnist")]
    pub run_dir: PathBuf,
}

impl GanArgs {
    fn check(&self) -> Result<()> {
        if !(1..=128).contains(&self.latent) {
            bail!("--latent must be in 1..=128");
        }
        if !(0.0..1.0).contains(&self.ema) {
            bail!("--ema must be in [0, 1)");
        }
        if !(1..=256).contains(&self.d_features) {
            bail!("--d-features must be in 1..=256");
        }
        if !(2..=256).contains(&self.features) || !self.features.is_multiple_of(2) {
            bail!("--features must be even and in 2..=256");
        }
        if self.fine_features > 256 {
            bail!("--fine-features must be in 0..=256");
        }
        if self.common.cosine {
            bail!("--cosine is for the VAE and the PixelCNN; the GAN decays its rate linearly with --lr-decay-from EPOCH");
        }
        if self.mbstd == 1 || self.mbstd > self.common.batch {
            bail!("--mbstd is a group size: 0 (off) or 2..=--batch ({}), not {}", self.common.batch, self.mbstd);
        }
        if self.mbstd > 0 && !self.common.batch.is_multiple_of(self.mbstd) {
            bail!("--mbstd {} must divide --batch {}", self.mbstd, self.common.batch);
        }
        if self.lr_decay_from.is_some_and(|e| e >= self.common.epochs) {
            bail!("--lr-decay-from must be below --epochs");
        }
        if self.conditional && !self.common.data.source()?.is_fashion_mnist() {
            bail!("--conditional needs labelled images: Fashion-MNIST (the default --data); a folder of frames has no labels");
        }
        Ok(())
    }
}

/// Trains and publishes a DCGAN.
pub fn run(mut a: GanArgs) -> Result<()> {
    a.common.resolve(2e-4)?;
    a.check()?;
    let opts = a.common.options(&a.run_dir)?;
    let geo = opts.source.geometry();
    let mut cfg = GanConfig::new()
        .with_latent(a.latent)
        .with_features(a.features)
        .with_d_features(a.d_features)
        .with_fine_features(a.fine_features)
        .with_channels(geo.channels as usize)
        .with_height(geo.height as usize)
        .with_width(geo.width as usize)
        .with_mbstd(a.mbstd)
        .with_classes(if a.conditional { crate::eval::fd::CLASSES.len() } else { 0 });
    // Checked before d_layers is derived: the frame must have stages at all.
    cfg.d_layers = crate::families::vae::model::stages(cfg.height, cfg.width).unwrap_or(0);
    cfg.check()?;
    if let Some(d) = a.d_layers {
        cfg.d_layers = d;
        cfg.check()?;
    }
    let command = reproduce_command("gan", &a)?;
    save_config(&a.run_dir, &a)?;
    let (last, averaged, state, parts) = training::train(&cfg, &opts, a.ema, a.lr_decay_from)?;
    if state.epoch < a.common.epochs {
        // --max-steps ended the session early: nothing is published until the run is done.
        return Ok(());
    }
    let weights = match averaged {
        Some(_) => format!("exponential moving average of the generator's weights over the training steps, decay {}", a.ema),
        None => "the last iterate (--ema 0)".to_string(),
    };
    let bn = match a.bn_samples {
        0 => "BatchNorm running statistics as trained (averaged with the weights)".to_string(),
        n => format!("BatchNorm statistics measured over {n} noise vectors of these weights"),
    };
    if !opts.source.is_fashion_mnist() {
        // No Fréchet distance: its classifier knows Fashion-MNIST only.
        let generator = training::recalibrate_batchnorm(averaged.unwrap_or_else(|| last.clone()).generator, a.bn_samples, a.common.seed);
        let model = Gan { generator, discriminator: last.discriminator };
        let dataset = a.common.dataset_note(false, &opts.source, parts.train.len());
        let data = export::PublishData {
            fd: None,
            fd_last: None,
            weights: &format!("{weights}; {bn}"),
            dataset: &dataset,
            source: &opts.source,
            classes: None,
        };
        export::publish(&model, &state, &command, Some(serde_json::to_value(&a)?), &a.out, &data)?;
        println!("published {} ({:.0} s of training; samples in samples.png)", a.out.display(), state.elapsed_seconds);
        return Ok(());
    }
    eprintln!("measuring Frechet distances");
    let cache = a.run_dir.parent().unwrap_or(std::path::Path::new(".")).join("fd-classifier");
    let (classifier, accuracy) = crate::eval::fd::classifier(&cache, !a.common.quiet)?;
    let seeds: Vec<u64> = (0..a.common.eval_count().unwrap_or(10_000).min(10_000) as u64).collect();
    let test_stats = crate::eval::fd::test_stats(&classifier)?;
    // The averaged generator ships (with the last discriminator); the last iterate's FD is
    // reported beside it. Whichever ships gets BatchNorm statistics of its own weights.
    let (model, fd_last) = match averaged {
        Some(avg) => {
            let generator = training::recalibrate_batchnorm(avg.generator, a.bn_samples, a.common.seed);
            let model = Gan { generator, discriminator: last.discriminator.clone() };
            let fd_last = crate::eval::fd::fd_against_test(&classifier, &training::generate(&last, &seeds), &test_stats);
            (model, Some(fd_last))
        }
        None => {
            let generator = training::recalibrate_batchnorm(last.generator, a.bn_samples, a.common.seed);
            (Gan { generator, discriminator: last.discriminator }, None)
        }
    };
    let samples = training::generate(&model, &seeds);
    let fd = crate::eval::fd::report(&classifier, accuracy, &samples, &a.vae, &test_stats)?;
    let weights = match fd_last {
        Some(_) => format!("{weights} (the last iterate's FD is fd_last_iterate)"),
        None => weights,
    };
    let classes = match model.generator.classes {
        0 => None,
        k => {
            let per_class = seeds.len().div_ceil(k);
            eprintln!("conditional: {per_class} samples of each class, classified and measured against that class's test images");
            let samples: Vec<Vec<u8>> = (0..k).map(|c| training::generate_class(&model, &seeds[..per_class], Some(c as u8))).collect();
            let (agreement, fd, floor) = crate::eval::fd::conditional(&classifier, &samples)?;
            println!("class agreement {:.2}%; FD within each class (samples / floor):", agreement * 100.0);
            for (c, (f, fl)) in fd.iter().zip(&floor).enumerate() {
                println!("  {:<12} {f:>7.3} / {fl:.3}", crate::eval::fd::CLASSES[c]);
            }
            Some(export::ClassFigures {
                names: crate::eval::fd::CLASSES.iter().map(|s| s.to_string()).collect(),
                agreement: Some(agreement),
                fd: Some(fd),
                fd_floor: Some(floor),
            })
        }
    };
    let dataset = a.common.dataset_note(false, &opts.source, parts.train.len());
    let data = export::PublishData {
        fd: Some(&fd),
        fd_last,
        weights: &format!("{weights}; {bn}"),
        dataset: &dataset,
        source: &opts.source,
        classes: classes.as_ref(),
    };
    export::publish(&model, &state, &command, Some(serde_json::to_value(&a)?), &a.out, &data)?;
    println!(
        "FD: GAN {:.3}, floor {:.3} (ratio {:.2}), VAE {:.3}; classifier accuracy {:.2}%; {:.0} s of training",
        fd.gan,
        fd.floor,
        fd.gan / fd.floor,
        fd.vae,
        accuracy * 100.0,
        state.elapsed_seconds
    );
    Ok(())
}
