//! `edgegen bench`: every engine's throughput on one model (one process, one thread).

use anyhow::Result;
use std::path::PathBuf;

/// Arguments of `edgegen bench`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Model directory.
    #[arg(long)]
    model: PathBuf,
    /// Images per engine.
    #[arg(long, default_value_t = 50)]
    images: usize,
}

/// Runs `edgegen bench`.
pub fn run(a: Args) -> Result<()> {
    edgegen_trainer::eval::bench::run(&a.model, a.images.max(1)).map(|_| ())
}
