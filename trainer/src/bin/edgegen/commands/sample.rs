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
    /// Number of samples (with --interpolate: pictures per row).
    #[arg(long, default_value_t = 16)]
    count: usize,
    /// Walk the latent space instead (VAE, GAN): `A:B[,C:D…]`, one row per pair of seeds from
    /// seed A's latent to seed B's, spherically interpolated; the VAE shows p(x|z)'s mean
    /// image. Example: `--interpolate 3:7,10:11 --count 8`.
    #[arg(long)]
    interpolate: Option<String>,
    /// A conditional generator's class: a name (`sneaker`, `ankle-boot`, or a unique start
    /// of one), an index (`7`), or `all` (one column per class, one row per seed). Without
    /// it each seed draws its class.
    #[arg(long)]
    class: Option<String>,
    /// Output PNG.
    #[arg(long, default_value = "out/samples.png")]
    out: PathBuf,
}

/// Runs `edgegen sample`.
pub fn run(a: Args) -> Result<()> {
    use edgegen_trainer::eval::score;
    match &a.interpolate {
        Some(pairs) => score::interpolate(&a.model.model, a.model.engine, &score::seed_pairs(pairs)?, a.count, a.class.as_deref(), &a.out),
        None => score::sample(&a.model.model, a.model.engine, a.seed, a.count, a.class.as_deref(), &a.out),
    }
}
