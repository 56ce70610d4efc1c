//! `edgegen train pixelcnn`: its arguments (saved as the run's config) and the whole job —
//! train, export ONNX, golden vectors, pictures, figures, card.

use super::{export, training, PixelCnnConfig};
use crate::families::training::{reproduce_command, save_config, CommonArgs};
use anyhow::{bail, Result};
use std::path::PathBuf;

/// Arguments of `edgegen train pixelcnn`.
#[derive(clap::Args, Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct PixelCnnArgs {
    #[command(flatten)]
    #[serde(flatten)]
    pub common: CommonArgs,
    /// Channels of the residual stream (a multiple of the image channels).
    #[arg(long, default_value_t = 64)]
    pub features: usize,
    /// Channels inside each block's masked 3x3 convolution (a multiple of the image channels).
    #[arg(long, default_value_t = 32)]
    pub inner: usize,
    /// Residual blocks.
    #[arg(long, default_value_t = 4)]
    pub blocks: usize,
    /// The network: `classic` (one stack of masked convolutions, with the blind spot stacked
    /// 3x3 masks leave above-right of each pixel) or `two-stack` (a vertical stack for the
    /// rows above and a horizontal one for the row so far: every earlier pixel within the
    /// receptive field is seen; ~1.4x the classic's multiply-accumulates).
    #[arg(long, value_enum, default_value_t = Arch::Classic)]
    #[serde(default)]
    pub arch: Arch,
    /// Mixture components of the pixel distribution.
    #[arg(long, default_value_t = 5)]
    pub components: usize,
    /// Where the published artifacts go (never `models/` unless named: the bundled models
    /// are replaced only on purpose).
    #[arg(long, default_value = "runs/pixelcnn-fmnist/model")]
    pub out: PathBuf,
    /// Where checkpoints go.
    #[arg(long, default_value = "runs/pixelcnn-fmnist")]
    pub run_dir: PathBuf,
}

/// The PixelCNN's network (`--arch`).
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Arch {
    /// One stack of masked convolutions (the published Fashion-MNIST model).
    #[default]
    Classic,
    /// Vertical and horizontal stacks, no blind spot.
    TwoStack,
}

/// Trains and publishes a PixelCNN.
pub fn run(mut a: PixelCnnArgs) -> Result<()> {
    a.common.resolve(1e-3)?;
    if a.features == 0 || a.inner == 0 || !(1..=edgegen_runtime::likelihood::MAX_COMPONENTS).contains(&a.components) {
        bail!("--features and --inner must be positive, --components in 1..=16");
    }
    let opts = a.common.options(&a.run_dir)?;
    let g = opts.source.geometry();
    let colours = g.channels as usize;
    if !a.features.is_multiple_of(colours) || !a.inner.is_multiple_of(colours) {
        bail!(
            "--features ({}) and --inner ({}) must be multiples of the image channels ({colours}): each colour gets its own group",
            a.features,
            a.inner
        );
    }
    let cfg = PixelCnnConfig::new()
        .with_channels(a.features)
        .with_inner(a.inner)
        .with_blocks(a.blocks)
        .with_components(a.components)
        .with_colours(colours)
        .with_two_stack(a.arch == Arch::TwoStack);
    let command = reproduce_command("pixelcnn", &a)?;
    save_config(&a.run_dir, &a)?;
    let (model, state, parts) = training::train(&cfg, &opts)?;
    if state.epoch < a.common.epochs {
        // --max-steps ended the session early: nothing is published until the run is done.
        return Ok(());
    }
    eprintln!("publishing to {}", a.out.display());
    let dataset = a.common.dataset_note(true, &opts.source, parts.train.len());
    let figures = export::publish(
        &model,
        &cfg,
        &state,
        &command,
        Some(serde_json::to_value(&a)?),
        &a.out,
        &export::PublishData {
            source: &opts.source,
            test: &parts.test,
            eval_count: a.common.eval_count(),
            dataset: &dataset,
            samples: if a.common.limit.is_some() { 8 } else { (64 * 784 / g.values()).clamp(8, 64) },
        },
        !a.common.quiet,
    )?;
    match figures.1 {
        Some(mnist) => println!("test {:.4} bits/dim; MNIST {mnist:.4} bits/dim; {:.0} s of training", figures.0, state.elapsed_seconds),
        None => println!("test {:.4} bits/dim; {:.0} s of training", figures.0, state.elapsed_seconds),
    }
    Ok(())
}
