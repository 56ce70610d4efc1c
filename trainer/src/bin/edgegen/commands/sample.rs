//! `edgegen sample`: draw samples from a model into a PNG grid.

use anyhow::Result;
use std::path::PathBuf;

/// Arguments of `edgegen sample`.
#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    model: super::ModelArgs,
    /// First seed.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Number of samples.
    #[arg(long, default_value_t = 16)]
    count: usize,
    /// Output PNG.
    #[arg(long, default_value = "out/samples.png")]
    out: PathBuf,
}

/// Runs `edgegen sample`.
pub fn run(a: Args) -> Result<()> {
    edgegen_trainer::eval::score::sample(&a.model.model, a.model.engine, a.seed, a.count, &a.out)
}
