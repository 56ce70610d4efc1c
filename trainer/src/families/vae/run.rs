//! `edgegen train vae`: its arguments (saved as the run's config) and the whole job — train,
//! export ONNX, golden vectors, pictures, figures, card.

use super::{export, training, VaeConfig};
use crate::families::training::{reproduce_command, save_config, CommonArgs};
use anyhow::{bail, Result};
use std::path::PathBuf;

/// Arguments of `edgegen train vae`.
#[derive(clap::Args, Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct VaeArgs {
    #[command(flatten)]
    #[serde(flatten)]
    pub common: CommonArgs,
    /// Latent dimensions.
    #[arg(long, default_value_t = 16)]
    pub latent: usize,
    /// Mixture components of the pixel distribution.
    #[arg(long, default_value_t = 4)]
    pub components: usize,
    /// Importance samples per image for the reported bound.
    #[arg(long, default_value_t = 32)]
    pub iwae_k: usize,
    /// Where the published artifacts go (never `models/` unless named: the bundled models
    /// are replaced only on purpose).
    #[arg(long, default_value = "runs/vae-fmnist/model")]
    pub out: PathBuf,
    /// Where checkpoints go.
    #[arg(long, default_value = "runs/vae-fmnist")]
    pub run_dir: PathBuf,
}

/// Trains and publishes a VAE.
pub fn run(mut a: VaeArgs) -> Result<()> {
    a.common.resolve(1e-3)?;
    if !(1..=32).contains(&a.latent) || !(1..=edgegen_runtime::likelihood::MAX_COMPONENTS).contains(&a.components) || a.iwae_k == 0 {
        bail!("--latent must be in 1..=32, --components in 1..=16, --iwae-k positive");
    }
    let c = &a.common;
    let opts = c.options(&a.run_dir)?;
    let g = opts.source.geometry();
    let cfg = VaeConfig::new()
        .with_latent(a.latent)
        .with_components(a.components)
        .with_channels(g.channels as usize)
        .with_height(g.height as usize)
        .with_width(g.width as usize);
    cfg.check()?;
    let command = reproduce_command("vae", &a)?;
    save_config(&a.run_dir, &a)?;
    let parts = opts.source.load(opts.progress)?;
    let (model, state) = training::train_on(&cfg, &opts, &parts)?;
    if state.epoch < a.common.epochs {
        // --max-steps ended the session early: nothing is published until the run is done.
        return Ok(());
    }
    eprintln!("publishing to {}", a.out.display());
    export::write_onnx(&model, &a.out)?;
    export::write_golden(&model, &parts.test.first(Some(3)), &a.out)?;
    export::write_pictures(&model, &parts.test, &a.out, c.seed)?;
    let figures = export::measure(&model, a.iwae_k, c.seed, !c.quiet, c.eval_count(), &opts.source, &parts.test)?;
    export::write_card(
        &model,
        &figures,
        &state,
        &command,
        Some(serde_json::to_value(&a)?),
        &c.dataset_note(true, &opts.source, parts.train.len()),
        &opts.source,
        &a.out,
    )?;
    let mnist = figures.mnist.as_ref().map_or(String::new(), |m| format!("; MNIST ELBO {:.4}, IWAE {:.4}", m.elbo_bpd(), m.iwae_bpd()));
    println!(
        "test ELBO {:.4} bits/dim, IWAE(k={}) {:.4}{mnist}; {:.0} s of training",
        figures.test.elbo_bpd(),
        a.iwae_k,
        figures.test.iwae_bpd(),
        state.elapsed_seconds
    );
    Ok(())
}
