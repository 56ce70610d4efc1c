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
    /// Channels of the residual stream.
    #[arg(long, default_value_t = 64)]
    pub channels: usize,
    /// Channels inside each block's masked 3x3 convolution.
    #[arg(long, default_value_t = 32)]
    pub inner: usize,
    /// Residual blocks.
    #[arg(long, default_value_t = 4)]
    pub blocks: usize,
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

/// Trains and publishes a PixelCNN.
pub fn run(mut a: PixelCnnArgs) -> Result<()> {
    a.common.resolve(1e-3)?;
    if a.channels == 0 || a.inner == 0 || !(1..=edgegen_runtime::likelihood::MAX_COMPONENTS).contains(&a.components) {
        bail!("--channels and --inner must be positive, --components in 1..=16");
    }
    let cfg = PixelCnnConfig::new().with_channels(a.channels).with_inner(a.inner).with_blocks(a.blocks).with_components(a.components);
    let command = reproduce_command("pixelcnn", &a)?;
    save_config(&a.run_dir, &a)?;
    let (model, state) = training::train(&cfg, &a.common.options(&a.run_dir))?;
    if state.epoch < a.common.epochs {
        // --max-steps ended the session early: nothing is published until the run is done.
        return Ok(());
    }
    eprintln!("publishing to {}", a.out.display());
    let (test, mnist) = export::publish(
        &model,
        &cfg,
        &state,
        &command,
        Some(serde_json::to_value(&a)?),
        &a.out,
        !a.common.quiet,
        a.common.eval_count(),
        &a.common.dataset_note(true),
    )?;
    println!("test {test:.4} bits/dim; MNIST {mnist:.4} bits/dim; {:.0} s of training", state.elapsed_seconds);
    Ok(())
}
