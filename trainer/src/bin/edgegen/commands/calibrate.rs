//! `edgegen calibrate`: calibrate the guard's threshold on the validation split and store it
//! in the model file.

use anyhow::Result;
use edgegen_runtime::guard::ScoreKind;
use std::path::PathBuf;

/// Arguments of `edgegen calibrate`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Model directory (PixelCNN or VAE).
    #[arg(long)]
    model: PathBuf,
    /// Target false-reject rate on in-distribution images.
    #[arg(long, default_value_t = 0.01)]
    false_reject: f32,
    /// Guard score [default: structural with --vae, combined for a PixelCNN with a `-bg`
    /// background model, else complexity_corrected].
    #[arg(long, value_parser = score_kind)]
    score: Option<ScoreKind>,
    /// The VAE (int8, trained on the same frames, its directory beside the model's) whose
    /// encoder's posterior the structural score's latent density is fitted on.
    #[arg(long)]
    vae: Option<PathBuf>,
    /// Components of the structural score's latent density (a Gaussian mixture).
    #[arg(long, default_value_t = 8)]
    components: usize,
    /// Hide progress bars.
    #[arg(long)]
    quiet: bool,
}

fn score_kind(name: &str) -> Result<ScoreKind, String> {
    ScoreKind::ALL.into_iter().find(|k| k.name() == name).ok_or_else(|| {
        let names: Vec<&str> = ScoreKind::ALL.iter().map(|k| k.name()).collect();
        format!("unknown score {name:?}; one of {}", names.join(", "))
    })
}

/// Runs `edgegen calibrate`.
pub fn run(a: Args) -> Result<()> {
    if !(1..=edgegen_runtime::guard::MAX_COMPONENTS).contains(&a.components) {
        anyhow::bail!("--components must be in 1..={}", edgegen_runtime::guard::MAX_COMPONENTS);
    }
    let fit = edgegen_trainer::eval::score::LatentFit { components: a.components, ..Default::default() };
    edgegen_trainer::eval::score::calibrate(&a.model, a.false_reject, a.score, a.vae.as_deref(), &fit, !a.quiet)
}
