//! `edgegen compile`: compile a quantized model (from calibration.json) to flat model files (.egm).

use anyhow::Result;
use std::path::PathBuf;

/// Arguments of `edgegen compile`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Model directory.
    #[arg(long)]
    model: PathBuf,
    /// Hide progress bars.
    #[arg(long)]
    quiet: bool,
}

/// Runs `edgegen compile`.
pub fn run(a: Args) -> Result<()> {
    edgegen_trainer::int8::compile_dir(&a.model, !a.quiet)
}
